// Registry: keys. Creation, reads, grants, revocation and rotation.
#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/redact.h"
#include "base/status_macros.h"
#include "base/time_util.h"
#include "server/policy/key_secret.h"
#include "server/policy/names.h"
#include "server/registry/registry.h"

namespace scopekeeper {
namespace {

constexpr absl::string_view kDefaultKeyPrefix = "sk";
constexpr size_t kMaxKeyNameLength = 256;

// KeyPrefixFor() is the prefix of secrets of a key valid for `apis`: the
// key_prefix of the first API, "sk" when it has none.
std::string KeyPrefixFor(
    const PolicySnapshot& policy,
    const google::protobuf::RepeatedPtrField<std::string>& apis) {
  if (!apis.empty()) {
    const CompiledApi* first = policy.FindApi(apis[0]);
    if (first != nullptr && !first->key_prefix.empty()) {
      return first->key_prefix;
    }
  }
  return std::string(kDefaultKeyPrefix);
}

// RequireChangeable() refuses to change a revoked key (revocation is final)
// and, unless `allow_expired`, an expired one (a grant or a new secret would
// never work: the key stays EXPIRED).
absl::Status RequireChangeable(const storage::KeyRecord& record, absl::Time now,
                               bool allow_expired) {
  const v1::Key& key = record.key();
  if (key.status() == v1::REVOKED) {
    return absl::FailedPreconditionError(
        absl::StrCat("key_id: key ", Quote(key.key_id()), " is revoked"));
  }
  if (!allow_expired && key.has_expire_time() &&
      FromProtoTime(key.expire_time()) <= now) {
    return absl::FailedPreconditionError(absl::StrCat(
        "key_id: key ", Quote(key.key_id()), " expired at ",
        absl::FormatTime(absl::RFC3339_sec, FromProtoTime(key.expire_time()),
                         absl::UTCTimeZone())));
  }
  return absl::OkStatus();
}

// KeyIdForRequest() is the key_id of the key CreateKey makes for
// `request_id` in `organization_id`: the same for every repetition of the
// call, on every replica, and shaped like GenerateId("key") ids.
std::string KeyIdForRequest(absl::string_view organization_id,
                            absl::string_view request_id) {
  const SecretDigest digest = HashSecret(
      absl::StrCat("scopekeeper/create-key-request/", organization_id.size(),
                   ":", organization_id, "/", request_id));
  return absl::StrCat("key_",
                      absl::BytesToHexString(digest.view().substr(0, 12)));
}

bool Names(const google::protobuf::RepeatedPtrField<std::string>& list,
           const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

absl::StatusOr<storage::KeyRecord> Registry::ReadKeyForUpdate(
    absl::string_view key_id) {
  SK_ASSIGN_OR_RETURN(std::optional<storage::KeyRecord> record,
                      store_->GetKeyById(key_id));
  if (!record.has_value()) {
    return absl::NotFoundError(absl::StrCat("key_id: no key ", Quote(key_id)));
  }
  return *std::move(record);
}

Registry::Prepared Registry::KeyChange(
    storage::KeyRecord before, storage::KeyRecord after,
    absl::string_view action, absl::string_view actor,
    const google::protobuf::Message& request) const {
  Prepared change;
  // Built from `before` as read: guarded on its revision (0: a new key).
  change.mutation.guards.push_back({storage::Guard::Kind::kKey,
                                    after.key().key_id(),
                                    before.key().revision()});
  change.mutation.audit_event =
      NewAuditEvent(action, actor, &after.key(), AuditDetail(request));
  change.mutation.put_keys.push_back(std::move(after));
  change.before.push_back(std::move(before));
  return change;
}

absl::StatusOr<storage::KeyRecord> Registry::CommitKeyChange(
    absl::string_view key_id, absl::string_view action, absl::string_view actor,
    const google::protobuf::Message& request,
    absl::FunctionRef<absl::StatusOr<bool>(const storage::KeyRecord& before,
                                           storage::KeyRecord* after)>
        change,
    uint64_t* revision) {
  SK_RETURN_IF_ERROR(ValidateId("key_id", key_id));
  storage::KeyRecord result;
  SK_ASSIGN_OR_RETURN(
      const uint64_t written,
      committer_->Commit(
          /*barrier=*/false, [&]() -> absl::StatusOr<std::optional<Prepared>> {
            SK_ASSIGN_OR_RETURN(storage::KeyRecord before,
                                ReadKeyForUpdate(key_id));
            storage::KeyRecord after = before;
            SK_ASSIGN_OR_RETURN(const bool changed, change(before, &after));
            if (!changed) {
              result = std::move(before);
              return std::nullopt;
            }
            result = after;
            return KeyChange(std::move(before), std::move(after), action, actor,
                             request);
          }));
  if (written != 0) {
    result.mutable_key()->set_revision(written);
  } else {
    // Nothing to write: answer once the state that was read is served.
    SK_RETURN_IF_ERROR(committer_->AwaitVisible(result.key().revision()));
  }
  if (revision != nullptr) *revision = written;
  return result;
}

v1::CreateKeyResponse Registry::SecretResponse(const storage::KeyRecord& record,
                                               std::string secret,
                                               uint64_t revision) const {
  v1::CreateKeyResponse response;
  *response.mutable_key() = ToApiKey(record);
  response.set_secret(std::move(secret));
  response.set_revision(revision);
  return response;
}

absl::StatusOr<v1::CreateKeyResponse> Registry::CreateKeyUnlogged(
    const v1::CreateKeyRequest& request, absl::string_view actor) {
  // Validated against the serving state: first hold every change made
  // before this call, on any replica.
  SK_RETURN_IF_ERROR(committer_->CatchUp());
  const std::shared_ptr<const PolicySnapshot> policy = state_->policy();
  const absl::Time now = clock_->Now();
  SK_RETURN_IF_ERROR(ValidateId("organization_id", request.organization_id()));
  SK_RETURN_IF_ERROR(ValidateText("name", request.name(), kMaxKeyNameLength));
  if (!request.environment().empty()) {
    SK_RETURN_IF_ERROR(ValidateId("environment", request.environment()));
  }
  if (request.apis_size() > kMaxApisPerKey) {
    return absl::InvalidArgumentError(
        absl::StrCat("apis: more than ", kMaxApisPerKey, " APIs"));
  }
  for (int i = 0; i < request.apis_size(); ++i) {
    const std::string field = absl::StrCat("apis[", i, "]");
    SK_RETURN_IF_ERROR(ValidateApiName(field, request.apis(i)));
    if (policy->FindApi(request.apis(i)) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": unknown API ", Quote(request.apis(i))));
    }
  }
  SK_RETURN_IF_ERROR(ValidateScopeList(*policy, request.scopes(), "scopes",
                                       /*allow_undeclared=*/false));
  SK_RETURN_IF_ERROR(ValidateBundles(*policy, request.bundles(), "bundles",
                                     /*allow_undeclared=*/false));
  if (!request.installation_id().empty()) {
    SK_RETURN_IF_ERROR(
        ValidateId("installation_id", request.installation_id()));
    const v1::Installation* installation =
        state_->apps()->FindInstallation(request.installation_id());
    if (installation == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("installation_id: no installation ",
                       Quote(request.installation_id())));
    }
    if (installation->organization_id() != request.organization_id()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "installation_id: installation ", Quote(request.installation_id()),
          " belongs to another organization"));
    }
  }
  if (request.has_expire_time()) {
    SK_RETURN_IF_ERROR(
        ValidateFutureTime("expire_time", request.expire_time(), now));
  }

  SK_ASSIGN_OR_RETURN(NewSecret secret,
                      GenerateSecret(KeyPrefixFor(*policy, request.apis())));
  std::string key_id;
  if (request.request_id().empty()) {
    SK_ASSIGN_OR_RETURN(key_id, GenerateId("key"));
  } else {
    SK_RETURN_IF_ERROR(ValidateId("request_id", request.request_id()));
    key_id = KeyIdForRequest(request.organization_id(), request.request_id());
  }
  storage::KeyRecord record;
  v1::Key* key = record.mutable_key();
  key->set_key_id(key_id);
  key->set_organization_id(request.organization_id());
  key->set_name(request.name());
  for (const std::string& api : request.apis()) {
    AddUnique(key->mutable_apis(), api);
  }
  key->set_environment(request.environment());
  key->set_installation_id(request.installation_id());
  for (const std::string& scope : request.scopes()) {
    const bool seen =
        std::any_of(key->grants().begin(), key->grants().end(),
                    [&](const v1::Grant& g) { return g.scope() == scope; });
    if (!seen) key->add_grants()->set_scope(scope);
  }
  for (const std::string& b : request.bundles()) {
    AddUnique(key->mutable_bundles(), b);
  }
  key->set_status(v1::ACTIVE);
  *key->mutable_create_time() = ToProtoTime(now);
  if (request.has_expire_time()) {
    *key->mutable_expire_time() = request.expire_time();
  }
  key->set_display_prefix(secret.display_prefix);
  record.add_secrets()->set_sha256(
      std::string(HashSecret(secret.secret).view()));

  // With a request_id, the key may exist already: created by an earlier
  // call with that id (possibly on another replica) whose answer was lost.
  std::optional<storage::KeyRecord> earlier;
  SK_ASSIGN_OR_RETURN(
      const uint64_t revision,
      committer_->Commit(
          /*barrier=*/false, [&]() -> absl::StatusOr<std::optional<Prepared>> {
            if (!request.request_id().empty()) {
              SK_ASSIGN_OR_RETURN(earlier, store_->GetKeyById(key_id));
              if (earlier.has_value()) return std::nullopt;
            }
            // Guarded on revision 0: a concurrent call with the same
            // request_id loses and, rebuilt, finds the key.
            return KeyChange(storage::KeyRecord(), record, "CreateKey", actor,
                             request);
          }));
  if (earlier.has_value()) {
    SK_RETURN_IF_ERROR(committer_->AwaitVisible(earlier->key().revision()));
    v1::CreateKeyResponse replay =
        SecretResponse(*earlier, "", earlier->key().revision());
    replay.set_replayed(true);
    return replay;
  }
  record.mutable_key()->set_revision(revision);
  return SecretResponse(record, std::move(secret.secret), revision);
}

