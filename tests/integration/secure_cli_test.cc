// SPDX-License-Identifier: Apache-2.0
// Secure mode through the real `fabric` and `fabric-relay` binaries on
// loopback (docs/security.md; plan S3 and S4 of security-anchors.md at the
// CLI level): every pattern end to end (push/work with acks, req/serve,
// pub/sub, a durable topic replayed), `peers --json` showing key
// fingerprints, plaintext and secure nodes of one cluster name and beacon
// port never handing each other a task in either direction (each with its
// positive control), a roster edit plus SIGHUP cutting a peer off, and the
// relay bridging a plaintext and a secure side. Key files, secret hygiene
// and `fabric security check` are in secure_cli_files_test.cc.
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cli_harness.h"
#include "tests/testing/secure_cli_harness.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::testing::CliCluster;
using ::fabric::testing::Fingerprint;
using ::fabric::testing::kSecureWait;
using ::fabric::testing::LinesStarting;
using ::fabric::testing::RunResult;
using ::fabric::testing::Subprocess;
using ::fabric::testing::TaskBodies;
using ::fabric::testing::WaitUntil;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAreArray;

// How long a push may look for a worker it must never reach. Discovery at
// the 300 ms beacon interval of the harness takes well under a second, so
// a peer it could reach would have had its tasks long before.
constexpr char kNegativeWindow[] = "4s";

std::vector<std::string> Bodies(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i <= to; ++i) out.push_back(absl::StrCat("msg-", i));
  return out;
}

// "pushed P confirmed C acked A dead D recovered R" as a map.
std::map<std::string, int64_t> PushSummary(const std::string& out) {
  std::map<std::string, int64_t> m;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (!absl::StartsWith(line, "pushed ")) continue;
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    for (size_t i = 0; i + 1 < f.size(); i += 2) {
      int64_t v = 0;
      if (absl::SimpleAtoi(f[i + 1], &v)) m[f[i]] = v;
    }
  }
  return m;
}

class SecureCliTest : public testing::SecureCliFixture {
 protected:
  // Runs a push of `count` generated tasks and expects every one acked.
  void PushAll(std::vector<std::string> args, int count) {
    args.insert(args.begin(), {"push", "jobs", "--count", absl::StrCat(count),
                               "--wait-acked", "--timeout", "40s"});
    FABRIC_ASSERT_OK_AND_ASSIGN(RunResult push, Run(std::move(args)));
    ASSERT_EQ(push.exit_code, 0) << push.out << push.err;
    EXPECT_EQ(PushSummary(push.out)["acked"], count) << push.out;
  }
  // Runs a push that must find no worker within kNegativeWindow: it exits 1
  // with nothing acked.
  void PushNoneTaken(std::vector<std::string> args) {
    args.insert(args.begin(), {"push", "jobs", "--count", "10", "--timeout",
                               kNegativeWindow});
    FABRIC_ASSERT_OK_AND_ASSIGN(RunResult push, Run(std::move(args)));
    EXPECT_EQ(push.exit_code, 1) << push.out << push.err;
    EXPECT_THAT(push.err, HasSubstr("--timeout passed while waiting for acks"));
    EXPECT_EQ(PushSummary(push.out)["acked"], 0) << push.out;
  }
  static bool SawTasks(const Subprocess& worker, size_t n) {
    return WaitUntil([&] { return TaskBodies(worker).size() >= n; },
                     kSecureWait);
  }
};

TEST_F(SecureCliTest, PushAndWorkAckEveryTask) {
  Members({"p", "w"});
  FABRIC_ASSERT_OK_AND_ASSIGN(Subprocess * worker,
                              Start(As("w", {"work", "jobs", "--name", "w"})));
  PushAll(As("p", {"--name", "p"}), 200);
  ASSERT_TRUE(SawTasks(*worker, 200));
  EXPECT_THAT(TaskBodies(*worker), UnorderedElementsAreArray(Bodies(1, 200)));
}

