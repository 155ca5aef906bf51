// SPDX-License-Identifier: Apache-2.0
// AckedIds: expiry by window (chunks dated by their first ack, at most
// window/256 late) and by count (oldest acks first, in exact ack order),
// a seeded out-of-order simulation against the guarantee, and the memory
// in-order and out-of-order acks cost.
#include "patterns/work_queue/internal/acked_ids.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <type_traits>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fabric::wq {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

static_assert(!std::is_copy_constructible_v<AckedIds>);
static_assert(!std::is_move_constructible_v<AckedIds>);

const absl::Time kT0 = absl::UnixEpoch() + absl::Hours(1000);
const absl::Duration kWindow = absl::Minutes(5);
const absl::Duration kSlack = kWindow / 256;

TEST(AckedIds, AnIdIsKeptForTheWindowAndAtMostASlackLonger) {
  AckedIds ids(kWindow, 100);
  const NodeId p = NodeId::Random();
  EXPECT_TRUE(ids.Add(kT0, p, 7));
  EXPECT_FALSE(ids.Add(kT0 + absl::Seconds(1), p, 7));  // dated by the first
  EXPECT_TRUE(ids.Contains(p, 7));
  EXPECT_FALSE(ids.Contains(p, 6));
  EXPECT_FALSE(ids.Contains(NodeId::Random(), 7));
  EXPECT_THAT(ids.Prune(kT0 + kWindow), IsEmpty());
  EXPECT_TRUE(ids.Contains(p, 7));
  EXPECT_THAT(ids.Prune(kT0 + kWindow + kSlack), IsEmpty());
  EXPECT_TRUE(ids.Contains(p, 7));
  EXPECT_THAT(ids.Prune(kT0 + kWindow + kSlack + absl::Nanoseconds(1)),
              ElementsAre(p));
  EXPECT_FALSE(ids.Contains(p, 7));
  EXPECT_EQ(ids.Find(p), nullptr);
  EXPECT_EQ(ids.size(), 0u);
  EXPECT_TRUE(ids.Add(kT0 + absl::Minutes(7), p, 7));  // new again
}

// A chunk takes acks within the slack of its first one and is dated by
// that first one, so its last id is kept at least the window too.
TEST(AckedIds, AChunkTakesAcksWithinTheSlackOfItsFirst) {
  AckedIds ids(kWindow, 100);
  const NodeId p = NodeId::Random();
  ids.Add(kT0, p, 1);
  ids.Add(kT0 + kSlack, p, 2);
  EXPECT_EQ(ids.chunks(), 1u);
  ids.Add(kT0 + kSlack + absl::Nanoseconds(1), p, 3);
  EXPECT_EQ(ids.chunks(), 2u);
  ids.Add(kT0 + kSlack + absl::Nanoseconds(1), p, 5);  // same chunk
  EXPECT_EQ(ids.chunks(), 2u);
  ids.Add(kT0 + kSlack + absl::Nanoseconds(1), NodeId::Random(), 6);
  EXPECT_EQ(ids.chunks(), 2u);        // another producer: a slot of its own
  ids.Prune(kT0 + kSlack + kWindow);  // seq 2's window just ends
  EXPECT_TRUE(ids.Contains(p, 1));
  EXPECT_TRUE(ids.Contains(p, 2));
  ids.Prune(kT0 + kSlack + kWindow + absl::Nanoseconds(1));
  EXPECT_FALSE(ids.Contains(p, 1));
  EXPECT_FALSE(ids.Contains(p, 2));
  EXPECT_TRUE(ids.Contains(p, 3));
  EXPECT_EQ(ids.size(), 3u);
}

