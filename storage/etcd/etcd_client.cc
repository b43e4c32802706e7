#include "storage/etcd/etcd_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/mutex.h"
#include "base/status_macros.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "storage/etcd/etcd_status.h"

namespace scopekeeper::storage::etcd {
namespace {

namespace pb = ::etcdserverpb;
using Clock = std::chrono::system_clock;

// Describe() names a key (or range) for error messages: printable,
// shortened.
std::string Describe(absl::string_view key, absl::string_view range_end = "") {
  std::string out = absl::CHexEscape(key.substr(0, 80));
  if (key.size() > 80) absl::StrAppend(&out, "...");
  if (!range_end.empty()) {
    absl::StrAppend(&out, range_end == absl::string_view("\0", 1) ? ".." : "*");
  }
  return out;
}

void ToProto(const RangeRequest& in, pb::RangeRequest* out) {
  out->set_key(in.key);
  out->set_range_end(in.range_end);
  out->set_revision(in.revision);
  out->set_limit(in.limit);
  out->set_serializable(in.serializable);
  out->set_keys_only(in.keys_only);
  out->set_count_only(in.count_only);
  out->set_min_mod_revision(in.min_mod_revision);
  out->set_max_mod_revision(in.max_mod_revision);
  out->set_min_create_revision(in.min_create_revision);
  out->set_max_create_revision(in.max_create_revision);
  out->set_sort_order(static_cast<pb::RangeRequest::SortOrder>(in.sort_order));
  out->set_sort_target(
      static_cast<pb::RangeRequest::SortTarget>(in.sort_target));
}

KeyValue FromProto(const mvccpb::KeyValue& in) {
  KeyValue out;
  out.key = in.key();
  out.value = in.value();
  out.create_revision = in.create_revision();
  out.mod_revision = in.mod_revision();
  out.version = in.version();
  return out;
}

RangeResponse FromProto(const pb::RangeResponse& in) {
  RangeResponse out;
  out.revision = in.header().revision();
  out.kvs.reserve(in.kvs_size());
  for (const mvccpb::KeyValue& kv : in.kvs()) out.kvs.push_back(FromProto(kv));
  out.more = in.more();
  out.count = in.count();
  return out;
}

void ToProto(const Compare& in, pb::Compare* out) {
  out->set_key(in.key);
  out->set_result(static_cast<pb::Compare::CompareResult>(in.result));
  switch (in.target) {
    case Compare::Target::kVersion:
      out->set_target(pb::Compare::VERSION);
      out->set_version(in.number);
      break;
    case Compare::Target::kCreate:
      out->set_target(pb::Compare::CREATE);
      out->set_create_revision(in.number);
      break;
    case Compare::Target::kMod:
      out->set_target(pb::Compare::MOD);
      out->set_mod_revision(in.number);
      break;
    case Compare::Target::kValue:
      out->set_target(pb::Compare::VALUE);
      out->set_value(in.value);
      break;
  }
}

void ToProto(const Op& in, pb::RequestOp* out) {
  switch (in.type) {
    case Op::Type::kRange:
      ToProto(in.range, out->mutable_request_range());
      break;
    case Op::Type::kPut:
      out->mutable_request_put()->set_key(in.key);
      out->mutable_request_put()->set_value(in.value);
      break;
    case Op::Type::kDeleteRange:
      out->mutable_request_delete_range()->set_key(in.key);
      out->mutable_request_delete_range()->set_range_end(in.range_end);
      break;
  }
}

void ToProto(const TxnRequest& in, pb::TxnRequest* out) {
  for (const Compare& c : in.compare) ToProto(c, out->add_compare());
  for (const Op& op : in.success) ToProto(op, out->add_success());
  for (const Op& op : in.failure) ToProto(op, out->add_failure());
}

const std::string& FirstKey(const Op& op) {
  return op.type == Op::Type::kRange ? op.range.key : op.key;
}

bool Writes(const std::vector<Op>& ops) {
  for (const Op& op : ops) {
    if (op.type != Op::Type::kRange) return true;
  }
  return false;
}

// Target() is the gRPC target for host:port: an IP literal goes to the
// static resolver (ipv4:/ipv6:), a name to DNS.
std::string Target(const std::string& address) {
  const size_t colon = address.rfind(':');
  const std::string host = address.substr(0, colon);
  in_addr v4;
  in6_addr v6;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return "ipv4:" + address;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']' &&
      inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &v6) == 1) {
    return "ipv6:" + address;
  }
  return "dns:///" + address;
}

