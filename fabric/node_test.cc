// SPDX-License-Identifier: Apache-2.0
// Node behaviour with several nodes in one process, over real loopback
// sockets. Multi-process behaviour is in tests/integration/.
#include "fabric/node.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>
#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "discovery/beacon.h"
#include "fabric/base/clock.h"
#include "fabric/codec/control.h"
#include "fabric/codec/envelope.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::testing::StatusIs;
using ::fabric::testing::WaitUntil;

static_assert(!std::is_copy_constructible_v<Node>);
static_assert(!std::is_copy_assignable_v<Node>);

constexpr absl::Duration kWait = absl::Seconds(20);

// Collects the events one node reports. Thread-safe.
class EventLog {
 public:
  std::function<void(const PeerEvent&)> Callback() {
    return [this](const PeerEvent& e) {
      absl::MutexLock lock(&mu_);
      events_.push_back(e);
    };
  }
  bool Has(PeerEventType type, const NodeId& id,
           absl::string_view reason = "") {
    absl::MutexLock lock(&mu_);
    for (const PeerEvent& e : events_) {
      if (e.type == type && e.peer.id == id &&
          (reason.empty() || e.reason == reason)) {
        return true;
      }
    }
    return false;
  }

 private:
  absl::Mutex mu_;
  std::vector<PeerEvent> events_ ABSL_GUARDED_BY(mu_);
};

class NodeTest : public ::testing::Test {
 protected:
  NodeOptions Options(const std::string& name) {
    NodeOptions o;
    o.name = name;
    o.cluster = cluster_;
    o.beacon_port = port_;
    o.beacon_interval = absl::Milliseconds(200);
    return o;
  }
  std::unique_ptr<Node> StartNode(NodeOptions o) {
    absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(std::move(o));
    EXPECT_THAT(node, ::fabric::testing::IsOk());
    return node.ok() ? std::move(*node) : nullptr;
  }
  static size_t PeerCount(const Node& node) {
    absl::StatusOr<std::vector<PeerInfo>> peers = node.Peers();
    return peers.ok() ? peers->size() : 0;
  }
  static bool SeesOffer(const Node& node, const NodeId& id,
                        const std::string& kind, const std::string& name) {
    absl::StatusOr<std::vector<PeerInfo>> peers = node.Peers();
    if (!peers.ok()) return false;
    for (const PeerInfo& p : *peers) {
      if (p.id == id) return p.HasOffer(kind, name);
    }
    return false;
  }

  const std::string cluster_ = ::fabric::testing::UniqueClusterName("node");
  const uint16_t port_ = ::fabric::testing::FreeUdpPort();
};

TEST_F(NodeTest, NodesOnLoopbackFindEachOther) {
  std::vector<std::unique_ptr<Node>> nodes;
  for (int i = 0; i < 4; ++i) {
    nodes.push_back(StartNode(Options("n" + std::to_string(i))));
    ASSERT_NE(nodes.back(), nullptr);
  }
  for (auto& node : nodes) {
    EXPECT_TRUE(WaitUntil([&] { return PeerCount(*node) == 3; }, kWait))
        << node->name() << " sees " << PeerCount(*node);
  }
  absl::StatusOr<std::vector<PeerInfo>> peers = nodes[0]->Peers();
  ASSERT_THAT(peers, ::fabric::testing::IsOk());
  EXPECT_EQ((*peers)[0].name, "n1");
  EXPECT_THAT((*peers)[0].mailbox_endpoint,
              ::testing::StartsWith("tcp://127.0.0.1:"));
  EXPECT_GT(nodes[0]->Stats().beacons_sent, 0u);
}

TEST_F(NodeTest, BeaconsReplacePingsBetweenLoopbackPeers) {
  auto a = StartNode(Options("a"));
  auto b = StartNode(Options("b"));
  ASSERT_TRUE(WaitUntil([&] { return PeerCount(*a) == 1; }, kWait));
  // Stay alive over several heartbeat intervals on beacons alone.
  const uint64_t beacons = a->Stats().beacons_received;
  ASSERT_TRUE(WaitUntil(
      [&] { return a->Stats().beacons_received >= beacons + 15; }, kWait));
  EXPECT_EQ(a->Stats().heartbeats_sent, 0u);
  EXPECT_EQ(b->Stats().heartbeats_sent, 0u);
  absl::StatusOr<std::vector<PeerInfo>> peers = a->Peers();
  ASSERT_THAT(peers, ::fabric::testing::IsOk());
  ASSERT_EQ(peers->size(), 1u);
  EXPECT_EQ((*peers)[0].state, PeerState::kAlive);
  EXPECT_EQ((*peers)[0].discovery, "loopback");
}

