// CoreTestEnv: the server core (Registry + DecisionEngine) over an in-memory
// Store with a FakeClock, for unit tests that drive it without gRPC. The
// store is wrapped in a FaultInjectingStore so tests can fail it.
#ifndef SCOPEKEEPER_SERVER_TESTING_CORE_TEST_ENV_H_
#define SCOPEKEEPER_SERVER_TESTING_CORE_TEST_ENV_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "base/clock.h"
#include "gtest/gtest.h"
#include "server/decision/decision_engine.h"
#include "server/decision/serving_state.h"
#include "server/decision/usage_tracker.h"
#include "server/registry/registry.h"
#include "storage/fault_injecting_store.h"
#include "storage/memory_store.h"

namespace scopekeeper {

// A small policy in the shape of the RxScale seed: an API with a path
// prefix, flat and resource:action scopes, an any_of route, a
// valid-key-only route and a redaction.
inline constexpr absl::string_view kTestPolicyJson = R"json({
  "scopes": [
    {"name": "orders_read"}, {"name": "orders_write"},
    {"name": "stock_write"}, {"name": "pharmacy_sku_write"},
    {"name": "order:read"}, {"name": "prescription:read"}
  ],
  "apis": [
    {"name": "pharmacy", "pathPrefix": "/v1/pharmacy", "keyPrefix": "rx_ph",
     "routes": [
       {"method": "GET", "path": "/orders/", "requirement": {"allOf": ["orders_read"]}},
       {"method": "GET", "path": "/orders/{uid}", "requirement": {"allOf": ["orders_read"]}},
       {"method": "PATCH", "path": "/orders/{uid}/status",
        "requirement": {"allOf": ["orders_write"]}},
       {"method": "POST", "path": "/orders/{uid}/approve",
        "requirement": {"allOf": ["orders_read", "orders_write"]}},
       {"method": "PATCH", "path": "/skus/{uid}/stock",
        "requirement": {"anyOf": ["stock_write", "pharmacy_sku_write"]}},
       {"method": "GET", "path": "/ping", "requirement": {"authenticatedOnly": true}}
     ]},
    {"name": "management", "keyPrefix": "rx_mg",
     "routes": [
       {"method": "GET", "path": "/orders/{uid}", "requirement": {"allOf": ["order:read"]},
        "redactions": [{"field": "prescription", "unlessScope": "prescription:read"}]}
     ]}
  ],
  "bundles": [
    {"name": "order-management", "scopes": ["orders_read", "orders_write"]}
  ]
})json";

class CoreTestEnv {
 public:
  // `key_cache_capacity`: see KeyCache (default: a complete cache).
  explicit CoreTestEnv(size_t key_cache_capacity = KeyCache::kUnbounded);

  // PutPolicyJson() parses and puts a policy; fails the test on error.
  void PutPolicyJson(absl::string_view json);

  // CreateKey() creates a key of organization "org_a"; fails the test on error.
  v1::CreateKeyResponse CreateKey(std::vector<std::string> apis,
                                  std::vector<std::string> scopes,
                                  std::vector<std::string> bundles = {});

  // Cached() is whether the key of `secret` is in the serving cache.
  bool Cached(absl::string_view secret);
  // PushOut() creates keys until the key of `secret` is no longer in a
  // bounded cache (so its next decision reads the store); fails the test if
  // a few do not push it out.
  void PushOut(absl::string_view secret);

  // Grant() grants `scopes` to key `key_id`; fails the test on error.
  void Grant(absl::string_view key_id, std::vector<std::string> scopes);

  // HttpRequest() is the http-form AuthorizeRequest of these fields.
  static v1::AuthorizeRequest HttpRequest(
      absl::string_view secret, absl::string_view api, absl::string_view method,
      absl::string_view path, absl::string_view organization_id = "");

  // Http() decides an HTTP request; fails the test on an RPC error.
  v1::AuthorizeResponse Http(absl::string_view secret, absl::string_view api,
                             absl::string_view method, absl::string_view path,
                             absl::string_view organization_id = "");

  static constexpr absl::string_view kActor = "test-admin";

  FakeClock clock;
  storage::MemoryStore memory;
  storage::FaultInjectingStore store{&memory};
  ServingState state;  // constructed with the capacity
  UsageTracker usage{&store};
  Registry registry{&store, &state, &clock, &usage};
  DecisionEngine engine{&state, &store, &clock, &usage};
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_TESTING_CORE_TEST_ENV_H_
