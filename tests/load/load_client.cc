// load_client: a closed-loop gRPC load generator for tests/load/run_load.sh.
//
// Opens --connections HTTP/2 connections and keeps exactly --concurrency
// RPCs in flight on each (a new one starts when one finishes), from one
// thread driving one completion queue. Every response is checked, so a server
// that answers wrongly cannot look fast. Prints one JSON line: requests/s,
// latency percentiles (µs), errors (RPC failures), wrong (wrong answers) and,
// with --server_pid, the server's CPU use over the measured window.
//
// Modes (--rpc):
//   authorize  Authorizer.Authorize, http form (external-pharmacy GET
//              /pharmacy_orders/{uid}), random keys of --keys_file; expects
//              allowed, 200, and the key's own key_id.
//   batch      Authorizer.BatchAuthorize with --batch_size entries each;
//              expects every entry allowed with its key_id (with
//              --compact: allowed, 200, and no key_id or trace_id).
//   floor      Floor.Check(key, scope) on floor_server; expects allowed.
//   grant      Admin.GrantScopes (a durable write each) on --keys_file keys.
//   seed       Admin.CreateKey until --keys keys exist; writes
//              "key_id<TAB>secret" lines to --keys_file (mode 0600).
//   revoke     creates --revocations fresh keys, then runs authorize load
//              (half of the calls on the key about to be revoked, the rest
//              on random keys) while another thread revokes them one at a
//              time; every Authorize sent after its key's RevokeKey
//              returned must be denied (counted as violations). Reported:
//              RevokeKey send/return -> first denial received, and RevokeKey
//              return -> send time of the earliest call that was denied
//              (negative: the server denied before RevokeKey returned).
//
// Measuring: calls finishing in the first --warmup seconds are not counted;
// then either --duration seconds are measured, or (--requests > 0) that many
// calls. Exit status 1 on bad flags, a failed connection, or (seed, revoke)
// any error or violation.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "proto/scopekeeper/v1/scopekeeper.grpc.pb.h"
#include "tests/load/floor.grpc.pb.h"
#include "tests/load/floor_keys.h"

ABSL_FLAG(std::string, target, "", "host:port of the server (required)");
ABSL_FLAG(std::string, rpc, "authorize",
          "authorize | batch | floor | grant | seed | revoke");
ABSL_FLAG(int, connections, 1, "HTTP/2 connections (channels)");
ABSL_FLAG(int, concurrency, 16, "RPCs kept in flight per connection");
ABSL_FLAG(double, warmup, 1, "seconds before measuring");
ABSL_FLAG(double, duration, 5, "seconds measured (when --requests is 0)");
ABSL_FLAG(int64_t, requests, 0, "if > 0: measure this many calls instead");
ABSL_FLAG(int, batch_size, 100, "entries per BatchAuthorize (batch)");
ABSL_FLAG(bool, compact, false,
          "batch: ask for compact answers (BatchAuthorizeRequest.compact)");
ABSL_FLAG(std::string, keys_file, "",
          "\"key_id<TAB>secret\" lines: written by seed, read by the others");
ABSL_FLAG(int, keys, 100000,
          "seed: keys to create; floor: keys in floor_server's map");
ABSL_FLAG(std::string, admin_token_file, "",
          "admin token (first line), for seed, grant and revoke");
ABSL_FLAG(int, revocations, 100, "revoke: keys revoked, one at a time");
ABSL_FLAG(double, revoke_dwell_ms, 10,
          "revoke: load on each key before and after revoking it (ms)");
ABSL_FLAG(int, server_pid, 0, "if set: report this process's CPU use");
ABSL_FLAG(std::string, label, "", "copied into the JSON line");

namespace scopekeeper::load {
namespace {

namespace sk = ::scopekeeper::v1;
namespace fl = ::scopekeeper::load::v1;

constexpr char kApi[] = "external-pharmacy";
constexpr char kPath[] = "/v1/external-pharmacy-api-v1/pharmacy_orders/ord_42";
constexpr char kGrantedScope[] = "webhooks_read";  // declared, not seeded
constexpr auto kCallDeadline = std::chrono::seconds(10);
constexpr std::chrono::nanoseconds kDenialWait = std::chrono::seconds(5);

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "load_client: %s\n", message.c_str());
  std::exit(EXIT_FAILURE);
}

