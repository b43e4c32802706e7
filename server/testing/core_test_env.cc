#include "server/testing/core_test_env.h"

#include "server/policy/key_secret.h"
#include "server/policy/policy.h"

namespace scopekeeper {

CoreTestEnv::CoreTestEnv(size_t key_cache_capacity)
    : state(key_cache_capacity) {
  const absl::Status loaded = registry.Load();
  EXPECT_TRUE(loaded.ok()) << loaded;
}

void CoreTestEnv::PutPolicyJson(absl::string_view json) {
  absl::StatusOr<v1::Policy> policy = ParsePolicyJson(json);
  ASSERT_TRUE(policy.ok()) << policy.status();
  absl::StatusOr<uint64_t> revision = registry.PutPolicy(*policy, kActor);
  ASSERT_TRUE(revision.ok()) << revision.status();
}

v1::CreateKeyResponse CoreTestEnv::CreateKey(std::vector<std::string> apis,
                                             std::vector<std::string> scopes,
                                             std::vector<std::string> bundles) {
  v1::CreateKeyRequest request;
  request.set_organization_id("org_a");
  request.set_name("test key");
  for (auto& a : apis) request.add_apis(a);
  for (auto& s : scopes) request.add_scopes(s);
  for (auto& b : bundles) request.add_bundles(b);
  absl::StatusOr<v1::CreateKeyResponse> response =
      registry.CreateKey(request, kActor);
  EXPECT_TRUE(response.ok()) << response.status();
  return response.ok() ? *response : v1::CreateKeyResponse();
}

bool CoreTestEnv::Cached(absl::string_view secret) {
  return state.cache().Contains(HashSecret(secret));
}

void CoreTestEnv::PushOut(absl::string_view secret) {
  for (int i = 0; i < 8 && Cached(secret); ++i) {
    CreateKey({"pharmacy"}, {"orders_read"});
  }
  ASSERT_FALSE(Cached(secret));
}

void CoreTestEnv::Grant(absl::string_view key_id,
                        std::vector<std::string> scopes) {
  v1::GrantScopesRequest request;
  request.set_key_id(std::string(key_id));
  for (auto& s : scopes) request.add_scopes(s);
  const absl::StatusOr<v1::Key> granted = registry.GrantScopes(request, kActor);
  EXPECT_TRUE(granted.ok()) << granted.status();
}

v1::AuthorizeRequest CoreTestEnv::HttpRequest(
    absl::string_view secret, absl::string_view api, absl::string_view method,
    absl::string_view path, absl::string_view organization_id) {
  v1::AuthorizeRequest request;
  request.set_api_key(std::string(secret));
  request.set_organization_id(std::string(organization_id));
  request.mutable_http()->set_api(std::string(api));
  request.mutable_http()->set_method(std::string(method));
  request.mutable_http()->set_path(std::string(path));
  return request;
}

v1::AuthorizeResponse CoreTestEnv::Http(absl::string_view secret,
                                        absl::string_view api,
                                        absl::string_view method,
                                        absl::string_view path,
                                        absl::string_view organization_id) {
  const v1::AuthorizeRequest request =
      HttpRequest(secret, api, method, path, organization_id);
  v1::AuthorizeResponse response;
  const absl::Status status = engine.Authorize(request, &response);
  EXPECT_TRUE(status.ok()) << status;
  return response;
}

}  // namespace scopekeeper
