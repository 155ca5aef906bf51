// SPDX-License-Identifier: Apache-2.0
// S10 of the security test plan (security-anchors.md section 7): no
// plaintext on the wire in secure mode. Each case runs one pattern between
// two in-process nodes over TCP loopback while `LoopbackCapture` reads `lo`
// and searches the segments of those nodes' mailbox and XPUB ports for a
// marker carried in every message body. Secure: the marker is never seen,
// yet the capture saw at least as many payload bytes as the bodies hold.
// The plaintext control runs the same code and must see the marker.
#include <atomic>
#include <iostream>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "fabric/node.h"
#include "gtest/gtest.h"
#include "patterns/pubsub/publisher.h"
#include "patterns/pubsub/subscriber.h"
#include "patterns/reqrep/client.h"
#include "patterns/reqrep/server.h"
#include "patterns/work_queue/producer.h"
#include "patterns/work_queue/worker.h"
#include "tests/testing/loopback_capture.h"
#include "tests/testing/secure_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::testing::CaptureResult;
using ::fabric::testing::IsOk;
using ::fabric::testing::LoopbackCapture;
using ::fabric::testing::WaitUntil;

constexpr absl::Duration kWait = absl::Seconds(30);
// Messages per case; each body holds the marker once.
constexpr int kMessages = 100;

enum class Scenario { kWorkQueue, kReqRep, kPubSub, kDurableReplay };

std::string ScenarioName(Scenario s) {
  switch (s) {
    case Scenario::kWorkQueue:
      return "WorkQueue";
    case Scenario::kReqRep:
      return "ReqRep";
    case Scenario::kPubSub:
      return "PubSub";
    case Scenario::kDurableReplay:
      return "DurableReplay";
    default:
      return "Unknown";
  }
}

// Returns the port of "tcp://host:port", or 0.
uint16_t PortOf(absl::string_view endpoint) {
  const size_t colon = endpoint.rfind(':');
  uint32_t port = 0;
  if (colon == absl::string_view::npos ||
      !absl::SimpleAtoi(endpoint.substr(colon + 1), &port) || port > 65535) {
    return 0;
  }
  return static_cast<uint16_t>(port);
}

class SecurityWireTest
    : public ::testing::TestWithParam<std::tuple<Scenario, bool>> {
 protected:
  void SetUp() override {
    testing::ClearFabricEnvironment();
    // Unique per run: a marker left in some buffer by an earlier run (or a
    // concurrent one) can never be counted.
    marker_ = absl::StrCat("fabric-wire-marker-", NodeId::Random().ToHex());
    absl::StatusOr<std::unique_ptr<LoopbackCapture>> capture =
        LoopbackCapture::Start(marker_);
    if (absl::IsPermissionDenied(capture.status())) {
      GTEST_SKIP() << "cannot capture on lo (needs CAP_NET_RAW, e.g. root): "
                   << capture.status();
    }
    ASSERT_THAT(capture, IsOk());
    capture_ = std::move(*capture);
    // Every member's key is in the roster before any node starts, so no
    // node refuses a later one while its roster reloads.
    if (secure()) {
      for (const char* name : {"producer", "worker", "server", "client",
                               "publisher", "subscriber", "late-subscriber"}) {
        keys_.AddMember(name);
      }
    }
  }

  Scenario scenario() const { return std::get<0>(GetParam()); }
  bool secure() const { return std::get<1>(GetParam()); }

  // Starts node `name` (its own key in secure mode) and registers its
  // mailbox port with the capture before anything is sent to it.
  std::unique_ptr<Node> StartNode(const std::string& name) {
    NodeOptions o;
    o.name = name;
    o.cluster = cluster_;
    o.beacon_port = beacon_port_;
    o.beacon_interval = absl::Milliseconds(200);
    if (secure()) o.security = keys_.Options(name);
    absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(std::move(o));
    EXPECT_THAT(node, IsOk());
    if (!node.ok()) return nullptr;
    EXPECT_EQ((*node)->security() != nullptr, secure());
    EXPECT_THAT(capture_->AddPort(PortOf((*node)->mailbox_endpoint())), IsOk());
    return std::move(*node);
  }

  // The marker, the message's number and padding, so that the bodies
  // outweigh handshakes and control traffic on the wire.
  std::string Body(int i) const {
    return absl::StrCat(marker_, " #", i, " ", std::string(200, '.'));
  }

  // Marks the start of the phase that carries the bodies: the bytes the
  // capture counts from here on must at least hold them.
  void MarkPhase() {
    absl::StatusOr<CaptureResult> now = capture_->Sync(absl::Seconds(10));
    EXPECT_THAT(now, IsOk());
    if (now.ok()) phase_start_ = *now;
  }

  // Each returns the number of bodies that arrived intact at the far end.
  int RunWorkQueue();
  int RunReqRep();
  int RunPubSub();
  int RunDurableReplay();

  testing::SecureCluster keys_;
  const std::string cluster_ = testing::UniqueClusterName("wire");
  const uint16_t beacon_port_ = testing::FreeUdpPort();
  std::string marker_;
  std::unique_ptr<LoopbackCapture> capture_;
  CaptureResult phase_start_;
};

