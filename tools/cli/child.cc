// SPDX-License-Identifier: Apache-2.0
#include "tools/cli/child.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace fabric::cli {

std::vector<std::string> ChildEnvironment(
    absl::Span<const absl::string_view> replaced) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const absl::string_view entry(*e);
    bool drop = false;
    for (absl::string_view name : kWithheldFromChildren) {
      drop |= absl::StartsWith(entry, absl::StrCat(name, "="));
    }
    for (absl::string_view prefix : replaced) {
      drop |= absl::StartsWith(entry, prefix);
    }
    if (!drop) env.emplace_back(entry);
  }
  return env;
}

void ExecInChild(pid_t parent, int in, int out, int err, char* const argv[],
                 char* const envp[]) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with the thread that forked it
  if (getppid() != parent) _exit(127);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  if (in != STDIN_FILENO) dup2(in, STDIN_FILENO);
  if (out != STDOUT_FILENO) dup2(out, STDOUT_FILENO);
  if (err != STDERR_FILENO) dup2(err, STDERR_FILENO);
  execve(argv[0], argv, envp);
  _exit(127);
}

}  // namespace fabric::cli
