#include "server/gateway/gateway.h"

#include <map>
#include <string>

#include "absl/strings/ascii.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/testing/core_test_env.h"

namespace scopekeeper {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Pair;

// Headers as a multimap of lowercase names.
class FakeHeaders final : public GatewayHeaders {
 public:
  FakeHeaders(std::initializer_list<std::pair<std::string, std::string>> h) {
    for (const auto& [name, value] : h) Add(name, value);
  }
  void Add(const std::string& name, const std::string& value) {
    headers_.emplace(absl::AsciiStrToLower(name), value);
  }
  int Count(absl::string_view name, absl::string_view* value) const override {
    auto [begin, end] = headers_.equal_range(std::string(name));
    int count = 0;
    for (auto it = begin; it != end; ++it, ++count) *value = it->second;
    return count;
  }

 private:
  std::multimap<std::string, std::string> headers_;
};

TEST(ForwardedRequestTest, ReadsNginxAndTraefikCaddyHeaders) {
  const GatewaySettings settings;
  FakeHeaders nginx({{"X-Original-Method", "PATCH"},
                     {"X-Original-URI", "/v1/patients/p1?x=1"},
                     {"X-Forwarded-Host", "api.maxcare.ai"},
                     {"X-Scopekeeper-Api", "marketplace"}});
  absl::StatusOr<GatewayRequest> r = ForwardedRequest(nginx, settings);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->method, "PATCH");
  EXPECT_EQ(r->path, "/v1/patients/p1?x=1");
  EXPECT_EQ(r->host, "api.maxcare.ai");
  EXPECT_EQ(r->api, "marketplace");
  EXPECT_EQ(r->headers, &nginx);

  FakeHeaders traefik({{"X-Forwarded-Method", "GET"},
                       {"X-Forwarded-Uri", "/orders/o1"},
                       {"X-Forwarded-Host", "api.rxscale.com:8443"}});
  r = ForwardedRequest(traefik, settings);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->path, "/orders/o1");
  EXPECT_EQ(r->host, "api.rxscale.com:8443");
  EXPECT_EQ(r->api, "");

  // The API header is read only when configured.
  GatewaySettings no_api_header;
  no_api_header.api_header = "";
  EXPECT_EQ(ForwardedRequest(nginx, no_api_header)->api, "");
}

TEST(ForwardedRequestTest, MissingRepeatedOrMixedHeadersAreInvalid) {
  const GatewaySettings settings;
  const struct {
    FakeHeaders headers;
    std::string mentions;
  } cases[] = {
      {FakeHeaders({{"X-Original-URI", "/a"}}), "original method"},
      {FakeHeaders({{"X-Original-Method", "GET"}}), "original URI"},
      {FakeHeaders({{"X-Original-Method", "GET"}, {"X-Original-URI", ""}}),
       "original URI"},
      {FakeHeaders({{"X-Original-Method", "GET"},
                    {"X-Original-URI", "/a"},
                    {"X-Original-URI", "/b"}}),
       "x-original-uri sent more than once"},
      // A client adding the family its gateway does not set wins nothing.
      {FakeHeaders({{"X-Forwarded-Method", "GET"},
                    {"X-Forwarded-Uri", "/public"},
                    {"X-Original-URI", "/admin"}}),
       "x-original-uri and x-forwarded-uri both sent"},
      {FakeHeaders({{"X-Original-Method", "GET"},
                    {"X-Forwarded-Method", "DELETE"},
                    {"X-Original-URI", "/a"}}),
       "both sent"},
      {FakeHeaders({{"X-Original-Method", "GET"},
                    {"X-Original-URI", "/a"},
                    {"X-Scopekeeper-Api", "a"},
                    {"X-Scopekeeper-Api", "b"}}),
       "x-scopekeeper-api"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<GatewayRequest> r = ForwardedRequest(c.headers, settings);
    ASSERT_FALSE(r.ok()) << c.mentions;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr(c.mentions));
  }
}

GatewayRequest Request(const GatewayHeaders* headers,
                       absl::string_view path = "/v1/patients",
                       absl::string_view method = "GET") {
  GatewayRequest r;
  r.method = method;
  r.path = path;
  r.host = "api.maxcare.ai";
  r.headers = headers;
  return r;
}