TEST_F(NodeTest, OfferChangeReachesPeers) {
  auto a = StartNode(Options("a"));
  EventLog log;
  NodeOptions ob = Options("b");
  ob.on_peer_event = log.Callback();
  auto b = StartNode(std::move(ob));
  ASSERT_TRUE(WaitUntil([&] { return PeerCount(*b) == 1; }, kWait));
  FABRIC_ASSERT_OK(a->SetOffer("queue", "images", true));
  EXPECT_TRUE(WaitUntil(
      [&] { return SeesOffer(*b, a->id(), "queue", "images"); }, kWait));
  // The event thread may deliver `updated` just after Peers() shows it.
  EXPECT_TRUE(WaitUntil(
      [&] { return log.Has(PeerEventType::kUpdated, a->id()); }, kWait));
  FABRIC_ASSERT_OK(a->SetOffer("queue", "images", false));
  EXPECT_TRUE(WaitUntil(
      [&] { return !SeesOffer(*b, a->id(), "queue", "images"); }, kWait));
  FABRIC_ASSERT_OK(a->SetHeader("zone", "eu"));
  EXPECT_TRUE(WaitUntil(
      [&] {
        absl::StatusOr<std::vector<PeerInfo>> peers = b->Peers();
        return peers.ok() && !peers->empty() &&
               (*peers)[0].headers.count("zone") == 1;
      },
      kWait));
}

