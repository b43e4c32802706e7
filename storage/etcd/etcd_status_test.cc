#include "storage/etcd/etcd_status.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scopekeeper::storage::etcd {
namespace {

using ::testing::HasSubstr;

TEST(EtcdErrorTest, OkStaysOk) {
  EXPECT_TRUE(EtcdError(grpc::Status::OK, "Range k", "127.0.0.1:1").ok());
}

TEST(EtcdErrorTest, KeepsCodeAndNamesOperationAndEndpoint) {
  const absl::Status status = EtcdError(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: no leader"),
      "Range /sk/s/key/k1", "10.0.0.7:2379");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(),
            "etcd Range /sk/s/key/k1 at 10.0.0.7:2379: etcdserver: no leader");
}

TEST(EtcdErrorTest, MapsEveryGrpcCodeToTheSameAbslCode) {
  for (int code = 1; code <= 16; ++code) {
    const absl::Status status = EtcdError(
        grpc::Status(static_cast<grpc::StatusCode>(code), "x"), "Txn", "h:1");
    EXPECT_EQ(static_cast<int>(status.code()), code);
  }
}

TEST(EtcdErrorTest, EmptyMessageIsSaidSo) {
  EXPECT_THAT(
      EtcdError(grpc::Status(grpc::StatusCode::INTERNAL, ""), "Txn", "h:1")
          .message(),
      HasSubstr("(no message)"));
}

TEST(IsInvalidAuthTokenTest, OnlyEtcdsInvalidTokenAnswer) {
  EXPECT_TRUE(IsInvalidAuthToken(grpc::Status(
      grpc::StatusCode::UNAUTHENTICATED, "etcdserver: invalid auth token")));
  EXPECT_FALSE(IsInvalidAuthToken(
      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                   "etcdserver: authentication failed, invalid user ID or "
                   "password")));
  EXPECT_FALSE(IsInvalidAuthToken(grpc::Status(
      grpc::StatusCode::UNAVAILABLE, "etcdserver: invalid auth token")));
}

}  // namespace
}  // namespace scopekeeper::storage::etcd
