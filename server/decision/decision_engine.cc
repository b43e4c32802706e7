#include "server/decision/decision_engine.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <string>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "base/time_util.h"
#include "server/policy/key_secret.h"
#include "server/policy/names.h"

namespace scopekeeper {
namespace {

constexpr absl::string_view kInvalidKeyMessage = "Invalid or expired API key";
constexpr absl::string_view kWrongOrgMessage =
    "API key is not valid for this organization";
constexpr absl::string_view kWrongApiMessage =
    "API key is not valid for this API";
constexpr absl::string_view kNotFoundMessage = "Not found";
// Store reads of a key that keeps changing under a lookup before it fails
// UNAVAILABLE (each retry first waits for the newer revision).
constexpr int kMaxLookupAttempts = 3;
// BatchAuthorize entries whose cache entries are loaded together.
constexpr int kPrefetchWindow = 32;

// NewTraceId() returns a random UUID v4 (8-4-4-4-12 lowercase hex). Trace
// ids are not secrets: a fast per-thread PRNG is enough. Formatted by hand:
// one is made per decision, and StrFormat was ~5 % of a batch's CPU.
std::string NewTraceId() {
  thread_local absl::BitGen gen;
  const uint64_t hi = (absl::Uniform<uint64_t>(gen) & ~uint64_t{0xf000}) |
                      uint64_t{0x4000};  // version 4
  const uint64_t lo = (absl::Uniform<uint64_t>(gen) >> 2) |
                      (uint64_t{0x2} << 62);  // variant 10xx
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  int pos = 0;
  const auto put = [&](uint64_t bits, int nibbles) {
    for (int i = nibbles - 1; i >= 0; --i) {
      out[pos++] = kHex[(bits >> (4 * i)) & 0xf];
    }
  };
  put(hi >> 32, 8);
  ++pos;
  put(hi >> 16, 4);
  ++pos;
  put(hi, 4);
  ++pos;
  put(lo >> 48, 4);
  ++pos;
  put(lo, 12);
  return out;
}

void Deny(v1::Reason reason, int http_status, absl::string_view message,
          v1::AuthorizeResponse* response) {
  response->set_allowed(false);
  response->set_reason(reason);
  response->set_http_status(http_status);
  response->set_message(std::string(message));
}

// StripPathPrefix() returns the path (query included) below `prefix`, or
// false when the path is not under it. "" and "?q" below it become "/".
bool StripPathPrefix(absl::string_view path, absl::string_view prefix,
                     std::string* scratch, absl::string_view* rest) {
  if (prefix.empty()) {
    *rest = path;
    return true;
  }
  if (!absl::StartsWith(path, prefix)) return false;
  absl::string_view tail = path.substr(prefix.size());
  if (tail.empty() || tail[0] == '?') {
    *scratch = absl::StrCat("/", tail);
    *rest = *scratch;
    return true;
  }
  if (tail[0] != '/') return false;
  *rest = tail;
  return true;
}

// Validated, interned form of a request's target.
struct Target {
  const CompiledApi* api = nullptr;  // http form only
  HttpMethod method = HttpMethod::kGet;
  CompiledRequirement requirement;  // explicit form only
};

absl::Status ParseTarget(const v1::AuthorizeRequest& request,
                         const PolicySnapshot& policy, Target* target) {
  switch (request.target_case()) {
    case v1::AuthorizeRequest::kRequirement: {
      SK_ASSIGN_OR_RETURN(
          target->requirement,
          policy.CompileRequirement(request.requirement(), "requirement"));
      return absl::OkStatus();
    }
    case v1::AuthorizeRequest::kHttp: {
      const v1::HttpRequestTarget& http = request.http();
      SK_RETURN_IF_ERROR(ValidateApiName("http.api", http.api()));
      target->api = policy.FindApi(http.api());
      if (target->api == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("http.api: unknown API ", Quote(http.api())));
      }
      absl::StatusOr<HttpMethod> method = ParseHttpMethod(http.method());
      if (!method.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("http.method: ", method.status().message()));
      }
      target->method = *method;
      if (http.path().empty()) {
        return absl::InvalidArgumentError("http.path: required");
      }
      // UTF-8, no control characters, at most kMaxPathLength bytes.
      return ValidateText("http.path", http.path(), kMaxPathLength);
    }
    case v1::AuthorizeRequest::TARGET_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("target: set either requirement or http");
}

// Checks `requirement` against `scopes`; on failure fills the denial.
bool CheckRequirement(const CompiledRequirement& requirement,
                      const ScopeSet& scopes, const PolicySnapshot& policy,
                      v1::AuthorizeResponse* response) {
  if (requirement.authenticated_only) return true;
  const bool all_ok = scopes.ContainsAll(requirement.all_of);
  const bool any_ok =
      requirement.any_of.empty() || scopes.Intersects(requirement.any_of);
  if (all_ok && any_ok) return true;

  std::vector<std::string> missing_all;
  if (!all_ok) {
    requirement.all_of.ForEach([&](int id) {
      if (!scopes.Contains(id)) missing_all.push_back(policy.ScopeName(id));
    });
  }
  std::vector<std::string> any_alternatives;
  if (!any_ok) any_alternatives = policy.ScopeNames(requirement.any_of);

  std::string message = "Insufficient scope. Required";
  if (!missing_all.empty()) {
    absl::StrAppend(&message, ": ", absl::StrJoin(missing_all, ", "));
    if (!any_alternatives.empty()) {
      absl::StrAppend(&message,
                      " and one of: ", absl::StrJoin(any_alternatives, ", "));
    }
  } else {
    absl::StrAppend(&message,
                    " one of: ", absl::StrJoin(any_alternatives, ", "));
  }
  Deny(v1::INSUFFICIENT_SCOPE, 403, message, response);
  for (std::string& s : missing_all) response->add_missing_scopes(std::move(s));
  for (std::string& s : any_alternatives) {
    response->add_missing_scopes(std::move(s));
  }
  return false;
}

}  // namespace

