// SPDX-License-Identifier: Apache-2.0
#include "bench/bench_util.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "fabric/base/free_port.h"
#include "fabric/node_options.h"

namespace fabric::bench {

void InitBenchProcess() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

int ParseBenchFlags(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help prints and exits 0
  }
  return -1;
}

BenchCluster NewBenchCluster(absl::string_view tag) {
  static int runs = 0;
  absl::StatusOr<uint16_t> port = FreeLoopbackPort(PortKind::kUdp);
  if (!port.ok()) {
    std::fprintf(stderr, "beacon port: %s\n", port.status().ToString().c_str());
    std::exit(1);
  }
  return BenchCluster{absl::StrCat("bench-", tag, "-", getpid(), "-", ++runs,
                                   "-", absl::ToUnixMicros(absl::Now())),
                      *port};
}

std::unique_ptr<Node> StartBenchNode(const std::string& name,
                                     const BenchCluster& cluster) {
  NodeOptions o;
  o.name = name;
  o.cluster = cluster.name;
  o.beacon_port = cluster.beacon_port;
  o.beacon_interval = absl::Milliseconds(200);
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(std::move(o));
  if (!node.ok()) {
    std::fprintf(stderr, "node %s: %s\n", name.c_str(),
                 node.status().ToString().c_str());
    std::exit(1);
  }
  return *std::move(node);
}

}  // namespace fabric::bench
