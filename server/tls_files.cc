#include "server/tls_files.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/regular_file.h"
#include "base/status_macros.h"

namespace scopekeeper {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Certificate = std::unique_ptr<X509, X509Free>;
using PrivateKey = std::unique_ptr<EVP_PKEY, KeyFree>;

// OpenSslReason() is the reason of the last OpenSSL error ("no start line",
// "bad decrypt"), clearing the queue; "" if there is none.
std::string OpenSslReason() {
  const unsigned long error = ERR_peek_last_error();
  ERR_clear_error();
  if (error == 0) return "";
  const char* reason = ERR_reason_error_string(error);
  return reason != nullptr ? reason : absl::StrCat("error ", error);
}

std::string Because(const std::string& reason) {
  return reason.empty() ? "" : absl::StrCat(" (OpenSSL: ", reason, ")");
}

Bio MemoryBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Certificates() parses every PEM certificate in `pem`, in order.
absl::StatusOr<std::vector<Certificate>> Certificates(absl::string_view flag,
                                                      const std::string& path,
                                                      const std::string& pem) {
  ERR_clear_error();
  Bio bio = MemoryBio(pem);
  std::vector<Certificate> certificates;
  for (;;) {
    Certificate cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert == nullptr) break;
    certificates.push_back(std::move(cert));
  }
  const unsigned long error = ERR_peek_last_error();
  // The loop ends at the end of the input with "no start line".
  const bool at_end = ERR_GET_LIB(error) == ERR_LIB_PEM &&
                      ERR_GET_REASON(error) == PEM_R_NO_START_LINE;
  const std::string reason = OpenSslReason();
  if (certificates.empty() || (error != 0 && !at_end)) {
    return absl::FailedPreconditionError(
        absl::StrCat(flag, ": ", path,
                     certificates.empty() ? " holds no PEM certificate"
                                          : " holds a damaged PEM certificate",
                     Because(reason)));
  }
  return certificates;
}

// NoPassphrase() refuses to decrypt: OpenSSL would otherwise prompt on the
// terminal, and gRPC cannot use an encrypted key anyway.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
  return -1;
}

absl::StatusOr<PrivateKey> ParsePrivateKey(const std::string& path,
                                           const std::string& pem) {
  ERR_clear_error();
  Bio bio = MemoryBio(pem);
  PrivateKey key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    const bool encrypted = pem.find("ENCRYPTED") != std::string::npos;
    const std::string reason = OpenSslReason();
    return absl::FailedPreconditionError(absl::StrCat(
        "--tls_key: ", path,
        encrypted ? " holds an encrypted private key (give it unencrypted, "
                    "mode 0600)"
                  : " holds no PEM private key",
        Because(reason)));
  }
  return key;
}

void WarnIfNotValidNow(const std::string& path, X509* cert) {
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
    LogWarning(absl::StrCat("--tls_cert: the certificate in ", path,
                            " has expired: clients will refuse it"));
  } else if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
    LogWarning(absl::StrCat("--tls_cert: the certificate in ", path,
                            " is not valid yet: clients will refuse it"));
  }
}

}  // namespace

absl::StatusOr<TlsFiles> LoadTlsFiles(const std::string& cert_path,
                                      const std::string& key_path,
                                      const std::string& client_ca_path) {
  TlsFiles files;
  SK_ASSIGN_OR_RETURN(RegularFile cert,
                      ReadRegularFile("--tls_cert", cert_path));
  SK_ASSIGN_OR_RETURN(RegularFile key, ReadRegularFile("--tls_key", key_path));
  // Group access is the Debian convention (ssl-cert); anyone else could
  // impersonate the server.
  if ((key.mode & S_IRWXO) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("--tls_key: ", key_path, " is accessible by others (mode ",
                     OctalMode(key.mode),
                     "): chmod 600 (or 640) it, and replace the key "
                     "if others may have read it"));
  }
  SK_ASSIGN_OR_RETURN(std::vector<Certificate> chain,
                      Certificates("--tls_cert", cert_path, cert.content));
  SK_ASSIGN_OR_RETURN(PrivateKey private_key,
                      ParsePrivateKey(key_path, key.content));
  ERR_clear_error();
  if (X509_check_private_key(chain.front().get(), private_key.get()) != 1) {
    ERR_clear_error();
    return absl::FailedPreconditionError(absl::StrCat(
        "--tls_key: the private key in ", key_path,
        " does not belong to the certificate in --tls_cert ", cert_path,
        " (its first certificate must be the server's own)"));
  }
  WarnIfNotValidNow(cert_path, chain.front().get());
  files.cert_chain_pem = std::move(cert.content);
  files.private_key_pem = std::move(key.content);
  if (!client_ca_path.empty()) {
    SK_ASSIGN_OR_RETURN(RegularFile ca,
                        ReadRegularFile("--tls_client_ca", client_ca_path));
    SK_RETURN_IF_ERROR(
        Certificates("--tls_client_ca", client_ca_path, ca.content).status());
    files.client_ca_pem = std::move(ca.content);
  }
  return files;
}

}  // namespace scopekeeper