absl::StatusOr<v1::Key> Registry::GetKey(const v1::GetKeyRequest& request) {
  SK_RETURN_IF_ERROR(ValidateId("key_id", request.key_id()));
  SK_ASSIGN_OR_RETURN(storage::KeyRecord record,
                      ReadKeyForUpdate(request.key_id()));
  // The store may hold a change not yet durable: show it once it is.
  SK_RETURN_IF_ERROR(committer_->AwaitVisible(record.key().revision()));
  return ToApiKey(record);
}

absl::StatusOr<v1::ListKeysResponse> Registry::ListKeys(
    const v1::ListKeysRequest& request) {
  if (!request.organization_id().empty()) {
    SK_RETURN_IF_ERROR(
        ValidateId("organization_id", request.organization_id()));
  }
  SK_ASSIGN_OR_RETURN(const int page_size, PageSize(request.page_size()));
  if (!request.page_token().empty()) {
    SK_RETURN_IF_ERROR(ValidateId("page_token", request.page_token()));
  }
  std::optional<absl::Time> unused_since;
  if (request.has_unused_for()) {
    SK_RETURN_IF_ERROR(
        ValidateProtoDuration("unused_for", request.unused_for()));
    unused_since = clock_->Now() - FromProtoDuration(request.unused_for());
  }
  v1::ListKeysResponse response;
  std::string after = request.page_token();
  // The store may hold changes not yet durable: answer once they are.
  uint64_t newest = 0;
  while (true) {
    SK_ASSIGN_OR_RETURN(
        std::vector<storage::KeyRecord> batch,
        store_->ListKeys(request.organization_id(), after, page_size + 1));
    for (const storage::KeyRecord& record : batch) {
      after = record.key().key_id();
      newest = std::max(newest, record.key().revision());
      if (!request.include_revoked() && record.key().status() == v1::REVOKED) {
        continue;
      }
      v1::Key key = ToApiKey(record);
      if (unused_since.has_value() && LastActivity(key) > *unused_since) {
        continue;
      }
      if (response.keys_size() == page_size) {
        // One more matching key exists: the page is full.
        response.set_next_page_token(response.keys().rbegin()->key_id());
        break;
      }
      *response.add_keys() = std::move(key);
    }
    if (!response.next_page_token().empty() ||
        static_cast<int>(batch.size()) < page_size + 1) {
      break;
    }
  }
  SK_RETURN_IF_ERROR(committer_->AwaitVisible(newest));
  return response;
}

