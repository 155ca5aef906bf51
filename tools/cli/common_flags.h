// SPDX-License-Identifier: Apache-2.0
// Flags every `fabric` verb accepts, and what they turn into: NodeOptions,
// the log level, and signal handling shared by the long-running verbs.
#ifndef FABRIC_TOOLS_CLI_COMMON_FLAGS_H_
#define FABRIC_TOOLS_CLI_COMMON_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fabric/node.h"
#include "fabric/node_options.h"

namespace CLI {
class App;
}

namespace fabric::cli {

struct CommonFlags {
  std::string cluster;
  std::string name;
  std::string discovery;
  std::string interface;
  int beacon_port = 0;  // 0: keep the default / environment
  int port = 0;         // mailbox port; 0 picks a free one
  std::vector<std::string> seeds;
  std::vector<std::string> headers;  // KEY=VALUE
  std::vector<std::string> offers;   // KIND=NAME
  std::string log_level;
  std::string beacon_interval;
  std::string heartbeat_interval;
  std::string suspect_timeout;
  std::string dead_timeout;
  // Secure mode (docs/security.md): paths only, never key material.
  std::string security;  // "off" or "curve"
  std::string key_file;
  std::string roster;
  std::string beacon_secret;
};

// Registers the common flags on `app`.
void AddCommonFlags(CLI::App& app, CommonFlags& flags);
// Registers --security, --key, --roster and --beacon-secret (part of
// AddCommonFlags).
void AddSecurityFlags(CLI::App& app, CommonFlags& flags,
                      const std::string& prefix = "");

// Registers only --log-level and the liveness timings (--beacon-interval,
// --heartbeat-interval, --suspect-timeout, --dead-timeout); part of
// AddCommonFlags, and all that fabric-relay shares with it.
void AddTimingFlags(CLI::App& app, CommonFlags& flags);

// Sets the log level from --log-level, else from FABRIC_LOG_LEVEL. Returns
// kInvalidArgument for a value that is not a level (from either).
absl::Status ApplyLogLevel(const CommonFlags& flags);

// Builds node options: defaults, then the environment (FABRIC_CLUSTER,
// FABRIC_DISCOVERY, FABRIC_INTERFACE, FABRIC_BEACON_PORT, FABRIC_SEEDS,
// FABRIC_SECURITY, FABRIC_KEY_FILE, FABRIC_ROSTER,
// FABRIC_BEACON_SECRET_FILE), then the flags. Sets the log level. Returns
// kInvalidArgument for bad values. Any security path implies secure mode,
// except that an explicit `--security off` flag drops the paths the
// environment named (and is kInvalidArgument next to a path flag).
absl::StatusOr<NodeOptions> BuildNodeOptions(const CommonFlags& flags);

// Parses "1.5s", "200ms", "2m" or a plain number of seconds.
absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view flag,
                                                 absl::string_view text);

// Blocks SIGINT, SIGTERM and SIGHUP in this thread and every thread started
// after, so `WaitForSignal` can take them synchronously (no async handler).
void BlockTerminationSignals();
// Waits up to `timeout` for SIGINT or SIGTERM. Returns true if one came. A
// SIGHUP meanwhile reloads the roster of every node registered with
// `ReloadOnHangup` and the wait goes on.
bool WaitForSignal(absl::Duration timeout);

// While it lives, a SIGHUP taken by WaitForSignal reloads `node`'s roster
// (secure mode; a plaintext node is skipped). Thread safety: construct and
// destroy on any thread; the node must outlive it.
class ReloadOnHangup {
 public:
  explicit ReloadOnHangup(Node* node);
  ~ReloadOnHangup();
  ReloadOnHangup(const ReloadOnHangup&) = delete;
  ReloadOnHangup& operator=(const ReloadOnHangup&) = delete;

 private:
  Node* node_;
};

}  // namespace fabric::cli

#endif  // FABRIC_TOOLS_CLI_COMMON_FLAGS_H_
