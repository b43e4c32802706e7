// The load servers' process shape (floor_server, bisect_server): the stop
// signals blocked before any thread starts, `listening on HOST:PORT` once
// serving (run_load.py waits for that line; the chosen port with port 0),
// then serving until SIGTERM or SIGINT.
#ifndef SCOPEKEEPER_TESTS_LOAD_SERVE_UNTIL_STOPPED_H_
#define SCOPEKEEPER_TESTS_LOAD_SERVE_UNTIL_STOPPED_H_

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace scopekeeper::load {

// BlockStopSignals() blocks SIGTERM and SIGINT in this thread (and so in
// every thread it starts later) and returns them, for ServeUntilStopped().
// Call it first in main, before gRPC starts its threads.
inline sigset_t BlockStopSignals() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  return stop_signals;
}

// ServeUntilStopped() reports `server` (built for `listen`, bound to `port`)
// as listening, with `detail` after the address, waits for one of
// `stop_signals`, then shuts it down: EXIT_SUCCESS. EXIT_FAILURE, with a
// message, when the server did not start or bind.
inline int ServeUntilStopped(std::unique_ptr<grpc::Server> server,
                             const std::string& listen, int port,
                             const sigset_t& stop_signals,
                             absl::string_view detail = "") {
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "cannot listen on %s\n", listen.c_str());
    return EXIT_FAILURE;
  }
  const std::string host = listen.substr(0, listen.rfind(':'));
  std::fprintf(stderr, "listening on %s:%d%.*s\n", host.c_str(), port,
               static_cast<int>(detail.size()), detail.data());
  int signal = 0;
  sigwait(&stop_signals, &signal);
  server->Shutdown();
  server->Wait();
  return EXIT_SUCCESS;
}

}  // namespace scopekeeper::load

#endif  // SCOPEKEEPER_TESTS_LOAD_SERVE_UNTIL_STOPPED_H_
