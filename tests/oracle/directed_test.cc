// Directed scenarios: the semantics DESIGN.md leaves open and docs/API.md
// ("Semantics in detail") settles, each as a small scenario that
// the core and the model must agree on and whose answer is pinned here, so
// that neither can drift from the documented decision unnoticed.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/oracle/core_target.h"
#include "tests/oracle/differential.h"

namespace scopekeeper::oracle {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

template <typename M>
std::shared_ptr<const google::protobuf::Message> Parse(const std::string& t) {
  auto m = std::make_shared<M>();
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(t, m.get())) << t;
  return m;
}

// Builds a scenario step by step; Play() runs it on the core and the model.
class DirectedScenario {
 public:
  DirectedScenario& Policy(const std::string& policy) {
    return Add(StepKind::kPutPolicy,
               Parse<v1::PutPolicyRequest>("policy {" + policy + "}"));
  }
  DirectedScenario& App(const std::string& app) {
    return Add(StepKind::kPutApp,
               Parse<v1::PutAppRequest>("app {" + app + "}"));
  }
  DirectedScenario& Approve(const std::string& request) {
    return Add(StepKind::kApproveInstallation,
               Parse<v1::ApproveInstallationRequest>(request));
  }
  DirectedScenario& Key(int slot, const std::string& request,
                        const std::string& bind_app = "") {
    Add(StepKind::kCreateKey, Parse<v1::CreateKeyRequest>(request), slot);
    scenario_.steps.back().bind_app = bind_app;
    return *this;
  }
  DirectedScenario& Grant(int slot, const std::string& request) {
    return Add(StepKind::kGrantScopes, Parse<v1::GrantScopesRequest>(request),
               slot);
  }
  DirectedScenario& Rotate(int slot, const std::string& request = "") {
    return Add(StepKind::kRotateKey, Parse<v1::RotateKeyRequest>(request),
               slot);
  }
  DirectedScenario& Revoke(int slot) {
    return Add(StepKind::kRevokeKey, Parse<v1::RevokeKeyRequest>(""), slot);
  }
  DirectedScenario& Advance(absl::Duration d) {
    Step step;
    step.kind = StepKind::kAdvanceClock;
    step.advance = d;
    scenario_.steps.push_back(std::move(step));
    return *this;
  }
  // Ask() adds a request presenting `key`'s secret (`secret`: which one).
  DirectedScenario& Ask(int slot, const std::string& request, int secret = -1) {
    Add(StepKind::kAuthorize, Parse<v1::AuthorizeRequest>(request));
    scenario_.steps.back().key.slot = slot;
    scenario_.steps.back().key.secret = secret;
    return *this;
  }

  // Play() plays the scenario on the core and the model, expects agreement,
  // and returns the core's answers to the requests, in order.
  std::vector<v1::AuthorizeResponse> Play() {
    Recorder recorder;
    const std::optional<Disagreement> d = oracle::Play(scenario_, recorder);
    EXPECT_FALSE(d.has_value()) << FormatCase(scenario_, *d);
    return recorder.answers;
  }

 private:
  // The core, recording what it answers.
  struct Recorder : public CoreTarget {
    Answers Authorize(
        const std::vector<v1::AuthorizeRequest>& requests) override {
      Answers out = CoreTarget::Authorize(requests);
      for (const auto& r : out.each) {
        answers.push_back(r.ok() ? *r : Invalid());
      }
      return out;
    }
    static v1::AuthorizeResponse Invalid() {
      v1::AuthorizeResponse r;
      r.set_message("<error>");
      return r;
    }
    std::vector<v1::AuthorizeResponse> answers;
  };

  DirectedScenario& Add(
      StepKind kind, std::shared_ptr<const google::protobuf::Message> request,
      int slot = -1) {
    Step step;
    step.kind = kind;
    step.request = std::move(request);
    step.slot = slot;
    scenario_.steps.push_back(std::move(step));
    return *this;
  }

