// WriterPreferringMutex: a reader/writer lock that does not let a stream of
// readers starve a writer, built on a plain pthread rwlock.
//
// Why not the alternatives: glibc's default rwlock (std::shared_mutex)
// prefers readers, so under full Authorize load a revocation could wait
// seconds for the cache lock; absl::Mutex is fair, but Debian's Abseil is not
// built with ThreadSanitizer annotations, so TSan cannot see its happens-
// before edges and reports false races. A pthread rwlock of kind
// PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP is both writer-preferring and
// understood by TSan.
//
// NONRECURSIVE: a thread must not take the shared lock again while it holds
// it (a waiting writer would block the second acquisition: deadlock).
//
// Annotated for clang's thread-safety analysis like base/mutex.h: hold it
// with WriterMutexLock or ReaderMutexLock, which the analysis follows
// (std::unique_lock and std::shared_lock it does not).
#ifndef SCOPEKEEPER_BASE_RW_MUTEX_H_
#define SCOPEKEEPER_BASE_RW_MUTEX_H_

#include <pthread.h>

#include "absl/base/thread_annotations.h"

namespace scopekeeper {

// Meets the SharedMutex requirements.
class ABSL_LOCKABLE WriterPreferringMutex {
 public:
  WriterPreferringMutex() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&lock_, &attr);
    pthread_rwlockattr_destroy(&attr);
  }
  ~WriterPreferringMutex() { pthread_rwlock_destroy(&lock_); }
  WriterPreferringMutex(const WriterPreferringMutex&) = delete;
  WriterPreferringMutex& operator=(const WriterPreferringMutex&) = delete;

  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { pthread_rwlock_wrlock(&lock_); }
  void unlock() ABSL_UNLOCK_FUNCTION() { pthread_rwlock_unlock(&lock_); }
  void lock_shared() ABSL_SHARED_LOCK_FUNCTION() {
    pthread_rwlock_rdlock(&lock_);
  }
  void unlock_shared() ABSL_UNLOCK_FUNCTION() { pthread_rwlock_unlock(&lock_); }

 private:
  pthread_rwlock_t lock_;
};

// Holds a WriterPreferringMutex exclusively for its scope.
class ABSL_SCOPED_LOCKABLE WriterMutexLock {
 public:
  explicit WriterMutexLock(WriterPreferringMutex* mu)
      ABSL_EXCLUSIVE_LOCK_FUNCTION(mu)
      : mu_(mu) {
    mu_->lock();
  }
  ~WriterMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->unlock(); }
  WriterMutexLock(const WriterMutexLock&) = delete;
  WriterMutexLock& operator=(const WriterMutexLock&) = delete;

 private:
  WriterPreferringMutex* const mu_;
};

// Holds a WriterPreferringMutex shared for its scope.
class ABSL_SCOPED_LOCKABLE ReaderMutexLock {
 public:
  explicit ReaderMutexLock(WriterPreferringMutex* mu)
      ABSL_SHARED_LOCK_FUNCTION(mu)
      : mu_(mu) {
    mu_->lock_shared();
  }
  ~ReaderMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->unlock_shared(); }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  WriterPreferringMutex* const mu_;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_BASE_RW_MUTEX_H_
