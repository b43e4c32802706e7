#include "server/registry/registry.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "base/time_util.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "server/decision/compiled_key.h"
#include "server/policy/key_secret.h"
#include "server/policy/names.h"
#include "server/policy/policy.h"

namespace scopekeeper {
namespace {

constexpr absl::string_view kDefaultKeyPrefix = "sk";
constexpr size_t kMaxKeyNameLength = 256;

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options)
           .ok()) {
    return "{}";
  }
  return out;
}

// Validates a list of scope names against the policy: each well-formed and
// declared (unless `allow_undeclared`), at most kMaxScopesPerRequest.
absl::Status ValidateScopes(
    const PolicySnapshot& policy,
    const google::protobuf::RepeatedPtrField<std::string>& scopes,
    absl::string_view field, bool allow_undeclared) {
  if (scopes.size() > static_cast<int>(kMaxScopesPerRequest)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": more than ", kMaxScopesPerRequest, " scopes"));
  }
  for (int i = 0; i < scopes.size(); ++i) {
    const std::string item = absl::StrCat(field, "[", i, "]");
    SK_RETURN_IF_ERROR(ValidateScopeName(item, scopes[i]));
    if (!allow_undeclared && policy.ScopeId(scopes[i]) < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(item, ": undeclared scope ", Quote(scopes[i])));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateBundles(
    const PolicySnapshot& policy,
    const google::protobuf::RepeatedPtrField<std::string>& bundles,
    absl::string_view field, bool allow_undeclared) {
  if (bundles.size() > kMaxBundlesPerKey) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": more than ", kMaxBundlesPerKey, " bundles"));
  }
  for (int i = 0; i < bundles.size(); ++i) {
    const std::string item = absl::StrCat(field, "[", i, "]");
    SK_RETURN_IF_ERROR(ValidateScopeName(item, bundles[i]));
    if (!allow_undeclared && policy.FindBundle(bundles[i]) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(item, ": unknown bundle ", Quote(bundles[i])));
    }
  }
  return absl::OkStatus();
}

// Validates a GrantScopes or RevokeScopes request's key_id and the scopes
// and bundles it names (at least one; `verb` says which change it is).
template <typename Request>
absl::Status ValidateScopeChange(const PolicySnapshot& policy,
                                 const Request& request, absl::string_view verb,
                                 bool allow_undeclared) {
  SK_RETURN_IF_ERROR(ValidateId("key_id", request.key_id()));
  if (request.scopes_size() == 0 && request.bundles_size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("scopes: name at least one scope or bundle to ", verb));
  }
  SK_RETURN_IF_ERROR(
      ValidateScopes(policy, request.scopes(), "scopes", allow_undeclared));
  return ValidateBundles(policy, request.bundles(), "bundles",
                         allow_undeclared);
}

// An expiry given in a request must be valid and in the future.
absl::Status ValidateFutureTime(absl::string_view field,
                                const google::protobuf::Timestamp& t,
                                absl::Time now) {
  SK_RETURN_IF_ERROR(ValidateProtoTime(field, t));
  if (FromProtoTime(t) <= now) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": in the past"));
  }
  return absl::OkStatus();
}

void AddUnique(google::protobuf::RepeatedPtrField<std::string>* list,
               const std::string& value) {
  if (std::find(list->begin(), list->end(), value) == list->end()) {
    *list->Add() = value;
  }
}

}  // namespace

