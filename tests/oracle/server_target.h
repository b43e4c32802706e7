// ServerTarget: Scopekeeper servers over gRPC as a differential-test
// Target, so the gRPC layer, the key cache and the store are covered too.
// It takes any list of addresses: admin operations (with the admin token)
// go to the addresses in turn, and so do decisions, as BatchAuthorize calls
// (one Authorize per request when a batch is refused, or holds one
// request). With more than one address every decision carries at least the
// last write's revision as min_revision (read-your-writes across replicas).
//
// The servers' clock must be the FakeClock handed in (servers started
// in-process, see LocalServer), so that scenarios can move time.
#ifndef SCOPEKEEPER_TESTS_ORACLE_SERVER_TARGET_H_
#define SCOPEKEEPER_TESTS_ORACLE_SERVER_TARGET_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "proto/scopekeeper/v1/scopekeeper.grpc.pb.h"
#include "server/server.h"
#include "tests/oracle/target.h"

namespace scopekeeper::oracle {

// A real server in-process: port 0, RocksDB in `data_dir`, a FakeClock.
class LocalServer {
 public:
  // Start() starts a server; `key_cache_capacity` 0 = every key cached.
  static absl::StatusOr<std::unique_ptr<LocalServer>> Start(
      const std::string& data_dir, int64_t key_cache_capacity);

  const std::string& address() const { return server_->address(); }
  const std::string& admin_token() const { return admin_token_; }
  FakeClock* clock() { return &clock_; }

 private:
  LocalServer() = default;

  FakeClock clock_;  // outlives server_
  std::unique_ptr<ScopekeeperServer> server_;
  std::string admin_token_;
};

class ServerTarget final : public Target {
 public:
  // `clock` is the servers' clock; must outlive the target.
  ServerTarget(const std::vector<std::string>& addresses,
               std::string admin_token, FakeClock* clock);

  absl::Time Now() override { return clock_->Now(); }
  void AdvanceClock(absl::Duration d) override { clock_->Advance(d); }
  absl::StatusOr<v1::PutPolicyResponse> PutPolicy(
      const v1::PutPolicyRequest& request) override;
  absl::StatusOr<v1::CreateKeyResponse> CreateKey(
      const v1::CreateKeyRequest& request) override;
  absl::StatusOr<v1::Key> GrantScopes(
      const v1::GrantScopesRequest& request) override;
  absl::StatusOr<v1::Key> RevokeScopes(
      const v1::RevokeScopesRequest& request) override;
  absl::StatusOr<v1::Key> RevokeKey(
      const v1::RevokeKeyRequest& request) override;
  absl::StatusOr<v1::CreateKeyResponse> RotateKey(
      const v1::RotateKeyRequest& request) override;
  absl::StatusOr<v1::App> PutApp(const v1::PutAppRequest& request) override;
  absl::StatusOr<v1::Installation> ApproveInstallation(
      const v1::ApproveInstallationRequest& request) override;
  Answers Authorize(const std::vector<v1::AuthorizeRequest>& requests) override;

 private:
  struct Replica {
    std::unique_ptr<v1::Authorizer::Stub> authorizer;
    std::unique_ptr<v1::Admin::Stub> admin;
  };
  // Admin() calls `method` on the next replica with the admin token.
  template <typename Request, typename Response, typename Method>
  absl::StatusOr<Response> Admin(Method method, const Request& request,
                                 uint64_t (*revision)(const Response&));
  Replica& Next() { return replicas_[next_++ % replicas_.size()]; }
  // The revision `replica` serves at (from a denied Authorize).
  absl::StatusOr<uint64_t> ServingRevision(Replica& replica);

  std::vector<Replica> replicas_;
  std::string admin_token_;
  FakeClock* const clock_;
  size_t next_ = 0;
  uint64_t last_write_ = 0;
};

// ServerTargetFactory() makes views of the servers at `addresses`: each
// scenario gets its own target over the same servers.
TargetFactory ServerTargetFactory(std::vector<std::string> addresses,
                                  std::string admin_token, FakeClock* clock);

}  // namespace scopekeeper::oracle

#endif  // SCOPEKEEPER_TESTS_ORACLE_SERVER_TARGET_H_
