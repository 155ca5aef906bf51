// SPDX-License-Identifier: Apache-2.0
// Recovery of damaged spools (docs/spool.md section 7): torn tails cut at
// every offset, flipped bytes and zeroed chunks in the newest and in sealed
// segments, garbage tails, empty and header-only segments, a bad META.
// Recovery must keep every intact record, report damage and never crash.
#include <memory>
#include <random>

#include "absl/strings/match.h"
#include "fabric/spool/internal/record.h"
#include "fabric/spool/internal/spool_format.h"
#include "fabric/spool/internal/spool_test_util.h"
#include "fabric/spool/spool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::spool_internal::JoinPath;
using ::fabric::spool_internal::kSegmentHeaderSize;
using ::fabric::spool_internal::SegmentFileName;
using ::fabric::spool_internal::testing::Body;
using ::fabric::spool_internal::testing::CopyDir;
using ::fabric::spool_internal::testing::ReadAll;
using ::fabric::spool_internal::testing::RecordBounds;
using ::fabric::spool_internal::testing::RemoveTree;
using ::fabric::spool_internal::testing::SegmentPaths;
using ::fabric::spool_internal::testing::SizeOf;
using ::fabric::spool_internal::testing::TempDir;
using ::fabric::spool_internal::testing::TestOptions;
using ::fabric::spool_internal::testing::WriteAll;
using ::fabric::testing::MakeTempDir;
using ::fabric::testing::StatusIs;
using ::testing::HasSubstr;
using Bounds = std::vector<std::pair<uint64_t, uint64_t>>;

// A spool whose segment 1 holds ENQ records 1..n (and nothing else: under
// kBatch no RESERVE record is written, and a fresh spool's first segment
// header reserves nothing, so these cuts exercise the rules for logs without
// reservations; the crash-point tests cover reservations).
struct Fixture {
  std::shared_ptr<TempDir> owner;  // removes `dir` with the last copy
  std::string dir;
  std::string segment;  // path of segment 1
  std::string image;    // its contents
  Bounds bounds;        // of its records
};

Fixture MakeSpool(uint64_t n, uint64_t segment_bytes = 64 << 20) {
  Fixture f;
  f.owner = std::make_shared<TempDir>("spool");
  f.dir = f.owner->path();
  SpoolOptions options = TestOptions(f.dir, FsyncPolicy::kBatch);
  options.segment_bytes = segment_bytes;
  {
    absl::StatusOr<std::unique_ptr<Spool>> spool = Spool::Open(options);
    EXPECT_TRUE(spool.ok()) << spool.status();
    for (uint64_t i = 1; i <= n; ++i) {
      EXPECT_TRUE((*spool)->Append({{"i", absl::StrCat(i)}}, Body(i)).ok());
    }
  }
  f.segment = JoinPath(f.dir, SegmentFileName(1));
  f.image = ReadAll(f.segment);
  f.bounds = RecordBounds(f.image, 1);
  return f;
}

std::vector<uint64_t> Seqs(const std::vector<SpooledTask>& tasks) {
  std::vector<uint64_t> seqs;
  for (const SpooledTask& t : tasks) seqs.push_back(t.seq);
  return seqs;
}

std::vector<uint64_t> Range(uint64_t from, uint64_t to) {
  std::vector<uint64_t> seqs;
  for (uint64_t i = from; i <= to; ++i) seqs.push_back(i);
  return seqs;
}

// Copies `f` with segment 1 replaced by `image` into a fresh directory.
std::string Variant(const Fixture& f, const std::string& image) {
  const std::string dir = MakeTempDir("spool-variant");  // caller removes
  CopyDir(f.dir, dir);
  WriteAll(JoinPath(dir, SegmentFileName(1)), image);
  return dir;
}