absl::Status Registry::Load() {
  std::lock_guard<std::mutex> lock(write_mu_);
  SK_ASSIGN_OR_RETURN(revision_, store_->Revision());
  SK_ASSIGN_OR_RETURN(std::optional<v1::Policy> stored, store_->GetPolicy());
  std::shared_ptr<const PolicySnapshot> policy = PolicySnapshot::Empty();
  if (stored.has_value()) {
    absl::StatusOr<std::shared_ptr<const PolicySnapshot>> compiled =
        PolicySnapshot::Compile(*stored, revision_);
    if (!compiled.ok()) {
      return absl::DataLossError(absl::StrCat(
          "stored policy does not validate: ", compiled.status().message()));
    }
    policy = *std::move(compiled);
  }
  state_->set_policy(policy);
  std::shared_ptr<const AppDirectory> apps =
      std::make_shared<const AppDirectory>();
  SK_RETURN_IF_ERROR(store_->ForEachApp([&](const v1::App& app) {
    apps = apps->WithApp(app);
    return absl::OkStatus();
  }));
  SK_RETURN_IF_ERROR(
      store_->ForEachInstallation([&](const v1::Installation& installation) {
        apps = apps->WithInstallation(installation);
        return absl::OkStatus();
      }));
  state_->set_apps(apps);
  KeyCache& cache = state_->cache();
  keys_active_ = 0;
  keys_revoked_ = 0;
  // This thread reads and compiles; the loader inserts, on the other core.
  KeyCache::BulkLoader loader(&cache);
  size_t loaded = 0;
  const absl::Status scanned =
      store_->ForEachKey([&](const storage::KeyRecord& r) {
        CountKey(r, +1);
        // A bounded cache starts with the first keys that fit; the others
        // are read from the store when first used.
        if (cache.bounded() && loaded + r.secrets_size() > cache.capacity()) {
          return absl::OkStatus();
        }
        std::shared_ptr<const CompiledKey> compiled =
            CompileKey(r, *policy, *apps);
        for (const storage::SecretHash& secret : r.secrets()) {
          loader.Add(SecretDigest::FromBytes(secret.sha256()),
                     {compiled, FromProtoTimeOr(secret.expire_time(),
                                                absl::InfiniteFuture())});
          ++loaded;
        }
        return absl::OkStatus();
      });
  loader.Finish();
  SK_RETURN_IF_ERROR(scanned);
  state_->PublishRevision(revision_);
  std::lock_guard<std::mutex> pending_lock(pending_mu_);
  applied_revision_ = revision_;
  return absl::OkStatus();
}

void Registry::RecompileCachedKeys(
    const PolicySnapshot& policy, const AppDirectory& apps,
    absl::FunctionRef<bool(const CompiledKey&)> affected) {
  int64_t failed = 0;
  absl::Status first_failure;
  state_->cache().Recompile([&](const std::shared_ptr<const CompiledKey>& key)
                                -> std::shared_ptr<const CompiledKey> {
    if (!affected(*key)) return key;
    absl::StatusOr<std::optional<storage::KeyRecord>> record =
        store_->GetKeyById(key->key_id());
    if (record.ok() && record->has_value()) {
      return CompileKey(**record, policy, apps);
    }
    if (failed++ == 0) {
      first_failure =
          record.ok()
              ? absl::DataLossError(absl::StrCat("key ", Quote(key->key_id()),
                                                 " is not in the store"))
              : record.status();
    }
    // Not left as it was (an app change keeps the policy generation, so the
    // old grants would stand): decisions recompile it themselves.
    return StaleKey(*key);
  });
  if (failed > 0) {
    // One line, however many keys (a store outage would fail them all).
    LogError(absl::StrCat(
        failed, " cached keys could not be recompiled (first: ",
        first_failure.ToString(),
        "); decisions recompile them from the store, failing closed until it "
        "can be read"));
  }
}

absl::StatusOr<uint64_t> Registry::PutPolicy(const v1::Policy& policy,
                                             absl::string_view actor) {
  uint64_t revision = 0;
  // A barrier: the cached keys it recompiles must hold every change.
  SK_RETURN_IF_ERROR(Mutate(/*barrier=*/true, [&]() -> absl::Status {
    revision = revision_ + 1;
    SK_ASSIGN_OR_RETURN(std::shared_ptr<const PolicySnapshot> snapshot,
                        PolicySnapshot::Compile(policy, revision));
    storage::Mutation m;
    m.revision = revision;
    m.put_policy = policy;
    m.audit_event = NewAuditEvent(
        revision, "PutPolicy", actor, nullptr,
        absl::StrCat("{\"scopes\":", policy.scopes_size(),
                     ",\"apis\":", policy.apis_size(),
                     ",\"bundles\":", policy.bundles_size(), "}"));
    return WriteMutation(m, [this, snapshot] {
      state_->set_policy(snapshot);
      RecompileCachedKeys(*snapshot, *state_->apps(),
                          [](const CompiledKey&) { return true; });
    });
  }));
  return revision;
}

bool Registry::PolicyEquals(const v1::Policy& policy) const {
  return google::protobuf::util::MessageDifferencer::Equals(
      state_->policy()->policy(), policy);
}

v1::Policy Registry::GetPolicy() const { return state_->policy()->policy(); }

v1::Key Registry::ToApiKey(const storage::KeyRecord& record) const {
  const std::shared_ptr<const PolicySnapshot> policy = state_->policy();
  v1::Key key = KeyForApi(record, *CompileKey(record, *policy, *state_->apps()),
                          *policy, clock_->Now());
  if (usage_ != nullptr) {
    absl::StatusOr<std::optional<absl::Time>> last_use =
        usage_->LastUse(key.key_id());
    if (last_use.ok() && last_use->has_value()) {
      *key.mutable_last_used_time() = ToProtoTime(**last_use);
    }
  }
  return key;
}

