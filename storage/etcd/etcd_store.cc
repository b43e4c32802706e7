#include "storage/etcd/etcd_store.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <system_error>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/mutex.h"
#include "base/status_macros.h"
#include "google/protobuf/io/zero_copy_stream_impl.h"
#include "google/protobuf/util/delimited_message_util.h"
#include "storage/etcd/export.pb.h"
#include "storage/mutation_check.h"

namespace scopekeeper::storage {
namespace {

using etcd::Compare;
using etcd::KeyValue;
using etcd::Op;
using etcd::RangeRequest;
using etcd::TxnRequest;
using etcd::TxnResponse;

constexpr absl::string_view kFormat = "1";
constexpr absl::string_view kFormatKey = "meta/format";
constexpr absl::string_view kHeadKey = "meta/head";
constexpr absl::string_view kKeyPrefix = "key/";
constexpr absl::string_view kHashPrefix = "hash/";
constexpr absl::string_view kOrgPrefix = "org/";
constexpr absl::string_view kPolicyKey = "policy";
constexpr absl::string_view kAppPrefix = "app/";
constexpr absl::string_view kInstallationPrefix = "inst/";
constexpr absl::string_view kAuditPrefix = "audit/";
constexpr absl::string_view kExportFormat = "scopekeeper-etcd-export-1";
// etcd adds its own request header to the transaction before comparing its
// size with --max-request-bytes.
constexpr int64_t kRequestHeaderBytes = 256;

std::string HashSuffix(absl::string_view sha256) {
  return absl::StrCat(kHashPrefix, absl::BytesToHexString(sha256));
}
std::string OrgSuffix(absl::string_view organization_id) {
  return absl::StrCat(kOrgPrefix, organization_id, absl::string_view("\0", 1));
}

template <typename Message>
absl::Status Parse(const KeyValue& kv, Message* out) {
  if (!out->ParseFromString(kv.value)) {
    return absl::DataLossError(absl::StrCat(
        "corrupt etcd record ", absl::CHexEscape(kv.key), ": not a valid ",
        out->GetTypeName(), " (", kv.value.size(), " bytes)"));
  }
  return absl::OkStatus();
}

// ParseKeyRecord() parses a key/<key_id> record, which must name itself,
// and stamps its revision.
absl::StatusOr<KeyRecord> ParseKeyRecord(const KeyValue& kv,
                                         absl::string_view key_id) {
  KeyRecord record;
  SK_RETURN_IF_ERROR(Parse(kv, &record));
  if (record.key().key_id() != key_id) {
    return absl::DataLossError(absl::StrCat(
        "corrupt etcd record ", absl::CHexEscape(kv.key), ": holds key_id \"",
        absl::CHexEscape(record.key().key_id()), "\""));
  }
  record.mutable_key()->set_revision(static_cast<uint64_t>(kv.mod_revision));
  return record;
}

absl::StatusOr<v1::AuditEvent> ParseAuditEvent(const KeyValue& kv) {
  v1::AuditEvent event;
  SK_RETURN_IF_ERROR(Parse(kv, &event));
  event.set_revision(static_cast<uint64_t>(kv.create_revision));
  return event;
}

std::string RandomHex() {
  absl::BitGen gen;
  std::string bytes(16, '\0');
  for (char& c : bytes) c = static_cast<char>(absl::Uniform<uint8_t>(gen));
  return absl::BytesToHexString(bytes);
}

const char* KindName(Guard::Kind kind) {
  switch (kind) {
    case Guard::Kind::kKey:
      return "key";
    case Guard::Kind::kPolicy:
      return "policy";
    case Guard::Kind::kApp:
      return "app";
    case Guard::Kind::kInstallation:
      return "installation";
  }
  return "object";
}

// One compare of a write transaction, and how to explain its failure.
struct Check {
  enum class Type { kGuard, kPin, kHashFree };
  Type type;
  std::string key;       // full etcd key
  int64_t expected = 0;  // kGuard, kPin: mod revision
  std::string what;      // e.g. key "k1"
  std::string sha256;    // kHashFree
  std::string owner;     // kHashFree: the key claiming the hash
};

struct WritePlan {
  TxnRequest txn;
  std::vector<Check> checks;  // txn.compare[i] is checks[i]
};

}  // namespace

std::string EtcdStore::StateKey(absl::string_view suffix) const {
  return absl::StrCat(options_.prefix, "s/", suffix);
}

absl::StatusOr<std::unique_ptr<EtcdStore>> EtcdStore::Open(
    std::shared_ptr<etcd::EtcdClient> client, const Options& options) {
  if (client == nullptr) return absl::InvalidArgumentError("client: null");
  if (options.prefix.empty()) {
    return absl::InvalidArgumentError("prefix: must not be empty");
  }
  if (options.max_txn_ops < 8 || options.max_request_bytes < 4096 ||
      options.page_size < 1 || options.max_attempts < 1) {
    return absl::InvalidArgumentError(
        "max_txn_ops (>= 8), max_request_bytes (>= 4096), page_size and "
        "max_attempts (>= 1): out of range");
  }
  std::unique_ptr<EtcdStore> store(new EtcdStore(std::move(client), options));
  const std::string format_key = store->StateKey(kFormatKey);
  TxnRequest txn;
  txn.compare.push_back(
      Compare::CreateRevision(format_key, Compare::Result::kEqual, 0));
  txn.success.push_back(Op::Put(format_key, std::string(kFormat)));
  txn.failure.push_back(Op::Get({format_key}));
  SK_ASSIGN_OR_RETURN(const TxnResponse response, store->client_->Txn(txn));
  if (response.succeeded) return store;
  const std::string& format = response.responses[0].range.kvs[0].value;
  uint64_t version = 0;
  if (!absl::SimpleAtoi(format, &version) || version == 0) {
    return absl::DataLossError(absl::StrCat("corrupt ", format_key, " \"",
                                            absl::CHexEscape(format), "\""));
  }
  if (format != kFormat) {
    return absl::FailedPreconditionError(
        absl::StrCat(format_key, " is format ", format,
                     "; this build reads format ", kFormat));
  }
  return store;
}

// ---------------------------------------------------------------- reads

absl::StatusOr<std::optional<KeyValue>> EtcdStore::Get(
    std::string key, uint64_t* revision) const {
  RangeRequest request;
  request.key = std::move(key);
  request.revision = static_cast<int64_t>(*revision);
  SK_ASSIGN_OR_RETURN(etcd::RangeResponse response, client_->Range(request));
  if (*revision == 0) *revision = static_cast<uint64_t>(response.revision);
  if (response.kvs.empty()) return std::nullopt;
  return std::move(response.kvs[0]);
}

absl::StatusOr<std::vector<std::optional<KeyValue>>> EtcdStore::GetMany(
    const std::vector<std::string>& keys, uint64_t revision) const {
  std::vector<std::optional<KeyValue>> out;
  for (size_t start = 0; start < keys.size();
       start += static_cast<size_t>(options_.max_txn_ops)) {
    TxnRequest txn;
    const size_t end = std::min(
        keys.size(), start + static_cast<size_t>(options_.max_txn_ops));
    for (size_t i = start; i < end; ++i) {
      RangeRequest get;
      get.key = keys[i];
      get.revision = static_cast<int64_t>(revision);
      txn.success.push_back(Op::Get(std::move(get)));
    }
    SK_ASSIGN_OR_RETURN(TxnResponse response, client_->Txn(txn));
    for (etcd::OpResponse& r : response.responses) {
      if (r.range.kvs.empty()) {
        out.push_back(std::nullopt);
      } else {
        out.push_back(std::move(r.range.kvs[0]));
      }
    }
  }
  return out;
}

absl::Status EtcdStore::Scan(
    std::string from, const std::string& end, uint64_t* revision,
    const std::function<absl::StatusOr<bool>(const KeyValue&)>& fn) const {
  while (true) {
    RangeRequest request;
    request.key = from;
    request.range_end = end;
    request.limit = options_.page_size;
    request.revision = static_cast<int64_t>(*revision);
    SK_ASSIGN_OR_RETURN(const etcd::RangeResponse page,
                        client_->Range(request));
    if (*revision == 0) *revision = static_cast<uint64_t>(page.revision);
    for (const KeyValue& kv : page.kvs) {
      SK_ASSIGN_OR_RETURN(const bool more, fn(kv));
      if (!more) return absl::OkStatus();
    }
    if (!page.more || page.kvs.empty()) return absl::OkStatus();
    from = page.kvs.back().key + std::string(1, '\0');
  }
}

absl::StatusOr<bool> EtcdStore::ScanLarge(
    const std::string& prefix, int64_t count, uint64_t revision,
    const std::function<absl::StatusOr<bool>(const KeyValue&)>& fn,
    int depth) const {
  // Deeper than any key id: page through whatever is left.
  constexpr int kMaxDepth = 64;
  if (count <= 4 * static_cast<int64_t>(options_.page_size) ||
      depth >= kMaxDepth) {
    bool stopped = false;
    uint64_t at = revision;
    SK_RETURN_IF_ERROR(Scan(prefix, etcd::PrefixEnd(prefix), &at,
                            [&](const KeyValue& kv) -> absl::StatusOr<bool> {
                              SK_ASSIGN_OR_RETURN(const bool more, fn(kv));
                              stopped = !more;
                              return more;
                            }));
    return !stopped;
  }
  // The key equal to the prefix, then each one-byte-longer prefix in byte
  // order: key order overall.
  uint64_t at = revision;
  SK_ASSIGN_OR_RETURN(const std::optional<KeyValue> exact, Get(prefix, &at));
  if (exact.has_value()) {
    SK_ASSIGN_OR_RETURN(const bool more, fn(*exact));
    if (!more) return false;
  }
  std::vector<int64_t> counts;
  for (int first = 0; first < 256; first += options_.max_txn_ops) {
    TxnRequest txn;
    for (int b = first; b < std::min(256, first + options_.max_txn_ops); ++b) {
      RangeRequest child;
      child.key = prefix + static_cast<char>(b);
      child.range_end = etcd::PrefixEnd(child.key);
      child.revision = static_cast<int64_t>(revision);
      child.count_only = true;
      txn.success.push_back(Op::Get(std::move(child)));
    }
    SK_ASSIGN_OR_RETURN(const TxnResponse response, client_->Txn(txn));
    for (const etcd::OpResponse& r : response.responses) {
      counts.push_back(r.range.count);
    }
  }
  for (int b = 0; b < 256; ++b) {
    if (counts[b] == 0) continue;
    SK_ASSIGN_OR_RETURN(const bool more,
                        ScanLarge(prefix + static_cast<char>(b), counts[b],
                                  revision, fn, depth + 1));
    if (!more) return false;
  }
  return true;
}

absl::StatusOr<EtcdStore::Reader> EtcdStore::ReadAt(uint64_t revision) {
  if (revision == 0) {
    SK_RETURN_IF_ERROR(Get(StateKey(kHeadKey), &revision).status());
  }
  return Reader(this, revision);
}

absl::StatusOr<std::optional<KeyRecord>> EtcdStore::Reader::GetKeyById(
    absl::string_view key_id) const {
  uint64_t revision = revision_;
  SK_ASSIGN_OR_RETURN(
      const std::optional<KeyValue> kv,
      store_->Get(store_->StateKey(absl::StrCat(kKeyPrefix, key_id)),
                  &revision));
  if (!kv.has_value()) return std::nullopt;
  SK_ASSIGN_OR_RETURN(KeyRecord record, ParseKeyRecord(*kv, key_id));
  return record;
}

absl::StatusOr<std::optional<KeyRecord>> EtcdStore::Reader::GetKeyBySecretHash(
    absl::string_view sha256) const {
  if (sha256.size() != kSha256Size) {
    return absl::InvalidArgumentError(
        absl::StrCat("sha256: must be 32 bytes, is ", sha256.size()));
  }
  // Both reads at one revision: the index entry and the record agree.
  uint64_t revision = revision_;
  SK_ASSIGN_OR_RETURN(
      const std::optional<KeyValue> entry,
      store_->Get(store_->StateKey(HashSuffix(sha256)), &revision));
  if (!entry.has_value()) return std::nullopt;
  SK_ASSIGN_OR_RETURN(std::optional<KeyRecord> record,
                      Reader(store_, revision).GetKeyById(entry->value));
  if (!record.has_value()) {
    return absl::DataLossError(absl::StrCat(
        "index entry ", entry->key, " names key \"",
        absl::CHexEscape(entry->value), "\", which does not exist"));
  }
  for (const SecretHash& secret : record->secrets()) {
    if (secret.sha256() == sha256) return record;
  }
  return absl::DataLossError(absl::StrCat(
      "index entry ", entry->key, " names key \"",
      absl::CHexEscape(entry->value), "\", which lacks that secret"));
}

absl::StatusOr<std::vector<KeyRecord>> EtcdStore::Reader::ListKeys(
    absl::string_view organization_id, absl::string_view after_key_id,
    int limit) const {
  SK_RETURN_IF_ERROR(CheckLimit(limit));
  const std::string after(absl::StrCat(after_key_id, std::string(1, '\0')));
  uint64_t revision = revision_;
  std::vector<KeyRecord> out;
  if (organization_id.empty()) {
    const std::string prefix = store_->StateKey(kKeyPrefix);
    SK_RETURN_IF_ERROR(store_->Scan(
        prefix + after, etcd::PrefixEnd(prefix), &revision,
        [&](const KeyValue& kv) -> absl::StatusOr<bool> {
          SK_ASSIGN_OR_RETURN(
              KeyRecord record,
              ParseKeyRecord(kv,
                             absl::string_view(kv.key).substr(prefix.size())));
          out.push_back(std::move(record));
          return out.size() < static_cast<size_t>(limit);
        }));
    return out;
  }
  const std::string prefix = store_->StateKey(OrgSuffix(organization_id));
  std::vector<std::string> ids;
  SK_RETURN_IF_ERROR(
      store_->Scan(prefix + after, etcd::PrefixEnd(prefix), &revision,
                   [&](const KeyValue& kv) -> absl::StatusOr<bool> {
                     ids.push_back(kv.key.substr(prefix.size()));
                     return ids.size() < static_cast<size_t>(limit);
                   }));
  std::vector<std::string> keys;
  for (const std::string& id : ids) {
    keys.push_back(store_->StateKey(absl::StrCat(kKeyPrefix, id)));
  }
  SK_ASSIGN_OR_RETURN(const std::vector<std::optional<KeyValue>> kvs,
                      store_->GetMany(keys, revision));
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!kvs[i].has_value()) {
      return absl::DataLossError(
          absl::StrCat("index entry ", absl::CHexEscape(prefix + ids[i]),
                       " names a key that does not exist"));
    }
    SK_ASSIGN_OR_RETURN(KeyRecord record, ParseKeyRecord(*kvs[i], ids[i]));
    out.push_back(std::move(record));
  }
  return out;
}

