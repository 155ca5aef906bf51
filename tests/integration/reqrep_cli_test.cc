// SPDX-License-Identifier: Apache-2.0
// Request/reply with real processes on loopback: `fabric serve` servers,
// `fabric req` calls, and a load of calls from an in-process Client while
// servers are SIGKILLed, SIGSTOPped, slow, or come and go. Every call must
// end with the reply or a clear status within its deadline (plus slack for
// a loaded machine); nothing asserts on speed.
#include <signal.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "patterns/reqrep/client.h"
#include "tests/testing/cli_harness.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::testing::IsOk;
using ::fabric::testing::Subprocess;
using ::fabric::testing::WaitUntil;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using ::fabric::testing::CliCluster;
using ::fabric::testing::Finish;
using ::fabric::testing::RunResult;

constexpr absl::Duration kTimeout = ::fabric::testing::kCliTimeout;
// Slack on top of a call's deadline before we call it hung (ASan, load).
constexpr absl::Duration kSlack = absl::Seconds(5);

// One server process and the node id it printed in READY.
struct ServerProc {
  std::unique_ptr<Subprocess> proc;
  std::string id;  // hex
};

// A steady load of calls from an in-process client: `in_flight` calls out
// at any time, each with the same options, until `total` were made.
// Thread safety: thread-safe.
class Load {
 public:
  struct Result {
    absl::Status status;
    std::string server;  // hex, when OK
    uint32_t attempts = 0;
    absl::Duration took;
  };

  Load(Client& client, CallOptions call, int total, int in_flight)
      : client_(client), call_(std::move(call)), total_(total) {
    for (int i = 0; i < in_flight; ++i) StartOne();
  }

  // Waits until no callback runs (they run on the client node's engine
  // thread) and starts no more calls.
  ~Load() {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    auto idle = [this]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return active_ == 0; };
    mu_.Await(absl::Condition(&idle));
  }

  int started() {
    absl::MutexLock lock(&mu_);
    return started_;
  }
  int done() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(results_.size());
  }
  bool WaitDone(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto all = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return static_cast<int>(results_.size()) == total_;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&all), timeout);
  }
  std::map<int, Result> results() {
    absl::MutexLock lock(&mu_);
    return results_;
  }

 private:
  void StartOne() {
    int i;
    {
      absl::MutexLock lock(&mu_);
      if (started_ >= total_ || stopping_) return;
      i = started_++;
      active_++;
    }
    const absl::Time start = absl::Now();
    const std::string body = absl::StrCat("call-", i);
    client_.CallAsync(
        "svc", body, call_, [this, i, start, body](absl::StatusOr<Reply> r) {
          Result res;
          res.took = absl::Now() - start;
          res.status = r.status();
          if (r.ok()) {
            res.server = r->server.ToHex();
            res.attempts = r->attempts;
            if (r->body != body) {
              res.status =
                  absl::DataLossError(absl::StrCat("wrong body ", r->body));
            }
          }
          {
            absl::MutexLock lock(&mu_);
            results_[i] = res;
          }
          StartOne();
          absl::MutexLock lock(&mu_);
          active_--;
        });
  }

  Client& client_;
  const CallOptions call_;
  const int total_;
  absl::Mutex mu_;
  int started_ ABSL_GUARDED_BY(mu_) = 0;
  int active_ ABSL_GUARDED_BY(mu_) = 0;  // calls whose callback has not ended
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<int, Result> results_ ABSL_GUARDED_BY(mu_);
};

class ReqRepCliTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cli_.usable()); }
  void TearDown() override {
    // The load's callbacks run on the node's engine: stop it first.
    if (client_ != nullptr) client_->Close();
    client_.reset();
    if (node_ != nullptr) node_->Close();
    node_.reset();
  }

  std::vector<std::string> ClusterFlags() const { return cli_.ClusterFlags(); }
  absl::StatusOr<RunResult> Run(std::vector<std::string> args) {
    return cli_.Run(std::move(args));
  }

  // Starts `fabric serve svc --name NAME <how>` and awaits READY.
  absl::StatusOr<ServerProc> StartServer(const std::string& name,
                                         std::vector<std::string> how) {
    std::vector<std::string> args = {"serve", "svc", "--name", name};
    for (std::string& f : how) args.push_back(std::move(f));
    absl::StatusOr<std::unique_ptr<Subprocess>> proc =
        cli_.SpawnReady(std::move(args));
    if (!proc.ok()) return proc.status();
    absl::StatusOr<size_t> line = (*proc)->WaitForLineContaining(
        "READY tcp://", ::fabric::testing::kCliReadyTimeout);
    if (!line.ok()) return line.status();
    std::vector<std::string> f =
        absl::StrSplit((*proc)->StdoutLines()[*line], ' ');
    if (f.size() < 3) return absl::InternalError("bad READY line");
    return ServerProc{std::move(*proc), f[2]};
  }

  // An in-process client node of the same cluster.
  Client& StartClient() {
    NodeOptions o;
    o.name = "load";
    o.cluster = cli_.cluster();
    o.beacon_port = cli_.beacon_port();
    o.beacon_interval = absl::Milliseconds(300);
    absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(std::move(o));
    EXPECT_THAT(node, IsOk());
    node_ = std::move(*node);
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(*node_);
    EXPECT_THAT(client, IsOk());
    client_ = std::move(*client);
    return *client_;
  }

  // Waits until `n` servers have each answered a call (links up).
  bool WarmUp(size_t n) {
    std::set<std::string> answered;
    CallOptions call;
    call.timeout = absl::Seconds(5);
    call.wait_for_server = true;
    return WaitUntil(
        [&] {
          absl::StatusOr<Reply> r = client_->Call("svc", "warm", call);
          if (r.ok()) answered.insert(r->server.ToHex());
          return answered.size() >= n;
        },
        kTimeout);
  }

  // Every call ended within its deadline plus slack, with a reply or a
  // clear status. Returns how many replies each server gave.
  static std::map<std::string, int> CheckResults(
      const std::map<int, Load::Result>& results, absl::Duration timeout,
      int* failed) {
    std::map<std::string, int> by_server;
    *failed = 0;
    for (const auto& [i, r] : results) {
      EXPECT_LE(r.took, timeout + kSlack) << "call " << i << ": " << r.status;
      if (r.status.ok()) {
        by_server[r.server]++;
        continue;
      }
      ++*failed;
      EXPECT_TRUE(absl::IsDeadlineExceeded(r.status) ||
                  absl::IsUnavailable(r.status))
          << "call " << i << ": " << r.status;
    }
    return by_server;
  }

  CliCluster cli_{"rr-cli"};
  std::unique_ptr<Node> node_;
  std::unique_ptr<Client> client_;
};