// Opens a copy of `f` whose segment 1 is cut at `cut` and checks the
// torn-tail rules.
void CheckCut(const Fixture& f, uint64_t cut) {
  SCOPED_TRACE(absl::StrCat("cut at ", cut));
  const std::string dir = Variant(f, f.image.substr(0, cut));
  uint64_t kept = 0;
  uint64_t boundary = kSegmentHeaderSize;
  for (const auto& [start, end] : f.bounds) {
    if (end > cut) break;
    ++kept;
    boundary = end;
  }
  {
    absl::StatusOr<std::unique_ptr<Spool>> spool =
        Spool::Open(TestOptions(dir));
    ASSERT_TRUE(spool.ok()) << spool.status();
    const SpoolReport& report = (*spool)->recovery();
    EXPECT_TRUE(report.corrupt.empty());
    EXPECT_EQ(report.torn_tail_bytes, cut - boundary);
    std::vector<SpooledTask> pending = (*spool)->TakePending();
    EXPECT_EQ(Seqs(pending), Range(1, kept));
    for (const SpooledTask& task : pending) {
      EXPECT_EQ(task.body, Body(task.seq));
    }
    EXPECT_EQ(SizeOf(JoinPath(dir, SegmentFileName(1))), boundary);
    // Never reuses a seq the cut record might have had.
    absl::StatusOr<uint64_t> seq = (*spool)->Append({}, "after");
    ASSERT_TRUE(seq.ok());
    EXPECT_GT(*seq, kept);
    if (cut == boundary) {
      EXPECT_EQ(*seq, kept + 1);
    }
  }
  RemoveTree(dir);
}

TEST(SpoolRecovery, TornTailAtEveryRecordBoundary) {
  const Fixture f = MakeSpool(30);
  ASSERT_EQ(f.bounds.size(), 30u);
  CheckCut(f, kSegmentHeaderSize);
  for (const auto& [start, end] : f.bounds) CheckCut(f, end);
}

TEST(SpoolRecovery, TornTailAtEveryByteOfTheLastTwoRecords) {
  const Fixture f = MakeSpool(10);
  ASSERT_EQ(f.bounds.size(), 10u);
  for (uint64_t cut = f.bounds[8].first; cut < f.image.size(); ++cut) {
    CheckCut(f, cut);
  }
}

TEST(SpoolRecovery, TornTailAtRandomOffsets) {
  const Fixture f = MakeSpool(200);
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<uint64_t> offset(kSegmentHeaderSize,
                                                 f.image.size());
  for (int i = 0; i < 40; ++i) CheckCut(f, offset(rng));
}

TEST(SpoolRecovery, ZeroAndGarbageTailsAreTorn) {
  const Fixture f = MakeSpool(20);
  std::mt19937_64 rng(7);
  std::string garbage(4096, '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  for (const std::string& tail : {std::string(4096, '\0'), garbage}) {
    const std::string dir = Variant(f, f.image + tail);
    {
      FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(dir)));
      EXPECT_EQ(spool->recovery().torn_tail_bytes, 4096u);
      EXPECT_TRUE(spool->recovery().corrupt.empty());
      EXPECT_EQ(Seqs(spool->TakePending()), Range(1, 20));
    }
    EXPECT_EQ(SizeOf(JoinPath(dir, SegmentFileName(1))), f.image.size());
    RemoveTree(dir);
  }
}

// Damage in the middle of the newest segment, found by Scan and by Open.
void CheckMiddleDamage(const Fixture& f, const std::string& image,
                       size_t first_bad, size_t last_bad) {
  const std::string dir = Variant(f, image);
  const std::string path = JoinPath(dir, SegmentFileName(1));
  // Scan reports it and changes nothing.
  FABRIC_ASSERT_OK_AND_ASSIGN(SpoolReport scanned, Spool::Scan(dir));
  ASSERT_FALSE(scanned.corrupt.empty());
  EXPECT_EQ(scanned.corrupt[0].segment, SegmentFileName(1));
  EXPECT_EQ(scanned.corrupt[0].offset, f.bounds[first_bad].first);
  EXPECT_EQ(scanned.torn_tail_bytes, 0u);
  EXPECT_EQ(ReadAll(path), image);
  EXPECT_FALSE(spool_internal::FileExists(JoinPath(dir, "quarantine")));
  std::vector<uint64_t> expected;
  for (uint64_t seq = 1; seq <= f.bounds.size(); ++seq) {
    if (seq - 1 < first_bad || seq - 1 > last_bad) expected.push_back(seq);
  }
  EXPECT_EQ(scanned.pending, expected.size());
  {
    FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(dir)));
    EXPECT_EQ(spool->recovery().corrupt.size(), scanned.corrupt.size());
    EXPECT_EQ(spool->recovery().corrupt[0].offset, f.bounds[first_bad].first);
    EXPECT_EQ(Seqs(spool->TakePending()), expected);
  }
  // Kept for forensics, once; the segment itself is not cut.
  EXPECT_EQ(ReadAll(JoinPath(dir, "quarantine/" + SegmentFileName(1))), image);
  EXPECT_EQ(SizeOf(path), image.size());
  RemoveTree(dir);
}