// A plugin that answers every kind-100 message with kind-101 "pong:<body>"
// and records what it receives.
class EchoPlugin : public Plugin {
 public:
  std::vector<uint16_t> kinds() const override { return {100, 101}; }
  void OnAttach(NodeContext& node) override {
    EXPECT_TRUE(node.SetOffer("service", "echo", true).ok());
  }
  void OnMessage(NodeContext& node, const PeerInfo& from, uint16_t kind,
                 absl::string_view body) override {
    if (kind == 100) {
      node.Send(from.id, 101, absl::StrCat("pong:", body)).IgnoreError();
      return;
    }
    absl::MutexLock lock(&mu_);
    replies_.emplace_back(body);
  }
  std::vector<std::string> replies() {
    absl::MutexLock lock(&mu_);
    return replies_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> replies_ ABSL_GUARDED_BY(mu_);
};

TEST_F(NodeTest, PluginsExchangeMessages) {
  auto a = StartNode(Options("a"));
  auto b = StartNode(Options("b"));
  auto pa = std::make_shared<EchoPlugin>();
  auto pb = std::make_shared<EchoPlugin>();
  FABRIC_ASSERT_OK(a->AttachPlugin(pa));
  FABRIC_ASSERT_OK(b->AttachPlugin(pb));
  EXPECT_THAT(a->AttachPlugin(std::make_shared<EchoPlugin>()),
              StatusIs(absl::StatusCode::kAlreadyExists));
  ASSERT_TRUE(WaitUntil(
      [&] { return SeesOffer(*a, b->id(), "service", "echo"); }, kWait));
  const NodeId target = b->id();
  // Seeing b's HELLO does not mean a's own link to b is connected yet;
  // until it is, Send is refused (kUnavailable), never queued.
  absl::Status send_status;
  ASSERT_TRUE(WaitUntil(
      [&] {
        absl::Notification sent;
        if (!a->Post([&](NodeContext& ctx) {
                send_status = ctx.Send(target, 100, "hi");
                sent.Notify();
              }).ok()) {
          return false;
        }
        sent.WaitForNotification();
        if (absl::IsUnavailable(send_status)) {
          absl::SleepFor(absl::Milliseconds(10));
          return false;
        }
        return true;
      },
      kWait));
  FABRIC_ASSERT_OK(send_status);
  // b's own link back to a may still be connecting when "hi" arrives, and
  // b's answer is then refused, not queued: say hi again until one lands.
  ASSERT_TRUE(WaitUntil(
      [&] {
        if (WaitUntil([&] { return !pa->replies().empty(); },
                      absl::Milliseconds(500))) {
          return true;
        }
        (void)a->Post(
            [target](NodeContext& ctx) { (void)ctx.Send(target, 100, "hi"); });
        return false;
      },
      kWait));
  EXPECT_EQ(pa->replies()[0], "pong:hi");

  absl::Notification unknown;
  absl::Status unknown_status;
  FABRIC_ASSERT_OK(a->Post([&](NodeContext& ctx) {
    unknown_status = ctx.Send(NodeId::Random(), 100, "x");
    unknown.Notify();
  }));
  ASSERT_TRUE(unknown.WaitForNotificationWithTimeout(kWait));
  EXPECT_THAT(unknown_status, StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(NodeTest, SendDirectReachesPeerFromManyThreadsInOrder) {
  auto a = StartNode(Options("a"));
  auto b = StartNode(Options("b"));
  auto pb = std::make_shared<EchoPlugin>();
  FABRIC_ASSERT_OK(b->AttachPlugin(pb));
  const NodeId target = b->id();
  EXPECT_THAT(a->SendDirect(NodeId::Random(), 101, "x"),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(
      a->SendDirect(target, static_cast<uint16_t>(MessageKind::kGoodbye), ""),
      StatusIs(absl::StatusCode::kInvalidArgument));
  // Refused (never queued) until a's link to b is connected and b
  // introduced itself.
  ASSERT_TRUE(WaitUntil(
      [&] {
        absl::Status s = a->SendDirect(target, 101, "first");
        if (absl::IsUnavailable(s)) {
          absl::SleepFor(absl::Milliseconds(10));
          return false;
        }
        EXPECT_THAT(s, ::fabric::testing::IsOk());
        return true;
      },
      kWait));
  // Four threads send while the engine keeps using the same link for its
  // own traffic; each thread's messages arrive in its order.
  constexpr int kThreads = 4;
  constexpr int kEach = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string body = absl::StrCat(t, ":", i);
        while (absl::IsResourceExhausted(a->SendDirect(target, 101, body))) {
          absl::SleepFor(absl::Milliseconds(1));
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE(WaitUntil(
      [&] { return pb->replies().size() == 1 + kThreads * kEach; }, kWait));
  std::vector<std::string> got = pb->replies();
  EXPECT_EQ(got[0], "first");
  std::vector<int> next(kThreads, 0);
  for (size_t k = 1; k < got.size(); ++k) {
    const size_t colon = got[k].find(':');
    ASSERT_NE(colon, std::string::npos) << got[k];
    const int t = std::stoi(got[k].substr(0, colon));
    ASSERT_EQ(got[k], absl::StrCat(t, ":", next[t])) << "out of order";
    ++next[t];
  }
  // The sends are counted as the engine's own are.
  EXPECT_GE(a->Stats().messages_sent, 1u + kThreads * kEach);
  ASSERT_TRUE(WaitUntil(
      [&] {
        absl::StatusOr<std::vector<PeerInfo>> peers = a->Peers();
        return peers.ok() && peers->size() == 1 &&
               (*peers)[0].messages_out >= 1 + kThreads * kEach;
      },
      kWait));
  a->Close();
  a->Join();
  EXPECT_THAT(a->SendDirect(target, 101, "after close"),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(NodeTest, OwnHelloStaysWithinPeerLimits) {
  auto a = StartNode(Options("a"));
  EXPECT_THAT(a->SetOffer("queue", std::string(kMaxStringBytes + 1, 'x'), true),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(a->SetOffer("", "x", true),
              StatusIs(absl::StatusCode::kInvalidArgument));
  for (size_t i = 0; i < kMaxOfferKinds; ++i) {
    FABRIC_ASSERT_OK(a->SetOffer(absl::StrCat("kind", i), "x", true));
  }
  EXPECT_THAT(a->SetOffer("one-too-many", "x", true),
              StatusIs(absl::StatusCode::kResourceExhausted));
  for (size_t i = 0; i < kMaxHeaders; ++i) {
    FABRIC_ASSERT_OK(a->SetHeader(absl::StrCat("h", i), "v"));
  }
  EXPECT_THAT(a->SetHeader("one-too-many", "v"),
              StatusIs(absl::StatusCode::kResourceExhausted));
  FABRIC_EXPECT_OK(a->SetHeader("h0", ""));  // removing makes room again
  FABRIC_EXPECT_OK(a->SetHeader("fits-now", "v"));
}

TEST_F(NodeTest, PluginsCannotSendCoreKinds) {
  auto a = StartNode(Options("a"));
  auto b = StartNode(Options("b"));
  ASSERT_TRUE(WaitUntil([&] { return PeerCount(*a) == 1; }, kWait));
  const NodeId target = b->id();
  absl::Notification done;
  absl::Status status;
  FABRIC_ASSERT_OK(a->Post([&](NodeContext& ctx) {
    status = ctx.Send(target, static_cast<uint16_t>(MessageKind::kGoodbye), "");
    done.Notify();
  }));
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(NodeTest, PluginKindsBelowPatternRangeAreRejected) {
  class Bad : public Plugin {
   public:
    std::vector<uint16_t> kinds() const override { return {3}; }
    void OnMessage(NodeContext&, const PeerInfo&, uint16_t,
                   absl::string_view) override {}
  };
  auto a = StartNode(Options("a"));
  EXPECT_THAT(a->AttachPlugin(std::make_shared<Bad>()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// The engine reads the injected clock, and a plugin's WakeAt brings a tick
// sooner than the regular 50 ms one: with time stopped 10 ms after start,
// only the asked-for wake-up can produce a tick at that time.
TEST_F(NodeTest, InjectedClockAndPluginWakeUps) {
  class Ticker : public Plugin {
   public:
    std::vector<uint16_t> kinds() const override { return {900}; }
    void OnMessage(NodeContext&, const PeerInfo&, uint16_t,
                   absl::string_view) override {}
    void OnTick(NodeContext&, absl::Time now) override {
      absl::MutexLock lock(&mu_);
      ticks_.push_back(now);
    }
    bool TickedAt(absl::Time t) {
      absl::MutexLock lock(&mu_);
      return std::find(ticks_.begin(), ticks_.end(), t) != ticks_.end();
    }

   private:
    absl::Mutex mu_;
    std::vector<absl::Time> ticks_ ABSL_GUARDED_BY(mu_);
  };
  FakeClock clock;
  const absl::Time t0 = clock.Now();
  NodeOptions o = Options("a");
  o.clock = &clock;
  auto a = StartNode(std::move(o));
  auto ticker = std::make_shared<Ticker>();
  FABRIC_ASSERT_OK(a->AttachPlugin(ticker));
  absl::Time seen = absl::InfinitePast();
  FABRIC_ASSERT_OK(a->Call([&](NodeContext& ctx) {
    seen = ctx.Now();
    ctx.WakeAt(t0 + absl::Milliseconds(10));
    return absl::OkStatus();
  }));
  EXPECT_EQ(seen, t0);  // the engine's time is the fake clock's
  clock.Advance(absl::Milliseconds(10));
  EXPECT_TRUE(WaitUntil(
      [&] { return ticker->TickedAt(t0 + absl::Milliseconds(10)); }, kWait));
}

TEST_F(NodeTest, CleanCloseIsSeenAsGoodbye) {
  EventLog log;
  NodeOptions oa = Options("a");
  oa.on_peer_event = log.Callback();
  auto a = StartNode(std::move(oa));
  auto b = StartNode(Options("b"));
  ASSERT_TRUE(WaitUntil(
      [&] { return log.Has(PeerEventType::kJoined, b->id()); }, kWait));
  const NodeId b_id = b->id();
  b->Close();
  b->Close();  // idempotent
  EXPECT_THAT(b->Post([](NodeContext&) {}),
              StatusIs(absl::StatusCode::kCancelled));
  b.reset();
  EXPECT_TRUE(WaitUntil(
      [&] { return log.Has(PeerEventType::kLeft, b_id, "goodbye"); }, kWait));
}

TEST_F(NodeTest, IdleNodesSleepBetweenTimers) {
  // The loop sleeps until a socket is ready or a timer is due, and
  // coalesces timers and beacon reads into quarter-second slots: an idle
  // node wakes a few times a second, alone or among peers (a fixed 50 ms
  // sweep woke it 20 times). A loaded machine only makes the count lower.
  constexpr int kNodes = 5;
  constexpr absl::Duration kWindow = absl::Seconds(3);
  constexpr uint64_t kMaxWakeupsPerSecond = 8;
  auto idle = [&](const std::string& name) {
    NodeOptions o = Options(name);
    o.beacon_interval = absl::Seconds(1);  // the defaults
    o.heartbeat_interval = absl::Seconds(1);
    return o;
  };
  auto wakeups_over_window = [&](const Node& node) {
    const uint64_t before = node.Stats().loop_wakeups;
    absl::SleepFor(kWindow);
    return node.Stats().loop_wakeups - before;
  };
  std::vector<std::unique_ptr<Node>> nodes;
  nodes.push_back(StartNode(idle("n0")));
  ASSERT_NE(nodes[0], nullptr);
  absl::SleepFor(absl::Seconds(1));  // past the start-up
  const uint64_t alone = wakeups_over_window(*nodes[0]);
  EXPECT_GT(alone, 0u);  // it does wake: beacons go out
  EXPECT_LE(alone, kMaxWakeupsPerSecond * absl::ToInt64Seconds(kWindow));
  for (int i = 1; i < kNodes; ++i) {
    nodes.push_back(StartNode(idle("n" + std::to_string(i))));
  }
  ASSERT_TRUE(WaitUntil(
      [&] {
        for (const auto& n : nodes) {
          if (PeerCount(*n) != kNodes - 1) return false;
        }
        return true;
      },
      kWait));
  const uint64_t among_peers = wakeups_over_window(*nodes[0]);
  EXPECT_LE(among_peers, kMaxWakeupsPerSecond * absl::ToInt64Seconds(kWindow));
}

TEST_F(NodeTest, OtherClustersAreIgnoredAndCounted) {
  auto a = StartNode(Options("a"));
  NodeOptions other = Options("stranger");
  other.cluster = cluster_ + "-other";
  auto b = StartNode(std::move(other));
  ASSERT_TRUE(
      WaitUntil([&] { return a->Stats().beacons_other_cluster >= 3; }, kWait));
  EXPECT_EQ(PeerCount(*a), 0u);
  EXPECT_EQ(PeerCount(*b), 0u);
}

TEST_F(NodeTest, GarbageBeaconsAndFramesAreCountedNotFatal) {
  auto a = StartNode(Options("a"));
  auto b = StartNode(Options("b"));
  ASSERT_TRUE(WaitUntil([&] { return PeerCount(*a) == 1; }, kWait));

  // Garbage datagrams on the beacon port: junk, a future version, and a
  // truncated beacon.
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port_);
  inet_pton(AF_INET, "127.255.255.255", &to.sin_addr);
  discovery::Beacon beacon;
  beacon.id = NodeId::Random();
  beacon.mailbox_port = 1;
  std::string future = discovery::EncodeBeacon(beacon);
  future[4] = 9;
  for (const std::string& d :
       {std::string("hello world"), future, future.substr(0, 10)}) {
    sendto(fd, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&to),
           sizeof(to));
  }
  close(fd);
  EXPECT_TRUE(WaitUntil(
      [&] {
        NodeStats s = a->Stats();
        return s.beacons_malformed >= 1 && s.beacons_wrong_version >= 2;
      },
      kWait));

  // Garbage frames into the mailbox: not msgpack, another envelope version,
  // an oversized frame, and a valid PING from a stranger.
  zmq::context_t ctx;
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(a->mailbox_endpoint());
  std::string v9 = EncodeEnvelope(MessageKind::kPing, NodeId::Random(), "");
  v9[1] = 9;
  dealer.send(zmq::str_buffer("\xc1\xc1\xc1"));
  dealer.send(zmq::buffer(v9));
  dealer.send(zmq::buffer(
      EncodeEnvelope(MessageKind::kPing, NodeId::Random(), "\x91\x01")));
  // A HELLO of our cluster naming a non-TCP mailbox must not be followed.
  Hello ipc_hello;
  ipc_hello.id = NodeId::Random();
  ipc_hello.cluster = cluster_;
  ipc_hello.mailbox_endpoint = "ipc:///tmp/fabric-not-a-mailbox";
  dealer.send(zmq::buffer(EncodeEnvelope(MessageKind::kHello, ipc_hello.id,
                                         EncodeHello(ipc_hello))));
  EXPECT_TRUE(WaitUntil(
      [&] {
        NodeStats s = a->Stats();
        return s.messages_malformed >= 2 && s.messages_wrong_version >= 1 &&
               s.messages_unknown_sender >= 1;
      },
      kWait));
  // A message of more than one part is malformed once, however many parts
  // it has. A stranger's PING after it marks when it has been handled.
  const NodeStats before = a->Stats();
  dealer.send(zmq::str_buffer("one"), zmq::send_flags::sndmore);
  dealer.send(zmq::str_buffer("two"), zmq::send_flags::sndmore);
  dealer.send(zmq::str_buffer("three"));
  dealer.send(
      zmq::buffer(EncodeEnvelope(MessageKind::kPing, NodeId::Random(), "")));
  EXPECT_TRUE(WaitUntil(
      [&] {
        return a->Stats().messages_unknown_sender >=
               before.messages_unknown_sender + 1;
      },
      kWait));
  EXPECT_EQ(a->Stats().messages_malformed, before.messages_malformed + 1);

  // The stranger is asked to introduce itself rather than trusted.
  zmq::message_t reply;
  dealer.set(zmq::sockopt::rcvtimeo, 10000);
  ASSERT_TRUE(dealer.recv(reply));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      EnvelopeView env,
      DecodeEnvelope(absl::string_view(reply.data<char>(), reply.size()),
                     1 << 20));
  EXPECT_EQ(env.kind, static_cast<uint16_t>(MessageKind::kHelloRequest));

  // The node is still healthy and still sees its real peer.
  EXPECT_EQ(PeerCount(*a), 1u);
  FABRIC_ASSERT_OK(a->SetOffer("queue", "after-garbage", true));
  EXPECT_TRUE(WaitUntil(
      [&] { return SeesOffer(*b, a->id(), "queue", "after-garbage"); }, kWait));
}

TEST_F(NodeTest, SeedsModeLearnsEveryoneByGossip) {
  const uint16_t seed_port = ::fabric::testing::FreeTcpPort();
  const std::string seed = absl::StrCat("tcp://127.0.0.1:", seed_port);
  std::vector<std::unique_ptr<Node>> nodes;
  for (int i = 0; i < 5; ++i) {
    NodeOptions o = Options("s" + std::to_string(i));
    o.discovery = DiscoveryMode::kSeeds;
    o.seeds = {seed};
    if (i == 0) o.mailbox_port = seed_port;
    nodes.push_back(StartNode(std::move(o)));
    ASSERT_NE(nodes.back(), nullptr);
  }
  for (auto& node : nodes) {
    EXPECT_TRUE(WaitUntil([&] { return PeerCount(*node) == 4; }, kWait))
        << node->name() << " sees " << PeerCount(*node);
    EXPECT_EQ(node->Stats().beacons_sent, 0u);
  }
  // Without beacons, quiet peers are kept alive by PINGs over the mailbox.
  EXPECT_TRUE(
      WaitUntil([&] { return nodes[1]->Stats().heartbeats_sent >= 4; }, kWait));
  EXPECT_EQ(PeerCount(*nodes[1]), 4u);
}

TEST(NodeOptionsTest, InvalidOptionsAreRejected) {
  NodeOptions o;
  o.cluster = "";
  EXPECT_THAT(Node::Start(o), StatusIs(absl::StatusCode::kInvalidArgument));
  o = NodeOptions();
  o.discovery = DiscoveryMode::kLan;
  EXPECT_THAT(Node::Start(o), StatusIs(absl::StatusCode::kInvalidArgument));
  o = NodeOptions();
  o.dead_timeout = absl::Seconds(1);  // below the suspect timeout
  EXPECT_THAT(Node::Start(o), StatusIs(absl::StatusCode::kInvalidArgument));
  o = NodeOptions();
  o.discovery = DiscoveryMode::kSeeds;
  EXPECT_THAT(Node::Start(o), StatusIs(absl::StatusCode::kInvalidArgument));
  o.seeds = {"http://nope"};
  EXPECT_THAT(Node::Start(o), StatusIs(absl::StatusCode::kInvalidArgument));
  o = NodeOptions();
  o.discovery = DiscoveryMode::kLan;
  o.interface = "no-such-if0";
  o.beacon_port = ::fabric::testing::FreeUdpPort();
  EXPECT_THAT(Node::Start(o), StatusIs(absl::StatusCode::kNotFound));
}

TEST(NodeOptionsTest, ParseDiscoveryMode) {
  EXPECT_THAT(ParseDiscoveryMode("LAN"),
              ::fabric::testing::IsOkAndHolds(DiscoveryMode::kLan));
  EXPECT_THAT(ParseDiscoveryMode("multicast"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace fabric