absl::Time Registry::LastActivity(const v1::Key& key) const {
  if (key.has_last_used_time()) return FromProtoTime(key.last_used_time());
  return FromProtoTime(key.create_time());
}

v1::AuditEvent Registry::NewAuditEvent(uint64_t revision,
                                       absl::string_view action,
                                       absl::string_view actor,
                                       const v1::Key* key,
                                       std::string detail) const {
  v1::AuditEvent event;
  event.set_revision(revision);
  *event.mutable_time() = ToProtoTime(clock_->Now());
  event.set_actor(std::string(actor));
  event.set_action(std::string(action));
  if (key != nullptr) {
    event.set_key_id(key->key_id());
    event.set_organization_id(key->organization_id());
  }
  event.set_detail(std::move(detail));
  return event;
}

// RequireChangeable() refuses to change a revoked key (revocation is final)
// and, unless `allow_expired`, an expired one (a grant or a new secret would
// never work: the key stays EXPIRED).
static absl::Status RequireChangeable(const storage::KeyRecord& record,
                                      absl::Time now, bool allow_expired) {
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

absl::StatusOr<storage::KeyRecord> Registry::ReadKeyForUpdate(
    absl::string_view key_id) {
  SK_RETURN_IF_ERROR(ValidateId("key_id", key_id));
  SK_ASSIGN_OR_RETURN(std::optional<storage::KeyRecord> record,
                      store_->GetKeyById(key_id));
  if (!record.has_value()) {
    return absl::NotFoundError(absl::StrCat("key_id: no key ", Quote(key_id)));
  }
  return *std::move(record);
}

absl::StatusOr<uint64_t> Registry::WriteKeyChange(
    const storage::KeyRecord& old_record, storage::KeyRecord* new_record,
    absl::string_view action, absl::string_view actor, std::string detail) {
  const uint64_t revision = revision_ + 1;
  new_record->mutable_key()->set_revision(revision);
  storage::Mutation m;
  m.revision = revision;
  m.put_keys.push_back(*new_record);
  m.audit_event = NewAuditEvent(revision, action, actor, &new_record->key(),
                                std::move(detail));
  auto record = std::make_shared<const storage::KeyRecord>(*new_record);
  SK_RETURN_IF_ERROR(WriteMutation(m, [this, old_record, record] {
    if (!old_record.key().key_id().empty()) CountKey(old_record, -1);
    CountKey(*record, +1);
    // The policy and apps are those the change was built against: only
    // barriers change them, and a barrier waits for pending changes.
    std::shared_ptr<const CompiledKey> compiled =
        CompileKey(*record, *state_->policy(), *state_->apps());
    absl::flat_hash_set<std::string> kept;
    for (const storage::SecretHash& secret : record->secrets()) {
      kept.insert(secret.sha256());
      state_->cache().Upsert(
          SecretDigest::FromBytes(secret.sha256()),
          {compiled,
           FromProtoTimeOr(secret.expire_time(), absl::InfiniteFuture())});
    }
    for (const storage::SecretHash& secret : old_record.secrets()) {
      if (!kept.contains(secret.sha256())) {
        state_->cache().Erase(SecretDigest::FromBytes(secret.sha256()));
      }
    }
  }));
  return revision;
}

absl::Status Registry::Mutate(bool barrier,
                              const std::function<absl::Status()>& fn) {
  std::unique_lock<std::mutex> lock(write_mu_);
  SK_RETURN_IF_ERROR(Failure());
  if (barrier) SK_RETURN_IF_ERROR(AwaitApplied(revision_));
  const absl::Status status = fn();
  // Even a no-op or a failure read the store, which may hold unsynced
  // writes: answer only once everything written so far is durable.
  const uint64_t written = revision_;
  if (!barrier) lock.unlock();
  SK_RETURN_IF_ERROR(AwaitApplied(written));
  return status;
}

absl::Status Registry::WriteMutation(const storage::Mutation& m,
                                     std::function<void()> apply) {
  const auto start = std::chrono::steady_clock::now();
  const absl::Status status = store_->Write(m);
  if (!status.ok()) {
    if (metrics_ != nullptr) {
      metrics_->RecordStoreCommit(
          absl::FromChrono(std::chrono::steady_clock::now() - start), false);
    }
    return status;
  }
  revision_ = m.revision;
  std::lock_guard<std::mutex> lock(pending_mu_);
  pending_.push_back({m.revision, std::move(apply)});
  return absl::OkStatus();
}

absl::Status Registry::AwaitApplied(uint64_t revision) {
  std::unique_lock<std::mutex> lock(pending_mu_);
  while (applied_revision_ < revision) {
    SK_RETURN_IF_ERROR(failure_);
    if (syncing_) {
      applied_cv_.wait(lock);
      continue;
    }
    // Not written through this registry (only tests write the store
    // directly): nothing to wait for.
    if (pending_.empty()) return absl::OkStatus();
    // Become the syncer of everything written so far.
    std::vector<PendingApply> batch;
    batch.swap(pending_);
    syncing_ = true;
    lock.unlock();
    const absl::Status synced = SyncAndApply(batch);
    lock.lock();
    syncing_ = false;
    if (synced.ok()) {
      applied_revision_ = batch.back().revision;
    } else if (failure_.ok()) {
      failure_ =
          absl::UnavailableError("store sync failed; restart the server");
      LogError(absl::StrCat(
          "store sync failed at revisions ", batch.front().revision, "..",
          batch.back().revision,
          "; refusing mutations until restart: ", synced.message()));
      // Decisions waiting for a revision of the lost batch (min_revision, a
      // key read before it was durable) must not wait for it in vain.
      state_->StopAdvancing(failure_);
    }
    applied_cv_.notify_all();
  }
  return absl::OkStatus();
}

absl::Status Registry::AwaitVisible(uint64_t revision) {
  if (state_->revision() >= revision) return absl::OkStatus();
  // A writer queues its change just after its store write: once write_mu_
  // is free, every revision in the store is applied, syncing or queued.
  { std::lock_guard<std::mutex> lock(write_mu_); }
  return AwaitApplied(revision);
}

absl::Status Registry::SyncAndApply(const std::vector<PendingApply>& batch) {
  const auto start = std::chrono::steady_clock::now();
  const absl::Status status = store_->Sync();
  if (metrics_ != nullptr) {
    metrics_->RecordStoreCommit(
        absl::FromChrono(std::chrono::steady_clock::now() - start), status.ok(),
        static_cast<int>(batch.size()));
  }
  if (!status.ok()) return status;
  // Durable: now the decision path may see it, in revision order.
  for (const PendingApply& change : batch) change.apply();
  state_->PublishRevision(batch.back().revision);
  return absl::OkStatus();
}

absl::Status Registry::Failure() {
  std::lock_guard<std::mutex> lock(pending_mu_);
  return failure_;
}

void Registry::CountKey(const storage::KeyRecord& record, int delta) {
  (record.key().status() == v1::REVOKED ? keys_revoked_ : keys_active_) +=
      delta;
}

Registry::KeyCounts Registry::CountKeys() const {
  return {keys_active_.load(), keys_revoked_.load()};
}

absl::StatusOr<v1::CreateKeyResponse> Registry::CreateKey(
    const v1::CreateKeyRequest& request, absl::string_view actor) {
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
  SK_RETURN_IF_ERROR(
      ValidateScopes(*policy, request.scopes(), "scopes", false));
  SK_RETURN_IF_ERROR(
      ValidateBundles(*policy, request.bundles(), "bundles", false));
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

  absl::string_view prefix = kDefaultKeyPrefix;
  if (request.apis_size() > 0) {
    const CompiledApi* first = policy->FindApi(request.apis(0));
    if (!first->key_prefix.empty()) prefix = first->key_prefix;
  }
  SK_ASSIGN_OR_RETURN(NewSecret secret, GenerateSecret(prefix));
  SK_ASSIGN_OR_RETURN(std::string key_id, GenerateId("key"));

  storage::KeyRecord record;
  v1::Key* key = record.mutable_key();
  key->set_key_id(key_id);
  key->set_organization_id(request.organization_id());
  key->set_name(request.name());
  for (const std::string& api : request.apis())
    AddUnique(key->mutable_apis(), api);
  key->set_environment(request.environment());
  key->set_installation_id(request.installation_id());
  for (const std::string& scope : request.scopes()) {
    const bool seen =
        std::any_of(key->grants().begin(), key->grants().end(),
                    [&](const v1::Grant& g) { return g.scope() == scope; });
    if (!seen) key->add_grants()->set_scope(scope);
  }
  for (const std::string& b : request.bundles())
    AddUnique(key->mutable_bundles(), b);
  key->set_status(v1::ACTIVE);
  *key->mutable_create_time() = ToProtoTime(now);
  if (request.has_expire_time())
    *key->mutable_expire_time() = request.expire_time();
  key->set_display_prefix(secret.display_prefix);
  const SecretDigest digest = HashSecret(secret.secret);
  record.add_secrets()->set_sha256(std::string(digest.view()));

  uint64_t revision = 0;
  SK_RETURN_IF_ERROR(Mutate(/*barrier=*/false, [&]() -> absl::Status {
    SK_ASSIGN_OR_RETURN(
        revision, WriteKeyChange(storage::KeyRecord(), &record, "CreateKey",
                                 actor, ToJson(request)));
    return absl::OkStatus();
  }));
  v1::CreateKeyResponse response;
  *response.mutable_key() = ToApiKey(record);
  response.set_secret(std::move(secret.secret));
  response.set_revision(revision);
  return response;
}

absl::StatusOr<v1::Key> Registry::GetKey(const v1::GetKeyRequest& request) {
  SK_RETURN_IF_ERROR(ValidateId("key_id", request.key_id()));
  SK_ASSIGN_OR_RETURN(std::optional<storage::KeyRecord> record,
                      store_->GetKeyById(request.key_id()));
  if (!record.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("key_id: no key ", Quote(request.key_id())));
  }
  // The store may hold a change not yet durable: show it once it is.
  SK_RETURN_IF_ERROR(AwaitVisible(record->key().revision()));
  return ToApiKey(*record);
}