TEST(AckedIds, TheCountLimitForgetsTheOldestAcksFirst) {
  AckedIds ids(kWindow, 2);
  const NodeId p = NodeId::Random();
  for (uint64_t seq : {5, 3, 4, 1, 2}) ids.Add(kT0, p, seq);
  EXPECT_EQ(ids.size(), 5u);  // until Prune
  EXPECT_THAT(ids.Prune(kT0), IsEmpty());
  EXPECT_EQ(ids.size(), 2u);
  for (uint64_t seq : {3, 4, 5}) EXPECT_FALSE(ids.Contains(p, seq)) << seq;
  EXPECT_TRUE(ids.Contains(p, 1));
  EXPECT_TRUE(ids.Contains(p, 2));
  // Part of a run goes: its oldest ids.
  AckedIds one_run(kWindow, 3);
  for (uint64_t seq = 10; seq < 20; ++seq) one_run.Add(kT0, p, seq);
  EXPECT_EQ(one_run.chunks(), 1u);
  one_run.Prune(kT0);
  EXPECT_FALSE(one_run.Contains(p, 16));
  for (uint64_t seq : {17, 18, 19}) EXPECT_TRUE(one_run.Contains(p, seq));
  // dedup_max = 0 keeps nothing.
  AckedIds none(kWindow, 0);
  none.Add(kT0, p, 1);
  EXPECT_THAT(none.Prune(kT0), ElementsAre(p));
  EXPECT_FALSE(none.Contains(p, 1));
}

// Distances far apart, backwards and across the largest seq are stored
// and forgotten one by one in ack order.
TEST(AckedIds, AnyDistanceBetweenAcksRoundTrips) {
  const uint64_t max = ~uint64_t{0};
  const std::vector<uint64_t> seqs = {
      max - 1,           max, 0, 1, 2, 3, max - 5,
      uint64_t{1} << 40, 7,   6, 5, 8, 9, max / 2};
  for (size_t keep = 0; keep <= seqs.size(); ++keep) {
    SCOPED_TRACE(keep);
    AckedIds ids(kWindow, keep);
    const NodeId p = NodeId::Random();
    for (uint64_t seq : seqs) ASSERT_TRUE(ids.Add(kT0, p, seq));
    EXPECT_EQ(ids.chunks(), 1u);
    ids.Prune(kT0);
    ASSERT_EQ(ids.size(), keep);
    for (size_t i = 0; i < seqs.size(); ++i) {
      EXPECT_EQ(ids.Contains(p, seqs[i]), i >= seqs.size() - keep) << i;
    }
  }
}

// Seeded schedules: 10 producers (more than a chunk's slots), acks out of order
// within a window of in-flight seqs, gaps never filled (tasks acked elsewhere),
// duplicate adds, time moving on in random steps, random limits. After every
// Prune(now): an id acked within the window and among the last `max`
// adds is remembered; one older than window + slack is not; at most `max`
// are; and what is remembered is a suffix of the adds (oldest first).
TEST(AckedIds, KeepsTheGuaranteeUnderRandomOutOfOrderAcks) {
  for (uint32_t seed = 1; seed <= 30; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937_64 rng(seed);
    const size_t max = rng() % 2 == 0 ? 1 + rng() % 50 : 100000;
    const absl::Duration window = absl::Seconds(1 + rng() % 60);
    const absl::Duration slack = window / 256;
    AckedIds ids(window, max);
    std::vector<NodeId> producers;
    for (int i = 0; i < 10; ++i) producers.push_back(NodeId::Random());
    struct Add {
      absl::Time at;
      size_t producer;
      uint64_t seq;
      bool alive;
    };
    std::vector<Add> adds;
    std::map<std::pair<size_t, uint64_t>, size_t> latest;  // -> adds index
    std::vector<uint64_t> next_seq(producers.size(), 1);
    std::vector<std::vector<uint64_t>> in_flight(producers.size());
    size_t first_alive = 0;
    absl::Time now = kT0;
    for (int step = 0; step < 4000; ++step) {
      now += absl::Milliseconds(rng() % 200);
      const size_t p = rng() % 4 == 0 ? rng() % producers.size() : 0;
      std::vector<uint64_t>& flight = in_flight[p];
      while (flight.size() < 6) flight.push_back(next_seq[p]++);
      const size_t pick = rng() % flight.size();
      uint64_t seq = flight[pick];
      flight.erase(flight.begin() + static_cast<long>(pick));
      if (rng() % 10 == 0) continue;  // acked elsewhere: a gap
      if (rng() % 20 == 0 && !adds.empty()) {
        seq = adds[rng() % adds.size()].seq;  // a redelivery of an old one
      }
      auto known = latest.find({p, seq});
      const bool remembered =
          known != latest.end() && adds[known->second].alive;
      ASSERT_EQ(ids.Add(now, producers[p], seq), !remembered) << seq;
      if (!remembered) {
        latest[{p, seq}] = adds.size();
        adds.push_back(Add{now, p, seq, true});
      }
      if (rng() % 5 != 0) continue;
      ids.Prune(now);
      ASSERT_LE(ids.size(), max);
      size_t alive = 0;
      for (size_t i = first_alive; i < adds.size(); ++i) {
        Add& a = adds[i];
        if (!a.alive) continue;
        const bool kept = ids.Contains(producers[a.producer], a.seq);
        if (now - a.at <= window && adds.size() - i <= max) {
          ASSERT_TRUE(kept) << "seq " << a.seq << " add " << i;
        }
        if (now - a.at > window + slack) {
          ASSERT_FALSE(kept) << "seq " << a.seq << " add " << i;
        }
        if (!kept) {
          ASSERT_EQ(alive, 0u) << "add " << i << " forgotten after a newer";
          a.alive = false;
          first_alive = i + 1;
        } else {
          alive++;
        }
      }
      ASSERT_EQ(ids.size(), alive);
    }
  }
}

