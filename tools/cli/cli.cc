// SPDX-License-Identifier: Apache-2.0
#include "tools/cli/cli.h"

#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "tools/cli/commands.h"

namespace fabric::cli {
namespace {

// A node holds a few descriptors per peer; raise the soft limit to the hard
// one so hundreds of peers fit.
void RaiseFileLimit() {
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 &&
      limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

int ExitCode(const absl::Status& status) {
  if (status.ok()) return 0;
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

int Run(int argc, char** argv) {
  CLI::App app{
      "fabric: brokerless messaging over ZeroMQ.\n"
      "Common flags go before or after the verb.",
      "fabric"};
  app.require_subcommand(1);
  app.fallthrough();
  CommonFlags common;
  AddCommonFlags(app, common);

  PeersFlags peers;
  CLI::App* peers_cmd =
      app.add_subcommand("peers", "join the cluster and list the peers seen");
  peers_cmd->add_flag("--watch", peers.watch,
                      "after the list, print peer events until interrupted");
  peers_cmd->add_flag("--json", peers.json, "print JSON");
  peers_cmd->add_option("--wait", peers.wait,
                        "how long to listen before printing (default 1.5s: "
                        "one beacon interval plus handshakes)");
  peers_cmd->add_option("--min-peers", peers.min_peers,
                        "print as soon as N peers are seen; exit 1 if fewer "
                        "are seen within --wait");

  NodeFlags node;
  CLI::App* node_cmd = app.add_subcommand(
      "node", "run a plain node until interrupted, printing peer events");
  node_cmd->add_flag("--json", node.json, "print events as JSON lines");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "fabric: %s\nRun 'fabric --help' for usage.\n",
                 e.what());
    return 2;
  }
  RaiseFileLimit();
  absl::Status status;
  if (peers_cmd->parsed()) {
    status = RunPeers(common, peers);
  } else if (node_cmd->parsed()) {
    status = RunNode(common, node);
  }
  if (!status.ok()) {
    std::fprintf(stderr, "fabric: %s\n", std::string(status.message()).c_str());
  }
  return ExitCode(status);
}

}  // namespace fabric::cli
