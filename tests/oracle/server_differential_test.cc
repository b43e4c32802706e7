// The differential test through the real server: the server started
// in-process on port 0 (RocksDB in a temporary data dir, a FakeClock), the
// scenarios' admin operations sent as Admin RPCs and their requests as
// BatchAuthorize calls, so the gRPC layer, the key cache and the store are
// covered too. A bounded-cache server (3 keys) makes most lookups go to
// RocksDB.
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/oracle/differential.h"
#include "tests/oracle/server_target.h"

namespace scopekeeper::oracle {
namespace {

constexpr uint64_t kSeed = 20240611;

std::unique_ptr<LocalServer> StartServer(const std::string& name,
                                         int64_t key_cache_capacity) {
  auto server = LocalServer::Start(
      absl::StrCat(getenv("TEST_TMPDIR"), "/", name), key_cache_capacity);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

void ExpectAgreement(uint64_t seed, int64_t decisions,
                     const TargetFactory& factory) {
  RunOptions options;
  options.seed = seed;
  options.max_decisions = decisions;
  const RunResult result = RunDifferential(options, factory);
  std::cout << result.scenarios << " scenarios, " << result.decisions
            << " decisions, " << result.operations << " operations in "
            << result.elapsed << "\n";
  EXPECT_EQ(result.disagreements, 0) << "seed " << seed << "; minimized case:\n"
                                     << absl::StrJoin(result.reports, "\n");
  EXPECT_GT(result.decisions, 0);
}

TEST(ServerDifferentialTest, ServerAgreesWithTheModel) {
  std::unique_ptr<LocalServer> server = StartServer("complete", 0);
  ASSERT_NE(server, nullptr);
  ExpectAgreement(kSeed, 4000,
                  ServerTargetFactory({server->address()},
                                      server->admin_token(), server->clock()));
}

TEST(ServerDifferentialTest, ServerWithABoundedKeyCacheAgreesWithTheModel) {
  std::unique_ptr<LocalServer> server = StartServer("bounded", 3);
  ASSERT_NE(server, nullptr);
  ExpectAgreement(kSeed + 1, 4000,
                  ServerTargetFactory({server->address()},
                                      server->admin_token(), server->clock()));
}

// An address list, as for replicas: here the same server twice, so every
// decision carries the last write's revision as min_revision.
TEST(ServerDifferentialTest, AnAddressListAgreesWithTheModel) {
  std::unique_ptr<LocalServer> server = StartServer("list", 3);
  ASSERT_NE(server, nullptr);
  ExpectAgreement(kSeed + 2, 2000,
                  ServerTargetFactory({server->address(), server->address()},
                                      server->admin_token(), server->clock()));
}

}  // namespace
}  // namespace scopekeeper::oracle
