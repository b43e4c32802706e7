#include "tests/oracle/generator.h"

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "proto/scopekeeper/v1/scopekeeper.pb.h"

namespace scopekeeper::oracle {
namespace {

using Strings = std::vector<std::string>;

// Name pools. Scope names mix the seeds' flat and resource:action forms.
const Strings kScopePool = {"orders_read",
                            "orders_write",
                            "stock_read",
                            "stock_write",
                            "order:read",
                            "order:write",
                            "patient:read",
                            "prescription:read",
                            "webhooks.admin",
                            "sku-write",
                            "doctor_statistics:read",
                            "a",
                            "b:c",
                            "x.y-z"};
const Strings kApiPool = {"pharmacy", "management", "public", "mkt"};
const Strings kKeyPrefixes = {"", "rx_ph", "rx_mg", "max_prd_ak"};
const Strings kLiterals = {"orders", "order", "skus", "status",
                           "stock",  "me",    "v2",   "Orders"};
const Strings kParams = {"{id}", "{uid}", "{order_id}"};
// Parameter values; some equal literals, so literal and {param} compete.
const Strings kValues = {"42",  "ord_981", "orders", "status", "me",
                         "x",   "%2e%2e",  "A",      "sku_1",  "v2",
                         "a.b", "-",       "Orders", "%20"};
const Strings kMethods = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};
const Strings kOrgs = {"org_a", "org_b", "org_c"};
const Strings kFields = {"prescription", "patient", "price"};
const Strings kBundles = {"order-management", "readers", "stock-sync"};

// A tiny deterministic RNG (std distributions differ between libraries).
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  // Uniform() is in [0, n).
  int Uniform(size_t n) { return n <= 1 ? 0 : static_cast<int>(engine_() % n); }
  // Range() is in [lo, hi].
  int Range(int lo, int hi) { return lo + Uniform(hi - lo + 1); }
  bool Chance(double p) { return (engine_() >> 11) * 0x1.0p-53 < p; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Uniform(v.size())];
  }
  template <typename T>
  void Shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[Uniform(i)]);
  }
  // Subset() is up to `max` distinct elements of `v`, in random order.
  template <typename T>
  std::vector<T> Subset(std::vector<T> v, int min, int max) {
    Shuffle(v);
    v.resize(std::min<size_t>(v.size(), Range(min, max)));
    return v;
  }

 private:
  std::mt19937_64 engine_;
};

bool IsParam(const std::string& s) { return !s.empty() && s[0] == '{'; }

Strings TemplateSegments(const std::string& path) {
  Strings segments = absl::StrSplit(path, '/', absl::SkipEmpty());
  return segments;
}

std::string Shape(const v1::Route& route) {
  std::string shape = route.method();
  for (const std::string& s : TemplateSegments(route.path())) {
    shape += "/" + (IsParam(s) ? std::string("{}") : s);
  }
  return shape;
}

std::string JoinPath(const Strings& segments, bool trailing_slash) {
  if (segments.empty()) return "/";
  return "/" + absl::StrJoin(segments, "/") + (trailing_slash ? "/" : "");
}

Strings Declared(const v1::Policy& p) {
  Strings out;
  for (const auto& s : p.scopes()) out.push_back(s.name());
  return out;
}

template <typename M>
std::shared_ptr<const google::protobuf::Message> Share(M m) {
  return std::make_shared<const M>(std::move(m));
}

void SetTime(absl::Time t, google::protobuf::Timestamp* out) {
  out->set_seconds(absl::ToUnixSeconds(t));
}

