// The Store contract as a parameterized gtest suite (store_conformance.cc),
// instantiated once per implementation: store_test.cc (MemoryStore,
// RocksDbStore), etcd/etcd_store_conformance_test.cc (EtcdStore).
//
// Revisions legitimately differ between implementations: the single-writer
// stores commit at the caller's revision, Revision() + 1 (contiguous); an
// EtcdStore assigns etcd's revision (monotonic, with gaps). The tests number
// their mutations 1, 2, 3, ... and commit through StoreTest::Commit(),
// which uses Store::Commit() or Store::WriteGuarded() accordingly and
// remembers the store revision each number became (Rev()). Records read
// back carry the revision of the mutation that wrote them: the caller
// stamps them for the single-writer stores (as the registry does), EtcdStore
// stamps them itself; Stamped() builds the expected record either way.
#ifndef SCOPEKEEPER_STORAGE_STORE_CONFORMANCE_H_
#define SCOPEKEEPER_STORAGE_STORE_CONFORMANCE_H_

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "gtest/gtest.h"
#include "storage/store.h"

namespace scopekeeper::storage {

struct StoreFactory {
  std::string name;
  // Opens an empty store; `dir` is a new temporary directory it may use.
  std::function<absl::StatusOr<std::unique_ptr<Store>>(const std::string& dir)>
      open;
  // The store assigns revisions (WriteGuarded()) instead of committing at
  // the caller's Revision() + 1.
  bool assigns_revisions = false;
};

void PrintTo(const StoreFactory& factory, std::ostream* os);

class StoreTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override;

  bool assigns_revisions() const { return GetParam().assigns_revisions; }

  // Commit() commits the test's mutation number m.revision (see the file
  // comment). For single-writer stores, m.revision must be Revision() + 1.
  absl::Status Commit(Mutation m) ABSL_LOCKS_EXCLUDED(mu_);
  // Rev() is the store revision of the test's mutation `n` (0 for 0).
  uint64_t Rev(uint64_t n) ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<uint64_t> Revs(std::initializer_list<uint64_t> ns);
  // Stamped() is `record` as read back after mutation `n` wrote it.
  KeyRecord Stamped(KeyRecord record, uint64_t n);
  v1::AuditEvent Stamped(v1::AuditEvent event);

  // Keys of ListKeys(), in order.
  std::vector<std::string> ListedIds(const std::string& org,
                                     const std::string& after, int limit);
  // Revisions of ListAuditEvents(), in order.
  std::vector<uint64_t> AuditRevisions(const AuditFilter& filter, int limit);

  std::unique_ptr<Store> store_;

 private:
  Mutex mu_;  // Commit() may race with readers calling Rev().
  // The test's number -> the store's.
  std::map<uint64_t, uint64_t> revisions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace scopekeeper::storage

#endif  // SCOPEKEEPER_STORAGE_STORE_CONFORMANCE_H_
