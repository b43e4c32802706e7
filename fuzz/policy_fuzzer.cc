// Fuzzes the policy validator: bytes as JSON -> ParsePolicyJson() ->
// PolicySnapshot::Compile(). Neither may crash on any input. A policy that
// compiles must be consistent with its source (every scope, API and route is
// findable; every route matches a request built from its template), and must
// survive a JSON round trip: print, re-parse (equal message) and re-compile.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "fuzz/fuzz_check.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "server/policy/policy.h"
#include "server/policy/route_table.h"

namespace scopekeeper {
namespace {

// A request path for `route_template` under `prefix`: each "{name}"
// segment becomes "v".
std::string Materialize(absl::string_view prefix,
                        absl::string_view route_template) {
  std::string path(prefix);
  size_t i = 0;
  while (i < route_template.size()) {
    if (route_template[i] == '{') {
      path += "v";
      i = route_template.find('}', i) + 1;  // a valid template closes it
    } else {
      path += route_template[i++];
    }
  }
  return path;
}

void CheckCompiled(const v1::Policy& policy, const PolicySnapshot& snap) {
  FUZZ_CHECK(snap.num_scopes() == policy.scopes_size());
  for (int i = 0; i < policy.scopes_size(); ++i) {
    FUZZ_CHECK(snap.ScopeId(policy.scopes(i).name()) == i);
    FUZZ_CHECK(snap.ScopeName(i) == policy.scopes(i).name());
  }
  for (const v1::Bundle& bundle : policy.bundles()) {
    FUZZ_CHECK(snap.FindBundle(bundle.name()) != nullptr);
  }
  FUZZ_CHECK(static_cast<int>(snap.apis().size()) == policy.apis_size());
  for (int a = 0; a < policy.apis_size(); ++a) {
    const v1::Api& api = policy.apis(a);
    const CompiledApi* compiled = snap.FindApi(api.name());
    FUZZ_CHECK(compiled != nullptr && compiled->index == a);
    FUZZ_CHECK(static_cast<int>(compiled->compiled_routes.size()) ==
               api.routes_size());
    for (const v1::Route& route : api.routes()) {
      const absl::StatusOr<HttpMethod> method = ParseHttpMethod(route.method());
      FUZZ_CHECK(method.ok());
      // Callers strip the API's path prefix before matching.
      const RouteTable::Match match =
          compiled->routes.Find(*method, Materialize("", route.path()));
      FUZZ_CHECK(match.route_index >= 0 &&
                 match.route_index < api.routes_size());
    }
  }
}

void TestOneInput(absl::string_view json) {
  const absl::StatusOr<v1::Policy> policy = ParsePolicyJson(json);
  if (!policy.ok()) {
    FUZZ_CHECK(policy.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  const absl::StatusOr<std::shared_ptr<const PolicySnapshot>> snap =
      PolicySnapshot::Compile(*policy, 1);
  if (!snap.ok()) {
    FUZZ_CHECK(snap.status().code() == absl::StatusCode::kInvalidArgument);
    FUZZ_CHECK(!snap.status().message().empty());
    return;
  }
  CheckCompiled(*policy, **snap);

  std::string printed;
  FUZZ_CHECK(
      google::protobuf::util::MessageToJsonString(*policy, &printed).ok());
  const absl::StatusOr<v1::Policy> reparsed = ParsePolicyJson(printed);
  FUZZ_CHECK(reparsed.ok());
  FUZZ_CHECK(
      google::protobuf::util::MessageDifferencer::Equals(*policy, *reparsed));
  FUZZ_CHECK(PolicySnapshot::Compile(*reparsed, 2).ok());
}

}  // namespace
}  // namespace scopekeeper

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  scopekeeper::TestOneInput(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
