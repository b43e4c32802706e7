// Output of scopectl: protobuf JSON for scripts (--json) and aligned text
// tables for people. Pure functions of their inputs; no I/O beyond the
// given stream.
//
// Secrets: none of these print CreateKeyResponse.secret (the caller prints
// it once, labelled) and no message printed here carries one: Key,
// AuditEvent and AuthorizeResponse hold no secret by contract.
#ifndef SCOPEKEEPER_CLIENT_SCOPECTL_FORMAT_H_
#define SCOPEKEEPER_CLIENT_SCOPECTL_FORMAT_H_

#include <ostream>
#include <string>
#include <vector>

#include "google/protobuf/message.h"
#include "proto/scopekeeper/v1/scopekeeper.pb.h"

namespace scopekeeper {

// ToJson() is `message` in the protobuf JSON mapping with proto field names
// and default values included (so scripts see every field), indented when
// `multiline`, else on one line (JSON Lines, for `watch`).
std::string ToJson(const google::protobuf::Message& message, bool multiline);

// Rows of text printed with each column padded to its widest cell, two
// spaces between columns, no trailing spaces.
class TextTable {
 public:
  void AddRow(std::vector<std::string> row);
  void Print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// Print*() write the human-readable form of their argument to `out`.
void PrintKey(const v1::Key& key, std::ostream& out);  // field: value
void PrintKeyTable(const std::vector<v1::Key>& keys, std::ostream& out);
void PrintDecision(const v1::AuthorizeResponse& decision, std::ostream& out);
void PrintPolicy(const v1::Policy& policy, std::ostream& out);
void PrintDescribedKey(const v1::DescribeKeyResponse& described,
                       std::ostream& out);
void PrintApp(const v1::App& app, std::ostream& out);
void PrintInstallation(const v1::Installation& installation, std::ostream& out);
void PrintAuditEvents(const std::vector<v1::AuditEvent>& events,
                      std::ostream& out);
// PrintWatchEvent() writes one line per event (streamed, so not aligned).
void PrintWatchEvent(const v1::WatchEvent& event, std::ostream& out);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_CLIENT_SCOPECTL_FORMAT_H_
