#include "client/client.h"

#include <vector>

#include "client/mocks.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

using ::testing::_;
using ::testing::Return;

// A Client on a mock connection with a fake clock: sleeping advances it.
class ClientTest : public ::testing::Test {
 protected:
  Client MakeClient(int max_attempts = 3) {
    ClientOptions options;
    options.max_attempts = max_attempts;
    options.timeout = absl::Milliseconds(500);
    options.initial_backoff = absl::Milliseconds(10);
    options.max_backoff = absl::Milliseconds(40);
    options.now = [this] { return now_; };
    options.sleep = [this](absl::Duration d) {
      sleeps_.push_back(d);
      now_ += d;
    };
    return Client(mock_, options);
  }

  static v1::AuthorizeResponse Allowed() {
    v1::AuthorizeResponse r;
    r.set_allowed(true);
    r.set_reason(v1::ALLOWED);
    r.set_http_status(200);
    return r;
  }

  std::shared_ptr<MockConnection> mock_ = std::make_shared<MockConnection>();
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  std::vector<absl::Duration> sleeps_;
};

TEST_F(ClientTest, AllowedOnlyWhenTheServerSaysSo) {
  v1::AuthorizeResponse denied;
  denied.set_reason(v1::INSUFFICIENT_SCOPE);
  denied.set_http_status(403);
  denied.set_message("Insufficient scope. Required: orders_write");
  EXPECT_CALL(*mock_, Authorize)
      .WillOnce(Return(Allowed()))
      .WillOnce(Return(denied));
  Client client = MakeClient();
  const Decision yes = client.CheckHttp("k", "api", "GET", "/x");
  EXPECT_TRUE(yes.allowed);
  EXPECT_EQ(yes.http_status(), 200);
  const Decision no = client.CheckHttp("k", "api", "PATCH", "/x");
  EXPECT_FALSE(no.allowed);
  EXPECT_TRUE(no.status.ok());
  EXPECT_EQ(no.http_status(), 403);
  EXPECT_EQ(no.message(), "Insufficient scope. Required: orders_write");
}

TEST_F(ClientTest, EveryErrorFailsClosed) {
  for (const absl::Status& error :
       {absl::InvalidArgumentError("http.path"),
        absl::DeadlineExceededError("slow"), absl::InternalError("boom"),
        absl::UnauthenticatedError("token"), absl::UnavailableError("down")}) {
    EXPECT_CALL(*mock_, Authorize).WillRepeatedly(Return(error));
    const Decision d = MakeClient().CheckHttp("k", "api", "GET", "/x");
    EXPECT_FALSE(d.allowed) << error;
    EXPECT_EQ(d.status, error);
    EXPECT_EQ(d.http_status(), 503);
    EXPECT_EQ(d.message(), "Authorization service unavailable");
    ::testing::Mock::VerifyAndClearExpectations(mock_.get());
  }
}

TEST_F(ClientTest, DecisionsRetryUnavailableWithJitteredBackoff) {
  EXPECT_CALL(*mock_, Authorize)
      .WillOnce(Return(absl::UnavailableError("down")))
      .WillOnce(Return(absl::UnavailableError("down")))
      .WillOnce(Return(Allowed()));
  const Decision d = MakeClient().CheckHttp("k", "api", "GET", "/x");
  EXPECT_TRUE(d.allowed);
  ASSERT_EQ(sleeps_.size(), 2u);
  EXPECT_LE(sleeps_[0], absl::Milliseconds(10));  // full jitter, ceiling 10
  EXPECT_LE(sleeps_[1], absl::Milliseconds(20));  // then 20
}

TEST_F(ClientTest, RetriesStopAtMaxAttempts) {
  EXPECT_CALL(*mock_, Authorize)
      .Times(2)
      .WillRepeatedly(Return(absl::UnavailableError("down")));
  const Decision d =
      MakeClient(/*max_attempts=*/2).CheckHttp("k", "a", "GET", "/");
  EXPECT_FALSE(d.allowed);
  EXPECT_TRUE(absl::IsUnavailable(d.status));
}

TEST_F(ClientTest, OtherErrorsAreNotRetried) {
  EXPECT_CALL(*mock_, Authorize)
      .WillOnce(Return(absl::DeadlineExceededError("slow")));
  EXPECT_FALSE(MakeClient().CheckHttp("k", "a", "GET", "/").allowed);
  EXPECT_TRUE(sleeps_.empty());
}