TEST(SpoolRecovery, FlippedBytesInTheMiddleAreSkippedAndReported) {
  const Fixture f = MakeSpool(20);
  // A payload byte, a header byte (lsn), the magic and the trailer.
  for (uint64_t delta : {uint64_t{40}, uint64_t{17}, uint64_t{0}}) {
    std::string image = f.image;
    image[f.bounds[7].first + delta] ^= 0x10;
    CheckMiddleDamage(f, image, 7, 7);
  }
  std::string image = f.image;
  image[f.bounds[7].second - 1] ^= 0x01;
  CheckMiddleDamage(f, image, 7, 7);
}

TEST(SpoolRecovery, ZeroedChunkInTheMiddleIsSkippedAndReported) {
  const Fixture f = MakeSpool(100);
  const uint64_t from = f.bounds[20].first + 10;
  std::string image = f.image;
  std::fill(image.begin() + from, image.begin() + from + 4096, '\0');
  size_t last_bad = 20;
  while (f.bounds[last_bad + 1].first < from + 4096) ++last_bad;
  CheckMiddleDamage(f, image, 20, last_bad);
}

TEST(SpoolRecovery, DamageInASealedSegmentIsReportedNotCut) {
  // Small segments: the records spread over several files.
  const Fixture f = MakeSpool(100, 4096);
  std::vector<std::string> paths = SegmentPaths(f.dir);
  ASSERT_GE(paths.size(), 3u);
  const std::string sealed = paths[1];
  const uint64_t number = *spool_internal::ParseSegmentFileName(
      sealed.substr(sealed.rfind('/') + 1));
  const std::string original = ReadAll(sealed);
  const Bounds bounds = RecordBounds(original, number);
  ASSERT_GE(bounds.size(), 6u);
  // Zero 4 KiB past the end of the file's first records: the tail of a
  // sealed segment is corruption, not a torn tail.
  std::string image = original;
  image[bounds[2].first + 30] ^= 0x55;  // one record in the middle
  image.resize(bounds[4].first + 5);    // and a cut tail
  WriteAll(sealed, image);
  FABRIC_ASSERT_OK_AND_ASSIGN(SpoolReport scanned, Spool::Scan(f.dir));
  ASSERT_EQ(scanned.corrupt.size(), 2u);
  EXPECT_EQ(scanned.corrupt[0].offset, bounds[2].first);
  EXPECT_EQ(scanned.corrupt[1].offset, bounds[3].second);
  EXPECT_THAT(scanned.corrupt[1].what, HasSubstr("unreadable"));
  EXPECT_EQ(scanned.torn_tail_bytes, 0u);
  EXPECT_EQ(ReadAll(sealed), image);
  {
    FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(f.dir)));
    EXPECT_EQ(spool->recovery().corrupt.size(), 2u);
    EXPECT_EQ(spool->recovery().pending, 100u - 1 - (bounds.size() - 4));
  }
  EXPECT_EQ(ReadAll(sealed), image);  // not truncated
  EXPECT_TRUE(spool_internal::FileExists(
      JoinPath(f.dir, "quarantine/" + SegmentFileName(number))));
}

