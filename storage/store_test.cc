// The Store contract (store_conformance.cc) for MemoryStore and RocksDbStore.
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "storage/memory_store.h"
#include "storage/rocksdb_store.h"
#include "storage/store_conformance.h"

namespace scopekeeper::storage {
namespace {

INSTANTIATE_TEST_SUITE_P(
    AllStores, StoreTest,
    ::testing::Values(
        StoreFactory{
            "Memory",
            [](const std::string&) -> absl::StatusOr<std::unique_ptr<Store>> {
              return std::make_unique<MemoryStore>();
            }},
        StoreFactory{"RocksDb",
                     [](const std::string& dir)
                         -> absl::StatusOr<std::unique_ptr<Store>> {
                       RocksDbStore::Options options;
                       options.path = dir;
                       absl::StatusOr<std::unique_ptr<RocksDbStore>> store =
                           RocksDbStore::Open(options);
                       if (!store.ok()) return store.status();
                       return std::unique_ptr<Store>(*std::move(store));
                     }}),
    [](const ::testing::TestParamInfo<StoreFactory>& info) {
      return info.param.name;
    });

}  // namespace
}  // namespace scopekeeper::storage
