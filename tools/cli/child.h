// SPDX-License-Identifier: Apache-2.0
// Running a user's command (`fabric work --exec`, `fabric serve --exec`):
// the environment it gets, built before fork(), and the child side after.
#ifndef FABRIC_TOOLS_CLI_CHILD_H_
#define FABRIC_TOOLS_CLI_CHILD_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace fabric::cli {

// Variables naming secret files of secure mode. A command run by --exec
// does not get them: it has no business with the node's keys, and it may
// log its environment or pass it on.
inline constexpr absl::string_view kWithheldFromChildren[] = {
    "FABRIC_KEY_FILE", "FABRIC_ROSTER", "FABRIC_BEACON_SECRET_FILE"};

// The environment of an --exec command: this process's, without the
// `kWithheldFromChildren` variables and without the entries starting with
// one of `replaced` (e.g. "FABRIC_TASK_ID="), which the caller appends
// itself. Reads `environ`: call it before fork(), not in the child.
// Thread-safe as long as nothing changes the environment meanwhile.
std::vector<std::string> ChildEnvironment(
    absl::Span<const absl::string_view> replaced);

// In a freshly forked child: puts it in its own process group, makes it die
// with the forking thread, undoes the parent's signal mask and SIGPIPE
// setting (they would survive exec), wires `in`, `out` and `err` to its
// stdin, stdout and stderr and execs argv[0] with `envp`. Exits 127 when
// that fails or when the parent (`parent`) is already gone. Calls only
// async-signal-safe functions.
[[noreturn]] void ExecInChild(pid_t parent, int in, int out, int err,
                              char* const argv[], char* const envp[]);

}  // namespace fabric::cli

#endif  // FABRIC_TOOLS_CLI_CHILD_H_