TEST(SpoolRecovery, RandomDamageNeverCrashes) {
  const Fixture f = MakeSpool(60, 4096);
  const std::vector<std::string> paths = SegmentPaths(f.dir);
  std::mt19937_64 rng(1234);
  for (int round = 0; round < 60; ++round) {
    const TempDir tmp("spool-random");
    const std::string& dir = tmp.path();
    CopyDir(f.dir, dir);
    for (const std::string& original : paths) {
      const std::string path =
          JoinPath(dir, original.substr(original.rfind('/') + 1));
      std::string image = ReadAll(path);
      if (image.empty()) continue;
      switch (rng() % 4) {
        case 0:  // flip bits
          for (int i = 0; i < 3; ++i)
            image[rng() % image.size()] ^= 1 << (rng() % 8);
          break;
        case 1:  // cut
          image.resize(rng() % image.size());
          break;
        case 2: {  // zero a chunk
          const size_t at = rng() % image.size();
          std::fill(image.begin() + at,
                    image.begin() + std::min(image.size(), at + 512), '\0');
          break;
        }
        default:  // leave it
          break;
      }
      WriteAll(path, image);
    }
    FABRIC_ASSERT_OK(Spool::Scan(dir).status());
    {
      FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(dir)));
      FABRIC_ASSERT_OK(spool->Append({}, "works").status());
    }
    // Repaired: a second recovery finds no torn tail.
    FABRIC_ASSERT_OK_AND_ASSIGN(SpoolReport again, Spool::Scan(dir));
    EXPECT_EQ(again.torn_tail_bytes, 0u);
    RemoveTree(dir);
  }
}

TEST(SpoolRecovery, EmptyAndHeaderOnlySegments) {
  const Fixture f = MakeSpool(5);
  // Header only: fine, nothing to report.
  {
    const std::string dir = Variant(f, f.image.substr(0, kSegmentHeaderSize));
    FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(dir)));
    EXPECT_TRUE(spool->recovery().corrupt.empty());
    EXPECT_EQ(spool->recovery().torn_tail_bytes, 0u);
    RemoveTree(dir);
  }
  // An empty or half-written header in the newest segment: a crash while
  // creating it. The file goes; the older segment is untouched.
  for (size_t size : {size_t{0}, size_t{30}}) {
    const std::string dir = Variant(f, f.image);
    const std::string newest = JoinPath(dir, SegmentFileName(9));
    WriteAll(newest, f.image.substr(0, size));
    FABRIC_ASSERT_OK_AND_ASSIGN(SpoolReport scanned, Spool::Scan(dir));
    EXPECT_EQ(scanned.torn_tail_bytes, size);
    EXPECT_TRUE(spool_internal::FileExists(newest));
    {
      FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(dir)));
      EXPECT_TRUE(spool->recovery().corrupt.empty());
      EXPECT_EQ(Seqs(spool->TakePending()), Range(1, 5));
    }
    EXPECT_FALSE(spool_internal::FileExists(newest));
    RemoveTree(dir);
  }
  // An empty older segment is reported (it cannot be a crash artifact) and
  // recovery goes on.
  {
    const std::string dir = Variant(f, f.image);
    WriteAll(JoinPath(dir, SegmentFileName(0)), "");
    FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(dir)));
    ASSERT_EQ(spool->recovery().corrupt.size(), 1u);
    EXPECT_EQ(spool->recovery().corrupt[0].segment, SegmentFileName(0));
    EXPECT_EQ(Seqs(spool->TakePending()), Range(1, 5));
    RemoveTree(dir);
  }
}

TEST(SpoolRecovery, BadSegmentHeaderWithRecordsKeepsThem) {
  const Fixture f = MakeSpool(5);
  std::string image = f.image;
  image[3] ^= 0x20;  // magic
  const std::string dir = Variant(f, image);
  {
    FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(dir)));
    ASSERT_EQ(spool->recovery().corrupt.size(), 1u);
    EXPECT_THAT(spool->recovery().corrupt[0].what, HasSubstr("magic"));
    EXPECT_EQ(Seqs(spool->TakePending()), Range(1, 5));
  }
  RemoveTree(dir);
}