TEST_F(SecureCliTest, RequestReply) {
  Members({"s", "c"});
  FABRIC_ASSERT_OK(
      Start(As("s", {"serve", "echo", "--echo", "--name", "s"})).status());
  // The key file goes before the verb: after `req`, --key is the
  // idempotency key.
  std::vector<std::string> args = Secure("c");
  for (const char* a : {"req", "echo", "hello over curve", "--timeout", "20s",
                        "--key", "call-1"}) {
    args.push_back(a);
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, Run(args));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hello over curve");

  // A key file given after the verb is taken for the idempotency key: a
  // usage error that says so, not a secure node without a key.
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult misplaced,
      Run(As("c", {"req", "echo", "hi", "--timeout", "20s"})));
  EXPECT_EQ(misplaced.exit_code, 2) << misplaced.err;
  EXPECT_THAT(misplaced.err,
              HasSubstr("after `req`, --key is the idempotency key"));
}

TEST_F(SecureCliTest, PublishSubscribe) {
  Members({"pub", "sub"});
  FABRIC_ASSERT_OK_AND_ASSIGN(
      Subprocess * sub,
      Start(As("sub", {"sub", "news.", "--count", "100", "--name", "sub"})));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult pub,
      Run(As("pub", {"pub", "news.x", "--count", "100", "--wait-subscribers",
                     "1", "--wait-timeout", "30s", "--name", "pub"})));
  ASSERT_EQ(pub.exit_code, 0) << pub.err;
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult got, testing::Finish(*sub));
  ASSERT_EQ(got.exit_code, 0) << got.err;
  std::vector<std::string> bodies;
  for (const std::string& line : got.lines) {
    if (absl::StartsWith(line, "news.x ")) {
      bodies.push_back(line.substr(line.rfind(' ') + 1));
    }
  }
  EXPECT_EQ(bodies, Bodies(1, 100));
}

// A durable subscriber started after the publisher finished replays what
// was published before it existed, from the publisher's topic log.
TEST_F(SecureCliTest, DurableTopicReplaysToALateSubscriber) {
  Members({"pub", "late"});
  const std::string log = cli_.dir() + "/topics";
  FABRIC_ASSERT_OK_AND_ASSIGN(
      Subprocess * pub,
      Start(As("pub", {"pub", "audit.log", "--durable", "--spool", log,
                       "--count", "300", "--stay", "--name", "pub"})));
  ASSERT_TRUE(WaitUntil(
      [&] { return absl::StrContains(pub->Stderr(), "300 published"); },
      kSecureWait))
      << pub->Stderr();
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult r,
      Run(As("late", {"sub", "audit.", "--durable", "billing", "--state-dir",
                      cli_.dir() + "/subs", "--from", "earliest", "--count",
                      "300", "--name", "late"})));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> replayed;
  for (const std::string& line : r.lines) {
    if (absl::StartsWith(line, "audit.log ") &&
        absl::StrContains(line, " (replay) ")) {
      replayed.push_back(line.substr(line.rfind(' ') + 1));
    }
  }
  EXPECT_EQ(replayed, Bodies(1, 300)) << r.out;
  EXPECT_THAT(r.err, HasSubstr("(300 replayed)"));
}