absl::StatusOr<v1::ListKeysResponse> Registry::ListKeys(
    const v1::ListKeysRequest& request) {
  if (!request.organization_id().empty()) {
    SK_RETURN_IF_ERROR(
        ValidateId("organization_id", request.organization_id()));
  }
  if (request.page_size() < 0) {
    return absl::InvalidArgumentError("page_size: must not be negative");
  }
  if (!request.page_token().empty()) {
    SK_RETURN_IF_ERROR(ValidateId("page_token", request.page_token()));
  }
  std::optional<absl::Time> unused_since;
  if (request.has_unused_for()) {
    SK_RETURN_IF_ERROR(
        ValidateProtoDuration("unused_for", request.unused_for()));
    unused_since = clock_->Now() - FromProtoDuration(request.unused_for());
  }
  const int page_size = request.page_size() == 0
                            ? kDefaultPageSize
                            : std::min(request.page_size(), kMaxPageSize);
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
  SK_RETURN_IF_ERROR(AwaitVisible(newest));
  return response;
}

absl::StatusOr<v1::Key> Registry::GrantScopes(
    const v1::GrantScopesRequest& request, absl::string_view actor) {
  const std::shared_ptr<const PolicySnapshot> policy = state_->policy();
  const absl::Time now = clock_->Now();
  SK_RETURN_IF_ERROR(ValidateScopeChange(*policy, request, "grant",
                                         /*allow_undeclared=*/false));
  if (request.has_expire_time()) {
    SK_RETURN_IF_ERROR(
        ValidateFutureTime("expire_time", request.expire_time(), now));
  }
  storage::KeyRecord next;
  SK_RETURN_IF_ERROR(Mutate(/*barrier=*/false, [&]() -> absl::Status {
    SK_ASSIGN_OR_RETURN(storage::KeyRecord record,
                        ReadKeyForUpdate(request.key_id()));
    SK_RETURN_IF_ERROR(
        RequireChangeable(record, clock_->Now(), /*allow_expired=*/false));
    next = record;
    v1::Key* key = next.mutable_key();
    for (const std::string& scope : request.scopes()) {
      // A new grant of a scope replaces the previous one (and its expiry).
      auto* grants = key->mutable_grants();
      grants->erase(std::remove_if(
                        grants->begin(), grants->end(),
                        [&](const v1::Grant& g) { return g.scope() == scope; }),
                    grants->end());
      v1::Grant* grant = key->add_grants();
      grant->set_scope(scope);
      if (request.has_expire_time())
        *grant->mutable_expire_time() = request.expire_time();
    }
    if (key->bundles_size() + request.bundles_size() > kMaxBundlesPerKey) {
      return absl::InvalidArgumentError(
          absl::StrCat("bundles: a key holds at most ", kMaxBundlesPerKey));
    }
    for (const std::string& b : request.bundles())
      AddUnique(key->mutable_bundles(), b);
    if (key->grants_size() > static_cast<int>(kMaxScopesPerRequest)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "scopes: a key holds at most ", kMaxScopesPerRequest, " grants"));
    }
    return WriteKeyChange(record, &next, "GrantScopes", actor, ToJson(request))
        .status();
  }));
  return ToApiKey(next);
}

