// SPDX-License-Identifier: Apache-2.0
// A real file system filling up under a running `fabric push` (docs/spool.md
// section 9): a 1 MiB tmpfs, mounted in a mount namespace of the test's own
// (unshare(1), so nothing outside ever sees it and it vanishes with the
// processes), holds the spool while the producer pushes 1 KiB tasks with no
// worker. The push must fail with "spool disk full" and exit 1, having
// confirmed only what is in the spool. The tmpfs is then grown (a remount)
// and a second push on the same spool, with a worker running, delivers
// every task the first one confirmed, exactly once, and its own ones.
// Skipped with a message when the machine cannot make a mount namespace or
// mount a tmpfs (no root, or a container without CAP_SYS_ADMIN).
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/cli_harness.h"
#include "tests/testing/subprocess.h"

namespace fabric {
namespace {

using ::fabric::testing::CliCluster;
using ::fabric::testing::Finish;
using ::fabric::testing::RunResult;
using ::fabric::testing::Subprocess;

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Quotes `s` for sh.
std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// Runs `script` with sh inside a new private mount namespace.
absl::StatusOr<RunResult> InMountNamespace(const std::string& script) {
  absl::StatusOr<std::unique_ptr<Subprocess>> proc =
      Subprocess::Spawn({"/usr/bin/unshare", "--mount", "--propagation",
                         "private", "/bin/sh", "-c", script});
  if (!proc.ok()) return proc.status();
  return Finish(**proc, absl::Seconds(120));
}

TEST(DiskFull, PushesOnAFullTmpfsFailCleanlyAndResumeWhenItGrows) {
  CliCluster cluster("diskfull");
  ASSERT_TRUE(cluster.usable());
  const std::string mnt = cluster.dir() + "/mnt";
  std::filesystem::create_directories(mnt);
  {
    absl::StatusOr<RunResult> probe =
        InMountNamespace(absl::StrCat("mount -t tmpfs -o size=64k tmpfs ",
                                      Quote(mnt), " && umount ", Quote(mnt)));
    if (!probe.ok() || probe->exit_code != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs in a mount namespace here ("
                   << (probe.ok() ? probe->err : probe.status().ToString())
                   << "): skipped";
    }
  }
  const std::string spool = mnt + "/spool";
  const std::string flags = absl::StrJoin(cluster.ClusterFlags(), " ");
  const std::string fabric = Quote(FABRIC_CLI_PATH);
  const std::string out = cluster.dir();
  // Phase 1: push until the disk is full, no worker. Phase 2: grow the
  // tmpfs, start a worker, push 10 more on the same spool and wait for
  // every task to be acked.
  const std::string script = absl::StrCat(
      "set -u\n", "mount -t tmpfs -o size=1m tmpfs ", Quote(mnt),
      " || exit 90\n", fabric, " push jobs --count 2000 --size 1k --spool ",
      Quote(spool), " --progress 0 ", flags, " >", Quote(out + "/push1.out"),
      " 2>", Quote(out + "/push1.err"), "\n", "echo $? >",
      Quote(out + "/push1.code"), "\n", fabric, " spool inspect ", Quote(spool),
      " --json >", Quote(out + "/inspect1.json"), " 2>&1\n",
      "mount -o remount,size=64m ", Quote(mnt), " || exit 91\n", fabric,
      " work jobs --json ", flags, " >", Quote(out + "/work.out"), " 2>",
      Quote(out + "/work.err"), " &\n", "worker=$!\n", fabric,
      " push jobs --count 10 --size 1k --header run=2 --spool ", Quote(spool),
      " --wait-acked --timeout 60s --progress 0 ", flags, " >",
      Quote(out + "/push2.out"), " 2>", Quote(out + "/push2.err"), "\n",
      "echo $? >", Quote(out + "/push2.code"), "\n",
      "kill -TERM $worker; wait $worker\n", "umount ", Quote(mnt), "\n");
  absl::StatusOr<RunResult> run = InMountNamespace(script);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->exit_code, 0) << run->err;

  // Phase 1: a clean failure naming the full disk.
  const std::string push1_err = ReadText(out + "/push1.err");
  EXPECT_EQ(ReadText(out + "/push1.code"), "1\n") << push1_err;
  EXPECT_TRUE(absl::StrContains(push1_err, "spool disk full")) << push1_err;
  nlohmann::json inspect =
      nlohmann::json::parse(ReadText(out + "/inspect1.json"), nullptr, false);
  ASSERT_FALSE(inspect.is_discarded()) << ReadText(out + "/inspect1.json");
  const int64_t pending = inspect.value("pending", -1);
  ASSERT_GT(pending, 0) << "nothing was confirmed before the disk filled";
  ASSERT_LT(pending, 2000);
  // What push 1 says it confirmed is what the spool holds.
  const std::string push1_out = ReadText(out + "/push1.out");
  EXPECT_TRUE(
      absl::StrContains(push1_out, absl::StrCat(" confirmed ", pending, " ")))
      << push1_out << "\nspool holds " << pending;

  // Phase 2: every confirmed task of push 1 delivered once, and push 2's.
  EXPECT_EQ(ReadText(out + "/push2.code"), "0\n")
      << ReadText(out + "/push2.err");
  std::map<uint64_t, int> first, second;
  for (absl::string_view line :
       absl::StrSplit(ReadText(out + "/work.out"), '\n')) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("seq")) continue;
    const bool run2 =
        j.contains("headers") && j["headers"].value("run", "") == "2";
    (run2 ? second : first)[j["seq"].get<uint64_t>()]++;
  }
  EXPECT_EQ(static_cast<int64_t>(first.size()), pending);
  EXPECT_EQ(second.size(), 10u);
  for (const auto& [seq, n] : first) EXPECT_EQ(n, 1) << "seq " << seq;
  for (const auto& [seq, n] : second) EXPECT_EQ(n, 1) << "seq " << seq;
}

}  // namespace
}  // namespace fabric
