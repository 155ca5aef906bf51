// SPDX-License-Identifier: Apache-2.0
// Liveness as other processes see it: `fabric node` children on loopback are
// killed, stopped, resumed, terminated and restarted, and the survivors'
// event lines are checked. Deadlines are generous: this checks that the
// events happen and carry the right reason; how fast is bench/'s business.
#include <signal.h>
#include <stdlib.h>

#include <memory>
#include <nlohmann/json.hpp>
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
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::testing::ClearFabricEnvironment;
using ::fabric::testing::FreeTcpPort;
using ::fabric::testing::FreeUdpPort;
using ::fabric::testing::StatusIs;
using ::fabric::testing::Subprocess;
using ::fabric::testing::UniqueClusterName;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr absl::Duration kReadyTimeout = absl::Seconds(20);
constexpr absl::Duration kEventTimeout = absl::Seconds(20);

// One `fabric node` child and what its READY line said.
struct NodeProcess {
  std::unique_ptr<Subprocess> proc;
  std::string endpoint;
  std::string id;  // 32 hex digits
  std::string name;
  std::string ShortId() const { return id.substr(0, 8); }
};

// One text event line: `joined n2 0bd6ffb8 tcp://... peers=1 offers=- (hello)`.
struct EventLine {
  std::string event;
  std::string name;
  std::string short_id;
  std::string address;
  int peers = -1;
  std::string offers;
  std::string reason;
};

bool ParseEvent(absl::string_view line, EventLine* out) {
  const size_t open = line.find(" (");
  if (open == absl::string_view::npos || !absl::EndsWith(line, ")")) {
    return false;
  }
  std::vector<std::string> f = absl::StrSplit(line.substr(0, open), ' ');
  if (f.size() != 6 || !absl::StartsWith(f[4], "peers=") ||
      !absl::StartsWith(f[5], "offers=") ||
      !absl::SimpleAtoi(absl::string_view(f[4]).substr(6), &out->peers)) {
    return false;
  }
  out->event = f[0];
  out->name = f[1];
  out->short_id = f[2];
  out->address = f[3];
  out->offers = f[5].substr(7);
  out->reason =
      std::string(line.substr(open + 2, line.size() - open - 3));  // no ()
  return true;
}

// Matches `<event> <name> ...` lines.
std::function<bool(absl::string_view)> IsEvent(std::string event,
                                               std::string name) {
  return [event = std::move(event),
          name = std::move(name)](absl::string_view line) {
    EventLine e;
    return ParseEvent(line, &e) && e.event == event && e.name == name;
  };
}

EventLine EventAt(const Subprocess& proc, size_t index) {
  EventLine e;
  const std::vector<std::string> lines = proc.StdoutLines();
  if (index < lines.size()) ParseEvent(lines[index], &e);
  return e;
}

class LivenessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClearFabricEnvironment();
    ASSERT_NE(beacon_port_, 0) << "no free UDP port";
  }

  std::vector<std::string> ClusterFlags() const {
    return {"--cluster", cluster_, "--beacon-port", absl::StrCat(beacon_port_)};
  }

  // Starts `fabric node --name NAME <cluster flags> <extra>` and awaits READY.
  absl::StatusOr<NodeProcess> StartNode(const std::string& name,
                                        std::vector<std::string> extra = {},
                                        bool json = false) {
    std::vector<std::string> argv = {FABRIC_CLI_PATH, "node", "--name", name};
    if (json) argv.push_back("--json");
    for (std::string& flag : ClusterFlags()) argv.push_back(std::move(flag));
    for (std::string& flag : extra) argv.push_back(std::move(flag));
    absl::StatusOr<std::unique_ptr<Subprocess>> proc = Subprocess::Spawn(argv);
    if (!proc.ok()) return proc.status();
    absl::StatusOr<size_t> ready =
        (*proc)->WaitForReady(json ? "{" : "READY ", kReadyTimeout);
    if (!ready.ok()) return ready.status();
    std::vector<std::string> f =
        absl::StrSplit((*proc)->StdoutLines()[*ready], ' ');
    if (json) {  // {"event":"ready","endpoint":...,"id":...,"name":...}
      const nlohmann::json j = nlohmann::json::parse(
          (*proc)->StdoutLines()[*ready], nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.value("event", "") == "ready") {
        f = {"READY", j.value("endpoint", ""), j.value("id", ""),
             j.value("name", "")};
      }
    }
    if (f.size() != 4 || f[2].size() != 32 || f[3] != name) {
      return absl::InternalError(
          absl::StrCat("bad READY line: ", (*proc)->StdoutLines()[*ready]));
    }
    return NodeProcess{std::move(*proc), f[1], f[2], f[3]};
  }

  // Starts nodes n0..n<count-1> and waits until each sees all the others.
  void StartMesh(int count, std::vector<NodeProcess>* nodes) {
    for (int i = 0; i < count; ++i) {
      FABRIC_ASSERT_OK_AND_ASSIGN(NodeProcess node,
                                  StartNode(absl::StrCat("n", i)));
      nodes->push_back(std::move(node));
    }
    for (NodeProcess& node : *nodes) {
      ASSERT_THAT(node.proc->WaitForLineContaining(
                      absl::StrCat(" peers=", count - 1, " "), kEventTimeout),
                  ::fabric::testing::IsOk())
          << node.name << " did not see the whole mesh";
    }
  }

  const std::string cluster_ = UniqueClusterName("liveness");
  const uint16_t beacon_port_ = FreeUdpPort();
};

