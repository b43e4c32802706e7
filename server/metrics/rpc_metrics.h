// RpcMetrics: per-RPC counts and handling times of the gRPC server, named
// and labelled as go-grpc-prometheus names them, so dashboards and alerts
// written for gRPC servers work unchanged:
//
//   grpc_server_started_total{grpc_type,grpc_service,grpc_method}
//   grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}
//   grpc_server_handling_seconds_bucket{grpc_type,grpc_service,grpc_method,le}
//
// grpc_code is the Go name of the status code ("OK", "InvalidArgument",
// "Unauthenticated", ...). The methods are fixed at construction (those the
// server registers), so every series exists from start, zero-valued, and
// recording takes no lock. A call to a method not in the list (answered
// UNIMPLEMENTED) counts under grpc_service="unknown",grpc_method="unknown":
// a caller chooses that path, which must never become a label value.
//
// Plain C++: server/grpc/rpc_metrics_interceptor.h feeds it from a gRPC
// server interceptor.
#ifndef SCOPEKEEPER_SERVER_METRICS_RPC_METRICS_H_
#define SCOPEKEEPER_SERVER_METRICS_RPC_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/metrics/metrics.h"

namespace scopekeeper {

// Thread-safe.
class RpcMetrics {
 public:
  struct Method {
    std::string service;  // "scopekeeper.v1.Authorizer"
    std::string method;   // "Authorize"
    // "unary", "client_stream", "server_stream" or "bidi_stream".
    std::string type = "unary";
  };
  // Status codes 0 (OK) .. 16 (UNAUTHENTICATED).
  static constexpr int kCodes = 17;
  // Upper bounds of the handling-time buckets (seconds): 10 µs .. 10 s. A
  // decision takes tens of microseconds; admin writes milliseconds.
  static constexpr std::array<double, 19> kBounds = {
      1e-5,   2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2,
      2.5e-2, 5e-2,   0.1,  0.25, 0.5,    1.0,  2.5,  5.0,    10.0};

  explicit RpcMetrics(const std::vector<Method>& methods);
  RpcMetrics(const RpcMetrics&) = delete;
  RpcMetrics& operator=(const RpcMetrics&) = delete;

  // Find() is the index of a method from gRPC's path
  // ("/scopekeeper.v1.Authorizer/Authorize"); the "unknown" slot for any
  // other path.
  int Find(absl::string_view path) const;
  // Started() counts a call as it starts, Handled() as it ends with `code`
  // (a grpc::StatusCode value) after `latency`.
  void Started(int method);
  void Handled(int method, int code, absl::Duration latency);

  // Call: one call of a method whose handler counts it (rather than a
  // server interceptor, which costs gRPC per-call work on the hot path):
  // Started() when made, Handled() with the time since at Done(). A Call
  // destroyed without Done() counts as CANCELLED, as the interceptor does.
  // A default-constructed Call counts nothing. Movable; not thread-safe.
  class Call {
   public:
    Call() = default;
    Call(RpcMetrics* metrics, int method);
    Call(Call&& other) noexcept { *this = std::move(other); }
    Call& operator=(Call&& other) noexcept;
    ~Call();
    // Done() counts the call handled with `code`; later calls do nothing.
    void Done(int code);

   private:
    RpcMetrics* metrics_ = nullptr;  // null once done
    int method_ = 0;
    int64_t start_ns_ = 0;  // steady clock
  };
  Call Start(int method) { return Call(this, method); }

  // Render() appends the three families in the text exposition format.
  void Render(std::string* out) const;

  // GoCodeName() is go-grpc-prometheus's name of status code `code`.
  static absl::string_view GoCodeName(int code);

 private:
  struct Series {
    Method method;
    std::string labels;  // grpc_type="unary",grpc_service=…,grpc_method=…
    std::atomic<uint64_t> started{0};
    std::array<std::atomic<uint64_t>, kCodes> handled{};
    LatencyHistogram handling{kBounds};
  };

  std::vector<std::unique_ptr<Series>> series_;  // last: "unknown"
  absl::flat_hash_map<std::string, int> index_;  // "/service/method" -> i
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_METRICS_RPC_METRICS_H_
