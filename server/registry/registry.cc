// Registry: policy, audit, backups, the change feed and the helpers the key
// and app operations share.
#include "server/registry/registry.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/redact.h"
#include "base/status_macros.h"
#include "base/time_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "server/decision/compiled_key.h"
#include "server/policy/names.h"

namespace scopekeeper {

absl::Status Registry::Load() {
  if (owned_applier_ != nullptr) SK_RETURN_IF_ERROR(owned_applier_->Load());
  return committer_->Start();
}

absl::StatusOr<uint64_t> Registry::PutPolicyUnlogged(const v1::Policy& policy,
                                                     absl::string_view actor) {
  // Invalid policies are refused before anything is queued.
  SK_RETURN_IF_ERROR(
      PolicySnapshot::Compile(policy, /*generation=*/0).status());
  Prepared change;
  change.mutation.put_policy = policy;
  change.mutation.audit_event =
      NewAuditEvent("PutPolicy", actor, nullptr,
                    absl::StrCat("{\"scopes\":", policy.scopes_size(),
                                 ",\"apis\":", policy.apis_size(),
                                 ",\"bundles\":", policy.bundles_size(), "}"));
  // A barrier: the cached keys it recompiles must hold every change.
  return committer_->Commit(
      /*barrier=*/true,
      [&]() -> absl::StatusOr<std::optional<Prepared>> { return change; });
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
  absl::StatusOr<std::optional<absl::Time>> last_use =
      usage_->LastUse(key.key_id());
  if (last_use.ok() && last_use->has_value()) {
    *key.mutable_last_used_time() = ToProtoTime(**last_use);
  }
  return key;
}

absl::Time Registry::LastActivity(const v1::Key& key) {
  if (key.has_last_used_time()) return FromProtoTime(key.last_used_time());
  return FromProtoTime(key.create_time());
}

v1::AuditEvent Registry::NewAuditEvent(absl::string_view action,
                                       absl::string_view actor,
                                       const v1::Key* key,
                                       std::string detail) const {
  v1::AuditEvent event;
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
  SK_ASSIGN_OR_RETURN(const int page_size, PageSize(request.page_size()));
  filter.after_revision = request.after_revision();
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

absl::StatusOr<v1::CreateBackupResponse> Registry::CreateBackupUnlogged(
    const v1::CreateBackupRequest& request) {
  const std::string& destination = request.destination();
  SK_RETURN_IF_ERROR(ValidateText("destination", destination));
  if (destination.empty() || destination.front() != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("destination: must be an absolute path, is ",
                     Quote(destination, kMaxQuotedPath)));
  }
  SK_ASSIGN_OR_RETURN(const uint64_t revision, store_->Checkpoint(destination));
  // The copy may hold writes not yet durable here: report it once they are.
  SK_RETURN_IF_ERROR(committer_->AwaitVisible(revision));
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
        SK_RETURN_IF_ERROR(committer_->AwaitVisible(record->key().revision()));
        *change.mutable_key() = ToApiKey(*record);
      }
    }
    *change.mutable_event() = std::move(event);
  }
  return changes;
}

absl::Status Registry::WaitForChange(uint64_t after_revision,
                                     absl::Duration timeout) {
  return state_->WaitForRevision(after_revision + 1, timeout);
}

}  // namespace scopekeeper