TEST(AckedIds, AcksInOrderOrNearlyCostLittleAndTheHeapIsCounted) {
  const NodeId p = NodeId::Random();
  auto ids = std::make_unique<AckedIds>(kWindow, size_t{1} << 20);
  const absl::Duration step = absl::Microseconds(1);  // 1M acks in 1 s
  for (uint64_t seq = 1; seq <= 1000000; ++seq) {
    ids->Add(kT0 + step * static_cast<int64_t>(seq), p, seq);
  }
  EXPECT_EQ(ids->size(), 1000000u);
  EXPECT_EQ(ids->chunks(), 1u);
  EXPECT_LT(ids->heap_bytes(), 4096u);
  // Shuffled within groups of 8 (8 handler threads): about a byte each.
  AckedIds shuffled(kWindow, size_t{1} << 20);
  std::mt19937_64 rng(1);
  std::vector<uint64_t> group(8);
  for (uint64_t base = 1; base <= 100000; base += 8) {
    for (uint64_t i = 0; i < 8; ++i) group[i] = base + i;
    std::shuffle(group.begin(), group.end(), rng);
    for (uint64_t seq : group) shuffled.Add(kT0, p, seq);
  }
  EXPECT_EQ(shuffled.size(), 100000u);
  EXPECT_LT(shuffled.heap_bytes(), 100000 * 2);
  // Two producers' acks alternating (credit granted a task at a time):
  // a slot switch and a distance, 3 bytes each (and the vector's growth).
  AckedIds two(kWindow, size_t{1} << 20);
  const NodeId p2 = NodeId::Random();
  for (uint64_t seq = 1; seq <= 50000; ++seq) {
    two.Add(kT0, p, seq);
    two.Add(kT0, p2, seq);
  }
  EXPECT_EQ(two.chunks(), 1u);
  EXPECT_LT(two.heap_bytes(), 100000 * 6);
  EXPECT_THAT(two.Prune(kT0 + absl::Hours(1)), ElementsAre(p, p2));
  // Every other seq: a range each, and the heap shows it.
  AckedIds sparse(kWindow, size_t{1} << 20);
  for (uint64_t seq = 1; seq <= 20000; seq += 2) sparse.Add(kT0, p, seq);
  EXPECT_GE(sparse.heap_bytes(), 10000 * sizeof(uint64_t) * 2);
  EXPECT_THAT(sparse.Prune(kT0 + absl::Hours(1)), ElementsAre(p));
  EXPECT_EQ(sparse.size(), 0u);
  EXPECT_EQ(sparse.chunks(), 0u);
  EXPECT_LT(sparse.heap_bytes(), 4096u);  // what a map and deque keep empty
}

}  // namespace
}  // namespace fabric::wq