struct Key {
  std::string id;
  std::string secret;
};

std::vector<Key> ReadKeys(const std::string& path) {
  std::ifstream in(path);
  if (!in) Die(absl::StrCat("cannot read --keys_file ", path));
  std::vector<Key> keys;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> parts = absl::StrSplit(line, '\t');
    if (parts.size() != 2) Die(absl::StrCat("bad line in ", path));
    keys.push_back({parts[0], parts[1]});
  }
  if (keys.empty()) Die(absl::StrCat(path, " has no keys"));
  return keys;
}

void WriteKeys(const std::string& path, const std::vector<Key>& keys) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) Die(absl::StrCat("cannot write --keys_file ", path));
  std::string out;
  for (const Key& k : keys) absl::StrAppend(&out, k.id, "\t", k.secret, "\n");
  if (write(fd, out.data(), out.size()) != static_cast<ssize_t>(out.size())) {
    Die(absl::StrCat("short write to ", path));
  }
  close(fd);
}

std::string ReadAdminToken(const std::string& path) {
  std::ifstream in(path);
  std::string token;
  if (!in || !std::getline(in, token) || token.empty()) {
    Die(absl::StrCat("cannot read --admin_token_file ", path));
  }
  return absl::StrCat("Bearer ", token);
}

// CpuTicks() is utime + stime of `pid` in clock ticks (0 if unreadable).
int64_t CpuTicks(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat;
  std::getline(in, stat);
  const size_t close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) return 0;
  std::vector<std::string> fields =
      absl::StrSplit(stat.substr(close_paren + 2), ' ');
  // Fields after "(comm)" start at field 3 (state): utime is 14, stime 15.
  if (fields.size() < 13) return 0;
  return std::stoll(fields[11]) + std::stoll(fields[12]);
}

// A small fast PRNG per call slot (xorshift64*).
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ULL + 1) {}
  uint64_t Next() {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return s_ * 2685821657736338717ULL;
  }
  size_t Below(size_t n) { return static_cast<size_t>(Next() % n); }

 private:
  uint64_t s_;
};

enum class Outcome { kOk, kError, kWrong };

// Call: one slot of the closed loop, with at most one RPC in flight. Start()
// begins an RPC with `this` as the completion-queue tag; after the queue
// returns the tag, Check() judges the answer. Not thread-safe: the driver
// thread owns it.
class Call {
 public:
  virtual ~Call() = default;
  virtual void Start(grpc::CompletionQueue* cq) = 0;
  virtual Outcome Check() = 0;

  int64_t start_ns = 0;
  std::string error;  // set by Check() on kError/kWrong

 protected:
  // NewContext() resets the context for the next RPC and stamps start_ns.
  grpc::ClientContext* NewContext(const std::string& authorization = "") {
    context_.emplace();
    context_->set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    if (!authorization.empty()) {
      context_->AddMetadata("authorization", authorization);
    }
    start_ns = NowNs();
    return &*context_;
  }
  Outcome StatusOutcome() {
    if (status_.ok()) return Outcome::kOk;
    error = absl::StrCat("status ", status_.error_code(), ": ",
                         status_.error_message());
    return Outcome::kError;
  }
  Outcome Wrong(absl::string_view what) {
    error = std::string(what);
    return Outcome::kWrong;
  }

  std::optional<grpc::ClientContext> context_;
  grpc::Status status_;
};

// Starts `reader` with `this` as tag, writing into response/status.
template <typename Response, typename Reader>
void Launch(std::unique_ptr<Reader>* holder, std::unique_ptr<Reader> reader,
            Response* response, grpc::Status* status, void* tag) {
  *holder = std::move(reader);
  (*holder)->StartCall();
  (*holder)->Finish(response, status, tag);
}

