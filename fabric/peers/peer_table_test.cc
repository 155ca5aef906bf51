// SPDX-License-Identifier: Apache-2.0
#include "fabric/peers/peer_table.h"

#include "fabric/base/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fabric {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::IsEmpty;

LivenessOptions Options() {
  LivenessOptions o;
  o.suspect_timeout = absl::Milliseconds(1500);  // kept: tests use 1.4/1.6 s
  o.dead_timeout = absl::Seconds(3);
  o.disconnect_grace = absl::Milliseconds(300);
  o.tombstone_ttl = absl::Seconds(30);
  return o;
}

Hello MakeHello(const NodeId& id, const std::string& endpoint,
                uint64_t version = 1) {
  Hello h;
  h.id = id;
  h.name = "peer-" + id.ShortHex();
  h.cluster = "c";
  h.mailbox_endpoint = endpoint;
  h.state_version = version;
  return h;
}

auto Type(PeerEventType t) { return Field(&PeerEvent::type, t); }

class PeerTableTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  PeerTable table_{Options()};
  NodeId a_ = NodeId::Random();
};

TEST_F(PeerTableTest, HelloJoinsOnceThenUpdatesOnlyOnChange) {
  EXPECT_THAT(table_.OnHello(MakeHello(a_, "tcp://h:1"), clock_.Now()),
              ElementsAre(Type(PeerEventType::kJoined)));
  EXPECT_THAT(table_.OnHello(MakeHello(a_, "tcp://h:1"), clock_.Now()),
              IsEmpty());
  Hello changed = MakeHello(a_, "tcp://h:1", 2);
  changed.offers["queue"].insert("images");
  EXPECT_THAT(table_.OnHello(changed, clock_.Now()),
              ElementsAre(Type(PeerEventType::kUpdated)));
  ASSERT_NE(table_.Find(a_), nullptr);
  EXPECT_TRUE(table_.Find(a_)->HasOffer("queue", "images"));
}

TEST_F(PeerTableTest, SilenceMakesSuspectThenDead) {
  table_.OnHello(MakeHello(a_, "tcp://h:1"), clock_.Now());
  clock_.Advance(absl::Milliseconds(1400));
  EXPECT_THAT(table_.Tick(clock_.Now()), IsEmpty());
  clock_.Advance(absl::Milliseconds(200));
  EXPECT_THAT(table_.Tick(clock_.Now()),
              ElementsAre(Type(PeerEventType::kSuspect)));
  EXPECT_EQ(table_.Find(a_)->state, PeerState::kSuspect);
  EXPECT_THAT(table_.Tick(clock_.Now()), IsEmpty());  // reported once
  clock_.Advance(absl::Milliseconds(1500));
  EXPECT_THAT(table_.Tick(clock_.Now()),
              ElementsAre(Type(PeerEventType::kLeft)));
  EXPECT_EQ(table_.Find(a_), nullptr);
  EXPECT_TRUE(table_.IsTombstoned(a_, clock_.Now()));
  clock_.Advance(absl::Seconds(31));
  table_.Tick(clock_.Now());
  EXPECT_FALSE(table_.IsTombstoned(a_, clock_.Now()));
}

TEST_F(PeerTableTest, TrafficBringsSuspectBack) {
  table_.OnHello(MakeHello(a_, "tcp://h:1"), clock_.Now());
  clock_.Advance(absl::Seconds(2));
  table_.Tick(clock_.Now());
  EXPECT_THAT(table_.OnTraffic(a_, clock_.Now()),
              ElementsAre(Type(PeerEventType::kBack)));
  EXPECT_THAT(table_.OnTraffic(a_, clock_.Now()), IsEmpty());
  clock_.Advance(absl::Seconds(1));
  EXPECT_THAT(table_.Tick(clock_.Now()), IsEmpty());
}

