// SPDX-License-Identifier: Apache-2.0
// `PositionFile`: the file format (a file of the previous release opens),
// damage, the lock, the file's mode, the directory fsync of a new file, and
// `Sync` errors, on the in-memory file system and on a real directory. The
// crash points are in position_file_crash_points_test.cc.
#include "fabric/spool/position_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fabric/spool/internal/file_system.h"
#include "fabric/spool/internal/mem_file_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::testing::IsOkAndHolds;
using ::fabric::testing::StatusIs;
using spool_internal::MemFileSystem;
using spool_internal::MemOp;
using spool_internal::ScopedFileSystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;

constexpr char kPath[] = "/subs/billing.pos";
constexpr size_t kFileBytes = 64 + PositionFile::kMaxStreams * 64;

// The layout of positions.h, written independently of positions.cc.
void Put32(std::string* s, size_t at, uint32_t v) {
  s->replace(at, 4, reinterpret_cast<const char*>(&v), 4);
}
void Put64(std::string* s, size_t at, uint64_t v) {
  s->replace(at, 8, reinterpret_cast<const char*>(&v), 8);
}

std::string SlotBytes(uint64_t stream, uint64_t seq, const std::string& topic) {
  std::string slot(64, '\0');
  Put64(&slot, 8, stream);
  Put64(&slot, 16, seq);
  slot.replace(32, topic.size(), topic);
  uint32_t h = 2166136261u;  // FNV-1a of bytes [8, 16) and [24, 64)
  for (size_t i = 8; i < 64; ++i) {
    if (i == 16) i = 24;
    h = (h ^ static_cast<uint8_t>(slot[i])) * 16777619u;
  }
  Put32(&slot, 0, 0x50534246);
  Put32(&slot, 4, h);
  return slot;
}

std::string Image(const std::vector<std::string>& slots) {
  std::string image(kFileBytes, '\0');
  image.replace(0, 8, "FABSUBP1");
  Put32(&image, 8, 1);
  for (size_t i = 0; i < slots.size(); ++i) {
    image.replace(64 + 64 * i, 64, slots[i]);
  }
  return image;
}

std::unique_ptr<PositionFile> OpenOrDie(const std::string& path) {
  absl::StatusOr<std::unique_ptr<PositionFile>> file = PositionFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  return file.ok() ? *std::move(file) : nullptr;
}

TEST(PositionFile, CreatesAnOwnerOnlyFileThatReopens) {
  const std::string path =
      ::fabric::testing::MakeTempDir("positions") + "/billing.pos";
  {
    auto file = OpenOrDie(path);
    ASSERT_NE(file, nullptr);
    FABRIC_ASSERT_OK_AND_ASSIGN(int slot, file->Slot(7, "audit"));
    file->Commit(slot, 5);
    FABRIC_ASSERT_OK(file->Sync());
  }
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(static_cast<size_t>(st.st_size), kFileBytes);
  auto file = OpenOrDie(path);
  ASSERT_NE(file, nullptr);
  EXPECT_THAT(file->Find(7), Optional(5u));
  EXPECT_EQ(file->damaged(), 0u);
}

TEST(PositionFile, OpensAFileOfThePreviousRelease) {
  const std::string path =
      ::fabric::testing::MakeTempDir("positions") + "/billing.pos";
  {
    std::ofstream out(path, std::ios::binary);
    out << Image({SlotBytes(7, 100, "audit"), SlotBytes(9, 200, "prices")});
  }
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);  // as the previous release made it
  auto file = OpenOrDie(path);
  ASSERT_NE(file, nullptr);
  EXPECT_THAT(file->Find(7), Optional(100u));
  EXPECT_THAT(file->Find(9), Optional(200u));
  EXPECT_EQ(file->damaged(), 0u);
  EXPECT_THAT(file->Slot(9, "prices"), IsOkAndHolds(1));
  EXPECT_THAT(file->Slot(11, "new"), IsOkAndHolds(2));
}

TEST(PositionFile, DamagedSlotIsSkippedAndCounted) {
  MemFileSystem fs;
  ScopedFileSystem use(&fs);
  std::string bad = SlotBytes(7, 100, "audit");
  bad[40] ^= 1;  // in the topic: the checksum fails
  fs.WriteForTest(kPath, Image({bad, SlotBytes(9, 200, "prices")}));
  auto file = OpenOrDie(kPath);
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(file->damaged(), 1u);
  EXPECT_FALSE(file->HasSlot(7));
  EXPECT_EQ(file->Find(7), std::nullopt);
  EXPECT_THAT(file->Find(9), Optional(200u));
  // The stream starts over in a new slot; the damaged one is not reused.
  EXPECT_THAT(file->Slot(7, "audit"), IsOkAndHolds(2));
}

TEST(PositionFile, UnreadableHeaderStartsEmpty) {
  MemFileSystem fs;
  ScopedFileSystem use(&fs);
  std::string image = Image({SlotBytes(7, 100, "audit")});
  image[0] = 'X';
  fs.WriteForTest(kPath, image);
  auto file = OpenOrDie(kPath);
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(file->damaged(), 1u);
  EXPECT_FALSE(file->HasSlot(7));
}

// A durable subscriber's state_dir need not exist: Open creates it, and a
// position it synced survives a power loss that drops every unsynced
// directory entry.
TEST(PositionFile, CreatesMissingDirectoriesDurably) {
  MemFileSystem fs;
  ScopedFileSystem use(&fs);
  const std::string path = "/state/subs/billing.pos";
  {
    auto file = OpenOrDie(path);
    ASSERT_NE(file, nullptr);
    absl::StatusOr<int> slot = file->Slot(7, "audit");
    ASSERT_TRUE(slot.ok()) << slot.status();
    file->Commit(*slot, 42);
    ASSERT_TRUE(file->Sync().ok());
  }
  fs.PowerLoss({});  // unsynced data and directory entries are dropped
  auto file = OpenOrDie(path);
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(file->Find(7), std::optional<uint64_t>(42));
}