// Revocation bookkeeping shared by the revoker thread and the driver.
struct RevokeState {
  explicit RevokeState(int n)
      : send_ns(n),
        return_ns(n),
        first_denial_ns(n),
        first_denied_send_ns(n, std::numeric_limits<int64_t>::max()) {
    for (int i = 0; i < n; ++i) {
      send_ns[i] = 0;
      return_ns[i] = 0;
      first_denial_ns[i] = std::numeric_limits<int64_t>::max();
    }
  }
  std::vector<std::atomic<int64_t>> send_ns;    // 0: not yet sent
  std::vector<std::atomic<int64_t>> return_ns;  // 0: not yet returned
  // When the first denial of each key arrived (written by the driver, read
  // by the revoker), and (driver only) the earliest send of a denied call.
  std::vector<std::atomic<int64_t>> first_denial_ns;
  std::vector<int64_t> first_denied_send_ns;
  std::atomic<int> target{-1};  // key being revoked now
  int64_t violations = 0;       // driver thread only
};

class AuthorizeCall final : public Call {
 public:
  AuthorizeCall(sk::Authorizer::Stub* stub, const std::vector<Key>* keys,
                uint64_t seed, RevokeState* revoke = nullptr)
      : stub_(stub), keys_(keys), rng_(seed), revoke_(revoke) {
    request_.mutable_http()->set_api(kApi);
    request_.mutable_http()->set_method("GET");
    request_.mutable_http()->set_path(kPath);
  }

  void Start(grpc::CompletionQueue* cq) override {
    key_ = rng_.Below(keys_->size());
    if (revoke_ != nullptr && (toggle_ = !toggle_)) {
      const int target = revoke_->target.load(std::memory_order_relaxed);
      if (target >= 0) key_ = target;
    }
    request_.set_api_key((*keys_)[key_].secret);
    grpc::ClientContext* context = NewContext();
    Launch(&reader_, stub_->PrepareAsyncAuthorize(context, request_, cq),
           &response_, &status_, this);
  }

  Outcome Check() override {
    if (Outcome o = StatusOutcome(); o != Outcome::kOk) return o;
    const bool revocable = revoke_ != nullptr && key_ < revoke_->send_ns.size();
    if (response_.allowed()) {
      if (revocable) {
        const int64_t returned = revoke_->return_ns[key_].load();
        if (returned != 0 && start_ns > returned) {
          ++revoke_->violations;
          return Wrong("allowed a key after its RevokeKey returned");
        }
      }
      if (response_.http_status() != 200 ||
          response_.key_id() != (*keys_)[key_].id) {
        return Wrong("allowed with a wrong key_id or http_status");
      }
      return Outcome::kOk;
    }
    if (revocable && response_.reason() == sk::KEY_REVOKED &&
        revoke_->send_ns[key_].load() != 0) {
      std::atomic<int64_t>& first = revoke_->first_denial_ns[key_];
      first.store(std::min(first.load(), NowNs()));
      int64_t& first_sent = revoke_->first_denied_send_ns[key_];
      first_sent = std::min(first_sent, start_ns);
      return Outcome::kOk;
    }
    return Wrong(absl::StrCat("denied: ", sk::Reason_Name(response_.reason()),
                              " ", response_.message()));
  }

 private:
  sk::Authorizer::Stub* const stub_;
  const std::vector<Key>* const keys_;
  Rng rng_;
  RevokeState* const revoke_;
  bool toggle_ = false;
  size_t key_ = 0;
  sk::AuthorizeRequest request_;
  sk::AuthorizeResponse response_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<sk::AuthorizeResponse>>
      reader_;
};

class BatchCall final : public Call {
 public:
  BatchCall(sk::Authorizer::Stub* stub, const std::vector<Key>* keys,
            int batch_size, bool compact, uint64_t seed)
      : stub_(stub),
        keys_(keys),
        rng_(seed),
        batch_size_(batch_size),
        compact_(compact) {}

  void Start(grpc::CompletionQueue* cq) override {
    request_.clear_requests();
    request_.set_compact(compact_);
    expected_.clear();
    for (int i = 0; i < batch_size_; ++i) {
      const size_t k = rng_.Below(keys_->size());
      sk::AuthorizeRequest* r = request_.add_requests();
      r->set_api_key((*keys_)[k].secret);
      r->mutable_http()->set_api(kApi);
      r->mutable_http()->set_method("GET");
      r->mutable_http()->set_path(kPath);
      expected_.push_back(k);
    }
    grpc::ClientContext* context = NewContext();
    Launch(&reader_, stub_->PrepareAsyncBatchAuthorize(context, request_, cq),
           &response_, &status_, this);
  }

