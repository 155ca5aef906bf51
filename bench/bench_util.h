// SPDX-License-Identifier: Apache-2.0
// What every benchmark main shares: process setup, a cluster of its own on
// a free beacon port, in-process nodes that find each other quickly, and
// command-line parsing (CLI11, as the fabric CLI uses). Not fabric API;
// nothing outside bench/ uses it.
#ifndef FABRIC_BENCH_BENCH_UTIL_H_
#define FABRIC_BENCH_BENCH_UTIL_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "fabric/node.h"

namespace CLI {
class App;
}

namespace fabric::bench {

// Turns off Abseil's mutex deadlock detection, which Debian's build leaves
// on and which charges every lock a graph update; services and the fabric
// CLI turn it off too. Call first in main.
void InitBenchProcess();

// The largest value a numeric flag takes (CLI::Range(1, kMaxFlag)).
inline constexpr int kMaxFlag = 1'000'000'000;

// Parses the command line into the options registered on `app`. Returns -1
// to go on, or the exit code to return from main now (0 after --help, 2
// with a message on stderr for a bad or unknown flag).
int ParseBenchFlags(CLI::App& app, int argc, char** argv);

// A cluster name no other run uses and a beacon port of 127.0.0.1 that was
// free a moment ago. Exits with a message if no port can be had.
struct BenchCluster {
  std::string name;
  uint16_t beacon_port = 0;
};
BenchCluster NewBenchCluster(absl::string_view tag);

// Starts an in-process node of `cluster` with 200 ms beacons; exits with a
// message if it cannot.
std::unique_ptr<Node> StartBenchNode(const std::string& name,
                                     const BenchCluster& cluster);

}  // namespace fabric::bench

#endif  // FABRIC_BENCH_BENCH_UTIL_H_