int SecurityWireTest::RunWorkQueue() {
  auto pn = StartNode("producer");
  auto wn = StartNode("worker");
  if (!pn || !wn) return 0;
  std::atomic<int> intact{0};
  WorkerOptions wo;
  wo.queues = {"wire"};
  wo.handler = [&](const Task& t, TaskContext&) {
    if (absl::StartsWith(t.body, marker_)) intact.fetch_add(1);
    return Outcome::Ack();
  };
  absl::StatusOr<std::unique_ptr<Worker>> worker =
      Worker::Create(*wn, std::move(wo));
  ProducerOptions po;
  po.queue = "wire";
  absl::StatusOr<std::unique_ptr<Producer>> producer =
      Producer::Create(*pn, std::move(po));
  EXPECT_THAT(worker, IsOk());
  EXPECT_THAT(producer, IsOk());
  if (!worker.ok() || !producer.ok()) return 0;
  EXPECT_TRUE(
      WaitUntil([&] { return (*producer)->Stats().workers >= 1; }, kWait));
  MarkPhase();
  for (int i = 0; i < kMessages; ++i) {
    EXPECT_THAT((*producer)->Push(Body(i)).status(), IsOk());
  }
  EXPECT_THAT((*producer)->WaitCompleted(kWait), IsOk());
  EXPECT_EQ((*producer)->Stats().acked, static_cast<uint64_t>(kMessages));
  (*worker)->Close();
  return intact.load();
}

int SecurityWireTest::RunReqRep() {
  auto sn = StartNode("server");
  auto cn = StartNode("client");
  if (!sn || !cn) return 0;
  ServerOptions so;
  so.service = "echo";
  so.handler = SyncHandler(
      [](const Request& r) -> absl::StatusOr<std::string> { return r.body; });
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Create(*sn, std::move(so));
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(*cn);
  EXPECT_THAT(server, IsOk());
  EXPECT_THAT(client, IsOk());
  if (!server.ok() || !client.ok()) return 0;
  EXPECT_THAT((*client)->WaitForServer("echo", kWait), IsOk());
  MarkPhase();
  int intact = 0;
  CallOptions call;
  call.timeout = absl::Seconds(10);
  for (int i = 0; i < kMessages; ++i) {
    absl::StatusOr<Reply> reply = (*client)->Call("echo", Body(i), call);
    EXPECT_THAT(reply, IsOk());
    if (reply.ok() && reply->body == Body(i)) ++intact;
  }
  return intact;
}

int SecurityWireTest::RunPubSub() {
  auto pn = StartNode("publisher");
  auto sn = StartNode("subscriber");
  if (!pn || !sn) return 0;
  absl::StatusOr<std::unique_ptr<Publisher>> pub =
      Publisher::Create(*pn, PublisherOptions());
  EXPECT_THAT(pub, IsOk());
  if (!pub.ok()) return 0;
  EXPECT_THAT(capture_->AddPort(PortOf((*pub)->endpoint())), IsOk());
  std::atomic<int> intact{0};
  SubscriberOptions so;
  so.prefixes = {"wire."};
  so.handler = [&](const Message& m) {
    if (m.body.find(marker_) == 0) intact.fetch_add(1);
  };
  absl::StatusOr<std::unique_ptr<Subscriber>> sub =
      Subscriber::Create(*sn, std::move(so));
  EXPECT_THAT(sub, IsOk());
  if (!sub.ok()) return 0;
  EXPECT_THAT((*pub)->WaitForSubscribers(1, kWait), IsOk());
  MarkPhase();
  for (int i = 0; i < kMessages; ++i) {
    EXPECT_THAT((*pub)->Publish("wire.live", Body(i)).status(), IsOk());
  }
  EXPECT_TRUE(WaitUntil([&] { return intact.load() >= kMessages; }, kWait));
  (*sub)->Close();
  return intact.load();
}