absl::Status EtcdStore::Reader::ForEachKey(
    const std::function<absl::Status(const KeyRecord&)>& fn) const {
  const std::string prefix = store_->StateKey(kKeyPrefix);
  RangeRequest count;
  count.key = prefix;
  count.range_end = etcd::PrefixEnd(prefix);
  count.revision = static_cast<int64_t>(revision_);
  count.count_only = true;
  SK_ASSIGN_OR_RETURN(const etcd::RangeResponse counted,
                      store_->client_->Range(count));
  // Pinned to one revision (the latest, when this reader has none).
  const uint64_t revision =
      revision_ != 0 ? revision_ : static_cast<uint64_t>(counted.revision);
  return store_
      ->ScanLarge(prefix, counted.count, revision,
                  [&](const KeyValue& kv) -> absl::StatusOr<bool> {
                    SK_ASSIGN_OR_RETURN(
                        const KeyRecord record,
                        ParseKeyRecord(kv, absl::string_view(kv.key).substr(
                                               prefix.size())));
                    SK_RETURN_IF_ERROR(fn(record));
                    return true;
                  })
      .status();
}

namespace {

template <typename T>
absl::Status ScanRecords(
    const std::function<absl::Status(
        std::string, const std::string&, uint64_t*,
        const std::function<absl::StatusOr<bool>(const KeyValue&)>&)>& scan,
    const std::string& prefix, uint64_t revision,
    const std::function<absl::Status(const T&, uint64_t)>& fn) {
  return scan(
      prefix, etcd::PrefixEnd(prefix), &revision,
      [&](const KeyValue& kv) -> absl::StatusOr<bool> {
        T record;
        SK_RETURN_IF_ERROR(Parse(kv, &record));
        SK_RETURN_IF_ERROR(fn(record, static_cast<uint64_t>(kv.mod_revision)));
        return true;
      });
}

}  // namespace

