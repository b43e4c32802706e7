// LogAdminWrite(): one log line per admin write — each Admin RPC that
// changes state, and CreateBackup — saying what was done, by whom, to what,
// at which revision and how it ended:
//
//   level=info msg="admin write" action=RevokeKey actor=admin-token
//     key_id=key_… organization_id=org_abc123 revision=12 outcome=ok
//   level=warning msg="admin write" action=CreateKey actor=mtls:CN=ops,O=Ex
//     organization_id=org_abc123 outcome=INVALID_ARGUMENT
//     error="scopes[0]: scope \"orders_rd\" is not declared"
//
// The audit trail records the mutations that happened; this line also
// records the ones refused, and goes where operators look first. Never in
// it: a secret, a token, or a request field that may hold one (a key's
// name, a revoke reason); caller values go through base/redact.h.
#ifndef SCOPEKEEPER_SERVER_REGISTRY_ADMIN_WRITE_LOG_H_
#define SCOPEKEEPER_SERVER_REGISTRY_ADMIN_WRITE_LOG_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace scopekeeper {

struct AdminWrite {
  absl::string_view action;  // "CreateKey"
  absl::string_view actor;   // "admin-token", "mtls:<subject>"
  // What it was about, in order: ("key_id", …), ("app_id", …), ("path", …).
  std::vector<std::pair<absl::string_view, std::string>> objects;
  std::string organization_id;
  uint64_t revision = 0;  // the revision the write returned; 0: none
};

// LogAdminWrite() logs `write` with its outcome: info when `outcome` is OK,
// warning (with the error message) otherwise.
void LogAdminWrite(const AdminWrite& write, const absl::Status& outcome);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_REGISTRY_ADMIN_WRITE_LOG_H_
