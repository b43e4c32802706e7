#include "base/time_util.h"

#include "absl/time/civil_time.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

TEST(TimeUtilTest, RoundTripsAcrossTheWholeTimestampRange) {
  const absl::Time times[] = {
      absl::UnixEpoch(),
      absl::FromUnixNanos(-1),  // before the epoch: nanos stay positive
      absl::FromUnixSeconds(1'800'000'000) + absl::Nanoseconds(123),
      // Past 2262, where int64 nanoseconds end.
      absl::FromCivil(absl::CivilSecond(9999, 12, 31, 23, 59, 59),
                      absl::UTCTimeZone()) +
          absl::Nanoseconds(999'999'999),
      absl::FromCivil(absl::CivilSecond(1, 1, 1, 0, 0, 0), absl::UTCTimeZone()),
  };
  for (const absl::Time t : times) {
    const google::protobuf::Timestamp proto = ToProtoTime(t);
    EXPECT_GE(proto.nanos(), 0);
    EXPECT_LT(proto.nanos(), 1'000'000'000);
    EXPECT_TRUE(ValidateProtoTime("t", proto).ok()) << t;
    EXPECT_EQ(FromProtoTime(proto), t);
  }
  const google::protobuf::Timestamp before =
      ToProtoTime(absl::FromUnixNanos(-1));
  EXPECT_EQ(before.seconds(), -1);
  EXPECT_EQ(before.nanos(), 999'999'999);
}

TEST(TimeUtilTest, OutOfRangeValuesNameTheField) {
  google::protobuf::Timestamp t;
  t.set_seconds(253402300800);  // 10000-01-01
  EXPECT_EQ(ValidateProtoTime("expire_time", t).message(),
            "expire_time: timestamp out of range");
  t.set_seconds(0);
  t.set_nanos(-1);
  EXPECT_FALSE(ValidateProtoTime("expire_time", t).ok());
  google::protobuf::Duration d;
  d.set_seconds(-1);
  EXPECT_FALSE(ValidateProtoDuration("grace_period", d).ok());
  d.set_seconds(10 * 366 * 86400 + 1);
  EXPECT_FALSE(ValidateProtoDuration("grace_period", d).ok());
  d.set_seconds(86400);
  EXPECT_TRUE(ValidateProtoDuration("grace_period", d).ok());
}

TEST(TimeUtilTest, UnsetTimestampsGiveTheDefault) {
  EXPECT_EQ(FromProtoTimeOr({}, absl::InfiniteFuture()),
            absl::InfiniteFuture());
}

}  // namespace
}  // namespace scopekeeper
