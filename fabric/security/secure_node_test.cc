// SPDX-License-Identifier: Apache-2.0
// Secure mode at the node level, on real sockets and real beacons
// (docs/security.md; plan S2, S3, S4, S5, S8, S9 of security-anchors.md).
// Every negative check has its positive control in the same file: two
// members that do meet, under the same set-up.
#include <sys/stat.h>
#include <zmq.h>

#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "fabric/codec/control.h"
#include "fabric/codec/envelope.h"
#include "fabric/node.h"
#include "fabric/security/keys.h"
#include "fabric/security/zap.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/secure_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::testing::SecureCluster;
using ::fabric::testing::StatusIs;
using ::testing::HasSubstr;

class SecureNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::ClearFabricEnvironment();
    cluster_name_ = testing::UniqueClusterName("secure");
    beacon_port_ = testing::FreeUdpPort();
  }

  NodeOptions Options(const std::string& name, const std::string& roster = "") {
    NodeOptions o;
    o.name = name;
    o.cluster = cluster_name_;
    o.beacon_port = beacon_port_;
    o.beacon_interval = absl::Milliseconds(200);
    o.security = keys_.Options(name, roster);
    return o;
  }

  std::unique_ptr<Node> Start(NodeOptions o) {
    absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(std::move(o));
    EXPECT_TRUE(node.ok()) << node.status();
    return node.ok() ? std::move(*node) : nullptr;
  }

  static const PeerInfo* Find(const std::vector<PeerInfo>& peers,
                              const std::string& name) {
    for (const PeerInfo& p : peers) {
      if (p.name == name) return &p;
    }
    return nullptr;
  }
  static bool Sees(Node& node, const std::string& name) {
    absl::StatusOr<std::vector<PeerInfo>> peers = node.Peers();
    return peers.ok() && Find(*peers, name) != nullptr;
  }
  static size_t PeerCount(Node& node) {
    absl::StatusOr<std::vector<PeerInfo>> peers = node.Peers();
    return peers.ok() ? peers->size() : 0;
  }

  SecureCluster keys_;
  std::string cluster_name_;
  uint16_t beacon_port_ = 0;
};

TEST_F(SecureNodeTest, MembersMeetAndKnowEachOthersKeys) {
  const std::string a_key = keys_.AddMember("a");
  const std::string b_key = keys_.AddMember("b");
  std::unique_ptr<Node> a = Start(Options("a"));
  std::unique_ptr<Node> b = Start(Options("b"));
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(testing::WaitUntil([&] { return Sees(*a, "b") && Sees(*b, "a"); },
                                 absl::Seconds(10)));
  absl::StatusOr<std::vector<PeerInfo>> peers = a->Peers();
  ASSERT_TRUE(peers.ok());
  EXPECT_EQ(Find(*peers, "b")->public_key, b_key);
  peers = b->Peers();
  EXPECT_EQ(Find(*peers, "a")->public_key, a_key);
  // The beacon key id in use shows per peer (rotation progress).
  EXPECT_TRUE(testing::WaitUntil(
      [&] {
        absl::StatusOr<std::vector<PeerInfo>> p = a->Peers();
        return p.ok() && Find(*p, "b") != nullptr &&
               Find(*p, "b")->beacon_key_id == 1;
      },
      absl::Seconds(10)));
  const NodeStats s = a->Stats();
  EXPECT_TRUE(s.zap_running);
  EXPECT_GE(s.zap_allowed, 1u);
  EXPECT_EQ(s.beacons_bad_mac, 0u);
  EXPECT_GE(s.beacons_received, 1u);
  // A signed beacon is 124 bytes.
  EXPECT_EQ(s.beacon_bytes_sent, 124 * s.beacons_sent);
}

