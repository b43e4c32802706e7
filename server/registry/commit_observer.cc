#include "server/registry/commit_observer.h"

namespace scopekeeper {
namespace {

class Ignore final : public CommitObserver {
 public:
  void OnCommit(absl::Duration, bool, int) override {}
  void OnWritable(const absl::Status&) override {}
};

}  // namespace

CommitObserver* NoCommitObserver() {
  static Ignore* const observer = new Ignore;
  return observer;
}

}  // namespace scopekeeper
