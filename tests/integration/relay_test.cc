// SPDX-License-Identifier: Apache-2.0
// `fabric-relay` with real processes: two loopback clusters (sides a and b)
// joined by relays. A producer on one side and workers on the other, with
// the relay SIGKILLed and restarted mid-run; topics both ways through two
// relays of one bridge with no loop and no duplicate; the relay as the seed
// of a node that cannot broadcast; stats over the fabric and over HTTP; bad
// configuration.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <memory>
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
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::testing::CliCluster;
using ::fabric::testing::Finish;
using ::fabric::testing::FreeTcpPort;
using ::fabric::testing::kCliReadyTimeout;
using ::fabric::testing::RunResult;
using ::fabric::testing::Subprocess;
using ::fabric::testing::WaitUntil;

constexpr absl::Duration kWait = absl::Seconds(60);

// The value of the first sample of `metric` whose labels contain all of
// `labels` in Prometheus text, or -1.
int64_t Sample(const std::string& text, const std::string& metric,
               const std::vector<std::string>& labels) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, absl::StrCat(metric, "{"))) continue;
    bool all = true;
    for (const std::string& l : labels) all &= absl::StrContains(line, l);
    if (!all) continue;
    int64_t value = -1;
    if (absl::SimpleAtoi(line.substr(line.rfind(' ') + 1), &value)) {
      return value;
    }
  }
  return -1;
}

// GET http://127.0.0.1:PORT/PATH; returns the whole response.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket");
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return absl::UnavailableError("connect");
  }
  const std::string request =
      absl::StrCat("GET ", path,
                   " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  if (write(fd, request.data(), request.size()) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::InternalError("write");
  }
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) response.append(buf, n);
  close(fd);
  return response;
}

class RelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(a_.usable() && b_.usable());
    state_ = absl::StrCat(a_.dir(), "/relay");
  }
  void TearDown() override {
    for (auto& p : procs_) p->Stop();
  }

  // The flags that put a relay between a_ and b_.
  std::vector<std::string> SideFlags() const {
    return {"--a-cluster",       a_.cluster(),
            "--a-beacon-port",   absl::StrCat(a_.beacon_port()),
            "--b-cluster",       b_.cluster(),
            "--b-beacon-port",   absl::StrCat(b_.beacon_port()),
            "--beacon-interval", "300ms"};
  }

  // Starts `fabric-relay --name NAME <side flags> <extra>` and waits for
  // READY.
  absl::StatusOr<Subprocess*> StartRelay(const std::string& name,
                                         std::vector<std::string> extra) {
    std::vector<std::string> argv = {FABRIC_RELAY_PATH, "--name", name};
    for (std::string& f : SideFlags()) argv.push_back(std::move(f));
    for (std::string& f : extra) argv.push_back(std::move(f));
    return Keep(Subprocess::Spawn(argv), "READY tcp://");
  }
  // Starts `fabric <args>` on a side and waits for its READY line.
  absl::StatusOr<Subprocess*> StartOn(const CliCluster& side,
                                      std::vector<std::string> args) {
    return Keep(side.Spawn(std::move(args)), "READY");
  }
  absl::StatusOr<Subprocess*> Keep(
      absl::StatusOr<std::unique_ptr<Subprocess>> proc,
      const std::string& ready) {
    if (!proc.ok()) return proc.status();
    Subprocess* p = proc->get();
    procs_.push_back(std::move(*proc));
    absl::Status line = p->WaitForReady(ready, kCliReadyTimeout).status();
    if (!line.ok()) return line;
    return p;
  }

  CliCluster a_{"relay-a"};
  CliCluster b_{"relay-b"};
  std::string state_;
  std::vector<std::unique_ptr<Subprocess>> procs_;
};

// Task bodies ("msg-N") the workers printed, with how often.
std::map<std::string, int> WorkedBodies(const std::vector<Subprocess*>& ws) {
  std::map<std::string, int> bodies;
  for (Subprocess* w : ws) {
    for (const std::string& line : w->StdoutLines()) {
      if (!absl::StartsWith(line, "task ")) continue;
      bodies[line.substr(line.rfind(' ') + 1)]++;
    }
  }
  return bodies;
}

