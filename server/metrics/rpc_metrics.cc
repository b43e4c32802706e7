#include "server/metrics/rpc_metrics.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"

namespace scopekeeper {
namespace {

// Names and label values here come from the server's own service
// definitions ([A-Za-z0-9_.]), never from a caller.
constexpr absl::string_view kUnknown = "unknown";

}  // namespace

absl::string_view RpcMetrics::GoCodeName(int code) {
  static constexpr absl::string_view kNames[kCodes] = {
      "OK",
      "Canceled",
      "Unknown",
      "InvalidArgument",
      "DeadlineExceeded",
      "NotFound",
      "AlreadyExists",
      "PermissionDenied",
      "ResourceExhausted",
      "FailedPrecondition",
      "Aborted",
      "OutOfRange",
      "Unimplemented",
      "Internal",
      "Unavailable",
      "DataLoss",
      "Unauthenticated",
  };
  return code >= 0 && code < kCodes ? kNames[code] : "Unknown";
}

RpcMetrics::RpcMetrics(const std::vector<Method>& methods) {
  std::vector<Method> all = methods;
  all.push_back({std::string(kUnknown), std::string(kUnknown), "unary"});
  for (Method& m : all) {
    auto series = std::make_unique<Series>();
    series->labels =
        absl::StrCat("grpc_type=\"", m.type, "\",grpc_service=\"", m.service,
                     "\",grpc_method=\"", m.method, "\"");
    const std::string path = absl::StrCat("/", m.service, "/", m.method);
    series->method = std::move(m);
    if (series_.size() + 1 < all.size()) {  // the unknown slot has no path
      index_.emplace(path, static_cast<int>(series_.size()));
    }
    series_.push_back(std::move(series));
  }
}

int RpcMetrics::Find(absl::string_view path) const {
  const auto it = index_.find(path);
  return it != index_.end() ? it->second : static_cast<int>(series_.size()) - 1;
}

void RpcMetrics::Started(int method) {
  series_[method]->started.fetch_add(1, std::memory_order_relaxed);
}

void RpcMetrics::Handled(int method, int code, absl::Duration latency) {
  Series& s = *series_[method];
  if (code < 0 || code >= kCodes) code = 2;  // UNKNOWN
  s.handled[code].fetch_add(1, std::memory_order_relaxed);
  s.handling.Observe(latency);
}

namespace {

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

RpcMetrics::Call::Call(RpcMetrics* metrics, int method)
    : metrics_(metrics), method_(method), start_ns_(SteadyNanos()) {
  metrics_->Started(method_);
}

RpcMetrics::Call& RpcMetrics::Call::operator=(Call&& other) noexcept {
  if (this != &other) {
    Done(1);  // CANCELLED: what this one counted is replaced
    metrics_ = std::exchange(other.metrics_, nullptr);
    method_ = other.method_;
    start_ns_ = other.start_ns_;
  }
  return *this;
}

RpcMetrics::Call::~Call() { Done(1); }  // CANCELLED unless done before

void RpcMetrics::Call::Done(int code) {
  if (metrics_ == nullptr) return;
  metrics_->Handled(method_, code,
                    absl::Nanoseconds(SteadyNanos() - start_ns_));
  metrics_ = nullptr;
}

void RpcMetrics::Render(std::string* out) const {
  absl::StrAppend(out,
                  "# HELP grpc_server_started_total Total number of RPCs "
                  "started on the server.\n"
                  "# TYPE grpc_server_started_total counter\n");
  for (const auto& s : series_) {
    absl::StrAppend(out, "grpc_server_started_total{", s->labels, "} ",
                    s->started.load(std::memory_order_relaxed), "\n");
  }
  absl::StrAppend(out,
                  "# HELP grpc_server_handled_total Total number of RPCs "
                  "completed on the server, regardless of success or "
                  "failure.\n"
                  "# TYPE grpc_server_handled_total counter\n");
  for (const auto& s : series_) {
    for (int code = 0; code < kCodes; ++code) {
      absl::StrAppend(out, "grpc_server_handled_total{", s->labels,
                      ",grpc_code=\"", GoCodeName(code), "\"} ",
                      s->handled[code].load(std::memory_order_relaxed), "\n");
    }
  }
  absl::StrAppend(out,
                  "# HELP grpc_server_handling_seconds Histogram of response "
                  "latency (seconds) of gRPC that had been application-level "
                  "handled by the server.\n"
                  "# TYPE grpc_server_handling_seconds histogram\n");
  for (const auto& s : series_) {
    s->handling.Render("grpc_server_handling_seconds", s->labels, out);
  }
}

}  // namespace scopekeeper