absl::Status EtcdStore::Reader::ForEachApp(
    const std::function<absl::Status(const v1::App&, uint64_t)>& fn) const {
  return ScanRecords<v1::App>(
      [this](auto&&... args) { return store_->Scan(args...); },
      store_->StateKey(kAppPrefix), revision_, fn);
}

absl::Status EtcdStore::Reader::ForEachInstallation(
    const std::function<absl::Status(const v1::Installation&, uint64_t)>& fn)
    const {
  return ScanRecords<v1::Installation>(
      [this](auto&&... args) { return store_->Scan(args...); },
      store_->StateKey(kInstallationPrefix), revision_, fn);
}

absl::StatusOr<std::optional<Revisioned<v1::Policy>>>
EtcdStore::Reader::GetPolicy() const {
  uint64_t revision = revision_;
  SK_ASSIGN_OR_RETURN(const std::optional<KeyValue> kv,
                      store_->Get(store_->StateKey(kPolicyKey), &revision));
  if (!kv.has_value()) return std::nullopt;
  Revisioned<v1::Policy> out;
  SK_RETURN_IF_ERROR(Parse(*kv, &out.value));
  out.revision = static_cast<uint64_t>(kv->mod_revision);
  return out;
}

absl::StatusOr<std::vector<v1::AuditEvent>> EtcdStore::Reader::ListAuditEvents(
    const AuditFilter& filter, int limit) const {
  SK_RETURN_IF_ERROR(CheckLimit(limit));
  std::vector<v1::AuditEvent> out;
  const std::string prefix = store_->StateKey(kAuditPrefix);
  uint64_t revision = revision_;
  uint64_t after = filter.after_revision;
  while (out.size() < static_cast<size_t>(limit) &&
         after < static_cast<uint64_t>(INT64_MAX)) {
    RangeRequest request;
    request.key = prefix;
    request.range_end = etcd::PrefixEnd(prefix);
    request.revision = static_cast<int64_t>(revision);
    request.min_create_revision = static_cast<int64_t>(after + 1);
    request.sort_target = RangeRequest::SortTarget::kCreate;
    request.sort_order = RangeRequest::SortOrder::kAscend;
    request.limit = store_->options_.page_size;
    SK_ASSIGN_OR_RETURN(const etcd::RangeResponse page,
                        store_->client_->Range(request));
    if (revision == 0) revision = static_cast<uint64_t>(page.revision);
    for (const KeyValue& kv : page.kvs) {
      SK_ASSIGN_OR_RETURN(v1::AuditEvent event, ParseAuditEvent(kv));
      after = event.revision();
      if (!MatchesAuditFilter(filter, event)) continue;
      out.push_back(std::move(event));
      if (out.size() == static_cast<size_t>(limit)) break;
    }
    if (page.kvs.size() < static_cast<size_t>(store_->options_.page_size)) {
      break;
    }
  }
  return out;
}

