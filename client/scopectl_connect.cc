#include "client/scopectl_connect.h"

#include <grpcpp/security/credentials.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/redact.h"
#include "client/scopectl_files.h"

namespace scopekeeper {
namespace {

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;

Bio MemoryBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
             &BIO_free);
}

// Refuses to prompt for a passphrase (gRPC cannot use encrypted keys).
int NoPassphrase(char*, int, int, void*) { return 0; }

absl::Status NotPem(const Setting& setting, absl::string_view expected) {
  ERR_clear_error();
  return absl::InvalidArgumentError(absl::StrCat(
      setting.source, " ", setting.value, ": not a PEM ", expected));
}

// PrivateKeyMatches() is false when the certificate chain's first
// certificate and the key do not belong together.
bool PrivateKeyMatches(const std::string& cert_pem,
                       const std::string& key_pem) {
  Bio cert_bio = MemoryBio(cert_pem);
  Bio key_bio = MemoryBio(key_pem);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr), &X509_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr),
      &EVP_PKEY_free);
  const bool matches = cert != nullptr && key != nullptr &&
                       X509_check_private_key(cert.get(), key.get()) == 1;
  ERR_clear_error();
  return matches;
}

}  // namespace

absl::Status ValidateAddress(absl::string_view source,
                             absl::string_view address) {
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, " ", Quote(address), ": ", why,
                     "; expected HOST:PORT, e.g. 127.0.0.1:50051"));
  };
  if (address.empty()) return invalid("empty");
  for (char c : address) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c)) ||
        absl::ascii_iscntrl(static_cast<unsigned char>(c))) {
      return invalid("contains whitespace");
    }
  }
  for (absl::string_view scheme :
       {"dns:", "unix:", "unix-abstract:", "ipv4:", "ipv6:"}) {
    if (absl::StartsWith(address, scheme)) {
      if (address.size() == scheme.size()) return invalid("nothing after it");
      return absl::OkStatus();
    }
  }
  if (absl::StrContains(address, ',')) {
    // Several replicas: each one a HOST:PORT.
    for (absl::string_view part : absl::StrSplit(address, ',')) {
      if (absl::Status ok = ValidateAddress(source, part); !ok.ok()) {
        return ok;
      }
    }
    return absl::OkStatus();
  }
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return invalid("no port");
  const absl::string_view host = address.substr(0, colon);
  const absl::string_view port = address.substr(colon + 1);
  uint32_t port_number = 0;
  if (port.empty() || !absl::SimpleAtoi(port, &port_number) ||
      !absl::ascii_isdigit(static_cast<unsigned char>(port[0])) ||
      port_number == 0 || port_number > 65535) {
    return invalid("the port must be a number from 1 to 65535");
  }
  if (host.empty()) return invalid("no host");
  const bool bracketed = host.front() == '[' && host.back() == ']';
  if (!bracketed && absl::StrContains(host, ':')) {
    return invalid("an IPv6 host needs brackets, e.g. [::1]:50051");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> CheckPem(const Setting& setting,
                                     absl::string_view what, bool private_key) {
  absl::StatusOr<std::string> pem = ReadFileContents(
      setting.value, absl::StrCat(what, " (", setting.source, ")"));
  if (!pem.ok()) return pem.status();
  Bio bio = MemoryBio(*pem);
  if (private_key) {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
        PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr),
        &EVP_PKEY_free);
    if (key == nullptr) {
      return NotPem(setting,
                    "private key (-----BEGIN PRIVATE KEY-----, unencrypted)");
    }
  } else {
    std::unique_ptr<X509, decltype(&X509_free)> cert(
        PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
    if (cert == nullptr) {
      return NotPem(setting, "certificate (-----BEGIN CERTIFICATE-----)");
    }
  }
  ERR_clear_error();
  return pem;
}

absl::StatusOr<ConnectionOptions> MakeConnectionOptions(
    const ConnectionSettings& settings, bool admin) {
  ConnectionOptions options;
  if (absl::Status ok =
          ValidateAddress(settings.addr.source, settings.addr.value);
      !ok.ok()) {
    return ok;
  }
  options.address = settings.addr.value;

  // With a client certificate the admin identity may be the certificate's
  // (server --admin_subjects), so the token is optional then.
  if (admin && settings.admin_token_file.value.empty() &&
      settings.tls_cert.value.empty()) {
    return absl::FailedPreconditionError(
        "no admin token: pass --admin_token_file, set "
        "SCOPEKEEPER_ADMIN_TOKEN_FILE or use a context that has one (or use "
        "an admin certificate: --tls_cert, --tls_key)");
  }
  if (admin && !settings.admin_token_file.value.empty()) {
    absl::StatusOr<std::string> token =
        FirstLineOf(settings.admin_token_file.value, "admin token");
    if (!token.ok()) return token.status();
    options.admin_token = *std::move(token);
  }
  if (!settings.authorizer_token_file.value.empty()) {
    absl::StatusOr<std::string> token =
        FirstLineOf(settings.authorizer_token_file.value, "authorizer token");
    if (!token.ok()) return token.status();
    options.authorizer_token = *std::move(token);
  }

  const bool ca = !settings.tls_ca.value.empty();
  const bool cert = !settings.tls_cert.value.empty();
  const bool key = !settings.tls_key.value.empty();
  if (!ca && !cert && !key) return options;  // plaintext
  if (!ca || cert != key) {
    return absl::InvalidArgumentError(
        "TLS needs --tls_ca, and --tls_cert with --tls_key for a client "
        "certificate");
  }
  grpc::SslCredentialsOptions ssl;
  absl::StatusOr<std::string> pem =
      CheckPem(settings.tls_ca, "CA bundle", false);
  if (!pem.ok()) return pem.status();
  ssl.pem_root_certs = *std::move(pem);
  if (cert) {
    pem = CheckPem(settings.tls_cert, "client certificate", false);
    if (!pem.ok()) return pem.status();
    ssl.pem_cert_chain = *std::move(pem);
    pem = CheckPem(settings.tls_key, "client key", true);
    if (!pem.ok()) return pem.status();
    ssl.pem_private_key = *std::move(pem);
    if (!PrivateKeyMatches(ssl.pem_cert_chain, ssl.pem_private_key)) {
      return absl::InvalidArgumentError(
          absl::StrCat(settings.tls_key.source, " ", settings.tls_key.value,
                       " is not the key of ", settings.tls_cert.source, " ",
                       settings.tls_cert.value));
    }
  }
  options.credentials = grpc::SslCredentials(ssl);
  return options;
}

std::string ConnectionHint(const absl::Status& status,
                           const ConnectionSettings& settings) {
  if (!absl::IsUnavailable(status) || settings.tls_ca.value.empty() ||
      !settings.tls_cert.value.empty()) {
    return "";
  }
  // Nobody listening, or no such host: not a handshake problem.
  const absl::string_view message = status.message();
  if (absl::StrContains(message, "Connection refused") ||
      absl::StrContains(message, "DNS resolution failed")) {
    return "";
  }
  return " (the TLS connection was closed: the server may require a client "
         "certificate; pass --tls_cert and --tls_key)";
}

}  // namespace scopekeeper