TEST_F(SecureNodeTest, StartRefusesMissingOrUnsafePieces) {
  keys_.AddMember("a");
  keys_.AddMember("outsider", /*in_roster=*/false);
  NodeOptions o = Options("a");
  o.security.key_file = keys_.dir() + "/nope.key";
  EXPECT_THAT(Node::Start(o), StatusIs(absl::StatusCode::kFailedPrecondition,
                                       HasSubstr("nope.key")));

  ASSERT_EQ(::chmod(keys_.key_file("a").c_str(), 0644), 0);
  EXPECT_THAT(Node::Start(Options("a")),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("FAB-SEC-KEY-PERMS")));
  ASSERT_EQ(::chmod(keys_.key_file("a").c_str(), 0600), 0);

  // Its own key must be in the roster (else the self-test cannot pass and
  // peers would refuse it).
  EXPECT_THAT(Node::Start(Options("outsider")),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("FAB-SEC-ROSTER-SELF")));

  o = Options("a");
  o.security.beacon_secret_file.clear();
  EXPECT_THAT(Node::Start(o), StatusIs(absl::StatusCode::kFailedPrecondition,
                                       HasSubstr("FAB-SEC-BEACON-MISSING")));

  o = Options("a");
  o.security.roster_dir.clear();
  EXPECT_THAT(Node::Start(o), StatusIs(absl::StatusCode::kFailedPrecondition,
                                       HasSubstr("FAB-SEC-ROSTER-MISSING")));

  // Only the path of a roster: the key file is still required.
  o = Options("a");
  o.security.key_file.clear();
  EXPECT_THAT(Node::Start(o), StatusIs(absl::StatusCode::kFailedPrecondition,
                                       HasSubstr("FAB-SEC-KEY-MISSING")));

  o = Options("a");
  o.discovery = DiscoveryMode::kSeeds;
  o.seeds = {"tcp://127.0.0.1:1#nobody"};
  EXPECT_THAT(Node::Start(o), StatusIs(absl::StatusCode::kFailedPrecondition,
                                       HasSubstr("FAB-SEC-SEED-KEY")));
  o.seeds = {"tcp://127.0.0.1:1"};
  EXPECT_THAT(Node::Start(o), StatusIs(absl::StatusCode::kFailedPrecondition,
                                       HasSubstr("FAB-SEC-SEED-KEY")));

  o = Options("a");
  o.beacon_interval = absl::Milliseconds(50);
  EXPECT_THAT(Node::Start(o), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("beacon_interval")));
  // The control: the same files, made safe, start.
  EXPECT_TRUE(Start(Options("a")) != nullptr);
}

// S2: a node whose key the others' roster lacks is refused, counted on both
// sides, and retried no faster than the backoff.
TEST_F(SecureNodeTest, UnknownKeyIsRefusedBothWays) {
  keys_.AddMember("a");
  keys_.AddMember("b");
  keys_.AddMember("intruder", /*in_roster=*/false);
  // The intruder trusts everyone (its own roster), so it tries to connect.
  const std::string own = keys_.MakeRoster("intruder");
  for (const char* n : {"a", "b", "intruder"}) keys_.AddToRoster(n, own);
  std::unique_ptr<Node> a = Start(Options("a"));
  std::unique_ptr<Node> b = Start(Options("b"));
  std::unique_ptr<Node> intruder = Start(Options("intruder", own));
  ASSERT_TRUE(a && b && intruder);
  // The control: a and b meet.
  ASSERT_TRUE(testing::WaitUntil([&] { return Sees(*a, "b") && Sees(*b, "a"); },
                                 absl::Seconds(10)));
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        return intruder->Stats().handshakes_failed_auth >= 2 &&
               a->Stats().zap_denied >= 1 && b->Stats().zap_denied >= 1;
      },
      absl::Seconds(15)));
  const absl::Time refused_at = absl::Now();
  EXPECT_FALSE(Sees(*a, "intruder"));
  EXPECT_FALSE(Sees(*b, "intruder"));
  EXPECT_EQ(PeerCount(*intruder), 0u);
  // a and b hear its beacons (the beacon secret is shared) but never act
  // on a key outside their roster.
  EXPECT_GE(a->Stats().beacons_unknown_node_key, 1u);
  // Backoff: 1 s, then 2 s, 4 s ... per endpoint. Over the next 3 s at most
  // two more attempts per endpoint (two endpoints) can be refused.
  const uint64_t before = intruder->Stats().handshakes_failed_auth;
  absl::SleepFor(absl::Seconds(3));
  const uint64_t after = intruder->Stats().handshakes_failed_auth;
  EXPECT_LE(after - before, 4u)
      << "in " << absl::FormatDuration(absl::Now() - refused_at);
  EXPECT_FALSE(Sees(*a, "intruder"));
}