// The bodies travel only in the replay: all are published (and flushed to
// the topic log) before the subscriber's node exists.
int SecurityWireTest::RunDurableReplay() {
  const std::string dir = testing::MakeTempDir("wire");
  auto pn = StartNode("publisher");
  if (!pn) return 0;
  PublisherOptions po;
  po.durable_topics = {"wire.audit"};
  po.spool_dir = dir + "/topics";
  po.fsync = FsyncPolicy::kNone;
  absl::StatusOr<std::unique_ptr<Publisher>> pub =
      Publisher::Create(*pn, std::move(po));
  EXPECT_THAT(pub, IsOk());
  if (!pub.ok()) return 0;
  EXPECT_THAT(capture_->AddPort(PortOf((*pub)->endpoint())), IsOk());
  for (int i = 0; i < kMessages; ++i) {
    EXPECT_THAT((*pub)->Publish("wire.audit", Body(i)).status(), IsOk());
  }
  EXPECT_THAT((*pub)->Flush(kWait), IsOk());

  auto sn = StartNode("late-subscriber");
  if (!sn) return 0;
  // The phase starts once the nodes have met: it holds the subscriber's
  // connection to the XPUB, its replay request and the replay.
  const auto sees = [](const Node& node, const NodeId& id) {
    absl::StatusOr<std::vector<PeerInfo>> peers = node.Peers();
    if (!peers.ok()) return false;
    for (const PeerInfo& p : *peers) {
      if (p.id == id) return true;
    }
    return false;
  };
  EXPECT_TRUE(WaitUntil(
      [&] { return sees(*pn, sn->id()) && sees(*sn, pn->id()); }, kWait));
  MarkPhase();
  std::atomic<int> intact{0};
  SubscriberOptions so;
  so.prefixes = {"wire.audit"};
  so.durable_name = "wire";
  so.state_dir = dir + "/positions";
  so.start.kind = StartPosition::Kind::kEarliest;
  so.handler = [&](const Message& m) {
    if (m.replayed && m.body.find(marker_) == 0) intact.fetch_add(1);
  };
  absl::StatusOr<std::unique_ptr<Subscriber>> sub =
      Subscriber::Create(*sn, std::move(so));
  EXPECT_THAT(sub, IsOk());
  if (!sub.ok()) return 0;
  EXPECT_TRUE(WaitUntil([&] { return intact.load() >= kMessages; }, kWait));
  EXPECT_EQ((*sub)->Stats().replayed, static_cast<uint64_t>(kMessages));
  (*sub)->Close();
  return intact.load();
}

TEST_P(SecurityWireTest, MarkerBodiesAreEncryptedOnTheWire) {
  int intact = 0;
  switch (scenario()) {
    case Scenario::kWorkQueue:
      intact = RunWorkQueue();
      break;
    case Scenario::kReqRep:
      intact = RunReqRep();
      break;
    case Scenario::kPubSub:
      intact = RunPubSub();
      break;
    case Scenario::kDurableReplay:
      intact = RunDurableReplay();
      break;
    default:
      FAIL() << "unknown scenario";
  }
  // Every body arrived: the traffic the capture judged really happened.
  EXPECT_EQ(intact, kMessages);
  absl::StatusOr<CaptureResult> r = capture_->Stop(absl::Seconds(10));
  ASSERT_THAT(r, IsOk());
  const uint64_t phase_bytes = r->payload_bytes - phase_start_.payload_bytes;
  std::cout << ScenarioName(scenario()) << (secure() ? " curve" : " plaintext")
            << ": " << r->segments << " segments, " << r->payload_bytes
            << " payload bytes on the nodes' ports (" << phase_bytes
            << " while the " << kMessages << " bodies of " << Body(0).size()
            << "+ bytes went), " << r->marker_hits << " marker hits; "
            << r->packets << " packets on lo, " << r->kernel_drops
            << " dropped, SO_RCVBUF " << r->receive_buffer << "\n";
  // The capture is trustworthy: the buffer the plan asks for, nothing
  // dropped or cut, and while the bodies went at least their bytes seen
  // on those ports (encrypted or not, they crossed there).
  EXPECT_GE(r->receive_buffer, LoopbackCapture::kReceiveBuffer);
  EXPECT_EQ(r->kernel_drops, 0u);
  EXPECT_EQ(r->truncated, 0u);
  EXPECT_GE(phase_bytes, kMessages * Body(0).size());
  if (secure()) {
    EXPECT_EQ(r->marker_hits, 0u) << "plaintext body seen in secure mode";
  } else {
    EXPECT_GE(r->marker_hits, static_cast<uint64_t>(kMessages))
        << "the control must see every body";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Patterns, SecurityWireTest,
    ::testing::Combine(::testing::Values(Scenario::kWorkQueue,
                                         Scenario::kReqRep, Scenario::kPubSub,
                                         Scenario::kDurableReplay),
                       ::testing::Bool()),
    [](const ::testing::TestParamInfo<SecurityWireTest::ParamType>& info) {
      return ScenarioName(std::get<0>(info.param)) +
             (std::get<1>(info.param) ? "Curve" : "Plaintext");
    });

}  // namespace
}  // namespace fabric