TEST(ToAuthorizeRequestTest, TakesTheKeyFromBearerThenTheKeyHeader) {
  GatewaySettings settings;
  v1::AuthorizeRequest out;
  absl::string_view credential;

  FakeHeaders bearer({{"Authorization", "bEaReR  max_prd_ak_1 "},
                      {"X-API-Key", "other"},
                      {"X-Organization-Id", "org_abc123"},
                      {"X-Request-Id", "req-1"}});
  GatewayRequest request = Request(&bearer, "/v1/patients/p1?x=1", "get");
  request.api = "marketplace";
  ASSERT_TRUE(ToAuthorizeRequest(request, settings, &out, &credential).ok());
  EXPECT_EQ(out.api_key(), "max_prd_ak_1");
  EXPECT_EQ(credential, "authorization");
  EXPECT_EQ(out.organization_id(), "org_abc123");
  EXPECT_EQ(out.trace_id(), "req-1");
  EXPECT_EQ(out.http().api(), "marketplace");
  EXPECT_EQ(out.http().method(), "get");
  EXPECT_EQ(out.http().path(), "/v1/patients/p1?x=1");
  EXPECT_EQ(out.http().host(), "api.maxcare.ai");

  // Another scheme: the key header; no key at all: an empty key (decided
  // KEY_INVALID, 401), never an error.
  FakeHeaders basic({{"Authorization", "Basic dTpw"}, {"X-API-Key", "k2"}});
  ASSERT_TRUE(
      ToAuthorizeRequest(Request(&basic), settings, &out, &credential).ok());
  EXPECT_EQ(out.api_key(), "k2");
  EXPECT_EQ(credential, "x-api-key");
  EXPECT_EQ(out.organization_id(), "");
  EXPECT_EQ(out.trace_id(), "");
  FakeHeaders none({{"Authorization", "Bearer "}});
  ASSERT_TRUE(
      ToAuthorizeRequest(Request(&none), settings, &out, &credential).ok());
  EXPECT_EQ(out.api_key(), "");
  EXPECT_EQ(credential, "");
  settings.key_header = "";
  ASSERT_TRUE(
      ToAuthorizeRequest(Request(&basic), settings, &out, &credential).ok());
  EXPECT_EQ(out.api_key(), "");

  // A request id that is no valid id is not adopted.
  FakeHeaders bad_trace({{"X-Request-Id", "a b"}});
  ASSERT_TRUE(
      ToAuthorizeRequest(Request(&bad_trace), settings, &out, &credential)
          .ok());
  EXPECT_EQ(out.trace_id(), "");
}

TEST(ToAuthorizeRequestTest, AmbiguousOrUnsafeRequestsAreInvalid) {
  const GatewaySettings settings;
  v1::AuthorizeRequest out;
  absl::string_view credential;
  FakeHeaders two_keys(
      {{"Authorization", "Bearer a"}, {"Authorization", "Bearer b"}});
  EXPECT_THAT(
      ToAuthorizeRequest(Request(&two_keys), settings, &out, &credential)
          .message(),
      HasSubstr("authorization sent more than once"));
  FakeHeaders two_orgs(
      {{"X-Organization-Id", "org_a"}, {"X-Organization-Id", "org_b"}});
  EXPECT_FALSE(
      ToAuthorizeRequest(Request(&two_orgs), settings, &out, &credential).ok());
  FakeHeaders none({});
  for (absl::string_view path :
       {"", "v1/patients", "http://evil/v1/patients", "/v1/patients/%2e%2E",
        "/v1/patients/a%2Fb", "/v1/patients/a%2fb", "/v1\\patients",
        "/v1/patients/%5c"}) {
    const absl::Status s =
        ToAuthorizeRequest(Request(&none, path), settings, &out, &credential);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << path;
    EXPECT_THAT(s.message(), HasSubstr("Invalid request path")) << path;
  }
  // Encodings in the query string are the upstream's business; other
  // encodings pass (the route match sees them as they are).
  for (absl::string_view path :
       {"/v1/patients?next=%2F", "/v1/patients/a%20b", "/v1/patients/%"}) {
    EXPECT_TRUE(
        ToAuthorizeRequest(Request(&none, path), settings, &out, &credential)
            .ok())
        << path;
  }
  EXPECT_FALSE(
      ToAuthorizeRequest(Request(&none, "/a", ""), settings, &out, &credential)
          .ok());
}

