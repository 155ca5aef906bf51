// SPDX-License-Identifier: Apache-2.0
// Twenty `fabric node` processes on loopback discovery find each other: every
// one of them reports `peers=19` and has a `joined` line for each other node.
#include <stdlib.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
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
using ::fabric::testing::FreeUdpPort;
using ::fabric::testing::Remaining;
using ::fabric::testing::Subprocess;
using ::fabric::testing::UniqueClusterName;

constexpr int kNodes = 20;
// Generous: 20 processes on a loaded two-core CI machine.
constexpr absl::Duration kDeadline = absl::Seconds(60);

TEST(LoopbackDiscovery, TwentyNodesAllSeeEachOther) {
  ClearFabricEnvironment();
  const std::string cluster = UniqueClusterName("loopback");
  const uint16_t beacon_port = FreeUdpPort();
  ASSERT_NE(beacon_port, 0) << "no free UDP port";
  const absl::Time deadline = absl::Now() + kDeadline;

  std::vector<std::unique_ptr<Subprocess>> nodes;
  std::vector<std::string> names;
  for (int i = 0; i < kNodes; ++i) {
    names.push_back(absl::StrCat("n", i));
    FABRIC_ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<Subprocess> node,
        Subprocess::Spawn({FABRIC_CLI_PATH, "node", "--name", names.back(),
                           "--cluster", cluster, "--beacon-port",
                           absl::StrCat(beacon_port)}));
    nodes.push_back(std::move(node));
  }

  std::set<std::string> ids;
  for (int i = 0; i < kNodes; ++i) {
    absl::StatusOr<size_t> ready =
        nodes[i]->WaitForReady("READY ", Remaining(deadline));
    FABRIC_ASSERT_OK(ready) << names[i];
    std::vector<std::string> f =
        absl::StrSplit(nodes[i]->StdoutLines()[*ready], ' ');
    ASSERT_EQ(f.size(), 4u) << nodes[i]->StdoutLines()[*ready];
    EXPECT_THAT(f[1], ::testing::StartsWith("tcp://127.0.0.1:"));
    EXPECT_EQ(f[3], names[i]);
    ids.insert(f[2]);
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kNodes)) << "ids must be unique";

  const std::string full = absl::StrCat(" peers=", kNodes - 1, " ");
  for (int i = 0; i < kNodes; ++i) {
    FABRIC_EXPECT_OK(nodes[i]->WaitForLineContaining(full, Remaining(deadline)))
        << names[i] << " did not see all " << kNodes - 1 << " others";
  }

  for (int i = 0; i < kNodes; ++i) {
    std::set<std::string> joined;
    for (const std::string& line : nodes[i]->StdoutLines()) {
      std::vector<std::string> f = absl::StrSplit(line, ' ');
      if (f.size() > 2 && f[0] == "joined") joined.insert(f[1]);
    }
    std::set<std::string> others(names.begin(), names.end());
    others.erase(names[i]);
    EXPECT_EQ(joined, others) << names[i] << ":\n"
                              << absl::StrJoin(nodes[i]->StdoutLines(), "\n");
  }
}

}  // namespace
}  // namespace fabric