// One member: its channel and stubs.
struct Endpoint {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::KV::Stub> kv;
  std::unique_ptr<pb::Watch::Stub> watch;
  std::unique_ptr<pb::Maintenance::Stub> maintenance;
  std::unique_ptr<pb::Auth::Stub> auth;
};

using WatchStream =
    grpc::ClientReaderWriter<pb::WatchRequest, pb::WatchResponse>;

// A watch: one bidi stream and the thread that reads it.
class WatchImpl final : public EtcdWatch {
 public:
  WatchImpl(std::string operation, std::string endpoint,
            std::unique_ptr<grpc::ClientContext> context,
            WatchCallbacks callbacks)
      : operation_(std::move(operation)),
        endpoint_(std::move(endpoint)),
        context_(std::move(context)),
        callbacks_(std::move(callbacks)) {}

  ~WatchImpl() override {
    Cancel();
    if (reader_.joinable()) reader_.join();
  }

  // Start() sends `create` on `stream` and starts the reader thread; it
  // returns once etcd confirmed the watch, or with the error (then no
  // callback runs). `invalid_token` is set when etcd refused the token.
  absl::Status Start(std::unique_ptr<WatchStream> stream,
                     const pb::WatchRequest& create, absl::Duration timeout,
                     bool* invalid_token) ABSL_LOCKS_EXCLUDED(mu_) {
    stream_ = std::move(stream);
    if (!stream_->Write(create)) return Finish();
    reader_ = std::thread([this] { Read(); });
    bool created;
    bool failed = false;
    absl::Status create_error;
    {
      MutexLock lock(&mu_);
      created = created_cv_.WaitWithTimeout(
          &mu_, timeout, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
            return state_ != State::kCreating;
          });
      if (state_ == State::kFailed) {
        failed = true;
        create_error = create_error_;
        *invalid_token = create_error_invalid_token_;
      }
    }
    if (!created) {
      context_->TryCancel();
      reader_.join();
      return absl::DeadlineExceededError(
          absl::StrCat("etcd ", operation_, " at ", endpoint_,
                       ": not created within ", absl::FormatDuration(timeout)));
    }
    if (failed) {
      reader_.join();
      return create_error;
    }
    return absl::OkStatus();
  }

  absl::Status RequestProgress() override ABSL_LOCKS_EXCLUDED(write_mu_) {
    pb::WatchRequest request;
    request.mutable_progress_request();
    MutexLock lock(&write_mu_);
    if (finished_ || !stream_->Write(request)) {
      return absl::UnavailableError(
          absl::StrCat("etcd ", operation_, " at ", endpoint_,
                       ": progress request not sent: the watch has ended"));
    }
    return absl::OkStatus();
  }

  void Cancel() override {
    cancelled_.store(true);
    context_->TryCancel();
  }

 private:
  enum class State { kCreating, kRunning, kFailed };

  // Read() is the reader thread.
  void Read() ABSL_LOCKS_EXCLUDED(mu_, write_mu_) {
    pb::WatchResponse response;
    absl::Status end;
    int64_t compact_revision = 0;
    bool have_end = false;
    bool invalid_token = false;  // etcd refused the token of `create`
    while (!have_end && stream_->Read(&response)) {
      if (response.created() && !response.canceled()) {
        watch_id_ = response.watch_id();
        SetState(State::kRunning);
        continue;
      }
      if (response.compact_revision() != 0) {
        compact_revision = response.compact_revision();
        end = EtcdError(
            grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                         absl::StrCat("etcdserver: mvcc: required revision has "
                                      "been compacted; the oldest available "
                                      "is ",
                                      compact_revision)),
            operation_, endpoint_);
        have_end = true;
      } else if (response.canceled()) {
        const grpc::StatusCode code =
            absl::StrContains(response.cancel_reason(), "no leader")
                ? grpc::StatusCode::UNAVAILABLE
            : absl::StrContains(response.cancel_reason(), "permission denied")
                ? grpc::StatusCode::PERMISSION_DENIED
            : absl::StrContains(response.cancel_reason(), "auth token")
                ? grpc::StatusCode::UNAUTHENTICATED
                : grpc::StatusCode::UNKNOWN;
        const grpc::Status status(code,
                                  absl::StrCat("watch cancelled by etcd: ",
                                               response.cancel_reason()));
        end = EtcdError(status, operation_, endpoint_);
        if (state() == State::kCreating) {
          invalid_token = IsInvalidAuthToken(status);
        }
        have_end = true;
      } else if (response.events_size() == 0) {
        // The answer to RequestProgress() has no watch id (-1); etcd's
        // periodic notifications carry this watch's id.
        const auto& notify = response.watch_id() == watch_id_
                                 ? callbacks_.on_progress
                                 : callbacks_.on_progress_answer;
        if (notify) notify(response.header().revision());
      } else {
        DeliverEvents(response);
      }
    }
    if (have_end) context_->TryCancel();
    const absl::Status finished = Finish();
    if (!have_end) end = finished;
    if (state() == State::kCreating) {
      FailCreate(end, invalid_token);
      return;
    }
    if (callbacks_.on_end) callbacks_.on_end(end, compact_revision);
  }

  // DeliverEvents() calls on_revision once per revision of `response`.
  void DeliverEvents(const pb::WatchResponse& response) {
    std::vector<WatchEvent> events;
    int64_t revision = 0;
    for (const mvccpb::Event& event : response.events()) {
      if (event.kv().mod_revision() != revision && !events.empty()) {
        if (callbacks_.on_revision) {
          callbacks_.on_revision(revision, std::move(events));
        }
        events.clear();
      }
      revision = event.kv().mod_revision();
      WatchEvent out;
      out.type = event.type() == mvccpb::Event::DELETE
                     ? WatchEvent::Type::kDelete
                     : WatchEvent::Type::kPut;
      out.kv = FromProto(event.kv());
      if (event.has_prev_kv()) out.prev_kv = FromProto(event.prev_kv());
      events.push_back(std::move(out));
    }
    if (!events.empty() && callbacks_.on_revision) {
      callbacks_.on_revision(revision, std::move(events));
    }
  }

  // Finish() ends the stream and returns its status as an absl::Status.
  absl::Status Finish() ABSL_LOCKS_EXCLUDED(write_mu_) {
    grpc::Status status;
    {
      // Not concurrently with a Write() of RequestProgress().
      MutexLock lock(&write_mu_);
      status = stream_->Finish();
      finished_ = true;
    }
    if (cancelled_.load()) {
      return absl::CancelledError(absl::StrCat(
          "etcd ", operation_, " at ", endpoint_, ": cancelled by the caller"));
    }
    if (status.ok()) {
      status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "watch stream closed by etcd");
    }
    return EtcdError(status, operation_, endpoint_);
  }

  State state() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    return state_;
  }
  void SetState(State state) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      MutexLock lock(&mu_);
      state_ = state;
    }
    created_cv_.SignalAll();
  }
  // FailCreate() ends a watch that was never created, with `error` for
  // Start() to return.
  void FailCreate(absl::Status error, bool invalid_token)
      ABSL_LOCKS_EXCLUDED(mu_) {
    {
      MutexLock lock(&mu_);
      create_error_ = std::move(error);
      create_error_invalid_token_ = invalid_token;
      state_ = State::kFailed;
    }
    created_cv_.SignalAll();
  }

  const std::string operation_;
  const std::string endpoint_;
  const std::unique_ptr<grpc::ClientContext> context_;
  const WatchCallbacks callbacks_;
  std::unique_ptr<WatchStream> stream_;
  Mutex write_mu_;  // One writer at a time on stream_.
  bool finished_ ABSL_GUARDED_BY(write_mu_) = false;
  std::atomic<bool> cancelled_{false};
  Mutex mu_;
  CondVar created_cv_;  // state_ left kCreating
  State state_ ABSL_GUARDED_BY(mu_) = State::kCreating;
  int64_t watch_id_ = -2;  // Reader thread only.
  // Why the watch was not created (state_ kFailed), for Start().
  absl::Status create_error_ ABSL_GUARDED_BY(mu_);
  bool create_error_invalid_token_ ABSL_GUARDED_BY(mu_) = false;
  std::thread reader_;
};