TEST_F(ReqRepCliTest, ReqPrintsRepliesOfEchoAndExecServers) {
  FABRIC_ASSERT_OK_AND_ASSIGN(ServerProc echo, StartServer("echo", {"--echo"}));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult r, Run({"req", "svc", "hello", "--timeout", "20000"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hello");
  FABRIC_ASSERT_OK_AND_ASSIGN(
      r, Run({"req", "svc", "hi", "--json", "--timeout", "20s"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, absl::StrCat("{\"ok\":true,\"body\":\"hi\",\"server\":\"",
                                echo.id, "\",\"attempts\":1}"));
  EXPECT_TRUE(WaitUntil(
      [&] {
        return absl::StrContains(absl::StrJoin(echo.proc->StdoutLines(), "\n"),
                                 "status=OK bytes=2 hi");
      },
      absl::Seconds(10)))
      << absl::StrJoin(echo.proc->StdoutLines(), "\n");
  echo.proc->Stop();

  // --exec: the body on stdin (here from `fabric req`'s own stdin), the
  // command's stdout back; a failing command's exit and stderr come back
  // as the call's status.
  FABRIC_ASSERT_OK_AND_ASSIGN(
      ServerProc upper,
      StartServer("upper", {"--exec",
                            "[ \"$(cat)\" = fail ] && { echo no way >&2; exit "
                            "3; }; echo \"$FABRIC_SERVICE $FABRIC_ATTEMPT\""}));
  std::vector<std::string> argv = {
      "/bin/sh",       "-c",   "printf ok | exec \"$0\" \"$@\"",
      FABRIC_CLI_PATH, "req",  "svc",
      "--timeout",     "20000"};
  for (std::string& f : ClusterFlags()) argv.push_back(std::move(f));
  FABRIC_ASSERT_OK_AND_ASSIGN(auto piped, Subprocess::Spawn(argv));
  FABRIC_ASSERT_OK_AND_ASSIGN(r, Finish(*piped));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "svc 1");
  FABRIC_ASSERT_OK_AND_ASSIGN(
      r, Run({"req", "svc", "fail", "--timeout", "20000"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, StartsWith("fabric: UNKNOWN: command exited with 3"));
  EXPECT_THAT(r.err, HasSubstr("no way"));
}

TEST_F(ReqRepCliTest, NoServerFailsUnavailableAtOnce) {
  const absl::Time start = absl::Now();
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult r, Run({"req", "nobody", "x", "--timeout", "30000"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("fabric: UNAVAILABLE: no server of service "
                                "nobody"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(15));  // not the 30 s deadline
}

TEST_F(ReqRepCliTest, BadArgumentsExitTwo) {
  for (std::vector<std::string> args :
       {std::vector<std::string>{"req"},
        {"req", "svc", "x", "--timeout", "soon"},
        {"req", "svc", "x", "--max-attempts", "0", "--timeout", "-5"},
        {"serve", "svc"},
        {"serve", "svc", "--echo", "--exec", "cat"},
        {"serve", "svc", "--echo", "--concurrency", "0"}}) {
    SCOPED_TRACE(absl::StrJoin(args, " "));
    FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, Run(args));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_THAT(r.err, StartsWith("fabric: "));
  }
}

TEST_F(ReqRepCliTest, KilledServerUnderLoadOthersAnswer) {
  std::vector<ServerProc> servers;
  for (const char* name : {"s1", "s2", "s3"}) {
    FABRIC_ASSERT_OK_AND_ASSIGN(
        ServerProc s,
        StartServer(name, {"--exec", "sleep 0.02; cat", "--concurrency", "4"}));
    servers.push_back(std::move(s));
  }
  StartClient();
  ASSERT_TRUE(WarmUp(3));
  CallOptions call;
  call.timeout = absl::Seconds(10);
  constexpr int kCalls = 240;
  Load load(*client_, call, kCalls, 16);
  ASSERT_TRUE(WaitUntil([&] { return load.done() >= 60; }, kTimeout));
  servers[0].proc->Signal(SIGKILL);  // with requests in flight
  // Calls numbered from here on started after the kill.
  const int started_at_kill = load.started();
  ASSERT_TRUE(load.WaitDone(kTimeout));
  int failed = 0;
  std::map<std::string, int> by_server =
      CheckResults(load.results(), call.timeout, &failed);
  // The survivors answered what the dead one held: nothing is lost, and
  // after the kill everything still works.
  EXPECT_EQ(failed, 0);
  int after = 0;
  for (const auto& [i, r] : load.results()) {
    if (i >= started_at_kill && r.status.ok()) {
      EXPECT_NE(r.server, servers[0].id) << "call " << i;
      ++after;
    }
  }
  EXPECT_EQ(after, kCalls - started_at_kill);
  int retried = 0;  // what the dead server held went elsewhere
  for (const auto& [i, r] : load.results()) retried += r.attempts > 1;
  EXPECT_GT(retried, 0);
  EXPECT_GT(by_server[servers[1].id], 0);
  EXPECT_GT(by_server[servers[2].id], 0);
}

TEST_F(ReqRepCliTest, SlowServerCallsMoveToTheOthers) {
  FABRIC_ASSERT_OK_AND_ASSIGN(ServerProc fast1, StartServer("f1", {"--echo"}));
  FABRIC_ASSERT_OK_AND_ASSIGN(ServerProc fast2, StartServer("f2", {"--echo"}));
  StartClient();
  ASSERT_TRUE(WarmUp(2));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      ServerProc slow,
      StartServer("slow", {"--exec", "exec sleep 30", "--concurrency", "8"}));
  ASSERT_TRUE(WaitUntil(
      [&] {
        absl::StatusOr<std::vector<NodeId>> s = client_->Servers("svc");
        return s.ok() && s->size() == 3;
      },
      kTimeout));
  CallOptions call;
  call.timeout = absl::Seconds(10);
  call.attempt_timeout = absl::Milliseconds(500);
  Load load(*client_, call, 120, 6);
  ASSERT_TRUE(load.WaitDone(kTimeout));
  int failed = 0;
  std::map<std::string, int> by_server =
      CheckResults(load.results(), call.timeout, &failed);
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(by_server[slow.id], 0);
  EXPECT_EQ(by_server[fast1.id] + by_server[fast2.id], 120);
}

TEST_F(ReqRepCliTest, StoppedServersCallsAreRetriedElsewhere) {
  FABRIC_ASSERT_OK_AND_ASSIGN(
      ServerProc a,
      StartServer("a", {"--exec", "sleep 0.05; cat", "--concurrency", "8"}));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      ServerProc b,
      StartServer("b", {"--exec", "sleep 0.05; cat", "--concurrency", "8"}));
  StartClient();
  ASSERT_TRUE(WarmUp(2));
  CallOptions call;
  call.timeout = absl::Seconds(15);  // attempts time out after 5 s
  Load load(*client_, call, 200, 12);
  ASSERT_TRUE(WaitUntil([&] { return load.done() >= 40; }, kTimeout));
  a.proc->Signal(SIGSTOP);  // holds what it accepted, says nothing
  ASSERT_TRUE(load.WaitDone(kTimeout));
  int failed = 0;
  std::map<std::string, int> by_server =
      CheckResults(load.results(), call.timeout, &failed);
  EXPECT_EQ(failed, 0);
  EXPECT_GT(by_server[b.id], 100);
  // What a held went to b: some calls needed a second attempt.
  int retried = 0;
  for (const auto& [i, r] : load.results()) retried += r.attempts > 1;
  EXPECT_GT(retried, 0);
  a.proc->Signal(SIGCONT);
}

TEST_F(ReqRepCliTest, ServersComeAndGoUnderLoad) {
  FABRIC_ASSERT_OK_AND_ASSIGN(ServerProc a,
                              StartServer("a", {"--exec", "sleep 0.01; cat"}));
  FABRIC_ASSERT_OK_AND_ASSIGN(ServerProc b,
                              StartServer("b", {"--exec", "sleep 0.01; cat"}));
  StartClient();
  ASSERT_TRUE(WarmUp(2));
  CallOptions call;
  call.timeout = absl::Seconds(10);
  constexpr int kCalls = 300;
  Load load(*client_, call, kCalls, 8);
  ASSERT_TRUE(WaitUntil([&] { return load.done() >= 50; }, kTimeout));
  FABRIC_ASSERT_OK_AND_ASSIGN(ServerProc c,
                              StartServer("c", {"--exec", "sleep 0.01; cat"}));
  ASSERT_TRUE(WaitUntil([&] { return load.done() >= 120; }, kTimeout));
  a.proc->Signal(SIGTERM);  // drains: answers what it accepted, then leaves
  FABRIC_ASSERT_OK_AND_ASSIGN(int code, a.proc->Wait(kTimeout));
  EXPECT_EQ(code, 0) << a.proc->Stderr();
  ASSERT_TRUE(load.WaitDone(kTimeout));
  int failed = 0;
  std::map<std::string, int> by_server =
      CheckResults(load.results(), call.timeout, &failed);
  EXPECT_EQ(failed, 0);  // a graceful leave loses nothing
  EXPECT_GT(by_server[c.id], 0);
  EXPECT_EQ(by_server[a.id] + by_server[b.id] + by_server[c.id], kCalls);
}

}  // namespace
}  // namespace fabric
