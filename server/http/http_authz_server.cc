#include "server/http/http_authz_server.h"

#include <microhttpd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/mutex.h"
#include "base/status_macros.h"

namespace scopekeeper {
namespace {

// A request's headers as libmicrohttpd keeps them: raw values (no
// percent-decoding), valid until the request is answered.
class MhdHeaders final : public GatewayHeaders {
 public:
  explicit MhdHeaders(MHD_Connection* connection) {
    MHD_get_connection_values_n(connection, MHD_HEADER_KIND, &Collect, this);
  }

  int Count(absl::string_view name, absl::string_view* value) const override {
    int count = 0;
    for (const auto& [key, val] : headers_) {
      if (absl::EqualsIgnoreCase(key, name)) {
        *value = val;
        ++count;
      }
    }
    return count;
  }

 private:
  static MHD_Result Collect(void* cls, MHD_ValueKind, const char* key,
                            size_t key_size, const char* value,
                            size_t value_size) {
    static_cast<MhdHeaders*>(cls)->headers_.emplace_back(
        absl::string_view(key, key_size),
        absl::string_view(value == nullptr ? "" : value, value_size));
    return MHD_YES;
  }

  std::vector<std::pair<absl::string_view, absl::string_view>> headers_;
};

}  // namespace

// The adapter: authenticate the caller, translate, decide, answer. A
// request whose decision has to wait for a revision (a key being written) is
// parked: its connection is suspended, so the epoll thread that read it
// serves its other connections meanwhile, and resumed with the answer once
// the revision is applied, or with 503 when the decision timeout passes
// first (a suspended connection is never timed out by libmicrohttpd).
class HttpAuthzServer::Handler {
 public:
  Handler(DecisionEngine* engine, ServingState* state,
          const GatewaySettings* settings, const CallerAuthenticator* auth,
          absl::Duration timeout)
      : engine_(engine),
        state_(state),
        settings_(settings),
        auth_(auth),
        timeout_(std::min(timeout, kMaxGatewayWait)),
        timer_([this] { RunTimer(); }) {}

  ~Handler() { Stop(); }