class EtcdClientImpl final : public EtcdClient {
 public:
  explicit EtcdClientImpl(const Options& options) : options_(options) {
    std::shared_ptr<grpc::ChannelCredentials> credentials =
        grpc::InsecureChannelCredentials();
    if (!options.ca_pem.empty()) {
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = options.ca_pem;
      ssl.pem_cert_chain = options.cert_pem;
      ssl.pem_private_key = options.key_pem;
      credentials = grpc::SslCredentials(ssl);
    }
    grpc::ChannelArguments args;
    // Notice a silent peer (partition) on idle streams; etcd accepts pings
    // every 5 s or more (--grpc-keepalive-min-time).
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
    // Reconnect to a restarted member within a second, not gRPC's 2 min.
    // (GRPC_ARG_MIN_RECONNECT_BACKOFF_MS is also the connect timeout: it
    // keeps its default of 20 s.)
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    args.SetMaxReceiveMessageSize(256 << 20);
    for (const std::string& address : options.endpoints) {
      Endpoint endpoint;
      endpoint.address = address;
      endpoint.channel =
          grpc::CreateCustomChannel(Target(address), credentials, args);
      endpoint.kv = pb::KV::NewStub(endpoint.channel);
      endpoint.watch = pb::Watch::NewStub(endpoint.channel);
      endpoint.maintenance = pb::Maintenance::NewStub(endpoint.channel);
      endpoint.auth = pb::Auth::NewStub(endpoint.channel);
      endpoints_.push_back(std::move(endpoint));
    }
  }