TEST(AnswerTest, AllowedCarriesEveryIdentityHeader) {
  v1::AuthorizeResponse decision;
  decision.set_allowed(true);
  decision.set_http_status(200);
  decision.set_key_id("key_1");
  decision.set_organization_id("org_a");
  decision.add_redactions("prescription");
  decision.add_redactions("notes");
  decision.set_trace_id("t-1");
  GatewaySettings settings;
  GatewayAnswer answer = AnswerDecision(decision, "x-api-key", settings);
  EXPECT_TRUE(answer.allowed());
  EXPECT_EQ(answer.http_status, 200);
  // Empty values (no app) are there too: the adapters remove such headers.
  EXPECT_THAT(answer.upstream_headers,
              ElementsAre(Pair("x-scopekeeper-key-id", "key_1"),
                          Pair("x-scopekeeper-organization-id", "org_a"),
                          Pair("x-scopekeeper-app-id", ""),
                          Pair("x-scopekeeper-redact", "prescription,notes"),
                          Pair("x-scopekeeper-trace-id", "t-1")));
  EXPECT_EQ(answer.remove_header, "");
  EXPECT_EQ(answer.body, "");
  settings.hide_credentials = true;
  EXPECT_EQ(AnswerDecision(decision, "x-api-key", settings).remove_header,
            "x-api-key");
}

TEST(AnswerTest, AllowedUpstreamIsTheAllowedAnswerAsViews) {
  v1::AuthorizeResponse decision;
  decision.set_allowed(true);
  decision.set_key_id("key_1");
  decision.add_redactions("prescription");
  decision.set_trace_id("t-1");
  GatewaySettings settings;
  settings.hide_credentials = true;
  UpstreamHeaders upstream;
  ASSERT_TRUE(AllowedUpstream(absl::OkStatus(), decision, "authorization",
                              settings, &upstream));
  EXPECT_THAT(upstream.headers,
              ElementsAre(Pair("x-scopekeeper-key-id", "key_1"),
                          Pair("x-scopekeeper-organization-id", ""),
                          Pair("x-scopekeeper-app-id", ""),
                          Pair("x-scopekeeper-redact", "prescription"),
                          Pair("x-scopekeeper-trace-id", "t-1")));
  // Views: nothing was copied.
  EXPECT_EQ(upstream.headers[0].second.data(), decision.key_id().data());
  EXPECT_EQ(upstream.remove_header, "authorization");
  decision.add_redactions("notes");
  ASSERT_TRUE(AllowedUpstream(absl::OkStatus(), decision, "authorization",
                              settings, &upstream));
  EXPECT_EQ(upstream.headers[3].second, "prescription,notes");

  // No allow, no upstream headers: AnswerDecided() answers those.
  EXPECT_FALSE(AllowedUpstream(absl::UnavailableError("down"), decision,
                               "authorization", settings, &upstream));
  decision.set_allowed(false);
  EXPECT_FALSE(AllowedUpstream(absl::OkStatus(), decision, "authorization",
                               settings, &upstream));
}

TEST(AnswerTest, DenialsCarryTheSeedBody) {
  const GatewaySettings settings;
  const struct {
    int status;
    std::string message;
    std::string code;
  } cases[] = {
      {403, "Insufficient scope. Required: read:patients", "forbidden"},
      {401, "Invalid or expired API key", "unauthorized"},
      {404, "Not found", "not_found"},
  };
  for (const auto& c : cases) {
    v1::AuthorizeResponse decision;
    decision.set_http_status(c.status);
    decision.set_message(c.message);
    decision.set_trace_id("9b2f");
    decision.set_key_id("key_1");
    const GatewayAnswer answer =
        AnswerDecision(decision, "authorization", settings);
    EXPECT_FALSE(answer.allowed());
    EXPECT_EQ(answer.http_status, c.status);
    EXPECT_EQ(answer.body, "{\"code\":\"" + c.code + "\",\"message\":\"" +
                               c.message + "\",\"trace_id\":\"9b2f\"}");
    EXPECT_EQ(answer.trace_id, "9b2f");
    EXPECT_THAT(answer.upstream_headers, IsEmpty());
  }
  // A denial never passes as anything but a denial.
  v1::AuthorizeResponse odd;
  odd.set_http_status(200);
  EXPECT_EQ(AnswerDecision(odd, "", settings).http_status, 403);
}

