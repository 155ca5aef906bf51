// SPDX-License-Identifier: Apache-2.0
// Multi-process discovery demo: one command starts three node processes on
// this host (alpha, beta, gamma), which find each other over loopback
// beacons. The demo narrates, SIGKILLs beta to show failure detection, stops
// gamma cleanly to show a goodbye, then shuts down. Exits 0 only if every
// step was observed, so CI runs it as a smoke test.
//
//   build/examples/discovery_demo
//
// Each node is this same binary run as `discovery_demo node name=NAME ...`
// (examples/demo_util.h): a plain fabric::Node printing its peer events.
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/demo_util.h"
#include "fabric/base/status_macros.h"
#include "fabric/node.h"

namespace {

using ::fabric::examples::Emit;
using ::fabric::examples::Fields;
using ::fabric::examples::Processes;
using ::fabric::examples::RoleNodeOptions;
using ::fabric::examples::Say;
using ::fabric::examples::WaitForStop;

// Role: run one node until SIGTERM, printing events as "<name>: <event>".
int RunNode(const Fields& args) {
  const std::string name = args.Get("name");
  fabric::NodeOptions options = RoleNodeOptions(args, name);
  // Runs on the node's event thread, one event at a time.
  options.on_peer_event = [name](const fabric::PeerEvent& e) {
    Emit("%s: peer %s %s (%s)", name.c_str(),
         std::string(fabric::PeerEventTypeName(e.type)).c_str(),
         e.peer.name.c_str(), e.reason.c_str());
  };
  absl::StatusOr<std::unique_ptr<fabric::Node>> node =
      fabric::Node::Start(std::move(options));
  if (!node.ok()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(),
                 node.status().ToString().c_str());
    return 1;
  }
  Emit("%s: started as %s on %s", name.c_str(),
       (*node)->id().ShortHex().c_str(), (*node)->mailbox_endpoint().c_str());
  WaitForStop();
  (*node)->Close();  // sends goodbye to every peer
  return 0;
}

absl::Status RunDemo() {
  std::map<std::string, int> seen;  // lines seen, by what they contain
  auto count = [&seen](const std::string& line) {
    for (const char* event :
         {"peer joined", "peer left beta", "peer left gamma (goodbye)"}) {
      if (absl::StrContains(line, event)) ++seen[event];
    }
  };
  Processes procs(
      [&count](const std::string&, const std::string& line) {
        std::printf("          %s\n", line.c_str());
        count(line);
      },
      absl::Seconds(120));
  const absl::Duration kStep = absl::Seconds(30);  // generous, never hit

  Say("Discovery demo: cluster %s, beacons on 127.255.255.255:%u",
      procs.cluster().c_str(), procs.beacon_port());
  Say("Starting three node processes: alpha, beta, gamma.");
  for (const char* name : {"alpha", "beta", "gamma"}) {
    FABRIC_RETURN_IF_ERROR(
        procs.Start(name, "node", {absl::StrCat("name=", name)}));
  }
  FABRIC_RETURN_IF_ERROR(
      procs.WaitUntil([&] { return seen["peer joined"] >= 6; }, kStep,
                      "for every node to see the two others"));
  Say("OK: every node sees the two others.");

  Say("Killing beta with SIGKILL (no goodbye).");
  const absl::Time killed = absl::Now();
  FABRIC_RETURN_IF_ERROR(procs.Kill("beta"));
  FABRIC_RETURN_IF_ERROR(
      procs.WaitUntil([&] { return seen["peer left beta"] >= 2; }, kStep,
                      "for alpha and gamma to see beta leave"));
  Say("OK: alpha and gamma detected that beta died, in %s.",
      absl::FormatDuration(
          absl::Trunc(absl::Now() - killed, absl::Milliseconds(1)))
          .c_str());

  Say("Stopping gamma cleanly (SIGTERM: it says goodbye).");
  FABRIC_RETURN_IF_ERROR(procs.StopCleanly("gamma"));
  FABRIC_RETURN_IF_ERROR(
      procs.WaitUntil([&] { return seen["peer left gamma (goodbye)"] >= 1; },
                      kStep, "for alpha to hear gamma's goodbye"));
  Say("OK: alpha heard gamma's goodbye.");
  FABRIC_RETURN_IF_ERROR(procs.StopCleanly("alpha"));
  Say("OK: every node stopped cleanly.");
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  return fabric::examples::DemoMain(
      argc, argv, {{"node", RunNode}},
      [](bool /*verbose: every line is shown anyway*/) { return RunDemo(); });
}
