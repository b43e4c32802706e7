// The differential test: plays scenarios on a Target and on the
// ReferenceModel and compares, after every step, every field the contract
// fixes: for a decision allowed, reason, message, missing_scopes (in
// order), key_id, organization_id, app_id, redactions (in order),
// http_status, matched_route, trace_id (echoed, or a generated UUID v4) and
// revision (at least the last write's); for an invalid request the status
// code; for an admin operation its status code, the key's
// effective_scopes, the secret's prefix and kept ids. A disagreement is
// shrunk (steps, then fields of each request) while it still disagrees on
// the same thing, and printed as JSON.
#ifndef SCOPEKEEPER_TESTS_ORACLE_DIFFERENTIAL_H_
#define SCOPEKEEPER_TESTS_ORACLE_DIFFERENTIAL_H_

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "tests/oracle/generator.h"
#include "tests/oracle/scenario.h"
#include "tests/oracle/target.h"

namespace scopekeeper::oracle {

struct Disagreement {
  int step = -1;     // index in the scenario's steps
  std::string what;  // e.g. "Authorize.reason", "CreateKey.status"
  std::string target_value;
  std::string model_value;
  std::string target_answer;  // the whole answers, as JSON
  std::string model_answer;

  // Signature() is what a shrunk case must still disagree on: the field,
  // and for status codes, reasons and verdicts also both values.
  std::string Signature() const;
};

struct PlayStats {
  int64_t decisions = 0;   // Authorize requests compared
  int64_t operations = 0;  // admin operations compared
  // Decisions by the model's outcome: a Reason, or (index 0) an RPC error.
  std::array<int64_t, 9> outcomes{};
  int64_t redacted = 0;  // allowed with redactions
};

// Play() runs `scenario` on `target` and on a fresh model; the first
// disagreement, if any. Steps on a key slot whose CreateKey failed (or was
// shrunk away) are skipped on both sides.
std::optional<Disagreement> Play(const Scenario& scenario, Target& target,
                                 PlayStats* stats = nullptr);

// Minimize() shrinks `scenario`, which disagrees as `*found` says, while it
// still disagrees on the same `what` (updating `*found`), in at most
// `max_plays` plays on targets from `factory`.
Scenario Minimize(Scenario scenario, Disagreement* found,
                  const TargetFactory& factory, int max_plays = 4000);

// FormatCase() renders a scenario up to its disagreement as JSON, one step
// per line, each with its time since the start ("t"), followed by both
// answers.
std::string FormatCase(const Scenario& scenario, const Disagreement& found);

// ScenarioSeed() is the seed of the `index`-th scenario of a run.
uint64_t ScenarioSeed(uint64_t run_seed, int64_t index);

struct RunOptions {
  uint64_t seed = 1;
  // Stop after this many decisions or scenarios (<= 0: no limit; at least
  // one limit must be set).
  int64_t max_decisions = 0;
  int64_t max_scenarios = 0;
  GeneratorOptions generator;
  // Minimize and report at most this many disagreements.
  int max_reports = 1;
  bool minimize = true;
  // Stop at the first disagreement.
  bool stop_at_first = true;
  // Called every `progress_every` scenarios (if set).
  std::function<void(int64_t scenarios, int64_t decisions)> progress;
  int64_t progress_every = 1000;
};

struct RunResult {
  int64_t scenarios = 0;
  int64_t decisions = 0;
  int64_t operations = 0;
  PlayStats totals;
  int64_t disagreements = 0;
  // For each reported disagreement: FormatCase() and the scenario's seed.
  std::vector<std::string> reports;
  std::vector<uint64_t> report_seeds;
  absl::Duration elapsed;
};

// Outcomes() renders PlayStats::outcomes: "ALLOWED 41%, ...".
std::string Outcomes(const PlayStats& stats);

// RunDifferential() plays generated scenarios, the i-th on a target from
// `factory_for(i)` (also used to minimize it).
RunResult RunDifferential(
    const RunOptions& options,
    const std::function<const TargetFactory&(int64_t)>& factory_for);
// RunDifferential() plays every scenario on a target from `factory`.
RunResult RunDifferential(const RunOptions& options,
                          const TargetFactory& factory);

}  // namespace scopekeeper::oracle

#endif  // SCOPEKEEPER_TESTS_ORACLE_DIFFERENTIAL_H_