TEST(AnswerTest, ErrorsAreBadRequestOrUnavailable) {
  GatewayAnswer bad =
      AnswerError(absl::InvalidArgumentError("Missing \"x\""), "t-2");
  EXPECT_EQ(bad.http_status, 400);
  EXPECT_EQ(bad.body,
            R"({"code":"bad_request","message":"Bad request: Missing \"x\"",)"
            R"("trace_id":"t-2"})");
  GatewayAnswer down = AnswerError(absl::UnavailableError("disk on fire"), "");
  EXPECT_EQ(down.http_status, 503);
  EXPECT_THAT(down.body, HasSubstr("\"code\":\"unavailable\""));
  EXPECT_THAT(down.body, ::testing::Not(HasSubstr("disk")));
  EXPECT_THAT(down.trace_id,
              MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-.*"));
  EXPECT_FALSE(down.allowed());
  // Bytes that are not UTF-8 cannot reach the JSON body.
  GatewayAnswer binary = AnswerError(absl::InvalidArgumentError("\xff"), "t");
  EXPECT_EQ(binary.http_status, 400);
  EXPECT_THAT(binary.body, HasSubstr("Request denied"));
}

// The whole translation over the real decision core.
class GatewayCoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string policy(kTestPolicyJson);
    const std::string management = R"("name": "management",)";
    policy.replace(policy.find(management), management.size(),
                   R"("name": "management", "hosts": ["mgmt.example"],)");
    env_.PutPolicyJson(policy);
  }

  GatewayAnswer Ask(const FakeHeaders& headers) {
    const GatewaySettings settings;
    absl::StatusOr<GatewayRequest> request =
        ForwardedRequest(headers, settings);
    if (!request.ok()) return AnswerError(request.status(), "");
    v1::AuthorizeRequest authorize;
    v1::AuthorizeResponse decision;
    absl::string_view credential_header;
    const DecisionEngine::Outcome outcome =
        TryGatewayRequest(env_.engine, *request, settings, &authorize,
                          &decision, &credential_header);
    EXPECT_TRUE(outcome.ready());  // no key here is being written
    absl::StatusOr<GatewayAnswer> answer = AnswerDecided(
        outcome.status, authorize, decision, credential_header, settings);
    if (!answer.ok()) {
      EXPECT_FALSE(absl::IsInvalidArgument(answer.status()));
      return AnswerError(answer.status(), "");
    }
    return *std::move(answer);
  }

  CoreTestEnv env_;
};

