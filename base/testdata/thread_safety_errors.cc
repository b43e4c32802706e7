// Mistakes that `--config=clang` (-Wthread-safety) must reject, one per
// function, next to the correct forms, which it must accept.
// base/thread_safety_test.sh compiles this file with clang's -verify: it
// fails unless exactly the diagnostics marked in it appear.
// Not built by Bazel.
// clang-format off
#include <mutex>

#include "base/mutex.h"
#include "base/rw_mutex.h"

namespace scopekeeper {

class Account {
 public:
  void Deposit(int n) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    balance_ += n;
  }
  void DepositWithoutTheLock(int n) {
    // expected-warning@+1 {{writing variable 'balance_' requires holding mutex 'mu_' exclusively}}
    balance_ += n;
  }
  int BalanceWithoutTheLock() const {
    // expected-warning@+1 {{reading variable 'balance_' requires holding mutex 'mu_'}}
    return balance_;
  }
  void CallsALockedHelperWithoutTheLock() {
    // expected-warning@+1 {{calling function 'AddLocked' requires holding mutex 'mu_' exclusively}}
    AddLocked(1);
  }
  void CallsALockedHelper() {
    MutexLock lock(&mu_);
    AddLocked(1);
  }
  void DepositsWhileHoldingTheLock() {
    MutexLock lock(&mu_);
    // expected-warning@+1 {{cannot call function 'Deposit' while mutex 'mu_' is held}}
    Deposit(1);
  }
  void LeaksTheLock() {
    mu_.Lock();  // expected-note {{mutex acquired here}}
    ++balance_;
  }  // expected-warning {{mutex 'mu_' is still held at the end of function}}
  void WaitsWithoutTheLock() {
    // expected-warning@+1 {{calling function 'Wait' requires holding mutex 'mu_' exclusively}}
    cv_.Wait(&mu_);
  }
  void WaitsOnAnUnannotatedPredicate() {
    MutexLock lock(&mu_);
    // expected-warning@+1 {{reading variable 'balance_' requires holding mutex 'mu_'}}
    cv_.Wait(&mu_, [this] { return balance_ > 0; });
  }
  void WaitsOnAnAnnotatedPredicate() {
    MutexLock lock(&mu_);
    cv_.Wait(&mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return balance_ > 0; });
  }
  void CallsAnAnnotatedPredicateWithoutTheLock() {
    auto positive = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return balance_ > 0; };
    // expected-warning@+1 {{calling function 'operator()' requires holding mutex 'mu_' exclusively}}
    positive();
  }

 private:
  void AddLocked(int n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { balance_ += n; }

  mutable Mutex mu_;
  CondVar cv_;
  int balance_ ABSL_GUARDED_BY(mu_) = 0;
};

class Cache {
 public:
  int Read() {
    ReaderMutexLock lock(&mu_);
    return value_;
  }
  void Write() {
    WriterMutexLock lock(&mu_);
    ++value_;
  }
  void WritesUnderTheReaderLock() {
    ReaderMutexLock lock(&mu_);
    // expected-warning@+1 {{writing variable 'value_' requires holding mutex 'mu_' exclusively}}
    ++value_;
  }

 private:
  WriterPreferringMutex mu_;
  int value_ ABSL_GUARDED_BY(mu_) = 0;
};

// Why the project does not annotate std::mutex: clang rejects it.
struct Unannotated {
  std::mutex mu;
  // expected-warning@+1 {{'guarded_by' attribute requires arguments whose type is annotated with 'capability' attribute; type here is 'std::mutex'}}
  int value ABSL_GUARDED_BY(mu) = 0;
};

}  // namespace scopekeeper
