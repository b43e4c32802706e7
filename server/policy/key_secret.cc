#include "server/policy/key_secret.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace scopekeeper {
namespace {

constexpr absl::string_view kBase62 =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr int kSecretChars = 32;  // 32 * log2(62) = 190 bits
constexpr int kDisplayChars = 3;

absl::Status RandomBytes(uint8_t* out, int n) {
  if (RAND_bytes(out, n) != 1) {
    return absl::UnavailableError("CSPRNG (RAND_bytes) failed");
  }
  return absl::OkStatus();
}

}  // namespace

SecretDigest SecretDigest::FromBytes(absl::string_view raw) {
  SecretDigest d;
  std::memcpy(d.bytes.data(), raw.data(), std::min(raw.size(), d.bytes.size()));
  return d;
}

SecretDigest HashSecret(absl::string_view secret) {
  SecretDigest d;
  unsigned int len = 0;
  // OpenSSL 3: EVP_sha256() is a legacy handle that makes every digest
  // init fetch the implementation again, under a global read lock, and
  // EVP_Digest() allocates a context per call. So: an explicitly fetched
  // EVP_MD, resolved once and never freed (one per process, like the
  // library's own tables), and one reused context per thread.
  static const EVP_MD* const kSha256 = [] {
    const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return md != nullptr ? md : EVP_sha256();
  }();
  struct CtxFree {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  thread_local const std::unique_ptr<EVP_MD_CTX, CtxFree> ctx(EVP_MD_CTX_new());
  const bool ok =
      ctx != nullptr && EVP_DigestInit_ex2(ctx.get(), kSha256, nullptr) == 1 &&
      EVP_DigestUpdate(ctx.get(), secret.data(), secret.size()) == 1 &&
      EVP_DigestFinal_ex(ctx.get(), d.bytes.data(), &len) == 1;
  // Only out of memory can fail a SHA-256. The all-zero digest `d` then
  // keeps is nobody's (finding a preimage is infeasible), so the key is
  // simply not found: fail closed without crashing the server.
  if (!ok) d = SecretDigest();
  return d;
}

absl::StatusOr<NewSecret> GenerateSecret(absl::string_view prefix) {
  // Rejection sampling: bytes >= 248 (= 4 * 62) are dropped so every
  // character is uniform over the alphabet.
  std::string random;
  random.reserve(kSecretChars);
  uint8_t buf[64];
  while (random.size() < kSecretChars) {
    if (absl::Status s = RandomBytes(buf, sizeof(buf)); !s.ok()) return s;
    for (uint8_t b : buf) {
      if (b >= 248 || random.size() == kSecretChars) continue;
      random.push_back(kBase62[b % 62]);
    }
  }
  OPENSSL_cleanse(buf, sizeof(buf));
  NewSecret out;
  out.secret = absl::StrCat(prefix, "_", random);
  out.display_prefix = absl::StrCat(
      prefix, "_", absl::string_view(random).substr(0, kDisplayChars));
  return out;
}

absl::StatusOr<std::string> GenerateId(absl::string_view kind) {
  uint8_t buf[12];
  if (absl::Status s = RandomBytes(buf, sizeof(buf)); !s.ok()) return s;
  return absl::StrCat(kind, "_",
                      absl::BytesToHexString(absl::string_view(
                          reinterpret_cast<const char*>(buf), sizeof(buf))));
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace scopekeeper