// `peers --json` names the key each peer authenticated with and the beacon
// key id it sends under; a plaintext cluster's peers have neither.
TEST_F(SecureCliTest, PeersJsonShowsKeyFingerprints) {
  Members({"a", "b", "observer"});
  FABRIC_ASSERT_OK(Start(As("a", {"node", "--name", "a"})).status());
  FABRIC_ASSERT_OK(Start(As("b", {"node", "--name", "b"})).status());
  // A peer's beacon key id is known from its first beacon after it
  // joined: listen a few beacon intervals, again until both show one.
  nlohmann::json peers;
  const absl::Time deadline = absl::Now() + kSecureWait;
  do {
    FABRIC_ASSERT_OK_AND_ASSIGN(
        RunResult r, Run(As("observer", {"peers", "--json", "--wait", "2s",
                                         "--name", "observer"})));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    peers = nlohmann::json::parse(r.out);
  } while ((peers.size() < 2 || !peers[0].contains("beacon_key_id") ||
            !peers[1].contains("beacon_key_id")) &&
           absl::Now() < deadline);
  ASSERT_EQ(peers.size(), 2u) << peers;
  for (const nlohmann::json& p : peers) {
    const std::string name = p["name"];
    EXPECT_EQ(p["key"], Fingerprint(keys_, name)) << p;
    EXPECT_EQ(p["beacon_key_id"], 1) << p;
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult table, Run(As("observer", {"peers", "--min-peers", "2",
                                           "--wait", "20s", "--name", "o2"})));
  EXPECT_THAT(table.out, HasSubstr("KEY"));
  EXPECT_THAT(table.out, HasSubstr(Fingerprint(keys_, "a")));

  // Control: the same in plaintext, another cluster.
  CliCluster plain("secure-cli-plain");
  ASSERT_TRUE(plain.usable());
  FABRIC_ASSERT_OK(StartOn(plain, {"node", "--name", "pa"}).status());
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult pr,
      plain.Run({"peers", "--json", "--min-peers", "1", "--wait", "20s"}));
  ASSERT_EQ(pr.exit_code, 0) << pr.err;
  const nlohmann::json plain_peers = nlohmann::json::parse(pr.out);
  ASSERT_EQ(plain_peers.size(), 1u) << pr.out;
  EXPECT_FALSE(plain_peers[0].contains("key")) << pr.out;
  EXPECT_FALSE(plain_peers[0].contains("beacon_key_id")) << pr.out;
}

// S3 at the CLI level: one cluster name and beacon port, plaintext and
// secure processes. Each kind of push reaches only its own kind of worker,
// both ways; each negative runs next to a positive control showing the
// worker it misses was there and reachable by its own kind.
TEST_F(SecureCliTest, PlaintextAndSecureNeverShareTasks) {
  Members({"sp", "sw"});
  // A plaintext worker alone: a secure push gets no task to it, a
  // plaintext push gets all of them.
  FABRIC_ASSERT_OK_AND_ASSIGN(Subprocess * plain_w,
                              Start({"work", "jobs", "--name", "plain-w"}));
  PushNoneTaken(As("sp", {"--name", "sp"}));
  PushAll({"--name", "pp"}, 10);
  ASSERT_TRUE(SawTasks(*plain_w, 10));
  plain_w->Signal(SIGTERM);
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult plain_w_done,
                              testing::Finish(*plain_w));
  EXPECT_EQ(plain_w_done.exit_code, 0) << plain_w_done.err;
  EXPECT_EQ(TaskBodies(*plain_w).size(), 10u) << plain_w_done.out;

  // A secure worker alone: the reverse.
  FABRIC_ASSERT_OK_AND_ASSIGN(
      Subprocess * secure_w,
      Start(As("sw", {"work", "jobs", "--name", "secure-w"})));
  PushNoneTaken({"--name", "pp2"});
  EXPECT_THAT(TaskBodies(*secure_w), IsEmpty());
  PushAll(As("sp", {"--name", "sp2"}), 10);
  ASSERT_TRUE(SawTasks(*secure_w, 10));

  // Both at once, 100 tasks from each kind: every one to its own kind.
  FABRIC_ASSERT_OK_AND_ASSIGN(Subprocess * plain_w2,
                              Start({"work", "jobs", "--name", "plain-w2"}));
  PushAll(As("sp", {"--name", "sp3"}), 100);
  PushAll({"--name", "pp3"}, 100);
  ASSERT_TRUE(SawTasks(*secure_w, 110));
  ASSERT_TRUE(SawTasks(*plain_w2, 100));
  EXPECT_EQ(TaskBodies(*secure_w).size(), 110u);
  EXPECT_EQ(TaskBodies(*plain_w2).size(), 100u);
  std::set<std::string> producers;  // "task <producer>:<seq> ..."
  for (const Subprocess* w : {secure_w, plain_w2}) {
    std::set<std::string> mine;
    for (const std::string& line : LinesStarting(*w, "task ")) {
      mine.insert(line.substr(5, line.find(':') - 5));
    }
    // Each worker saw one producer of the mixed round, never both.
    for (const std::string& p : mine) {
      EXPECT_TRUE(producers.insert(p).second) << p << " reached both";
    }
  }
}