  absl::StatusOr<RangeResponse> Range(const RangeRequest& request) override {
    pb::RangeRequest proto;
    ToProto(request, &proto);
    pb::RangeResponse response;
    SK_RETURN_IF_ERROR(
        Call(absl::StrCat("Range ", Describe(request.key, request.range_end)),
             /*read_only=*/true,
             [&](Endpoint& endpoint, grpc::ClientContext* context) {
               response.Clear();
               return endpoint.kv->Range(context, proto, &response);
             }));
    return FromProto(response);
  }

  absl::StatusOr<TxnResponse> Txn(const TxnRequest& request) override {
    pb::TxnRequest proto;
    ToProto(request, &proto);
    const bool read_only = !Writes(request.success) && !Writes(request.failure);
    const std::string first_key =
        !request.compare.empty()   ? request.compare[0].key
        : !request.success.empty() ? FirstKey(request.success[0])
                                   : "";
    pb::TxnResponse response;
    SK_RETURN_IF_ERROR(
        Call(absl::StrCat("Txn (", request.compare.size(), " compares, ",
                          request.success.size(), "/", request.failure.size(),
                          " ops, first key ", Describe(first_key), ")"),
             read_only, [&](Endpoint& endpoint, grpc::ClientContext* context) {
               response.Clear();
               return endpoint.kv->Txn(context, proto, &response);
             }));
    TxnResponse out;
    out.succeeded = response.succeeded();
    out.revision = response.header().revision();
    for (const pb::ResponseOp& op : response.responses()) {
      OpResponse& r = out.responses.emplace_back();
      if (op.has_response_range()) r.range = FromProto(op.response_range());
      if (op.has_response_delete_range()) {
        r.deleted = op.response_delete_range().deleted();
      }
    }
    return out;
  }

  absl::StatusOr<int64_t> Put(absl::string_view key,
                              absl::string_view value) override {
    TxnRequest txn;
    txn.success.push_back(Op::Put(std::string(key), std::string(value)));
    SK_ASSIGN_OR_RETURN(const TxnResponse response, Txn(txn));
    return response.revision;
  }

  absl::StatusOr<int64_t> DeleteRange(absl::string_view key,
                                      absl::string_view range_end) override {
    TxnRequest txn;
    txn.success.push_back(Op::Delete(std::string(key), std::string(range_end)));
    SK_ASSIGN_OR_RETURN(const TxnResponse response, Txn(txn));
    return response.revision;
  }

  absl::Status Compact(int64_t revision, bool physical) override {
    pb::CompactionRequest request;
    request.set_revision(revision);
    request.set_physical(physical);
    pb::CompactionResponse response;
    return Call(absl::StrCat("Compact ", revision), /*read_only=*/false,
                [&](Endpoint& endpoint, grpc::ClientContext* context) {
                  return endpoint.kv->Compact(context, request, &response);
                });
  }

