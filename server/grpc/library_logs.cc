#include "server/grpc/library_logs.h"

#include <grpc/support/log.h>

#include "base/log.h"
#include "base/proto_log.h"

namespace scopekeeper {
namespace {

void GrpcLog(gpr_log_func_args* args) {
  const LogLevel level = args->severity == GPR_LOG_SEVERITY_ERROR
                             ? LogLevel::kError
                             : LogLevel::kInfo;
  LogLibraryLine(level, "grpc", args->file, args->line,
                 args->message != nullptr ? args->message : "");
}

}  // namespace

void RouteLibraryLogs() {
  gpr_set_log_function(&GrpcLog);
  RouteProtobufLogs();
}

}  // namespace scopekeeper
