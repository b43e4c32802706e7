// Hammers DecisionEngine::Authorize from many threads while other threads
// grant, revoke and rotate the same keys through the Registry, and checks
// that no decision is ever wrong for the state that was acknowledged before
// it began. Meant to run under --config=tsan as well as plain.
//
// Each key follows a schedule of writes fixed before the threads start, so
// the right answer is known for every version of the key:
//   version 0: created with orders_read only (PATCH .../status denied)
//   then a random sequence of: grant orders_write, revoke orders_write,
//   rotate (new secret, old one stops at once); last: revoke the key.
// A writer publishes `started` before a write and `done` after it returns.
// A reader notes `done` (d) before its call and `started` (s) after it: the
// decision must be the right one for some version in [d, s]. Anything else
// (an old secret working after its rotation was acknowledged, a revoked
// scope still allowing, a granted one denied after the grant returned) is a
// failure.
#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/testing/core_test_env.h"

namespace scopekeeper {
namespace {

enum class Op { kGrant, kRevokeScope, kRotate, kRevokeKey };

constexpr int kKeys = 8;
constexpr int kOpsPerKey = 120;
constexpr int kWriters = 2;
constexpr int kReaders = 4;
constexpr absl::string_view kPath = "/v1/pharmacy/orders/o_1/status";

// One key's schedule and what is known about each of its versions.
struct KeyPlan {
  std::string key_id;
  std::vector<Op> ops;            // ops[i] takes version i to i + 1
  std::vector<bool> has_write;    // per version: holds orders_write
  std::vector<int> secret_index;  // per version: which secret is current
  std::vector<bool> revoked;      // per version
  // secrets[i] is written by the writer before `done` passes the version
  // that introduced it, and read only by readers that saw that `done`.
  std::vector<std::string> secrets;
  std::atomic<int> started{0};  // highest version a write has begun towards
  std::atomic<int> done{0};     // highest version acknowledged
};

// Whether `secret_index` is allowed PATCH .../status at `version`.
bool ExpectedAllowed(const KeyPlan& plan, int version, int secret_index) {
  return !plan.revoked[version] && plan.has_write[version] &&
         plan.secret_index[version] == secret_index;
}

void Plan(KeyPlan* plan, std::mt19937* rng) {
  bool write = false;
  int secret = 0;
  plan->has_write.push_back(write);
  plan->secret_index.push_back(secret);
  plan->revoked.push_back(false);
  for (int i = 0; i < kOpsPerKey; ++i) {
    const Op op =
        (i + 1 == kOpsPerKey)
            ? Op::kRevokeKey
            : static_cast<Op>(std::uniform_int_distribution<>(0, 2)(*rng));
    plan->ops.push_back(op);
    if (op == Op::kGrant) write = true;
    if (op == Op::kRevokeScope) write = false;
    if (op == Op::kRotate) ++secret;
    plan->has_write.push_back(write);
    plan->secret_index.push_back(secret);
    plan->revoked.push_back(op == Op::kRevokeKey);
  }
  plan->secrets.resize(secret + 1);
}

class DecisionConcurrencyTest : public ::testing::Test {
 protected:
  void SetUp() override { env_.PutPolicyJson(kTestPolicyJson); }

