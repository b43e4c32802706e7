// How a service unit-tests its Scopekeeper-guarded handler with
// client/mocks.h, without a server.
#include "examples/guarded_service/guarded_handler.h"

#include "client/mocks.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace example {
namespace {

using ::testing::_;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Return;
using ::testing::Truly;

class GuardedHandlerTest : public ::testing::Test {
 protected:
  GuardedHandlerTest()
      : client_(mock_),
        handler_(&client_, "management", [this](const HttpRequest&) {
          ++inner_calls_;
          return HttpResponse{200, R"({"order":{}})", {}};
        }) {}

  std::shared_ptr<scopekeeper::MockConnection> mock_ =
      std::make_shared<scopekeeper::MockConnection>();
  scopekeeper::Client client_;
  GuardedHandler handler_;
  int inner_calls_ = 0;
};

TEST_F(GuardedHandlerTest, AllowedRequestReachesTheHandlerWithRedactions) {
  scopekeeper::v1::AuthorizeResponse allowed;
  allowed.set_allowed(true);
  allowed.set_http_status(200);
  allowed.add_redactions("prescription");
  EXPECT_CALL(*mock_,
              Authorize(Truly([](const scopekeeper::v1::AuthorizeRequest& r) {
                          return r.api_key() == "rxs_mg_abc" &&
                                 r.organization_id() == "org_1" &&
                                 r.http().api() == "management" &&
                                 r.http().path() == "/orders/o1";
                        }),
                        _))
      .WillOnce(Return(allowed));
  const HttpResponse response = handler_.Handle(
      {"GET",
       "/orders/o1",
       {{"x-api-key", "rxs_mg_abc"}, {"x-organization-id", "org_1"}}});
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(inner_calls_, 1);
  EXPECT_THAT(response.strip_fields, ElementsAre("prescription"));
}

TEST_F(GuardedHandlerTest, DenialNeverReachesTheHandler) {
  scopekeeper::v1::AuthorizeResponse denied;
  denied.set_http_status(403);
  denied.set_message("Insufficient scope. Required: order:read");
  EXPECT_CALL(*mock_, Authorize).WillOnce(Return(denied));
  const HttpResponse response = handler_.Handle(
      {"GET", "/orders/o1", {{"authorization", "Bearer rxs_mg_abc"}}});
  EXPECT_EQ(response.status, 403);
  EXPECT_THAT(response.body, HasSubstr("Required: order:read"));
  EXPECT_THAT(response.body, Not(HasSubstr("rxs_mg_abc")));
  EXPECT_EQ(inner_calls_, 0);
}

TEST_F(GuardedHandlerTest, ScopekeeperDownFailsClosed) {
  EXPECT_CALL(*mock_, Authorize)
      .WillRepeatedly(Return(absl::UnavailableError("connection refused")));
  const HttpResponse response =
      handler_.Handle({"GET", "/orders/o1", {{"x-api-key", "k"}}});
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(inner_calls_, 0);
}

}  // namespace
}  // namespace example
