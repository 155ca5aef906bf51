// SPDX-License-Identifier: Apache-2.0
// The verbs of the `fabric` command. Each returns a Status; cli.cc turns it
// into an exit code.
#ifndef FABRIC_TOOLS_CLI_COMMANDS_H_
#define FABRIC_TOOLS_CLI_COMMANDS_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fabric/node.h"
#include "tools/cli/common_flags.h"

namespace fabric::cli {

struct PeersFlags {
  bool watch = false;
  bool json = false;
  std::string wait;   // how long to listen before printing; default 1.5s
  int min_peers = 0;  // print as soon as this many peers are alive
};

struct NodeFlags {
  bool json = false;
};

// `fabric peers`: joins the cluster, waits, prints the peers it sees; with
// --watch keeps printing events until SIGINT/SIGTERM.
absl::Status RunPeers(const CommonFlags& common, const PeersFlags& flags);

// `fabric node`: runs a plain node until SIGINT/SIGTERM, printing
// "READY <mailbox> <id> <name>" and then one line per peer event.
absl::Status RunNode(const CommonFlags& common, const NodeFlags& flags);

// A started node whose peer events are printed to stdout (when `print`),
// and counted. Shared by `node` and `peers --watch`.
struct PrintingNode {
  std::unique_ptr<Node> node;
  std::shared_ptr<std::atomic<bool>> print;
  std::shared_ptr<std::atomic<int>> alive;  // peers joined minus left
};
absl::StatusOr<PrintingNode> StartPrintingNode(NodeOptions options, bool json,
                                               bool print);

// Advertises each KIND=NAME of `offers` on `node`.
absl::Status ApplyOffers(Node& node, const std::vector<std::string>& offers);

}  // namespace fabric::cli

#endif  // FABRIC_TOOLS_CLI_COMMANDS_H_