  void RunWrites(KeyPlan* plan) {
    int secrets = 0;
    for (size_t i = 0; i < plan->ops.size(); ++i) {
      plan->started.store(i + 1, std::memory_order_seq_cst);
      absl::Status status;
      switch (plan->ops[i]) {
        case Op::kGrant: {
          v1::GrantScopesRequest r;
          r.set_key_id(plan->key_id);
          r.add_scopes("orders_write");
          status = env_.registry.GrantScopes(r, CoreTestEnv::kActor).status();
          break;
        }
        case Op::kRevokeScope: {
          v1::RevokeScopesRequest r;
          r.set_key_id(plan->key_id);
          r.add_scopes("orders_write");
          status = env_.registry.RevokeScopes(r, CoreTestEnv::kActor).status();
          break;
        }
        case Op::kRotate: {
          v1::RotateKeyRequest r;
          r.set_key_id(plan->key_id);
          auto rotated = env_.registry.RotateKey(r, CoreTestEnv::kActor);
          status = rotated.status();
          if (rotated.ok()) plan->secrets[++secrets] = rotated->secret();
          break;
        }
        case Op::kRevokeKey: {
          v1::RevokeKeyRequest r;
          r.set_key_id(plan->key_id);
          status = env_.registry.RevokeKey(r, CoreTestEnv::kActor).status();
          break;
        }
      }
      ASSERT_TRUE(status.ok()) << status;
      plan->done.store(i + 1, std::memory_order_seq_cst);
    }
  }

  // Decides random requests until `stop`; returns how many were checked.
  int64_t RunReads(int seed, const std::atomic<bool>& stop) {
    std::mt19937 rng(seed);
    int64_t checked = 0;
    while (!stop.load()) {
      KeyPlan& plan =
          *plans_[std::uniform_int_distribution<>(0, kKeys - 1)(rng)];
      const int before = plan.done.load(std::memory_order_seq_cst);
      // Any secret published by `before`: the current one, or an older one
      // that must fail.
      const int secret =
          std::uniform_int_distribution<>(0, plan.secret_index[before])(rng);
      const v1::AuthorizeResponse r =
          env_.Http(plan.secrets[secret], "pharmacy", "PATCH", kPath, "org_a");
      const int after = plan.started.load(std::memory_order_seq_cst);
      bool explained = false;
      for (int v = before; v <= after && !explained; ++v) {
        explained = ExpectedAllowed(plan, v, secret) == r.allowed();
      }
      EXPECT_TRUE(explained)
          << plan.key_id << " secret #" << secret
          << " got allowed=" << r.allowed() << " ("
          << v1::Reason_Name(r.reason()) << ") but no version in [" << before
          << ", " << after << "] says so";
      if (!explained) return checked;  // one report per reader is enough
      ++checked;
    }
    return checked;
  }

  CoreTestEnv env_;
  std::vector<std::unique_ptr<KeyPlan>> plans_;
};

TEST_F(DecisionConcurrencyTest, NoDecisionContradictsAnAcknowledgedWrite) {
  std::mt19937 rng(20261123);
  for (int k = 0; k < kKeys; ++k) {
    auto plan = std::make_unique<KeyPlan>();
    Plan(plan.get(), &rng);
    const v1::CreateKeyResponse created =
        env_.CreateKey({"pharmacy"}, {"orders_read"});
    ASSERT_FALSE(created.secret().empty());
    plan->key_id = created.key().key_id();
    plan->secrets[0] = created.secret();
    plans_.push_back(std::move(plan));
  }

  std::atomic<bool> stop{false};
  std::vector<int64_t> checked(kReaders, 0);
  std::vector<std::thread> readers;
  for (int i = 0; i < kReaders; ++i) {
    readers.emplace_back([&, i] { checked[i] = RunReads(i + 1, stop); });
  }
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int k = w; k < kKeys; k += kWriters) RunWrites(plans_[k].get());
    });
  }
  for (std::thread& t : writers) t.join();
  stop.store(true);
  for (std::thread& t : readers) t.join();

  int64_t total = 0;
  for (int64_t n : checked) total += n;
  EXPECT_GT(total, 0);
  // After the last acknowledged write every key is revoked: nothing passes.
  for (const auto& plan : plans_) {
    for (const std::string& secret : plan->secrets) {
      EXPECT_FALSE(
          env_.Http(secret, "pharmacy", "PATCH", kPath, "org_a").allowed());
    }
  }
  RecordProperty("decisions_checked", total);
}

}  // namespace
}  // namespace scopekeeper
