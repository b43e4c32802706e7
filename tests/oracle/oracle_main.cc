// oracle_run: the long run of the differential test (scripts/oracle.sh).
// Plays generated scenarios on the core in-process (every fourth with a key
// cache of 3 keys) and every --server_every-th on a real server in-process
// (gRPC, RocksDB; alternately with a complete cache and one of 3 keys),
// comparing each decision with the reference model. Prints progress, the
// decisions per second, and each disagreement's seed and minimized case.
// Exits 1 if there was a disagreement.
//
//   oracle_run --cases=10000000 [--seed=N] [--server_every=200]
//   oracle_run --replay=SCENARIO_SEED     # one scenario, e.g. from a report
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/oracle/core_target.h"
#include "tests/oracle/differential.h"
#include "tests/oracle/server_target.h"

ABSL_FLAG(int64_t, cases, 1'000'000, "Decisions to compare.");
ABSL_FLAG(uint64_t, seed, 0, "Run seed; 0 = from the time (printed).");
ABSL_FLAG(int64_t, server_every, 200,
          "Play every N-th scenario on a real server in-process; 0 = never.");
ABSL_FLAG(uint64_t, replay, 0,
          "Play only the scenario of this seed (a report's \"seed\").");
ABSL_FLAG(bool, keep_going, false,
          "Count every disagreement instead of stopping at the first.");
ABSL_FLAG(int, max_reports, 3, "Disagreements to minimize and print.");
ABSL_FLAG(bool, minimize, true, "Shrink a disagreeing scenario first.");

namespace scopekeeper::oracle {
namespace {

int Main() {
  uint64_t seed = absl::GetFlag(FLAGS_seed);
  if (seed == 0) seed = absl::ToUnixNanos(absl::Now()) % 1'000'000'000;

  const TargetFactory core = CoreTargetFactory();
  const TargetFactory core_bounded = CoreTargetFactory(3);
  if (absl::GetFlag(FLAGS_replay) != 0) {
    Scenario scenario = Generate(absl::GetFlag(FLAGS_replay));
    std::unique_ptr<Target> target = core();
    std::optional<Disagreement> found = Play(scenario, *target);
    if (!found.has_value()) {
      std::cout << "scenario " << scenario.seed << " (" << scenario.steps.size()
                << " steps): agrees\n";
      return 0;
    }
    if (absl::GetFlag(FLAGS_minimize)) {
      scenario = Minimize(std::move(scenario), &*found, core);
    }
    std::cout << FormatCase(scenario, *found);
    return 1;
  }

  // Real servers for a share of the scenarios: data dirs under TEST_TMPDIR
  // or a fresh temporary directory.
  const int64_t server_every = absl::GetFlag(FLAGS_server_every);
  std::unique_ptr<LocalServer> servers[2];
  TargetFactory server_factories[2];
  std::string dir;
  if (server_every > 0) {
    const char* tmp = getenv("TEST_TMPDIR");
    std::string base = tmp != nullptr ? tmp : "/tmp";
    dir = base + "/scopekeeper-oracle.XXXXXX";
    if (mkdtemp(dir.data()) == nullptr) {
      std::cerr << "cannot create a directory under " << base << "\n";
      return 2;
    }
    for (int i = 0; i < 2; ++i) {
      auto server = LocalServer::Start(absl::StrCat(dir, "/server", i),
                                       /*key_cache_capacity=*/i == 0 ? 0 : 3);
      if (!server.ok()) {
        std::cerr << "server: " << server.status() << "\n";
        return 2;
      }
      servers[i] = *std::move(server);
      server_factories[i] =
          ServerTargetFactory({servers[i]->address()},
                              servers[i]->admin_token(), servers[i]->clock());
    }
  }

  RunOptions options;
  options.seed = seed;
  options.max_decisions = absl::GetFlag(FLAGS_cases);
  options.stop_at_first = !absl::GetFlag(FLAGS_keep_going);
  options.max_reports = absl::GetFlag(FLAGS_max_reports);
  options.minimize = absl::GetFlag(FLAGS_minimize);
  options.progress_every = 2000;
  const absl::Time start = absl::Now();
  options.progress = [&](int64_t scenarios, int64_t decisions) {
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    std::printf("%lld scenarios, %lld decisions, %.0f decisions/s\n",
                static_cast<long long>(scenarios),
                static_cast<long long>(decisions), decisions / seconds);
    std::fflush(stdout);
  };
  std::cout << "oracle_run --cases=" << options.max_decisions
            << " --seed=" << seed << " --server_every=" << server_every << "\n";
  const RunResult result =
      RunDifferential(options, [&](int64_t i) -> const TargetFactory& {
        if (server_every > 0 && i % server_every == server_every - 1) {
          return server_factories[(i / server_every) % 2];
        }
        return i % 4 == 3 ? core_bounded : core;
      });
  for (auto& server : servers) server.reset();
  if (!dir.empty()) std::filesystem::remove_all(dir);
  for (size_t i = 0; i < result.reports.size(); ++i) {
    std::cout << "disagreement in scenario " << result.report_seeds[i]
              << " (replay: --replay=" << result.report_seeds[i] << "):\n"
              << result.reports[i];
  }
  const double seconds = absl::ToDoubleSeconds(result.elapsed);
  std::printf(
      "seed %llu: %lld decisions, %lld admin operations, %lld scenarios in "
      "%.1f s (%.0f decisions/s); %lld disagreements\n",
      static_cast<unsigned long long>(seed),
      static_cast<long long>(result.decisions),
      static_cast<long long>(result.operations),
      static_cast<long long>(result.scenarios), seconds,
      result.decisions / seconds, static_cast<long long>(result.disagreements));
  std::cout << "outcomes: " << Outcomes(result.totals) << "\n";
  return result.disagreements == 0 ? 0 : 1;
}

}  // namespace
}  // namespace scopekeeper::oracle

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "The long run of the decision oracle (see docs/TESTING.md).");
  absl::ParseCommandLine(argc, argv);
  return scopekeeper::oracle::Main();
}