TEST_F(LivenessTest, KilledNodeLeavesWithConnectionLost) {
  std::vector<NodeProcess> nodes;
  ASSERT_NO_FATAL_FAILURE(StartMesh(4, &nodes));
  NodeProcess& victim = nodes.back();
  victim.proc->Signal(SIGKILL);
  EXPECT_THAT(victim.proc->Wait(absl::Seconds(10)),
              ::fabric::testing::IsOkAndHolds(128 + SIGKILL));
  for (size_t i = 0; i + 1 < nodes.size(); ++i) {
    absl::StatusOr<size_t> left =
        nodes[i].proc->WaitForLine(IsEvent("left", victim.name), kEventTimeout);
    FABRIC_ASSERT_OK(left) << nodes[i].name;
    const EventLine e = EventAt(*nodes[i].proc, *left);
    EXPECT_EQ(e.reason, "connection lost") << nodes[i].name;
    EXPECT_EQ(e.short_id, victim.ShortId());
    EXPECT_EQ(e.peers, 2);
  }
}

TEST_F(LivenessTest, StoppedNodeIsSuspectThenLeftAndRejoinsWhenResumed) {
  std::vector<NodeProcess> nodes;
  ASSERT_NO_FATAL_FAILURE(StartMesh(3, &nodes));
  NodeProcess& victim = nodes.back();
  victim.proc->Signal(SIGSTOP);
  std::vector<size_t> left_at;
  for (size_t i = 0; i + 1 < nodes.size(); ++i) {
    Subprocess& p = *nodes[i].proc;
    absl::StatusOr<size_t> suspect =
        p.WaitForLine(IsEvent("suspect", victim.name), kEventTimeout);
    FABRIC_ASSERT_OK(suspect) << nodes[i].name;
    EXPECT_THAT(EventAt(p, *suspect).reason, StartsWith("silent "));
    absl::StatusOr<size_t> left =
        p.WaitForLine(IsEvent("left", victim.name), kEventTimeout, *suspect);
    FABRIC_ASSERT_OK(left) << nodes[i].name;
    const EventLine e = EventAt(p, *left);
    EXPECT_THAT(e.reason, StartsWith("silent ")) << nodes[i].name;
    EXPECT_EQ(e.short_id, victim.ShortId());
    left_at.push_back(*left);
  }
  victim.proc->Signal(SIGCONT);
  for (size_t i = 0; i + 1 < nodes.size(); ++i) {
    Subprocess& p = *nodes[i].proc;
    absl::StatusOr<size_t> joined = p.WaitForLine(
        IsEvent("joined", victim.name), kEventTimeout, left_at[i]);
    FABRIC_ASSERT_OK(joined) << nodes[i].name;
    const EventLine e = EventAt(p, *joined);
    EXPECT_EQ(e.short_id, victim.ShortId()) << "same incarnation, same id";
    EXPECT_EQ(e.peers, 2);
  }
  EXPECT_THAT(victim.proc->Wait(absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kDeadlineExceeded))
      << "the resumed node should still run";
}