TEST_F(ClientTest, EveryCallCarriesTheDeadlineAndRetriesShareIt) {
  std::vector<absl::Time> deadlines;
  EXPECT_CALL(*mock_, Authorize)
      .WillRepeatedly([&](const v1::AuthorizeRequest&, absl::Time deadline) {
        deadlines.push_back(deadline);
        return absl::UnavailableError("down");
      });
  const absl::Time start = now_;
  MakeClient(/*max_attempts=*/5).CheckHttp("k", "a", "GET", "/");
  ASSERT_FALSE(deadlines.empty());
  for (absl::Time d : deadlines) EXPECT_EQ(d, start + absl::Milliseconds(500));
  // An explicit deadline too close for a backoff: one attempt only.
  deadlines.clear();
  Client client = MakeClient(/*max_attempts=*/5);
  client.Authorize(v1::AuthorizeRequest(), now_);
  EXPECT_EQ(deadlines.size(), 1u);
}

TEST_F(ClientTest, WritesAreNeverRetried) {
  EXPECT_CALL(*mock_, GrantScopes)
      .WillOnce(Return(absl::UnavailableError("down")));
  EXPECT_CALL(*mock_, RevokeKey)
      .WillOnce(Return(absl::UnavailableError("down")));
  Client client = MakeClient();
  EXPECT_TRUE(absl::IsUnavailable(
      client.GrantScopes(v1::GrantScopesRequest()).status()));
  EXPECT_TRUE(
      absl::IsUnavailable(client.RevokeKey(v1::RevokeKeyRequest()).status()));
  EXPECT_TRUE(sleeps_.empty());
}

TEST_F(ClientTest, CreateKeyIsRetriedWithOneRequestId) {
  std::vector<std::string> ids;
  v1::CreateKeyResponse created;
  created.mutable_key()->set_key_id("key_1");
  created.set_secret("tk_secret");
  EXPECT_CALL(*mock_, CreateKey)
      .WillOnce([&](const v1::CreateKeyRequest& r, absl::Time) {
        ids.push_back(r.request_id());
        return absl::UnavailableError("replica went away");
      })
      .WillOnce([&](const v1::CreateKeyRequest& r, absl::Time) {
        ids.push_back(r.request_id());
        return created;
      });
  absl::StatusOr<v1::CreateKeyResponse> got =
      MakeClient().CreateKey(v1::CreateKeyRequest());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->secret(), "tk_secret");
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0].size(), 32u);
  EXPECT_EQ(ids[0], ids[1]);
  // Each call has its own id.
  EXPECT_CALL(*mock_, CreateKey)
      .WillOnce([&](const v1::CreateKeyRequest& r, absl::Time) {
        ids.push_back(r.request_id());
        return created;
      });
  ASSERT_TRUE(MakeClient().CreateKey(v1::CreateKeyRequest()).ok());
  EXPECT_NE(ids[2], ids[0]);
}

TEST_F(ClientTest, LostCreateKeyAnswerIsReplacedByANewSecret) {
  // The first attempt created the key but its answer was lost; the retry
  // is a replay without the secret: the client rotates to get one.
  v1::CreateKeyResponse replay;
  replay.mutable_key()->set_key_id("key_1");
  replay.set_replayed(true);
  v1::CreateKeyResponse rotated;
  rotated.mutable_key()->set_key_id("key_1");
  rotated.set_secret("tk_new");
  EXPECT_CALL(*mock_, CreateKey)
      .WillOnce(Return(absl::UnavailableError("answer lost")))
      .WillOnce(Return(replay));
  EXPECT_CALL(*mock_, RotateKey)
      .WillOnce([&](const v1::RotateKeyRequest& r, absl::Time) {
        EXPECT_EQ(r.key_id(), "key_1");
        EXPECT_FALSE(r.has_grace_period());  // the lost secret stops at once
        return rotated;
      });
  absl::StatusOr<v1::CreateKeyResponse> got =
      MakeClient().CreateKey(v1::CreateKeyRequest());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->secret(), "tk_new");
  EXPECT_FALSE(got->replayed());
  // The caller's own request_id: a replay is the caller's to handle.
  v1::CreateKeyRequest mine;
  mine.set_request_id("my-id");
  EXPECT_CALL(*mock_, CreateKey)
      .WillOnce(Return(absl::UnavailableError("answer lost")))
      .WillOnce(Return(replay));
  got = MakeClient().CreateKey(mine);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->replayed());
}

