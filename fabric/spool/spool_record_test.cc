// SPDX-License-Identifier: Apache-2.0
// Unit tests of the spool's internal pieces: record framing and the segment
// walk, payload codecs, segment header, META, seq ranges and the index's
// deletion rules.
#include <random>

#include "fabric/spool/internal/index.h"
#include "fabric/spool/internal/meta.h"
#include "fabric/spool/internal/payload.h"
#include "fabric/spool/internal/record.h"
#include "fabric/spool/internal/spool_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace fabric::spool_internal {
namespace {

using ::fabric::testing::IsOk;
using ::fabric::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Pair;

std::string Image(int records, uint64_t segment = 3) {
  SegmentHeader header;
  header.segment = segment;
  std::string image = EncodeSegmentHeader(header);
  for (int i = 1; i <= records; ++i) {
    AppendRecord(&image, RecordType::kEnq, 100 + i, segment,
                 std::string(10 + i, static_cast<char>('a' + i)));
  }
  return image;
}

TEST(SpoolRecord, RoundTrip) {
  std::string image;
  AppendRecord(&image, RecordType::kAck, 42, 7, "payload");
  ASSERT_EQ(image.size(), kRecordOverhead + 7);
  RecordView r;
  std::string why;
  ASSERT_TRUE(ParseRecordAt(image, 0, 7, 0, &r, &why)) << why;
  EXPECT_EQ(r.type, static_cast<uint8_t>(RecordType::kAck));
  EXPECT_EQ(r.lsn, 42u);
  EXPECT_EQ(r.size, image.size());
  EXPECT_EQ(r.payload, "payload");
  // Wrong segment, non-increasing lsn.
  EXPECT_FALSE(ParseRecordAt(image, 0, 8, 0, &r, &why));
  EXPECT_FALSE(ParseRecordAt(image, 0, 7, 42, &r, &why));
}

TEST(SpoolRecord, EveryFlippedBitIsDetected) {
  std::string image;
  AppendRecord(&image, RecordType::kEnq, 9, 1, "some payload bytes");
  RecordView r;
  std::string why;
  for (size_t byte = 0; byte < image.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string damaged = image;
      damaged[byte] ^= static_cast<char>(1 << bit);
      EXPECT_FALSE(ParseRecordAt(damaged, 0, 1, 0, &r, &why))
          << "byte " << byte << " bit " << bit;
    }
  }
}

TEST(SpoolRecord, HugeLengthIsRejectedEvenWithAValidHeaderChecksum) {
  // Forge a header claiming 1 GiB with a correct header checksum.
  std::string image;
  AppendRecord(&image, RecordType::kEnq, 1, 1, "x");
  const uint32_t huge = 1u << 30;
  for (int i = 0; i < 4; ++i) image[8 + i] = static_cast<char>(huge >> (8 * i));
  const uint32_t sum = Checksum(absl::string_view(image).substr(8, 20));
  for (int i = 0; i < 4; ++i) image[4 + i] = static_cast<char>(sum >> (8 * i));
  RecordView r;
  std::string why;
  EXPECT_FALSE(ParseRecordAt(image, 0, 1, 0, &r, &why));
  EXPECT_THAT(why, ::testing::HasSubstr("exceeds the limit"));
}

TEST(SpoolRecord, WalkClassifiesTornTailAndMiddleDamage) {
  const std::string image = Image(5);
  std::vector<uint64_t> lsns;
  auto visit = [&](const RecordView& r) { lsns.push_back(r.lsn); };
  SegmentWalk walk = WalkSegment(image, 3, kSegmentHeaderSize, visit);
  EXPECT_THAT(lsns, ElementsAre(101, 102, 103, 104, 105));
  EXPECT_EQ(walk.valid_end, image.size());
  EXPECT_TRUE(walk.skipped.empty());

  // Cut inside the last record: a tail, nothing skipped.
  lsns.clear();
  walk = WalkSegment(image.substr(0, image.size() - 3), 3, kSegmentHeaderSize,
                     visit);
  EXPECT_THAT(lsns, ElementsAre(101, 102, 103, 104));
  EXPECT_LT(walk.valid_end, image.size() - 3);
  EXPECT_FALSE(walk.tail_what.empty());

  // Damage in record 2: skipped, the rest kept.
  std::string damaged = image;
  const uint64_t second = kSegmentHeaderSize + kRecordOverhead + 11;
  damaged[second + kRecordHeaderSize + 2] ^= 1;
  lsns.clear();
  walk = WalkSegment(damaged, 3, kSegmentHeaderSize, visit);
  EXPECT_THAT(lsns, ElementsAre(101, 103, 104, 105));
  ASSERT_EQ(walk.skipped.size(), 1u);
  EXPECT_EQ(walk.skipped[0].offset, second);
  EXPECT_EQ(walk.skipped[0].bytes, kRecordOverhead + 12);
  EXPECT_EQ(walk.valid_end, image.size());
}

