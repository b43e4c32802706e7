// Scenario: one generated test case of the differential tests, as data: a
// sequence of admin operations, clock moves and Authorize requests. Values
// only the server knows (key ids, secrets, installation ids) are referred to
// symbolically (key slots, the organization's installation of an app) and
// filled in when the scenario is played (see differential.h), so a scenario
// can be replayed, shrunk and printed.
#ifndef SCOPEKEEPER_TESTS_ORACLE_SCENARIO_H_
#define SCOPEKEEPER_TESTS_ORACLE_SCENARIO_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "google/protobuf/message.h"

namespace scopekeeper::oracle {

// Scenario times are absolute, as if the clock started at kScenarioStart
// (FakeClock's default); a player whose clock is later shifts them.
inline const absl::Time kScenarioStart = absl::FromUnixSeconds(1'800'000'000);

enum class StepKind {
  kPutPolicy,            // request: v1::PutPolicyRequest
  kPutApp,               // request: v1::PutAppRequest
  kApproveInstallation,  // request: v1::ApproveInstallationRequest
  kCreateKey,            // request: v1::CreateKeyRequest; fills `slot`
  kGrantScopes,          // request: v1::GrantScopesRequest on `slot`
  kRevokeScopes,         // request: v1::RevokeScopesRequest on `slot`
  kRevokeKey,            // request: v1::RevokeKeyRequest on `slot`
  kRotateKey,            // request: v1::RotateKeyRequest on `slot`
  kAdvanceClock,         // `advance`
  kAuthorize,            // request: v1::AuthorizeRequest presenting `key`
};

const char* StepKindName(StepKind kind);

// The credential an Authorize request presents.
struct KeyRef {
  // Key slot (a CreateKey step's); -1: present `literal`.
  int slot = -1;
  // Which of the slot's secrets: 0 = the one CreateKey issued, i = the i-th
  // rotation's; -1 = the latest. Past the last one: the latest.
  int secret = -1;
  // >= 0: change the character at this position (modulo the length).
  int alter = -1;
  std::string literal;
};

struct Step {
  StepKind kind;
  // Key operations: the key slot.
  int slot = -1;
  // kCreateKey: bind the key to the installation of this app by its own
  // organization, or by `bind_org` if set (another organization's: refused);
  // to an unknown installation id when there is no such installation.
  std::string bind_app;
  std::string bind_org;
  // kAdvanceClock.
  absl::Duration advance;
  // kAuthorize.
  KeyRef key;
  // kAuthorize: set min_revision to the last write's revision.
  bool wait_for_writes = false;
  // The request; key_id, api_key and installation_id are filled in at play
  // time. Immutable: steps share it when copied.
  std::shared_ptr<const google::protobuf::Message> request;
};

struct Scenario {
  uint64_t seed = 0;
  std::vector<Step> steps;
};

}  // namespace scopekeeper::oracle

#endif  // SCOPEKEEPER_TESTS_ORACLE_SCENARIO_H_