TEST_F(RelayTest, ConfirmedTasksCompleteAcrossARelayKill) {
  constexpr int kTasks = 400;
  const std::vector<std::string> relay_flags = {
      "--queue", "jobs", "--state-dir", state_, "--fsync", "always"};
  FABRIC_ASSERT_OK_AND_ASSIGN(Subprocess * relay,
                              StartRelay("r1", relay_flags));
  std::vector<Subprocess*> workers;
  for (int i = 0; i < 2; ++i) {
    // Slow workers (a shell per task), so the relay still holds most of
    // the tasks when it is killed.
    FABRIC_ASSERT_OK_AND_ASSIGN(
        Subprocess * w, StartOn(b_, {"work", "jobs", "--exec", "sleep 0.01",
                                     "--name", absl::StrCat("w", i)}));
    workers.push_back(w);
  }
  // The producer leaves as soon as the relay confirmed every task.
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult push, a_.Run({"push", "jobs", "--count", absl::StrCat(kTasks),
                              "--spool", absl::StrCat(a_.dir(), "/producer"),
                              "--wait-acked", "--timeout", "50s"}));
  ASSERT_EQ(push.exit_code, 0) << push.out << push.err;
  EXPECT_THAT(push.out,
              ::testing::HasSubstr(absl::StrCat("acked ", kTasks, " ")));

  ASSERT_TRUE(WaitUntil(
      [&] {
        size_t done = 0;
        for (auto& [body, n] : WorkedBodies(workers)) done += n;
        return done >= 20;
      },
      kWait));
  relay->Signal(SIGKILL);
  ASSERT_THAT(relay->Wait(absl::Seconds(10)), ::fabric::testing::IsOk());
  const size_t done_at_kill = WorkedBodies(workers).size();
  EXPECT_LT(done_at_kill, static_cast<size_t>(kTasks))
      << "the workers finished before the kill; the test proves nothing";

  FABRIC_ASSERT_OK_AND_ASSIGN(Subprocess * again,
                              StartRelay("r1", relay_flags));
  const bool all = WaitUntil(
      [&] {
        return WorkedBodies(workers).size() == static_cast<size_t>(kTasks);
      },
      kWait);
  std::map<std::string, int> bodies = WorkedBodies(workers);
  ASSERT_TRUE(all) << bodies.size() << " of " << kTasks << " tasks done";
  for (int i = 1; i <= kTasks; ++i) {
    EXPECT_TRUE(bodies.contains(absl::StrCat("msg-", i))) << i;
  }

  // The restarted relay found the killed one's tasks in its spool.
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult stats,
                              a_.Run({"stats", "r1", "--timeout", "10s"}));
  ASSERT_EQ(stats.exit_code, 0) << stats.err;
  const std::vector<std::string> lane = {"queue=\"jobs\"",
                                         "direction=\"a_to_b\""};
  EXPECT_GT(Sample(stats.out, "fabric_relay_queue_recovered_total", lane), 0)
      << stats.out;
  EXPECT_EQ(Sample(stats.out, "fabric_relay_queue_workers", lane), 2);
  EXPECT_TRUE(WaitUntil(
      [&] {
        absl::StatusOr<RunResult> s = a_.Run({"stats", "r1"});
        return s.ok() &&
               Sample(s->out, "fabric_relay_queue_in_flight", lane) == 0 &&
               Sample(s->out, "fabric_relay_queue_backlog", lane) == 0;
      },
      kWait));
  (void)again;
}