// S4 through the CLI: a's roster loses b's key and a gets SIGHUP; a logs
// the reload and sees b leave, and b does not come back.
TEST_F(SecureCliTest, RosterEditAndSighupCutAPeerOff) {
  Members({"a", "b"});
  const std::string roster_a = keys_.MakeRoster("a");
  const std::string roster_b = keys_.MakeRoster("b");
  for (const std::string& r : {roster_a, roster_b}) {
    keys_.AddToRoster("a", r);
    keys_.AddToRoster("b", r);
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(
      Subprocess * a,
      Start(As("a", {"node", "--name", "a", "--log-level", "info"}, roster_a)));
  FABRIC_ASSERT_OK(Start(As("b", {"node", "--name", "b"}, roster_b)).status());
  FABRIC_ASSERT_OK(
      a->WaitForLine(
           [](absl::string_view l) { return absl::StartsWith(l, "joined b "); },
           kSecureWait)
          .status());

  keys_.RemoveFromRoster("b", roster_a);
  a->Signal(SIGHUP);
  // Whichever reload cuts b off first, the SIGHUP one or the periodic
  // check, SIGHUP is handled (logged) and a stays up.
  EXPECT_TRUE(WaitUntil(
      [&] {
        return absl::StrContains(a->Stderr(),
                                 "FAB-SEC-SIGHUP a: roster reloaded");
      },
      kSecureWait))
      << a->Stderr();
  FABRIC_ASSERT_OK_AND_ASSIGN(
      const size_t left,
      a->WaitForLine(
          [](absl::string_view l) { return absl::StartsWith(l, "left b "); },
          kSecureWait));
  // b keeps beaconing and dialing; a never takes it back. Two roster checks
  // and many beacon intervals.
  EXPECT_FALSE(
      a->WaitForLine(
           [](absl::string_view l) { return absl::StartsWith(l, "joined b "); },
           absl::Seconds(5), left)
          .ok())
      << absl::StrJoin(a->StdoutLines(), "\n");
  EXPECT_THAT(a->Wait(absl::ZeroDuration()),
              testing::StatusIs(absl::StatusCode::kDeadlineExceeded));
}

// The relay as the trust boundary between a plaintext side (a) and a
// secure one (b): a task pushed in plaintext is worked on by a secure
// worker, and SIGHUP reloads the secure side's roster only.
TEST_F(SecureCliTest, RelayBridgesAPlaintextAndASecureSide) {
  Members({"relay", "w"});
  CliCluster plain("secure-relay-a");
  ASSERT_TRUE(plain.usable());
  std::vector<std::string> argv = {FABRIC_RELAY_PATH,
                                   "--name",
                                   "r",
                                   "--a-cluster",
                                   plain.cluster(),
                                   "--a-beacon-port",
                                   absl::StrCat(plain.beacon_port()),
                                   "--b-cluster",
                                   cli_.cluster(),
                                   "--b-beacon-port",
                                   absl::StrCat(cli_.beacon_port()),
                                   "--b-key",
                                   keys_.key_file("relay"),
                                   "--b-roster",
                                   keys_.roster_dir(),
                                   "--b-beacon-secret",
                                   keys_.beacon_secret_file(),
                                   "--beacon-interval",
                                   "300ms",
                                   "--queue",
                                   "jobs",
                                   "--state-dir",
                                   cli_.dir() + "/relay",
                                   "--log-level",
                                   "info"};
  FABRIC_ASSERT_OK_AND_ASSIGN(Subprocess * relay,
                              Keep(Subprocess::Spawn(argv), "READY tcp://"));
  FABRIC_ASSERT_OK_AND_ASSIGN(Subprocess * worker,
                              Start(As("w", {"work", "jobs", "--name", "w"})));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult push,
      plain.Run({"push", "jobs", "--count", "50", "--wait-acked", "--timeout",
                 "40s", "--name", "plain-producer"}));
  ASSERT_EQ(push.exit_code, 0) << push.out << push.err;
  ASSERT_TRUE(SawTasks(*worker, 50));
  EXPECT_THAT(TaskBodies(*worker), UnorderedElementsAreArray(Bodies(1, 50)));

  relay->Signal(SIGHUP);
  ASSERT_TRUE(WaitUntil(
      [&] { return absl::StrContains(relay->Stderr(), "FAB-SEC-SIGHUP"); },
      kSecureWait))
      << relay->Stderr();
  // After the reload the relay still forwards.
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult again,
      plain.Run({"push", "jobs", "--count", "5", "--wait-acked", "--timeout",
                 "40s", "--name", "plain-producer-2"}));
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  ASSERT_TRUE(SawTasks(*worker, 55));
  // One reload line: the plaintext side has no roster and is skipped.
  const std::vector<std::string> reloads =
      absl::StrSplit(relay->Stderr(), "FAB-SEC-SIGHUP");
  EXPECT_EQ(reloads.size(), 2u) << relay->Stderr();
}

