// SPDX-License-Identifier: Apache-2.0
// `fabric node` and the event printer it shares with `fabric peers --watch`.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "fabric/base/status_macros.h"
#include "tools/cli/commands.h"
#include "tools/cli/output.h"

namespace fabric::cli {

absl::Status ApplyOffers(Node& node, const std::vector<std::string>& offers) {
  for (const std::string& offer : offers) {
    const size_t eq = offer.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == offer.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--offer wants KIND=NAME, got '", offer, "'"));
    }
    FABRIC_RETURN_IF_ERROR(
        node.SetOffer(offer.substr(0, eq), offer.substr(eq + 1), true));
  }
  return absl::OkStatus();
}

absl::StatusOr<PrintingNode> StartPrintingNode(NodeOptions options, bool json,
                                               bool print) {
  PrintingNode result;
  result.print = std::make_shared<std::atomic<bool>>(print);
  result.alive = std::make_shared<std::atomic<int>>(0);
  // The callback runs on the node's event thread, one event at a time.
  options.on_peer_event = [json, print = result.print,
                           alive = result.alive](const PeerEvent& e) {
    if (e.type == PeerEventType::kJoined) alive->fetch_add(1);
    if (e.type == PeerEventType::kLeft) alive->fetch_sub(1);
    if (!print->load()) return;
    const std::string line =
        FormatEvent(e, static_cast<size_t>(alive->load()), json) + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
  };
  FABRIC_ASSIGN_OR_RETURN(result.node, Node::Start(std::move(options)));
  result.hangup = std::make_unique<ReloadOnHangup>(result.node.get());
  return result;
}

absl::Status RunNode(const CommonFlags& common, const NodeFlags& flags) {
  FABRIC_ASSIGN_OR_RETURN(NodeOptions options, BuildNodeOptions(common));
  BlockTerminationSignals();
  FABRIC_ASSIGN_OR_RETURN(PrintingNode pn,
                          StartPrintingNode(std::move(options), flags.json,
                                            /*print=*/true));
  FABRIC_RETURN_IF_ERROR(ApplyOffers(*pn.node, common.offers));
  const std::string ready =
      FormatReadyLine(pn.node->mailbox_endpoint(), pn.node->id().ToHex(),
                      pn.node->name(), flags.json) +
      "\n";
  std::fwrite(ready.data(), 1, ready.size(), stdout);
  std::fflush(stdout);
  while (!WaitForSignal(absl::Seconds(1))) {
  }
  pn.node->Close();
  pn.node->Join();
  return absl::OkStatus();
}

}  // namespace fabric::cli