absl::StatusOr<v1::Key> Registry::RevokeScopes(
    const v1::RevokeScopesRequest& request, absl::string_view actor) {
  const std::shared_ptr<const PolicySnapshot> policy = state_->policy();
  // Names no longer declared may still be removed.
  SK_RETURN_IF_ERROR(ValidateScopeChange(*policy, request, "revoke",
                                         /*allow_undeclared=*/true));
  storage::KeyRecord next;
  SK_RETURN_IF_ERROR(Mutate(/*barrier=*/false, [&]() -> absl::Status {
    SK_ASSIGN_OR_RETURN(storage::KeyRecord record,
                        ReadKeyForUpdate(request.key_id()));
    // Taking scopes from an expired key is fine (and may be cleanup); from a
    // revoked one it would write a revision that changes nothing.
    SK_RETURN_IF_ERROR(
        RequireChangeable(record, clock_->Now(), /*allow_expired=*/true));
    next = record;
    v1::Key* key = next.mutable_key();
    auto named = [](const google::protobuf::RepeatedPtrField<std::string>& list,
                    const std::string& value) {
      return std::find(list.begin(), list.end(), value) != list.end();
    };
    auto* grants = key->mutable_grants();
    grants->erase(std::remove_if(grants->begin(), grants->end(),
                                 [&](const v1::Grant& g) {
                                   return named(request.scopes(), g.scope());
                                 }),
                  grants->end());
    auto* bundles = key->mutable_bundles();
    bundles->erase(std::remove_if(bundles->begin(), bundles->end(),
                                  [&](const std::string& b) {
                                    return named(request.bundles(), b);
                                  }),
                   bundles->end());
    return WriteKeyChange(record, &next, "RevokeScopes", actor, ToJson(request))
        .status();
  }));
  return ToApiKey(next);
}