TEST(PositionFile, NewFileHasItsDirectorySyncedBeforeItIsSized) {
  MemFileSystem fs;
  ScopedFileSystem use(&fs);
  fs.WriteForTest("/subs/other", "");
  std::vector<std::string> ops;
  fs.SetFault([&ops](MemOp op, const std::string& path, uint64_t) {
    ops.push_back(absl::StrCat(spool_internal::MemOpName(op), " ", path));
    return 0;
  });
  OpenOrDie(kPath).reset();
  // Open first makes sure the directory exists and its entry is durable
  // (here it exists: the mkdir fails with EEXIST, its parent is fsynced
  // all the same).
  EXPECT_THAT(
      ops, ElementsAre("mkdir /subs", "syncdir /", "create /subs/billing.pos",
                       "syncdir /subs", "truncate /subs/billing.pos",
                       "sync /subs/billing.pos"));
  ops.clear();
  OpenOrDie(kPath).reset();  // set up already: only the closing sync
  EXPECT_THAT(
      ops, ElementsAre("mkdir /subs", "syncdir /", "sync /subs/billing.pos"));
  // A file its creator left short (it died before sizing it) is set up
  // again, directory fsync included.
  fs.SetFault(nullptr);
  fs.WriteForTest(kPath, "");
  fs.SetFault([&ops](MemOp op, const std::string& path, uint64_t) {
    ops.push_back(absl::StrCat(spool_internal::MemOpName(op), " ", path));
    return 0;
  });
  ops.clear();
  OpenOrDie(kPath).reset();
  EXPECT_THAT(
      ops, ElementsAre("mkdir /subs", "syncdir /", "syncdir /subs",
                       "truncate /subs/billing.pos", "sync /subs/billing.pos"));
}

TEST(PositionFile, OpenFailsWhenTheDirectoryCannotBeSynced) {
  MemFileSystem fs;
  ScopedFileSystem use(&fs);
  fs.WriteForTest("/subs/other", "");
  fs.SetFault([](MemOp op, const std::string&, uint64_t) {
    return op == MemOp::kSyncDir ? EIO : 0;
  });
  EXPECT_THAT(PositionFile::Open(kPath), StatusIs(absl::StatusCode::kDataLoss));
  fs.SetFault(nullptr);
  auto file = OpenOrDie(kPath);  // the lock went with the failed open
  EXPECT_NE(file, nullptr);
}

TEST(PositionFile, SyncedPositionSurvivesPowerLossAndCommitsSurviveCrash) {
  for (bool power_loss : {true, false}) {
    SCOPED_TRACE(power_loss ? "power loss" : "process crash");
    MemFileSystem fs;
    ScopedFileSystem use(&fs);
    fs.WriteForTest("/subs/other", "");
    {
      auto file = OpenOrDie(kPath);
      ASSERT_NE(file, nullptr);
      FABRIC_ASSERT_OK_AND_ASSIGN(int slot, file->Slot(7, "audit"));
      file->Commit(slot, 5);
      FABRIC_ASSERT_OK(file->Sync());
      file->Commit(slot, 6);
      fs.CrashAtOp(fs.ops() + 1);  // dies in the closing sync
    }
    spool_internal::PowerLossModel model;
    if (!power_loss) {
      model = {.data = spool_internal::DataLoss::kKeepAll,
               .drop_unsynced_entries = false};
    }
    fs.PowerLoss(model);
    auto file = OpenOrDie(kPath);
    ASSERT_NE(file, nullptr);
    EXPECT_THAT(file->Find(7), Optional(power_loss ? 5u : 6u));
  }
}

TEST(PositionFile, SyncFailuresAreReturnedAndCounted) {
  MemFileSystem fs;
  ScopedFileSystem use(&fs);
  fs.WriteForTest("/subs/other", "");
  auto file = OpenOrDie(kPath);
  ASSERT_NE(file, nullptr);
  fs.SetFault([](MemOp op, const std::string&, uint64_t) {
    return op == MemOp::kSync ? EIO : 0;
  });
  EXPECT_THAT(file->Sync(), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(file->Sync(), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(file->sync_failures(), 2u);
  fs.SetFault(nullptr);
  FABRIC_EXPECT_OK(file->Sync());
  EXPECT_EQ(file->sync_failures(), 2u);
}

TEST(PositionFile, OneHolderAtATime) {
  MemFileSystem fs;
  ScopedFileSystem use(&fs);
  fs.WriteForTest("/subs/other", "");
  auto file = OpenOrDie(kPath);
  ASSERT_NE(file, nullptr);
  absl::StatusOr<std::unique_ptr<PositionFile>> second =
      PositionFile::Open(kPath);
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr("in use by another process"));
  file.reset();
  EXPECT_NE(OpenOrDie(kPath), nullptr);
}

TEST(PositionFile, AtMostMaxStreams) {
  MemFileSystem fs;
  ScopedFileSystem use(&fs);
  fs.WriteForTest("/subs/other", "");
  auto file = OpenOrDie(kPath);
  ASSERT_NE(file, nullptr);
  for (uint64_t s = 1; s <= PositionFile::kMaxStreams; ++s) {
    FABRIC_ASSERT_OK(file->Slot(s, "t").status());
  }
  EXPECT_THAT(file->Slot(0, "t"),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

}  // namespace
}  // namespace fabric
