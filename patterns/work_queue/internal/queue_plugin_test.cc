// SPDX-License-Identifier: Apache-2.0
// The work-queue plugin's routing and receiver rules (docs/protocol.md,
// "Receiver rules"), run without a node through a fake node context.
#include "patterns/work_queue/internal/queue_plugin.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_node_context.h"
#include "tests/testing/status_matchers.h"

namespace fabric::wq {
namespace {

using ::fabric::testing::FakeNodeContext;
using ::testing::ElementsAre;

// Records what the plugin hands a producer.
class RecordingProducer : public ProducerEndpoint {
 public:
  explicit RecordingProducer(std::string queue) : queue_(std::move(queue)) {}
  const std::string& queue() const override { return queue_; }
  void OnWorkerUp(NodeContext&, const NodeId& worker) override {
    events.push_back("up " + worker.ShortHex());
  }
  void OnWorkerDown(NodeContext&, const NodeId& worker, bool lost) override {
    events.push_back((lost ? "lost " : "down ") + worker.ShortHex());
  }
  void OnCredit(NodeContext&, const NodeId&, const Credit& m) override {
    events.push_back("credit " + std::to_string(m.grant));
  }
  void OnResults(NodeContext&, const NodeId&, const Results& m) override {
    events.push_back("results started=" + std::to_string(m.started.size()));
  }
  void OnExtend(NodeContext&, const NodeId&, const Extend&) override {
    events.push_back("extend");
  }
  void OnTick(NodeContext&, absl::Time) override { ticks++; }

  std::vector<std::string> events;
  int ticks = 0;

 private:
  std::string queue_;
};

class QueuePluginTest : public ::testing::Test {
 protected:
  QueuePluginTest() {
    worker_.id = NodeId::Random();
    worker_.offers["queue"] = {"jobs"};
    ctx_.AddPeer(worker_);
  }

  FakeClock clock_;
  FakeNodeContext ctx_{&clock_};
  QueuePlugin plugin_;
  PeerInfo worker_;
};

TEST_F(QueuePluginTest, ProducerHearsWorkersOfItsQueueAndTheirMessages) {
  auto producer = std::make_shared<RecordingProducer>("jobs");
  FABRIC_ASSERT_OK(plugin_.AddProducer(ctx_, producer));
  plugin_.OnMessage(ctx_, worker_, kCredit, EncodeCredit(Credit{"jobs", 4}));
  Results r;
  r.queue = "jobs";
  r.started = {StartedTask{1, 1}, StartedTask{2, 1}};
  plugin_.OnMessage(ctx_, worker_, kResults, EncodeResults(r));
  plugin_.OnPeerEvent(
      ctx_, PeerEvent{PeerEventType::kLeft, worker_, "dead", clock_.Now()});
  plugin_.OnTick(ctx_, clock_.Now());
  const std::string w = worker_.id.ShortHex();
  EXPECT_THAT(producer->events, ElementsAre("up " + w, "credit 4",
                                            "results started=2", "lost " + w));
  EXPECT_EQ(producer->ticks, 1);
}

TEST_F(QueuePluginTest, MalformedFramesAreCountedAndDropped) {
  auto producer = std::make_shared<RecordingProducer>("jobs");
  FABRIC_ASSERT_OK(plugin_.AddProducer(ctx_, producer));
  producer->events.clear();
  plugin_.OnMessage(ctx_, worker_, kResults, "\xc1 not msgpack");
  // A TASKS body where a CREDIT is expected: its grant is not a number.
  plugin_.OnMessage(ctx_, worker_, kCredit,
                    TasksEncoder("jobs", NodeId::Random()).Finish());
  EXPECT_EQ(plugin_.malformed(), 2u);
  EXPECT_TRUE(producer->events.empty());
  EXPECT_TRUE(ctx_.TakeSent().empty());
}

TEST_F(QueuePluginTest, CreditForAnAbsentProducerGoesStraightBack) {
  plugin_.OnMessage(ctx_, worker_, kCredit, EncodeCredit(Credit{"jobs", 9}));
  std::vector<FakeNodeContext::Sent> sent = ctx_.TakeSent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].to, worker_.id);
  ASSERT_EQ(sent[0].kind, kDemand);
  FABRIC_ASSERT_OK_AND_ASSIGN(Demand d, DecodeDemand(sent[0].body));
  EXPECT_EQ(d.backlog, 0u);
  EXPECT_EQ(d.credit_held, 9u);
}

TEST_F(QueuePluginTest, TasksForAQueueNotServedHereAreReleased) {
  TasksEncoder enc("jobs", NodeId::Random());
  enc.Add(5, 2, true, {}, "a");
  enc.Add(6, 1, false, {}, "b");
  plugin_.OnMessage(ctx_, worker_, kTasks, enc.Finish());
  std::vector<FakeNodeContext::Sent> sent = ctx_.TakeSent();
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_EQ(sent[0].kind, kResults);
  FABRIC_ASSERT_OK_AND_ASSIGN(Results r, DecodeResults(sent[0].body));
  ASSERT_EQ(r.others.size(), 2u);
  EXPECT_EQ(r.others[0].seq, 5u);
  EXPECT_EQ(r.others[0].attempt, 2u);
  EXPECT_EQ(r.others[0].verdict, Verdict::kRelease);
  EXPECT_EQ(r.others[0].reason, "queue not served here");
}

TEST_F(QueuePluginTest, OneProducerPerQueue) {
  FABRIC_ASSERT_OK(
      plugin_.AddProducer(ctx_, std::make_shared<RecordingProducer>("jobs")));
  EXPECT_THAT(
      plugin_.AddProducer(ctx_, std::make_shared<RecordingProducer>("jobs")),
      ::fabric::testing::StatusIs(absl::StatusCode::kAlreadyExists));
}

}  // namespace
}  // namespace fabric::wq
