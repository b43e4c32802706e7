#include "storage/fault_injecting_store.h"

#include "base/status_macros.h"

namespace scopekeeper::storage {

absl::Status FaultInjectingStore::Check(Op op) {
  calls_[Index(op)].fetch_add(1);
  if (failing_[Index(op)].load()) {
    return absl::UnavailableError("injected storage fault");
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> FaultInjectingStore::Revision() {
  SK_RETURN_IF_ERROR(Check(Op::kRead));
  return inner_->Revision();
}

absl::Status FaultInjectingStore::Write(const Mutation& m) {
  SK_RETURN_IF_ERROR(Check(Op::kWrite));
  return inner_->Write(m);
}

absl::Status FaultInjectingStore::Sync() {
  if (sync_hook_) sync_hook_();
  SK_RETURN_IF_ERROR(Check(Op::kSync));
  return inner_->Sync();
}

absl::Status FaultInjectingStore::Recover() {
  SK_RETURN_IF_ERROR(Check(Op::kRecover));
  if (failing_[Index(Op::kWrite)] || failing_[Index(Op::kSync)]) {
    return absl::UnavailableError("injected fault: store still failing");
  }
  return inner_->Recover();
}

absl::StatusOr<std::optional<KeyRecord>> FaultInjectingStore::GetKeyById(
    absl::string_view key_id) {
  SK_RETURN_IF_ERROR(Check(Op::kRead));
  return inner_->GetKeyById(key_id);
}

absl::StatusOr<std::optional<KeyRecord>>
FaultInjectingStore::GetKeyBySecretHash(absl::string_view sha256) {
  SK_RETURN_IF_ERROR(Check(Op::kRead));
  absl::StatusOr<std::optional<KeyRecord>> record =
      inner_->GetKeyBySecretHash(sha256);
  if (secret_read_hook_) secret_read_hook_();
  return record;
}

absl::StatusOr<std::vector<KeyRecord>> FaultInjectingStore::ListKeys(
    absl::string_view organization_id, absl::string_view after_key_id,
    int limit) {
  SK_RETURN_IF_ERROR(Check(Op::kRead));
  return inner_->ListKeys(organization_id, after_key_id, limit);
}

absl::Status FaultInjectingStore::ForEachKey(
    const std::function<absl::Status(const KeyRecord&)>& fn) {
  SK_RETURN_IF_ERROR(Check(Op::kRead));
  return inner_->ForEachKey(fn);
}

absl::Status FaultInjectingStore::ForEachApp(
    const std::function<absl::Status(const v1::App&)>& fn) {
  SK_RETURN_IF_ERROR(Check(Op::kRead));
  return inner_->ForEachApp(fn);
}

absl::Status FaultInjectingStore::ForEachInstallation(
    const std::function<absl::Status(const v1::Installation&)>& fn) {
  SK_RETURN_IF_ERROR(Check(Op::kRead));
  return inner_->ForEachInstallation(fn);
}

absl::Status FaultInjectingStore::RecordKeyUses(
    const std::vector<std::pair<std::string, google::protobuf::Timestamp>>&
        uses) {
  SK_RETURN_IF_ERROR(Check(Op::kRecordKeyUses));
  return inner_->RecordKeyUses(uses);
}

absl::StatusOr<std::optional<google::protobuf::Timestamp>>
FaultInjectingStore::GetKeyLastUse(absl::string_view key_id) {
  SK_RETURN_IF_ERROR(Check(Op::kRead));
  return inner_->GetKeyLastUse(key_id);
}

absl::StatusOr<uint64_t> FaultInjectingStore::Checkpoint(
    const std::string& path) {
  SK_RETURN_IF_ERROR(Check(Op::kRead));
  return inner_->Checkpoint(path);
}

absl::StatusOr<std::optional<v1::Policy>> FaultInjectingStore::GetPolicy() {
  SK_RETURN_IF_ERROR(Check(Op::kRead));
  return inner_->GetPolicy();
}

absl::StatusOr<std::vector<v1::AuditEvent>>
FaultInjectingStore::ListAuditEvents(const AuditFilter& filter, int limit) {
  SK_RETURN_IF_ERROR(Check(Op::kRead));
  return inner_->ListAuditEvents(filter, limit);
}

}  // namespace scopekeeper::storage