TEST(GrpcTargetTest, ListsOfReplicasBecomeOneRoundRobinTarget) {
  EXPECT_EQ(GrpcTarget("127.0.0.1:50051"), "127.0.0.1:50051");
  EXPECT_EQ(GrpcTarget("sk.internal:50051"), "sk.internal:50051");
  EXPECT_EQ(GrpcTarget("dns:///sk.internal:50051"), "dns:///sk.internal:50051");
  EXPECT_EQ(GrpcTarget("127.0.0.1:1,127.0.0.2:2"),
            "ipv4:127.0.0.1:1,127.0.0.2:2");
  EXPECT_EQ(GrpcTarget("[::1]:1,[::1]:2"), "ipv6:[::1]:1,[::1]:2");
  EXPECT_EQ(GrpcTarget("localhost:7,127.0.0.1:8"),
            "ipv4:127.0.0.1:7,127.0.0.1:8");
  EXPECT_EQ(GrpcTarget("ipv4:127.0.0.1:1,127.0.0.2:2"),
            "ipv4:127.0.0.1:1,127.0.0.2:2");
}

TEST_F(ClientTest, ReadsRetryUnavailable) {
  v1::Key key;
  key.set_key_id("key_1");
  EXPECT_CALL(*mock_, GetKey)
      .WillOnce(Return(absl::UnavailableError("down")))
      .WillOnce(Return(key));
  auto got = MakeClient().GetKey(v1::GetKeyRequest());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->key_id(), "key_1");
}

TEST_F(ClientTest, GetInstallationRetriesCreateBackupDoesNot) {
  v1::Installation installation;
  installation.set_installation_id("inst_1");
  EXPECT_CALL(*mock_, GetInstallation)
      .WillOnce(Return(absl::UnavailableError("down")))
      .WillOnce(Return(installation));
  Client client = MakeClient();
  auto got = client.GetInstallation(v1::GetInstallationRequest());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->installation_id(), "inst_1");
  EXPECT_EQ(sleeps_.size(), 1u);

  // A retried backup whose first answer was lost would fail on the
  // destination the first attempt created.
  EXPECT_CALL(*mock_, CreateBackup)
      .WillOnce(Return(absl::UnavailableError("down")));
  EXPECT_TRUE(absl::IsUnavailable(
      client.CreateBackup(v1::CreateBackupRequest()).status()));
  EXPECT_EQ(sleeps_.size(), 1u);
}

TEST_F(ClientTest, BatchFailsClosedPerDecision) {
  v1::BatchAuthorizeRequest batch;
  batch.add_requests();
  batch.add_requests();
  EXPECT_CALL(*mock_, BatchAuthorize)
      .WillOnce(Return(absl::InternalError("boom")));
  Client client = MakeClient();
  for (const Decision& d : client.BatchAuthorize(batch)) {
    EXPECT_FALSE(d.allowed);
    EXPECT_FALSE(d.status.ok());
  }
  // A short answer cannot be paired with the requests: all fail closed.
  v1::BatchAuthorizeResponse short_answer;
  *short_answer.add_responses() = Allowed();
  EXPECT_CALL(*mock_, BatchAuthorize).WillOnce(Return(short_answer));
  const std::vector<Decision> decisions = client.BatchAuthorize(batch);
  ASSERT_EQ(decisions.size(), 2u);
  for (const Decision& d : decisions) EXPECT_FALSE(d.allowed);
}

TEST_F(ClientTest, BatchAnswersInOrder) {
  v1::BatchAuthorizeRequest batch;
  batch.add_requests();
  batch.add_requests();
  v1::BatchAuthorizeResponse answer;
  *answer.add_responses() = Allowed();
  answer.add_responses()->set_reason(v1::KEY_INVALID);
  EXPECT_CALL(*mock_, BatchAuthorize).WillOnce(Return(answer));
  const std::vector<Decision> d = MakeClient().BatchAuthorize(batch);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_TRUE(d[0].allowed);
  EXPECT_FALSE(d[1].allowed);
  EXPECT_EQ(d[1].response.reason(), v1::KEY_INVALID);
}

TEST_F(ClientTest, WatchPassesTheDeadlineAndIsNotRetried) {
  const absl::Time deadline = now_ + absl::Seconds(7);
  EXPECT_CALL(*mock_, Watch(_, deadline, _))
      .WillOnce(Return(absl::UnavailableError("down")));
  v1::WatchRequest request;
  request.set_from_revision(4);
  EXPECT_TRUE(absl::IsUnavailable(MakeClient().Watch(
      request, deadline, [](const v1::WatchEvent&) { return true; })));
  EXPECT_TRUE(sleeps_.empty());
}

}  // namespace
}  // namespace scopekeeper
