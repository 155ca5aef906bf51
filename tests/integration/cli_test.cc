// SPDX-License-Identifier: Apache-2.0
// The `fabric` command line as a user meets it: wrong arguments exit 2 with
// a message on stderr, `fabric peers` lists running nodes as a table or as
// JSON, exits 1 when --min-peers is not reached, and honours FABRIC_* from
// the environment.
#include <stdlib.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cli_harness.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::testing::ClearFabricEnvironment;
using ::fabric::testing::Finish;
using ::fabric::testing::FreeUdpPort;
using ::fabric::testing::RunResult;
using ::fabric::testing::StatusIs;
using ::fabric::testing::Subprocess;
using ::fabric::testing::UniqueClusterName;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr absl::Duration kTimeout = absl::Seconds(30);

// Runs `fabric <args>` (no cluster flags added) to completion.
absl::StatusOr<RunResult> RunFabric(std::vector<std::string> args,
                                    std::vector<std::string> env = {}) {
  args.insert(args.begin(), FABRIC_CLI_PATH);
  absl::StatusOr<std::unique_ptr<Subprocess>> proc =
      Subprocess::Spawn(std::move(args), std::move(env));
  if (!proc.ok()) return proc.status();
  return Finish(**proc, kTimeout);
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClearFabricEnvironment();
    ASSERT_NE(beacon_port_, 0) << "no free UDP port";
  }

  std::vector<std::string> ClusterFlags() const {
    return {"--cluster", cluster_, "--beacon-port", absl::StrCat(beacon_port_)};
  }

  // Starts `fabric node --name NAME` in this test's cluster; awaits READY.
  absl::StatusOr<std::unique_ptr<Subprocess>> StartNode(
      const std::string& name, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {FABRIC_CLI_PATH, "node", "--name", name};
    for (std::string& f : ClusterFlags()) argv.push_back(std::move(f));
    for (std::string& f : extra) argv.push_back(std::move(f));
    absl::StatusOr<std::unique_ptr<Subprocess>> proc = Subprocess::Spawn(argv);
    if (!proc.ok()) return proc;
    absl::Status ready = (*proc)->WaitForReady("READY ", kTimeout).status();
    if (!ready.ok()) return ready;
    return proc;
  }

  // Asserts that `fabric <args>` fails with exit code 2 and says `needle`
  // on stderr, with nothing on stdout.
  void ExpectUsageError(std::vector<std::string> args,
                        const std::string& needle) {
    SCOPED_TRACE(absl::StrJoin(args, " "));
    FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, RunFabric(std::move(args)));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_THAT(r.err, StartsWith("fabric: "));
    EXPECT_THAT(r.err, HasSubstr(needle));
    EXPECT_EQ(r.out, "");
  }

  const std::string cluster_ = UniqueClusterName("cli");
  const uint16_t beacon_port_ = FreeUdpPort();
};

TEST_F(CliTest, UnknownFlagIsAUsageError) {
  ExpectUsageError({"node", "--bogus-flag"}, "--bogus-flag");
  ExpectUsageError({"--bogus-flag", "peers"}, "--bogus-flag");
}

TEST_F(CliTest, MissingVerbIsAUsageError) {
  ExpectUsageError({}, "a verb is required (verbs: peers, push, work,");
  ExpectUsageError(ClusterFlags(), "a verb is required");
}

TEST_F(CliTest, UnknownVerbIsNamed) {
  ExpectUsageError({"bogus"}, "unknown verb 'bogus' (verbs: peers, push,");
  std::vector<std::string> args = ClusterFlags();
  args.push_back("pusj");
  ExpectUsageError(args, "unknown verb 'pusj'");
}

TEST_F(CliTest, BadDiscoveryModeIsAUsageError) {
  ExpectUsageError({"--discovery", "bogus", "node"},
                   "unknown discovery mode 'bogus'");
  ExpectUsageError({"peers", "--discovery", "bogus"},
                   "unknown discovery mode 'bogus'");
}

TEST_F(CliTest, LanDiscoveryWithoutInterfaceIsAUsageError) {
  ExpectUsageError({"node", "--discovery", "lan"}, "--interface");
  ExpectUsageError({"peers", "--discovery", "lan"}, "--interface");
}

TEST_F(CliTest, BeaconPortOutOfRangeIsAUsageError) {
  ExpectUsageError({"node", "--beacon-port", "0"}, "--beacon-port");
  ExpectUsageError({"node", "--beacon-port", "70000"}, "--beacon-port");
  ExpectUsageError({"peers", "--beacon-port", "70000"}, "70000");
}