absl::StatusOr<EtcdStore::Head> EtcdStore::ReadHead() {
  RangeRequest request;
  request.key = StateKey(kHeadKey);
  request.keys_only = true;
  SK_ASSIGN_OR_RETURN(const etcd::RangeResponse response,
                      client_->Range(request));
  Head head;
  head.revision = static_cast<uint64_t>(response.revision);
  if (!response.kvs.empty()) {
    head.last_write = static_cast<uint64_t>(response.kvs[0].mod_revision);
  }
  return head;
}

absl::StatusOr<int> EtcdStore::PruneAuditEvents(absl::Time before, int limit) {
  const std::string prefix = StateKey(kAuditPrefix);
  int deleted = 0;
  uint64_t after = 0;
  while (deleted < limit) {
    RangeRequest request;
    request.key = prefix;
    request.range_end = etcd::PrefixEnd(prefix);
    request.min_create_revision = static_cast<int64_t>(after + 1);
    request.sort_target = RangeRequest::SortTarget::kCreate;
    request.sort_order = RangeRequest::SortOrder::kAscend;
    request.limit = std::min(options_.max_txn_ops, limit - deleted);
    SK_ASSIGN_OR_RETURN(const etcd::RangeResponse page,
                        client_->Range(request));
    TxnRequest txn;
    bool reached = false;
    for (const KeyValue& kv : page.kvs) {
      SK_ASSIGN_OR_RETURN(const v1::AuditEvent event, ParseAuditEvent(kv));
      after = event.revision();
      if (absl::FromUnixSeconds(event.time().seconds()) +
              absl::Nanoseconds(event.time().nanos()) >=
          before) {
        reached = true;
        break;
      }
      txn.success.push_back(Op::Delete(kv.key));
    }
    if (!txn.success.empty()) {
      SK_RETURN_IF_ERROR(client_->Txn(txn).status());
      deleted += static_cast<int>(txn.success.size());
    }
    if (reached || !page.more) break;
  }
  return deleted;
}

absl::StatusOr<uint64_t> EtcdStore::Revision() {
  uint64_t revision = 0;
  SK_ASSIGN_OR_RETURN(const std::optional<KeyValue> head,
                      Get(StateKey(kHeadKey), &revision));
  return head.has_value() ? static_cast<uint64_t>(head->mod_revision) : 0;
}

absl::StatusOr<std::optional<KeyRecord>> EtcdStore::GetKeyById(
    absl::string_view key_id) {
  return Reader(this, 0).GetKeyById(key_id);
}

absl::StatusOr<std::optional<KeyRecord>> EtcdStore::GetKeyBySecretHash(
    absl::string_view sha256) {
  return Reader(this, 0).GetKeyBySecretHash(sha256);
}

absl::StatusOr<std::vector<KeyRecord>> EtcdStore::ListKeys(
    absl::string_view organization_id, absl::string_view after_key_id,
    int limit) {
  return Reader(this, 0).ListKeys(organization_id, after_key_id, limit);
}

absl::Status EtcdStore::ForEachKey(
    const std::function<absl::Status(const KeyRecord&)>& fn) {
  return Reader(this, 0).ForEachKey(fn);
}

absl::Status EtcdStore::ForEachApp(
    const std::function<absl::Status(const v1::App&)>& fn) {
  return Reader(this, 0).ForEachApp(
      [&](const v1::App& app, uint64_t) { return fn(app); });
}

absl::Status EtcdStore::ForEachInstallation(
    const std::function<absl::Status(const v1::Installation&)>& fn) {
  return Reader(this, 0).ForEachInstallation(
      [&](const v1::Installation& i, uint64_t) { return fn(i); });
}

absl::StatusOr<std::optional<v1::Policy>> EtcdStore::GetPolicy() {
  SK_ASSIGN_OR_RETURN(std::optional<Revisioned<v1::Policy>> policy,
                      Reader(this, 0).GetPolicy());
  if (!policy.has_value()) return std::nullopt;
  return std::move(policy->value);
}

absl::StatusOr<std::vector<v1::AuditEvent>> EtcdStore::ListAuditEvents(
    const AuditFilter& filter, int limit) {
  return Reader(this, 0).ListAuditEvents(filter, limit);
}

// ---------------------------------------------------------------- writes

absl::Status EtcdStore::Write(const Mutation&) {
  return absl::FailedPreconditionError(
      "EtcdStore: Write()/Commit() with a caller-chosen revision is not "
      "supported (etcd assigns revisions, and writers are many): use "
      "WriteGuarded()");
}