  absl::StatusOr<MemberStatus> Status(absl::string_view endpoint) override {
    int only = -1;
    if (!endpoint.empty()) {
      for (size_t i = 0; i < endpoints_.size(); ++i) {
        if (endpoints_[i].address == endpoint) only = static_cast<int>(i);
      }
      if (only < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "endpoint: \"", endpoint, "\" is not one of Options.endpoints"));
      }
    }
    pb::StatusResponse response;
    std::string answered;
    SK_RETURN_IF_ERROR(Call(
        "Status", /*read_only=*/true,
        [&](Endpoint& e, grpc::ClientContext* context) {
          response.Clear();
          answered = e.address;
          return e.maintenance->Status(context, pb::StatusRequest(), &response);
        },
        only));
    MemberStatus out;
    out.endpoint = answered;
    out.version = response.version();
    out.member_id = response.header().member_id();
    out.leader = response.leader();
    out.db_size = response.dbsize();
    out.raft_index = response.raftindex();
    out.raft_term = response.raftterm();
    out.revision = response.header().revision();
    for (const std::string& error : response.errors()) {
      out.errors.push_back(error);
    }
    return out;
  }

  absl::StatusOr<int64_t> Snapshot(const std::string& path,
                                   absl::Duration timeout) override {
    int64_t size = 0;
    const absl::Status status = Call(
        absl::StrCat("Snapshot to ", path), /*read_only=*/true,
        [&](Endpoint& endpoint, grpc::ClientContext* context) {
          context->set_deadline(Clock::now() +
                                absl::ToChronoNanoseconds(timeout));
          std::FILE* file = nullptr;
          const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
          if (fd < 0 || (file = fdopen(fd, "wb")) == nullptr) {
            if (fd >= 0) close(fd);
            return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                absl::StrCat("cannot create ", path));
          }
          size = 0;
          std::unique_ptr<grpc::ClientReader<pb::SnapshotResponse>> reader =
              endpoint.maintenance->Snapshot(context, pb::SnapshotRequest());
          pb::SnapshotResponse chunk;
          bool written = true;
          while (written && reader->Read(&chunk)) {
            written = std::fwrite(chunk.blob().data(), 1, chunk.blob().size(),
                                  file) == chunk.blob().size();
            size += static_cast<int64_t>(chunk.blob().size());
          }
          if (!written) context->TryCancel();
          grpc::Status status = reader->Finish();
          const bool closed = std::fclose(file) == 0;
          if (status.ok() && (!written || !closed)) {
            status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                  absl::StrCat("cannot write ", path));
          }
          if (!status.ok()) std::remove(path.c_str());
          return status;
        });
    if (!status.ok()) return status;
    return size;
  }

  absl::StatusOr<std::unique_ptr<EtcdWatch>> Watch(
      const WatchRequest& request, WatchCallbacks callbacks) override {
    pb::WatchRequest create;
    pb::WatchCreateRequest* c = create.mutable_create_request();
    c->set_key(request.key);
    c->set_range_end(request.range_end);
    c->set_start_revision(request.start_revision);
    c->set_progress_notify(request.progress_notify);
    c->set_prev_kv(request.prev_kv);
    const std::string operation =
        absl::StrCat("Watch ", Describe(request.key, request.range_end),
                     " from revision ", request.start_revision);
    absl::Status last;
    const size_t first = PickEndpoint();
    for (size_t i = 0; i < endpoints_.size(); ++i) {
      Endpoint& endpoint = endpoints_[(first + i) % endpoints_.size()];
      for (int attempt = 0; attempt < 2; ++attempt) {
        auto context = std::make_unique<grpc::ClientContext>();
        Connect(endpoint, Clock::now() + absl::ToChronoNanoseconds(
                                             options_.watch_create_timeout));
        // No deadline on the stream itself: it runs until cancelled.
        const grpc::Status auth = PrepareContext(
            endpoint,
            Clock::now() +
                absl::ToChronoNanoseconds(options_.watch_create_timeout),
            context.get(), /*set_deadline=*/false);
        if (!auth.ok()) return EtcdError(auth, operation, endpoint.address);
        std::unique_ptr<WatchStream> stream =
            endpoint.watch->Watch(context.get());
        auto watch = std::make_unique<WatchImpl>(operation, endpoint.address,
                                                 std::move(context), callbacks);
        bool invalid_token = false;
        last = watch->Start(std::move(stream), create,
                            options_.watch_create_timeout, &invalid_token);
        if (last.ok()) return watch;
        if (!invalid_token) break;
        ForgetToken();
      }
      if (last.code() != absl::StatusCode::kUnavailable) return last;
    }
    return last;
  }

 private:
  using Rpc =
      std::function<grpc::Status(Endpoint& endpoint, grpc::ClientContext*)>;

  // PickEndpoint() is the endpoint to try first: the current one, unless
  // its channel is in TRANSIENT_FAILURE and another's is not.
  size_t PickEndpoint() {
    const size_t start = current_.load();
    for (size_t i = 0; i < endpoints_.size(); ++i) {
      const size_t index = (start + i) % endpoints_.size();
      if (endpoints_[index].channel->GetState(/*try_to_connect=*/true) !=
          GRPC_CHANNEL_TRANSIENT_FAILURE) {
        return index;
      }
    }
    return start % endpoints_.size();
  }

  // Call() runs `rpc` under one deadline, on endpoint `only` if >= 0, else
  // from PickEndpoint() on. After UNAVAILABLE, a `read_only` call moves on
  // to the next endpoint, round after round (with a short pause between
  // rounds: an election takes about a second) until the deadline — but
  // not after a round in which a member answered "no leader": that is the
  // fail-fast answer require_leader asks for.
  absl::Status Call(absl::string_view operation, bool read_only, const Rpc& rpc,
                    int only = -1) {
    const Clock::time_point deadline =
        Clock::now() + absl::ToChronoNanoseconds(options_.call_timeout);
    const size_t n = endpoints_.size();
    size_t index = only >= 0 ? static_cast<size_t>(only) : PickEndpoint();
    absl::Duration pause = absl::Milliseconds(20);
    bool no_leader = false;
    for (size_t attempt = 1;; ++attempt) {
      Endpoint& endpoint = endpoints_[index];
      const grpc::Status status = CallAuthenticated(endpoint, deadline, rpc);
      if (status.ok()) return absl::OkStatus();
      const absl::Status error = EtcdError(status, operation, endpoint.address);
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return error;
      if (only < 0) {
        // The next call starts elsewhere.
        size_t expected = index;
        current_.compare_exchange_strong(expected, (index + 1) % n);
        index = (index + 1) % n;
      }
      if (!read_only) return error;
      no_leader = no_leader || absl::StrContains(status.error_message(),
                                                 "etcdserver: no leader");
      if (only >= 0 || attempt % n == 0) {
        if (no_leader) return error;
        if (Clock::now() + absl::ToChronoNanoseconds(pause) >= deadline) {
          return error;
        }
        std::this_thread::sleep_for(absl::ToChronoNanoseconds(pause));
        pause = std::min(pause * 2, absl::Milliseconds(500));
      }
      if (Clock::now() >= deadline) return error;
    }
  }

  // Connect() waits until `endpoint`'s channel is connected, at most
  // Options::connect_timeout and until `deadline`. Waiting is what drives
  // the connection: with gRPC's synchronous API nothing else polls a
  // channel that has no call in flight but its backup poller, every 5 s,
  // so a connection attempt would take 5-10 s to be noticed. An
  // unreachable endpoint is then tried anyway and fails with its error.
  void Connect(Endpoint& endpoint, Clock::time_point deadline) {
    if (endpoint.channel->GetState(/*try_to_connect=*/true) ==
        GRPC_CHANNEL_READY) {
      return;
    }
    endpoint.channel->WaitForConnected(std::min(
        deadline,
        Clock::now() + absl::ToChronoNanoseconds(options_.connect_timeout)));
  }

  // CallAuthenticated() runs `rpc` on `endpoint` with the metadata (token,
  // hasleader), authenticating first if needed and once more if etcd
  // finds the token invalid (etcd checks it before applying anything, so
  // the retry cannot apply a write twice).
  grpc::Status CallAuthenticated(Endpoint& endpoint, Clock::time_point deadline,
                                 const Rpc& rpc) {
    Connect(endpoint, deadline);
    for (int attempt = 0;; ++attempt) {
      grpc::ClientContext context;
      const grpc::Status auth =
          PrepareContext(endpoint, deadline, &context, /*set_deadline=*/true);
      if (!auth.ok()) return auth;
      const grpc::Status status = rpc(endpoint, &context);
      if (attempt == 0 && !options_.user.empty() &&
          IsInvalidAuthToken(status)) {
        ForgetToken();
        continue;
      }
      return status;
    }
  }

  // PrepareContext() sets the metadata (and, if `set_deadline`, the
  // deadline) of a call on `endpoint`, getting a token first if there is
  // none (within `deadline`).
  grpc::Status PrepareContext(Endpoint& endpoint, Clock::time_point deadline,
                              grpc::ClientContext* context, bool set_deadline)
      ABSL_LOCKS_EXCLUDED(token_mu_) {
    if (set_deadline) context->set_deadline(deadline);
    if (options_.require_leader) context->AddMetadata("hasleader", "true");
    if (options_.user.empty()) return grpc::Status::OK;
    std::string token;
    {
      MutexLock lock(&token_mu_);
      token = token_;
    }
    if (token.empty()) {
      pb::AuthenticateRequest request;
      request.set_name(options_.user);
      request.set_password(options_.password);
      pb::AuthenticateResponse response;
      grpc::ClientContext auth_context;
      auth_context.set_deadline(deadline);
      if (options_.require_leader) {
        auth_context.AddMetadata("hasleader", "true");
      }
      const grpc::Status status =
          endpoint.auth->Authenticate(&auth_context, request, &response);
      if (!status.ok()) {
        return grpc::Status(
            status.error_code(),
            absl::StrCat("Authenticate as user \"", options_.user,
                         "\": ", status.error_message()));
      }
      token = response.token();
      MutexLock lock(&token_mu_);
      token_ = token;
    }
    context->AddMetadata("token", token);
    return grpc::Status::OK;
  }

  void ForgetToken() ABSL_LOCKS_EXCLUDED(token_mu_) {
    MutexLock lock(&token_mu_);
    token_.clear();
  }

  const Options options_;
  std::vector<Endpoint> endpoints_;
  std::atomic<size_t> current_{0};
  Mutex token_mu_;
  std::string token_ ABSL_GUARDED_BY(token_mu_);
};

}  // namespace

