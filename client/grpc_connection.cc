// The gRPC implementation of Connection over the generated stubs.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/connection.h"
#include "proto/scopekeeper/v1/scopekeeper.grpc.pb.h"

namespace scopekeeper {
namespace {

// The one place grpc::Status becomes absl::Status in the client.
absl::Status FromGrpcStatus(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

// Channel() is a channel to every address of `address`, round robin: each
// call goes to the next replica that is up, so a retry after UNAVAILABLE
// lands on another one.
std::shared_ptr<grpc::Channel> Channel(const ConnectionOptions& options) {
  grpc::ChannelArguments args;
  args.SetLoadBalancingPolicyName("round_robin");
  const std::string target = GrpcTarget(options.address);
  if (target != options.address &&
      options.address.find(',') != std::string::npos) {
    // A resolved list: TLS checks the first name, not an IP.
    const std::string first =
        options.address.substr(0, options.address.find(','));
    args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, first);
  }
  return grpc::CreateCustomChannel(target,
                                   options.credentials != nullptr
                                       ? options.credentials
                                       : grpc::InsecureChannelCredentials(),
                                   args);
}

class GrpcConnection final : public Connection {
 public:
  explicit GrpcConnection(const ConnectionOptions& options)
      : channel_(Channel(options)),
        authorizer_(v1::Authorizer::NewStub(channel_)),
        admin_(v1::Admin::NewStub(channel_)),
        admin_token_(options.admin_token),
        authorizer_token_(options.authorizer_token) {}

  absl::StatusOr<v1::AuthorizeResponse> Authorize(
      const v1::AuthorizeRequest& request, absl::Time deadline) override {
    return Data(&v1::Authorizer::Stub::Authorize, request, deadline);
  }
  absl::StatusOr<v1::BatchAuthorizeResponse> BatchAuthorize(
      const v1::BatchAuthorizeRequest& request, absl::Time deadline) override {
    return Data(&v1::Authorizer::Stub::BatchAuthorize, request, deadline);
  }
  absl::StatusOr<v1::DescribeKeyResponse> DescribeKey(
      const v1::DescribeKeyRequest& request, absl::Time deadline) override {
    return Data(&v1::Authorizer::Stub::DescribeKey, request, deadline);
  }