namespace {

// CheckGuards() validates the guards' ids.
absl::Status CheckGuards(const std::vector<Guard>& guards) {
  std::set<std::pair<int, std::string>> seen;
  for (size_t i = 0; i < guards.size(); ++i) {
    const Guard& g = guards[i];
    if ((g.kind == Guard::Kind::kPolicy) != g.id.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "guards[", i, "].id: ",
          g.kind == Guard::Kind::kPolicy ? "must be empty for the policy"
                                         : "must not be empty"));
    }
    if (!seen.emplace(static_cast<int>(g.kind), g.id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("guards[", i, "]: ", KindName(g.kind), " \"",
                       absl::CHexEscape(g.id), "\" is guarded twice"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<uint64_t> EtcdStore::WriteGuarded(const Mutation& m) {
  {
    // The shared checks, minus the revision ones (the store assigns it).
    Mutation check;
    check.put_keys = m.put_keys;
    check.put_apps = m.put_apps;
    check.put_installations = m.put_installations;
    SK_RETURN_IF_ERROR(ValidateMutation(check));
    SK_RETURN_IF_ERROR(CheckGuards(m.guards));
  }
  std::map<std::pair<Guard::Kind, std::string>, const Guard*> guards;
  for (const Guard& g : m.guards) guards[{g.kind, g.id}] = &g;
  // Secret hashes claimed by the mutation: one key each.
  std::map<std::string, std::string> claimed;
  for (const KeyRecord& record : m.put_keys) {
    for (const SecretHash& secret : record.secrets()) {
      const auto [it, inserted] =
          claimed.emplace(secret.sha256(), record.key().key_id());
      if (!inserted && it->second != record.key().key_id()) {
        return HashTakenError(secret.sha256(), it->second);
      }
    }
  }

  for (int attempt = 1;; ++attempt) {
    // The old records the index changes are computed from.
    std::vector<std::string> record_keys;
    for (const KeyRecord& record : m.put_keys) {
      record_keys.push_back(
          StateKey(absl::StrCat(kKeyPrefix, record.key().key_id())));
    }
    // Latest versions, not necessarily of one revision: the compares pin
    // each one the transaction depends on.
    SK_ASSIGN_OR_RETURN(const std::vector<std::optional<KeyValue>> old_kvs,
                        GetMany(record_keys, /*revision=*/0));

    WritePlan plan;
    auto add_check = [&](Check check) {
      plan.txn.compare.push_back(
          check.type == Check::Type::kHashFree
              ? Compare::CreateRevision(check.key, Compare::Result::kEqual, 0)
              : Compare::ModRevision(check.key, Compare::Result::kEqual,
                                     check.expected));
      RangeRequest get;
      get.key = check.key;
      get.keys_only = check.type != Check::Type::kHashFree;
      plan.txn.failure.push_back(Op::Get(std::move(get)));
      plan.checks.push_back(std::move(check));
    };
    for (const Guard& g : m.guards) {
      std::string suffix;
      switch (g.kind) {
        case Guard::Kind::kKey:
          suffix = absl::StrCat(kKeyPrefix, g.id);
          break;
        case Guard::Kind::kPolicy:
          suffix = std::string(kPolicyKey);
          break;
        case Guard::Kind::kApp:
          suffix = absl::StrCat(kAppPrefix, g.id);
          break;
        case Guard::Kind::kInstallation:
          suffix = absl::StrCat(kInstallationPrefix, g.id);
          break;
      }
      add_check(
          {Check::Type::kGuard, StateKey(suffix),
           static_cast<int64_t>(g.revision),
           absl::StrCat(KindName(g.kind), g.id.empty() ? "" : " \"",
                        absl::CHexEscape(g.id), g.id.empty() ? "" : "\"")});
    }

    for (size_t i = 0; i < m.put_keys.size(); ++i) {
      const KeyRecord& record = m.put_keys[i];
      const std::string& key_id = record.key().key_id();
      const std::string& organization_id = record.key().organization_id();
      std::optional<KeyRecord> old;
      int64_t old_revision = 0;
      if (old_kvs[i].has_value()) {
        SK_ASSIGN_OR_RETURN(old, ParseKeyRecord(*old_kvs[i], key_id));
        old_revision = old_kvs[i]->mod_revision;
      }
      const auto guard = guards.find({Guard::Kind::kKey, key_id});
      if (guard != guards.end() &&
          static_cast<int64_t>(guard->second->revision) != old_revision) {
        return absl::AbortedError(
            absl::StrCat("guard failed: key \"", absl::CHexEscape(key_id),
                         "\" was last changed at revision ", old_revision,
                         ", not ", guard->second->revision));
      }
      if (guard == guards.end()) {
        // Pin the old record the index changes below are computed from.
        add_check({Check::Type::kPin, record_keys[i], old_revision,
                   absl::StrCat("key \"", absl::CHexEscape(key_id), "\"")});
      }
      std::set<std::string> old_hashes;
      if (old.has_value()) {
        for (const SecretHash& s : old->secrets())
          old_hashes.insert(s.sha256());
      }
      std::set<std::string> hashes;
      for (const SecretHash& s : record.secrets()) hashes.insert(s.sha256());
      for (const std::string& sha256 : hashes) {
        if (old_hashes.count(sha256) != 0) continue;
        Check check{Check::Type::kHashFree, StateKey(HashSuffix(sha256))};
        check.sha256 = sha256;
        check.owner = key_id;
        plan.txn.success.push_back(Op::Put(check.key, key_id));
        add_check(std::move(check));
      }
      for (const std::string& sha256 : old_hashes) {
        if (hashes.count(sha256) == 0) {
          plan.txn.success.push_back(Op::Delete(StateKey(HashSuffix(sha256))));
        }
      }
      if (!old.has_value() || old->key().organization_id() != organization_id) {
        if (old.has_value()) {
          plan.txn.success.push_back(Op::Delete(
              StateKey(OrgSuffix(old->key().organization_id()) + key_id)));
        }
        plan.txn.success.push_back(
            Op::Put(StateKey(OrgSuffix(organization_id) + key_id), ""));
      }
      KeyRecord stored = record;
      stored.mutable_key()->clear_revision();
      plan.txn.success.push_back(
          Op::Put(record_keys[i], stored.SerializeAsString()));
    }
    if (m.put_policy.has_value()) {
      plan.txn.success.push_back(
          Op::Put(StateKey(kPolicyKey), m.put_policy->SerializeAsString()));
    }
    for (const v1::App& app : m.put_apps) {
      plan.txn.success.push_back(
          Op::Put(StateKey(absl::StrCat(kAppPrefix, app.app_id())),
                  app.SerializeAsString()));
    }
    for (const v1::Installation& installation : m.put_installations) {
      plan.txn.success.push_back(
          Op::Put(StateKey(absl::StrCat(kInstallationPrefix,
                                        installation.installation_id())),
                  installation.SerializeAsString()));
    }
    if (m.audit_event.has_value()) {
      v1::AuditEvent event = *m.audit_event;
      event.clear_revision();
      plan.txn.success.push_back(
          Op::Put(StateKey(absl::StrCat(kAuditPrefix, RandomHex())),
                  event.SerializeAsString()));
    }
    plan.txn.success.push_back(Op::Put(StateKey(kHeadKey), ""));

    // etcd's limits, checked here so that nothing is sent that etcd would
    // refuse (and the caller learns why).
    const size_t ops =
        std::max({plan.txn.compare.size(), plan.txn.success.size(),
                  plan.txn.failure.size()});
    if (ops > static_cast<size_t>(options_.max_txn_ops)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "mutation too large for one etcd transaction: ", ops, " operations (",
          m.put_keys.size(), " keys, ", m.put_apps.size(), " apps, ",
          m.put_installations.size(),
          " installations, with their index entries) exceed max_txn_ops ",
          options_.max_txn_ops, " (etcd --max-txn-ops); nothing was written"));
    }
    const int64_t bytes =
        static_cast<int64_t>(etcd::EncodedSize(plan.txn)) + kRequestHeaderBytes;
    if (bytes > options_.max_request_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "mutation too large for one etcd transaction: about ", bytes,
          " bytes exceed max_request_bytes ", options_.max_request_bytes,
          " (etcd --max-request-bytes); nothing was written"));
    }

    SK_ASSIGN_OR_RETURN(const TxnResponse response, client_->Txn(plan.txn));
    if (response.succeeded) return static_cast<uint64_t>(response.revision);

    // Which compare failed? The failure branch read each compared key at
    // the transaction's revision.
    bool retry = false;
    for (size_t i = 0; i < plan.checks.size() && !retry; ++i) {
      const Check& check = plan.checks[i];
      const std::vector<KeyValue>& kvs = response.responses[i].range.kvs;
      const int64_t mod = kvs.empty() ? 0 : kvs[0].mod_revision;
      switch (check.type) {
        case Check::Type::kGuard:
          if (mod != check.expected) {
            return absl::AbortedError(absl::StrCat(
                "guard failed: ", check.what, " was last changed at revision ",
                mod, ", not ", check.expected, " (at revision ",
                response.revision, ")"));
          }
          break;
        case Check::Type::kPin:
          retry = mod != check.expected;
          break;
        case Check::Type::kHashFree:
          if (!kvs.empty()) {
            if (kvs[0].value != check.owner) {
              return HashTakenError(check.sha256, kvs[0].value);
            }
            retry = true;  // the same key, changed meanwhile
          }
          break;
      }
    }
    if (!retry) {
      return absl::InternalError(absl::StrCat(
          "etcd transaction at revision ", response.revision,
          " failed, but each of its compares holds on re-reading"));
    }
    if (attempt >= options_.max_attempts) {
      return absl::AbortedError(absl::StrCat(
          "write lost ", attempt,
          " races with concurrent writers of the same keys; retry"));
    }
  }
}

