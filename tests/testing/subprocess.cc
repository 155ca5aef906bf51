// SPDX-License-Identifier: Apache-2.0
#include "tests/testing/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace fabric::testing {

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Spawn(
    std::vector<std::string> argv, std::vector<std::string> env) {
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe");
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return absl::InternalError("pipe");
  }
  std::vector<std::string> envs;
  for (char** e = environ; *e != nullptr; ++e) envs.emplace_back(*e);
  envs.insert(envs.end(), env.begin(), env.end());
  std::vector<char*> cargv, cenv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  for (auto& e : envs) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", errno));
  if (pid == 0) {
    // Child: only async-signal-safe calls from here to exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    // Stdin is /dev/null whatever the test runner's is (a terminal, a pipe
    // from CI), so a command's input never depends on how tests are run.
    const int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) {
      dup2(null_fd, STDIN_FILENO);
      if (null_fd != STDIN_FILENO) close(null_fd);
    }
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    execve(cargv[0], cargv.data(), cenv.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  std::string label =
      absl::StrCat(argv[0].substr(argv[0].rfind('/') + 1), "[", pid, "]");
  return std::unique_ptr<Subprocess>(
      new Subprocess(pid, out[0], err[0], std::move(label)));
}

Subprocess::Subprocess(pid_t pid, int out_fd, int err_fd, std::string label)
    : pid_(pid), out_fd_(out_fd), err_fd_(err_fd), label_(std::move(label)) {
  reader_ = std::thread([this] { ReadLoop(); });
}

Subprocess::~Subprocess() {
  Stop();
  reader_.join();
  close(out_fd_);
  close(err_fd_);
  if (::testing::Test::HasFailure()) {
    std::string err = Stderr();
    if (err.size() > 4000) err = "..." + err.substr(err.size() - 4000);
    std::fprintf(stderr, "---- stderr of %s ----\n%s\n----\n", label_.c_str(),
                 err.c_str());
  }
}

void Subprocess::ReadLoop() {
  pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
  int open_fds = 2;
  char buffer[4096];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
      absl::MutexLock lock(&mu_);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        fds[i].fd = -1;
        --open_fds;
        if (i == 0) {
          if (!partial_.empty()) lines_.push_back(std::move(partial_));
          partial_.clear();
          stdout_closed_ = true;
        } else {
          stderr_closed_ = true;
        }
        continue;
      }
      if (i == 1) {
        stderr_.append(buffer, static_cast<size_t>(n));
        continue;
      }
      partial_.append(buffer, static_cast<size_t>(n));
      size_t pos;
      while ((pos = partial_.find('\n')) != std::string::npos) {
        lines_.push_back(partial_.substr(0, pos));
        partial_.erase(0, pos + 1);
      }
    }
  }
}

absl::StatusOr<size_t> Subprocess::WaitForLine(
    const std::function<bool(absl::string_view)>& match, absl::Duration timeout,
    size_t from) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  size_t next = from;
  for (;;) {
    for (; next < lines_.size(); ++next) {
      if (match(lines_[next])) return next;
    }
    if (stdout_closed_) {
      return absl::UnavailableError(
          absl::StrCat(label_, " closed stdout before the line appeared"));
    }
    const size_t seen = lines_.size();
    auto grew = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return lines_.size() > seen || stdout_closed_;
    };
    if (!mu_.AwaitWithDeadline(absl::Condition(&grew), deadline)) {
      return absl::DeadlineExceededError(absl::StrCat(
          label_, ": no matching line within ", absl::FormatDuration(timeout),
          "; last lines:\n",
          absl::StrJoin(lines_.size() > 5 ? std::vector<std::string>(
                                                lines_.end() - 5, lines_.end())
                                          : lines_,
                        "\n")));
    }
  }
}

absl::StatusOr<size_t> Subprocess::WaitForLineContaining(
    absl::string_view needle, absl::Duration timeout, size_t from) {
  return WaitForLine(
      [needle](absl::string_view line) {
        return absl::StrContains(line, needle);
      },
      timeout, from);
}

absl::StatusOr<size_t> Subprocess::WaitForReady(absl::string_view prefix,
                                                absl::Duration timeout) {
  absl::StatusOr<size_t> line = WaitForLine(
      [prefix](absl::string_view l) { return absl::StartsWith(l, prefix); },
      timeout);
  if (line.ok()) return line;
  if (line.status().code() == absl::StatusCode::kUnavailable) {
    // It exited: let the reader take stderr's last bytes, which say why.
    (void)WaitForOutputClosed(absl::Seconds(2));
  }
  return absl::Status(
      line.status().code(),
      absl::StrCat(line.status().message(), "\nstderr: ", Stderr()));
}

absl::Status Subprocess::WaitForOutputClosed(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto closed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stdout_closed_ && stderr_closed_;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&closed), timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat(label_, ": stdout or stderr still open after ",
                     absl::FormatDuration(timeout)));
  }
  return absl::OkStatus();
}

std::vector<std::string> Subprocess::StdoutLines() const {
  absl::MutexLock lock(&mu_);
  return lines_;
}

std::string Subprocess::Stderr() const {
  absl::MutexLock lock(&mu_);
  return stderr_;
}

void Subprocess::Signal(int signal) {
  absl::MutexLock lock(&mu_);
  if (!reaped_) kill(pid_, signal);
}

absl::StatusOr<int> Subprocess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (reaped_) return exit_code_;
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        exit_code_ =
            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return exit_code_;
      }
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(label_, " still running"));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

void Subprocess::Stop(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (reaped_) return;
    kill(pid_, SIGCONT);  // a stopped child cannot handle SIGTERM
    kill(pid_, SIGTERM);
  }
  if (Wait(grace).ok()) return;
  Signal(SIGKILL);
  (void)Wait(absl::Seconds(10));
}

}  // namespace fabric::testing