// Two relays of one bridge forwarding one queue both ways, a producer and
// a worker on each side: every task runs exactly once (nothing crashes), so
// no task bounced between the segments.
TEST_F(RelayTest, QueueThroughTwoRelaysRunsEachTaskOnce) {
  constexpr int kTasks = 150;
  for (const char* name : {"r1", "r2"}) {
    FABRIC_ASSERT_OK(StartRelay(name, {"--queue", "jobs", "--state-dir",
                                       absl::StrCat(state_, name)})
                         .status());
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(
      Subprocess * wa,
      StartOn(a_, {"work", "jobs", "--name", "wa", "--prefetch", "2"}));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      Subprocess * wb,
      StartOn(b_, {"work", "jobs", "--name", "wb", "--prefetch", "2"}));
  // Both relays take the queue both ways once they see the workers.
  for (const char* name : {"r1", "r2"}) {
    ASSERT_TRUE(WaitUntil(
        [&] {
          absl::StatusOr<RunResult> st = a_.Run({"stats", name});
          return st.ok() &&
                 Sample(st->out, "fabric_relay_queue_taking",
                        {"direction=\"a_to_b\""}) == 1 &&
                 Sample(st->out, "fabric_relay_queue_taking",
                        {"direction=\"b_to_a\""}) == 1;
        },
        kWait))
        << name;
  }
  // Bodies say where they were pushed.
  for (auto [side, label] : {std::pair{&a_, "from-a"}, {&b_, "from-b"}}) {
    std::vector<std::string> args = {"push",      "jobs", "--wait-acked",
                                     "--timeout", "50s",  "--no-stdin"};
    for (int i = 1; i <= kTasks; ++i) {
      args.push_back(absl::StrCat(label, "-", i));
    }
    FABRIC_ASSERT_OK_AND_ASSIGN(RunResult push, side->Run(args));
    ASSERT_EQ(push.exit_code, 0) << push.out << push.err;
  }
  ASSERT_TRUE(WaitUntil(
      [&] {
        return WorkedBodies({wa, wb}).size() == 2 * kTasks;
      },
      kWait))
      << WorkedBodies({wa, wb}).size();
  absl::SleepFor(absl::Seconds(1));  // time for a bounced copy to show up
  for (auto& [body, n] : WorkedBodies({wa, wb})) {
    EXPECT_EQ(n, 1) << body;
  }
  // Each way on its own: with the pushing side's worker gone, every task
  // must cross, and still run once. (With both workers up, how many cross
  // is up to the dispatcher: a fast local worker may take them all.)
  auto crossed = [](Subprocess* w, const std::string& label) {
    int n = 0;
    for (auto& [body, runs] : WorkedBodies({w})) {
      n += absl::StartsWith(body, label) ? runs : 0;
    }
    return n;
  };
  auto push = [](CliCluster& side, const std::string& label) -> RunResult {
    std::vector<std::string> args = {"push",      "jobs", "--wait-acked",
                                     "--timeout", "50s",  "--no-stdin"};
    for (int i = 1; i <= 20; ++i) args.push_back(absl::StrCat(label, "-", i));
    absl::StatusOr<RunResult> run = side.Run(args);
    EXPECT_TRUE(run.ok()) << run.status();
    return run.ok() ? *run : RunResult{};
  };
  wa->Stop();
  RunResult late_a = push(a_, "late-a");
  ASSERT_EQ(late_a.exit_code, 0) << late_a.out << late_a.err;
  ASSERT_TRUE(WaitUntil([&] { return crossed(wb, "late-a") == 20; }, kWait))
      << crossed(wb, "late-a");
  FABRIC_ASSERT_OK_AND_ASSIGN(
      Subprocess * wa2,
      StartOn(a_, {"work", "jobs", "--name", "wa2", "--prefetch", "2"}));
  wb->Stop();
  RunResult late_b = push(b_, "late-b");
  ASSERT_EQ(late_b.exit_code, 0) << late_b.out << late_b.err;
  ASSERT_TRUE(WaitUntil([&] { return crossed(wa2, "late-b") == 20; }, kWait))
      << crossed(wa2, "late-b");
  absl::SleepFor(absl::Seconds(1));  // time for a bounced copy to show up
  for (auto& [body, n] : WorkedBodies({wa, wb, wa2})) {
    EXPECT_EQ(n, 1) << body;
  }
}

// Sub lines "TOPIC SEQ [(replay)] BODY" of `topic`: body -> count.
std::map<std::string, int> Received(Subprocess& sub, const std::string& topic) {
  std::map<std::string, int> bodies;
  for (const std::string& line : sub.StdoutLines()) {
    if (!absl::StartsWith(line, absl::StrCat(topic, " "))) continue;
    bodies[line.substr(line.rfind(' ') + 1)]++;
  }
  return bodies;
}

