// SPDX-License-Identifier: Apache-2.0
// The `fabric` command line: parses arguments and runs a verb. Kept apart
// from main.cc so tests can drive it.
#ifndef FABRIC_TOOLS_CLI_CLI_H_
#define FABRIC_TOOLS_CLI_CLI_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace fabric::cli {

// Runs the command line and returns the process exit code: 0 on success,
// 2 for bad arguments (kInvalidArgument), 1 for any other failure. Errors
// are printed to stderr as "fabric: <message>".
int Run(int argc, char** argv);

// Maps a status to the exit code above.
int ExitCode(const absl::Status& status);

// What `--version` prints for `program`: "fabric 0.1.0 (git fca852e)" and
// "libzmq 4.3.4" (the library loaded at run time) on a second line.
std::string VersionText(absl::string_view program);

}  // namespace fabric::cli

#endif  // FABRIC_TOOLS_CLI_CLI_H_
