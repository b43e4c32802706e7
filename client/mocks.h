// gMock mocks for code that uses scopekeeper::Client: give the Client a
// MockConnection and script what the server answers.
//
//   auto mock = std::make_shared<scopekeeper::MockConnection>();
//   EXPECT_CALL(*mock, Authorize).WillOnce(Return(allowed_response));
//   scopekeeper::Client client(mock);
#ifndef SCOPEKEEPER_CLIENT_MOCKS_H_
#define SCOPEKEEPER_CLIENT_MOCKS_H_

#include "client/connection.h"
#include "gmock/gmock.h"

namespace scopekeeper {

class MockConnection : public Connection {
 public:
  MOCK_METHOD(absl::StatusOr<v1::AuthorizeResponse>, Authorize,
              (const v1::AuthorizeRequest&, absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<v1::BatchAuthorizeResponse>, BatchAuthorize,
              (const v1::BatchAuthorizeRequest&, absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<v1::DescribeKeyResponse>, DescribeKey,
              (const v1::DescribeKeyRequest&, absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<v1::PutPolicyResponse>, PutPolicy,
              (const v1::PutPolicyRequest&, absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<v1::Policy>, GetPolicy,
              (const v1::GetPolicyRequest&, absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<v1::CreateKeyResponse>, CreateKey,
              (const v1::CreateKeyRequest&, absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<v1::Key>, GetKey,
              (const v1::GetKeyRequest&, absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<v1::ListKeysResponse>, ListKeys,
              (const v1::ListKeysRequest&, absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<v1::Key>, GrantScopes,
              (const v1::GrantScopesRequest&, absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<v1::Key>, RevokeScopes,
              (const v1::RevokeScopesRequest&, absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<v1::Key>, RevokeKey,
              (const v1::RevokeKeyRequest&, absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<v1::CreateKeyResponse>, RotateKey,
              (const v1::RotateKeyRequest&, absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<v1::App>, PutApp,
              (const v1::PutAppRequest&, absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<v1::Installation>, ApproveInstallation,
              (const v1::ApproveInstallationRequest&, absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<v1::Installation>, GetInstallation,
              (const v1::GetInstallationRequest&, absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<v1::ListAuditEventsResponse>, ListAuditEvents,
              (const v1::ListAuditEventsRequest&, absl::Time), (override));
  MOCK_METHOD(absl::Status, Watch,
              (const v1::WatchRequest&, absl::Time,
               (const std::function<bool(const v1::WatchEvent&)>&)),
              (override));
  MOCK_METHOD(absl::StatusOr<v1::CreateBackupResponse>, CreateBackup,
              (const v1::CreateBackupRequest&, absl::Time), (override));
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_CLIENT_MOCKS_H_