  // Stop() answers every parked request 503, waits until each has been
  // resumed, and stops the timer: the daemon may then be stopped (it must
  // not be while a connection is suspended). Later requests that would wait
  // are answered 503 at once. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_) {
    {
      MutexLock lock(&mu_);
      if (stopping_) return;
      stopping_ = true;
      for (auto& [raw, parked] : parked_) ExpireLocked(raw);
      timer_wake_.SignalAll();
    }
    timer_.join();
    MutexLock lock(&mu_);
    answered_.Wait(&mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const auto& [raw, parked] : parked_) {
        if (!raw->answered) return false;
      }
      return true;
    });
  }

  // libmicrohttpd's access handler: called once when the head has arrived,
  // then with each piece of a body (ignored), then once more to answer --
  // and for a parked request once more, when it is resumed.
  static MHD_Result Access(void* cls, MHD_Connection* connection,
                           const char* url, const char*, const char*,
                           const char*, size_t* upload_data_size,
                           void** request_state) {
    if (*request_state == nullptr) {
      *request_state = &kHeadSeen;
      return MHD_YES;
    }
    if (*upload_data_size != 0) {
      *upload_data_size = 0;  // gateways send no body; drop any
      return MHD_YES;
    }
    if (*request_state != &kHeadSeen) {  // parked and resumed: answer
      // Set before the resume; the request (and so the Parked) lives on
      // until Completed().
      return QueueAnswer(connection,
                         static_cast<Parked*>(*request_state)->answer);
    }
    if (std::strcmp(url, "/authz") != 0) {
      return Queue(connection, MHD_HTTP_NOT_FOUND, {}, "");
    }
    return static_cast<Handler*>(cls)->Answer(connection, request_state);
  }

  // libmicrohttpd's request-completed callback: forgets a parked request.
  static void Completed(void* cls, MHD_Connection*, void** request_state,
                        MHD_RequestTerminationCode) {
    if (*request_state != nullptr && *request_state != &kHeadSeen) {
      static_cast<Handler*>(cls)->Forget(static_cast<Parked*>(*request_state));
    }
    *request_state = nullptr;
  }

 private:
  // A request waiting for a revision. Shared by parked_ (until the request
  // ends) and the waits and wake-ups working on it.
  struct Parked {
    MHD_Connection* connection = nullptr;
    v1::AuthorizeRequest authorize;
    std::string credential_header;
    absl::Time deadline;
    // Touched by one Applied() at a time.
    v1::AuthorizeResponse decision;
    int awaits = 0;
    // Guarded by Handler::mu_ (not annotated: a struct of the handler's).
    uint64_t park = 0;              // which Park() the current wait is
    ServingState::WaitId wait = 0;  // its id; 0 while not known
    bool expired = false;           // past the deadline, or stopping
    bool answered = false;          // `answer` set and the connection resumed
    GatewayAnswer answer;
  };

  static inline int kHeadSeen = 0;

  MHD_Result Answer(MHD_Connection* connection, void** request_state) {
    const MhdHeaders headers(connection);
    if (auth_ != nullptr) {
      std::optional<std::string> authorization;
      absl::string_view token;
      if (headers.Count(kAuthorizerTokenHeader, &token) == 1) {
        authorization = absl::StrCat("Bearer ", token);
      }
      const absl::Status caller =
          auth_
              ->Authenticate(
                  authorization.has_value()
                      ? std::optional<absl::string_view>(*authorization)
                      : std::nullopt)
              .status();
      if (!caller.ok()) return QueueAnswer(connection, AnswerError(caller, ""));
    }
    absl::StatusOr<GatewayRequest> request =
        ForwardedRequest(headers, *settings_);
    if (!request.ok()) {
      return QueueAnswer(connection, AnswerError(request.status(), ""));
    }
    v1::AuthorizeRequest authorize;
    v1::AuthorizeResponse decision;
    absl::string_view credential_header;
    const DecisionEngine::Outcome outcome =
        TryGatewayRequest(*engine_, *request, *settings_, &authorize, &decision,
                          &credential_header);
    if (outcome.ready()) {
      return QueueAnswer(connection, AnswerOf(outcome.status, authorize,
                                              decision, credential_header));
    }
    auto parked = std::make_shared<Parked>();
    parked->authorize = std::move(authorize);
    parked->connection = connection;
    parked->credential_header = std::string(credential_header);
    parked->deadline = absl::Now() + timeout_;
    {
      MutexLock lock(&mu_);
      if (stopping_) return QueueAnswer(connection, Unavailable());
      parked_.emplace(parked.get(), parked);
      deadlines_.emplace(parked->deadline, parked.get());
      timer_wake_.SignalAll();
    }
    *request_state = parked.get();
    // Suspended before the wait begins, so a wake-up on another thread (or
    // at once, on this one) finds it suspended to resume.
    MHD_suspend_connection(connection);
    Park(parked, outcome.await_revision);
    return MHD_YES;
  }

  // The answer to a decided request; no decision is 503 (AnswerError), as
  // for a request decided at once.
  GatewayAnswer AnswerOf(const absl::Status& decided,
                         const v1::AuthorizeRequest& authorize,
                         const v1::AuthorizeResponse& decision,
                         absl::string_view credential_header) const {
    absl::StatusOr<GatewayAnswer> answer = AnswerDecided(
        decided, authorize, decision, credential_header, *settings_);
    if (!answer.ok()) return AnswerError(answer.status(), "");
    return *std::move(answer);
  }

  static GatewayAnswer Unavailable() {
    return AnswerError(absl::DeadlineExceededError("no decision in time"), "");
  }

  // Park() waits for `revision`; Applied() may run at once, on this thread,
  // or on another before Park() returns.
  void Park(const std::shared_ptr<Parked>& p, uint64_t revision)
      ABSL_LOCKS_EXCLUDED(mu_) {
    uint64_t park;
    {
      MutexLock lock(&mu_);
      if (p->answered) return;
      park = ++p->park;
      p->wait = 0;
    }
    const ServingState::WaitId id = state_->WhenApplied(
        revision, [this, p](absl::Status status) { Applied(p, status); });
    if (id == 0) return;  // Applied() ran already
    MutexLock lock(&mu_);
    if (p->answered || p->park != park) return;  // decided, or parked again
    p->wait = id;
    // Expired before the id was known: ExpireLocked() could not cancel it.
    if (p->expired && state_->CancelWait(id)) {
      FinishLocked(p.get(), Unavailable());
    }
  }

  // The revision was applied (or can no longer be): decide again.
  void Applied(const std::shared_ptr<Parked>& p, const absl::Status& status)
      ABSL_LOCKS_EXCLUDED(mu_) {
    if (!status.ok()) return Finish(p.get(), AnswerError(status, ""));
    p->decision.Clear();
    const DecisionEngine::Outcome outcome =
        engine_->TryAuthorize(p->authorize, &p->decision);
    if (outcome.ready()) {
      return Finish(p.get(), AnswerOf(outcome.status, p->authorize, p->decision,
                                      p->credential_header));
    }
    bool expired;
    {
      MutexLock lock(&mu_);
      expired = p->expired;
    }
    if (expired) return Finish(p.get(), Unavailable());
    if (++p->awaits > DecisionEngine::kMaxAwaits) {
      return Finish(p.get(), AnswerError(DecisionEngine::TooManyAwaits(), ""));
    }
    Park(p, outcome.await_revision);
  }

  // ExpireLocked() ends `p`'s wait with 503, or, when its wait cannot be
  // cancelled (Applied() is deciding it, or Park() has not got its id
  // yet), leaves `expired` for them to see.
  void ExpireLocked(Parked* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (p->answered) return;
    p->expired = true;
    // CancelWait() only takes the state's wait lock, never held while a
    // wait's callback runs: safe under mu_.
    if (p->wait != 0 && state_->CancelWait(p->wait)) {
      FinishLocked(p, Unavailable());
    }
  }

  void Finish(Parked* p, GatewayAnswer answer) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    FinishLocked(p, std::move(answer));
  }

  // FinishLocked() sets the answer and resumes the connection, once.
  void FinishLocked(Parked* p, GatewayAnswer answer)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (p->answered) return;
    p->answer = std::move(answer);
    p->answered = true;
    EraseDeadline(p);
    MHD_resume_connection(p->connection);
    answered_.SignalAll();
  }

  void Forget(Parked* p) ABSL_LOCKS_EXCLUDED(mu_) {
    std::shared_ptr<Parked> last;  // freed after the lock
    MutexLock lock(&mu_);
    auto it = parked_.find(p);
    if (it == parked_.end()) return;
    if (!p->answered) {
      // Ended while suspended (never expected: libmicrohttpd does not end a
      // suspended request, and Stop() resumes them all): its connection is
      // gone, so nothing may resume it.
      p->answered = true;
      if (p->wait != 0) state_->CancelWait(p->wait);
    }
    EraseDeadline(p);
    last = std::move(it->second);
    parked_.erase(it);
    answered_.SignalAll();
  }

  void EraseDeadline(Parked* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto [first, last] = deadlines_.equal_range(p->deadline);
    for (auto it = first; it != last; ++it) {
      if (it->second == p) {
        deadlines_.erase(it);
        return;
      }
    }
  }

  // The timer thread: expires parked requests at their deadlines.
  void RunTimer() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    while (!stopping_) {
      if (deadlines_.empty()) {
        timer_wake_.Wait(&mu_);
        continue;
      }
      auto first = deadlines_.begin();
      const absl::Time next = first->first;
      if (absl::Now() < next) {
        // Until then, or until stopping or an earlier deadline.
        timer_wake_.WaitWithDeadline(
            &mu_, next, [this, next]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
              return stopping_ || deadlines_.empty() ||
                     deadlines_.begin()->first < next;
            });
        continue;
      }
      Parked* p = first->second;
      deadlines_.erase(first);
      ExpireLocked(p);
    }
  }

  static MHD_Result QueueAnswer(MHD_Connection* connection,
                                const GatewayAnswer& answer) {
    return Queue(connection, answer.http_status, answer, answer.body);
  }

  // Queue() sends the answer: identity headers when allowed (those with a
  // value), the JSON body otherwise.
  static MHD_Result Queue(MHD_Connection* connection, int status,
                          const GatewayAnswer& answer,
                          const std::string& body) {
    MHD_Response* response = MHD_create_response_from_buffer(
        body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
    if (response == nullptr) return MHD_NO;
    if (!answer.trace_id.empty()) {
      const std::string name(kTraceIdHeader);
      MHD_add_response_header(response, name.c_str(), answer.trace_id.c_str());
    }
    for (const auto& [name, value] : answer.upstream_headers) {
      if (name == kTraceIdHeader || value.empty()) continue;
      MHD_add_response_header(response, std::string(name).c_str(),
                              value.c_str());
    }
    if (!body.empty()) {
      MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                              "application/json");
    }
    const MHD_Result queued = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return queued;
  }

  DecisionEngine* const engine_;
  ServingState* const state_;
  const GatewaySettings* const settings_;
  const CallerAuthenticator* const auth_;
  const absl::Duration timeout_;
  Mutex mu_;
  CondVar timer_wake_;  // a deadline added, or stopping
  CondVar answered_;    // a parked request answered or forgotten
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<Parked*, std::shared_ptr<Parked>> parked_
      ABSL_GUARDED_BY(mu_);
  std::multimap<absl::Time, Parked*> deadlines_ ABSL_GUARDED_BY(mu_);
  std::thread timer_;  // last: started once the rest is constructed
};