  Outcome Check() override {
    if (Outcome o = StatusOutcome(); o != Outcome::kOk) return o;
    if (response_.responses_size() != batch_size_) {
      return Wrong("batch answered with a different number of decisions");
    }
    for (int i = 0; i < batch_size_; ++i) {
      const sk::AuthorizeResponse& r = response_.responses(i);
      if (compact_) {
        if (!r.allowed() || r.http_status() != 200 || !r.key_id().empty() ||
            !r.trace_id().empty()) {
          return Wrong(absl::StrCat(
              "compact batch entry ", i, ": ",
              r.allowed() ? "not compact" : sk::Reason_Name(r.reason())));
        }
        continue;
      }
      if (!r.allowed() || r.key_id() != (*keys_)[expected_[i]].id) {
        return Wrong(absl::StrCat(
            "batch entry ", i, ": ",
            r.allowed() ? "wrong key_id" : sk::Reason_Name(r.reason())));
      }
    }
    return Outcome::kOk;
  }

 private:
  sk::Authorizer::Stub* const stub_;
  const std::vector<Key>* const keys_;
  Rng rng_;
  const int batch_size_;
  const bool compact_;
  std::vector<size_t> expected_;
  sk::BatchAuthorizeRequest request_;
  sk::BatchAuthorizeResponse response_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<sk::BatchAuthorizeResponse>>
      reader_;
};

class FloorCall final : public Call {
 public:
  FloorCall(fl::Floor::Stub* stub, const std::vector<std::string>* keys,
            uint64_t seed)
      : stub_(stub), keys_(keys), rng_(seed) {
    request_.set_scope(kFloorScopes[0]);
  }

  void Start(grpc::CompletionQueue* cq) override {
    request_.set_key((*keys_)[rng_.Below(keys_->size())]);
    grpc::ClientContext* context = NewContext();
    Launch(&reader_, stub_->PrepareAsyncCheck(context, request_, cq),
           &response_, &status_, this);
  }

  Outcome Check() override {
    if (Outcome o = StatusOutcome(); o != Outcome::kOk) return o;
    return response_.allowed() ? Outcome::kOk : Wrong("floor denied a key");
  }

 private:
  fl::Floor::Stub* const stub_;
  const std::vector<std::string>* const keys_;
  Rng rng_;
  fl::CheckRequest request_;
  fl::CheckResponse response_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<fl::CheckResponse>> reader_;
};

class GrantCall final : public Call {
 public:
  GrantCall(sk::Admin::Stub* stub, const std::vector<Key>* keys,
            const std::string* authorization, std::atomic<int64_t>* counter)
      : stub_(stub), keys_(keys), auth_(authorization), counter_(counter) {
    request_.add_scopes(kGrantedScope);
  }

  void Start(grpc::CompletionQueue* cq) override {
    key_ = static_cast<size_t>(counter_->fetch_add(1)) % keys_->size();
    request_.set_key_id((*keys_)[key_].id);
    grpc::ClientContext* context = NewContext(*auth_);
    Launch(&reader_, stub_->PrepareAsyncGrantScopes(context, request_, cq),
           &response_, &status_, this);
  }

  Outcome Check() override {
    if (Outcome o = StatusOutcome(); o != Outcome::kOk) return o;
    return response_.key_id() == (*keys_)[key_].id
               ? Outcome::kOk
               : Wrong("GrantScopes returned another key");
  }

 private:
  sk::Admin::Stub* const stub_;
  const std::vector<Key>* const keys_;
  const std::string* const auth_;
  std::atomic<int64_t>* const counter_;
  size_t key_ = 0;
  sk::GrantScopesRequest request_;
  sk::Key response_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<sk::Key>> reader_;
};

// SeedCall creates key number counter++ and stores its id and secret in
// (*out)[index].
class SeedCall final : public Call {
 public:
  SeedCall(sk::Admin::Stub* stub, std::vector<Key>* out,
           const std::string* authorization, std::atomic<int64_t>* counter)
      : stub_(stub), out_(out), auth_(authorization), counter_(counter) {
    request_.add_apis(kApi);
    request_.set_environment("live");
    request_.add_scopes("orders_read");
    request_.add_scopes("stock_read");
  }

