// Status propagation macros (Debian's absl 20220623 has none).
#ifndef SCOPEKEEPER_BASE_STATUS_MACROS_H_
#define SCOPEKEEPER_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SK_STATUS_CONCAT_INNER_(a, b) a##b
#define SK_STATUS_CONCAT_(a, b) SK_STATUS_CONCAT_INNER_(a, b)

// SK_RETURN_IF_ERROR(expr) returns the absl::Status of `expr` if it is not OK.
#define SK_RETURN_IF_ERROR(expr)              \
  do {                                        \
    const ::absl::Status sk_status_ = (expr); \
    if (!sk_status_.ok()) return sk_status_;  \
  } while (false)

// SK_ASSIGN_OR_RETURN(lhs, expr) evaluates the absl::StatusOr `expr`, returns
// its status if not OK, else assigns (moves) its value to `lhs`.
#define SK_ASSIGN_OR_RETURN(lhs, expr)                                      \
  SK_ASSIGN_OR_RETURN_IMPL_(SK_STATUS_CONCAT_(sk_statusor_, __LINE__), lhs, \
                            expr)
#define SK_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                              \
  if (!statusor.ok()) return statusor.status();        \
  lhs = std::move(statusor).value()

#endif  // SCOPEKEEPER_BASE_STATUS_MACROS_H_
