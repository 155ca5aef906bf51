// SPDX-License-Identifier: Apache-2.0
#include "discovery/beacon_replay_filter.h"

#include <type_traits>
#include <vector>

#include "gtest/gtest.h"

namespace fabric::discovery {
namespace {

static_assert(!std::is_copy_constructible_v<BeaconReplayFilter>);
static_assert(!std::is_copy_assignable_v<BeaconReplayFilter>);

TEST(BeaconReplayFilter, AcceptsOnlyIncreasingSeqPerId) {
  BeaconReplayFilter filter;
  const NodeId a = NodeId::Random();
  EXPECT_TRUE(filter.Accept(a, 1));
  EXPECT_FALSE(filter.Accept(a, 1));  // the same beacon again
  EXPECT_TRUE(filter.Accept(a, 2));
  EXPECT_TRUE(filter.Accept(a, 10));  // gaps are fine: beacons get lost
  EXPECT_FALSE(filter.Accept(a, 9));  // older
  EXPECT_FALSE(filter.Accept(a, 2));
  EXPECT_FALSE(filter.Accept(a, 10));
  EXPECT_EQ(filter.LastAccepted(a), 10u);
  EXPECT_TRUE(filter.Accept(a, ~uint64_t{0}));
  EXPECT_FALSE(filter.Accept(a, ~uint64_t{0}));
}

TEST(BeaconReplayFilter, IdsAreIndependent) {
  BeaconReplayFilter filter;
  const NodeId a = NodeId::Random();
  const NodeId b = NodeId::Random();
  EXPECT_TRUE(filter.Accept(a, 5));
  EXPECT_TRUE(filter.Accept(b, 1));  // lower than a's, but b's first
  EXPECT_FALSE(filter.Accept(b, 1));
  EXPECT_TRUE(filter.Accept(a, 6));
  EXPECT_EQ(filter.LastAccepted(a), 6u);
  EXPECT_EQ(filter.LastAccepted(b), 1u);
  EXPECT_EQ(filter.size(), 2u);
}

TEST(BeaconReplayFilter, SeqZeroIsNeverAccepted) {
  BeaconReplayFilter filter;
  const NodeId a = NodeId::Random();
  EXPECT_FALSE(filter.Accept(a, 0));
  EXPECT_EQ(filter.size(), 0u);  // a refusal remembers nothing
  EXPECT_EQ(filter.LastAccepted(a), 0u);
}

TEST(BeaconReplayFilter, EvictsTheIdAcceptedLongestAgoAtTheDefaultBound) {
  BeaconReplayFilter filter;
  ASSERT_EQ(filter.capacity(), 4096u);
  std::vector<NodeId> ids;
  for (size_t i = 0; i < 4096; ++i) {
    ids.push_back(NodeId::Random());
    ASSERT_TRUE(filter.Accept(ids.back(), 7));
  }
  EXPECT_EQ(filter.size(), 4096u);
  // ids[0] is refreshed, so ids[1] is now the one accepted longest ago.
  ASSERT_TRUE(filter.Accept(ids[0], 8));
  const NodeId newcomer = NodeId::Random();
  ASSERT_TRUE(filter.Accept(newcomer, 1));
  EXPECT_EQ(filter.size(), 4096u);
  EXPECT_EQ(filter.LastAccepted(ids[1]), 0u);  // forgotten
  EXPECT_EQ(filter.LastAccepted(ids[0]), 8u);
  EXPECT_EQ(filter.LastAccepted(ids[2]), 7u);
  EXPECT_EQ(filter.LastAccepted(newcomer), 1u);
  // Once forgotten, an old seq of that id passes again: the send-time check
  // is what refuses it then (BeaconReplayFilter's class comment).
  EXPECT_TRUE(filter.Accept(ids[1], 7));
  EXPECT_EQ(filter.LastAccepted(ids[2]), 0u);  // the next oldest went
  EXPECT_EQ(filter.size(), 4096u);
}

TEST(BeaconReplayFilter, RefusalsDoNotRefreshAnId) {
  BeaconReplayFilter filter(2);
  const NodeId a = NodeId::Random();
  const NodeId b = NodeId::Random();
  ASSERT_TRUE(filter.Accept(a, 3));
  ASSERT_TRUE(filter.Accept(b, 3));
  // Replaying a's beacon must not keep it alive at b's expense.
  EXPECT_FALSE(filter.Accept(a, 3));
  ASSERT_TRUE(filter.Accept(NodeId::Random(), 1));
  EXPECT_EQ(filter.LastAccepted(a), 0u);
  EXPECT_EQ(filter.LastAccepted(b), 3u);
}

TEST(BeaconReplayFilter, CapacityZeroIsTakenAsOne) {
  BeaconReplayFilter filter(0);
  EXPECT_EQ(filter.capacity(), 1u);
  const NodeId a = NodeId::Random();
  const NodeId b = NodeId::Random();
  EXPECT_TRUE(filter.Accept(a, 1));
  EXPECT_FALSE(filter.Accept(a, 1));
  EXPECT_TRUE(filter.Accept(b, 1));
  EXPECT_EQ(filter.size(), 1u);
  EXPECT_EQ(filter.LastAccepted(a), 0u);
}

}  // namespace
}  // namespace fabric::discovery