class Generator {
 public:
  Generator(uint64_t seed, const GeneratorOptions& options)
      : rng_(seed), options_(options) {
    scenario_.seed = seed;
    app_tag_ = absl::StrCat(seed % 1'000'000'007);
  }

  Scenario Run() {
    policy_ = RandomPolicy();
    PutPolicy(policy_);
    for (int i = rng_.Range(0, 2); i > 0; --i) PutApp(/*new_app=*/true);
    for (int i = rng_.Range(0, 3); i > 0; --i) ApproveInstallation();
    for (int i = rng_.Range(2, 6); i > 0; --i) CreateKey();
    Requests();
    for (int r = rng_.Range(options_.min_rounds, options_.max_rounds); r > 0;
         --r) {
      for (int i = rng_.Range(0, 4); i > 0; --i) AdminOperation();
      if (rng_.Chance(0.7)) AdvanceClock();
      Requests();
    }
    return std::move(scenario_);
  }

 private:
  struct Key {
    std::string org;
    Strings apis;
    bool revoked = false;
    int secrets = 1;
  };

  void Add(StepKind kind, std::shared_ptr<const google::protobuf::Message> m,
           int slot = -1) {
    Step step;
    step.kind = kind;
    step.request = std::move(m);
    step.slot = slot;
    scenario_.steps.push_back(std::move(step));
  }

  absl::Time Later() {
    const absl::Time t = now_ + absl::Seconds(60 * rng_.Range(1, 20));
    deadlines_.push_back(t);
    return t;
  }

  // --- Policies ---

  v1::Requirement RandomRequirement(const Strings& declared) {
    v1::Requirement r;
    if (rng_.Chance(0.15) || declared.empty()) {
      r.set_authenticated_only(true);
      return r;
    }
    do {
      r.Clear();
      for (auto& s : rng_.Subset(declared, 0, 3)) r.add_all_of(s);
      for (auto& s : rng_.Subset(declared, 0, 3)) r.add_any_of(s);
    } while (r.all_of_size() == 0 && r.any_of_size() == 0);
    return r;
  }

  Strings RandomTemplate() {
    Strings t;
    const int n = rng_.Chance(0.05) ? 0 : rng_.Range(1, 4);
    for (int i = 0; i < n; ++i) {
      t.push_back(i > 0 && rng_.Chance(0.35) ? rng_.Pick(kParams)
                                             : rng_.Pick(kLiterals));
    }
    return t;
  }

  // RelatedTemplate() differs from `base` in one segment (or its length).
  Strings RelatedTemplate(Strings t) {
    const int op = rng_.Uniform(4);
    if (t.empty() || op == 0) {
      t.push_back(rng_.Chance(0.5) ? rng_.Pick(kParams) : rng_.Pick(kLiterals));
    } else if (op == 1 && t.size() > 1) {
      t.pop_back();
    } else {
      std::string& s = t[rng_.Uniform(t.size())];
      s = IsParam(s) || rng_.Chance(0.4) ? rng_.Pick(kLiterals)
                                         : rng_.Pick(kParams);
    }
    return t;
  }

  void AddRoute(v1::Api* api, const Strings& declared) {
    for (int attempt = 0; attempt < 10; ++attempt) {
      v1::Route route;
      Strings t = RandomTemplate();
      route.set_method(rng_.Pick(kMethods));
      if (api->routes_size() > 0 && rng_.Chance(0.75)) {
        const v1::Route& base = api->routes(rng_.Uniform(api->routes_size()));
        t = RelatedTemplate(TemplateSegments(base.path()));
        if (rng_.Chance(0.7)) route.set_method(base.method());
      }
      route.set_path(JoinPath(t, rng_.Chance(0.25)));
      bool duplicate = false;
      for (const v1::Route& r : api->routes()) {
        duplicate = duplicate || Shape(r) == Shape(route);
      }
      if (duplicate) continue;
      *route.mutable_requirement() = RandomRequirement(declared);
      if (rng_.Chance(0.25) && !declared.empty()) {
        for (const auto& field : rng_.Subset(kFields, 1, 2)) {
          v1::Redaction* r = route.add_redactions();
          r->set_field(field);
          r->set_unless_scope(rng_.Pick(declared));
        }
        if (rng_.Chance(0.1)) {  // one field, two scopes
          v1::Redaction* r = route.add_redactions();
          r->set_field(route.redactions(0).field());
          r->set_unless_scope(rng_.Pick(declared));
        }
      }
      *api->add_routes() = std::move(route);
      return;
    }
  }

  void AddApi(v1::Policy* p, const std::string& name) {
    v1::Api* api = p->add_apis();
    api->set_name(name);
    const Strings prefixes = {"",     "", "/v1/" + name, "/api", "/v1",
                              "/v1/", "/"};
    api->set_path_prefix(rng_.Pick(prefixes));
    api->set_key_prefix(rng_.Pick(kKeyPrefixes));
    for (int i = rng_.Range(3, 10); i > 0; --i) AddRoute(api, Declared(*p));
  }

  void AddBundle(v1::Policy* p, const std::string& name) {
    v1::Bundle* b = p->add_bundles();
    b->set_name(name);
    for (auto& s : rng_.Subset(Declared(*p), 1, 3)) b->add_scopes(s);
  }

  v1::Policy RandomPolicy() {
    v1::Policy p;
    for (auto& s : rng_.Subset(kScopePool, 4, 9)) p.add_scopes()->set_name(s);
    for (auto& a : rng_.Subset(kApiPool, 1, 3)) AddApi(&p, a);
    for (auto& b : rng_.Subset(kBundles, 0, 3)) AddBundle(&p, b);
    return p;
  }

  // DropScope() removes `scope` from the policy and every reference to it.
  static void DropScope(v1::Policy* p, const std::string& scope) {
    auto erase = [&](google::protobuf::RepeatedPtrField<std::string>* list) {
      list->erase(std::remove(list->begin(), list->end(), scope), list->end());
    };
    for (int i = 0; i < p->scopes_size(); ++i) {
      if (p->scopes(i).name() == scope) {
        p->mutable_scopes()->DeleteSubrange(i, 1);
        break;
      }
    }
    for (v1::Api& api : *p->mutable_apis()) {
      for (v1::Route& route : *api.mutable_routes()) {
        v1::Requirement* r = route.mutable_requirement();
        erase(r->mutable_all_of());
        erase(r->mutable_any_of());
        if (r->all_of_size() == 0 && r->any_of_size() == 0) {
          r->set_authenticated_only(true);
        }
        auto* red = route.mutable_redactions();
        red->erase(std::remove_if(red->begin(), red->end(),
                                  [&](const v1::Redaction& x) {
                                    return x.unless_scope() == scope;
                                  }),
                   red->end());
      }
    }
    for (v1::Bundle& b : *p->mutable_bundles()) erase(b.mutable_scopes());
    auto* bundles = p->mutable_bundles();
    bundles->erase(std::remove_if(bundles->begin(), bundles->end(),
                                  [](const v1::Bundle& b) {
                                    return b.scopes_size() == 0;
                                  }),
                   bundles->end());
  }

  void ChangePolicy() {
    v1::Policy p = policy_;
    const Strings declared = Declared(p);
    v1::Api* api = p.apis_size() > 0
                       ? p.mutable_apis(rng_.Uniform(p.apis_size()))
                       : nullptr;
    switch (rng_.Uniform(10)) {
      case 0:  // a route's requirement
        if (api != nullptr && api->routes_size() > 0) {
          *api->mutable_routes(rng_.Uniform(api->routes_size()))
               ->mutable_requirement() = RandomRequirement(declared);
        }
        break;
      case 1:
        if (api != nullptr) AddRoute(api, declared);
        break;
      case 2:
        if (api != nullptr && api->routes_size() > 0) {
          api->mutable_routes()->DeleteSubrange(
              rng_.Uniform(api->routes_size()), 1);
        }
        break;
      case 3:  // a bundle's scopes
        if (p.bundles_size() > 0) {
          v1::Bundle* b = p.mutable_bundles(rng_.Uniform(p.bundles_size()));
          b->clear_scopes();
          for (auto& s : rng_.Subset(declared, 1, 3)) b->add_scopes(s);
        } else {
          AddBundle(&p, rng_.Pick(kBundles));
        }
        break;
      case 4:
        if (p.bundles_size() > 0) {
          p.mutable_bundles()->DeleteSubrange(rng_.Uniform(p.bundles_size()),
                                              1);
        }
        break;
      case 5:  // drop a scope (and every reference to it)
        if (declared.size() > 1) DropScope(&p, rng_.Pick(declared));
        break;
      case 6: {  // declare a scope (again), anywhere in the order
        Strings unused;
        for (const auto& s : kScopePool) {
          if (std::find(declared.begin(), declared.end(), s) ==
              declared.end()) {
            unused.push_back(s);
          }
        }
        if (!unused.empty()) {
          p.add_scopes()->set_name(rng_.Pick(unused));
          const int to = rng_.Uniform(p.scopes_size());
          for (int i = p.scopes_size() - 1; i > to; --i) {
            p.mutable_scopes()->SwapElements(i, i - 1);
          }
        }
        break;
      }
      case 7: {  // reorder the scopes (policy order changes)
        std::vector<v1::ScopeDefinition> scopes(p.scopes().begin(),
                                                p.scopes().end());
        rng_.Shuffle(scopes);
        p.clear_scopes();
        for (auto& s : scopes) *p.add_scopes() = s;
        break;
      }
      case 8:  // the path prefix
        if (api != nullptr) {
          const Strings prefixes = {"", "/v1/" + api->name(), "/api"};
          api->set_path_prefix(rng_.Pick(prefixes));
        }
        break;
      case 9: {  // an API more or less
        Strings unused;
        for (const auto& a : kApiPool) {
          bool used = false;
          for (const auto& x : p.apis()) used = used || x.name() == a;
          if (!used) unused.push_back(a);
        }
        if (p.apis_size() > 1 && rng_.Chance(0.5)) {
          p.mutable_apis()->DeleteSubrange(rng_.Uniform(p.apis_size()), 1);
        } else if (!unused.empty()) {
          AddApi(&p, rng_.Pick(unused));
        }
        api = nullptr;  // may be gone
        break;
      }
    }
    // Now and then a route with a lowercase method.
    if (api != nullptr && api->routes_size() > 0 && rng_.Chance(0.03)) {
      v1::Route* r = api->mutable_routes(rng_.Uniform(api->routes_size()));
      r->set_method(absl::AsciiStrToLower(r->method()));
      PutPolicy(p);
      return;  // the generator does not build on it
    }
    // Now and then a duplicate route (by trailing slash or parameter
    // names): the policy must be rejected and the old one stay.
    if (api != nullptr && api->routes_size() > 0 && rng_.Chance(0.08)) {
      v1::Route dup = api->routes(rng_.Uniform(api->routes_size()));
      Strings t = TemplateSegments(dup.path());
      const bool trailing = dup.path().size() > 1 && dup.path().back() == '/';
      bool renamed = false;
      for (auto& s : t) {
        if (IsParam(s) && !renamed) {
          s = s == "{p}" ? "{q}" : "{p}";
          renamed = true;
        }
      }
      dup.set_path(JoinPath(t, renamed ? trailing : !trailing));
      *api->add_routes() = std::move(dup);
      PutPolicy(p);
      return;  // rejected: policy_ stays
    }
    policy_ = p;
    PutPolicy(p);
  }

  void PutPolicy(const v1::Policy& p) {
    v1::PutPolicyRequest request;
    *request.mutable_policy() = p;
    Add(StepKind::kPutPolicy, Share(std::move(request)));
  }

  // --- Apps and installations ---

  void PutApp(bool new_app) {
    const Strings declared = Declared(policy_);
    v1::App* app;
    if (new_app || apps_.empty()) {
      app = &apps_.emplace_back();
      app->set_app_id(absl::StrCat("app_", app_tag_, "_", apps_.size() - 1));
      app->set_slug(absl::StrCat("app-", apps_.size() - 1));
      app->set_live_version_id("v1");
      for (auto& s : rng_.Subset(declared, 1, 4)) app->add_requested_scopes(s);
    } else {  // a new version requesting more, fewer or other scopes
      app = &apps_[rng_.Uniform(apps_.size())];
      app->set_live_version_id(absl::StrCat("v", rng_.Range(2, 99)));
      Strings requested(app->requested_scopes().begin(),
                        app->requested_scopes().end());
      if (!requested.empty() && rng_.Chance(0.5)) {
        requested.erase(requested.begin() + rng_.Uniform(requested.size()));
      }
      if (rng_.Chance(0.7) && !declared.empty()) {
        const std::string& s = rng_.Pick(declared);
        if (std::find(requested.begin(), requested.end(), s) ==
            requested.end()) {
          requested.push_back(s);
        }
      }
      app->clear_requested_scopes();
      for (auto& s : requested) app->add_requested_scopes(s);
    }
    v1::PutAppRequest request;
    *request.mutable_app() = *app;
    Add(StepKind::kPutApp, Share(std::move(request)));
  }

  void ApproveInstallation() {
    if (apps_.empty()) return;
    const v1::App& app = rng_.Pick(apps_);
    v1::ApproveInstallationRequest request;
    request.set_organization_id(rng_.Pick(kOrgs));
    request.set_app_id(app.app_id());
    Strings requested(app.requested_scopes().begin(),
                      app.requested_scopes().end());
    for (auto& s : rng_.Subset(requested, 0, 4)) request.add_approved_scopes(s);
    if (rng_.Chance(0.1)) {  // a scope the app does not request
      request.add_approved_scopes(rng_.Pick(kScopePool));
    }
    installed_.insert({request.organization_id(), app.app_id()});
    Add(StepKind::kApproveInstallation, Share(std::move(request)));
  }

  // --- Keys ---

  void CreateKey() {
    v1::CreateKeyRequest request;
    Step step;
    request.set_organization_id(rng_.Pick(kOrgs));
    if (!apps_.empty() && rng_.Chance(0.4)) {
      step.bind_app = rng_.Pick(apps_).app_id();
      for (const auto& [org, app] : installed_) {
        if (app == step.bind_app && rng_.Chance(0.8)) {
          request.set_organization_id(org);
        }
      }
      if (rng_.Chance(0.1)) {  // another organization's installation
        for (const auto& [org, app] : installed_) {
          if (app == step.bind_app && org != request.organization_id()) {
            step.bind_org = org;
          }
        }
      }
    }
    request.set_name("key");
    Strings apis;
    for (const auto& a : policy_.apis()) apis.push_back(a.name());
    for (auto& a : rng_.Subset(apis, rng_.Chance(0.03) ? 0 : 1, 3)) {
      request.add_apis(a);
    }
    const Strings declared = Declared(policy_);
    const int n = declared.size();
    // A third of the keys hold (almost) every scope: most of their requests
    // are allowed, and only redactions and the other checks stand between.
    // Keys of an installation get few others, so that what it grants shows.
    const bool bound = !step.bind_app.empty();
    for (auto& s : !bound && rng_.Chance(0.35)
                       ? rng_.Subset(declared, n - 1, n)
                       : rng_.Subset(declared, 0, bound ? 1 : 4)) {
      request.add_scopes(s);
    }
    Strings bundles;
    for (const auto& b : policy_.bundles()) bundles.push_back(b.name());
    for (auto& b : rng_.Subset(bundles, 0, bound ? 1 : 2)) {
      request.add_bundles(b);
    }
    if (rng_.Chance(0.2)) SetTime(Later(), request.mutable_expire_time());
    if (rng_.Chance(0.03)) SetTime(now_, request.mutable_expire_time());
    Key key;
    key.org = request.organization_id();
    key.apis.assign(request.apis().begin(), request.apis().end());
    keys_.push_back(key);
    step.kind = StepKind::kCreateKey;
    step.slot = keys_.size() - 1;
    step.request = Share(std::move(request));
    scenario_.steps.push_back(std::move(step));
  }

  void AdminOperation() {
    const int slot = keys_.empty() ? -1 : rng_.Uniform(keys_.size());
    const Strings declared = Declared(policy_);
    Strings bundles;
    for (const auto& b : policy_.bundles()) bundles.push_back(b.name());
    switch (slot < 0 ? 0 : rng_.Uniform(12)) {
      case 0:
        CreateKey();
        break;
      case 1:
      case 2: {
        v1::GrantScopesRequest request;
        for (auto& s : rng_.Subset(declared, 0, 2)) request.add_scopes(s);
        for (auto& b : rng_.Subset(bundles, 0, 1)) request.add_bundles(b);
        if (request.scopes_size() == 0 && request.bundles_size() == 0) {
          if (declared.empty()) return;
          request.add_scopes(rng_.Pick(declared));
        }
        if (request.scopes_size() > 0 && rng_.Chance(0.4)) {
          SetTime(rng_.Chance(0.05) ? now_ : Later(),
                  request.mutable_expire_time());
        }
        Add(StepKind::kGrantScopes, Share(std::move(request)), slot);
        break;
      }
      case 3: {
        v1::RevokeScopesRequest request;
        for (auto& s : rng_.Subset(declared, 0, 2)) request.add_scopes(s);
        if (rng_.Chance(0.1)) request.add_scopes(rng_.Pick(kScopePool));
        for (auto& b : rng_.Subset(bundles, 0, 1)) request.add_bundles(b);
        if (request.scopes_size() == 0 && request.bundles_size() == 0) return;
        Add(StepKind::kRevokeScopes, Share(std::move(request)), slot);
        break;
      }
      case 4:
        if (!rng_.Chance(0.5)) return;
        keys_[slot].revoked = true;
        Add(StepKind::kRevokeKey, Share(v1::RevokeKeyRequest()), slot);
        break;
      case 5: {
        v1::RotateKeyRequest request;
        if (rng_.Chance(0.7)) {
          const int seconds = rng_.Chance(0.15)   ? 0
                              : rng_.Chance(0.03) ? -60
                                                  : 60 * rng_.Range(1, 10);
          request.mutable_grace_period()->set_seconds(seconds);
          deadlines_.push_back(now_ + absl::Seconds(seconds));
        }
        ++keys_[slot].secrets;
        Add(StepKind::kRotateKey, Share(std::move(request)), slot);
        break;
      }
      case 6:
        ChangePolicy();
        break;
      case 7:
      case 11:
        if (!apps_.empty()) PutApp(/*new_app=*/rng_.Chance(0.2));
        break;
      case 8:
        ApproveInstallation();
        break;
      case 9:
        AdvanceClock();
        break;
      case 10:
        Requests();
        break;
    }
  }

  void AdvanceClock() {
    absl::Duration d = absl::Seconds(30 * rng_.Range(1, 20));
    std::vector<absl::Time> ahead;
    for (absl::Time t : deadlines_) {
      if (t > now_) ahead.push_back(t);
    }
    if (!ahead.empty() && rng_.Chance(0.6)) {  // onto a deadline, or 1s off
      d = rng_.Pick(ahead) - now_ + absl::Seconds(rng_.Range(-1, 1));
      if (d <= absl::ZeroDuration()) d = absl::Seconds(1);
    }
    now_ += d;
    Step step;
    step.kind = StepKind::kAdvanceClock;
    step.advance = d;
    scenario_.steps.push_back(std::move(step));
  }

  // --- Requests ---

  // RandomKeyRef() picks a credential; `clean`: a key's current secret.
  KeyRef RandomKeyRef(bool clean, int* slot) {
    KeyRef ref;
    *slot = keys_.empty() ? -1 : rng_.Uniform(keys_.size());
    if (clean) {  // prefer a key not revoked
      std::vector<int> live;
      for (size_t i = 0; i < keys_.size(); ++i) {
        if (!keys_[i].revoked) live.push_back(i);
      }
      if (!live.empty()) *slot = rng_.Pick(live);
    }
    const int kind = clean ? 100 : rng_.Uniform(100);
    if (*slot < 0 || kind < 5) {
      const Strings bogus = {"",
                             "sk_",
                             "rx_ph_AAAAAAAAAAAAAAAAAAAAAAAA",
                             "Bearer x",
                             "max_prd_ak_",
                             std::string(257, 'k'),
                             "rx_ph_" + std::string(300, 'A')};
      ref.literal = rng_.Pick(bogus);
      *slot = -1;
      return ref;
    }
    ref.slot = *slot;
    if (kind < 13) {  // an earlier secret of a rotated key
      ref.secret = rng_.Uniform(keys_[*slot].secrets);
    } else if (kind < 18) {  // one character changed
      ref.alter = rng_.Range(0, 40);
    }
    return ref;
  }

  // RandomPath() is a path for `route` (or any), a near miss unless `clean`.
  std::string RandomPath(const v1::Api& api, const v1::Route* route,
                         bool clean) {
    Strings segments;
    bool trailing = rng_.Chance(0.25);
    if (route != nullptr) {
      for (const auto& s : TemplateSegments(route->path())) {
        segments.push_back(IsParam(s) ? rng_.Pick(kValues) : s);
      }
    } else {
      for (int i = rng_.Range(0, 3); i > 0; --i) {
        segments.push_back(rng_.Pick(kValues));
      }
    }
    std::string prefix = api.path_prefix();
    if (!prefix.empty() && prefix.back() == '/' &&
        (clean || rng_.Chance(0.7))) {
      prefix.pop_back();  // as a client would write it
    }
    std::string suffix;
    bool glue = false;
    if (!clean && rng_.Chance(0.45)) {  // a near miss
      switch (rng_.Uniform(12)) {
        case 0:
          if (!segments.empty()) segments.pop_back();
          break;
        case 1:
          segments.push_back(rng_.Pick(kValues));
          break;
        case 2:
          if (!segments.empty()) {
            segments[rng_.Uniform(segments.size())] = rng_.Pick(kLiterals);
          }
          break;
        case 3: {
          const Strings odd = {"", ".", ".."};
          segments.insert(segments.begin() + rng_.Uniform(segments.size() + 1),
                          rng_.Pick(odd));
          break;
        }
        case 4:
          suffix = "//";
          break;
        case 5:
          prefix = "";
          break;
        case 6:  // the prefix not ending at a segment boundary
          glue = true;
          break;
        case 7:
          if (!segments.empty()) {
            std::string& s = segments[rng_.Uniform(segments.size())];
            s = absl::AsciiStrToUpper(s);
          }
          break;
        case 8: {
          const Strings odd = {"", "orders", "/", "?x=1"};
          return rng_.Pick(odd);
        }
        case 9:
          if (!prefix.empty()) return prefix;
          break;
        default:
          trailing = !trailing;
          break;
      }
    }
    std::string rest = segments.empty() && rng_.Chance(0.2) && !prefix.empty()
                           ? ""
                           : JoinPath(segments, trailing);
    if (glue) {  // "/v1/api" "/orders/1" -> "/v1/apiorders/1" or "/v1/apix/..."
      rest = rng_.Chance(0.5) || rest.size() < 2 ? "x" + rest : rest.substr(1);
    }
    std::string path = prefix + rest + suffix;
    if (rng_.Chance(0.15)) {
      const Strings queries = {"?x=1", "?", "?a=/b//c", "?..", "?/"};
      path += rng_.Pick(queries);
    }
    return path;
  }

  void Requests() {
    const int n = rng_.Range(1, options_.max_requests_per_round);
    for (int i = 0; i < n; ++i) Request();
  }

  void Request() {
    v1::AuthorizeRequest request;
    Step step;
    step.kind = StepKind::kAuthorize;
    int slot;
    // A clean request: a key's current secret, no other organization, a
    // route of one of its APIs, no near miss: mostly allowed, or denied
    // for scopes.
    const bool clean = rng_.Chance(0.35);
    step.key = RandomKeyRef(clean, &slot);
    step.wait_for_writes = rng_.Chance(0.2);
    if (rng_.Chance(0.3)) {
      request.set_trace_id(absl::StrCat("trace-", rng_.Range(0, 9999)));
    }
    if (!clean && rng_.Chance(0.01)) request.set_trace_id("not a trace id");
    const int org = clean ? 100 : rng_.Uniform(100);
    if (org < 12 && slot >= 0) {
      request.set_organization_id(keys_[slot].org);
    } else if (org < 22) {
      request.set_organization_id(rng_.Pick(kOrgs));
    } else if (org < 24) {
      const Strings malformed = {"org a", "org/b", std::string(129, 'o')};
      request.set_organization_id(rng_.Pick(malformed));
    }
    const Strings declared = Declared(policy_);
    const int target = clean ? rng_.Uniform(85) : rng_.Uniform(100);
    if (target < 75 && policy_.apis_size() > 0) {
      const v1::Api* api = &policy_.apis(rng_.Uniform(policy_.apis_size()));
      if (slot >= 0 && !keys_[slot].apis.empty() &&
          (clean || rng_.Chance(0.85))) {
        const std::string& name = rng_.Pick(keys_[slot].apis);
        for (const auto& a : policy_.apis()) {
          if (a.name() == name) api = &a;
        }
      }
      const v1::Route* route =
          api->routes_size() > 0 && (clean || rng_.Chance(0.92))
              ? &api->routes(rng_.Uniform(api->routes_size()))
              : nullptr;
      v1::HttpRequestTarget* http = request.mutable_http();
      http->set_api(api->name());
      http->set_method(route != nullptr && (clean || rng_.Chance(0.85))
                           ? route->method()
                           : rng_.Pick(kMethods));
      if (rng_.Chance(0.1)) {
        http->set_method(absl::AsciiStrToLower(http->method()));
      }
      http->set_path(RandomPath(*api, route, clean));
    } else if (target < 90 && !declared.empty()) {
      v1::Requirement* r = request.mutable_requirement();
      *r = RandomRequirement(declared);
      if (r->all_of_size() > 0 && rng_.Chance(0.1)) r->add_all_of(r->all_of(0));
      if (r->any_of_size() > 0 && rng_.Chance(0.1)) r->add_any_of(r->any_of(0));
    } else {  // a request that is wrong, not denied
      switch (rng_.Uniform(7)) {
        case 0:
          break;  // no target
        case 1:
          request.mutable_requirement();  // empty
          break;
        case 2:
          request.mutable_requirement()->set_authenticated_only(true);
          request.mutable_requirement()->add_any_of(
              declared.empty() ? "a" : rng_.Pick(declared));
          break;
        case 3:
          request.mutable_requirement()->add_all_of(rng_.Pick(kScopePool));
          request.mutable_requirement()->add_all_of("zz_undeclared");
          break;
        case 4:
          request.mutable_requirement()->add_any_of("Bad Scope");
          break;
        case 5:
          request.mutable_http()->set_api("nope");
          request.mutable_http()->set_method("GET");
          request.mutable_http()->set_path("/");
          break;
        case 6: {
          const Strings odd = {"FETCH", "", "OPTIONS", "GETS"};
          request.mutable_http()->set_api(
              policy_.apis_size() > 0 ? policy_.apis(0).name() : "nope");
          request.mutable_http()->set_method(rng_.Pick(odd));
          request.mutable_http()->set_path("/orders");
          break;
        }
      }
    }
    step.request = Share(std::move(request));
    scenario_.steps.push_back(std::move(step));
  }

  Rng rng_;
  GeneratorOptions options_;
  Scenario scenario_;
  std::string app_tag_;
  absl::Time now_ = kScenarioStart;
  v1::Policy policy_;  // the policy in force (as the generator expects)
  std::vector<Key> keys_;
  std::vector<v1::App> apps_;
  std::set<std::pair<std::string, std::string>> installed_;  // (org, app)
  std::vector<absl::Time> deadlines_;
};

}  // namespace

Scenario Generate(uint64_t seed, const GeneratorOptions& options) {
  return Generator(seed, options).Run();
}

}  // namespace scopekeeper::oracle
