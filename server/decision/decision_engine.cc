#include "server/decision/decision_engine.h"

#include <algorithm>
#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/mutants.h"
#include "base/mutex.h"
#include "base/status_macros.h"
#include "base/time_util.h"
#include "base/trace_id.h"
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
// The status of a lookup that found a record newer than the applied
// revision: the decision stops, and Try*() returns the revision to await.
absl::Status AwaitStatus() { return absl::AbortedError("awaiting a revision"); }
// BatchAuthorize entries whose cache entries are loaded together.
constexpr int kPrefetchWindow = 32;

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
  if (!IsUnderPathPrefix(path, prefix)) return false;
  absl::string_view tail = path.substr(prefix.size());
  if (tail.empty() || tail[0] == '?') {
    *scratch = absl::StrCat("/", tail);
    *rest = *scratch;
    return true;
  }
  if (tail[0] != '/') {
    if (!SK_MUTANT(kPrefixNotAtBoundary)) return false;
    // The mutant takes "/v1/apix" for "/v1/api/x".
    *scratch = absl::StrCat("/", tail);
    *rest = *scratch;
    return true;
  }
  *rest = tail;
  return true;
}

// Validated, interned form of a request's target.
struct Target {
  bool http = false;
  // http form: the named or selected API; null when none was selected
  // (decided ROUTE_NOT_FOUND).
  const CompiledApi* api = nullptr;
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
      target->http = true;
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
      SK_RETURN_IF_ERROR(
          ValidateText("http.path", http.path(), kMaxPathLength));
      if (http.api().empty()) {
        SK_RETURN_IF_ERROR(
            ValidateText("http.host", http.host(), kMaxIdLength));
        target->api = policy.SelectApi(http.host(), http.path());
        return absl::OkStatus();
      }
      // The policy's API names are valid (PolicySnapshot::Compile checks
      // them): only a name it does not hold needs the validation, for its
      // message.
      target->api = policy.FindApi(http.api());
      if (target->api == nullptr) {
        SK_RETURN_IF_ERROR(ValidateApiName("http.api", http.api()));
        return absl::InvalidArgumentError(
            absl::StrCat("http.api: unknown API ", Quote(http.api())));
      }
      return absl::OkStatus();
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
      requirement.any_of.empty() ||
      (SK_MUTANT(kAnyOfAsAllOf) ? scopes.ContainsAll(requirement.any_of)
                                : scopes.Intersects(requirement.any_of));
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
    uint64_t* await_revision) {
  absl::StatusOr<std::optional<storage::KeyRecord>> record = read();
  if (!record.ok()) {
    // Fail closed, without leaking storage details to the data plane.
    return absl::UnavailableError("key store unavailable");
  }
  if (!record->has_value()) return record;
  const uint64_t revision = (*record)->key().revision();
  if (revision <= state_->revision()) return record;
  // Written but not yet durable (group commit): never decide on it; the
  // caller waits until it is applied and asks again.
  *await_revision = revision;
  return AwaitStatus();
}

absl::StatusOr<std::shared_ptr<const CompiledKey>>
DecisionEngine::RecompileFromStore(const CompiledKey& key,
                                   const PolicySnapshot& policy,
                                   uint64_t* await_revision) {
  SK_ASSIGN_OR_RETURN(
      std::optional<storage::KeyRecord> record,
      ReadDurableKey([&] { return store_->GetKeyById(key.key_id()); },
                     await_revision));
  if (!record.has_value()) {
    return absl::UnavailableError("key store unavailable");  // never deleted
  }
  return CompileKey(*record, policy, *state_->apps());
}

absl::Status DecisionEngine::LookupKey(absl::string_view api_key,
                                       const SecretDigest* precomputed,
                                       uint64_t* await_revision, Lookup* out) {
  // Longer than any issued key: a malformed key, found nowhere.
  if (api_key.empty() || api_key.size() > kMaxApiKeyLength) {
    return absl::OkStatus();
  }
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
                          await_revision));
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