TEST_F(RelayTest, TopicsCrossBothWaysThroughTwoRelaysOnce) {
  constexpr int kMessages = 150;
  FABRIC_ASSERT_OK_AND_ASSIGN(
      Subprocess * r1,
      StartRelay("r1", {"--topic", "logs.", "--durable-topic", "logs.a",
                        "--durable-topic", "logs.b", "--state-dir",
                        absl::StrCat(state_, "1")}));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      Subprocess * r2,
      StartRelay("r2", {"--topic", "logs.", "--durable-topic", "logs.a",
                        "--durable-topic", "logs.b", "--state-dir",
                        absl::StrCat(state_, "2")}));
  // Durable subscribers from earliest: they get what the relays republish
  // into their logs, whenever they connect.
  FABRIC_ASSERT_OK_AND_ASSIGN(
      Subprocess * sub_a,
      StartOn(a_, {"sub", "logs.", "--durable", "sa", "--state-dir",
                   absl::StrCat(a_.dir(), "/subs"), "--from", "earliest"}));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      Subprocess * sub_b,
      StartOn(b_, {"sub", "logs.", "--durable", "sb", "--state-dir",
                   absl::StrCat(b_.dir(), "/subs"), "--from", "earliest"}));
  // Each publisher waits for its side's subscriber and both relays.
  for (auto [side, topic] : {std::pair{&a_, "logs.a"}, {&b_, "logs.b"}}) {
    FABRIC_ASSERT_OK_AND_ASSIGN(
        RunResult pub,
        side->Run({"pub", topic, "--count", absl::StrCat(kMessages),
                   "--wait-subscribers", "3", "--wait-timeout", "30s"}));
    ASSERT_EQ(pub.exit_code, 0) << pub.out << pub.err;
  }
  // Each side gets its own topic directly and the other's through exactly
  // one relay.
  for (auto [sub, topic] : {std::pair{sub_a, "logs.a"},
                            {sub_a, "logs.b"},
                            {sub_b, "logs.a"},
                            {sub_b, "logs.b"}}) {
    const bool all = WaitUntil(
        [&] {
          return Received(*sub, topic).size() == static_cast<size_t>(kMessages);
        },
        kWait);
    EXPECT_TRUE(all) << sub->label() << " " << topic << ": "
                     << Received(*sub, topic).size();
  }
  // Let any duplicate or looped copy arrive before counting.
  absl::SleepFor(absl::Seconds(1));
  for (auto [sub, topic] : {std::pair{sub_a, "logs.a"},
                            {sub_a, "logs.b"},
                            {sub_b, "logs.a"},
                            {sub_b, "logs.b"}}) {
    for (auto& [body, n] : Received(*sub, topic)) {
      EXPECT_EQ(n, 1) << sub->label() << " " << topic << " " << body;
    }
  }
  // One relay forwarded, the other stood by; both saw each other's output
  // come back and dropped it.
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult s1, a_.Run({"stats", "r1"}));
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult s2, b_.Run({"stats", "r2"}));
  const std::vector<std::string> a2b = {"direction=\"a_to_b\""};
  const int64_t out1 = Sample(s1.out, "fabric_relay_topic_out_total", a2b);
  const int64_t out2 = Sample(s2.out, "fabric_relay_topic_out_total", a2b);
  EXPECT_EQ(out1 + out2, kMessages) << s1.out << s2.out;
  EXPECT_TRUE(out1 == 0 || out2 == 0);
  (void)r1;
  (void)r2;
}

TEST_F(RelayTest, RelayIsTheSeedOfNodesThatCannotBroadcast) {
  const uint16_t port = FreeTcpPort();
  ASSERT_NE(port, 0);
  FABRIC_ASSERT_OK_AND_ASSIGN(
      Subprocess * relay,
      StartRelay("r1", {"--topic", "logs.", "--a-port", absl::StrCat(port)}));
  (void)relay;
  FABRIC_ASSERT_OK(StartOn(a_, {"node", "--name", "beaconer"}).status());
  // Seeds mode: no beacons, only the relay's endpoint.
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult peers,
      a_.Run({"peers", "--seed", absl::StrCat("tcp://127.0.0.1:", port),
              "--min-peers", "2", "--wait", "20s"}));
  ASSERT_EQ(peers.exit_code, 0) << peers.err;
  EXPECT_THAT(peers.out, ::testing::HasSubstr("beaconer"));
  EXPECT_THAT(peers.out, ::testing::HasSubstr("r1"));
}

