// SPDX-License-Identifier: Apache-2.0
// What every benchmark main shares: process setup, a cluster of its own on
// a free beacon port, in-process nodes that find each other quickly, and
// command-line parsing (CLI11, as the fabric CLI uses). Not fabric API;
// nothing outside bench/ uses it.
#ifndef FABRIC_BENCH_BENCH_UTIL_H_
#define FABRIC_BENCH_BENCH_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "fabric/node.h"
#include "fabric/node_options.h"

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

// Registers `--secure` on `app`: every fabric node of the run is then in
// secure mode (CURVE on every socket, a roster, signed beacons), so the
// same bench compares plaintext (NULL) with CURVE. Raw libzmq yardsticks
// stay plaintext.
void AddSecureFlag(CLI::App& app);
// True when `--secure` was given.
bool BenchSecure();

// The key material of one secure bench cluster, in a temporary directory
// removed when the last `BenchCluster` copy holding it goes: one CURVE
// keypair per node slot (all in the roster before any node starts, so no
// node is refused while the others' roster reloads) and one beacon secret.
class BenchKeys;

// A cluster name no other run uses and a beacon port of 127.0.0.1 that was
// free a moment ago; in a `--secure` run, also its key material. Copies
// share the key material. Thread safety: thread-compatible.
struct BenchCluster {
  std::string name;
  uint16_t beacon_port = 0;
  std::shared_ptr<BenchKeys> keys;  // null in plaintext runs

  // Secure options for node slot `slot` (its own keypair); off in
  // plaintext runs. REQUIRES: slot < the slots the cluster was made with.
  SecurityOptions Security(size_t slot) const;
  // The same as `fabric` command-line flags (--key, --roster,
  // --beacon-secret); empty in plaintext runs.
  std::vector<std::string> SecurityFlags(size_t slot) const;
  // Hands out slots 0, 1, 2 ... in turn, for `StartBenchNode`.
  size_t NextSlot() const;
};
// Makes a cluster with key material for `slots` nodes when `--secure` was
// given. Exits with a message if no port or no key can be had.
BenchCluster NewBenchCluster(absl::string_view tag, size_t slots = 16);

// Starts an in-process node of `cluster` with 200 ms beacons, in secure
// mode under the next free slot's key in a `--secure` run; exits with a
// message if it cannot.
std::unique_ptr<Node> StartBenchNode(const std::string& name,
                                     const BenchCluster& cluster);

}  // namespace fabric::bench

#endif  // FABRIC_BENCH_BENCH_UTIL_H_