  void Start(grpc::CompletionQueue* cq) override {
    index_ = static_cast<size_t>(counter_->fetch_add(1));
    request_.set_organization_id(absl::StrCat("org_load_", index_ % 1000));
    request_.set_name(absl::StrCat("load-", index_));
    grpc::ClientContext* context = NewContext(*auth_);
    Launch(&reader_, stub_->PrepareAsyncCreateKey(context, request_, cq),
           &response_, &status_, this);
  }

  Outcome Check() override {
    if (Outcome o = StatusOutcome(); o != Outcome::kOk) return o;
    if (response_.secret().empty() || response_.key().key_id().empty()) {
      return Wrong("CreateKey returned no secret or key_id");
    }
    if (index_ < out_->size()) {
      (*out_)[index_] = {response_.key().key_id(), response_.secret()};
    }
    return Outcome::kOk;
  }

 private:
  sk::Admin::Stub* const stub_;
  std::vector<Key>* const out_;
  const std::string* const auth_;
  std::atomic<int64_t>* const counter_;
  size_t index_ = 0;
  sk::CreateKeyRequest request_;
  sk::CreateKeyResponse response_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<sk::CreateKeyResponse>>
      reader_;
};

// Percentiles of a sample in microseconds (nearest rank); sorts `ns`.
struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, max = 0, min = 0;
};
Percentiles Summarize(std::vector<int64_t>* ns) {
  Percentiles p;
  if (ns->empty()) return p;
  std::sort(ns->begin(), ns->end());
  auto at = [&](double q) {
    size_t i = static_cast<size_t>(q * static_cast<double>(ns->size()));
    return (*ns)[std::min(i, ns->size() - 1)] / 1e3;
  };
  p.p50 = at(0.50);
  p.p90 = at(0.90);
  p.p99 = at(0.99);
  p.max = ns->back() / 1e3;
  p.min = ns->front() / 1e3;
  return p;
}

struct DriveResult {
  int64_t measured = 0;
  int64_t errors = 0;
  int64_t wrong = 0;
  std::string first_error;
  double seconds = 0;
  double server_cpu = -1;  // cores busy over the window; -1: not measured
  std::vector<int64_t> latency_ns;
};

// Drive() runs the closed loop over `calls` until the measurement is done
// (or `*stop` is set, when given) and every call has finished.
DriveResult Drive(const std::vector<std::unique_ptr<Call>>& calls,
                  grpc::CompletionQueue* cq, const std::atomic<bool>* stop) {
  const double warmup = absl::GetFlag(FLAGS_warmup);
  const int64_t requests = absl::GetFlag(FLAGS_requests);
  const int pid = absl::GetFlag(FLAGS_server_pid);
  const int64_t begin = NowNs();
  const int64_t measure_begin = begin + static_cast<int64_t>(warmup * 1e9);
  const int64_t measure_end =
      requests > 0 || stop != nullptr
          ? std::numeric_limits<int64_t>::max()
          : measure_begin +
                static_cast<int64_t>(absl::GetFlag(FLAGS_duration) * 1e9);
  DriveResult r;
  if (requests > 0) r.latency_ns.reserve(requests);
  int64_t started_measured = 0;  // requests mode: calls started in window
  int64_t cpu_begin = 0, last_done = measure_begin;
  bool cpu_sampled = false, stopping = false;
  size_t in_flight = 0;
  for (const auto& call : calls) {
    if (requests > 0 && warmup <= 0 && started_measured >= requests) break;
    call->Start(cq);
    ++in_flight;
    if (call->start_ns >= measure_begin) ++started_measured;
  }
  void* tag;
  bool ok;
  while (in_flight > 0 && cq->Next(&tag, &ok)) {
    Call* call = static_cast<Call*>(tag);
    const int64_t now = NowNs();
    const Outcome outcome = call->Check();
    --in_flight;
    if (now >= measure_begin && !cpu_sampled) {
      cpu_sampled = true;
      if (pid > 0) cpu_begin = CpuTicks(pid);
    }
    const bool counted = requests > 0
                             ? call->start_ns >= measure_begin
                             : now >= measure_begin && now < measure_end;
    if (counted) {
      ++r.measured;
      last_done = now;
      r.latency_ns.push_back(now - call->start_ns);
      if (outcome == Outcome::kError) ++r.errors;
      if (outcome == Outcome::kWrong) ++r.wrong;
      if (outcome != Outcome::kOk && r.first_error.empty()) {
        r.first_error = call->error;
      }
    }
    if (!stopping) {
      stopping = now >= measure_end || (stop != nullptr && stop->load()) ||
                 (requests > 0 && started_measured >= requests);
      if (stopping) {
        r.seconds = (std::min(now, measure_end) - measure_begin) / 1e9;
        if (pid > 0) {
          r.server_cpu = (CpuTicks(pid) - cpu_begin) /
                         static_cast<double>(sysconf(_SC_CLK_TCK)) / r.seconds;
        }
      }
    }
    if (!stopping) {
      call->Start(cq);
      ++in_flight;
      if (call->start_ns >= measure_begin) ++started_measured;
    }
  }
  if (requests > 0) {
    // Requests mode: the window ends with the last measured call.
    const double seconds = (last_done - measure_begin) / 1e9;
    if (pid > 0 && r.seconds > 0) r.server_cpu *= r.seconds / seconds;
    r.seconds = seconds;
  }
  return r;
}