TEST(SpoolRecord, WalkSurvivesRandomBytes) {
  std::mt19937_64 rng(3);
  for (int round = 0; round < 200; ++round) {
    std::string image = Image(20);
    for (int i = 0; i < 5; ++i) image[rng() % image.size()] = rng();
    if (round % 2) image.resize(rng() % image.size());
    uint64_t last = 0;
    const SegmentWalk walk =
        WalkSegment(image, 3, kSegmentHeaderSize, [&](const RecordView& r) {
          EXPECT_GT(r.lsn, last);
          last = r.lsn;
        });
    EXPECT_LE(walk.valid_end, image.size());
  }
}

TEST(SpoolRecord, SegmentHeader) {
  SegmentHeader header;
  header.segment = 12;
  header.base_seq = 34;
  header.base_lsn = 56;
  header.created = absl::FromUnixMicros(1700000000123456);
  header.producer_id = NodeId::Random();
  header.flags = kSegmentFlagCompacted;
  const std::string bytes = EncodeSegmentHeader(header);
  ASSERT_EQ(bytes.size(), kSegmentHeaderSize);
  FABRIC_ASSERT_OK_AND_ASSIGN(SegmentHeader back, DecodeSegmentHeader(bytes));
  EXPECT_EQ(back.segment, 12u);
  EXPECT_EQ(back.base_seq, 34u);
  EXPECT_EQ(back.base_lsn, 56u);
  EXPECT_EQ(back.created, header.created);
  EXPECT_EQ(back.producer_id, header.producer_id);
  EXPECT_EQ(back.flags, kSegmentFlagCompacted);
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string damaged = bytes;
    damaged[i] ^= 0x04;
    EXPECT_THAT(DecodeSegmentHeader(damaged),
                StatusIs(absl::StatusCode::kDataLoss))
        << "byte " << i;
  }
  EXPECT_THAT(DecodeSegmentHeader(bytes.substr(0, 40)),
              StatusIs(absl::StatusCode::kDataLoss));
  header.version = kFormatVersion + 1;
  EXPECT_THAT(DecodeSegmentHeader(EncodeSegmentHeader(header)),
              StatusIs(absl::StatusCode::kUnimplemented));
}

TEST(SpoolRecord, Meta) {
  Meta meta{NodeId::Random(), "images", kFormatVersion,
            absl::FromUnixSeconds(1700000000)};
  const std::string bytes = EncodeMeta(meta);
  FABRIC_ASSERT_OK_AND_ASSIGN(Meta back, DecodeMeta(bytes));
  EXPECT_EQ(back.producer_id, meta.producer_id);
  EXPECT_EQ(back.queue, "images");
  EXPECT_EQ(back.version, kFormatVersion);
  EXPECT_EQ(back.created, meta.created);
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string damaged = bytes;
    damaged[i] ^= 0x01;
    EXPECT_FALSE(DecodeMeta(damaged).ok()) << "byte " << i;
  }
  EXPECT_THAT(DecodeMeta(""), StatusIs(absl::StatusCode::kDataLoss));
  meta.version = kFormatVersion + 1;
  EXPECT_THAT(DecodeMeta(EncodeMeta(meta)),
              StatusIs(absl::StatusCode::kUnimplemented));
}

