// SPDX-License-Identifier: Apache-2.0
// Seeds discovery across processes: no beacons, one node with a fixed
// mailbox port is the seed, and the others learn about each other by gossip
// through it, also when the seed comes up after them.
#include <stdlib.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::testing::ClearFabricEnvironment;
using ::fabric::testing::FreeTcpPort;
using ::fabric::testing::FreeUdpPort;
using ::fabric::testing::Remaining;
using ::fabric::testing::Subprocess;
using ::fabric::testing::UniqueClusterName;

constexpr int kOthers = 5;
constexpr absl::Duration kDeadline = absl::Seconds(60);

class SeedsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClearFabricEnvironment();
    ASSERT_NE(seed_port_, 0) << "no free TCP port";
  }

  // Starts `fabric node --name NAME --cluster C --seed SEED [--discovery
  // seeds] <extra>` (without `--seed SEED` when `use_seed` is false) and
  // awaits its READY line.
  absl::StatusOr<std::unique_ptr<Subprocess>> StartNode(
      const std::string& name, bool explicit_mode,
      std::vector<std::string> extra = {}, bool use_seed = true) {
    std::vector<std::string> argv = {FABRIC_CLI_PATH, "node",  "--name", name,
                                     "--cluster",     cluster_};
    if (use_seed) {
      argv.push_back("--seed");
      argv.push_back(seed_);
    }
    if (explicit_mode) {
      argv.push_back("--discovery");
      argv.push_back("seeds");
    }
    for (std::string& flag : extra) argv.push_back(std::move(flag));
    absl::StatusOr<std::unique_ptr<Subprocess>> proc = Subprocess::Spawn(argv);
    if (!proc.ok()) return proc;
    absl::Status ready =
        (*proc)->WaitForReady("READY ", Remaining(deadline_)).status();
    if (!ready.ok()) return ready;
    names_.push_back(name);
    return proc;
  }

  absl::StatusOr<std::unique_ptr<Subprocess>> StartSeed(bool explicit_mode) {
    absl::StatusOr<std::unique_ptr<Subprocess>> seed =
        StartNode("seed", explicit_mode, {"--port", absl::StrCat(seed_port_)});
    if (seed.ok() && !absl::StrContains((*seed)->StdoutLines()[0],
                                        absl::StrCat(" ", seed_, " "))) {
      return absl::InternalError(absl::StrCat("seed is not at ", seed_, ": ",
                                              (*seed)->StdoutLines()[0]));
    }
    return seed;
  }

  // Every node reports all the others, each joined exactly by name.
  void ExpectFullMesh(const std::vector<Subprocess*>& nodes) {
    const int others = static_cast<int>(nodes.size()) - 1;
    for (size_t i = 0; i < nodes.size(); ++i) {
      FABRIC_EXPECT_OK(nodes[i]->WaitForLineContaining(
          absl::StrCat(" peers=", others, " "), Remaining(deadline_)))
          << nodes[i]->label();
    }
    std::set<std::string> all(names_.begin(), names_.end());
    for (size_t i = 0; i < nodes.size(); ++i) {
      std::set<std::string> joined;
      for (const std::string& line : nodes[i]->StdoutLines()) {
        std::vector<std::string> f = absl::StrSplit(line, ' ');
        if (f.size() > 3 && f[0] == "joined") {
          joined.insert(f[1]);
          // Seeds mode on one host: every mailbox is on loopback.
          EXPECT_THAT(f[3], ::testing::StartsWith("tcp://127.0.0.1:"));
        }
      }
      std::set<std::string> expected = all;
      expected.erase(names_[i]);
      EXPECT_EQ(joined, expected)
          << names_[i] << ":\n"
          << absl::StrJoin(nodes[i]->StdoutLines(), "\n");
    }
  }

  // A free UDP port for the beacon-mode nodes of one test.
  std::string BeaconPort() {
    if (beacon_port_ == 0) beacon_port_ = FreeUdpPort();
    return absl::StrCat(beacon_port_);
  }

  const std::string cluster_ = UniqueClusterName("seeds");
  const uint16_t seed_port_ = FreeTcpPort();
  const std::string seed_ = absl::StrCat("tcp://127.0.0.1:", seed_port_);
  const absl::Time deadline_ = absl::Now() + kDeadline;
  std::vector<std::string> names_;  // in start order
  uint16_t beacon_port_ = 0;
};

