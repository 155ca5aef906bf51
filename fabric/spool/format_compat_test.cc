// SPDX-License-Identifier: Apache-2.0
// Logs written by the previous release open with this code (docs/spool.md
// section 6.1: the format stays version 1; seq reservations use bytes older
// code left zero and a record type it never wrote). The fixtures in
// testdata/release-b731c56/ were written by `fabric push --spool` and
// `fabric pub --durable` built from commit b731c56: a spool holding five
// unacked tasks and a topic log holding five messages, each body
// "msg-N" padded with '.' to 20 bytes.
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fabric/spool/internal/spool_test_util.h"
#include "fabric/spool/spool.h"
#include "fabric/spool/topic_log.h"
#include "gtest/gtest.h"

namespace fabric {
namespace {

using spool_internal::testing::TempDir;

std::string Fixture(const std::string& name) {
  return absl::StrCat(FABRIC_SPOOL_TESTDATA, "/release-b731c56/", name);
}

std::string Body(int n) {
  std::string body = absl::StrCat("msg-", n);
  body.resize(20, '.');
  return body;
}

// A copy of a fixture directory (Open repairs and adds files).
std::string CopyOf(const TempDir& tmp, const std::string& name) {
  const std::string dir = absl::StrCat(tmp.path(), "/", name);
  std::filesystem::copy(Fixture(name), dir,
                        std::filesystem::copy_options::recursive);
  return dir;
}

TEST(FormatCompat, ASpoolWrittenByThePreviousReleaseOpens) {
  const TempDir tmp("compat");
  const std::string dir = CopyOf(tmp, "spool");
  absl::StatusOr<SpoolReport> scan = Spool::Scan(dir);
  ASSERT_TRUE(scan.ok()) << scan.status();
  EXPECT_EQ(scan->pending, 5u);
  EXPECT_TRUE(scan->corrupt.empty());

  SpoolOptions o;
  o.dir = dir;
  o.queue = "jobs";
  uint64_t next = 0;
  {
    absl::StatusOr<std::unique_ptr<Spool>> spool = Spool::Open(o);
    ASSERT_TRUE(spool.ok()) << spool.status();
    EXPECT_TRUE((*spool)->recovery().corrupt.empty());
    EXPECT_EQ((*spool)->recovery().torn_tail_bytes, 0u);
    std::vector<SpooledTask> pending = (*spool)->TakePending();
    ASSERT_EQ(pending.size(), 5u);
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(pending[i].seq, static_cast<uint64_t>(i + 1));
      EXPECT_EQ(pending[i].body, Body(i + 1));
    }
    // New seqs continue where the old release stopped.
    absl::StatusOr<uint64_t> seq = (*spool)->Append({}, "new");
    ASSERT_TRUE(seq.ok()) << seq.status();
    EXPECT_EQ(*seq, 6u);
    next = *seq + 1;
    (*spool)->Ack(1);
    ASSERT_TRUE((*spool)->Flush(absl::Seconds(10)).ok());
  }
  // And the upgraded spool reopens with the new records in it.
  absl::StatusOr<std::unique_ptr<Spool>> spool = Spool::Open(o);
  ASSERT_TRUE(spool.ok()) << spool.status();
  EXPECT_EQ((*spool)->recovery().next_seq, next);
  EXPECT_EQ((*spool)->TakePending().size(), 5u);  // 2..5 and "new"
}

TEST(FormatCompat, ATopicLogWrittenByThePreviousReleaseOpens) {
  const TempDir tmp("compat");
  const std::string dir = CopyOf(tmp, "topic");
  TopicLogOptions o;
  o.dir = dir;
  o.topic = "news";
  absl::StatusOr<std::unique_ptr<TopicLog>> log = TopicLog::Open(o);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_TRUE((*log)->recovery().corrupt.empty());
  EXPECT_EQ((*log)->first_seq(), 1u);
  EXPECT_EQ((*log)->next_seq(), 6u);
  TopicLogRead chunk;
  ASSERT_TRUE((*log)->Read(1, 100, 1 << 20, &chunk).ok());
  ASSERT_EQ(chunk.entries.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<SpooledTask> m = TopicLog::DecodeEntry(chunk.entries[i]);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->seq, static_cast<uint64_t>(i + 1));
    EXPECT_EQ(m->body, Body(i + 1));
  }
  absl::StatusOr<uint64_t> seq = (*log)->Append(absl::Now(), {}, "new");
  ASSERT_TRUE(seq.ok()) << seq.status();
  EXPECT_EQ(*seq, 6u);
}

}  // namespace
}  // namespace fabric
