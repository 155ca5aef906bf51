// SPDX-License-Identifier: Apache-2.0
// SeqRanges against a std::set oracle (seeded, out-of-order inserts and
// range erases), merging of neighbours, the largest seq, and the heap
// bytes its CountingAllocator reports.
#include "patterns/work_queue/internal/seq_ranges.h"

#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <type_traits>

#include "gtest/gtest.h"

namespace fabric::wq {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

static_assert(!std::is_copy_constructible_v<SeqRanges>);

// The number of maximal runs of consecutive values in `s`.
size_t RunsOf(const std::set<uint64_t>& s) {
  size_t runs = 0;
  uint64_t prev = 0;
  bool first = true;
  for (uint64_t v : s) {
    if (first || v != prev + 1) runs++;
    prev = v;
    first = false;
  }
  return runs;
}

TEST(SeqRanges, NeighboursMergeAndGapsStayOut) {
  size_t bytes = 0;
  SeqRanges r(&bytes);
  EXPECT_TRUE(r.Insert(5));
  EXPECT_TRUE(r.Insert(7));
  EXPECT_EQ(r.ranges(), 2u);
  EXPECT_FALSE(r.Contains(6));  // a gap is not done
  EXPECT_FALSE(r.Insert(7));
  EXPECT_TRUE(r.Insert(6));  // fills the gap: one range 5..7
  EXPECT_EQ(r.ranges(), 1u);
  EXPECT_TRUE(r.Insert(4));  // extends it downwards
  EXPECT_TRUE(r.Insert(8));  // and upwards
  EXPECT_EQ(r.ranges(), 1u);
  EXPECT_EQ(r.size(), 5u);
  EXPECT_FALSE(r.Contains(3));
  EXPECT_FALSE(r.Contains(9));
  // Erasing the middle splits it; erasing absent seqs removes nothing.
  EXPECT_EQ(r.Erase(6, 1), 1u);
  EXPECT_EQ(r.ranges(), 2u);
  EXPECT_FALSE(r.Contains(6));
  EXPECT_EQ(r.Erase(6, 1), 0u);
  EXPECT_EQ(r.Erase(0, 100), 4u);
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.Erase(0, 0), 0u);
}

TEST(SeqRanges, TheLargestSeqDoesNotWrap) {
  size_t bytes = 0;
  SeqRanges r(&bytes);
  EXPECT_TRUE(r.Insert(kMax));
  EXPECT_TRUE(r.Insert(kMax - 1));
  EXPECT_TRUE(r.Insert(0));
  EXPECT_EQ(r.ranges(), 2u);  // 0 and max-1..max are not neighbours
  EXPECT_TRUE(r.Contains(kMax));
  EXPECT_FALSE(r.Contains(1));
  EXPECT_EQ(r.Erase(kMax, 10), 1u);  // stops at the largest seq
  EXPECT_TRUE(r.Contains(kMax - 1));
  EXPECT_FALSE(r.Contains(kMax));
  EXPECT_EQ(r.Erase(kMax - 1, kMax), 1u);
  EXPECT_EQ(r.size(), 1u);
}

// Random inserts (clustered, as completions are, and scattered) and range
// erases, checked after every step against a std::set.
TEST(SeqRanges, MatchesAStdSetUnderRandomInsertsAndErases) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937_64 rng(seed);
    size_t bytes = 0;
    SeqRanges r(&bytes);
    std::set<uint64_t> oracle;
    uint64_t base = 1000;
    for (int step = 0; step < 3000; ++step) {
      const uint64_t dice = rng() % 100;
      if (dice < 70) {
        // Near the front of the stream, in any order.
        const uint64_t seq = base + rng() % 64;
        if (rng() % 8 == 0) base += rng() % 16;
        EXPECT_EQ(r.Insert(seq), oracle.insert(seq).second);
      } else if (dice < 80) {
        const uint64_t seq = rng() % 4000;
        EXPECT_EQ(r.Insert(seq), oracle.insert(seq).second);
      } else {
        const uint64_t first = rng() % (base + 64);
        const uint64_t count = 1 + rng() % 48;
        uint64_t expected = 0;
        for (auto it = oracle.lower_bound(first);
             it != oracle.end() && *it < first + count;) {
          it = oracle.erase(it);
          expected++;
        }
        ASSERT_EQ(r.Erase(first, count), expected);
      }
      ASSERT_EQ(r.size(), oracle.size());
      ASSERT_EQ(r.ranges(), RunsOf(oracle));
      for (int probe = 0; probe < 8; ++probe) {
        const uint64_t seq = rng() % (base + 128);
        ASSERT_EQ(r.Contains(seq), oracle.count(seq) == 1) << seq;
      }
    }
    for (uint64_t seq : oracle) ASSERT_TRUE(r.Contains(seq)) << seq;
  }
}

TEST(SeqRanges, ARunCostsOneEntryAndTheHeapIsCounted) {
  size_t bytes = 0;
  {
    SeqRanges r(&bytes);
    EXPECT_EQ(bytes, 0u);
    for (uint64_t seq = 1; seq <= 100000; ++seq) r.Insert(seq);
    EXPECT_EQ(r.ranges(), 1u);
    const size_t one_range = bytes;
    EXPECT_GT(one_range, 0u);
    EXPECT_LT(one_range, 1024u);
    // Every other seq: one range each, and the heap grows with them.
    for (uint64_t seq = 200001; seq <= 400000; seq += 2) r.Insert(seq);
    EXPECT_EQ(r.ranges(), 100001u);
    EXPECT_GE(bytes, 100000 * sizeof(std::pair<uint64_t, uint64_t>));
    r.Erase(0, 1000000);
    EXPECT_TRUE(r.empty());
    EXPECT_LT(bytes, 1024u);
  }
  EXPECT_EQ(bytes, 0u);  // all freed with it
}

}  // namespace
}  // namespace fabric::wq