std::shared_ptr<grpc::Channel> Connect(const std::string& target, int index) {
  grpc::ChannelArguments args;
  // A channel of its own per connection: no subchannel sharing.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("scopekeeper.load.connection", index);
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(
      target, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                 std::chrono::seconds(10))) {
    Die(absl::StrCat("cannot connect to ", target));
  }
  return channel;
}

void PrintJson(const std::string& rpc, const DriveResult& r,
               Percentiles* latency, const std::string& extra) {
  const int batch = rpc == "batch" ? absl::GetFlag(FLAGS_batch_size) : 1;
  const double rps = r.seconds > 0 ? r.measured / r.seconds : 0;
  std::string line = absl::StrCat(
      "{\"label\":\"", absl::GetFlag(FLAGS_label), "\",\"rpc\":\"", rpc,
      "\",\"connections\":", absl::GetFlag(FLAGS_connections),
      ",\"concurrency\":", absl::GetFlag(FLAGS_concurrency),
      ",\"batch_size\":", batch, ",\"requests\":", r.measured,
      ",\"seconds\":", r.seconds, ",\"rps\":", static_cast<int64_t>(rps),
      ",\"decisions_per_s\":", static_cast<int64_t>(rps * batch),
      ",\"p50_us\":", latency->p50, ",\"p90_us\":", latency->p90,
      ",\"p99_us\":", latency->p99, ",\"max_us\":", latency->max,
      ",\"errors\":", r.errors, ",\"wrong\":", r.wrong);
  if (r.server_cpu >= 0) {
    absl::StrAppend(
        &line, ",\"server_cpu\":", r.server_cpu,
        ",\"server_cpu_us_per_rpc\":", rps > 0 ? r.server_cpu / rps * 1e6 : 0);
  }
  std::string first_error = r.first_error;
  std::replace(first_error.begin(), first_error.end(), '"', '\'');
  std::replace(first_error.begin(), first_error.end(), '\\', '/');
  for (char& c : first_error) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';  // keep it one line
  }
  absl::StrAppend(&line, extra, ",\"first_error\":\"", first_error, "\"}");
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

std::string PercentileJson(const std::string& name, std::vector<int64_t> ns) {
  Percentiles p = Summarize(&ns);
  return absl::StrCat(",\"", name, "\":{\"min\":", p.min, ",\"p50\":", p.p50,
                      ",\"p90\":", p.p90, ",\"p99\":", p.p99,
                      ",\"max\":", p.max, "}");
}