// ---------------------------------------------------------------- telemetry

absl::Status EtcdStore::RecordKeyUses(
    const std::vector<std::pair<std::string, google::protobuf::Timestamp>>&
        uses) {
  // The latest time per key.
  std::map<std::string, google::protobuf::Timestamp> latest;
  for (const auto& [key_id, time] : uses) {
    auto [it, inserted] = latest.emplace(key_id, time);
    if (!inserted && IsLater(time, it->second)) it->second = time;
  }
  std::vector<std::pair<std::string, google::protobuf::Timestamp>> batch;
  const size_t batch_size = static_cast<size_t>(options_.max_txn_ops / 2);
  auto flush = [&]() -> absl::Status {
    std::vector<std::string> keys;
    for (const auto& use : batch) {
      keys.push_back(absl::StrCat(options_.prefix, "t/used/", use.first));
    }
    for (int attempt = 1;; ++attempt) {
      uint64_t revision = 0;
      SK_RETURN_IF_ERROR(Get(keys[0], &revision).status());
      SK_ASSIGN_OR_RETURN(const std::vector<std::optional<KeyValue>> stored,
                          GetMany(keys, revision));
      TxnRequest txn;
      for (size_t i = 0; i < batch.size(); ++i) {
        if (stored[i].has_value()) {
          google::protobuf::Timestamp old;
          SK_RETURN_IF_ERROR(Parse(*stored[i], &old));
          if (!IsLater(batch[i].second, old)) continue;
        }
        txn.compare.push_back(Compare::ModRevision(
            keys[i], Compare::Result::kEqual,
            stored[i].has_value() ? stored[i]->mod_revision : 0));
        txn.success.push_back(
            Op::Put(keys[i], batch[i].second.SerializeAsString()));
      }
      if (txn.success.empty()) return absl::OkStatus();
      SK_ASSIGN_OR_RETURN(const TxnResponse response, client_->Txn(txn));
      if (response.succeeded) return absl::OkStatus();
      if (attempt >= options_.max_attempts) {
        return absl::AbortedError(
            "record key uses: lost every race with other replicas");
      }
    }
  };
  for (auto& use : latest) {
    batch.push_back(use);
    if (batch.size() == batch_size) {
      SK_RETURN_IF_ERROR(flush());
      batch.clear();
    }
  }
  if (!batch.empty()) SK_RETURN_IF_ERROR(flush());
  return absl::OkStatus();
}

absl::StatusOr<std::optional<google::protobuf::Timestamp>>
EtcdStore::GetKeyLastUse(absl::string_view key_id) {
  uint64_t revision = 0;
  SK_ASSIGN_OR_RETURN(
      const std::optional<KeyValue> kv,
      Get(absl::StrCat(options_.prefix, "t/used/", key_id), &revision));
  if (!kv.has_value()) return std::nullopt;
  google::protobuf::Timestamp time;
  SK_RETURN_IF_ERROR(Parse(*kv, &time));
  return time;
}

// ---------------------------------------------------------------- feed