TEST_F(LivenessTest, TerminatedNodeSaysGoodbyeAndExitsZero) {
  std::vector<NodeProcess> nodes;
  ASSERT_NO_FATAL_FAILURE(StartMesh(3, &nodes));
  NodeProcess& victim = nodes.back();
  victim.proc->Signal(SIGTERM);
  EXPECT_THAT(victim.proc->Wait(absl::Seconds(10)),
              ::fabric::testing::IsOkAndHolds(0));
  for (size_t i = 0; i + 1 < nodes.size(); ++i) {
    absl::StatusOr<size_t> left =
        nodes[i].proc->WaitForLine(IsEvent("left", victim.name), kEventTimeout);
    FABRIC_ASSERT_OK(left) << nodes[i].name;
    const EventLine e = EventAt(*nodes[i].proc, *left);
    EXPECT_EQ(e.reason, "goodbye") << nodes[i].name;
    EXPECT_EQ(e.short_id, victim.ShortId());
    EXPECT_EQ(e.peers, 1);
  }
}

// The survivors must see the old incarnation leave and the new one join
// under a new id, in either order, ending with the full count.
void ExpectRestartSeen(Subprocess& observer, const std::string& name,
                       const std::string& old_id, const std::string& new_id,
                       int expected_peers) {
  absl::StatusOr<size_t> joined = observer.WaitForLine(
      [&](absl::string_view line) {
        EventLine e;
        return ParseEvent(line, &e) && e.event == "joined" && e.name == name &&
               e.short_id == new_id;
      },
      kEventTimeout);
  FABRIC_ASSERT_OK(joined);
  absl::StatusOr<size_t> left = observer.WaitForLine(
      [&](absl::string_view line) {
        EventLine e;
        return ParseEvent(line, &e) && e.event == "left" && e.name == name &&
               e.short_id == old_id;
      },
      kEventTimeout);
  FABRIC_ASSERT_OK(left);
  EXPECT_EQ(EventAt(observer, std::max(*joined, *left)).peers, expected_peers)
      << absl::StrJoin(observer.StdoutLines(), "\n");
  for (const std::string& line : observer.StdoutLines()) {
    EXPECT_THAT(line, ::testing::Not(StartsWith(
                          absl::StrCat("back ", name, " ", old_id, " "))))
        << "the dead incarnation must not come back";
  }
}

TEST_F(LivenessTest, RestartedNodeRejoinsWithNewId) {
  std::vector<NodeProcess> nodes;
  ASSERT_NO_FATAL_FAILURE(StartMesh(3, &nodes));
  const std::string old_id = nodes.back().ShortId();
  nodes.back().proc->Signal(SIGKILL);
  ASSERT_THAT(nodes.back().proc->Wait(absl::Seconds(10)),
              ::fabric::testing::IsOkAndHolds(128 + SIGKILL));
  FABRIC_ASSERT_OK_AND_ASSIGN(NodeProcess again, StartNode("n2"));
  ASSERT_NE(again.ShortId(), old_id) << "a restart is a new incarnation";
  for (size_t i = 0; i + 1 < nodes.size(); ++i) {
    SCOPED_TRACE(nodes[i].name);
    ExpectRestartSeen(*nodes[i].proc, "n2", old_id, again.ShortId(), 2);
  }
}