TEST_F(PeerTableTest, CountsMessagesEachWay) {
  table_.OnHello(MakeHello(a_, "tcp://h:1"), clock_.Now());
  table_.OnTraffic(a_, clock_.Now());
  table_.OnHello(MakeHello(a_, "tcp://h:1"), clock_.Now());
  table_.OnSent(a_, 1);
  table_.OnSent(a_, 4);                // sent from other threads, folded in
  table_.OnSent(NodeId::Random(), 1);  // unknown: ignored
  const PeerInfo* info = table_.Find(a_);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->messages_in, 3u);
  EXPECT_EQ(info->messages_out, 5u);
  // A beacon is not a mailbox message.
  table_.OnBeacon(a_, clock_.Now());
  EXPECT_EQ(table_.Find(a_)->messages_in, 3u);
}

TEST_F(PeerTableTest, BeaconIsAHeartbeat) {
  table_.OnHello(MakeHello(a_, "tcp://h:1"), clock_.Now());
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(absl::Seconds(1));
    EXPECT_THAT(table_.OnBeacon(a_, clock_.Now()), IsEmpty());
    EXPECT_THAT(table_.Tick(clock_.Now()), IsEmpty());
  }
  clock_.Advance(absl::Seconds(2));
  EXPECT_THAT(table_.Tick(clock_.Now()),
              ElementsAre(Type(PeerEventType::kSuspect)));
  EXPECT_THAT(table_.OnBeacon(a_, clock_.Now()),
              ElementsAre(Type(PeerEventType::kBack)));
  EXPECT_THAT(table_.OnBeacon(NodeId::Random(), clock_.Now()), IsEmpty());
}

TEST_F(PeerTableTest, BeaconDoesNotReviveADroppedLink) {
  table_.OnHello(MakeHello(a_, "tcp://h:1"), clock_.Now());
  table_.OnDisconnected(a_, clock_.Now());
  clock_.Advance(absl::Milliseconds(200));
  EXPECT_THAT(table_.OnBeacon(a_, clock_.Now()), IsEmpty());  // still suspect
  EXPECT_EQ(table_.Find(a_)->state, PeerState::kSuspect);
  clock_.Advance(absl::Milliseconds(100));
  EXPECT_THAT(table_.Tick(clock_.Now()),
              ElementsAre(Type(PeerEventType::kLeft)));
}

TEST_F(PeerTableTest, DroppedConnectionIsDeadAfterGrace) {
  table_.OnHello(MakeHello(a_, "tcp://h:1"), clock_.Now());
  EXPECT_THAT(table_.OnDisconnected(a_, clock_.Now()),
              ElementsAre(Type(PeerEventType::kSuspect)));
  clock_.Advance(absl::Milliseconds(200));
  EXPECT_THAT(table_.Tick(clock_.Now()), IsEmpty());
  clock_.Advance(absl::Milliseconds(100));
  std::vector<PeerEvent> events = table_.Tick(clock_.Now());
  ASSERT_THAT(events, ElementsAre(Type(PeerEventType::kLeft)));
  EXPECT_EQ(events[0].reason, "connection lost");
}

TEST_F(PeerTableTest, NextDeadlineIsWhenTickFirstChangesSomething) {
  // The engine sleeps until NextDeadline: a tick just before it must find
  // nothing to do, and a tick at it must act.
  EXPECT_EQ(table_.NextDeadline(), absl::InfiniteFuture());
  const absl::Time t0 = clock_.Now();
  table_.OnHello(MakeHello(a_, "tcp://h:1"), t0);
  NodeId b = NodeId::Random();
  table_.OnHello(MakeHello(b, "tcp://h:2"), t0 + absl::Milliseconds(400));
  EXPECT_EQ(table_.NextDeadline(), t0 + absl::Milliseconds(1500));  // a
  const absl::Duration ns = absl::Nanoseconds(1);
  EXPECT_THAT(table_.Tick(table_.NextDeadline() - ns), IsEmpty());
  EXPECT_THAT(table_.Tick(table_.NextDeadline()),
              ElementsAre(Type(PeerEventType::kSuspect)));          // a
  EXPECT_EQ(table_.NextDeadline(), t0 + absl::Milliseconds(1900));  // b
  table_.OnBeacon(b, t0 + absl::Seconds(1));                        // later
  EXPECT_EQ(table_.NextDeadline(), t0 + absl::Milliseconds(2500));
  // A suspect's next change is death; a dropped link's is its grace.
  EXPECT_THAT(table_.Tick(t0 + absl::Milliseconds(2500)),
              ElementsAre(Type(PeerEventType::kSuspect)));  // b
  EXPECT_EQ(table_.NextDeadline(), t0 + absl::Seconds(3));  // a dies
  table_.OnDisconnected(b, t0 + absl::Milliseconds(2600));
  EXPECT_EQ(table_.NextDeadline(), t0 + absl::Milliseconds(2900));
  EXPECT_THAT(table_.Tick(table_.NextDeadline() - ns), IsEmpty());
  EXPECT_THAT(table_.Tick(table_.NextDeadline()),
              ElementsAre(Type(PeerEventType::kLeft)));  // b: grace
  EXPECT_EQ(table_.NextDeadline(), t0 + absl::Seconds(3));
  EXPECT_THAT(table_.Tick(t0 + absl::Seconds(3)),
              ElementsAre(Type(PeerEventType::kLeft)));  // a: silence
  EXPECT_EQ(table_.NextDeadline(), absl::InfiniteFuture());
}

