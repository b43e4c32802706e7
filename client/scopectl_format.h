// Output of scopectl: protobuf JSON or YAML for scripts (-o json, -o yaml)
// and aligned text tables for people (-o table, the default). Pure
// functions of their inputs; no I/O beyond the given stream.
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

enum class OutputFormat { kTable, kJson, kYaml };

// ParseOutputFormat() maps "table", "json", "yaml" to the format; false for
// anything else.
bool ParseOutputFormat(const std::string& name, OutputFormat* format);

// ToJson() is `message` in the protobuf JSON mapping, as grpcurl and the
// docs show it: lowerCamelCase names, enums by name, 64-bit integers as
// strings, fields with default values omitted. Indented when `multiline`,
// else on one line (JSON Lines, for streams).
std::string ToJson(const google::protobuf::Message& message, bool multiline);

// PrintMessage() writes one message as an indented JSON object (-o json) or
// a YAML mapping (-o yaml). REQUIRES: format is not kTable.
void PrintMessage(const google::protobuf::Message& message, OutputFormat format,
                  std::ostream& out);

// PrintStreamed() writes one message of a sequence (watch events, batch
// decisions): a JSON object on one line (JSON Lines), or a YAML document
// starting with "---". REQUIRES: format is not kTable.
void PrintStreamed(const google::protobuf::Message& message,
                   OutputFormat format, std::ostream& out);

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
void PrintBackup(const v1::CreateBackupResponse& backup, std::ostream& out);
// PrintDecisionRows() writes a table of decisions, one row each, labelled
// with `labels` (e.g. input line numbers). REQUIRES: same sizes.
void PrintDecisionRows(const std::vector<std::string>& labels,
                       const std::vector<v1::AuthorizeResponse>& decisions,
                       std::ostream& out);
void PrintAuditEvents(const std::vector<v1::AuditEvent>& events,
                      std::ostream& out);
// PrintWatchEvent() writes one line per event (streamed, so not aligned).
void PrintWatchEvent(const v1::WatchEvent& event, std::ostream& out);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_CLIENT_SCOPECTL_FORMAT_H_
