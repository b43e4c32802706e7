// The Store contract (storage/store_conformance.cc) for EtcdStore: one real
// etcd member for the whole suite, a fresh prefix for every test. The suite
// commits through WriteGuarded() (assigns_revisions) and skips the three
// tests of caller-chosen revisions (Write()/Commit() at Revision() + 1),
// which EtcdStore refuses (see etcd_store_test.cc).
#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "storage/etcd/etcd_store.h"
#include "storage/etcd/testing/etcd_cluster.h"
#include "storage/store_conformance.h"

namespace scopekeeper::storage {
namespace {

etcd::testing::EtcdCluster* cluster = nullptr;

class EtcdEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<etcd::testing::EtcdCluster>> started =
        etcd::testing::EtcdCluster::Start({});
    ASSERT_TRUE(started.ok()) << started.status();
    cluster = started->release();
  }
  void TearDown() override {
    delete cluster;
    cluster = nullptr;
  }
};

::testing::Environment* const environment =
    ::testing::AddGlobalTestEnvironment(new EtcdEnvironment);

absl::StatusOr<std::unique_ptr<Store>> OpenEtcdStore(const std::string&) {
  static std::atomic<int> stores{0};
  if (cluster == nullptr) return absl::FailedPreconditionError("no etcd");
  absl::StatusOr<std::unique_ptr<etcd::EtcdClient>> client = cluster->Client();
  if (!client.ok()) return client.status();
  EtcdStore::Options options;
  options.prefix = absl::StrCat("/conformance/", stores++, "/");
  absl::StatusOr<std::unique_ptr<EtcdStore>> store = EtcdStore::Open(
      std::shared_ptr<etcd::EtcdClient>(*std::move(client)), options);
  if (!store.ok()) return store.status();
  return std::unique_ptr<Store>(*std::move(store));
}

INSTANTIATE_TEST_SUITE_P(
    Etcd, StoreTest,
    ::testing::Values(StoreFactory{"Etcd", OpenEtcdStore,
                                   /*assigns_revisions=*/true}),
    [](const ::testing::TestParamInfo<StoreFactory>& info) {
      return info.param.name;
    });

}  // namespace
}  // namespace scopekeeper::storage