TEST_F(GatewayCoreTest, DecidesForwardedRequests) {
  const auto key = env_.CreateKey({"management"}, {"order:read"});
  const std::string bearer = "Bearer " + key.secret();
  // Allowed, the API selected by host.
  GatewayAnswer a = Ask(FakeHeaders({{"X-Forwarded-Method", "GET"},
                                     {"X-Forwarded-Uri", "/orders/o1?full=1"},
                                     {"X-Forwarded-Host", "mgmt.example"},
                                     {"Authorization", bearer}}));
  EXPECT_EQ(a.http_status, 200);
  EXPECT_THAT(a.upstream_headers,
              ElementsAre(Pair("x-scopekeeper-key-id", key.key().key_id()),
                          Pair("x-scopekeeper-organization-id", "org_a"),
                          Pair("x-scopekeeper-app-id", ""),
                          Pair("x-scopekeeper-redact", "prescription"),
                          Pair("x-scopekeeper-trace-id", a.trace_id)));
  // Missing scope (route of the explicitly chosen API).
  a = Ask(FakeHeaders(
      {{"X-Original-Method", "GET"},
       {"X-Original-URI", "/v1/pharmacy/orders/"},
       {"X-Scopekeeper-Api", "pharmacy"},
       {"X-Request-Id", "req-7"},
       {"X-API-Key", env_.CreateKey({"pharmacy"}, {"stock_write"}).secret()}}));
  EXPECT_EQ(a.http_status, 403);
  EXPECT_EQ(a.body,
            R"({"code":"forbidden","message":"Insufficient scope. Required: )"
            R"(orders_read","trace_id":"req-7"})");
  // Unknown key; no key.
  EXPECT_EQ(Ask(FakeHeaders({{"X-Original-Method", "GET"},
                             {"X-Original-URI", "/orders/o1"},
                             {"X-Forwarded-Host", "mgmt.example"},
                             {"Authorization", "Bearer nope"}}))
                .http_status,
            401);
  EXPECT_EQ(Ask(FakeHeaders({{"X-Original-Method", "GET"},
                             {"X-Original-URI", "/orders/o1"},
                             {"X-Forwarded-Host", "mgmt.example"}}))
                .http_status,
            401);
  // No API on that host; no route in the API.
  EXPECT_EQ(Ask(FakeHeaders({{"X-Original-Method", "GET"},
                             {"X-Original-URI", "/orders/o1"},
                             {"X-Forwarded-Host", "other.example"},
                             {"Authorization", bearer}}))
                .http_status,
            404);
  a = Ask(FakeHeaders({{"X-Original-Method", "GET"},
                       {"X-Original-URI", "/nothing/here"},
                       {"X-Forwarded-Host", "mgmt.example"},
                       {"Authorization", bearer}}));
  EXPECT_EQ(a.http_status, 404);
  EXPECT_THAT(a.body, HasSubstr(R"("code":"not_found","message":"Not found")"));
  // Malformed: 400, never an allow.
  for (const FakeHeaders& bad :
       {FakeHeaders({{"X-Original-Method", "GET"},
                     {"X-Original-URI", "/orders/o1\xff"},
                     {"X-Forwarded-Host", "mgmt.example"},
                     {"Authorization", bearer}}),
        FakeHeaders({{"X-Original-Method", "BREW"},
                     {"X-Original-URI", "/orders/o1"},
                     {"X-Forwarded-Host", "mgmt.example"},
                     {"Authorization", bearer}}),
        FakeHeaders({{"X-Original-Method", "GET"},
                     {"X-Original-URI", "/orders/o1"},
                     {"X-Scopekeeper-Api", "nope"},
                     {"Authorization", bearer}}),
        FakeHeaders({{"X-Original-Method", "GET"},
                     {"X-Original-URI", "/orders/o1"},
                     {"X-Forwarded-Host", "mgmt.example"},
                     {"X-Organization-Id", "org a"},
                     {"Authorization", bearer}})}) {
    a = Ask(bad);
    EXPECT_EQ(a.http_status, 400) << a.body;
    EXPECT_THAT(a.body, HasSubstr(R"("code":"bad_request")"));
  }
  // A key longer than any issued one is an invalid key (401), not a
  // malformed request (DESIGN.md: KEY_INVALID is "unknown or malformed").
  a = Ask(FakeHeaders({{"X-Original-Method", "GET"},
                       {"X-Original-URI", "/orders/o1"},
                       {"X-Forwarded-Host", "mgmt.example"},
                       {"Authorization", "Bearer " + std::string(300, 'k')}}));
  EXPECT_EQ(a.http_status, 401) << a.body;
  EXPECT_THAT(a.body, HasSubstr(R"("code":"unauthorized")"));
  // The store cannot be read: 503.
  env_.store.SetFailing(storage::FaultInjectingStore::Op::kRead, true);
  a = Ask(FakeHeaders({{"X-Original-Method", "GET"},
                       {"X-Original-URI", "/orders/o1"},
                       {"X-Forwarded-Host", "mgmt.example"},
                       {"Authorization", "Bearer not-cached"}}));
  EXPECT_EQ(a.http_status, 503);
}

}  // namespace
}  // namespace scopekeeper