absl::StatusOr<v1::Key> Registry::GrantScopesUnlogged(
    const v1::GrantScopesRequest& request, absl::string_view actor) {
  // Validated against the serving state: first hold every change made
  // before this call, on any replica.
  SK_RETURN_IF_ERROR(committer_->CatchUp());
  const std::shared_ptr<const PolicySnapshot> policy = state_->policy();
  SK_RETURN_IF_ERROR(ValidateScopeChange(*policy, request, "grant",
                                         /*allow_undeclared=*/false));
  if (request.has_expire_time()) {
    SK_RETURN_IF_ERROR(ValidateFutureTime("expire_time", request.expire_time(),
                                          clock_->Now()));
  }
  SK_ASSIGN_OR_RETURN(
      storage::KeyRecord record,
      CommitKeyChange(
          request.key_id(), "GrantScopes", actor, request,
          [&](const storage::KeyRecord& before,
              storage::KeyRecord* after) -> absl::StatusOr<bool> {
            SK_RETURN_IF_ERROR(RequireChangeable(before, clock_->Now(),
                                                 /*allow_expired=*/false));
            v1::Key* key = after->mutable_key();
            auto* grants = key->mutable_grants();
            for (const std::string& scope : request.scopes()) {
              // A new grant of a scope replaces the previous one (and its
              // expiry).
              grants->erase(std::remove_if(grants->begin(), grants->end(),
                                           [&](const v1::Grant& g) {
                                             return g.scope() == scope;
                                           }),
                            grants->end());
              v1::Grant* grant = key->add_grants();
              grant->set_scope(scope);
              if (request.has_expire_time()) {
                *grant->mutable_expire_time() = request.expire_time();
              }
            }
            if (key->bundles_size() + request.bundles_size() >
                kMaxBundlesPerKey) {
              return absl::InvalidArgumentError(absl::StrCat(
                  "bundles: a key holds at most ", kMaxBundlesPerKey));
            }
            for (const std::string& b : request.bundles()) {
              AddUnique(key->mutable_bundles(), b);
            }
            if (key->grants_size() > static_cast<int>(kMaxScopesPerRequest)) {
              return absl::InvalidArgumentError(
                  absl::StrCat("scopes: a key holds at most ",
                               kMaxScopesPerRequest, " grants"));
            }
            return true;
          }));
  return ToApiKey(record);
}