// A secure side with an unsafe key file stops the relay with exit 1 naming
// the side, the check and the file; contradictory side flags are a usage
// error.
TEST_F(SecureCliTest, RelayRefusesAnUnsafeSideKey) {
  Members({"relay"});
  const std::string open_key = cli_.dir() + "/relay-open.key";
  std::ofstream(open_key) << testing::ReadFile(keys_.key_file("relay"));
  ASSERT_EQ(::chmod(open_key.c_str(), 0644), 0);
  const std::string secret = testing::SecretText(keys_.key_file("relay"));
  // Side a: a plaintext cluster of its own, on a free port.
  const std::vector<std::string> base = {
      FABRIC_RELAY_PATH,
      "--name",
      "r",
      "--a-cluster",
      testing::UniqueClusterName("secure-relay-plain"),
      "--a-beacon-port",
      absl::StrCat(testing::FreeUdpPort()),
      "--b-cluster",
      cli_.cluster(),
      "--b-beacon-port",
      absl::StrCat(cli_.beacon_port()),
      "--topic",
      "t."};
  std::vector<std::string> argv = base;
  for (const std::string& f :
       {std::string("--b-key"), open_key, std::string("--b-roster"),
        keys_.roster_dir(), std::string("--b-beacon-secret"),
        keys_.beacon_secret_file()}) {
    argv.push_back(f);
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(auto relay, Subprocess::Spawn(argv));
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, testing::Finish(*relay));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err,
              HasSubstr(absl::StrCat("fabric-relay: side b: FAB-SEC-KEY-PERMS ",
                                     open_key)));
  EXPECT_THAT(r.out, Not(HasSubstr("READY")));
  EXPECT_THAT(r.err, Not(HasSubstr(secret)));

  argv = base;
  for (const char* f : {"--a-security", "off", "--a-key", "/nonexistent"}) {
    argv.push_back(f);
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(auto usage, Subprocess::Spawn(argv));
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult u, testing::Finish(*usage));
  EXPECT_EQ(u.exit_code, 2) << u.err;
  EXPECT_THAT(u.err, HasSubstr("side a: --security off contradicts --key"));
}

}  // namespace
}  // namespace fabric