TEST_F(SeedsTest, NodesLearnEachOtherThroughTheSeed) {
  std::vector<std::unique_ptr<Subprocess>> procs;
  // The seed lists itself as its seed: the same command line works for all.
  FABRIC_ASSERT_OK_AND_ASSIGN(auto seed, StartSeed(/*explicit_mode=*/true));
  procs.push_back(std::move(seed));
  for (int i = 0; i < kOthers; ++i) {
    FABRIC_ASSERT_OK_AND_ASSIGN(
        auto node, StartNode(absl::StrCat("n", i), /*explicit_mode=*/true));
    procs.push_back(std::move(node));
  }
  std::vector<Subprocess*> nodes;
  for (auto& p : procs) nodes.push_back(p.get());
  ExpectFullMesh(nodes);
}

TEST_F(SeedsTest, SeedFlagAloneImpliesSeedsMode) {
  std::vector<std::unique_ptr<Subprocess>> procs;
  FABRIC_ASSERT_OK_AND_ASSIGN(auto seed, StartSeed(/*explicit_mode=*/false));
  procs.push_back(std::move(seed));
  for (int i = 0; i < kOthers; ++i) {
    FABRIC_ASSERT_OK_AND_ASSIGN(
        auto node, StartNode(absl::StrCat("n", i), /*explicit_mode=*/false));
    procs.push_back(std::move(node));
  }
  std::vector<Subprocess*> nodes;
  for (auto& p : procs) nodes.push_back(p.get());
  ExpectFullMesh(nodes);
}

TEST_F(SeedsTest, NodesStartedBeforeTheSeedFindItWhenItComesUp) {
  std::vector<std::unique_ptr<Subprocess>> procs;
  for (int i = 0; i < kOthers; ++i) {
    FABRIC_ASSERT_OK_AND_ASSIGN(
        auto node, StartNode(absl::StrCat("n", i), /*explicit_mode=*/true));
    procs.push_back(std::move(node));
  }
  // Nobody to talk to yet: the others keep retrying the seed.
  FABRIC_ASSERT_OK_AND_ASSIGN(auto seed, StartSeed(/*explicit_mode=*/true));
  procs.push_back(std::move(seed));
  std::vector<Subprocess*> nodes;
  for (auto& p : procs) nodes.push_back(p.get());
  ExpectFullMesh(nodes);
}

// The seed runs in loopback (beacon) mode with a fixed port: nodes that
// broadcast find it and each other by beacons, nodes that cannot find it by
// its endpoint, and it introduces each group to the other, including beacon
// nodes that start after the seeds-mode ones joined.
TEST_F(SeedsTest, BeaconNodeIsTheSeedOfNodesThatCannotBroadcast) {
  std::vector<std::unique_ptr<Subprocess>> procs;
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto seed, StartNode("seed", /*explicit_mode=*/false,
                           {"--discovery", "loopback", "--beacon-port",
                            BeaconPort(), "--port", absl::StrCat(seed_port_)},
                           /*use_seed=*/false));
  procs.push_back(std::move(seed));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto b0,
      StartNode("b0", /*explicit_mode=*/false,
                {"--discovery", "loopback", "--beacon-port", BeaconPort()},
                /*use_seed=*/false));
  procs.push_back(std::move(b0));
  for (int i = 0; i < 2; ++i) {
    FABRIC_ASSERT_OK_AND_ASSIGN(
        auto node, StartNode(absl::StrCat("s", i), /*explicit_mode=*/true));
    procs.push_back(std::move(node));
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto b1,
      StartNode("b1", /*explicit_mode=*/false,
                {"--discovery", "loopback", "--beacon-port", BeaconPort()},
                /*use_seed=*/false));
  procs.push_back(std::move(b1));
  std::vector<Subprocess*> nodes;
  for (auto& p : procs) nodes.push_back(p.get());
  ExpectFullMesh(nodes);
}

}  // namespace
}  // namespace fabric