// S2 at volume: 1,000 connections under 1,000 unknown keys each send a
// message to a member's mailbox. Every handshake is refused by ZAP and not
// one message arrives; the same message under a roster key (the control)
// does arrive.
TEST_F(SecureNodeTest, AThousandUnknownKeysGetNoMessageIn) {
  constexpr int kStrangers = 1000;
  constexpr int kBatch = 100;  // sockets open at once
  keys_.AddMember("a");
  keys_.AddMember("member");
  std::unique_ptr<Node> a = Start(Options("a"));
  ASSERT_TRUE(a);
  absl::StatusOr<security::CurveKeypair> a_keys =
      security::LoadKeyFile(keys_.key_file("a"));
  ASSERT_TRUE(a_keys.ok()) << a_keys.status();
  // Any well-formed message: a PING from a node nobody knows.
  const std::string message =
      EncodeEnvelope(MessageKind::kPing, NodeId::Random(), EncodePing(1));
  const NodeStats before = a->Stats();
  zmq::context_t ctx(1);
  ctx.set(zmq::ctxopt::max_sockets, 4 * kBatch);
  for (int done = 0; done < kStrangers; done += kBatch) {
    std::vector<zmq::socket_t> sockets;
    for (int i = 0; i < kBatch; ++i) {
      absl::StatusOr<security::CurveKeypair> stranger =
          security::GenerateKeypair("stranger");
      ASSERT_TRUE(stranger.ok()) << stranger.status();
      zmq::socket_t& dealer =
          sockets.emplace_back(ctx, zmq::socket_type::dealer);
      dealer.set(zmq::sockopt::linger, 0);
      ASSERT_TRUE(
          security::ApplyCurveClient(dealer, *stranger, a_keys->public_key)
              .ok());
      dealer.connect(a->mailbox_endpoint());
      // Queued until the handshake, which never completes: dropped.
      ASSERT_TRUE(dealer.send(zmq::buffer(message), zmq::send_flags::dontwait));
    }
    const uint64_t want = before.zap_denied + done + kBatch;
    ASSERT_TRUE(testing::WaitUntil(
        [&] { return a->Stats().zap_denied >= want; }, absl::Seconds(60)))
        << "denied " << a->Stats().zap_denied - before.zap_denied << " of "
        << done + kBatch;
  }
  NodeStats after = a->Stats();
  EXPECT_GE(after.zap_denied - before.zap_denied, uint64_t{kStrangers});
  EXPECT_EQ(after.zap_allowed, before.zap_allowed);
  EXPECT_EQ(after.messages_received, before.messages_received);
  EXPECT_EQ(after.messages_unknown_sender, before.messages_unknown_sender);
  EXPECT_EQ(PeerCount(*a), 0u);

  // The control: the same message under a roster key gets in.
  absl::StatusOr<security::CurveKeypair> member =
      security::LoadKeyFile(keys_.key_file("member"));
  ASSERT_TRUE(member.ok()) << member.status();
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  ASSERT_TRUE(
      security::ApplyCurveClient(dealer, *member, a_keys->public_key).ok());
  dealer.connect(a->mailbox_endpoint());
  ASSERT_TRUE(dealer.send(zmq::buffer(message), zmq::send_flags::dontwait));
  EXPECT_TRUE(testing::WaitUntil(
      [&] {
        return a->Stats().messages_unknown_sender >
               before.messages_unknown_sender;
      },
      absl::Seconds(10)));
  EXPECT_EQ(a->Stats().zap_allowed, before.zap_allowed + 1);
}

// S3: a plaintext node and a secure one, same cluster and beacon port,
// never meet, and each counts the other's beacons.
TEST_F(SecureNodeTest, PlaintextAndSecureNeverMeet) {
  keys_.AddMember("secure");
  keys_.AddMember("secure2");
  std::unique_ptr<Node> s = Start(Options("secure"));
  std::unique_ptr<Node> s2 = Start(Options("secure2"));
  NodeOptions plain = Options("plain");
  plain.security = SecurityOptions();
  std::unique_ptr<Node> p = Start(plain);
  ASSERT_TRUE(s && s2 && p);
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        return Sees(*s, "secure2") && s->Stats().beacons_unauthenticated >= 3 &&
               p->Stats().beacons_wrong_version >= 3;
      },
      absl::Seconds(10)));
  EXPECT_EQ(PeerCount(*p), 0u);
  EXPECT_FALSE(Sees(*s, "plain"));
  EXPECT_EQ(PeerCount(*s), 1u);

  // The plaintext node named the secure mailbox as a seed: the mechanism
  // mismatch refuses the link, counted, and nothing is exchanged.
  NodeOptions seeded = plain;
  seeded.name = "plain-seeded";
  seeded.discovery = DiscoveryMode::kSeeds;
  seeded.seeds = {s->mailbox_endpoint()};
  std::unique_ptr<Node> ps = Start(seeded);
  ASSERT_TRUE(ps);
  ASSERT_TRUE(testing::WaitUntil(
      [&] { return ps->Stats().handshakes_failed_protocol >= 1; },
      absl::Seconds(10)));
  EXPECT_EQ(PeerCount(*ps), 0u);
  EXPECT_FALSE(Sees(*s, "plain-seeded"));
}