TEST_F(PeerTableTest, ReconnectWithinGraceKeepsPeer) {
  table_.OnHello(MakeHello(a_, "tcp://h:1"), clock_.Now());
  table_.OnDisconnected(a_, clock_.Now());
  clock_.Advance(absl::Milliseconds(100));
  table_.OnConnected(a_);
  EXPECT_THAT(table_.OnTraffic(a_, clock_.Now()),
              ElementsAre(Type(PeerEventType::kBack)));
  clock_.Advance(absl::Milliseconds(500));
  EXPECT_THAT(table_.Tick(clock_.Now()), IsEmpty());
}

TEST_F(PeerTableTest, NewIncarnationOnSameEndpointReplacesOld) {
  table_.OnHello(MakeHello(a_, "tcp://h:1"), clock_.Now());
  const NodeId b = NodeId::Random();
  std::vector<PeerEvent> events =
      table_.OnHello(MakeHello(b, "tcp://h:1"), clock_.Now());
  ASSERT_THAT(events, ElementsAre(Type(PeerEventType::kLeft),
                                  Type(PeerEventType::kJoined)));
  EXPECT_EQ(events[0].peer.id, a_);
  EXPECT_EQ(events[1].peer.id, b);
  EXPECT_EQ(table_.size(), 1u);
}

TEST_F(PeerTableTest, GoodbyeRemovesAtOnce) {
  table_.OnHello(MakeHello(a_, "tcp://h:1"), clock_.Now());
  std::vector<PeerEvent> events = table_.Remove(a_, "goodbye", clock_.Now());
  ASSERT_THAT(events, ElementsAre(Type(PeerEventType::kLeft)));
  EXPECT_EQ(events[0].reason, "goodbye");
  EXPECT_THAT(table_.Remove(a_, "goodbye", clock_.Now()), IsEmpty());
}

TEST_F(PeerTableTest, ForgiveSilenceAfterLocalStall) {
  table_.OnHello(MakeHello(a_, "tcp://h:1"), clock_.Now());
  clock_.Advance(absl::Seconds(10));  // we were SIGSTOPped
  table_.ForgiveSilence(clock_.Now());
  EXPECT_THAT(table_.Tick(clock_.Now()), IsEmpty());
  EXPECT_EQ(table_.Find(a_)->state, PeerState::kAlive);
}

TEST_F(PeerTableTest, HelloClearsTombstone) {
  table_.OnHello(MakeHello(a_, "tcp://h:1"), clock_.Now());
  table_.Remove(a_, "goodbye", clock_.Now());
  EXPECT_TRUE(table_.IsTombstoned(a_, clock_.Now()));
  EXPECT_THAT(table_.OnHello(MakeHello(a_, "tcp://h:1"), clock_.Now()),
              ElementsAre(Type(PeerEventType::kJoined)));
  EXPECT_FALSE(table_.IsTombstoned(a_, clock_.Now()));
}

}  // namespace
}  // namespace fabric
