// SPDX-License-Identifier: Apache-2.0
// The child side of running a user's command (`fabric work --exec`,
// `fabric serve --exec`) after fork().
#ifndef FABRIC_TOOLS_CLI_CHILD_H_
#define FABRIC_TOOLS_CLI_CHILD_H_

#include <sys/types.h>

namespace fabric::cli {

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