// S4: removing a member's .pub cuts it off at once.
TEST_F(SecureNodeTest, RevocationCutsOffAMember) {
  keys_.AddMember("a");
  keys_.AddMember("b");
  NodeOptions ao = Options("a");
  ao.security.roster_check_interval = absl::Minutes(1);  // reload by hand
  std::unique_ptr<Node> a = Start(ao);
  std::unique_ptr<Node> b = Start(Options("b"));
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(
      testing::WaitUntil([&] { return Sees(*a, "b"); }, absl::Seconds(10)));
  keys_.RemoveFromRoster("b");
  ASSERT_TRUE(a->ReloadRoster().ok());
  EXPECT_FALSE(Sees(*a, "b"));
  EXPECT_EQ(a->Stats().keys_revoked, 1u);
  // b keeps beaconing and its established connection stays open, yet a
  // never takes it back.
  ASSERT_TRUE(testing::WaitUntil(
      [&] { return a->Stats().beacons_unknown_node_key >= 3; },
      absl::Seconds(10)));
  EXPECT_FALSE(Sees(*a, "b"));
  // Putting the key back readmits it (the periodic check would too).
  keys_.AddToRoster("b");
  ASSERT_TRUE(a->ReloadRoster().ok());
  EXPECT_TRUE(
      testing::WaitUntil([&] { return Sees(*a, "b"); }, absl::Seconds(10)));
}

TEST_F(SecureNodeTest, RosterEditsAreNoticedWithoutASignal) {
  keys_.AddMember("a");
  keys_.AddMember("b");
  NodeOptions ao = Options("a");
  ao.security.roster_check_interval = absl::Milliseconds(200);
  std::unique_ptr<Node> a = Start(ao);
  std::unique_ptr<Node> b = Start(Options("b"));
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(
      testing::WaitUntil([&] { return Sees(*a, "b"); }, absl::Seconds(10)));
  keys_.RemoveFromRoster("b");
  EXPECT_TRUE(
      testing::WaitUntil([&] { return !Sees(*a, "b"); }, absl::Seconds(10)));
  EXPECT_GE(a->Stats().roster_reloads, 1u);
}