// CreateKeys() creates `n` keys (one at a time) to be revoked.
std::vector<Key> CreateKeys(sk::Admin::Stub* admin,
                            const std::string& authorization, int n) {
  std::vector<Key> keys;
  for (int i = 0; i < n; ++i) {
    sk::CreateKeyRequest request;
    request.set_organization_id("org_load_revoke");
    request.set_name(absl::StrCat("revoke-", i));
    request.add_apis(kApi);
    request.add_scopes("orders_read");
    sk::CreateKeyResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    context.AddMetadata("authorization", authorization);
    const grpc::Status status = admin->CreateKey(&context, request, &response);
    if (!status.ok()) {
      Die(absl::StrCat("CreateKey: ", status.error_message()));
    }
    keys.push_back({response.key().key_id(), response.secret()});
  }
  return keys;
}

// Revoker: revokes keys 0..n-1 one at a time, each after `dwell` of load on
// it; after each RevokeKey returns, waits for the load to see the key denied
// (at most kDenialWait), dwells again; sets *done at the end.
void RunRevoker(sk::Admin::Stub* admin, const std::vector<Key>* keys,
                const std::string* authorization, RevokeState* state,
                std::vector<int64_t>* rpc_ns, int64_t* errors,
                std::atomic<bool>* done) {
  const int n = static_cast<int>(state->send_ns.size());
  const auto dwell = std::chrono::microseconds(
      static_cast<int64_t>(absl::GetFlag(FLAGS_revoke_dwell_ms) * 1e3));
  std::this_thread::sleep_for(
      std::chrono::duration<double>(absl::GetFlag(FLAGS_warmup)));
  for (int k = 0; k < n; ++k) {
    state->target.store(k);
    std::this_thread::sleep_for(dwell);
    sk::RevokeKeyRequest request;
    request.set_key_id((*keys)[k].id);
    request.set_reason("load test");
    sk::Key response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    context.AddMetadata("authorization", *authorization);
    const int64_t sent = NowNs();
    state->send_ns[k].store(sent);
    const grpc::Status status = admin->RevokeKey(&context, request, &response);
    const int64_t returned = NowNs();
    state->return_ns[k].store(returned);
    rpc_ns->push_back(returned - sent);
    if (!status.ok() || response.status() != sk::REVOKED) ++*errors;
    // Go on once the load has seen the key denied (or after kDenialWait: it
    // then counts as never denied), plus the dwell.
    while (state->first_denial_ns[k].load() ==
               std::numeric_limits<int64_t>::max() &&
           NowNs() - returned < kDenialWait.count()) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    std::this_thread::sleep_for(dwell);
  }
  done->store(true);
}