struct DecisionEngine::Lookup {
  bool found = false;
  KeyCache::Entry entry;
  // The durable record, when the key was read from the store (a miss).
  std::optional<storage::KeyRecord> record;
};

absl::StatusOr<std::optional<storage::KeyRecord>>
DecisionEngine::ReadDurableKey(
    absl::FunctionRef<absl::StatusOr<std::optional<storage::KeyRecord>>()> read,
    absl::Time deadline) {
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<std::optional<storage::KeyRecord>> record = read();
    if (!record.ok()) {
      // Fail closed, without leaking storage details to the data plane.
      return absl::UnavailableError("key store unavailable");
    }
    if (!record->has_value()) return record;
    const uint64_t revision = (*record)->key().revision();
    if (revision <= state_->revision()) return record;
    // Written but not yet durable (group commit): never decide on it; wait
    // until it is applied and read again.
    if (attempt == kMaxLookupAttempts) {
      return absl::UnavailableError("key is being changed; retry");
    }
    SK_RETURN_IF_ERROR(state_->WaitForRevision(
        revision, std::min(deadline, absl::Now() + kMaxRevisionWait)));
  }
}

absl::StatusOr<std::shared_ptr<const CompiledKey>>
DecisionEngine::RecompileFromStore(const CompiledKey& key,
                                   const PolicySnapshot& policy,
                                   absl::Time deadline) {
  SK_ASSIGN_OR_RETURN(
      std::optional<storage::KeyRecord> record,
      ReadDurableKey([&] { return store_->GetKeyById(key.key_id()); },
                     deadline));
  if (!record.has_value()) {
    return absl::UnavailableError("key store unavailable");  // never deleted
  }
  return CompileKey(*record, policy, *state_->apps());
}

absl::Status DecisionEngine::LookupKey(absl::string_view api_key,
                                       const SecretDigest* precomputed,
                                       absl::Time deadline, Lookup* out) {
  if (api_key.empty()) return absl::OkStatus();
  const SecretDigest digest =
      precomputed != nullptr ? *precomputed : HashSecret(api_key);
  KeyCache& cache = state_->cache();
  const bool hit = cache.Find(digest, &out->entry);
  observer_->OnCacheLookup(hit);
  if (hit) {
    out->found = true;
    return absl::OkStatus();
  }
  KeyCache::Epoch epoch = 0;
  SK_ASSIGN_OR_RETURN(std::optional<storage::KeyRecord> record,
                      ReadDurableKey(
                          [&] {
                            // Before the read: a writer's change after it
                            // makes the insert below a no-op, so the cache
                            // never goes back to what this read saw.
                            epoch = cache.WriteEpoch(digest);
                            return store_->GetKeyBySecretHash(digest.view());
                          },
                          deadline));
  if (!record.has_value()) return absl::OkStatus();
  for (const storage::SecretHash& secret : record->secrets()) {
    if (secret.sha256() == digest.view()) {
      out->entry.secret_expire_time =
          FromProtoTimeOr(secret.expire_time(), absl::InfiniteFuture());
    }
  }
  out->entry.key = CompileKey(*record, *state_->policy(), *state_->apps());
  out->found = true;
  out->record = std::move(record);
  // A complete cache already holds every key: a no-op there.
  cache.InsertIfUnchanged(digest, out->entry, epoch);
  return absl::OkStatus();
}

absl::Status DecisionEngine::Authorize(const v1::AuthorizeRequest& request,
                                       absl::Time deadline,
                                       v1::AuthorizeResponse* response) {
  if (freshness_ != nullptr) SK_RETURN_IF_ERROR(freshness_->Check());
  return AuthorizeOne(request, /*digest=*/nullptr, deadline, response);
}

