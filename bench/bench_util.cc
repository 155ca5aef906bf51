// SPDX-License-Identifier: Apache-2.0
#include "bench/bench_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "fabric/base/free_port.h"
#include "fabric/node_options.h"
#include "fabric/security/keys.h"

namespace fabric::bench {
namespace {

bool secure_flag = false;

[[noreturn]] void Die(const std::string& what, const absl::Status& status) {
  std::fprintf(stderr, "%s: %s\n", what.c_str(), status.ToString().c_str());
  std::exit(1);
}

std::string SlotName(size_t slot) { return absl::StrCat("node", slot); }

}  // namespace

class BenchKeys {
 public:
  // Writes `slots` keypairs (keys/nodeN.key and .pub, the .pub also in
  // roster/) and beacon.secret into a fresh directory under /tmp.
  explicit BenchKeys(size_t slots) : slots_(slots) {
    std::string pattern = "/tmp/fabric-bench-keys-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      Die("bench keys", absl::InternalError("mkdtemp failed"));
    }
    dir_ = pattern;
    ::mkdir(keys_dir().c_str(), 0700);
    ::mkdir(roster_dir().c_str(), 0755);
    security::BeaconSecrets secrets;
    secrets.secrets[1] = security::RandomBeaconSecret();
    secrets.primary = 1;
    if (absl::Status s = security::WriteBeaconSecrets(beacon_secret(), secrets);
        !s.ok()) {
      Die("bench beacon secret", s);
    }
    for (size_t i = 0; i < slots; ++i) {
      absl::StatusOr<security::CurveKeypair> k =
          security::GenerateKeypair(SlotName(i));
      if (!k.ok()) Die("bench keypair", k.status());
      if (absl::Status s = security::WriteKeypair(keys_dir(), *k, false);
          !s.ok()) {
        Die("bench keypair", s);
      }
      std::ifstream in(absl::StrCat(keys_dir(), "/", SlotName(i), ".pub"));
      std::stringstream text;
      text << in.rdbuf();
      const std::string pub =
          absl::StrCat(roster_dir(), "/", SlotName(i), ".pub");
      std::ofstream(pub) << text.str();
      ::chmod(pub.c_str(), 0644);
    }
  }
  ~BenchKeys() {
    std::error_code ignored;  // best effort: a leftover temp dir is harmless
    std::filesystem::remove_all(dir_, ignored);
  }
  BenchKeys(const BenchKeys&) = delete;
  BenchKeys& operator=(const BenchKeys&) = delete;

  size_t slots() const { return slots_; }
  std::string keys_dir() const { return dir_ + "/keys"; }
  std::string roster_dir() const { return dir_ + "/roster"; }
  std::string beacon_secret() const { return dir_ + "/beacon.secret"; }
  std::string key_file(size_t slot) const {
    return absl::StrCat(keys_dir(), "/", SlotName(slot), ".key");
  }
  size_t NextSlot() { return next_.fetch_add(1, std::memory_order_relaxed); }

 private:
  const size_t slots_;
  std::string dir_;
  std::atomic<size_t> next_{0};  // relaxed: only hands out distinct values
};

void AddSecureFlag(CLI::App& app) {
  app.add_flag("--secure", secure_flag,
               "run every fabric node in secure mode (CURVE, one key per "
               "node, signed beacons)");
}

bool BenchSecure() { return secure_flag; }

SecurityOptions BenchCluster::Security(size_t slot) const {
  SecurityOptions o;
  if (keys == nullptr) return o;
  if (slot >= keys->slots()) {
    Die("bench keys", absl::OutOfRangeError(absl::StrCat(
                          "node slot ", slot, " of ", keys->slots())));
  }
  o.key_file = keys->key_file(slot);
  o.roster_dir = keys->roster_dir();
  o.beacon_secret_file = keys->beacon_secret();
  return o;
}

std::vector<std::string> BenchCluster::SecurityFlags(size_t slot) const {
  if (keys == nullptr) return {};
  const SecurityOptions o = Security(slot);
  return {"--key",      o.key_file,        "--roster",
          o.roster_dir, "--beacon-secret", o.beacon_secret_file};
}

size_t BenchCluster::NextSlot() const {
  return keys == nullptr ? 0 : keys->NextSlot();
}

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

BenchCluster NewBenchCluster(absl::string_view tag, size_t slots) {
  static int runs = 0;
  absl::StatusOr<uint16_t> port = FreeLoopbackPort(PortKind::kUdp);
  if (!port.ok()) {
    std::fprintf(stderr, "beacon port: %s\n", port.status().ToString().c_str());
    std::exit(1);
  }
  return BenchCluster{
      absl::StrCat("bench-", tag, "-", getpid(), "-", ++runs, "-",
                   absl::ToUnixMicros(absl::Now())),
      *port, secure_flag ? std::make_shared<BenchKeys>(slots) : nullptr};
}

std::unique_ptr<Node> StartBenchNode(const std::string& name,
                                     const BenchCluster& cluster) {
  NodeOptions o;
  o.name = name;
  o.cluster = cluster.name;
  o.beacon_port = cluster.beacon_port;
  o.beacon_interval = absl::Milliseconds(200);
  o.security = cluster.Security(cluster.NextSlot());
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(std::move(o));
  if (!node.ok()) {
    std::fprintf(stderr, "node %s: %s\n", name.c_str(),
                 node.status().ToString().c_str());
    std::exit(1);
  }
  return *std::move(node);
}

}  // namespace fabric::bench