// S5: member b, authenticated under its own key, sends a HELLO claiming
// a's node id, then one claiming a's mailbox. Both are dropped and
// counted; a stays as it was.
TEST_F(SecureNodeTest, AMemberCannotSpeakAsAnother) {
  const std::string a_key = keys_.AddMember("a");
  keys_.AddMember("b");
  keys_.AddMember("c");
  std::unique_ptr<Node> a = Start(Options("a"));
  std::unique_ptr<Node> c = Start(Options("c"));
  ASSERT_TRUE(a && c);
  ASSERT_TRUE(
      testing::WaitUntil([&] { return Sees(*c, "a"); }, absl::Seconds(10)));
  absl::StatusOr<security::CurveKeypair> b =
      security::LoadKeyFile(keys_.key_file("b"));
  ASSERT_TRUE(b.ok()) << b.status();
  zmq::context_t ctx(1);
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  absl::StatusOr<security::CurveKeypair> c_keys =
      security::LoadKeyFile(keys_.key_file("c"));
  ASSERT_TRUE(c_keys.ok());
  ASSERT_TRUE(security::ApplyCurveClient(dealer, *b, c_keys->public_key).ok());
  dealer.connect(c->mailbox_endpoint());

  Hello as_a;
  as_a.id = a->id();
  as_a.name = "a";
  as_a.cluster = cluster_name_;
  as_a.mailbox_endpoint = "tcp://127.0.0.1:1";
  as_a.state_version = 99;
  as_a.discovery = "loopback";
  Hello at_a;  // its own id, a's mailbox: would replace a in plaintext
  at_a.id = NodeId::Random();
  at_a.name = "b";
  at_a.cluster = cluster_name_;
  at_a.mailbox_endpoint = a->mailbox_endpoint();
  at_a.state_version = 1;
  at_a.discovery = "loopback";
  for (int i = 0; i < 5; ++i) {
    dealer.send(zmq::buffer(
        EncodeEnvelope(MessageKind::kHello, as_a.id, EncodeHello(as_a))));
    dealer.send(zmq::buffer(
        EncodeEnvelope(MessageKind::kHello, at_a.id, EncodeHello(at_a))));
  }
  ASSERT_TRUE(
      testing::WaitUntil([&] { return c->Stats().messages_key_mismatch >= 10; },
                         absl::Seconds(10)));
  // Then as a member in good standing (its own id), b gossips a's endpoint
  // under its own key, hoping c drops its link to a, and claims the
  // endpoint again.
  Hello own;
  own.id = NodeId::Random();
  own.name = "b";
  own.cluster = cluster_name_;
  own.mailbox_endpoint = "tcp://127.0.0.1:1";
  own.state_version = 1;
  own.discovery = "seeds";
  dealer.send(zmq::buffer(
      EncodeEnvelope(MessageKind::kHello, own.id, EncodeHello(own))));
  ASSERT_TRUE(
      testing::WaitUntil([&] { return Sees(*c, "b"); }, absl::Seconds(10)));
  dealer.send(zmq::buffer(EncodeEnvelope(
      MessageKind::kGossip, own.id,
      EncodeGossip({GossipEntry{NodeId::Random(), a->mailbox_endpoint(),
                                b->public_key}}))));
  dealer.send(zmq::buffer(
      EncodeEnvelope(MessageKind::kHello, at_a.id, EncodeHello(at_a))));
  ASSERT_TRUE(
      testing::WaitUntil([&] { return c->Stats().messages_key_mismatch >= 11; },
                         absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(300));  // a's beacons keep coming
  absl::StatusOr<std::vector<PeerInfo>> peers = c->Peers();
  ASSERT_TRUE(peers.ok());
  const PeerInfo* seen = Find(*peers, "a");
  ASSERT_NE(seen, nullptr);
  EXPECT_EQ(seen->id, a->id());
  EXPECT_EQ(seen->public_key, a_key);
  EXPECT_EQ(seen->mailbox_endpoint, a->mailbox_endpoint());
  EXPECT_EQ(c->Stats().peers_left, 0u);
}

// Seeds mode: a seed names its roster entry; a seed whose roster entry
// holds another key (S8, the wrong server key) is refused, counted and
// given up, with nothing exchanged.
TEST_F(SecureNodeTest, SeedsNameTheirKey) {
  keys_.AddMember("seed");
  keys_.AddMember("joiner");
  keys_.AddMember("other");
  const uint16_t port = testing::FreeTcpPort();
  NodeOptions so = Options("seed");
  so.discovery = DiscoveryMode::kSeeds;
  so.mailbox_port = port;
  so.security.beacon_secret_file.clear();  // no beacons in seeds mode
  std::unique_ptr<Node> seed = Start(so);
  ASSERT_TRUE(seed);
  const std::string endpoint = absl::StrCat("tcp://127.0.0.1:", port);

  NodeOptions wrong = Options("other");
  wrong.discovery = DiscoveryMode::kSeeds;
  wrong.security.beacon_secret_file.clear();
  wrong.seeds = {endpoint + "#joiner"};  // a key the seed does not hold
  std::unique_ptr<Node> w = Start(wrong);
  ASSERT_TRUE(w);
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        const NodeStats s = w->Stats();
        return s.handshakes_failed_other + s.handshakes_failed_protocol >= 5;
      },
      absl::Seconds(20)));
  EXPECT_EQ(PeerCount(*w), 0u);
  EXPECT_FALSE(Sees(*seed, "other"));

  NodeOptions jo = Options("joiner");
  jo.discovery = DiscoveryMode::kSeeds;
  jo.security.beacon_secret_file.clear();
  jo.seeds = {endpoint + "#seed"};
  std::unique_ptr<Node> j = Start(jo);
  ASSERT_TRUE(j);
  EXPECT_TRUE(testing::WaitUntil(
      [&] { return Sees(*j, "seed") && Sees(*seed, "joiner"); },
      absl::Seconds(10)));
}

}  // namespace
}  // namespace fabric