absl::Status DecisionEngine::AuthorizeOne(const v1::AuthorizeRequest& request,
                                          const SecretDigest* digest,
                                          absl::Time deadline,
                                          v1::AuthorizeResponse* response) {
  if (request.api_key().size() > kMaxApiKeyLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("api_key: longer than ", kMaxApiKeyLength, " bytes"));
  }
  if (!request.organization_id().empty()) {
    SK_RETURN_IF_ERROR(
        ValidateId("organization_id", request.organization_id()));
  }
  if (!request.trace_id().empty()) {
    SK_RETURN_IF_ERROR(ValidateId("trace_id", request.trace_id()));
  }
  if (request.min_revision() > state_->revision()) {
    SK_RETURN_IF_ERROR(state_->WaitForRevision(
        request.min_revision(),
        std::min(deadline, absl::Now() + kMaxRevisionWait)));
    // The wait may have outlasted the replica's freshness.
    if (freshness_ != nullptr) SK_RETURN_IF_ERROR(freshness_->Check());
  }
  // Revision first: the policy and cache read after it are at least as new.
  const uint64_t revision = state_->revision();
  const PolicySnapshot& policy = state_->PolicyForDecision();
  const auto start = std::chrono::steady_clock::now();
  SK_RETURN_IF_ERROR(Decide(request, digest, policy, deadline, response));
  response->set_revision(revision);
  response->set_trace_id(request.trace_id().empty() ? NewTraceId()
                                                    : request.trace_id());
  observer_->OnDecision(
      request, *response,
      absl::FromChrono(std::chrono::steady_clock::now() - start));
  return absl::OkStatus();
}

absl::Status DecisionEngine::Decide(const v1::AuthorizeRequest& request,
                                    const SecretDigest* digest,
                                    const PolicySnapshot& policy,
                                    absl::Time deadline,
                                    v1::AuthorizeResponse* response) {
  Target target;
  SK_RETURN_IF_ERROR(ParseTarget(request, policy, &target));

  Lookup lookup;
  SK_RETURN_IF_ERROR(LookupKey(request.api_key(), digest, deadline, &lookup));
  const absl::Time now = clock_->Now();
  if (!lookup.found || now >= lookup.entry.secret_expire_time) {
    Deny(v1::KEY_INVALID, 401, kInvalidKeyMessage, response);
    return absl::OkStatus();
  }
  std::shared_ptr<const CompiledKey> key = std::move(lookup.entry.key);
  if (key->policy_generation != policy.generation()) {
    // The cache is being recompiled for a new policy: compile this one now.
    SK_ASSIGN_OR_RETURN(key, RecompileFromStore(*key, policy, deadline));
  }
  response->set_key_id(key->key_id().data(), key->key_id().size());
  response->set_organization_id(key->organization_id().data(),
                                key->organization_id().size());
  response->set_app_id(key->app_id);
  switch (key->StatusAt(now)) {
    case v1::REVOKED:
      Deny(v1::KEY_REVOKED, 401, kInvalidKeyMessage, response);
      return absl::OkStatus();
    case v1::EXPIRED:
      Deny(v1::KEY_EXPIRED, 401, kInvalidKeyMessage, response);
      return absl::OkStatus();
    default:
      break;
  }
  usage_->Touch(*key, now);
  if (!request.organization_id().empty() &&
      request.organization_id() != key->organization_id()) {
    Deny(v1::ORGANIZATION_MISMATCH, 403, kWrongOrgMessage, response);
    return absl::OkStatus();
  }

  const CompiledRequirement* requirement = &target.requirement;
  const CompiledRoute* route = nullptr;
  if (target.api != nullptr) {
    if ((key->api_mask >> target.api->index & 1) == 0) {
      Deny(v1::WRONG_API, 403, kWrongApiMessage, response);
      return absl::OkStatus();
    }
    std::string scratch;
    absl::string_view rest;
    RouteTable::Match match;
    if (StripPathPrefix(request.http().path(), target.api->path_prefix,
                        &scratch, &rest)) {
      match = target.api->routes.Find(target.method, rest);
    }
    if (match.route_index < 0) {
      Deny(v1::ROUTE_NOT_FOUND, 404, kNotFoundMessage, response);
      return absl::OkStatus();
    }
    route = &target.api->compiled_routes[match.route_index];
    response->set_matched_route(route->matched_route);
    requirement = &route->requirement;
  }

  const ScopeSet scopes = key->ScopesAt(now);
  if (!CheckRequirement(*requirement, scopes, policy, response)) {
    return absl::OkStatus();
  }
  if (route != nullptr) {
    for (const CompiledRedaction& redaction : route->redactions) {
      if (!scopes.Contains(redaction.unless_scope)) {
        response->add_redactions(redaction.field);
      }
    }
  }
  response->set_allowed(true);
  response->set_reason(v1::ALLOWED);
  response->set_http_status(200);
  return absl::OkStatus();
}

