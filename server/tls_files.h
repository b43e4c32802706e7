// The server's TLS files, read and checked with OpenSSL before gRPC sees
// them: gRPC only reports that it could not listen ("address in use or
// invalid"), whatever was wrong with a certificate or key.
#ifndef SCOPEKEEPER_SERVER_TLS_FILES_H_
#define SCOPEKEEPER_SERVER_TLS_FILES_H_

#include <string>

#include "absl/status/statusor.h"

namespace scopekeeper {

struct TlsFiles {
  std::string cert_chain_pem;   // --tls_cert
  std::string private_key_pem;  // --tls_key
  std::string client_ca_pem;    // --tls_client_ca; empty without mTLS
};

// LoadTlsFiles() reads the PEM files named by --tls_cert, --tls_key and
// (unless empty) --tls_client_ca. FAILED_PRECONDITION, naming the flag, the
// path and the cause, when a file is unreadable or not a regular file, holds
// no PEM certificate (chain, CA) or no unencrypted PEM private key (key),
// when the key does not belong to the first certificate of the chain, or
// when the key file is readable by others (not owner or group). Logs a
// warning for a server certificate that has expired or is not valid yet
// (clients will refuse it; the server still starts).
absl::StatusOr<TlsFiles> LoadTlsFiles(const std::string& cert_path,
                                      const std::string& key_path,
                                      const std::string& client_ca_path);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_TLS_FILES_H_