absl::StatusOr<v1::Key> Registry::RevokeKey(const v1::RevokeKeyRequest& request,
                                            absl::string_view actor) {
  SK_RETURN_IF_ERROR(ValidateText("reason", request.reason()));
  storage::KeyRecord next;
  SK_RETURN_IF_ERROR(Mutate(/*barrier=*/false, [&]() -> absl::Status {
    SK_ASSIGN_OR_RETURN(storage::KeyRecord record,
                        ReadKeyForUpdate(request.key_id()));
    next = record;
    // Already revoked: nothing to write, but Mutate() still returns only
    // once the revoke it read is applied.
    if (record.key().status() == v1::REVOKED) return absl::OkStatus();
    v1::Key* key = next.mutable_key();
    key->set_status(v1::REVOKED);
    *key->mutable_revoke_time() = ToProtoTime(clock_->Now());
    key->set_revoke_reason(request.reason());
    return WriteKeyChange(record, &next, "RevokeKey", actor, ToJson(request))
        .status();
  }));
  return ToApiKey(next);
}

absl::StatusOr<v1::CreateKeyResponse> Registry::RotateKey(
    const v1::RotateKeyRequest& request, absl::string_view actor) {
  if (request.has_grace_period()) {
    SK_RETURN_IF_ERROR(
        ValidateProtoDuration("grace_period", request.grace_period()));
  }
  const absl::Time now = clock_->Now();
  const absl::Duration grace = FromProtoDuration(request.grace_period());
  storage::KeyRecord next;
  NewSecret secret;
  uint64_t revision = 0;
  SK_RETURN_IF_ERROR(Mutate(/*barrier=*/false, [&]() -> absl::Status {
    SK_ASSIGN_OR_RETURN(storage::KeyRecord record,
                        ReadKeyForUpdate(request.key_id()));
    SK_RETURN_IF_ERROR(RequireChangeable(record, now, /*allow_expired=*/false));
    const std::shared_ptr<const PolicySnapshot> policy = state_->policy();
    absl::string_view prefix = kDefaultKeyPrefix;
    if (record.key().apis_size() > 0) {
      const CompiledApi* first = policy->FindApi(record.key().apis(0));
      if (first != nullptr && !first->key_prefix.empty())
        prefix = first->key_prefix;
    }
    SK_ASSIGN_OR_RETURN(secret, GenerateSecret(prefix));

    next = record;
    next.clear_secrets();
    // Old secrets: keep those still valid after `now`, ending at most at
    // now + grace; drop the rest.
    const absl::Time old_until = now + grace;
    for (const storage::SecretHash& old : record.secrets()) {
      const absl::Time until =
          std::min(old_until,
                   FromProtoTimeOr(old.expire_time(), absl::InfiniteFuture()));
      if (until <= now) continue;
      storage::SecretHash* kept = next.add_secrets();
      kept->set_sha256(old.sha256());
      *kept->mutable_expire_time() = ToProtoTime(until);
    }
    next.add_secrets()->set_sha256(
        std::string(HashSecret(secret.secret).view()));
    next.mutable_key()->set_display_prefix(secret.display_prefix);
    SK_ASSIGN_OR_RETURN(revision, WriteKeyChange(record, &next, "RotateKey",
                                                 actor, ToJson(request)));
    return absl::OkStatus();
  }));
  v1::CreateKeyResponse response;
  *response.mutable_key() = ToApiKey(next);
  response.set_secret(std::move(secret.secret));
  response.set_revision(revision);
  return response;
}