namespace {

class ChangeFeedImpl final : public ChangeFeed {
 public:
  ChangeFeedImpl(std::string state_prefix, std::string head_key,
                 uint64_t after_revision, FollowCallbacks callbacks,
                 etcd::EtcdClient* client)
      : state_prefix_(std::move(state_prefix)),
        head_key_(std::move(head_key)),
        callbacks_(std::move(callbacks)),
        client_(client),
        delivered_(after_revision) {}

  absl::Status Start(uint64_t after_revision, bool progress_notify) {
    etcd::WatchRequest request;
    request.key = state_prefix_;
    request.range_end = etcd::PrefixEnd(state_prefix_);
    request.start_revision = static_cast<int64_t>(after_revision + 1);
    request.progress_notify = progress_notify;
    request.prev_kv = true;  // key records only need it; few other puts
    etcd::WatchCallbacks callbacks;
    callbacks.on_revision = [this](int64_t revision,
                                   std::vector<etcd::WatchEvent> events) {
      OnRevision(static_cast<uint64_t>(revision), events);
    };
    callbacks.on_progress = [this](int64_t revision) {
      Advance(static_cast<uint64_t>(revision), /*progress=*/true);
    };
    callbacks.on_progress_answer = [this](int64_t) {
      Advance(0, /*progress=*/false);
    };
    callbacks.on_end = [this](const absl::Status& status, int64_t) {
      if (callbacks_.on_end)
        callbacks_.on_end(failure_.ok() ? status : failure_);
    };
    SK_ASSIGN_OR_RETURN(watch_, client_->Watch(request, std::move(callbacks)));
    watch_ptr_.store(watch_.get());
    if (cancel_requested_.load()) watch_->Cancel();
    return absl::OkStatus();
  }

  ~ChangeFeedImpl() override { watch_.reset(); }

  absl::Status RequestProgress() override ABSL_LOCKS_EXCLUDED(mu_) {
    uint64_t revision = 0;
    etcd::RangeRequest request;
    request.key = head_key_;
    request.keys_only = true;
    SK_ASSIGN_OR_RETURN(const etcd::RangeResponse head,
                        client_->Range(request));
    const uint64_t last_write =
        head.kvs.empty() ? 0 : static_cast<uint64_t>(head.kvs[0].mod_revision);
    revision = static_cast<uint64_t>(head.revision);
    {
      MutexLock lock(&mu_);
      pending_.emplace_back(last_write, revision);
    }
    // Its answer wakes the feed's thread, which confirms `revision` once
    // it has delivered `last_write`.
    return watch_->RequestProgress();
  }

 private:
  void OnRevision(uint64_t revision,
                  const std::vector<etcd::WatchEvent>& events) {
    if (!failure_.ok()) return;
    Change change;
    change.revision = revision;
    bool state_txn = false;
    bool decoded = false;
    for (const etcd::WatchEvent& event : events) {
      absl::string_view name(event.kv.key);
      if (!absl::ConsumePrefix(&name, state_prefix_)) continue;
      if (name == kHeadKey) state_txn = true;
      absl::string_view id = name;
      if (event.type != etcd::WatchEvent::Type::kPut) {
        // A secret taken away: its index entry goes in the same txn.
        if (absl::ConsumePrefix(&id, kHashPrefix) &&
            id.size() == 2 * kSha256Size) {
          change.removed_hashes.push_back(absl::HexStringToBytes(id));
        }
        continue;
      }
      absl::Status status;
      if (absl::ConsumePrefix(&id, kKeyPrefix)) {
        absl::StatusOr<KeyRecord> record = ParseKeyRecord(event.kv, id);
        status = record.status();
        std::optional<KeyRecord> previous;
        if (status.ok() && event.prev_kv.has_value()) {
          absl::StatusOr<KeyRecord> before = ParseKeyRecord(*event.prev_kv, id);
          status = before.status();
          if (before.ok()) previous = *std::move(before);
        }
        if (status.ok()) {
          change.keys.push_back(*std::move(record));
          change.previous_keys.push_back(std::move(previous));
        }
      } else if (name == kPolicyKey) {
        status = Parse(event.kv, &change.policy.emplace());
      } else if (absl::ConsumePrefix(&id, kAppPrefix)) {
        status = Parse(event.kv, &change.apps.emplace_back());
      } else if (absl::ConsumePrefix(&id, kInstallationPrefix)) {
        status = Parse(event.kv, &change.installations.emplace_back());
      } else if (absl::ConsumePrefix(&id, kAuditPrefix)) {
        absl::StatusOr<v1::AuditEvent> audit = ParseAuditEvent(event.kv);
        status = audit.status();
        if (audit.ok()) change.audit_event = *std::move(audit);
      } else {
        continue;  // index entries, meta/
      }
      if (!status.ok()) {
        failure_ = status;
        // Ends the watch; on_end then reports `failure_`. Until Start() has
        // stored the watch, it cancels it there.
        cancel_requested_.store(true);
        if (etcd::EtcdWatch* watch = watch_ptr_.load()) watch->Cancel();
        return;
      }
      decoded = true;
    }
    if ((state_txn || decoded) && callbacks_.on_change) {
      callbacks_.on_change(std::move(change));
    }
    Advance(revision, /*progress=*/false);
  }

  // Advance() records that everything up to `revision` was delivered, and
  // reports what that confirms: a progress notification, and the pending
  // RequestProgress() whose last write is now delivered.
  void Advance(uint64_t revision, bool progress) ABSL_LOCKS_EXCLUDED(mu_) {
    if (!failure_.ok()) return;
    std::vector<uint64_t> confirmed;
    {
      MutexLock lock(&mu_);
      delivered_ = std::max(delivered_, revision);
      while (!pending_.empty() && pending_.front().first <= delivered_) {
        confirmed.push_back(pending_.front().second);
        pending_.erase(pending_.begin());
      }
      if (progress) confirmed.push_back(revision);
    }
    if (!callbacks_.on_progress) return;
    for (uint64_t r : confirmed) callbacks_.on_progress(r);
  }

