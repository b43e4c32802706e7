// RouteLibraryLogs(): gRPC's and protobuf's own log lines (gRPC's
// "E1204 17:29:46.1 … ssl_transport_security.cc:1420] Handshake failed …",
// protobuf's "[libprotobuf ERROR …]") go through base/log's writer, so the
// stream has one format (logfmt or JSON) and one level filter:
//
//   ts=… level=error msg="Handshake failed with fatal error SSL_ERROR_SSL: …"
//     logger=grpc source=ssl_transport_security.cc:1420
//
// gRPC decides first which lines it produces: errors only by default, more
// with GRPC_VERBOSITY=INFO or DEBUG (its debug and info lines are logged
// at level info, so --log_level=warning still drops them).
#ifndef SCOPEKEEPER_SERVER_GRPC_LIBRARY_LOGS_H_
#define SCOPEKEEPER_SERVER_GRPC_LIBRARY_LOGS_H_

namespace scopekeeper {

// Process-wide; call once in main() before the server starts (protobuf's
// handler may not be changed while other threads log).
void RouteLibraryLogs();

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_GRPC_LIBRARY_LOGS_H_