absl::Status Registry::WriteAppChange(storage::Mutation m,
                                      std::shared_ptr<const AppDirectory> apps,
                                      absl::string_view app_id) {
  return WriteMutation(m, [this, apps, app_id = std::string(app_id)] {
    state_->set_apps(apps);
    // Keys of this app's installations, and bound keys whose installation
    // was missing when they were compiled (no app_id yet).
    RecompileCachedKeys(*state_->policy(), *apps, [&](const CompiledKey& key) {
      return key.has_installation &&
             (key.app_id.empty() || key.app_id == app_id);
    });
  });
}

absl::StatusOr<v1::App> Registry::PutApp(const v1::PutAppRequest& request,
                                         absl::string_view actor) {
  const v1::App& app = request.app();
  SK_RETURN_IF_ERROR(ValidateId("app.app_id", app.app_id()));
  if (!app.slug().empty())
    SK_RETURN_IF_ERROR(ValidateId("app.slug", app.slug()));
  if (!app.live_version_id().empty()) {
    SK_RETURN_IF_ERROR(
        ValidateId("app.live_version_id", app.live_version_id()));
  }
  const std::shared_ptr<const PolicySnapshot> policy = state_->policy();
  SK_RETURN_IF_ERROR(ValidateScopes(*policy, app.requested_scopes(),
                                    "app.requested_scopes", false));
  v1::App stored = app;
  stored.clear_requested_scopes();
  for (const std::string& scope : app.requested_scopes()) {
    AddUnique(stored.mutable_requested_scopes(), scope);
  }

  // A barrier: builds on the app directory in force.
  SK_RETURN_IF_ERROR(Mutate(/*barrier=*/true, [&]() -> absl::Status {
    storage::Mutation m;
    m.revision = revision_ + 1;
    m.put_apps.push_back(stored);
    m.audit_event =
        NewAuditEvent(m.revision, "PutApp", actor, nullptr, ToJson(stored));
    std::shared_ptr<const AppDirectory> apps = state_->apps()->WithApp(stored);
    return WriteAppChange(std::move(m), apps, stored.app_id());
  }));
  return stored;
}

absl::StatusOr<v1::Installation> Registry::ApproveInstallation(
    const v1::ApproveInstallationRequest& request, absl::string_view actor) {
  SK_RETURN_IF_ERROR(ValidateId("organization_id", request.organization_id()));
  SK_RETURN_IF_ERROR(ValidateId("app_id", request.app_id()));
  const std::shared_ptr<const PolicySnapshot> policy = state_->policy();
  SK_RETURN_IF_ERROR(ValidateScopes(*policy, request.approved_scopes(),
                                    "approved_scopes", false));

  v1::Installation installation;
  std::shared_ptr<const AppDirectory> apps;
  // A barrier: builds on the app directory in force.
  SK_RETURN_IF_ERROR(Mutate(/*barrier=*/true, [&]() -> absl::Status {
    const std::shared_ptr<const AppDirectory> current = state_->apps();
    const v1::App* app = current->FindApp(request.app_id());
    if (app == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("app_id: no app ", Quote(request.app_id())));
    }
    if (const v1::Installation* existing = current->FindInstallationOf(
            request.organization_id(), request.app_id())) {
      installation.set_installation_id(existing->installation_id());
    } else {
      SK_ASSIGN_OR_RETURN(std::string id, GenerateId("inst"));
      installation.set_installation_id(std::move(id));
    }
    installation.set_app_id(request.app_id());
    installation.set_organization_id(request.organization_id());
    for (int i = 0; i < request.approved_scopes_size(); ++i) {
      const std::string& scope = request.approved_scopes(i);
      const auto& requested = app->requested_scopes();
      if (std::find(requested.begin(), requested.end(), scope) ==
          requested.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("approved_scopes[", i, "]: app ", Quote(app->app_id()),
                         " does not request scope ", Quote(scope)));
      }
      AddUnique(installation.mutable_approved_scopes(), scope);
    }
    *installation.mutable_approve_time() = ToProtoTime(clock_->Now());

    storage::Mutation m;
    m.revision = revision_ + 1;
    m.put_installations.push_back(installation);
    m.audit_event = NewAuditEvent(m.revision, "ApproveInstallation", actor,
                                  nullptr, ToJson(installation));
    m.audit_event->set_organization_id(request.organization_id());
    apps = current->WithInstallation(installation);
    return WriteAppChange(std::move(m), apps, request.app_id());
  }));
  return apps->WithPending(installation);
}

