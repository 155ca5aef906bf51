// SPDX-License-Identifier: Apache-2.0
// Plumbing shared by the multi-process demos in examples/, kept apart so
// each demo's file shows the fabric API and little else. Each demo is one
// binary: run with no arguments it is the *driver*, which starts copies of
// itself as *role* processes (`demo ROLE key=value...`), reads their stdout
// lines, narrates, signals them by PID and checks what happened.
//
// Driver side: `Processes` (spawn, read lines, stop and reap every child on
// every exit path, Ctrl-C, a watchdog), `TempDir`, `Say`. Role side:
// `Fields`, `RoleNodeOptions`, `StopRequested`, `WaitForStop`, `Emit`.
//
// None of this is fabric API; nothing outside examples/ uses it.
#ifndef FABRIC_EXAMPLES_DEMO_UTIL_H_
#define FABRIC_EXAMPLES_DEMO_UTIL_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fabric/node_options.h"

namespace fabric::examples {

// ---------------------------------------------------------------- role side

// A line of space-separated `word`s and `key=value` fields: the command
// line of a role process (`demo ROLE key=value...`) or a line a role prints
// for the driver (`done IMG_0042.jpg attempt=2 redelivered`). A `text=`
// field must come last: it takes the rest of the line, spaces included.
// Thread safety: thread-compatible value type.
class Fields {
 public:
  explicit Fields(absl::string_view line);
  // argv[1..]: argv[1] (the role) becomes Word(0).
  Fields(int argc, char** argv);

  // Returns the i-th word that is not a field, or "" when there is none.
  std::string Word(size_t i) const;
  bool Has(absl::string_view key) const;
  // Returns the value of `key`, or `fallback` when it is absent.
  std::string Get(absl::string_view key, absl::string_view fallback = "") const;
  // Returns the integer value of `key`; `fallback` when absent or invalid.
  int64_t GetInt(absl::string_view key, int64_t fallback = 0) const;