  absl::StatusOr<v1::PutPolicyResponse> PutPolicy(
      const v1::PutPolicyRequest& request, absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::PutPolicy, request, deadline);
  }
  absl::StatusOr<v1::Policy> GetPolicy(const v1::GetPolicyRequest& request,
                                       absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::GetPolicy, request, deadline);
  }
  absl::StatusOr<v1::CreateKeyResponse> CreateKey(
      const v1::CreateKeyRequest& request, absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::CreateKey, request, deadline);
  }
  absl::StatusOr<v1::Key> GetKey(const v1::GetKeyRequest& request,
                                 absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::GetKey, request, deadline);
  }
  absl::StatusOr<v1::ListKeysResponse> ListKeys(
      const v1::ListKeysRequest& request, absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::ListKeys, request, deadline);
  }
  absl::StatusOr<v1::Key> GrantScopes(const v1::GrantScopesRequest& request,
                                      absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::GrantScopes, request, deadline);
  }
  absl::StatusOr<v1::Key> RevokeScopes(const v1::RevokeScopesRequest& request,
                                       absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::RevokeScopes, request, deadline);
  }
  absl::StatusOr<v1::Key> RevokeKey(const v1::RevokeKeyRequest& request,
                                    absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::RevokeKey, request, deadline);
  }
  absl::StatusOr<v1::CreateKeyResponse> RotateKey(
      const v1::RotateKeyRequest& request, absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::RotateKey, request, deadline);
  }
  absl::StatusOr<v1::App> PutApp(const v1::PutAppRequest& request,
                                 absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::PutApp, request, deadline);
  }
  absl::StatusOr<v1::Installation> ApproveInstallation(
      const v1::ApproveInstallationRequest& request,
      absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::ApproveInstallation, request, deadline);
  }
  absl::StatusOr<v1::Installation> GetInstallation(
      const v1::GetInstallationRequest& request, absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::GetInstallation, request, deadline);
  }
  absl::StatusOr<v1::ListAuditEventsResponse> ListAuditEvents(
      const v1::ListAuditEventsRequest& request, absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::ListAuditEvents, request, deadline);
  }
  absl::Status Watch(
      const v1::WatchRequest& request, absl::Time deadline,
      const std::function<bool(const v1::WatchEvent&)>& on_event) override {
    grpc::ClientContext context;
    SetUp(&context, deadline, admin_token_);
    std::unique_ptr<grpc::ClientReader<v1::WatchEvent>> reader =
        admin_->Watch(&context, request);
    v1::WatchEvent event;
    bool stopped = false;
    while (reader->Read(&event)) {
      if (!on_event(event)) {
        stopped = true;
        context.TryCancel();
        while (reader->Read(&event)) {
        }  // drain what was in flight before Finish()
        break;
      }
    }
    const grpc::Status status = reader->Finish();
    if (stopped) return absl::OkStatus();
    return FromGrpcStatus(status);
  }
  absl::StatusOr<v1::CreateBackupResponse> CreateBackup(
      const v1::CreateBackupRequest& request, absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::CreateBackup, request, deadline);
  }

 private:
  // Sets `deadline` (unless infinite) and, when `token` is set, the bearer
  // metadata on `context`.
  static void SetUp(grpc::ClientContext* context, absl::Time deadline,
                    const std::string& token) {
    if (deadline != absl::InfiniteFuture()) {
      context->set_deadline(absl::ToChronoTime(deadline));
    }
    if (!token.empty()) {
      context->AddMetadata("authorization", "Bearer " + token);
    }
  }

  // One unary call on `stub` with `deadline` and, when `token` is set, the
  // bearer metadata.
  template <typename Stub, typename Request, typename Response>
  static absl::StatusOr<Response> Call(
      Stub* stub,
      grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                   Response*),
      const Request& request, absl::Time deadline, const std::string& token) {
    grpc::ClientContext context;
    SetUp(&context, deadline, token);
    Response response;
    const grpc::Status status = (stub->*method)(&context, request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    return response;
  }

  template <typename Request, typename Response>
  absl::StatusOr<Response> Data(
      grpc::Status (v1::Authorizer::Stub::*method)(grpc::ClientContext*,
                                                   const Request&, Response*),
      const Request& request, absl::Time deadline) {
    return Call(authorizer_.get(), method, request, deadline,
                authorizer_token_);
  }

  template <typename Request, typename Response>
  absl::StatusOr<Response> Admin(
      grpc::Status (v1::Admin::Stub::*method)(grpc::ClientContext*,
                                              const Request&, Response*),
      const Request& request, absl::Time deadline) {
    return Call(admin_.get(), method, request, deadline, admin_token_);
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Authorizer::Stub> authorizer_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  const std::string admin_token_;
  const std::string authorizer_token_;
};

// HostPort() splits "host:port" / "[v6]:port".
bool HostPort(absl::string_view address, std::string* host, std::string* port) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return false;
  *host = std::string(address.substr(0, colon));
  *port = std::string(address.substr(colon + 1));
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return !host->empty() && !port->empty();
}

}  // namespace

std::string GrpcTarget(const std::string& address) {
  if (address.find(',') == std::string::npos) return address;
  for (absl::string_view scheme :
       {"dns:", "unix:", "unix-abstract:", "ipv4:", "ipv6:"}) {
    if (absl::StartsWith(address, scheme)) return address;
  }
  std::vector<std::string> v4, v6;
  for (absl::string_view part :
       absl::StrSplit(address, ',', absl::SkipEmpty())) {
    std::string host, port;
    if (!HostPort(part, &host, &port)) return address;
    in_addr a4;
    in6_addr a6;
    if (inet_pton(AF_INET, host.c_str(), &a4) == 1) {
      v4.push_back(absl::StrCat(host, ":", port));
      continue;
    }
    if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
      v6.push_back(absl::StrCat("[", host, "]:", port));
      continue;
    }
    // A name: every address it has now.
    addrinfo hints = {};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0) continue;
    for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
      char text[INET6_ADDRSTRLEN] = {};
      if (ai->ai_family == AF_INET) {
        inet_ntop(AF_INET,
                  &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, text,
                  sizeof(text));
        v4.push_back(absl::StrCat(text, ":", port));
      } else if (ai->ai_family == AF_INET6) {
        inet_ntop(AF_INET6,
                  &reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr,
                  text, sizeof(text));
        v6.push_back(absl::StrCat("[", text, "]:", port));
      }
    }
    freeaddrinfo(found);
  }
  // One scheme per target: IPv4 when there is any.
  if (!v4.empty()) {
    std::vector<std::string> unique;
    for (std::string& a : v4) {
      if (std::find(unique.begin(), unique.end(), a) == unique.end()) {
        unique.push_back(std::move(a));
      }
    }
    return absl::StrCat("ipv4:", absl::StrJoin(unique, ","));
  }
  if (!v6.empty()) return absl::StrCat("ipv6:", absl::StrJoin(v6, ","));
  return address;
}

std::shared_ptr<Connection> MakeGrpcConnection(
    const ConnectionOptions& options) {
  return std::make_shared<GrpcConnection>(options);
}

}  // namespace scopekeeper