absl::StatusOr<v1::Installation> Registry::GetInstallation(
    const v1::GetInstallationRequest& request) const {
  SK_RETURN_IF_ERROR(ValidateId("organization_id", request.organization_id()));
  SK_RETURN_IF_ERROR(ValidateId("app_id", request.app_id()));
  const std::shared_ptr<const AppDirectory> apps = state_->apps();
  const v1::Installation* installation =
      apps->FindInstallationOf(request.organization_id(), request.app_id());
  if (installation == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no installation of app ", Quote(request.app_id()),
                     " by organization ", Quote(request.organization_id())));
  }
  return apps->WithPending(*installation);
}

absl::StatusOr<v1::ListAuditEventsResponse> Registry::ListAuditEvents(
    const v1::ListAuditEventsRequest& request) {
  storage::AuditFilter filter;
  if (!request.key_id().empty()) {
    SK_RETURN_IF_ERROR(ValidateId("key_id", request.key_id()));
    filter.key_id = request.key_id();
  }
  if (!request.organization_id().empty()) {
    SK_RETURN_IF_ERROR(
        ValidateId("organization_id", request.organization_id()));
    filter.organization_id = request.organization_id();
  }
  if (request.page_size() < 0) {
    return absl::InvalidArgumentError("page_size: must not be negative");
  }
  filter.after_revision = request.after_revision();
  const int page_size = request.page_size() == 0
                            ? kDefaultPageSize
                            : std::min(request.page_size(), kMaxPageSize);
  // Events of writes not yet durable are in the store: stop before them.
  const uint64_t applied = state_->revision();
  SK_ASSIGN_OR_RETURN(std::vector<v1::AuditEvent> events,
                      store_->ListAuditEvents(filter, page_size));
  v1::ListAuditEventsResponse response;
  for (v1::AuditEvent& event : events) {
    if (event.revision() > applied) break;
    *response.add_events() = std::move(event);
  }
  return response;
}

absl::StatusOr<v1::CreateBackupResponse> Registry::CreateBackup(
    const v1::CreateBackupRequest& request, absl::string_view actor) {
  const std::string& destination = request.destination();
  SK_RETURN_IF_ERROR(ValidateText("destination", destination));
  if (destination.empty() || destination.front() != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("destination: must be an absolute path, is ",
                     Quote(destination, kMaxQuotedPath)));
  }
  SK_ASSIGN_OR_RETURN(const uint64_t revision, store_->Checkpoint(destination));
  // The copy may hold writes not yet durable here: report it once they are.
  SK_RETURN_IF_ERROR(AwaitVisible(revision));
  LogInfo(absl::StrCat("backup at revision ", revision, " written to ",
                       Quote(destination, kMaxQuotedPath), " by ", actor));
  v1::CreateBackupResponse response;
  response.set_revision(revision);
  response.set_path(destination);
  return response;
}

absl::StatusOr<std::vector<v1::WatchEvent>> Registry::Changes(
    uint64_t after_revision, int limit) {
  storage::AuditFilter filter;
  filter.after_revision = after_revision;
  // Events of writes not yet durable are in the store: stop before them.
  const uint64_t applied = state_->revision();
  SK_ASSIGN_OR_RETURN(std::vector<v1::AuditEvent> events,
                      store_->ListAuditEvents(filter, limit));
  std::vector<v1::WatchEvent> changes;
  changes.reserve(events.size());
  for (v1::AuditEvent& event : events) {
    if (event.revision() > applied) break;
    v1::WatchEvent& change = changes.emplace_back();
    change.set_revision(event.revision());
    change.set_policy_changed(event.action() == "PutPolicy");
    if (!event.key_id().empty()) {
      SK_ASSIGN_OR_RETURN(std::optional<storage::KeyRecord> record,
                          store_->GetKeyById(event.key_id()));
      if (record.has_value()) {
        // The key may have changed again since, not yet durably.
        SK_RETURN_IF_ERROR(AwaitVisible(record->key().revision()));
        *change.mutable_key() = ToApiKey(*record);
      }
    }
    *change.mutable_event() = std::move(event);
  }
  return changes;
}

absl::Status Registry::WaitForChange(uint64_t after_revision,
                                     absl::Time deadline) {
  return state_->WaitForRevision(after_revision + 1, deadline);
}

}  // namespace scopekeeper
