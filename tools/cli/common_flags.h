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
};

// Registers the common flags on `app`.
void AddCommonFlags(CLI::App& app, CommonFlags& flags);
// Registers only --log-level and the liveness timings (--beacon-interval,
// --heartbeat-interval, --suspect-timeout, --dead-timeout); part of
// AddCommonFlags, and all that fabric-relay shares with it.
void AddTimingFlags(CLI::App& app, CommonFlags& flags);

// Sets the log level from --log-level, else from FABRIC_LOG_LEVEL. Returns
// kInvalidArgument for a value that is not a level (from either).
absl::Status ApplyLogLevel(const CommonFlags& flags);

// Builds node options: defaults, then the environment (FABRIC_CLUSTER,
// FABRIC_DISCOVERY, FABRIC_INTERFACE, FABRIC_BEACON_PORT, FABRIC_SEEDS),
// then the flags. Sets the log level. Returns kInvalidArgument for bad
// values.
absl::StatusOr<NodeOptions> BuildNodeOptions(const CommonFlags& flags);

// Parses "1.5s", "200ms", "2m" or a plain number of seconds.
absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view flag,
                                                 absl::string_view text);

// Blocks SIGINT and SIGTERM in this thread and every thread started after,
// so `WaitForSignal` can take them synchronously (no async handler).
void BlockTerminationSignals();
// Waits up to `timeout` for SIGINT or SIGTERM. Returns true if one came.
bool WaitForSignal(absl::Duration timeout);

}  // namespace fabric::cli

#endif  // FABRIC_TOOLS_CLI_COMMON_FLAGS_H_
