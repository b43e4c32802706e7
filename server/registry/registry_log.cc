// Registry: the public admin writes, each the write itself (…Unlogged())
// followed by its one log line (admin_write_log.h).
#include "server/registry/admin_write_log.h"
#include "server/registry/registry.h"

namespace scopekeeper {
namespace {

// Revision() is the revision a StatusOr's value reports, 0 on error.
template <typename T, typename F>
uint64_t Revision(const absl::StatusOr<T>& result, F revision_of) {
  return result.ok() ? revision_of(*result) : 0;
}

}  // namespace

absl::StatusOr<uint64_t> Registry::PutPolicy(const v1::Policy& policy,
                                             absl::string_view actor) {
  absl::StatusOr<uint64_t> revision = PutPolicyUnlogged(policy, actor);
  LogAdminWrite({"PutPolicy", actor, {}, "", revision.value_or(0)},
                revision.status());
  return revision;
}

absl::StatusOr<v1::CreateKeyResponse> Registry::CreateKey(
    const v1::CreateKeyRequest& request, absl::string_view actor) {
  absl::StatusOr<v1::CreateKeyResponse> created =
      CreateKeyUnlogged(request, actor);
  // Never the secret, nor the key's name (free text).
  LogAdminWrite({"CreateKey",
                 actor,
                 {{"key_id", created.ok() ? created->key().key_id() : ""}},
                 request.organization_id(),
                 Revision(created, [](const auto& r) { return r.revision(); })},
                created.status());
  return created;
}

// KeyWrite() is the line of a write to an existing key: its id from the
// request, its organization and revision from the key it returned.
static AdminWrite KeyWrite(absl::string_view action, absl::string_view actor,
                           const std::string& key_id,
                           const absl::StatusOr<v1::Key>& key) {
  return {action,
          actor,
          {{"key_id", key_id}},
          key.ok() ? key->organization_id() : "",
          Revision(key, [](const v1::Key& k) { return k.revision(); })};
}

absl::StatusOr<v1::Key> Registry::GrantScopes(
    const v1::GrantScopesRequest& request, absl::string_view actor) {
  absl::StatusOr<v1::Key> key = GrantScopesUnlogged(request, actor);
  LogAdminWrite(KeyWrite("GrantScopes", actor, request.key_id(), key),
                key.status());
  return key;
}

absl::StatusOr<v1::Key> Registry::RevokeScopes(
    const v1::RevokeScopesRequest& request, absl::string_view actor) {
  absl::StatusOr<v1::Key> key = RevokeScopesUnlogged(request, actor);
  LogAdminWrite(KeyWrite("RevokeScopes", actor, request.key_id(), key),
                key.status());
  return key;
}

absl::StatusOr<v1::Key> Registry::RevokeKey(const v1::RevokeKeyRequest& request,
                                            absl::string_view actor) {
  // Not the reason: free text.
  absl::StatusOr<v1::Key> key = RevokeKeyUnlogged(request, actor);
  LogAdminWrite(KeyWrite("RevokeKey", actor, request.key_id(), key),
                key.status());
  return key;
}

absl::StatusOr<v1::CreateKeyResponse> Registry::RotateKey(
    const v1::RotateKeyRequest& request, absl::string_view actor) {
  absl::StatusOr<v1::CreateKeyResponse> rotated =
      RotateKeyUnlogged(request, actor);
  LogAdminWrite({"RotateKey",
                 actor,
                 {{"key_id", request.key_id()}},
                 rotated.ok() ? rotated->key().organization_id() : "",
                 Revision(rotated, [](const auto& r) { return r.revision(); })},
                rotated.status());
  return rotated;
}

absl::StatusOr<v1::App> Registry::PutApp(const v1::PutAppRequest& request,
                                         absl::string_view actor) {
  uint64_t revision = 0;
  absl::StatusOr<v1::App> app = PutAppUnlogged(request, actor, &revision);
  LogAdminWrite(
      {"PutApp", actor, {{"app_id", request.app().app_id()}}, "", revision},
      app.status());
  return app;
}

absl::StatusOr<v1::Installation> Registry::ApproveInstallation(
    const v1::ApproveInstallationRequest& request, absl::string_view actor) {
  uint64_t revision = 0;
  absl::StatusOr<v1::Installation> installation =
      ApproveInstallationUnlogged(request, actor, &revision);
  LogAdminWrite({"ApproveInstallation",
                 actor,
                 {{"installation_id",
                   installation.ok() ? installation->installation_id() : ""},
                  {"app_id", request.app_id()}},
                 request.organization_id(),
                 revision},
                installation.status());
  return installation;
}

absl::StatusOr<v1::CreateBackupResponse> Registry::CreateBackup(
    const v1::CreateBackupRequest& request, absl::string_view actor) {
  absl::StatusOr<v1::CreateBackupResponse> backup =
      CreateBackupUnlogged(request);
  LogAdminWrite({"CreateBackup",
                 actor,
                 {{"path", request.destination()}},
                 "",
                 Revision(backup, [](const auto& r) { return r.revision(); })},
                backup.status());
  return backup;
}

}  // namespace scopekeeper