absl::StatusOr<std::unique_ptr<HttpAuthzServer>> HttpAuthzServer::Start(
    const HttpAuthzOptions& options, DecisionEngine* engine,
    ServingState* state, const GatewaySettings* settings,
    const CallerAuthenticator* auth) {
  std::unique_ptr<HttpAuthzServer> s(new HttpAuthzServer());
  s->handler_ = std::make_unique<Handler>(engine, state, settings, auth,
                                          options.decision_timeout);
  HttpDaemonOptions daemon;
  daemon.flag = "--http_authz_listen";
  daemon.listen = options.listen;
  daemon.threads = options.threads;
  daemon.max_connections = options.max_connections;
  daemon.idle_timeout = options.idle_timeout;
  daemon.max_header_bytes = options.max_header_bytes;
  daemon.allow_suspend = true;  // parked requests
  daemon.completed = &Handler::Completed;
  SK_ASSIGN_OR_RETURN(s->daemon_, HttpDaemon::Start(daemon, &Handler::Access,
                                                    s->handler_.get()));
  return s;
}

HttpAuthzServer::~HttpAuthzServer() {
  // Every parked connection resumed before the daemon stops (libmicrohttpd
  // requires it); the handler outlives the daemon's last callback.
  handler_->Stop();
  daemon_.reset();
}

}  // namespace scopekeeper
