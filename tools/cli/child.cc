// SPDX-License-Identifier: Apache-2.0
#include "tools/cli/child.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

namespace fabric::cli {

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