TEST_F(CliTest, OfferWithoutEqualsIsAUsageError) {
  std::vector<std::string> args = {"node", "--offer", "noequals"};
  for (std::string& f : ClusterFlags()) args.push_back(std::move(f));
  ExpectUsageError(args, "--offer wants KIND=NAME, got 'noequals'");
}

TEST_F(CliTest, BadDurationIsAUsageError) {
  ExpectUsageError({"peers", "--wait", "notaduration"},
                   "--wait: 'notaduration' is not a duration");
  ExpectUsageError({"node", "--dead-timeout", "soon"}, "--dead-timeout");
}

TEST_F(CliTest, HelpExitsZero) {
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, RunFabric({"--help"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("node"));
  EXPECT_THAT(r.out, HasSubstr("peers"));
  EXPECT_THAT(r.out, HasSubstr("--cluster"));
}

TEST_F(CliTest, PeersMinPeersNotReachedExitsOne) {
  std::vector<std::string> args = {"peers", "--min-peers", "1", "--wait",
                                   "0.5s"};
  for (std::string& f : ClusterFlags()) args.push_back(std::move(f));
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, RunFabric(args));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("saw 0 peers, wanted 1"));
  EXPECT_THAT(r.out, StartsWith("NAME  ID  ADDRESS  STATE  LAST-SEEN  OFFERS"));
}

TEST_F(CliTest, PeersListsRunningNodes) {
  FABRIC_ASSERT_OK_AND_ASSIGN(auto alpha, StartNode("alpha"));
  FABRIC_ASSERT_OK_AND_ASSIGN(auto beta,
                              StartNode("beta", {"--offer", "queue=images"}));
  std::vector<std::string> args = {"peers", "--min-peers", "2", "--wait",
                                   "20s"};
  for (std::string& f : ClusterFlags()) args.push_back(std::move(f));

  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult table, RunFabric(args));
  EXPECT_EQ(table.exit_code, 0) << table.err;
  std::vector<std::string> lines = absl::StrSplit(table.out, '\n');
  ASSERT_EQ(lines.size(), 3u) << table.out;
  EXPECT_THAT(lines[0], StartsWith("NAME "));
  EXPECT_THAT(lines[0], HasSubstr("OFFERS"));
  EXPECT_THAT(table.out, HasSubstr("\nalpha "));
  EXPECT_THAT(table.out, HasSubstr("\nbeta "));
  EXPECT_THAT(table.out, HasSubstr("queue:images"));
  EXPECT_THAT(table.out, HasSubstr("tcp://127.0.0.1:"));

  args.push_back("--json");
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult json, RunFabric(args));
  EXPECT_EQ(json.exit_code, 0) << json.err;
  const absl::string_view trimmed = absl::StripAsciiWhitespace(json.out);
  EXPECT_TRUE(absl::StartsWith(trimmed, "[{") && absl::EndsWith(trimmed, "}]"))
      << json.out;
  EXPECT_THAT(json.out, HasSubstr("\"name\":\"alpha\""));
  EXPECT_THAT(json.out, HasSubstr("\"name\":\"beta\""));
  EXPECT_THAT(json.out, HasSubstr("\"offers\":{\"queue\":[\"images\"]}"));
}

TEST_F(CliTest, PeersHonoursEnvironment) {
  FABRIC_ASSERT_OK_AND_ASSIGN(auto alpha, StartNode("alpha"));
  FABRIC_ASSERT_OK_AND_ASSIGN(auto beta, StartNode("beta"));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult r,
      RunFabric({"peers", "--min-peers", "2", "--wait", "20s"},
                {absl::StrCat("FABRIC_CLUSTER=", cluster_),
                 absl::StrCat("FABRIC_BEACON_PORT=", beacon_port_)}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\nalpha "));
  EXPECT_THAT(r.out, HasSubstr("\nbeta "));
}

// The nodes see the short-lived `fabric peers` come and go, tagged as a CLI.
TEST_F(CliTest, NodesSeePeersCommandJoinAndLeave) {
  FABRIC_ASSERT_OK_AND_ASSIGN(auto alpha, StartNode("alpha"));
  // A fixed listening time, not --min-peers: the probe may see alpha's
  // HELLO before its own link to alpha is connected, and leaving at that
  // moment means alpha never hears of it (seen under ASan load).
  std::vector<std::string> args = {"peers", "--wait", "3s", "--name", "probe"};
  for (std::string& f : ClusterFlags()) args.push_back(std::move(f));
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, RunFabric(args));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\nalpha "));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      size_t joined, alpha->WaitForLineContaining("joined probe ", kTimeout));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      size_t left, alpha->WaitForLineContaining("left probe ", kTimeout));
  EXPECT_LT(joined, left);
  EXPECT_THAT(alpha->StdoutLines()[left], HasSubstr("(goodbye)"));
}

}  // namespace
}  // namespace fabric