// Same, but the new incarnation binds the same fixed mailbox port at once,
// so the survivors may hear its HELLO before they notice the old one died:
// the old one is then replaced.
TEST_F(LivenessTest, RestartOnSamePortReplacesOldIncarnation) {
  const uint16_t mailbox_port = FreeTcpPort();
  ASSERT_NE(mailbox_port, 0);
  const std::vector<std::string> fixed = {"--port", absl::StrCat(mailbox_port)};
  std::vector<NodeProcess> nodes;
  for (const char* name : {"n0", "n1"}) {
    FABRIC_ASSERT_OK_AND_ASSIGN(NodeProcess node, StartNode(name));
    nodes.push_back(std::move(node));
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(NodeProcess fixed_node, StartNode("n2", fixed));
  EXPECT_THAT(fixed_node.endpoint, HasSubstr(absl::StrCat(":", mailbox_port)));
  for (NodeProcess& node : nodes) {
    FABRIC_ASSERT_OK(
        node.proc->WaitForLineContaining(" peers=2 ", kEventTimeout));
  }
  const std::string old_id = fixed_node.ShortId();
  fixed_node.proc->Signal(SIGKILL);
  ASSERT_THAT(fixed_node.proc->Wait(absl::Seconds(10)),
              ::fabric::testing::IsOkAndHolds(128 + SIGKILL));
  FABRIC_ASSERT_OK_AND_ASSIGN(NodeProcess again, StartNode("n2", fixed));
  EXPECT_EQ(again.endpoint, fixed_node.endpoint);
  for (NodeProcess& node : nodes) {
    SCOPED_TRACE(node.name);
    ExpectRestartSeen(*node.proc, "n2", old_id, again.ShortId(), 2);
    absl::StatusOr<size_t> left =
        node.proc->WaitForLine(IsEvent("left", "n2"), absl::ZeroDuration());
    FABRIC_ASSERT_OK(left);
    const std::string reason = EventAt(*node.proc, *left).reason;
    EXPECT_TRUE(reason == "connection lost" ||
                reason == absl::StrCat("replaced by ", again.ShortId()))
        << reason;
  }
}

TEST_F(LivenessTest, OffersShowInJoinedLinesAndPeersJson) {
  FABRIC_ASSERT_OK_AND_ASSIGN(NodeProcess text_observer, StartNode("plain"));
  FABRIC_ASSERT_OK_AND_ASSIGN(NodeProcess json_observer,
                              StartNode("json", {}, /*json=*/true));
  FABRIC_ASSERT_OK_AND_ASSIGN(NodeProcess worker,
                              StartNode("worker", {"--offer", "queue=images"}));

  absl::StatusOr<size_t> joined = text_observer.proc->WaitForLine(
      IsEvent("joined", "worker"), kEventTimeout);
  FABRIC_ASSERT_OK(joined);
  EXPECT_EQ(EventAt(*text_observer.proc, *joined).offers, "queue:images");

  absl::StatusOr<size_t> json_joined = json_observer.proc->WaitForLine(
      [](absl::string_view line) {
        return absl::StrContains(line, "\"event\":\"joined\"") &&
               absl::StrContains(line, "\"name\":\"worker\"");
      },
      kEventTimeout);
  FABRIC_ASSERT_OK(json_joined);
  const std::string json_line = json_observer.proc->StdoutLines()[*json_joined];
  EXPECT_THAT(json_line, StartsWith("{"));
  EXPECT_THAT(json_line, HasSubstr(absl::StrCat("\"id\":\"", worker.id, "\"")));
  EXPECT_THAT(json_line, HasSubstr("\"offers\":{\"queue\":[\"images\"]}"));
  EXPECT_THAT(json_line, HasSubstr("\"reason\":\"hello\""));

  std::vector<std::string> argv = {
      FABRIC_CLI_PATH, "peers", "--json", "--min-peers", "3", "--wait", "20s"};
  for (std::string& flag : ClusterFlags()) argv.push_back(std::move(flag));
  FABRIC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Subprocess> peers,
                              Subprocess::Spawn(argv));
  ASSERT_THAT(peers->Wait(absl::Seconds(30)),
              ::fabric::testing::IsOkAndHolds(0))
      << peers->Stderr();
  // Wait for EOF so that every line has been read.
  EXPECT_THAT(peers->WaitForLine([](absl::string_view) { return false; },
                                 absl::Seconds(10)),
              StatusIs(absl::StatusCode::kUnavailable));
  std::string worker_object;
  for (const std::string& line : peers->StdoutLines()) {
    if (absl::StrContains(line, "\"name\":\"worker\"")) worker_object = line;
  }
  EXPECT_THAT(worker_object, HasSubstr("\"offers\":{\"queue\":[\"images\"]}"))
      << absl::StrJoin(peers->StdoutLines(), "\n");
  EXPECT_THAT(worker_object,
              HasSubstr(absl::StrCat("\"id\":\"", worker.id, "\"")));
}

}  // namespace
}  // namespace fabric