absl::StatusOr<v1::Key> Registry::RevokeScopesUnlogged(
    const v1::RevokeScopesRequest& request, absl::string_view actor) {
  // Validated against the serving state: first hold every change made
  // before this call, on any replica.
  SK_RETURN_IF_ERROR(committer_->CatchUp());
  const std::shared_ptr<const PolicySnapshot> policy = state_->policy();
  // Names no longer declared may still be removed.
  SK_RETURN_IF_ERROR(ValidateScopeChange(*policy, request, "revoke",
                                         /*allow_undeclared=*/true));
  SK_ASSIGN_OR_RETURN(
      storage::KeyRecord record,
      CommitKeyChange(
          request.key_id(), "RevokeScopes", actor, request,
          [&](const storage::KeyRecord& before,
              storage::KeyRecord* after) -> absl::StatusOr<bool> {
            // Taking scopes from an expired key is fine (and may be
            // cleanup); from a revoked one it would write a revision that
            // changes nothing.
            SK_RETURN_IF_ERROR(RequireChangeable(before, clock_->Now(),
                                                 /*allow_expired=*/true));
            v1::Key* key = after->mutable_key();
            auto* grants = key->mutable_grants();
            grants->erase(std::remove_if(grants->begin(), grants->end(),
                                         [&](const v1::Grant& g) {
                                           return Names(request.scopes(),
                                                        g.scope());
                                         }),
                          grants->end());
            auto* bundles = key->mutable_bundles();
            bundles->erase(std::remove_if(bundles->begin(), bundles->end(),
                                          [&](const std::string& b) {
                                            return Names(request.bundles(), b);
                                          }),
                           bundles->end());
            return true;
          }));
  return ToApiKey(record);
}