absl::Status DecisionEngine::CheckServing() const {
  SK_RETURN_IF_ERROR(state_->holds().Check());
  if (freshness_ != nullptr) SK_RETURN_IF_ERROR(freshness_->Check());
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> DecisionEngine::RevisionToAwait(
    uint64_t min_revision, absl::string_view field) const {
  if (min_revision <= state_->revision()) return 0;
  if (min_revision > state_->horizon() && !state_->probes_horizon()) {
    // No write here (or in the cluster, for a replica) ever reached it:
    // waiting could only end at the deadline.
    return absl::OutOfRangeError(
        absl::StrCat(field, ": revision ", min_revision,
                     " is beyond the latest revision of this server (",
                     state_->horizon(), ")"));
  }
  return min_revision;
}

DecisionEngine::Outcome DecisionEngine::TryAuthorize(
    const v1::AuthorizeRequest& request, v1::AuthorizeResponse* response) {
  if (absl::Status serving = CheckServing(); !serving.ok()) return {serving};
  const absl::StatusOr<uint64_t> await =
      RevisionToAwait(request.min_revision(), "min_revision");
  if (!await.ok()) return {await.status()};
  if (*await != 0) return {absl::OkStatus(), *await};
  uint64_t await_revision = 0;
  const absl::Time now = clock_->Now();  // the decision's one instant
  absl::Time since = now;
  const absl::Status status = AuthorizeOne(request, /*digest=*/nullptr, now,
                                           &since, &await_revision, response);
  return {await_revision != 0 ? absl::OkStatus() : status, await_revision};
}

absl::Status DecisionEngine::AuthorizeOne(const v1::AuthorizeRequest& request,
                                          const SecretDigest* digest,
                                          absl::Time now, absl::Time* since,
                                          uint64_t* await_revision,
                                          v1::AuthorizeResponse* response,
                                          bool trace_id) {
  if (!request.organization_id().empty()) {
    SK_RETURN_IF_ERROR(
        ValidateId("organization_id", request.organization_id()));
  }
  if (!request.trace_id().empty()) {
    SK_RETURN_IF_ERROR(ValidateId("trace_id", request.trace_id()));
  }
  // Revision first: the policy and cache read after it are at least as new.
  const uint64_t revision = state_->revision();
  const PolicySnapshot& policy = state_->PolicyForDecision();
  // The API's name, for metrics (the policy outlives this call).
  absl::string_view api_name =
      request.has_http() ? absl::string_view(request.http().api()) : "";
  SK_RETURN_IF_ERROR(Decide(request, digest, policy, now, await_revision,
                            response, &api_name));
  response->set_revision(revision);
  if (!request.trace_id().empty()) {
    response->set_trace_id(request.trace_id());
  } else if (trace_id) {
    response->set_trace_id(NewTraceId());
  }
  // The same clock as `now`: the wall clock may step back, never a
  // negative latency.
  const absl::Time done = clock_->Now();
  observer_->OnDecision(api_name, request, *response,
                        std::max(done - *since, absl::ZeroDuration()));
  *since = done;
  return absl::OkStatus();
}

absl::Status DecisionEngine::Decide(const v1::AuthorizeRequest& request,
                                    const SecretDigest* digest,
                                    const PolicySnapshot& policy,
                                    absl::Time now, uint64_t* await_revision,
                                    v1::AuthorizeResponse* response,
                                    absl::string_view* api_name) {
  Target target;
  SK_RETURN_IF_ERROR(ParseTarget(request, policy, &target));

  Lookup lookup;
  SK_RETURN_IF_ERROR(
      LookupKey(request.api_key(), digest, await_revision, &lookup));
  if (!lookup.found ||
      (now >= lookup.entry.secret_expire_time && !SK_MUTANT(kGraceNeverEnds))) {
    Deny(v1::KEY_INVALID, 401, kInvalidKeyMessage, response);
    return absl::OkStatus();
  }
  std::shared_ptr<const CompiledKey> key = std::move(lookup.entry.key);
  if (key->policy_generation != policy.generation()) {
    // The cache is being recompiled for a new policy: compile this one now.
    SK_ASSIGN_OR_RETURN(key, RecompileFromStore(*key, policy, await_revision));
  }
  response->set_key_id(key->key_id().data(), key->key_id().size());
  response->set_organization_id(key->organization_id().data(),
                                key->organization_id().size());
  if (!key->app_id().empty() || !response->app_id().empty()) {
    response->set_app_id(key->app_id().data(), key->app_id().size());
  }
  switch (key->StatusAt(now)) {
    case v1::REVOKED:
      Deny(v1::KEY_REVOKED, 401, kInvalidKeyMessage, response);
      return absl::OkStatus();
    case v1::EXPIRED:
      if (SK_MUTANT(kKeyExpiryIgnored)) break;
      Deny(v1::KEY_EXPIRED, 401, kInvalidKeyMessage, response);
      return absl::OkStatus();
    default:
      break;
  }
  usage_->Touch(*key, now);
  if (!request.organization_id().empty() &&
      request.organization_id() != key->organization_id() &&
      !SK_MUTANT(kOrganizationNotChecked)) {
    Deny(v1::ORGANIZATION_MISMATCH, 403, kWrongOrgMessage, response);
    return absl::OkStatus();
  }

  const CompiledRequirement* requirement = &target.requirement;
  const CompiledRoute* route = nullptr;
  if (target.http && target.api == nullptr) {  // no API selected
    Deny(v1::ROUTE_NOT_FOUND, 404, kNotFoundMessage, response);
    return absl::OkStatus();
  }
  if (target.api != nullptr) {
    *api_name = target.api->name;
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
  if (route != nullptr && !SK_MUTANT(kRedactionIgnored)) {
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

DecisionEngine::Outcome DecisionEngine::TryBatchAuthorize(
    const v1::BatchAuthorizeRequest& request,
    v1::BatchAuthorizeResponse* response) {
  if (absl::Status serving = CheckServing(); !serving.ok()) return {serving};
  if (request.requests_size() > kMaxBatchSize) {
    return {absl::InvalidArgumentError(
        absl::StrCat("requests: ", request.requests_size(),
                     " entries, at most ", kMaxBatchSize, " allowed"))};
  }
  // The batch is decided at one revision: the highest any entry asks for.
  uint64_t await = 0;
  for (int i = 0; i < request.requests_size(); ++i) {
    const absl::StatusOr<uint64_t> entry =
        RevisionToAwait(request.requests(i).min_revision(),
                        absl::StrCat("requests[", i, "].min_revision"));
    if (!entry.ok()) return {entry.status()};
    await = std::max(await, *entry);
  }
  if (await != 0) return {absl::OkStatus(), await};
  // Hash the keys of a window of entries and start loading their cache
  // entries before deciding them: the entries' cache misses (table probe,
  // then compiled key) overlap instead of following one another. Windows
  // keep what was prefetched in the CPU caches until it is used.
  const int n = request.requests_size();
  const KeyCache& cache = state_->cache();
  std::array<SecretDigest, kPrefetchWindow> digests;
  std::array<bool, kPrefetchWindow> hashed;
  const bool compact = request.compact();
  v1::AuthorizeResponse scratch;  // compact: each entry's full answer
  // One instant for every entry (see the header); the latencies chain.
  const absl::Time now = clock_->Now();
  absl::Time since = now;
  response->Clear();
  response->mutable_responses()->Reserve(n);
  for (int i = 0; i < n; ++i) {
    const int w = i % kPrefetchWindow;
    if (w == 0) {
      const int end = std::min(n, i + kPrefetchWindow);
      for (int j = i; j < end; ++j) {
        const std::string& key = request.requests(j).api_key();
        // Keys LookupKey() never looks up are not hashed.
        hashed[j - i] = !key.empty() && key.size() <= kMaxApiKeyLength;
        if (!hashed[j - i]) continue;
        digests[j - i] = HashSecret(key);
        cache.Prefetch(digests[j - i]);
      }
      for (int j = i; j < end; ++j) {
        if (hashed[j - i]) cache.PrefetchKey(digests[j - i]);
      }
    }
    uint64_t await_revision = 0;
    v1::AuthorizeResponse* out = response->add_responses();
    if (compact) scratch.Clear();
    absl::Status s = AuthorizeOne(
        request.requests(i), hashed[w] ? &digests[w] : nullptr, now, &since,
        &await_revision, compact ? &scratch : out, /*trace_id=*/!compact);
    if (await_revision != 0) return {absl::OkStatus(), await_revision};
    if (!s.ok()) {
      return {absl::Status(s.code(),
                           absl::StrCat("requests[", i, "].", s.message()))};
    }
    if (compact) {
      out->set_allowed(scratch.allowed());
      out->set_reason(scratch.reason());
      out->set_http_status(scratch.http_status());
      out->set_revision(scratch.revision());
      out->mutable_missing_scopes()->CopyFrom(scratch.missing_scopes());
      out->mutable_redactions()->CopyFrom(scratch.redactions());
    }
  }
  return {absl::OkStatus()};
}

DecisionEngine::Outcome DecisionEngine::TryDescribeKey(
    const v1::DescribeKeyRequest& request, v1::DescribeKeyResponse* response) {
  if (absl::Status serving = CheckServing(); !serving.ok()) return {serving};
  uint64_t await_revision = 0;
  const absl::Status status = DescribeOne(request, &await_revision, response);
  return {await_revision != 0 ? absl::OkStatus() : status, await_revision};
}

absl::Status DecisionEngine::DescribeOne(const v1::DescribeKeyRequest& request,
                                         uint64_t* await_revision,
                                         v1::DescribeKeyResponse* response) {
  if (!request.organization_id().empty()) {
    SK_RETURN_IF_ERROR(
        ValidateId("organization_id", request.organization_id()));
  }
  const uint64_t revision = state_->revision();
  const std::shared_ptr<const PolicySnapshot> policy = state_->policy();
  Lookup lookup;
  SK_RETURN_IF_ERROR(LookupKey(request.api_key(), /*digest=*/nullptr,
                               await_revision, &lookup));
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
                               await_revision));
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
  if (!key->app_id().empty()) {
    if (const v1::App* app = state_->apps()->FindApp(key->app_id())) {
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

template <typename Try>
absl::Status DecisionEngine::Blocking(Try attempt, absl::Duration timeout) {
  for (int awaits = 0;; ++awaits) {
    const Outcome outcome = attempt();
    if (outcome.ready()) return outcome.status;
    if (awaits == kMaxAwaits) return TooManyAwaits();
    SK_RETURN_IF_ERROR(AwaitRevision(outcome.await_revision, timeout));
  }
}

absl::Status DecisionEngine::AwaitRevision(uint64_t revision,
                                           absl::Duration timeout) {
  // The data plane's wait (WhenApplied), on this thread: the same answers,
  // a horizon probe's OUT_OF_RANGE included. A base Mutex, not an
  // absl::Notification: TSan cannot see the latter's happens-before edge
  // (Debian's Abseil is uninstrumented) and reported the status handed
  // over through it as a race.
  struct Wait {
    Mutex mu;
    CondVar cv;
    bool done ABSL_GUARDED_BY(mu) = false;
    absl::Status status ABSL_GUARDED_BY(mu);
  };
  const auto shared = std::make_shared<Wait>();
  Wait& wait = *shared;
  const auto done = [&wait]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(wait.mu) {
    return wait.done;
  };
  const ServingState::WaitId id =
      state_->WhenApplied(revision, [shared](absl::Status status) {
        Wait& wait = *shared;
        {
          MutexLock lock(&wait.mu);
          wait.status = std::move(status);
          wait.done = true;
        }
        wait.cv.SignalAll();
      });
  if (id != 0) {
    bool in_time;
    {
      MutexLock lock(&wait.mu);
      in_time = wait.cv.WaitWithTimeout(&wait.mu, timeout, done);
    }
    if (!in_time && state_->CancelWait(id)) {
      return absl::DeadlineExceededError(absl::StrCat(
          "min_revision ", revision, " not reached before the deadline (at ",
          state_->revision(), ")"));
    }
  }
  MutexLock lock(&wait.mu);
  wait.cv.Wait(&wait.mu, done);  // ran, or is running
  return wait.status;
}

absl::Status DecisionEngine::Authorize(const v1::AuthorizeRequest& request,
                                       v1::AuthorizeResponse* response,
                                       absl::Duration timeout) {
  return Blocking(
      [&] {
        response->Clear();
        return TryAuthorize(request, response);
      },
      timeout);
}

absl::Status DecisionEngine::BatchAuthorize(
    const v1::BatchAuthorizeRequest& request,
    v1::BatchAuthorizeResponse* response, absl::Duration timeout) {
  return Blocking([&] { return TryBatchAuthorize(request, response); },
                  timeout);
}

absl::Status DecisionEngine::DescribeKey(const v1::DescribeKeyRequest& request,
                                         v1::DescribeKeyResponse* response,
                                         absl::Duration timeout) {
  return Blocking(
      [&] {
        response->Clear();
        return TryDescribeKey(request, response);
      },
      timeout);
}

}  // namespace scopekeeper