std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) {
    end.pop_back();
  }
  if (end.empty()) return std::string(1, '\0');
  end.back() = static_cast<char>(end.back() + 1);
  return end;
}

Compare Compare::ModRevision(std::string key, Result result, int64_t revision) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::kMod;
  c.result = result;
  c.number = revision;
  return c;
}

Compare Compare::CreateRevision(std::string key, Result result,
                                int64_t revision) {
  Compare c = ModRevision(std::move(key), result, revision);
  c.target = Target::kCreate;
  return c;
}

Compare Compare::Value(std::string key, Result result, std::string value) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::kValue;
  c.result = result;
  c.value = std::move(value);
  return c;
}

Op Op::Get(RangeRequest range) {
  Op op;
  op.type = Type::kRange;
  op.range = std::move(range);
  return op;
}

Op Op::Put(std::string key, std::string value) {
  Op op;
  op.type = Type::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  return op;
}

Op Op::Delete(std::string key, std::string range_end) {
  Op op;
  op.type = Type::kDeleteRange;
  op.key = std::move(key);
  op.range_end = std::move(range_end);
  return op;
}

size_t EncodedSize(const TxnRequest& request) {
  pb::TxnRequest proto;
  ToProto(request, &proto);
  return proto.ByteSizeLong();
}

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(
    const Options& options) {
  if (options.endpoints.empty()) {
    return absl::InvalidArgumentError("endpoints: at least one is required");
  }
  for (const std::string& endpoint : options.endpoints) {
    if (endpoint.empty() || endpoint.find(':') == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "endpoints: \"", absl::CHexEscape(endpoint), "\" is not host:port"));
    }
  }
  if (options.call_timeout <= absl::ZeroDuration() ||
      options.connect_timeout <= absl::ZeroDuration() ||
      options.watch_create_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "call_timeout, connect_timeout and watch_create_timeout: must be "
        "positive");
  }
  if (options.cert_pem.empty() != options.key_pem.empty()) {
    return absl::InvalidArgumentError(
        "cert_pem and key_pem: set both or neither");
  }
  if (!options.cert_pem.empty() && options.ca_pem.empty()) {
    return absl::InvalidArgumentError(
        "cert_pem: a client certificate needs TLS (ca_pem)");
  }
  if (options.user.empty() && !options.password.empty()) {
    return absl::InvalidArgumentError("password: set without a user");
  }
  return std::unique_ptr<EtcdClient>(new EtcdClientImpl(options));
}

}  // namespace scopekeeper::storage::etcd