TEST(SpoolPayload, EnqAndDeadRoundTrip) {
  std::string payload;
  const absl::Time t = absl::FromUnixMicros(1700000000000001);
  EncodeEnqPayload(7, t, {{"a", "1"}, {"b", std::string("\0x", 2)}},
                   std::string("bo\0dy", 5), &payload);
  FABRIC_ASSERT_OK_AND_ASSIGN(SpooledTask task, DecodeEnqPayload(payload));
  EXPECT_EQ(task.seq, 7u);
  EXPECT_EQ(task.enqueued, t);
  EXPECT_THAT(task.headers,
              ElementsAre(Pair("a", "1"), Pair("b", std::string("\0x", 2))));
  EXPECT_EQ(task.body, std::string("bo\0dy", 5));

  DeadLetter dead{task, 20, "rejected: nope", absl::FromUnixSeconds(-5)};
  EncodeDeadPayload(dead, &payload);
  FABRIC_ASSERT_OK_AND_ASSIGN(DeadLetter back, DecodeDeadPayload(payload));
  EXPECT_EQ(back.task.seq, 7u);
  EXPECT_EQ(back.task.body, task.body);
  EXPECT_EQ(back.attempts, 20u);
  EXPECT_EQ(back.reason, "rejected: nope");
  EXPECT_EQ(back.died, absl::FromUnixSeconds(-5));
  // An ENQ payload is not a DEAD payload.
  EncodeEnqPayload(7, t, {}, "x", &payload);
  EXPECT_THAT(DecodeDeadPayload(payload),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(SpoolPayload, RangesRoundTrip) {
  const SeqRanges ranges = ToRanges({9, 1, 2, 3, 7, 3, 10, 12});
  EXPECT_THAT(ranges,
              ElementsAre(Pair(1, 3), Pair(7, 7), Pair(9, 10), Pair(12, 12)));
  std::string payload;
  EncodeSeqRanges(ranges, &payload);
  EXPECT_THAT(DecodeSeqRanges(payload),
              ::fabric::testing::IsOkAndHolds(ranges));
  EXPECT_TRUE(ToRanges({}).empty());
  EXPECT_THAT(ToRanges({UINT64_MAX, UINT64_MAX - 1, 0}),
              ElementsAre(Pair(0, 0), Pair(UINT64_MAX - 1, UINT64_MAX)));
}

TEST(SpoolPayload, MalformedPayloadsAreDataLossNeverThrow) {
  std::mt19937_64 rng(11);
  for (int i = 0; i < 3000; ++i) {
    std::string junk(rng() % 64, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    // Starts often look like msgpack arrays and maps.
    if (!junk.empty() && i % 3 == 0) junk[0] = static_cast<char>(0x94);
    if (!junk.empty() && i % 3 == 1) junk[0] = static_cast<char>(0xdd);
    (void)DecodeEnqPayload(junk);
    (void)DecodeDeadPayload(junk);
    (void)DecodeSeqRanges(junk);
  }
  // An array header announcing 4 billion elements.
  const std::string bomb("\xdd\xff\xff\xff\xff", 5);
  EXPECT_THAT(DecodeSeqRanges(bomb), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(DecodeEnqPayload(""), StatusIs(absl::StatusCode::kDataLoss));
  // A descending range.
  std::string payload;
  EncodeSeqRanges({{5, 4}}, &payload);
  EXPECT_THAT(DecodeSeqRanges(payload), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(SpoolIndex, SegmentWithAcksOfAnOlderSegmentWaitsForIt) {
  SpoolIndex index;
  index.AddSegment(1, 1, 1, 1000);
  index.AddSegment(2, 3, 3, 1000);
  index.AddSegment(3, 5, 5, 80);
  ASSERT_TRUE(index.AddEnq(1, 1, 100));
  ASSERT_TRUE(index.AddEnq(2, 1, 100));
  ASSERT_TRUE(index.AddEnq(3, 2, 100));
  EXPECT_FALSE(index.AddEnq(3, 2, 100));  // duplicate
  EXPECT_EQ(index.live_bytes(), 300u);
  // Segment 2 acks its own task and one of segment 1.
  EXPECT_TRUE(index.ResolveEnq(3, 2));
  EXPECT_TRUE(index.ResolveEnq(1, 2));
  EXPECT_FALSE(index.ResolveEnq(1, 2));
  EXPECT_TRUE(index.Deletable(3).empty());  // 1 has a live task, 2 needs 1
  // Segment 1 compacted: the resolved task 1 is gone from it, so segment 2's
  // ACK is moot.
  CompactionSnapshot snapshot = index.BeginCompaction(1);
  EXPECT_THAT(snapshot.enq, ::testing::UnorderedElementsAre(2));
  EXPECT_FALSE(snapshot.keep_resolutions);
  index.FinishCompaction(snapshot, 80 + 100);
  EXPECT_THAT(index.Deletable(3), ElementsAre(2));
  index.DropSegment(2);
  // A task resolved after the snapshot keeps its dependency.
  CompactionSnapshot again = index.BeginCompaction(1);
  EXPECT_TRUE(index.ResolveEnq(2, 3));
  index.FinishCompaction(again, 80);
  EXPECT_FALSE(index.FindSegment(3)->depends_on.empty());
  EXPECT_THAT(index.Deletable(4), ElementsAre(1));
  index.DropSegment(1);
  EXPECT_TRUE(index.FindSegment(3)->depends_on.empty());
  EXPECT_THAT(index.Deletable(4), ElementsAre(3));
  EXPECT_EQ(index.live_bytes(), 0u);
}

TEST(SpoolIndex, CompactionCandidate) {
  SpoolIndex index;
  index.AddSegment(1, 1, 1, 80 + 20 * 100);
  for (uint64_t seq = 1; seq <= 20; ++seq) index.AddEnq(seq, 1, 100);
  EXPECT_FALSE(index.CompactionCandidate(2).has_value());
  for (uint64_t seq = 1; seq <= 18; ++seq) index.ResolveEnq(seq, 1);
  EXPECT_FALSE(index.CompactionCandidate(1).has_value());  // active
  EXPECT_EQ(index.CompactionCandidate(2), 1u);
  CompactionSnapshot snapshot = index.BeginCompaction(1);
  index.FinishCompaction(snapshot, 80 + 200);
  EXPECT_FALSE(index.CompactionCandidate(2).has_value());  // nothing to gain
}

}  // namespace
}  // namespace fabric::spool_internal