  Scenario scenario_;
};

constexpr char kPolicy[] = R"pb(
  scopes { name: "a" }
  scopes { name: "b" }
  apis {
    name: "api"
    path_prefix: "/v1/"
    routes {
      method: "post"
      path: "/things/{id}/"
      requirement { all_of: "a" }
      redactions { field: "secret" unless_scope: "b" }
    }
    routes {
      method: "GET"
      path: "/"
      requirement { authenticated_only: true }
    }
  }
  apis {
    name: "plain"
    routes {
      method: "GET"
      path: "/x"
      requirement { authenticated_only: true }
    }
  }
  bundles {
    name: "both"
    scopes: [ "a", "b" ]
  }
)pb";

constexpr char kAskA[] = R"pb(requirement { all_of: "a" })pb";

TEST(DirectedTest, RouteMethodCasePrefixSlashAndThePrefixAlone) {
  const auto answers =
      DirectedScenario()
          .Policy(kPolicy)
          .Key(0, R"pb(organization_id: "org_a"
                       apis: [ "api", "plain" ]
                       scopes: "a")pb")
          .Ask(0,
               R"pb(http { api: "api" method: "POST" path: "/v1/things/1" })pb")
          .Ask(0, R"pb(http { api: "api" method: "GET" path: "/v1" })pb")
          .Ask(0, R"pb(http { api: "api" method: "HEAD" path: "/v1/" })pb")
          .Ask(0, R"pb(http { api: "plain" method: "GET" path: "x" })pb")
          .Play();
  ASSERT_EQ(answers.size(), 4u);
  EXPECT_TRUE(answers[0].allowed());
  EXPECT_EQ(answers[0].matched_route(), "POST /things/{id}/");
  EXPECT_THAT(answers[0].redactions(), ElementsAre("secret"));
  EXPECT_EQ(answers[0].message(), "");
  EXPECT_EQ(answers[1].matched_route(), "GET /");
  EXPECT_EQ(answers[2].reason(), v1::ROUTE_NOT_FOUND);  // HEAD is not GET
  EXPECT_EQ(answers[3].reason(), v1::ROUTE_NOT_FOUND);  // not absolute
}

TEST(DirectedTest, RedactionsOnlyOnAllowedDecisions) {
  const auto answers =
      DirectedScenario()
          .Policy(kPolicy)
          .Key(0, R"pb(organization_id: "org_a" apis: "api")pb")
          .Ask(0,
               R"pb(http { api: "api" method: "POST" path: "/v1/things/1" })pb")
          .Play();
  EXPECT_EQ(answers[0].reason(), v1::INSUFFICIENT_SCOPE);
  EXPECT_THAT(answers[0].redactions(), IsEmpty());
}

TEST(DirectedTest, DeadlinesEndAtTheirInstant) {
  const absl::Time t0 = kScenarioStart;
  const auto answers =
      DirectedScenario()
          .Policy(kPolicy)
          .Key(0, absl::StrCat(R"pb(organization_id: "org_a"
                                    expire_time { seconds:)pb",
                               absl::ToUnixSeconds(t0) + 120, "}"))
          .Key(1, R"pb(organization_id: "org_a")pb")
          .Grant(1, absl::StrCat(R"pb(scopes: "a"
                                      expire_time { seconds:)pb",
                                 absl::ToUnixSeconds(t0) + 60, "}"))
          .Rotate(1, R"pb(grace_period { seconds: 60 })pb")
          .Advance(absl::Seconds(59))
          .Ask(1, kAskA, /*secret=*/0)
          .Advance(absl::Seconds(1))
          .Ask(1, kAskA, /*secret=*/0)
          .Ask(1, kAskA)
          .Advance(absl::Seconds(60))
          .Ask(0, kAskA)
          .Play();
  ASSERT_EQ(answers.size(), 4u);
  EXPECT_TRUE(answers[0].allowed());  // 1 s before: old secret and grant
  EXPECT_EQ(answers[1].reason(), v1::KEY_INVALID);         // grace over
  EXPECT_EQ(answers[2].reason(), v1::INSUFFICIENT_SCOPE);  // grant over
  EXPECT_EQ(answers[3].reason(), v1::KEY_EXPIRED);         // at expire_time
}

