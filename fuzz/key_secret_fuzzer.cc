// Fuzzes the handling of key material and key-shaped request fields.
//
// Input: "PREFIX\nPRESENTED". PREFIX goes through ValidateKeyPrefix() (checked
// against the documented pattern) and, when valid, GenerateSecret(); the
// secret must be "<prefix>_" + 32 base62 characters, a valid id, and hash to
// its own digest only. PRESENTED is an api_key / authorization value: it is
// hashed, compared in constant time, checked by the admin bearer-token
// authenticator (token = PREFIX), and run through the id and text validators
// and Quote().
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "fuzz/fuzz_check.h"
#include "server/auth/caller_auth.h"
#include "server/policy/key_secret.h"
#include "base/redact.h"
#include "server/policy/names.h"

namespace scopekeeper {
namespace {

bool IsLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool IsBase62(char c) { return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z'); }

// ^[a-z][a-z0-9_]{0,31}$
bool RefKeyPrefixValid(absl::string_view p) {
  if (p.empty() || p.size() > 32 || !(p[0] >= 'a' && p[0] <= 'z')) {
    return false;
  }
  for (char c : p) {
    if (!IsLowerAlnum(c) && c != '_') return false;
  }
  return true;
}

// 1..128 characters of [A-Za-z0-9_.:-]
bool RefIdValid(absl::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!IsBase62(c) && c != '_' && c != '.' && c != ':' && c != '-') {
      return false;
    }
  }
  return true;
}

void CheckPrefix(absl::string_view prefix) {
  const bool valid = RefKeyPrefixValid(prefix);
  FUZZ_CHECK(ValidateKeyPrefix("key_prefix", prefix).ok() == valid);
  if (!valid) return;
  const absl::StatusOr<NewSecret> secret = GenerateSecret(prefix);
  FUZZ_CHECK(secret.ok());
  const std::string& s = secret->secret;
  FUZZ_CHECK(s.size() == prefix.size() + 1 + 32);
  FUZZ_CHECK(absl::string_view(s).substr(0, prefix.size()) == prefix);
  FUZZ_CHECK(s[prefix.size()] == '_');
  for (size_t i = prefix.size() + 1; i < s.size(); ++i) {
    FUZZ_CHECK(IsBase62(s[i]));
  }
  FUZZ_CHECK(secret->display_prefix == s.substr(0, prefix.size() + 4));
  FUZZ_CHECK(ValidateId("api_key", s).ok());
  FUZZ_CHECK(s.size() <= kMaxApiKeyLength);
  FUZZ_CHECK(HashSecret(s) == HashSecret(std::string(s)));
  FUZZ_CHECK(!(HashSecret(s) == HashSecret(prefix)));
}

void CheckPresented(absl::string_view token, absl::string_view presented) {
  // Digests: deterministic, equal only for equal inputs.
  const SecretDigest digest = HashSecret(presented);
  FUZZ_CHECK(digest == HashSecret(std::string(presented)));
  FUZZ_CHECK((digest == HashSecret(token)) == (presented == token));
  FUZZ_CHECK(SecretDigest::FromBytes(digest.view()) == digest);
  FUZZ_CHECK(ConstantTimeEquals(presented, token) == (presented == token));

  {
    // An empty token accepts no bearer credential at all (subjects only).
    const CallerAuthenticator auth("admin", token, {std::string(presented)});
    const bool bearer =
        !token.empty() && presented == absl::StrCat("Bearer ", token);
    const absl::StatusOr<std::string> by_header = auth.Authenticate(presented);
    FUZZ_CHECK(by_header.ok() == bearer);
    if (by_header.ok()) {
      FUZZ_CHECK(*by_header == "admin-token");
    } else {
      FUZZ_CHECK(by_header.status().code() ==
                 absl::StatusCode::kUnauthenticated);
      // The rejection is one of three fixed messages: nothing presented is
      // ever echoed.
      const absl::string_view message = by_header.status().message();
      FUZZ_CHECK(message == "invalid admin token" ||
                 message ==
                     "authorization metadata must be "
                     "`Bearer <admin token>`" ||
                 message ==
                     "missing `authorization: Bearer <admin token>` "
                     "metadata");
    }
    FUZZ_CHECK(!auth.Authenticate(std::nullopt).ok());
    const absl::StatusOr<std::string> by_subject =
        auth.Authenticate(std::nullopt, {std::string(presented)});
    FUZZ_CHECK(by_subject.ok() &&
               *by_subject == absl::StrCat("mtls:", presented));
  }

  FUZZ_CHECK(ValidateId("api_key", presented).ok() == RefIdValid(presented));
  const absl::Status text = ValidateText("description", presented);
  FUZZ_CHECK(text.ok() || text.code() == absl::StatusCode::kInvalidArgument);
  const std::string quoted = Quote(presented);
  FUZZ_CHECK(quoted.size() <= 2 + 4 * 64 + 3);
  size_t alnum_run = 0;
  for (char c : quoted) {
    const unsigned char u = static_cast<unsigned char>(c);
    FUZZ_CHECK(u >= 0x20 && u < 0x7f);  // printable in logs
    alnum_run = absl::ascii_isalnum(u) ? alnum_run + 1 : 0;
    FUZZ_CHECK(alnum_run < kMinSecretLikeRun);  // nothing secret-shaped
  }
}

void TestOneInput(absl::string_view input) {
  const size_t newline = input.find('\n');
  const absl::string_view prefix = input.substr(0, newline);
  const absl::string_view presented = newline == absl::string_view::npos
                                          ? absl::string_view()
                                          : input.substr(newline + 1);
  CheckPrefix(prefix);
  CheckPresented(prefix, presented);
}

}  // namespace
}  // namespace scopekeeper

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  scopekeeper::TestOneInput(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
