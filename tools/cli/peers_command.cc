// SPDX-License-Identifier: Apache-2.0
// `fabric peers [--watch] [--json] [--wait DURATION] [--min-peers N]`.
#include <cstdio>

#include "absl/time/clock.h"
#include "fabric/base/status_macros.h"
#include "tools/cli/commands.h"
#include "tools/cli/output.h"

namespace fabric::cli {
namespace {

// One beacon interval (1 s) lets every node's next beacon reach us; the
// rest covers the TCP and HELLO round trips on a loaded host.
constexpr absl::Duration kDefaultWait = absl::Milliseconds(1500);

void Print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

}  // namespace

absl::Status RunPeers(const CommonFlags& common, const PeersFlags& flags) {
  absl::Duration wait = kDefaultWait;
  if (!flags.wait.empty()) {
    FABRIC_ASSIGN_OR_RETURN(wait, ParseDurationFlag("--wait", flags.wait));
  }
  if (flags.min_peers < 0) {
    return absl::InvalidArgumentError("--min-peers must not be negative");
  }
  FABRIC_ASSIGN_OR_RETURN(NodeOptions options, BuildNodeOptions(common));
  options.headers.emplace("fabric.role", "cli");
  BlockTerminationSignals();
  FABRIC_ASSIGN_OR_RETURN(
      PrintingNode pn,
      StartPrintingNode(std::move(options), flags.json, /*print=*/false));
  FABRIC_RETURN_IF_ERROR(ApplyOffers(*pn.node, common.offers));

  const absl::Time deadline = absl::Now() + wait;
  bool interrupted = false;
  while (absl::Now() < deadline) {
    if (flags.min_peers > 0 && pn.alive->load() >= flags.min_peers) break;
    if (WaitForSignal(
            std::min(absl::Milliseconds(50), deadline - absl::Now()))) {
      interrupted = true;
      break;
    }
  }
  FABRIC_ASSIGN_OR_RETURN(std::vector<PeerInfo> peers, pn.node->Peers());
  Print(flags.json ? FormatPeerJson(peers, absl::Now())
                   : FormatPeerTable(peers, absl::Now()));
  if (flags.watch && !interrupted) {
    pn.print->store(true);
    while (!WaitForSignal(absl::Seconds(1))) {
    }
  }
  pn.node->Close();
  pn.node->Join();
  if (flags.min_peers > 0 && static_cast<int>(peers.size()) < flags.min_peers) {
    return absl::DeadlineExceededError(
        absl::StrCat("saw ", peers.size(), " peers, wanted ", flags.min_peers,
                     " within ", absl::FormatDuration(wait)));
  }
  return absl::OkStatus();
}

}  // namespace fabric::cli
