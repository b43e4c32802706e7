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

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "tests/load/floor.grpc.pb.h"
#include "tests/load/floor_keys.h"
#include "tests/load/floor_service.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0",
          "host:port to serve on; port 0 picks a free port and logs it");
ABSL_FLAG(int, keys, 100000, "number of keys in the map (FloorKey(0..N-1))");

namespace scopekeeper::load {
namespace {

int Main() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  FloorService service(absl::GetFlag(FLAGS_keys));
  const std::string listen = absl::GetFlag(FLAGS_listen);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "cannot listen on %s\n", listen.c_str());
    return EXIT_FAILURE;
  }
  const std::string host = listen.substr(0, listen.rfind(':'));
  std::fprintf(stderr, "listening on %s:%d\n", host.c_str(), port);
  int signal = 0;
  sigwait(&stop_signals, &signal);
  server->Shutdown();
  server->Wait();
  return EXIT_SUCCESS;
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
