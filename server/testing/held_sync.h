// HeldSync: holds the store's first Sync() after Arm() until Release(), so a
// test can act while a write is in the store but not yet durable (nor
// applied to the serving state), deterministically, without timing.
#ifndef SCOPEKEEPER_SERVER_TESTING_HELD_SYNC_H_
#define SCOPEKEEPER_SERVER_TESTING_HELD_SYNC_H_

#include <atomic>
#include <future>

#include "storage/fault_injecting_store.h"

namespace scopekeeper {

class HeldSync {
 public:
  explicit HeldSync(storage::FaultInjectingStore* store) : store_(store) {
    store_->SetSyncHook([this] {
      if (!armed_.exchange(false)) return;
      entered_.set_value();
      released_.get_future().wait();
    });
  }
  ~HeldSync() { store_->SetSyncHook(nullptr); }
  HeldSync(const HeldSync&) = delete;
  HeldSync& operator=(const HeldSync&) = delete;

  void Arm() { armed_ = true; }
  // AwaitHeld() returns once the armed sync is being held.
  void AwaitHeld() { entered_.get_future().wait(); }
  void Release() { released_.set_value(); }

 private:
  storage::FaultInjectingStore* const store_;
  std::atomic<bool> armed_{false};
  std::promise<void> entered_;
  std::promise<void> released_;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_TESTING_HELD_SYNC_H_