absl::Status DecisionEngine::BatchAuthorize(
    const v1::BatchAuthorizeRequest& request, absl::Time deadline,
    v1::BatchAuthorizeResponse* response) {
  if (freshness_ != nullptr) SK_RETURN_IF_ERROR(freshness_->Check());
  if (request.requests_size() > kMaxBatchSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("requests: ", request.requests_size(),
                     " entries, at most ", kMaxBatchSize, " allowed"));
  }
  // Hash the keys of a window of entries and start loading their cache
  // entries before deciding them: the entries' cache misses (table probe,
  // then compiled key) overlap instead of following one another. Windows
  // keep what was prefetched in the CPU caches until it is used.
  const int n = request.requests_size();
  const KeyCache& cache = state_->cache();
  std::array<SecretDigest, kPrefetchWindow> digests;
  std::array<bool, kPrefetchWindow> hashed;
  response->mutable_responses()->Reserve(n);
  for (int i = 0; i < n; ++i) {
    const int w = i % kPrefetchWindow;
    if (w == 0) {
      const int end = std::min(n, i + kPrefetchWindow);
      for (int j = i; j < end; ++j) {
        const std::string& key = request.requests(j).api_key();
        // Keys AuthorizeOne() rejects or never looks up are not hashed.
        hashed[j - i] = !key.empty() && key.size() <= kMaxApiKeyLength;
        if (!hashed[j - i]) continue;
        digests[j - i] = HashSecret(key);
        cache.Prefetch(digests[j - i]);
      }
      for (int j = i; j < end; ++j) {
        if (hashed[j - i]) cache.PrefetchKey(digests[j - i]);
      }
    }
    absl::Status s =
        AuthorizeOne(request.requests(i), hashed[w] ? &digests[w] : nullptr,
                     deadline, response->add_responses());
    if (!s.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat("requests[", i, "].", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status DecisionEngine::DescribeKey(const v1::DescribeKeyRequest& request,
                                         v1::DescribeKeyResponse* response) {
  if (freshness_ != nullptr) SK_RETURN_IF_ERROR(freshness_->Check());
  if (request.api_key().size() > kMaxApiKeyLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("api_key: longer than ", kMaxApiKeyLength, " bytes"));
  }
  if (!request.organization_id().empty()) {
    SK_RETURN_IF_ERROR(
        ValidateId("organization_id", request.organization_id()));
  }
  const uint64_t revision = state_->revision();
  const std::shared_ptr<const PolicySnapshot> policy = state_->policy();
  Lookup lookup;
  SK_RETURN_IF_ERROR(LookupKey(request.api_key(), /*digest=*/nullptr,
                               absl::InfiniteFuture(), &lookup));
  const absl::Time now = clock_->Now();
  if (!lookup.found || now >= lookup.entry.secret_expire_time) {
    return absl::UnauthenticatedError(std::string(kInvalidKeyMessage));
  }
  // The metadata is not cached: use the record a miss read, else read it
  // (as durable as the cache); decide the status from it.
  std::optional<storage::KeyRecord> record = std::move(lookup.record);
  if (!record.has_value()) {
    const std::string key_id(lookup.entry.key->key_id());
    SK_ASSIGN_OR_RETURN(
        record, ReadDurableKey([&] { return store_->GetKeyById(key_id); },
                               absl::InfiniteFuture()));
  }
  if (!record.has_value()) {
    return absl::UnauthenticatedError(std::string(kInvalidKeyMessage));
  }
  const std::shared_ptr<const CompiledKey> key =
      CompileKey(*record, *policy, *state_->apps());
  if (key->StatusAt(now) != v1::ACTIVE) {
    return absl::UnauthenticatedError(std::string(kInvalidKeyMessage));
  }
  if (!request.organization_id().empty() &&
      request.organization_id() != key->organization_id()) {
    return absl::PermissionDeniedError(std::string(kWrongOrgMessage));
  }
  *response->mutable_key() = KeyForApi(*record, *key, *policy, now);
  if (!key->app_id.empty()) {
    if (const v1::App* app = state_->apps()->FindApp(key->app_id)) {
      *response->mutable_app() = *app;
    }
  }
  std::vector<std::string> scopes(response->key().effective_scopes().begin(),
                                  response->key().effective_scopes().end());
  std::sort(scopes.begin(), scopes.end());
  for (std::string& s : scopes) response->add_scopes(std::move(s));
  response->set_revision(std::max(revision, record->key().revision()));
  return absl::OkStatus();
}

}  // namespace scopekeeper
