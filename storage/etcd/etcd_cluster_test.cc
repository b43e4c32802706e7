// EtcdClient against real members that die: failover, quorum loss with and
// without require_leader, watches on a dying member, authentication.
#include "storage/etcd/testing/etcd_cluster.h"

#include <stdlib.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/etcd/etcd_client.h"

namespace scopekeeper::storage::etcd {
namespace {

using ::testing::AnyOf;
using testing::EtcdCluster;
using ::testing::HasSubstr;
using ::testing::Not;

#define ASSERT_OK(expr)                                   \
  do {                                                    \
    const auto& s_ = (expr);                              \
    ASSERT_TRUE(s_.ok()) << #expr << ": " << s_.status(); \
  } while (false)

std::unique_ptr<EtcdCluster> StartOrDie(int members) {
  absl::StatusOr<std::unique_ptr<EtcdCluster>> cluster =
      EtcdCluster::Start({.members = members});
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  return cluster.ok() ? *std::move(cluster) : nullptr;
}

// Leader() is the index of the member that leads, or -1.
int Leader(EtcdCluster& cluster, EtcdClient& client) {
  uint64_t leader = 0;
  std::vector<uint64_t> ids;
  for (int i = 0; i < cluster.size(); ++i) {
    absl::StatusOr<MemberStatus> status = client.Status(cluster.endpoint(i));
    if (!status.ok()) return -1;
    ids.push_back(status->member_id);
    leader = status->leader;
  }
  for (int i = 0; i < cluster.size(); ++i) {
    if (ids[i] == leader) return i;
  }
  return -1;
}

std::string Value(const absl::StatusOr<RangeResponse>& response) {
  if (!response.ok() || response->kvs.empty()) return "<none>";
  return response->kvs[0].value;
}

TEST(EtcdFailoverTest, ReadsAndNextWritesMoveOnWhenTheLeaderIsKilled) {
  std::unique_ptr<EtcdCluster> cluster = StartOrDie(3);
  ASSERT_NE(cluster, nullptr);
  absl::StatusOr<std::unique_ptr<EtcdClient>> client = cluster->Client();
  ASSERT_OK(client);
  ASSERT_OK((*client)->Put("k", "v1"));
  const int leader = Leader(*cluster, **client);
  ASSERT_GE(leader, 0);
  // The client talks to the leader first, then the leader dies. Without
  // require_leader a call rides through the election (with it, the caller
  // gets UNAVAILABLE at once meanwhile: see EtcdQuorumTest).
  EtcdClient::Options options;
  options.require_leader = false;
  absl::StatusOr<std::unique_ptr<EtcdClient>> pinned = cluster->Client(
      options, {cluster->endpoint(leader), cluster->endpoint((leader + 1) % 3),
                cluster->endpoint((leader + 2) % 3)});
  ASSERT_OK(pinned);
  ASSERT_EQ(Value((*pinned)->Range({"k"})), "v1");
  cluster->Kill(leader);

  // A linearizable read succeeds on a survivor once it has a new leader,
  // within one call's deadline.
  EXPECT_EQ(Value((*pinned)->Range({"k"})), "v1");
  // Writes are never retried by the client: this one goes to a survivor.
  absl::StatusOr<int64_t> written = (*pinned)->Put("k", "v2");
  ASSERT_OK(written);
  EXPECT_EQ(Value((*pinned)->Range({"k"})), "v2");

  // The member comes back with its data and catches up.
  ASSERT_TRUE(cluster->Restart(leader).ok());
  absl::StatusOr<std::unique_ptr<EtcdClient>> back =
      cluster->Client({}, {cluster->endpoint(leader)});
  ASSERT_OK(back);
  RangeRequest request{"k"};
  request.serializable = false;
  EXPECT_EQ(Value((*back)->Range(request)), "v2");
}

TEST(EtcdFailoverTest, WriteToADeadEndpointIsUnavailableAndNotRetried) {
  std::unique_ptr<EtcdCluster> cluster = StartOrDie(3);
  ASSERT_NE(cluster, nullptr);
  cluster->Kill(0);
  // Only the dead member: the write fails fast, naming it.
  EtcdClient::Options options;
  options.call_timeout = absl::Seconds(5);
  absl::StatusOr<std::unique_ptr<EtcdClient>> dead =
      cluster->Client(options, {cluster->endpoint(0)});
  ASSERT_OK(dead);
  const absl::Time start = absl::Now();
  const absl::Status status = (*dead)->Put("k", "v").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(status.message(), HasSubstr(cluster->endpoint(0)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST(EtcdQuorumTest, RequireLeaderFailsFastInsteadOfHangingOrServingStale) {
  std::unique_ptr<EtcdCluster> cluster = StartOrDie(3);
  ASSERT_NE(cluster, nullptr);
  absl::StatusOr<std::unique_ptr<EtcdClient>> writer = cluster->Client();
  ASSERT_OK(writer);
  ASSERT_OK((*writer)->Put("k", "before"));
  const int survivor = 2;
  // The survivor has applied the write (a linearizable read on it).
  absl::StatusOr<std::unique_ptr<EtcdClient>> probe =
      cluster->Client({}, {cluster->endpoint(survivor)});
  ASSERT_OK(probe);
  ASSERT_EQ(Value((*probe)->Range({"k"})), "before");
  cluster->Kill(0);
  cluster->Kill(1);

  EtcdClient::Options options;
  options.require_leader = true;
  options.call_timeout = absl::Seconds(5);
  absl::StatusOr<std::unique_ptr<EtcdClient>> guarded =
      cluster->Client(options, {cluster->endpoint(survivor)});
  ASSERT_OK(guarded);
  // The survivor notices within an election timeout (1 s) that it has no
  // leader; until then a call may wait. Poll (bounded) for that moment.
  RangeRequest serializable{"k"};
  serializable.serializable = true;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  absl::Status status;
  do {
    status = (*guarded)->Range(serializable).status();
  } while (!absl::StrContains(status.message(), "no leader") &&
           absl::Now() < deadline);
  ASSERT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;

  // From then on: UNAVAILABLE at once, for serializable and linearizable
  // reads, writes and watches alike — never the stale value.
  for (bool linearizable : {false, true}) {
    RangeRequest request{"k"};
    request.serializable = !linearizable;
    const absl::Time start = absl::Now();
    status = (*guarded)->Range(request).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
    EXPECT_THAT(status.message(), HasSubstr("no leader"));
    EXPECT_LT(absl::Now() - start, absl::Seconds(2)) << linearizable;
  }
  const absl::Time start = absl::Now();
  status = (*guarded)->Put("k", "after").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  absl::StatusOr<std::unique_ptr<EtcdWatch>> watch =
      (*guarded)->Watch({"k"}, {});
  EXPECT_EQ(watch.status().code(), absl::StatusCode::kUnavailable)
      << watch.status();

  // Without require_leader the same member serves its possibly stale state
  // to a serializable read, and a linearizable read waits for its deadline.
  options.require_leader = false;
  options.call_timeout = absl::Seconds(2);
  absl::StatusOr<std::unique_ptr<EtcdClient>> unguarded =
      cluster->Client(options, {cluster->endpoint(survivor)});
  ASSERT_OK(unguarded);
  EXPECT_EQ(Value((*unguarded)->Range(serializable)), "before");
  const absl::Time blocked = absl::Now();
  status = (*unguarded)->Range({"k"}).status();
  EXPECT_THAT(status.code(), AnyOf(absl::StatusCode::kDeadlineExceeded,
                                   absl::StatusCode::kUnavailable))
      << status;
  EXPECT_GE(absl::Now() - blocked, absl::Seconds(1));
}

TEST(EtcdWatchDeathTest, WatchEndsUnavailableWhenItsMemberIsKilled) {
  std::unique_ptr<EtcdCluster> cluster = StartOrDie(1);
  ASSERT_NE(cluster, nullptr);
  absl::StatusOr<std::unique_ptr<EtcdClient>> client = cluster->Client();
  ASSERT_OK(client);
  absl::Notification ended;
  absl::Status end;
  WatchCallbacks callbacks;
  callbacks.on_end = [&](const absl::Status& status, int64_t) {
    end = status;
    ended.Notify();
  };
  absl::StatusOr<std::unique_ptr<EtcdWatch>> watch =
      (*client)->Watch({"k"}, callbacks);
  ASSERT_OK(watch);
  cluster->Kill(0);
  ASSERT_TRUE(ended.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(end.code(), absl::StatusCode::kUnavailable) << end;
  EXPECT_THAT(end.message(), HasSubstr(cluster->endpoint(0)));
}

// Etcdctl() runs etcdctl against `endpoint` with `args`; true on success.
bool Etcdctl(const std::string& endpoint, const std::string& args) {
  const std::string command =
      absl::StrCat("ETCDCTL_API=3 /usr/bin/etcdctl --endpoints=", endpoint, " ",
                   args, " >/dev/null 2>&1");
  return system(command.c_str()) == 0;
}

TEST(EtcdAuthTest, UserAndPasswordGetATokenAndRenewItAfterARestart) {
  std::unique_ptr<EtcdCluster> cluster = StartOrDie(1);
  ASSERT_NE(cluster, nullptr);
  const std::string endpoint = cluster->endpoint(0);
  ASSERT_TRUE(Etcdctl(endpoint, "user add root:s3cret-pw"));
  ASSERT_TRUE(Etcdctl(endpoint, "role add root"));
  ASSERT_TRUE(Etcdctl(endpoint, "user grant-role root root"));
  ASSERT_TRUE(Etcdctl(endpoint, "auth enable"));

  absl::StatusOr<std::unique_ptr<EtcdClient>> anonymous = cluster->Client();
  ASSERT_OK(anonymous);
  EXPECT_FALSE((*anonymous)->Put("k", "v").ok());

  EtcdClient::Options options;
  options.user = "root";
  options.password = "wrong-pw";
  absl::StatusOr<std::unique_ptr<EtcdClient>> wrong = cluster->Client(options);
  ASSERT_OK(wrong);
  const absl::Status denied = (*wrong)->Put("k", "v").status();
  EXPECT_FALSE(denied.ok());
  EXPECT_THAT(denied.message(), HasSubstr("Authenticate"));
  EXPECT_THAT(denied.message(), Not(HasSubstr("wrong-pw")));

  options.password = "s3cret-pw";
  absl::StatusOr<std::unique_ptr<EtcdClient>> client = cluster->Client(options);
  ASSERT_OK(client);
  ASSERT_OK((*client)->Put("k", "v1"));
  EXPECT_EQ(Value((*client)->Range({"k"})), "v1");

  // etcd's simple tokens live in the member's memory: after a restart the
  // client's token is invalid, and the client authenticates again.
  cluster->Stop(0);
  ASSERT_TRUE(cluster->Restart(0).ok());
  ASSERT_OK((*client)->Put("k", "v2"));
  EXPECT_EQ(Value((*client)->Range({"k"})), "v2");
  // Watches carry the token too.
  absl::StatusOr<std::unique_ptr<EtcdWatch>> watch =
      (*client)->Watch({"k"}, {});
  EXPECT_TRUE(watch.ok()) << watch.status();
}

TEST(EtcdTlsTest, ClientCertificateAndCaOverTls) {
  const std::string dir = std::string(getenv("TEST_TMPDIR")) + "/tls";
  ASSERT_EQ(system(("mkdir -p " + dir).c_str()), 0);
  ASSERT_TRUE(testing::MakeTestCertificates(dir).ok());
  absl::StatusOr<std::unique_ptr<EtcdCluster>> cluster =
      EtcdCluster::Start({.tls_dir = dir});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  absl::StatusOr<std::unique_ptr<EtcdClient>> client = (*cluster)->Client();
  ASSERT_OK(client);
  ASSERT_OK((*client)->Put("k", "over tls"));
  EXPECT_EQ(Value((*client)->Range({"k"})), "over tls");

  // Without TLS, or with TLS but no client certificate: refused.
  absl::StatusOr<std::unique_ptr<EtcdClient>> insecure = EtcdClient::Create(
      {.endpoints = (*cluster)->endpoints(), .call_timeout = absl::Seconds(2)});
  ASSERT_OK(insecure);
  EXPECT_FALSE((*insecure)->Range({"k"}).ok());
  EtcdClient::Options no_cert;
  no_cert.endpoints = (*cluster)->endpoints();
  no_cert.call_timeout = absl::Seconds(2);
  std::ifstream ca(dir + "/ca.pem");
  no_cert.ca_pem.assign(std::istreambuf_iterator<char>(ca), {});
  absl::StatusOr<std::unique_ptr<EtcdClient>> anonymous =
      EtcdClient::Create(no_cert);
  ASSERT_OK(anonymous);
  EXPECT_FALSE((*anonymous)->Range({"k"}).ok());
}

}  // namespace
}  // namespace scopekeeper::storage::etcd