TEST(DirectedTest, RotatingWithoutGraceEndsEveryOldSecret) {
  const auto answers =
      DirectedScenario()
          .Policy(kPolicy)
          .Key(0, R"pb(organization_id: "org_a" scopes: "a")pb")
          .Rotate(0, R"pb(grace_period { seconds: 600 })pb")
          .Ask(0, kAskA, /*secret=*/0)
          .Rotate(0)
          .Ask(0, kAskA, /*secret=*/0)
          .Ask(0, kAskA, /*secret=*/1)
          .Ask(0, kAskA)
          .Play();
  ASSERT_EQ(answers.size(), 4u);
  EXPECT_TRUE(answers[0].allowed());
  EXPECT_EQ(answers[1].reason(), v1::KEY_INVALID);
  EXPECT_EQ(answers[2].reason(), v1::KEY_INVALID);
  EXPECT_TRUE(answers[3].allowed());
}

TEST(DirectedTest, ARedeclaredScopeCountsAgainForKeysThatKeptItsGrant) {
  const auto answers =
      DirectedScenario()
          .Policy(kPolicy)
          .Key(0, R"pb(organization_id: "org_a" scopes: "a")pb")
          .Policy(R"pb(scopes { name: "b" })pb")  // "a" dropped
          .Ask(0, R"pb(requirement { authenticated_only: true })pb")
          .Policy(kPolicy)  // "a" declared again
          .Ask(0, kAskA)
          .Play();
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_TRUE(answers[0].allowed());
  EXPECT_TRUE(answers[1].allowed());
}

TEST(DirectedTest, AnApprovalStaysUntilReplacedAcrossAppVersions) {
  const auto answers =
      DirectedScenario()
          .Policy(kPolicy)
          .App(R"pb(app_id: "app_1" requested_scopes: "a")pb")
          .Approve(R"pb(organization_id: "org_a"
                        app_id: "app_1"
                        approved_scopes: "a")pb")
          .Key(0, R"pb(organization_id: "org_a")pb", "app_1")
          .Ask(0, kAskA)
          .App(R"pb(app_id: "app_1" requested_scopes: "b")pb")  // drops "a"
          .Ask(0, kAskA)
          .App(R"pb(app_id: "app_1"
                    requested_scopes: [ "a", "b" ])pb")
          .Ask(0, kAskA)
          .Play();
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_TRUE(answers[0].allowed());
  EXPECT_EQ(answers[0].app_id(), "app_1");
  EXPECT_EQ(answers[1].reason(), v1::INSUFFICIENT_SCOPE);
  EXPECT_TRUE(answers[2].allowed());  // approved before, requested again
}

TEST(DirectedTest, RevokedKeysStillNameTheirKeyAndApp) {
  const auto answers = DirectedScenario()
                           .Policy(kPolicy)
                           .App(R"pb(app_id: "app_1" requested_scopes: "a")pb")
                           .Approve(R"pb(organization_id: "org_a"
                                         app_id: "app_1")pb")
                           .Key(0, R"pb(organization_id: "org_a")pb", "app_1")
                           .Revoke(0)
                           .Ask(0, kAskA)
                           .Play();
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].reason(), v1::KEY_REVOKED);
  EXPECT_FALSE(answers[0].key_id().empty());
  EXPECT_EQ(answers[0].organization_id(), "org_a");
  EXPECT_EQ(answers[0].app_id(), "app_1");
}

}  // namespace
}  // namespace scopekeeper::oracle