absl::StatusOr<v1::Key> Registry::RevokeKeyUnlogged(
    const v1::RevokeKeyRequest& request, absl::string_view actor) {
  SK_RETURN_IF_ERROR(ValidateText("reason", request.reason()));
  // Validated against the serving state: first hold every change made
  // before this call, on any replica.
  SK_RETURN_IF_ERROR(committer_->CatchUp());
  SK_ASSIGN_OR_RETURN(
      storage::KeyRecord record,
      CommitKeyChange(request.key_id(), "RevokeKey", actor, request,
                      [&](const storage::KeyRecord& before,
                          storage::KeyRecord* after) -> absl::StatusOr<bool> {
                        // Already revoked: nothing to write, but the call still
                        // returns only once the revoke it read is applied.
                        if (before.key().status() == v1::REVOKED) return false;
                        v1::Key* key = after->mutable_key();
                        key->set_status(v1::REVOKED);
                        *key->mutable_revoke_time() =
                            ToProtoTime(clock_->Now());
                        key->set_revoke_reason(request.reason());
                        return true;
                      }));
  return ToApiKey(record);
}

absl::StatusOr<v1::CreateKeyResponse> Registry::RotateKeyUnlogged(
    const v1::RotateKeyRequest& request, absl::string_view actor) {
  if (request.has_grace_period()) {
    SK_RETURN_IF_ERROR(
        ValidateProtoDuration("grace_period", request.grace_period()));
  }
  // Validated against the serving state: first hold every change made
  // before this call, on any replica.
  SK_RETURN_IF_ERROR(committer_->CatchUp());
  const absl::Time now = clock_->Now();
  const absl::Duration grace = FromProtoDuration(request.grace_period());
  NewSecret secret;
  uint64_t revision = 0;
  SK_ASSIGN_OR_RETURN(
      storage::KeyRecord record,
      CommitKeyChange(
          request.key_id(), "RotateKey", actor, request,
          [&](const storage::KeyRecord& before,
              storage::KeyRecord* after) -> absl::StatusOr<bool> {
            SK_RETURN_IF_ERROR(
                RequireChangeable(before, now, /*allow_expired=*/false));
            SK_ASSIGN_OR_RETURN(
                secret, GenerateSecret(KeyPrefixFor(*state_->policy(),
                                                    before.key().apis())));
            after->clear_secrets();
            // Old secrets: keep those still valid after `now`, ending at
            // most at now + grace; drop the rest.
            const absl::Time old_until = now + grace;
            for (const storage::SecretHash& old : before.secrets()) {
              const absl::Time until = std::min(
                  old_until,
                  FromProtoTimeOr(old.expire_time(), absl::InfiniteFuture()));
              if (until <= now) continue;
              storage::SecretHash* kept = after->add_secrets();
              kept->set_sha256(old.sha256());
              *kept->mutable_expire_time() = ToProtoTime(until);
            }
            after->add_secrets()->set_sha256(
                std::string(HashSecret(secret.secret).view()));
            after->mutable_key()->set_display_prefix(secret.display_prefix);
            return true;
          },
          &revision));
  return SecretResponse(record, std::move(secret.secret), revision);
}

}  // namespace scopekeeper