 private:
  void Add(absl::string_view token);
  std::vector<std::string> words_;
  std::map<std::string, std::string, std::less<>> values_;
};

// Returns the options every role's node uses: the run's cluster and beacon
// port (given by the driver as `cluster=` and `beacon_port=`), loopback
// discovery, a mailbox on a free port of 127.0.0.1, and beacons every
// 250 ms so the processes find each other quickly.
NodeOptions RoleNodeOptions(const Fields& args, std::string name);

// Prepares a role process: line-buffered stdout (a pipe to the driver) and
// SIGTERM/SIGINT blocked, so that they are taken by `StopRequested` rather
// than killing the process. `DemoMain` calls it before running a role, so
// before any thread starts (threads inherit the mask).
void InitRole();

// Returns true once SIGTERM or SIGINT arrived, waiting up to `wait` for one.
// Call from one thread (usually main).
bool StopRequested(absl::Duration wait = absl::ZeroDuration());

// Blocks until SIGTERM or SIGINT arrives: a role that only serves until the
// driver stops it. Call from one thread (usually main).
void WaitForStop();

// Prints "WHO: STATUS" to stderr and returns 1, the exit code of a role
// that failed: `return Fail("web", status);`.
int Fail(const std::string& who, const absl::Status& status);

// Prints one line to stdout for the driver and flushes it. Thread-safe.
void Emit(const char* format, ...) ABSL_PRINTF_ATTRIBUTE(1, 2);

// ------------------------------------------------------------- driver side

// Prints one narration line, prefixed by the seconds since the first call:
// "[  1.2s] Starting three workers". Thread-compatible.
void Say(const char* format, ...) ABSL_PRINTF_ATTRIBUTE(1, 2);

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it
// when this goes out of scope. Thread safety: thread-compatible.
class TempDir {
 public:
  explicit TempDir(absl::string_view prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The role processes of one demo run. Each is this binary started again as
// `self ROLE key=value... cluster=C beacon_port=P`, with its stdout on a
// pipe read by `WaitUntil` and its stderr shared with the driver. The run's
// cluster name is random and its beacon port a free one, so concurrent runs
// never hear each other.
//
// Every exit path stops the children: the destructor SIGTERMs each one
// still running, SIGKILLs it after a grace period and reaps it by PID;
// SIGINT/SIGTERM to the driver make `WaitUntil` return kCancelled so the
// demo unwinds to that destructor; each child has PR_SET_PDEATHSIG, so it
// dies with the driver even when the driver is SIGKILLed; and a last-resort
// alarm (`watchdog` plus 20 s) SIGKILLs the children and exits if the
// driver itself is stuck.
//
// Thread safety: thread-compatible; use from the driver's main thread.
class Processes {
 public:
  // Called for each stdout line of a child, in order per child.
  using LineHandler =
      std::function<void(const std::string& name, const std::string& line)>;

  // `watchdog` bounds the whole run: past it every wait fails.
  Processes(LineHandler on_line, absl::Duration watchdog);
  ~Processes();
  Processes(const Processes&) = delete;
  Processes& operator=(const Processes&) = delete;

  const std::string& cluster() const { return cluster_; }
  uint16_t beacon_port() const { return beacon_port_; }
  // Echo every child line to stdout, indented (the demos' --verbose).
  void set_echo(bool echo) { echo_ = echo; }

  // Starts `self role args... cluster=.. beacon_port=..` as `name` (a name
  // may be reused once its previous process is reaped).
  absl::Status Start(const std::string& name, const std::string& role,
                     std::vector<std::string> args);

  // Reads the children's output (calling the line handler) until `done`
  // returns true. Returns OK; kDeadlineExceeded naming `what` when `timeout`
  // or the watchdog passes first; kCancelled when the driver got SIGINT or
  // SIGTERM; kAborted when a child exited on its own with a non-zero status
  // or by a signal the driver did not send.
  absl::Status WaitUntil(const std::function<bool()>& done,
                         absl::Duration timeout, absl::string_view what);

  // SIGKILLs `name` and reaps it (its remaining output is read first).
  absl::Status Kill(const std::string& name);
  // Sends SIGTERM (and SIGCONT) to `name`, waits up to `grace` for it to
  // exit (reading its output), then SIGKILLs it. Returns its exit code, or 128
  // + signal.
  absl::StatusOr<int> Stop(const std::string& name,
                           absl::Duration grace = absl::Seconds(10));
  // Like Stop, but returns kInternal unless `name` exits with status 0.
  absl::Status StopCleanly(const std::string& name,
                           absl::Duration grace = absl::Seconds(10));
  // Waits up to `timeout` for `name` to exit on its own; returns its exit
  // code (128 + signal). kDeadlineExceeded if it is still running.
  absl::StatusOr<int> WaitExit(const std::string& name, absl::Duration timeout);
  // Stops every running child (SIGTERM, `grace`, SIGKILL) and reaps it.
  void StopAll(absl::Duration grace = absl::Seconds(5));

  bool running(const std::string& name) const;

 private:
  struct Child {
    pid_t pid = -1;
    int out = -1;  // read end of the child's stdout pipe; -1 at EOF
    std::string partial;
    bool expect_exit = false;  // exits are ours (Kill, Stop, WaitExit)
    int exit_code = -1;        // once reaped
  };

  // Polls the pipes for up to `wait` and hands complete lines out.
  void Pump(absl::Duration wait);
  // Reads what `child` wrote; returns false at EOF.
  bool ReadFrom(const std::string& name, Child& child);
  // Reaps exited children. Returns kAborted for an unexpected exit.
  absl::Status ReapExited();
  void Reaped(const std::string& name, Child& child, int wait_status);
  absl::StatusOr<int> AwaitExit(const std::string& name,
                                absl::Duration timeout);

  const LineHandler on_line_;
  const absl::Time watchdog_;
  const std::string self_;
  const std::string cluster_;
  const uint16_t beacon_port_;
  bool echo_ = false;
  std::map<std::string, Child> children_;
};

// The body of a demo's `main`. `demo ROLE key=value...` prepares a role
// process (`InitRole`) and returns `roles.at(ROLE)(args)`. `demo
// [--verbose]` runs `driver(verbose)` and returns 0 when it returns OK,
// 128 + the signal when SIGINT/SIGTERM interrupted it and 1 otherwise,
// saying why. Bad arguments print a usage line and return 2.
using RoleMain = std::function<int(const Fields& args)>;
int DemoMain(int argc, char** argv,
             const std::map<std::string, RoleMain>& roles,
             const std::function<absl::Status(bool verbose)>& driver);

}  // namespace fabric::examples

#endif  // FABRIC_EXAMPLES_DEMO_UTIL_H_