TEST(SpoolRecovery, GarbageMetaIsRebuiltFromSegmentHeaders) {
  const Fixture f = MakeSpool(3);
  FABRIC_ASSERT_OK_AND_ASSIGN(SpoolReport before, Spool::Scan(f.dir));
  const std::string meta = JoinPath(f.dir, "META");
  const std::string garbage = "this is not a META file at all";
  WriteAll(meta, garbage);
  FABRIC_ASSERT_OK_AND_ASSIGN(SpoolReport scanned, Spool::Scan(f.dir));
  ASSERT_EQ(scanned.corrupt.size(), 1u);
  EXPECT_EQ(scanned.corrupt[0].segment, "META");
  EXPECT_EQ(scanned.producer_id, before.producer_id);
  EXPECT_EQ(ReadAll(meta), garbage);
  {
    FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(f.dir)));
    EXPECT_EQ(spool->producer_id(), before.producer_id);
    EXPECT_EQ(Seqs(spool->TakePending()), Range(1, 3));
  }
  EXPECT_EQ(ReadAll(JoinPath(f.dir, "quarantine/META")), garbage);
  FABRIC_ASSERT_OK_AND_ASSIGN(SpoolReport after, Spool::Scan(f.dir));
  EXPECT_TRUE(after.corrupt.empty());
  EXPECT_EQ(after.queue, "q");
  // Missing META: the same.
  ASSERT_EQ(unlink(meta.c_str()), 0);
  FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(f.dir)));
  EXPECT_EQ(spool->producer_id(), before.producer_id);
}

TEST(SpoolRecovery, GarbageMetaWithoutSegmentsStartsOver) {
  const TempDir tmp("spool");
  const std::string& dir = tmp.path();
  WriteAll(JoinPath(dir, "META"), std::string(100, '\xff'));
  FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(dir)));
  EXPECT_FALSE(spool->producer_id().IsZero());
  EXPECT_EQ(spool->recovery().corrupt.size(), 1u);
}

TEST(SpoolRecovery, ForeignSegmentIsIgnored) {
  const Fixture a = MakeSpool(3);
  // Another spool's segment 2 (its second incarnation, with records).
  const Fixture b = MakeSpool(1);
  {
    FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(b.dir)));
    FABRIC_ASSERT_OK(spool->Append({}, "foreign").status());
  }
  WriteAll(JoinPath(a.dir, SegmentFileName(2)),
           ReadAll(JoinPath(b.dir, SegmentFileName(2))));
  FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(a.dir)));
  ASSERT_EQ(spool->recovery().corrupt.size(), 1u);
  EXPECT_THAT(spool->recovery().corrupt[0].what, HasSubstr("another spool"));
  EXPECT_EQ(Seqs(spool->TakePending()), Range(1, 3));
  EXPECT_TRUE(spool_internal::FileExists(JoinPath(a.dir, SegmentFileName(2))));
}

TEST(SpoolRecovery, ScanErrors) {
  EXPECT_THAT(Spool::Scan("/nonexistent/spool/dir"),
              StatusIs(absl::StatusCode::kNotFound));
  const TempDir tmp("spool-empty");
  const std::string& empty = tmp.path();
  EXPECT_THAT(Spool::Scan(empty), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Spool::ScanDead(empty), StatusIs(absl::StatusCode::kNotFound));
}

TEST(SpoolRecovery, LeftoverTmpFilesAreRemoved) {
  const Fixture f = MakeSpool(3);
  const std::string tmp = JoinPath(f.dir, SegmentFileName(1) + ".tmp");
  WriteAll(tmp, f.image);
  FABRIC_ASSERT_OK_AND_ASSIGN(SpoolReport scanned, Spool::Scan(f.dir));
  EXPECT_EQ(scanned.pending, 3u);
  EXPECT_TRUE(spool_internal::FileExists(tmp));
  FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(f.dir)));
  EXPECT_FALSE(spool_internal::FileExists(tmp));
  EXPECT_EQ(Seqs(spool->TakePending()), Range(1, 3));
}

}  // namespace
}  // namespace fabric
