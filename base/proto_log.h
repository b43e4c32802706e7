// libprotobuf's log lines into the server log. libprotobuf writes one
// unstructured `[libprotobuf ERROR …]` line to stderr for every string field
// with invalid UTF-8 it parses, which a caller can repeat at will (a log
// flood). RouteProtobufLogs() sends them through base/log instead
// (logger=protobuf source=FILE:LINE, in the log's format and level), at
// most one line per second from each place in libprotobuf (with the count
// of those left out, suppressed=N), and lets a thread capture them
// (ProtobufErrorCapture) to name the bad field in the caller's error.
#ifndef SCOPEKEEPER_BASE_PROTO_LOG_H_
#define SCOPEKEEPER_BASE_PROTO_LOG_H_

#include <string>

namespace scopekeeper {

// RouteProtobufLogs() installs the handler; idempotent, thread-safe.
void RouteProtobufLogs();

// While alive, libprotobuf lines raised on this thread are kept here
// instead of logged (it installs the handler if need be). Not thread-safe; one
// per thread at a time (nesting keeps the inner one).
class ProtobufErrorCapture {
 public:
  ProtobufErrorCapture();
  ~ProtobufErrorCapture();
  ProtobufErrorCapture(const ProtobufErrorCapture&) = delete;
  ProtobufErrorCapture& operator=(const ProtobufErrorCapture&) = delete;

  // message() is the first line captured ("" if none).
  const std::string& message() const { return message_; }

  // Called by the handler.
  void Capture(const std::string& message) {
    if (message_.empty()) message_ = message;
  }

 private:
  std::string message_;
  ProtobufErrorCapture* const outer_;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_BASE_PROTO_LOG_H_
