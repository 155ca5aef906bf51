// SPDX-License-Identifier: Apache-2.0
// `MemFileSystem`: the POSIX-like namespace and handles, the power-loss
// models (durable data and directory entries, torn writes), the crash point,
// injected faults, the capacity and locks.
#include "fabric/spool/internal/mem_file_system.h"

#include <fcntl.h>

#include <cerrno>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace fabric::spool_internal {
namespace {

using ::fabric::testing::IsOk;
using ::fabric::testing::IsOkAndHolds;
using ::fabric::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

static_assert(!std::is_copy_constructible_v<MemFileSystem>);
static_assert(!std::is_copy_assignable_v<MemFileSystem>);

constexpr int kCreate = O_RDWR | O_CREAT;
constexpr char kMissing[] = "<missing>";

// What a reader sees at `path` now, or `kMissing`.
std::string Contents(const MemFileSystem& fs, const std::string& path) {
  std::string data;
  return fs.ReadForTest(path, &data) ? data : kMissing;
}

// Creates or opens `path`, writes `data` at 0 and, if `sync`, fdatasyncs.
absl::Status Write(MemFileSystem& fs, const std::string& path,
                   const std::string& data, bool sync) {
  absl::StatusOr<std::unique_ptr<FileHandle>> file = fs.Open(path, kCreate, 0);
  if (!file.ok()) return file.status();
  absl::Status status = (*file)->PWrite(data, 0, path);
  if (status.ok() && sync) status = (*file)->DataSync(path);
  return status;
}

PowerLossModel Drop() { return {}; }
PowerLossModel DropDataKeepEntries() {
  return {.data = DataLoss::kDropUnsynced, .drop_unsynced_entries = false};
}

TEST(MemFileSystem, StatReportsTheModeOfCreation) {
  // As the POSIX one under umask 0: what MakeDir, Open and Lock asked for,
  // kept by a rename and not changed by a later open.
  MemFileSystem fs;
  FABRIC_ASSERT_OK(fs.MakeDir("/d", 0700));
  FABRIC_ASSERT_OK(fs.Open("/d/f", kCreate, 0640).status());
  FABRIC_ASSERT_OK(fs.Open("/d/f", kCreate | O_TRUNC, 0666).status());
  FABRIC_ASSERT_OK(fs.Rename("/d/f", "/d/g"));
  FABRIC_ASSERT_OK(fs.Lock("/d/lock").status());
  EXPECT_EQ(fs.Stat("/d")->mode, 0700u);
  EXPECT_EQ(fs.Stat("/d/g")->mode, 0640u);
  EXPECT_EQ(fs.Stat("/d/lock")->mode, 0600u);
}

TEST(MemFileSystem, CreateWriteReadSize) {
  MemFileSystem fs;
  FABRIC_ASSERT_OK(fs.MakeDir("/d", 0755));
  FABRIC_ASSERT_OK_AND_ASSIGN(auto file, fs.Open("/d/f", kCreate, 0644));
  FABRIC_ASSERT_OK(file->PWrite("hello", 0, "/d/f"));
  FABRIC_ASSERT_OK(file->PWrite(" world", 5, "/d/f"));
  EXPECT_THAT(file->Size("/d/f"), IsOkAndHolds(11));
  std::string out;
  FABRIC_ASSERT_OK(file->PRead(0, 100, &out, "/d/f"));
  EXPECT_EQ(out, "hello world");
  FABRIC_ASSERT_OK(file->PRead(6, 3, &out, "/d/f"));
  EXPECT_EQ(out, "wor");
  FABRIC_ASSERT_OK(file->PRead(11, 3, &out, "/d/f"));
  EXPECT_EQ(out, "");
  FABRIC_ASSERT_OK(file->PRead(50, 3, &out, "/d/f"));
  EXPECT_EQ(out, "");
  // A write past the end leaves a hole of zeros.
  FABRIC_ASSERT_OK(file->PWrite("!", 13, "/d/f"));
  EXPECT_EQ(Contents(fs, "/d/f"), std::string("hello world\0\0!", 14));

  FABRIC_ASSERT_OK_AND_ASSIGN(FileStat st, fs.Stat("/d/f"));
  EXPECT_FALSE(st.is_dir);
  EXPECT_EQ(st.size, 14u);
  // Another handle sees the same file; a trailing '/' is ignored.
  FABRIC_ASSERT_OK_AND_ASSIGN(auto again, fs.Open("/d/f/", O_RDONLY, 0));
  EXPECT_THAT(again->Size("/d/f"), IsOkAndHolds(14));
  EXPECT_THAT(fs.ListDir("/d"), IsOkAndHolds(ElementsAre("f")));
  EXPECT_THAT(fs.FilesForTest(), ElementsAre("/d/f"));
  EXPECT_EQ(fs.used_bytes(), 14u);
}

TEST(MemFileSystem, OpenErrorsAndAccessModes) {
  MemFileSystem fs;
  EXPECT_THAT(fs.Open("/f", O_RDONLY, 0),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs.Open("/nodir/f", kCreate, 0),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs.Open("relative", kCreate, 0),
              StatusIs(absl::StatusCode::kInternal));  // EINVAL
  EXPECT_THAT(fs.Open("/a/../b", kCreate, 0),
              StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(fs.Open("/", O_RDONLY, 0),
              StatusIs(absl::StatusCode::kInternal));  // EISDIR
  fs.WriteForTest("/f", "data");
  EXPECT_THAT(fs.Open("/f/g", kCreate, 0),
              StatusIs(absl::StatusCode::kInternal));  // ENOTDIR
  EXPECT_EQ(fs.ops(), 0u);

  FABRIC_ASSERT_OK_AND_ASSIGN(auto reader, fs.Open("/f", O_RDONLY, 0));
  EXPECT_THAT(reader->PWrite("x", 0, "/f"),
              StatusIs(absl::StatusCode::kInternal));  // EBADF
  EXPECT_THAT(reader->Truncate(0, "/f"),
              StatusIs(absl::StatusCode::kInternal));  // EINVAL
  FABRIC_ASSERT_OK_AND_ASSIGN(auto writer, fs.Open("/f", O_WRONLY, 0));
  std::string out;
  EXPECT_THAT(writer->PRead(0, 1, &out, "/f"),
              StatusIs(absl::StatusCode::kInternal));  // EBADF
  EXPECT_EQ(Contents(fs, "/f"), "data");
}

TEST(MemFileSystem, CountsMutatingOperationsOnly) {
  MemFileSystem fs;
  std::vector<std::string> seen;
  fs.SetFault([&seen](MemOp op, const std::string& path, uint64_t index) {
    seen.push_back(absl::StrCat(index, " ", MemOpName(op), " ", path));
    return 0;
  });
  FABRIC_ASSERT_OK(fs.MakeDir("/d/", 0755));
  FABRIC_ASSERT_OK_AND_ASSIGN(auto file, fs.Open("/d/f", kCreate, 0644));
  FABRIC_ASSERT_OK(file->PWrite("abc", 0, "ignored"));
  FABRIC_ASSERT_OK(file->DataSync("ignored"));
  FABRIC_ASSERT_OK(file->Truncate(1, "ignored"));
  // Not counted: reads, and opening an existing file without O_TRUNC.
  std::string out;
  FABRIC_ASSERT_OK(file->PRead(0, 1, &out, "/d/f"));
  FABRIC_ASSERT_OK(file->Size("/d/f").status());
  FABRIC_ASSERT_OK(fs.Stat("/d/f").status());
  FABRIC_ASSERT_OK(fs.ListDir("/d").status());
  FABRIC_ASSERT_OK(fs.Open("/d/f", kCreate, 0).status());
  FABRIC_ASSERT_OK(fs.Open("/d/f", O_RDWR | O_TRUNC, 0).status());
  FABRIC_ASSERT_OK(fs.Rename("/d/f", "/d/g"));
  FABRIC_ASSERT_OK(fs.SyncDir("/d"));
  FABRIC_ASSERT_OK(fs.Remove("/d/g"));
  // Failing calls are counted too (the syscall was made).
  EXPECT_THAT(fs.Remove("/d/g"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(fs.ops(), 10u);
  EXPECT_THAT(
      seen,
      ElementsAre("1 mkdir /d", "2 create /d/f", "3 write /d/f", "4 sync /d/f",
                  "5 truncate /d/f", "6 create /d/f", "7 rename /d/g",
                  "8 syncdir /d", "9 remove /d/g", "10 remove /d/g"));
}

TEST(MemFileSystem, UnsyncedWriteDroppedOrKept) {
  for (DataLoss data : {DataLoss::kDropUnsynced, DataLoss::kKeepAll}) {
    MemFileSystem fs;
    fs.WriteForTest("/f", "old");
    FABRIC_ASSERT_OK(Write(fs, "/f", "new!", /*sync=*/false));
    EXPECT_EQ(Contents(fs, "/f"), "new!");
    fs.PowerLoss({.data = data});
    EXPECT_EQ(Contents(fs, "/f"), data == DataLoss::kKeepAll ? "new!" : "old");
  }
}

TEST(MemFileSystem, DataSyncMakesDataDurable) {
  MemFileSystem fs;
  fs.WriteForTest("/f", "");
  FABRIC_ASSERT_OK_AND_ASSIGN(auto file, fs.Open("/f", O_RDWR, 0));
  FABRIC_ASSERT_OK(file->PWrite("synced", 0, "/f"));
  FABRIC_ASSERT_OK(file->DataSync("/f"));
  FABRIC_ASSERT_OK(file->PWrite("+later", 6, "/f"));
  fs.PowerLoss(Drop());
  EXPECT_EQ(Contents(fs, "/f"), "synced");
  // Afterwards everything is durable: a second power loss changes nothing.
  fs.PowerLoss(Drop());
  EXPECT_EQ(Contents(fs, "/f"), "synced");
}

TEST(MemFileSystem, NewFileNeedsItsDirectorySynced) {
  MemFileSystem fs;
  fs.WriteForTest("/d/old", "x");
  FABRIC_ASSERT_OK(Write(fs, "/d/new", "data", /*sync=*/true));
  fs.PowerLoss(Drop());
  EXPECT_THAT(fs.FilesForTest(), ElementsAre("/d/old"));

  MemFileSystem kept;
  kept.WriteForTest("/d/old", "x");
  FABRIC_ASSERT_OK(Write(kept, "/d/new", "data", /*sync=*/true));
  kept.PowerLoss(DropDataKeepEntries());
  EXPECT_EQ(Contents(kept, "/d/new"), "data");

  MemFileSystem synced;
  synced.WriteForTest("/d/old", "x");
  FABRIC_ASSERT_OK(Write(synced, "/d/new", "data", /*sync=*/true));
  FABRIC_ASSERT_OK(synced.SyncDir("/d"));
  synced.PowerLoss(Drop());
  EXPECT_EQ(Contents(synced, "/d/new"), "data");
}

TEST(MemFileSystem, EntrySyncedButDataNotLeavesEmptyFile) {
  MemFileSystem fs;
  FABRIC_ASSERT_OK(Write(fs, "/f", "data", /*sync=*/false));
  FABRIC_ASSERT_OK(fs.SyncDir("/"));
  fs.PowerLoss(Drop());
  EXPECT_EQ(Contents(fs, "/f"), "");
}

TEST(MemFileSystem, UnsyncedDirectoryVanishesWithItsContents) {
  MemFileSystem fs;
  FABRIC_ASSERT_OK(fs.MakeDir("/d", 0755));
  FABRIC_ASSERT_OK(fs.MakeDir("/d/e", 0755));
  FABRIC_ASSERT_OK(Write(fs, "/d/e/f", "data", /*sync=*/true));
  FABRIC_ASSERT_OK(fs.SyncDir("/d/e"));
  FABRIC_ASSERT_OK(fs.SyncDir("/d"));  // but "/" is not synced
  fs.PowerLoss(Drop());
  EXPECT_THAT(fs.FilesForTest(), IsEmpty());
  EXPECT_THAT(fs.Stat("/d"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs.ListDir("/"), IsOkAndHolds(IsEmpty()));
}

TEST(MemFileSystem, UnsyncedRenameIsUndone) {
  MemFileSystem fs;
  fs.WriteForTest("/d/a", "old");
  FABRIC_ASSERT_OK(Write(fs, "/d/tmp", "new", /*sync=*/true));
  FABRIC_ASSERT_OK(fs.SyncDir("/d"));  // "tmp" is durable
  FABRIC_ASSERT_OK(fs.Rename("/d/tmp", "/d/a"));
  EXPECT_EQ(Contents(fs, "/d/a"), "new");
  EXPECT_THAT(fs.FilesForTest(), ElementsAre("/d/a"));
  fs.PowerLoss(Drop());
  EXPECT_EQ(Contents(fs, "/d/a"), "old");
  EXPECT_EQ(Contents(fs, "/d/tmp"), "new");
}

TEST(MemFileSystem, SyncedRenameSurvives) {
  MemFileSystem fs;
  fs.WriteForTest("/d/a", "old");
  FABRIC_ASSERT_OK(Write(fs, "/d/tmp", "new", /*sync=*/true));
  FABRIC_ASSERT_OK(fs.Rename("/d/tmp", "/d/a"));
  FABRIC_ASSERT_OK(fs.SyncDir("/d"));
  fs.PowerLoss(Drop());
  EXPECT_THAT(fs.FilesForTest(), ElementsAre("/d/a"));
  EXPECT_EQ(Contents(fs, "/d/a"), "new");
}

TEST(MemFileSystem, RenameAcrossDirectoriesNeedsBothSynced) {
  MemFileSystem fs;
  fs.WriteForTest("/d1/f", "data");
  fs.WriteForTest("/d2/other", "");
  FABRIC_ASSERT_OK(fs.Rename("/d1/f", "/d2/f"));
  FABRIC_ASSERT_OK(fs.SyncDir("/d2"));  // not /d1
  // Both names survive, for one file.
  fs.PowerLoss(Drop());
  EXPECT_THAT(fs.FilesForTest(), ElementsAre("/d1/f", "/d2/f", "/d2/other"));
  FABRIC_ASSERT_OK(Write(fs, "/d1/f", "DA", /*sync=*/false));
  EXPECT_EQ(Contents(fs, "/d2/f"), "DAta");
  EXPECT_EQ(fs.used_bytes(), 4u);
  // rename(2) between two names of one file does nothing.
  FABRIC_ASSERT_OK(fs.Rename("/d1/f", "/d2/f"));
  EXPECT_THAT(fs.FilesForTest(), ElementsAre("/d1/f", "/d2/f", "/d2/other"));
}

TEST(MemFileSystem, UnsyncedRemoveComesBack) {
  MemFileSystem fs;
  fs.WriteForTest("/d/f", "data");
  fs.WriteForTest("/d/g", "gone");
  FABRIC_ASSERT_OK(fs.Remove("/d/f"));
  EXPECT_THAT(fs.FilesForTest(), ElementsAre("/d/g"));
  EXPECT_THAT(fs.Stat("/d/f"), StatusIs(absl::StatusCode::kNotFound));
  fs.PowerLoss(Drop());
  EXPECT_EQ(Contents(fs, "/d/f"), "data");

  FABRIC_ASSERT_OK(fs.Remove("/d/g"));
  FABRIC_ASSERT_OK(fs.SyncDir("/d"));
  fs.PowerLoss(Drop());
  EXPECT_THAT(fs.FilesForTest(), ElementsAre("/d/f"));
}

TEST(MemFileSystem, OpenHandleSurvivesRemoveAndRename) {
  MemFileSystem fs;
  fs.WriteForTest("/f", "abc");
  FABRIC_ASSERT_OK_AND_ASSIGN(auto file, fs.Open("/f", O_RDWR, 0));
  FABRIC_ASSERT_OK(fs.Rename("/f", "/g"));
  FABRIC_ASSERT_OK(file->PWrite("X", 0, "/f"));
  EXPECT_EQ(Contents(fs, "/g"), "Xbc");
  FABRIC_ASSERT_OK(fs.Remove("/g"));
  FABRIC_ASSERT_OK(file->PWrite("Y", 1, "/f"));
  std::string out;
  FABRIC_ASSERT_OK(file->PRead(0, 10, &out, "/f"));
  EXPECT_EQ(out, "XYc");
  EXPECT_THAT(fs.FilesForTest(), IsEmpty());
  EXPECT_EQ(fs.used_bytes(), 3u);  // held by the handle
  file.reset();
  EXPECT_EQ(fs.used_bytes(), 0u);
}

TEST(MemFileSystem, RenameReplacesAtomicallyAndChecksKinds) {
  MemFileSystem fs;
  fs.WriteForTest("/a", "A");
  fs.WriteForTest("/b", "B");
  fs.WriteForTest("/dir/x", "X");
  FABRIC_ASSERT_OK(fs.MakeDir("/empty", 0755));
  FABRIC_ASSERT_OK(fs.Rename("/a", "/b"));
  EXPECT_THAT(fs.FilesForTest(), ElementsAre("/b", "/dir/x"));
  EXPECT_EQ(Contents(fs, "/b"), "A");
  FABRIC_EXPECT_OK(fs.Rename("/b", "/b"));
  EXPECT_THAT(fs.Rename("/missing", "/c"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs.Rename("/b", "/nodir/c"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs.Rename("/b", "/dir"),
              StatusIs(absl::StatusCode::kInternal));  // EISDIR
  EXPECT_THAT(fs.Rename("/dir", "/b"),
              StatusIs(absl::StatusCode::kInternal));  // ENOTDIR
  EXPECT_THAT(fs.Rename("/empty", "/dir"),
              StatusIs(absl::StatusCode::kInternal));  // ENOTEMPTY
  EXPECT_THAT(fs.Rename("/dir", "/dir/sub"),
              StatusIs(absl::StatusCode::kInternal));  // EINVAL
  FABRIC_ASSERT_OK(fs.Rename("/dir", "/empty"));
  EXPECT_THAT(fs.FilesForTest(), ElementsAre("/b", "/empty/x"));
}

TEST(MemFileSystem, UnsyncedDirectoryRenamesSettleWithoutCycles) {
  // The durable entries end up as / -> {a, b}, a -> {b}, b -> {a}.
  MemFileSystem fs;
  fs.WriteForTest("/a/b/f", "data");
  FABRIC_ASSERT_OK(fs.Rename("/a/b", "/b"));
  FABRIC_ASSERT_OK(fs.SyncDir("/"));
  FABRIC_ASSERT_OK(fs.Rename("/a", "/b/a"));
  FABRIC_ASSERT_OK(fs.SyncDir("/b"));
  fs.PowerLoss(Drop());
  // Each directory keeps one name (the first in depth-first order).
  EXPECT_THAT(fs.FilesForTest(), ElementsAre("/a/b/f"));
  EXPECT_THAT(fs.ListDir("/"), IsOkAndHolds(ElementsAre("a")));
  fs.PowerLoss(Drop());
  EXPECT_EQ(Contents(fs, "/a/b/f"), "data");
}

// Durable "0123456789"; unsynced: "AB" at 10, then the last write "WXYZ" at
// 8 (over durable bytes and past the end), then nothing else.
class TearLastTest
    : public ::testing::TestWithParam<std::tuple<uint64_t, TornFill>> {};

TEST_P(TearLastTest, LastWriteIsTorn) {
  const auto [keep, fill] = GetParam();
  MemFileSystem fs;
  fs.WriteForTest("/f", "0123456789");
  FABRIC_ASSERT_OK_AND_ASSIGN(auto file, fs.Open("/f", O_RDWR, 0));
  FABRIC_ASSERT_OK(file->PWrite("AB", 10, "/f"));
  FABRIC_ASSERT_OK(file->PWrite("WXYZ", 8, "/f"));
  fs.PowerLoss({.data = DataLoss::kTearLast,
                .tear_keep = keep,
                .fill = fill,
                .garbage_seed = 7});
  const std::string got = Contents(fs, "/f");
  const std::string landed = std::string("WXYZ").substr(0, keep);
  const size_t torn = 4 - landed.size();
  if (fill == TornFill::kAbsent) {
    // The earlier write "AB" at 10 is there; the torn one covers only what
    // landed.
    EXPECT_EQ(got,
              "01234567" + landed + std::string("89AB").substr(landed.size()));
  } else if (fill == TornFill::kZeros) {
    EXPECT_EQ(got, "01234567" + landed + std::string(torn, '\0'));
  } else {
    ASSERT_EQ(got.size(), 12u);
    EXPECT_EQ(got.substr(0, 8 + landed.size()), "01234567" + landed);
    // Reproducible from the seed.
    MemFileSystem again;
    again.WriteForTest("/f", "0123456789");
    FABRIC_ASSERT_OK_AND_ASSIGN(auto f2, again.Open("/f", O_RDWR, 0));
    FABRIC_ASSERT_OK(f2->PWrite("AB", 10, "/f"));
    FABRIC_ASSERT_OK(f2->PWrite("WXYZ", 8, "/f"));
    again.PowerLoss({.data = DataLoss::kTearLast,
                     .tear_keep = keep,
                     .fill = fill,
                     .garbage_seed = 7});
    EXPECT_EQ(Contents(again, "/f"), got);
  }
  // The result is durable.
  fs.PowerLoss(Drop());
  EXPECT_EQ(Contents(fs, "/f"), got);
}

INSTANTIATE_TEST_SUITE_P(
    KeepAndFill, TearLastTest,
    ::testing::Combine(::testing::Values(0, 3, 4, 100),
                       ::testing::Values(TornFill::kAbsent, TornFill::kZeros,
                                         TornFill::kGarbage)));

// The torn 64-byte write of 'A's after a power loss with `garbage_seed`.
std::string TornGarbage(uint64_t seed) {
  MemFileSystem fs;
  if (!Write(fs, "/f", std::string(64, 'A'), /*sync=*/false).ok() ||
      !fs.SyncDir("/").ok()) {
    return "error";
  }
  fs.PowerLoss({.data = DataLoss::kTearLast,
                .tear_keep = 0,
                .fill = TornFill::kGarbage,
                .garbage_seed = seed});
  return Contents(fs, "/f");
}

TEST(MemFileSystem, TearLastGarbageComesFromTheSeed) {
  const std::string got = TornGarbage(1);
  ASSERT_EQ(got.size(), 64u);
  EXPECT_NE(got, std::string(64, 'A'));
  EXPECT_NE(got, std::string(64, '\0'));
  EXPECT_EQ(TornGarbage(1), got);
  EXPECT_NE(TornGarbage(2), got);
}

TEST(MemFileSystem, TearLastReplaysTruncatesAndTearsOnlyTheLastWrite) {
  MemFileSystem fs;
  fs.WriteForTest("/f", "durable");
  fs.WriteForTest("/g", "0123");
  FABRIC_ASSERT_OK_AND_ASSIGN(auto f, fs.Open("/f", O_RDWR | O_TRUNC, 0));
  FABRIC_ASSERT_OK(f->PWrite("first", 0, "/f"));
  FABRIC_ASSERT_OK(f->PWrite("second", 5, "/f"));
  FABRIC_ASSERT_OK(f->Truncate(7, "/f"));  // after the last write: replayed
  FABRIC_ASSERT_OK_AND_ASSIGN(auto g, fs.Open("/g", O_RDWR, 0));
  FABRIC_ASSERT_OK(g->Truncate(2, "/g"));  // no write at all
  fs.PowerLoss({.data = DataLoss::kTearLast, .tear_keep = 1});
  // "second" torn to "s", then the truncate to 7 zero-fills.
  EXPECT_EQ(Contents(fs, "/f"), std::string("firsts\0", 7));
  EXPECT_EQ(Contents(fs, "/g"), "01");
}

TEST(MemFileSystem, UnsyncedTruncateIsUndone) {
  MemFileSystem fs;
  fs.WriteForTest("/f", "abcdef");
  FABRIC_ASSERT_OK_AND_ASSIGN(auto file, fs.Open("/f", O_RDWR, 0));
  FABRIC_ASSERT_OK(file->Truncate(2, "/f"));
  EXPECT_THAT(file->Size("/f"), IsOkAndHolds(2));
  fs.PowerLoss(Drop());
  EXPECT_EQ(Contents(fs, "/f"), "abcdef");

  // So is O_TRUNC; a synced truncate stays; growing fills with zeros.
  FABRIC_ASSERT_OK(fs.Open("/f", O_WRONLY | O_TRUNC, 0).status());
  EXPECT_EQ(Contents(fs, "/f"), "");
  fs.PowerLoss(Drop());
  EXPECT_EQ(Contents(fs, "/f"), "abcdef");
  FABRIC_ASSERT_OK_AND_ASSIGN(file, fs.Open("/f", O_RDWR, 0));
  FABRIC_ASSERT_OK(file->Truncate(3, "/f"));
  FABRIC_ASSERT_OK(file->DataSync("/f"));
  FABRIC_ASSERT_OK(file->Truncate(5, "/f"));
  EXPECT_EQ(Contents(fs, "/f"), std::string("abc\0\0", 5));
  fs.PowerLoss(Drop());
  EXPECT_EQ(Contents(fs, "/f"), "abc");
}

TEST(MemFileSystem, CrashAtOpFailsThatOpAndEverythingAfter) {
  MemFileSystem fs;
  fs.WriteForTest("/f", "old");
  fs.CrashAtOp(3);
  FABRIC_ASSERT_OK_AND_ASSIGN(auto file, fs.Open("/g", kCreate, 0));  // 1
  FABRIC_ASSERT_OK(file->PWrite("g", 0, "/g"));                       // 2
  EXPECT_FALSE(fs.crashed());
  EXPECT_THAT(fs.Rename("/g", "/f"),  // 3
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_TRUE(fs.crashed());
  EXPECT_EQ(fs.ops(), 3u);
  EXPECT_EQ(Contents(fs, "/f"), "old");  // the failed op changed nothing

  // Every call fails now, reads included, and none is counted.
  const auto kDataLoss = absl::StatusCode::kDataLoss;
  std::string out;
  EXPECT_THAT(file->PWrite("x", 0, "/g"), StatusIs(kDataLoss));
  EXPECT_THAT(file->PRead(0, 1, &out, "/g"), StatusIs(kDataLoss));
  EXPECT_THAT(file->DataSync("/g"), StatusIs(kDataLoss));
  EXPECT_THAT(file->Truncate(0, "/g"), StatusIs(kDataLoss));
  EXPECT_THAT(file->Size("/g"), StatusIs(kDataLoss));
  EXPECT_THAT(fs.Open("/f", O_RDONLY, 0), StatusIs(kDataLoss));
  EXPECT_THAT(fs.Open("/h", kCreate, 0), StatusIs(kDataLoss));
  EXPECT_THAT(fs.Stat("/f"), StatusIs(kDataLoss));
  EXPECT_THAT(fs.ListDir("/"), StatusIs(kDataLoss));
  EXPECT_THAT(fs.MakeDir("/d", 0755), StatusIs(kDataLoss));
  EXPECT_THAT(fs.Remove("/f"), StatusIs(kDataLoss));
  EXPECT_THAT(fs.SyncDir("/"), StatusIs(kDataLoss));
  EXPECT_THAT(fs.Lock("/f"), StatusIs(kDataLoss));
  fs.CrashAtOp(0);  // disarming does not revive the process
  EXPECT_THAT(fs.Stat("/f"), StatusIs(kDataLoss));
  EXPECT_EQ(fs.ops(), 3u);
  EXPECT_EQ(Contents(fs, "/g"), "g");  // test access still works

  fs.PowerLoss({.data = DataLoss::kKeepAll, .drop_unsynced_entries = false});
  EXPECT_FALSE(fs.crashed());
  FABRIC_EXPECT_OK(fs.Rename("/g", "/f"));
  EXPECT_EQ(fs.ops(), 4u);
  EXPECT_EQ(Contents(fs, "/f"), "g");
}

TEST(MemFileSystem, CrashPointAlreadyPassedCrashesTheNextOp) {
  MemFileSystem fs;
  FABRIC_ASSERT_OK(fs.MakeDir("/a", 0755));
  FABRIC_ASSERT_OK(fs.MakeDir("/b", 0755));
  fs.CrashAtOp(1);
  EXPECT_THAT(fs.SyncDir("/"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(fs.ops(), 3u);
  fs.PowerLoss(Drop());
  EXPECT_THAT(fs.ListDir("/"), IsOkAndHolds(IsEmpty()));
  FABRIC_EXPECT_OK(fs.MakeDir("/a", 0755));  // the crash point is cleared
}

TEST(MemFileSystem, FailedDataSyncLeavesDurableDataAlone) {
  MemFileSystem fs;
  fs.WriteForTest("/f", "old");
  FABRIC_ASSERT_OK_AND_ASSIGN(auto file, fs.Open("/f", O_RDWR, 0));
  FABRIC_ASSERT_OK(file->PWrite("new", 0, "/f"));
  fs.SetFault([](MemOp op, const std::string& path, uint64_t) {
    return op == MemOp::kSync && path == "/f" ? EIO : 0;
  });
  EXPECT_THAT(file->DataSync("/f"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_FALSE(fs.crashed());  // a fault is not a crash
  EXPECT_EQ(Contents(fs, "/f"), "new");
  fs.SetFault(nullptr);
  fs.PowerLoss(Drop());
  EXPECT_EQ(Contents(fs, "/f"), "old");
}

TEST(MemFileSystem, FaultFailsAnOpWithItsErrnoAndChangesNothing) {
  MemFileSystem fs;
  fs.WriteForTest("/f", "old");
  fs.SetFault([](MemOp op, const std::string&, uint64_t index) {
    if (op == MemOp::kWrite) return ENOSPC;
    if (op == MemOp::kRename) return EACCES;
    return index == 5 ? ENOENT : 0;
  });
  FABRIC_ASSERT_OK_AND_ASSIGN(auto file, fs.Open("/f", O_RDWR, 0));
  EXPECT_THAT(file->PWrite("new", 0, "/f"),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(fs.Rename("/f", "/g"),
              StatusIs(absl::StatusCode::kPermissionDenied));
  FABRIC_EXPECT_OK(fs.MakeDir("/d", 0755));
  EXPECT_THAT(fs.Open("/d/x", kCreate, 0).status(), IsOk());
  EXPECT_THAT(fs.SyncDir("/d"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(fs.ops(), 5u);
  EXPECT_THAT(fs.FilesForTest(), ElementsAre("/d/x", "/f"));
  EXPECT_EQ(Contents(fs, "/f"), "old");
}

TEST(MemFileSystem, CapacityGivesEnospcUntilSpaceIsFreed) {
  MemFileSystem fs;
  fs.SetCapacity(10);
  FABRIC_ASSERT_OK(Write(fs, "/a", "12345678", /*sync=*/false));
  FABRIC_ASSERT_OK_AND_ASSIGN(auto b, fs.Open("/b", kCreate, 0));
  EXPECT_THAT(b->PWrite("abcd", 0, "/b"),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(b->Truncate(3, "/b"),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(Contents(fs, "/b"), "");
  FABRIC_EXPECT_OK(b->PWrite("ab", 0, "/b"));  // exactly full
  EXPECT_EQ(fs.used_bytes(), 10u);
  FABRIC_EXPECT_OK(b->PWrite("AB", 0, "/b"));  // overwriting needs no space
  EXPECT_THAT(b->PWrite("c", 2, "/b"),
              StatusIs(absl::StatusCode::kResourceExhausted));

  // A removed file holds its space while a handle has it open.
  FABRIC_ASSERT_OK_AND_ASSIGN(auto a, fs.Open("/a", O_RDONLY, 0));
  FABRIC_ASSERT_OK(fs.Remove("/a"));
  EXPECT_THAT(b->PWrite("c", 2, "/b"),
              StatusIs(absl::StatusCode::kResourceExhausted));
  a.reset();
  EXPECT_EQ(fs.used_bytes(), 2u);
  FABRIC_EXPECT_OK(b->PWrite("cdefgh", 2, "/b"));
  EXPECT_EQ(Contents(fs, "/b"), "ABcdefgh");
  // Full again: an empty write anywhere needs no space.
  FABRIC_EXPECT_OK(b->PWrite("", 1000, "/b"));
  EXPECT_EQ(Contents(fs, "/b"), "ABcdefgh");
  FABRIC_EXPECT_OK(b->Truncate(8, "/b"));
}

TEST(MemFileSystem, LockIsExclusiveUntilReleased) {
  MemFileSystem fs;
  FABRIC_ASSERT_OK(fs.MakeDir("/d", 0755));
  FABRIC_ASSERT_OK_AND_ASSIGN(auto lock, fs.Lock("/d/LOCK"));
  EXPECT_EQ(fs.ops(), 2u);  // mkdir, create
  EXPECT_THAT(fs.FilesForTest(), ElementsAre("/d/LOCK"));
  absl::StatusOr<std::unique_ptr<FileHandle>> second = fs.Lock("/d/LOCK");
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(second.status().message(), "");
  // The lock handle is an ordinary read-write file.
  FABRIC_EXPECT_OK(lock->PWrite("pid", 0, "/d/LOCK"));
  lock.reset();
  FABRIC_ASSERT_OK_AND_ASSIGN(lock, fs.Lock("/d/LOCK"));
  EXPECT_EQ(fs.ops(), 3u);  // the file existed: not counted
  EXPECT_THAT(fs.Lock("/nodir/LOCK"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs.Lock("/d"), StatusIs(absl::StatusCode::kInternal));
}

TEST(MemFileSystem, PowerLossDropsLocksAndOldHandlesCannotUnlock) {
  MemFileSystem fs;
  fs.WriteForTest("/LOCK", "");
  FABRIC_ASSERT_OK_AND_ASSIGN(auto before, fs.Lock("/LOCK"));
  fs.PowerLoss(Drop());
  FABRIC_ASSERT_OK_AND_ASSIGN(auto after, fs.Lock("/LOCK"));
  EXPECT_THAT(before->PWrite("x", 0, "/LOCK"),
              StatusIs(absl::StatusCode::kDataLoss));
  before.reset();  // must not release `after`'s lock
  EXPECT_THAT(fs.Lock("/LOCK"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  after.reset();
  FABRIC_EXPECT_OK(fs.Lock("/LOCK").status());
}

TEST(MemFileSystem, HandlesFromBeforePowerLossAreDead) {
  MemFileSystem fs;
  fs.WriteForTest("/f", "data");
  FABRIC_ASSERT_OK_AND_ASSIGN(auto file, fs.Open("/f", O_RDWR, 0));
  fs.PowerLoss({.data = DataLoss::kKeepAll});
  const auto kDataLoss = absl::StatusCode::kDataLoss;
  std::string out;
  EXPECT_THAT(file->PWrite("x", 0, "/f"), StatusIs(kDataLoss));
  EXPECT_THAT(file->PRead(0, 1, &out, "/f"), StatusIs(kDataLoss));
  EXPECT_THAT(file->DataSync("/f"), StatusIs(kDataLoss));
  EXPECT_THAT(file->Truncate(0, "/f"), StatusIs(kDataLoss));
  EXPECT_THAT(file->Size("/f"), StatusIs(kDataLoss));
  EXPECT_EQ(fs.ops(), 0u);
  FABRIC_ASSERT_OK_AND_ASSIGN(auto fresh, fs.Open("/f", O_RDWR, 0));
  FABRIC_ASSERT_OK(fresh->PRead(0, 10, &out, "/f"));
  EXPECT_EQ(out, "data");
  // A dead handle holds no space, and closing it does not release what a
  // live one holds.
  FABRIC_ASSERT_OK(fs.Remove("/f"));
  EXPECT_EQ(fs.used_bytes(), 4u);
  file.reset();
  EXPECT_EQ(fs.used_bytes(), 4u);
  fresh.reset();
  EXPECT_EQ(fs.used_bytes(), 0u);
}

TEST(MemFileSystem, HandleMayOutliveTheFileSystem) {
  auto fs = std::make_unique<MemFileSystem>();
  FABRIC_ASSERT_OK_AND_ASSIGN(auto file, fs->Open("/f", kCreate, 0));
  FABRIC_ASSERT_OK_AND_ASSIGN(auto lock, fs->Lock("/LOCK"));
  fs.reset();
  EXPECT_THAT(file->PWrite("x", 0, "/f"),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(lock->Size("/LOCK"), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(MemFileSystem, NamespaceErrors) {
  MemFileSystem fs;
  fs.WriteForTest("/d/f", "abc");
  EXPECT_THAT(fs.ListDir("/missing"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs.ListDir("/d/f"),
              StatusIs(absl::StatusCode::kInternal));  // ENOTDIR
  EXPECT_THAT(fs.ListDir("/d"), IsOkAndHolds(ElementsAre("f")));
  EXPECT_THAT(fs.Stat("/missing"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs.Stat("/d/f/x"), StatusIs(absl::StatusCode::kInternal));
  FABRIC_ASSERT_OK_AND_ASSIGN(FileStat st, fs.Stat("/d"));
  EXPECT_TRUE(st.is_dir);
  FABRIC_ASSERT_OK_AND_ASSIGN(st, fs.Stat("/"));
  EXPECT_TRUE(st.is_dir);
  EXPECT_THAT(fs.MakeDir("/d", 0755),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(fs.MakeDir("/d/f", 0755),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(fs.MakeDir("/", 0755),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(fs.MakeDir("/x/y", 0755), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs.MakeDir("/d/f/y", 0755),
              StatusIs(absl::StatusCode::kInternal));  // ENOTDIR
  EXPECT_THAT(fs.Remove("/missing"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs.Remove("/d"), StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(fs.SyncDir("/missing"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs.SyncDir("/d/f"), StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(fs.FilesForTest(), ElementsAre("/d/f"));
}

TEST(MemFileSystem, WriteForTestIsDurable) {
  MemFileSystem fs;
  FABRIC_ASSERT_OK(fs.MakeDir("/x", 0755));  // not durable yet
  fs.WriteForTest("/x/y/z", "data");
  fs.WriteForTest("/a", "1");
  fs.WriteForTest("/a", "2");  // replaces, same file
  fs.PowerLoss(Drop());
  EXPECT_THAT(fs.FilesForTest(), ElementsAre("/a", "/x/y/z"));
  EXPECT_EQ(Contents(fs, "/x/y/z"), "data");
  EXPECT_EQ(Contents(fs, "/a"), "2");
  EXPECT_EQ(Contents(fs, "/x"), kMissing);  // a directory
  EXPECT_EQ(fs.ops(), 1u);
}

TEST(MemFileSystemDeathTest, WriteForTestRefusesWhatIsInTheWay) {
  MemFileSystem fs;
  fs.WriteForTest("/f", "x");
  EXPECT_DEATH(fs.WriteForTest("/f/g", "y"), "a file is in the way");
  EXPECT_DEATH(fs.WriteForTest("/", "y"), "not a file path");
  EXPECT_DEATH(fs.WriteForTest("relative", "y"), "not a file path");
}

TEST(MemFileSystem, KeepAllWithEntriesIsAProcessCrash) {
  MemFileSystem fs;
  FABRIC_ASSERT_OK(fs.MakeDir("/d", 0755));
  FABRIC_ASSERT_OK(Write(fs, "/d/f", "data", /*sync=*/false));
  fs.PowerLoss({.data = DataLoss::kKeepAll, .drop_unsynced_entries = false});
  EXPECT_EQ(Contents(fs, "/d/f"), "data");
  fs.PowerLoss(Drop());  // everything became durable
  EXPECT_EQ(Contents(fs, "/d/f"), "data");
}

TEST(MemFileSystem, ConcurrentWritersToSeparateFiles) {
  MemFileSystem fs;
  constexpr int kThreads = 4;
  constexpr int kWrites = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&fs, t] {
      const std::string path = absl::StrCat("/f", t);
      auto file = fs.Open(path, kCreate, 0);
      if (!file.ok()) return;
      for (int i = 0; i < kWrites; ++i) {
        (*file)->PWrite("x", i, path).IgnoreError();  // checked below
        if (i % 10 == 0) (*file)->DataSync(path).IgnoreError();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(fs.ops(), uint64_t{kThreads} * (1 + kWrites + kWrites / 10));
  EXPECT_EQ(fs.used_bytes(), uint64_t{kThreads} * kWrites);
  EXPECT_THAT(fs.FilesForTest(),
              UnorderedElementsAre("/f0", "/f1", "/f2", "/f3"));
}

}  // namespace
}  // namespace fabric::spool_internal