int Main() {
  const std::string target = absl::GetFlag(FLAGS_target);
  const std::string rpc = absl::GetFlag(FLAGS_rpc);
  const int connections = absl::GetFlag(FLAGS_connections);
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  if (target.empty()) Die("--target is required");
  if (connections < 1 || concurrency < 1) {
    Die("--connections and --concurrency must be >= 1");
  }
  const bool admin = rpc == "grant" || rpc == "seed" || rpc == "revoke";
  const std::string authorization =
      admin ? ReadAdminToken(absl::GetFlag(FLAGS_admin_token_file)) : "";

  std::vector<Key> keys;
  std::vector<std::string> floor_keys;
  if (rpc == "seed") {
    keys.resize(absl::GetFlag(FLAGS_keys));
    absl::SetFlag(&FLAGS_requests, absl::GetFlag(FLAGS_keys));
    absl::SetFlag(&FLAGS_warmup, 0);
  } else if (rpc == "floor") {
    for (int i = 0; i < absl::GetFlag(FLAGS_keys); ++i) {
      floor_keys.push_back(FloorKey(i));
    }
  } else {
    keys = ReadKeys(absl::GetFlag(FLAGS_keys_file));
  }
  const int revocations = absl::GetFlag(FLAGS_revocations);
  if (rpc == "revoke" && revocations < 1) Die("--revocations must be >= 1");

  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<sk::Authorizer::Stub>> authorizers;
  std::vector<std::unique_ptr<sk::Admin::Stub>> admins;
  std::vector<std::unique_ptr<fl::Floor::Stub>> floors;
  for (int c = 0; c < connections; ++c) {
    channels.push_back(Connect(target, c));
    authorizers.push_back(sk::Authorizer::NewStub(channels.back()));
    admins.push_back(sk::Admin::NewStub(channels.back()));
    floors.push_back(fl::Floor::NewStub(channels.back()));
  }

  std::atomic<int64_t> counter{0};
  std::unique_ptr<RevokeState> revoke;
  if (rpc == "revoke") {
    // Fresh keys to revoke, put first: keys[0, revocations) are the
    // targets; the seeded keys after them stay valid for later runs.
    std::vector<Key> targets =
        CreateKeys(admins[0].get(), authorization, revocations);
    keys.insert(keys.begin(), targets.begin(), targets.end());
    revoke = std::make_unique<RevokeState>(revocations);
  }
  std::vector<std::unique_ptr<Call>> calls;
  for (int c = 0; c < connections; ++c) {
    for (int i = 0; i < concurrency; ++i) {
      const uint64_t seed = static_cast<uint64_t>(c) * 100003 + i + 1;
      if (rpc == "authorize" || rpc == "revoke") {
        calls.push_back(std::make_unique<AuthorizeCall>(
            authorizers[c].get(), &keys, seed, revoke.get()));
      } else if (rpc == "batch") {
        calls.push_back(std::make_unique<BatchCall>(
            authorizers[c].get(), &keys, absl::GetFlag(FLAGS_batch_size),
            absl::GetFlag(FLAGS_compact), seed));
      } else if (rpc == "floor") {
        calls.push_back(
            std::make_unique<FloorCall>(floors[c].get(), &floor_keys, seed));
      } else if (rpc == "grant") {
        calls.push_back(std::make_unique<GrantCall>(admins[c].get(), &keys,
                                                    &authorization, &counter));
      } else if (rpc == "seed") {
        calls.push_back(std::make_unique<SeedCall>(admins[c].get(), &keys,
                                                   &authorization, &counter));
      } else {
        Die(absl::StrCat("unknown --rpc=", rpc));
      }
    }
  }

  grpc::CompletionQueue cq;
  std::string extra;
  DriveResult result;
  if (rpc == "revoke") {
    // RevokeKey goes over a connection of its own, as an admin's would.
    auto admin_channel = Connect(target, connections);
    auto admin_stub = sk::Admin::NewStub(admin_channel);
    std::atomic<bool> done{false};
    std::vector<int64_t> revoke_rpc_ns;
    int64_t revoke_errors = 0;
    std::thread revoker(RunRevoker, admin_stub.get(), &keys, &authorization,
                        revoke.get(), &revoke_rpc_ns, &revoke_errors, &done);
    result = Drive(calls, &cq, &done);
    revoker.join();
    std::vector<int64_t> from_send, from_return, sent_from_return;
    int64_t never_denied = 0;
    for (int k = 0; k < revocations; ++k) {
      const int64_t first = revoke->first_denial_ns[k].load();
      if (first == std::numeric_limits<int64_t>::max()) {
        ++never_denied;
        continue;
      }
      from_send.push_back(first - revoke->send_ns[k].load());
      from_return.push_back(first - revoke->return_ns[k].load());
      sent_from_return.push_back(revoke->first_denied_send_ns[k] -
                                 revoke->return_ns[k].load());
    }
    extra = absl::StrCat(
        ",\"revocations\":", revocations, ",\"revoke_errors\":", revoke_errors,
        ",\"violations\":", revoke->violations,
        ",\"never_denied\":", never_denied,
        PercentileJson("revoke_rpc_us", revoke_rpc_ns),
        PercentileJson("send_to_first_denial_us", from_send),
        PercentileJson("return_to_first_denial_us", from_return),
        PercentileJson("return_to_first_denied_send_us", sent_from_return));
    if (revoke_errors > 0 || revoke->violations > 0 || never_denied > 0) {
      result.first_error = result.first_error.empty()
                               ? "revocation errors or violations"
                               : result.first_error;
    }
  } else {
    result = Drive(calls, &cq, nullptr);
  }
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  Percentiles latency = Summarize(&result.latency_ns);
  PrintJson(rpc, result, &latency, extra);
  if (rpc == "seed") {
    if (result.errors + result.wrong > 0) Die("seeding failed");
    WriteKeys(absl::GetFlag(FLAGS_keys_file), keys);
  }
  if (rpc == "revoke" && (result.errors + result.wrong > 0)) {
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}

}  // namespace
}  // namespace scopekeeper::load

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return scopekeeper::load::Main();
}
