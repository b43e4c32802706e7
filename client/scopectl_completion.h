// `scopectl completion bash`: a bash completion script generated from the
// command tree itself, so it offers exactly the commands and flags that
// parse.
#ifndef SCOPEKEEPER_CLIENT_SCOPECTL_COMPLETION_H_
#define SCOPEKEEPER_CLIENT_SCOPECTL_COMPLETION_H_

#include <CLI/CLI.hpp>
#include <ostream>

namespace scopekeeper {

// WriteBashCompletion() writes a script that defines `_scopectl` and
// registers it for `scopectl` (load it with
// `source <(scopectl completion bash)`). It completes the subcommands of
// the command typed so far, the flags of that command and the global ones
// (after "-"), file names after flags whose value is a PATH, and the
// values of -o/--output.
void WriteBashCompletion(const CLI::App& app, std::ostream& out);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_CLIENT_SCOPECTL_COMPLETION_H_