  const std::string state_prefix_;
  const std::string head_key_;
  const FollowCallbacks callbacks_;
  etcd::EtcdClient* const client_;
  std::unique_ptr<etcd::EtcdWatch> watch_;
  std::atomic<etcd::EtcdWatch*> watch_ptr_{nullptr};
  std::atomic<bool> cancel_requested_{false};
  absl::Status failure_;  // Feed thread only.
  Mutex mu_;
  uint64_t delivered_ ABSL_GUARDED_BY(mu_);
  // (last state write <= R, R) of each RequestProgress(), in order.
  std::vector<std::pair<uint64_t, uint64_t>> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<ChangeFeed>> EtcdStore::Follow(
    uint64_t after_revision, FollowCallbacks callbacks, bool progress_notify) {
  auto feed = std::make_unique<ChangeFeedImpl>(
      StateKey(""), StateKey(kHeadKey), after_revision, std::move(callbacks),
      client_.get());
  SK_RETURN_IF_ERROR(feed->Start(after_revision, progress_notify));
  return feed;
}

// ---------------------------------------------------------------- export

absl::StatusOr<uint64_t> EtcdStore::Checkpoint(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::create_directory(path, error)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint: cannot create ", path,
        error ? absl::StrCat(": ", error.message()) : ": it exists"));
  }
  SK_ASSIGN_OR_RETURN(const Reader reader, ReadAt(0));
  const std::string file = path + "/state";
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  ExportHeader header;
  header.set_format(std::string(kExportFormat));
  header.set_revision(reader.revision());
  header.set_prefix(options_.prefix);
  auto write = [&](const google::protobuf::MessageLite& message) {
    if (!google::protobuf::util::SerializeDelimitedToOstream(message, &out)) {
      return absl::UnavailableError(absl::StrCat("checkpoint: write ", file));
    }
    return absl::OkStatus();
  };
  SK_RETURN_IF_ERROR(write(header));
  SK_ASSIGN_OR_RETURN(const std::optional<Revisioned<v1::Policy>> policy,
                      reader.GetPolicy());
  if (policy.has_value()) {
    ExportRecord record;
    record.set_revision(policy->revision);
    *record.mutable_policy() = policy->value;
    SK_RETURN_IF_ERROR(write(record));
  }
  SK_RETURN_IF_ERROR(reader.ForEachApp([&](const v1::App& app, uint64_t r) {
    ExportRecord record;
    record.set_revision(r);
    *record.mutable_app() = app;
    return write(record);
  }));
  SK_RETURN_IF_ERROR(
      reader.ForEachInstallation([&](const v1::Installation& i, uint64_t r) {
        ExportRecord record;
        record.set_revision(r);
        *record.mutable_installation() = i;
        return write(record);
      }));
  SK_RETURN_IF_ERROR(reader.ForEachKey([&](const KeyRecord& key) {
    ExportRecord record;
    record.set_revision(key.key().revision());
    *record.mutable_key() = key;
    return write(record);
  }));
  uint64_t after = 0;
  while (true) {
    SK_ASSIGN_OR_RETURN(const std::vector<v1::AuditEvent> events,
                        reader.ListAuditEvents({"", "", after}, 1000));
    for (const v1::AuditEvent& event : events) {
      ExportRecord record;
      record.set_revision(event.revision());
      *record.mutable_audit_event() = event;
      SK_RETURN_IF_ERROR(write(record));
      after = event.revision();
    }
    if (events.size() < 1000) break;
  }
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("checkpoint: ", file));
  return reader.revision();
}

absl::StatusOr<uint64_t> ImportCheckpoint(const std::string& path,
                                          EtcdStore& store) {
  SK_ASSIGN_OR_RETURN(const uint64_t current, store.Revision());
  if (current != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "import: the store already holds state (revision ", current, ")"));
  }
  const std::string file = path + "/state";
  std::ifstream in(file, std::ios::binary);
  if (!in)
    return absl::NotFoundError(absl::StrCat("import: cannot open ", file));
  google::protobuf::io::IstreamInputStream input(&in);
  bool clean_eof = false;
  ExportHeader header;
  if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&header, &input,
                                                                &clean_eof) ||
      header.format() != kExportFormat) {
    return absl::DataLossError(
        absl::StrCat("import: ", file, " is not a Scopekeeper etcd export"));
  }
  uint64_t last = 0;
  Mutation batch;
  size_t batch_ops = 0;
  // Conservative per-record operation counts (record + index entries).
  auto flush = [&]() -> absl::Status {
    if (batch_ops == 0) return absl::OkStatus();
    SK_ASSIGN_OR_RETURN(last, store.WriteGuarded(batch));
    batch = Mutation();
    batch_ops = 0;
    return absl::OkStatus();
  };
  constexpr size_t kOpsPerBatch = 60;  // well under etcd's default 128
  while (true) {
    ExportRecord record;
    if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(
            &record, &input, &clean_eof)) {
      if (clean_eof) break;
      return absl::DataLossError(absl::StrCat("import: ", file, " is corrupt"));
    }
    size_t ops = 1;
    switch (record.record_case()) {
      case ExportRecord::kKey:
        ops = 2 + static_cast<size_t>(record.key().secrets_size());
        if (batch_ops + ops > kOpsPerBatch) SK_RETURN_IF_ERROR(flush());
        batch.put_keys.push_back(record.key());
        break;
      case ExportRecord::kPolicy:
        batch.put_policy = record.policy();
        break;
      case ExportRecord::kApp:
        if (batch_ops + ops > kOpsPerBatch) SK_RETURN_IF_ERROR(flush());
        batch.put_apps.push_back(record.app());
        break;
      case ExportRecord::kInstallation:
        if (batch_ops + ops > kOpsPerBatch) SK_RETURN_IF_ERROR(flush());
        batch.put_installations.push_back(record.installation());
        break;
      case ExportRecord::kAuditEvent:
        // One transaction each: every event keeps a revision of its own.
        SK_RETURN_IF_ERROR(flush());
        batch.audit_event = record.audit_event();
        batch_ops = 1;
        SK_RETURN_IF_ERROR(flush());
        continue;
      case ExportRecord::RECORD_NOT_SET:
        return absl::DataLossError(
            absl::StrCat("import: ", file, " holds an empty record"));
    }
    batch_ops += ops;
  }
  SK_RETURN_IF_ERROR(flush());
  return last;
}

}  // namespace scopekeeper::storage
