// SPDX-License-Identifier: Apache-2.0
// Running the real `fabric` binary in process-level tests: a unique cluster
// and beacon port per test, spawning with the cluster flags, waiting for
// READY, and collecting a finished process's output. Test-only;
// header-only. The test target defines FABRIC_CLI_PATH.
#ifndef FABRIC_TESTS_TESTING_CLI_HARNESS_H_
#define FABRIC_TESTS_TESTING_CLI_HARNESS_H_

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/test_util.h"

namespace fabric::testing {

inline constexpr absl::Duration kCliTimeout = absl::Seconds(60);
inline constexpr absl::Duration kCliReadyTimeout = absl::Seconds(20);
// How a READY line starts: "READY tcp://..." or, with --json, the object
// {"event":"ready","endpoint":"tcp://...",...}.
inline constexpr absl::string_view kReadyPrefix = "READY tcp://";
inline constexpr absl::string_view kJsonReadyPrefix = "{\"event\":\"ready\",";

struct RunResult {
  int exit_code = -1;
  std::vector<std::string> lines;  // stdout
  std::string out;                 // stdout joined with '\n'
  std::string err;                 // stderr
};

// Waits for `proc` to exit and its stdout and stderr to be read to the end;
// collects its output.
inline absl::StatusOr<RunResult> Finish(Subprocess& proc,
                                        absl::Duration timeout = kCliTimeout) {
  absl::StatusOr<int> code = proc.Wait(timeout);
  if (!code.ok()) return code.status();
  absl::Status closed = proc.WaitForOutputClosed(kCliTimeout);
  if (!closed.ok()) return closed;
  RunResult r;
  r.exit_code = *code;
  r.lines = proc.StdoutLines();
  r.out = absl::StrJoin(r.lines, "\n");
  r.err = proc.Stderr();
  return r;
}

// The value of "key=N" in the last line of `text` that starts with `prefix`
// (a progress line on a command's stderr), or -1.
inline int64_t LastValue(const std::string& text, absl::string_view prefix,
                         absl::string_view key) {
  int64_t value = -1;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, prefix)) continue;
    for (absl::string_view f : absl::StrSplit(line, ' ')) {
      if (absl::ConsumePrefix(&f, key) && absl::ConsumePrefix(&f, "=")) {
        (void)absl::SimpleAtoi(f, &value);
      }
    }
  }
  return value;
}

// One cluster of `fabric` processes with its own temp directory.
// Thread safety: thread-compatible.
class CliCluster {
 public:
  explicit CliCluster(const std::string& prefix)
      : cluster_(UniqueClusterName(prefix)),
        beacon_port_(FreeUdpPort()),
        dir_(MakeTempDir(prefix)) {
    ClearFabricEnvironment();
  }
  ~CliCluster() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  CliCluster(const CliCluster&) = delete;
  CliCluster& operator=(const CliCluster&) = delete;

  const std::string& dir() const { return dir_; }
  // For in-process nodes that join the same cluster.
  const std::string& cluster() const { return cluster_; }
  uint16_t beacon_port() const { return beacon_port_; }
  bool usable() const { return beacon_port_ != 0 && !dir_.empty(); }

  // Cluster flags every process gets; fast beacons shorten discovery.
  std::vector<std::string> ClusterFlags() const {
    return {"--cluster",         cluster_,
            "--beacon-port",     absl::StrCat(beacon_port_),
            "--beacon-interval", "300ms"};
  }

  // Starts `fabric <args> <cluster flags>`.
  absl::StatusOr<std::unique_ptr<Subprocess>> Spawn(
      std::vector<std::string> args) const {
    args.insert(args.begin(), FABRIC_CLI_PATH);
    for (std::string& f : ClusterFlags()) args.push_back(std::move(f));
    return Subprocess::Spawn(std::move(args));
  }

  // Starts a process and waits for its READY line (a JSON one when `args`
  // hold --json).
  absl::StatusOr<std::unique_ptr<Subprocess>> SpawnReady(
      std::vector<std::string> args) const {
    const bool json =
        std::find(args.begin(), args.end(), "--json") != args.end();
    absl::StatusOr<std::unique_ptr<Subprocess>> proc = Spawn(std::move(args));
    if (!proc.ok()) return proc;
    absl::Status ready =
        (*proc)
            ->WaitForReady(json ? kJsonReadyPrefix : kReadyPrefix,
                           kCliReadyTimeout)
            .status();
    if (!ready.ok()) return ready;
    return proc;
  }

  // Runs `fabric <args> <cluster flags>` to completion.
  absl::StatusOr<RunResult> Run(std::vector<std::string> args,
                                absl::Duration timeout = kCliTimeout) const {
    absl::StatusOr<std::unique_ptr<Subprocess>> proc = Spawn(std::move(args));
    if (!proc.ok()) return proc.status();
    return Finish(**proc, timeout);
  }

 private:
  const std::string cluster_;
  const uint16_t beacon_port_;
  const std::string dir_;
};

}  // namespace fabric::testing

#endif  // FABRIC_TESTS_TESTING_CLI_HARNESS_H_
