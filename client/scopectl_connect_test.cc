#include "client/scopectl_connect.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/test_pem.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string WriteFile(const std::string& name, const std::string& content) {
  const std::string path =
      absl::StrCat(std::getenv("TEST_TMPDIR"), "/connect_", name);
  std::ofstream(path) << content;
  return path;
}

TEST(ValidateAddressTest, HostPortAndGrpcTargetsOnly) {
  for (const char* good :
       {"127.0.0.1:50051", "localhost:1", "sk.internal:443", "[::1]:50051",
        "dns:///sk.internal:443", "unix:/run/sk.sock", "ipv4:10.0.0.1:5",
        "10.0.0.1:50051,10.0.0.2:50051", "a.internal:1,b.internal:2"}) {
    EXPECT_TRUE(ValidateAddress("--addr", good).ok()) << good;
  }
  EXPECT_EQ(std::string(ValidateAddress("--addr", "127.0.0.1").message()),
            "--addr \"127.0.0.1\": no port; expected HOST:PORT, e.g. "
            "127.0.0.1:50051");
  EXPECT_THAT(std::string(ValidateAddress("--addr", "h:99999").message()),
              HasSubstr("the port must be a number from 1 to 65535"));
  EXPECT_THAT(ValidateAddress("SCOPEKEEPER_ADDR", "foo bar:1").message(),
              HasSubstr("SCOPEKEEPER_ADDR \"foo bar:1\": contains whitespace"));
  for (const char* bad : {"", ":50051", "h:0", "h:65536", "h:port", "h:+1",
                          "::1:50051", "dns:", "h:1,", "h:1,h:0"}) {
    EXPECT_FALSE(ValidateAddress("--addr", bad).ok()) << bad;
  }
}

TEST(CheckPemTest, ParsesCertificatesAndKeysOneLineErrors) {
  const TestPem pem = MakeTestPem("ops");
  const Setting cert{WriteFile("cert.pem", pem.cert), "--tls_cert"};
  const Setting key{WriteFile("key.pem", pem.key), "--tls_key"};
  EXPECT_TRUE(CheckPem(cert, "client certificate", false).ok());
  EXPECT_TRUE(CheckPem(key, "client key", true).ok());

  const Setting not_pem{WriteFile("ca.txt", "hello\n"), "SCOPEKEEPER_TLS_CA"};
  const absl::Status status = CheckPem(not_pem, "CA bundle", false).status();
  EXPECT_EQ(std::string(status.message()),
            absl::StrCat("SCOPEKEEPER_TLS_CA ", not_pem.value,
                         ": not a PEM certificate (-----BEGIN "
                         "CERTIFICATE-----)"));
  EXPECT_THAT(status.message(), Not(HasSubstr("\n")));
  // A key where a certificate belongs, and the reverse.
  EXPECT_FALSE(CheckPem(key, "CA bundle", false).ok());
  EXPECT_THAT(CheckPem(cert, "client key", true).status().message(),
              HasSubstr("not a PEM private key"));
  EXPECT_EQ(std::string(CheckPem({"/nonexistent/ca.pem", "--tls_ca"},
                                 "CA bundle", false)
                            .status()
                            .message()),
            "cannot read the CA bundle (--tls_ca) from /nonexistent/ca.pem: "
            "No such file or directory");
}

TEST(MakeConnectionOptionsTest, ChecksEverythingBeforeAnyCall) {
  const TestPem ca = MakeTestPem("ca");
  const TestPem client = MakeTestPem("ops");
  const TestPem other = MakeTestPem("other");
  ConnectionSettings s;
  s.addr = {"127.0.0.1:1", "--addr"};
  absl::StatusOr<ConnectionOptions> options = MakeConnectionOptions(s, false);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->credentials, nullptr);

  EXPECT_THAT(MakeConnectionOptions(s, true).status().message(),
              HasSubstr("no admin token"));
  s.admin_token_file = {WriteFile("token", "t0ken\n"), "--admin_token_file"};
  EXPECT_EQ(MakeConnectionOptions(s, true)->admin_token, "t0ken");
  EXPECT_EQ(MakeConnectionOptions(s, false)->admin_token, "");

  s.tls_ca = {WriteFile("ca.pem", ca.cert), "--tls_ca"};
  options = MakeConnectionOptions(s, false);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_NE(options->credentials, nullptr);
  s.tls_cert = {WriteFile("client.pem", client.cert), "--tls_cert"};
  EXPECT_THAT(MakeConnectionOptions(s, false).status().message(),
              HasSubstr("--tls_cert with --tls_key"));
  s.tls_key = {WriteFile("other.key", other.key), "--tls_key"};
  EXPECT_THAT(MakeConnectionOptions(s, false).status().message(),
              HasSubstr("is not the key of --tls_cert"));
  s.tls_key = {WriteFile("client.key", client.key), "--tls_key"};
  EXPECT_TRUE(MakeConnectionOptions(s, false).ok());

  s.addr = {"127.0.0.1", "context \"prod\""};
  EXPECT_THAT(MakeConnectionOptions(s, false).status().message(),
              HasSubstr("context \"prod\" \"127.0.0.1\": no port"));
}

TEST(ConnectionHintTest, OnlyForTlsWithoutClientCertificate) {
  ConnectionSettings s;
  const absl::Status closed = absl::UnavailableError("Socket closed");
  EXPECT_EQ(ConnectionHint(closed, s), "");  // plaintext
  s.tls_ca = {"/ca.pem", "--tls_ca"};
  EXPECT_THAT(ConnectionHint(closed, s),
              HasSubstr("may require a client certificate"));
  EXPECT_EQ(ConnectionHint(absl::UnavailableError(
                               "failed to connect to all addresses; last "
                               "error: ... Connection refused"),
                           s),
            "");
  EXPECT_EQ(ConnectionHint(absl::NotFoundError("no key"), s), "");
  s.tls_cert = {"/c.pem", "--tls_cert"};
  EXPECT_EQ(ConnectionHint(closed, s), "");
}

}  // namespace
}  // namespace scopekeeper