TEST_F(RelayTest, StatsOverHttpAndAConfigFile) {
  const std::string config = absl::StrCat(a_.dir(), "/relay.toml");
  {
    std::ofstream f(config);
    f << "name = \"r9\"\nqueue = [\"jobs\", \"mail\"]\ntopic = [\"logs.\"]\n"
      << "state-dir = \"" << state_ << "\"\nmetrics = \"127.0.0.1:0\"\n";
  }
  std::vector<std::string> argv = {FABRIC_RELAY_PATH, "--config", config};
  for (std::string& f : SideFlags()) argv.push_back(std::move(f));
  FABRIC_ASSERT_OK_AND_ASSIGN(Subprocess * relay,
                              Keep(Subprocess::Spawn(argv), "READY tcp://"));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      size_t at, relay->WaitForLineContaining("METRICS http://127.0.0.1:",
                                              kCliReadyTimeout));
  const std::string url = relay->StdoutLines()[at];
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(
      url.substr(url.rfind(':') + 1, url.find("/metrics") - url.rfind(':') - 1),
      &port))
      << url;
  FABRIC_ASSERT_OK_AND_ASSIGN(std::string ok, HttpGet(port, "/metrics"));
  EXPECT_THAT(ok, ::testing::StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(ok, ::testing::HasSubstr("text/plain; version=0.0.4"));
  EXPECT_EQ(Sample(ok, "fabric_relay_queue_in_total",
                   {"relay=\"r9\"", "queue=\"mail\"", "direction=\"b_to_a\""}),
            0);
  EXPECT_EQ(Sample(ok, "fabric_relay_topic_forwarding", {"prefix=\"logs.\""}),
            1);
  FABRIC_ASSERT_OK_AND_ASSIGN(std::string missing, HttpGet(port, "/nope"));
  EXPECT_THAT(missing, ::testing::StartsWith("HTTP/1.1 404"));
  // Garbage instead of HTTP gets an error, and the relay keeps serving.
  FABRIC_ASSERT_OK_AND_ASSIGN(std::string bad, HttpGet(port, "\x01\x02 junk"));
  EXPECT_THAT(bad, ::testing::StartsWith("HTTP/1.1 400"));
  // Clients that reset the connection before the answer do not take it
  // down.
  for (int i = 0; i < 20; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      const char request[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
      (void)!write(fd, request, sizeof(request) - 1);
      linger hard{1, 0};  // close with RST at once
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
    }
    close(fd);
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(std::string after, HttpGet(port, "/metrics"));
  EXPECT_THAT(after, ::testing::StartsWith("HTTP/1.1 200"));
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult stats, b_.Run({"stats", "r9"}));
  EXPECT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_THAT(stats.out,
              ::testing::HasSubstr("fabric_relay_info{relay=\"r9\""));
}

TEST_F(RelayTest, BadConfigurationIsRefusedWithExitTwo) {
  const std::vector<std::vector<std::string>> cases = {
      {"--name", "r", "--queue", "jobs"},          // no state dir
      {"--name", "r"},                             // nothing to forward
      {"--queue", "jobs", "--state-dir", "/tmp"},  // no name
      {"--name", "r", "--topic", "x", "--bogus"},
      {"--name", "r", "--topic", "x", "--a-discovery", "carrier-pigeon"},
      {"--name", "r", "--topic", "x", "--fsync", "sometimes"},
      {"--name", "r", "--topic", "x", "--durable-topic", "y", "--state-dir",
       "/tmp"},  // durable topic not forwarded
      {"--name", "r", "--topic", "x", "--config", "/nonexistent.toml"},
      {"--name", "r", "--topic", "x", "--a-cluster", "c", "--b-cluster",
       "c"},  // one domain twice
      {"--name", "r", "--topic", "x", "--max-backlog", "0"},
      {"--name", "r", "--topic", "x", "--metrics", "nowhere"},
  };
  for (const std::vector<std::string>& c : cases) {
    std::vector<std::string> argv = {FABRIC_RELAY_PATH};
    argv.insert(argv.end(), c.begin(), c.end());
    FABRIC_ASSERT_OK_AND_ASSIGN(auto proc, Subprocess::Spawn(argv));
    FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, Finish(*proc));
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(c, " ") << ": " << r.err;
    EXPECT_THAT(r.err, ::testing::HasSubstr("fabric-relay: "));
  }
  // A stats call for a node that serves none fails clearly.
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult none,
                              a_.Run({"stats", "nobody", "--timeout", "1s"}));
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_THAT(none.err, ::testing::HasSubstr("UNAVAILABLE"));
}

}  // namespace
}  // namespace fabric
