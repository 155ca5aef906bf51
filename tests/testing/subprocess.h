// SPDX-License-Identifier: Apache-2.0
// A child process for integration tests: spawned with stdin on /dev/null
// and pipes on stdout and stderr, read by a background thread, awaited line by line with deadlines,
// and killed by PID when the handle dies (SIGTERM, then SIGKILL after a
// grace period). The child also gets PR_SET_PDEATHSIG, so a crashed test
// never leaves processes behind. On a failed test the child's stderr tail is
// printed.
#ifndef FABRIC_TESTS_TESTING_SUBPROCESS_H_
#define FABRIC_TESTS_TESTING_SUBPROCESS_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace fabric::testing {

// Thread safety: thread-safe.
class Subprocess {
 public:
  // Starts `argv[0]` (a path) with `argv`. `env` entries ("K=V") are added
  // to the inherited environment.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Spawn(
      std::vector<std::string> argv, std::vector<std::string> env = {});

  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  // Stops the child if it still runs (SIGCONT, SIGTERM, 2 s, SIGKILL).
  ~Subprocess();

  pid_t pid() const { return pid_; }
  const std::string& label() const { return label_; }

  // Waits for a stdout line (counting from line `from`) for which `match`
  // is true. Returns its index, or kDeadlineExceeded (kUnavailable when
  // stdout closed first).
  absl::StatusOr<size_t> WaitForLine(
      const std::function<bool(absl::string_view)>& match,
      absl::Duration timeout, size_t from = 0);
  absl::StatusOr<size_t> WaitForLineContaining(absl::string_view needle,
                                               absl::Duration timeout,
                                               size_t from = 0);
  // Waits until the child's stdout and stderr both reached EOF and were
  // read to the end; kDeadlineExceeded otherwise. Waiting for the exit is
  // not enough: the reader may not have taken the last bytes yet.
  absl::Status WaitForOutputClosed(absl::Duration timeout);
  // Waits for the first stdout line starting with `prefix` (a role's
  // "READY ..." line) and returns its index. On failure the status also
  // carries the child's stderr, which says why it did not start.
  absl::StatusOr<size_t> WaitForReady(absl::string_view prefix,
                                      absl::Duration timeout);
  std::vector<std::string> StdoutLines() const;
  // Stderr as read so far (all of it after WaitForOutputClosed).
  std::string Stderr() const;

  // Sends `signal` to the child.
  void Signal(int signal);
  // Waits for the child to exit. Returns its exit code, or 128+signal when a
  // signal killed it; kDeadlineExceeded if it is still running.
  absl::StatusOr<int> Wait(absl::Duration timeout);
  // Stops the child now: SIGCONT, SIGTERM, grace, SIGKILL. Idempotent.
  void Stop(absl::Duration grace = absl::Seconds(2));

 private:
  Subprocess(pid_t pid, int out_fd, int err_fd, std::string label);
  void ReadLoop();

  const pid_t pid_;
  const int out_fd_;
  const int err_fd_;
  const std::string label_;
  std::thread reader_;

  mutable absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
  std::string partial_ ABSL_GUARDED_BY(mu_);
  std::string stderr_ ABSL_GUARDED_BY(mu_);
  bool stdout_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool stderr_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool reaped_ ABSL_GUARDED_BY(mu_) = false;
  int exit_code_ ABSL_GUARDED_BY(mu_) = -1;
};

}  // namespace fabric::testing

#endif  // FABRIC_TESTS_TESTING_SUBPROCESS_H_
