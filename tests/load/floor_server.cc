// floor_server: the floor of the load comparison (tests/load/run_load.sh).
// A callback-API gRPC server whose one RPC, Floor.Check(key, scope), answers
// whether `key` holds `scope` from an absl::flat_hash_map filled at start.
// Nothing else: no hashing, no routes, no store. Scopekeeper's Authorize is
// measured against it under the same load.
//
//   floor_server --listen=127.0.0.1:0 --keys=100000
//
// Logs `listening on HOST:PORT` (the chosen port with port 0), like the real
// server. Key i is FloorKey(i) and holds kFloorScopes. SIGTERM/SIGINT: stop,
// exit 0.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "tests/load/floor.grpc.pb.h"
#include "tests/load/floor_keys.h"
#include "tests/load/floor_service.h"
#include "tests/load/serve_until_stopped.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0",
          "host:port to serve on; port 0 picks a free port and logs it");
ABSL_FLAG(int, keys, 100000, "number of keys in the map (FloorKey(0..N-1))");

namespace scopekeeper::load {
namespace {

int Main() {
  const sigset_t stop_signals = BlockStopSignals();

  FloorService service(absl::GetFlag(FLAGS_keys));
  const std::string listen = absl::GetFlag(FLAGS_listen);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  return ServeUntilStopped(std::move(server), listen, port, stop_signals);
}

}  // namespace
}  // namespace scopekeeper::load

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // As the real server does (server/main.cc): Debian's Abseil has absl::Mutex
  // deadlock detection on, a cost in gRPC's own mutexes that would otherwise
  // be charged to one server and not the other.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return scopekeeper::load::Main();
}
