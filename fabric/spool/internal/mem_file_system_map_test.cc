// SPDX-License-Identifier: Apache-2.0
// `MemFileSystem` mappings (`FileHandle::Map`/`SyncMap`): when stores reach
// the file's current data and when they become durable, the crash snapshot,
// faults, errors, and the per-page writes the power-loss models act on. A
// file of its own beside mem_file_system_test.cc (same test binary), which
// is near the size limit.
#include <fcntl.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fabric/spool/internal/mem_file_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace fabric::spool_internal {
namespace {

using ::fabric::testing::StatusIs;
using ::testing::ElementsAre;

constexpr char kPath[] = "/d/map";
constexpr char kMissing[] = "<missing>";

std::string Contents(const MemFileSystem& fs) {
  std::string data;
  return fs.ReadForTest(kPath, &data) ? data : kMissing;
}

// A durable file of `size` bytes of `fill`, open read-write.
std::unique_ptr<FileHandle> Durable(MemFileSystem& fs, size_t size, char fill) {
  fs.WriteForTest(kPath, std::string(size, fill));
  absl::StatusOr<std::unique_ptr<FileHandle>> file = fs.Open(kPath, O_RDWR, 0);
  EXPECT_TRUE(file.ok()) << file.status();
  return file.ok() ? *std::move(file) : nullptr;
}

void Store(char* map, size_t offset, uint64_t value) {
  __atomic_store_n(reinterpret_cast<uint64_t*>(map + offset), value,
                   __ATOMIC_RELEASE);
}

std::string Word(uint64_t value) {
  return std::string(reinterpret_cast<const char*>(&value), 8);
}

PowerLossModel Drop() { return {}; }
PowerLossModel KeepAll() {
  return {.data = DataLoss::kKeepAll, .drop_unsynced_entries = false};
}

TEST(MemFileSystemMap, StartsWithTheCurrentDataAndIsAligned) {
  MemFileSystem fs;
  auto file = Durable(fs, 24, 'a');
  ASSERT_NE(file, nullptr);
  FABRIC_ASSERT_OK(file->PWrite("unsynced", 8, kPath));
  FABRIC_ASSERT_OK_AND_ASSIGN(char* map, file->Map(20, kPath));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(map) % 8, 0u);
  EXPECT_EQ(std::string(map, 20), "aaaaaaaaunsyncedaaaa");
  EXPECT_EQ(fs.ops(), 1u);  // the write; mapping is not counted
}

TEST(MemFileSystemMap, StoresAreSeenAfterSyncMapAndAreDurable) {
  MemFileSystem fs;
  auto file = Durable(fs, 16, 'a');
  ASSERT_NE(file, nullptr);
  FABRIC_ASSERT_OK_AND_ASSIGN(char* map, file->Map(16, kPath));
  Store(map, 8, 42);
  EXPECT_EQ(Contents(fs), std::string(16, 'a'));  // not yet
  FABRIC_ASSERT_OK(file->SyncMap(kPath));
  const std::string stored = std::string(8, 'a') + Word(42);
  EXPECT_EQ(Contents(fs), stored);
  EXPECT_EQ(fs.ops(), 1u);
  file.reset();
  fs.PowerLoss(Drop());
  EXPECT_EQ(Contents(fs), stored);
}

TEST(MemFileSystemMap, SyncMapIsACountedSync) {
  MemFileSystem fs;
  auto file = Durable(fs, 8, 'a');
  ASSERT_NE(file, nullptr);
  std::vector<std::string> seen;
  fs.SetFault([&seen](MemOp op, const std::string& path, uint64_t index) {
    seen.push_back(absl::StrCat(index, " ", MemOpName(op), " ", path));
    return 0;
  });
  FABRIC_ASSERT_OK(file->Map(8, "ignored").status());
  FABRIC_ASSERT_OK(file->SyncMap("ignored"));
  EXPECT_THAT(seen, ElementsAre("1 sync /d/map"));
}

TEST(MemFileSystemMap, UnmapLeavesStoresUnsynced) {
  for (bool keep : {false, true}) {
    SCOPED_TRACE(keep ? "keep all" : "drop unsynced");
    MemFileSystem fs;
    auto file = Durable(fs, 16, 'a');
    ASSERT_NE(file, nullptr);
    FABRIC_ASSERT_OK_AND_ASSIGN(char* map, file->Map(16, kPath));
    Store(map, 0, 7);
    file.reset();  // munmap: the page cache has the store
    const std::string stored = Word(7) + std::string(8, 'a');
    EXPECT_EQ(Contents(fs), stored);
    EXPECT_EQ(fs.ops(), 0u);
    fs.PowerLoss(keep ? KeepAll() : Drop());
    EXPECT_EQ(Contents(fs), keep ? stored : std::string(16, 'a'));
  }
}

TEST(MemFileSystemMap, StoresAfterSyncMapAreUnsyncedAgain) {
  MemFileSystem fs;
  auto file = Durable(fs, 8, 'a');
  ASSERT_NE(file, nullptr);
  FABRIC_ASSERT_OK_AND_ASSIGN(char* map, file->Map(8, kPath));
  Store(map, 0, 1);
  FABRIC_ASSERT_OK(file->SyncMap(kPath));
  Store(map, 0, 2);
  file.reset();
  EXPECT_EQ(Contents(fs), Word(2));
  fs.PowerLoss(Drop());
  EXPECT_EQ(Contents(fs), Word(1));
}

TEST(MemFileSystemMap, CrashSnapshotIgnoresLaterStores) {
  for (bool keep : {false, true}) {
    SCOPED_TRACE(keep ? "keep all" : "drop unsynced");
    MemFileSystem fs;
    auto file = Durable(fs, 8, 'a');
    ASSERT_NE(file, nullptr);
    FABRIC_ASSERT_OK_AND_ASSIGN(char* map, file->Map(8, kPath));
    Store(map, 0, 1);
    fs.CrashAtOp(1);
    // Any counted operation, on any file, is where the process dies.
    EXPECT_THAT(fs.MakeDir("/other", 0755),
                StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_EQ(Contents(fs), Word(1));
    Store(map, 0, 2);  // after death: never seen
    EXPECT_THAT(file->SyncMap(kPath), StatusIs(absl::StatusCode::kDataLoss));
    file.reset();
    EXPECT_EQ(Contents(fs), Word(1));
    EXPECT_EQ(fs.ops(), 1u);
    fs.PowerLoss(keep ? KeepAll() : Drop());
    EXPECT_EQ(Contents(fs), keep ? Word(1) : std::string(8, 'a'));
  }
}

TEST(MemFileSystemMap, CrashAtSyncMapSnapshotsButMakesNothingDurable) {
  MemFileSystem fs;
  auto file = Durable(fs, 8, 'a');
  ASSERT_NE(file, nullptr);
  FABRIC_ASSERT_OK_AND_ASSIGN(char* map, file->Map(8, kPath));
  Store(map, 0, 1);
  fs.CrashAtOp(1);
  EXPECT_THAT(file->SyncMap(kPath), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(Contents(fs), Word(1));  // the page cache had it
  file.reset();
  fs.PowerLoss(Drop());
  EXPECT_EQ(Contents(fs), std::string(8, 'a'));
}

TEST(MemFileSystemMap, FailedSyncMapCopiesNothingAndMakesNothingDurable) {
  MemFileSystem fs;
  auto file = Durable(fs, 8, 'a');
  ASSERT_NE(file, nullptr);
  FABRIC_ASSERT_OK_AND_ASSIGN(char* map, file->Map(8, kPath));
  Store(map, 0, 1);
  fs.SetFault([](MemOp op, const std::string&, uint64_t) {
    return op == MemOp::kSync ? EIO : 0;
  });
  EXPECT_THAT(file->SyncMap(kPath), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_FALSE(fs.crashed());
  EXPECT_EQ(Contents(fs), std::string(8, 'a'));
  fs.SetFault(nullptr);
  file.reset();  // munmap still hands the store to the page cache
  EXPECT_EQ(Contents(fs), Word(1));
  fs.PowerLoss(Drop());
  EXPECT_EQ(Contents(fs), std::string(8, 'a'));
}

// A power loss with no crash before it: the running process's stores are in
// the page cache (kept by kKeepAll), and the handle is dead afterwards.
TEST(MemFileSystemMap, HandleFromBeforePowerLossIsNeverCopiedAgain) {
  MemFileSystem fs;
  auto file = Durable(fs, 8, 'a');
  ASSERT_NE(file, nullptr);
  FABRIC_ASSERT_OK_AND_ASSIGN(char* map, file->Map(8, kPath));
  Store(map, 0, 1);
  fs.PowerLoss(KeepAll());
  Store(map, 0, 2);
  EXPECT_THAT(file->SyncMap(kPath), StatusIs(absl::StatusCode::kDataLoss));
  file.reset();
  EXPECT_EQ(Contents(fs), Word(1));
  EXPECT_EQ(fs.ops(), 0u);
}

TEST(MemFileSystemMap, PowerLossWithoutACrashDropsUnsyncedStores) {
  MemFileSystem fs;
  auto file = Durable(fs, 8, 'a');
  ASSERT_NE(file, nullptr);
  FABRIC_ASSERT_OK_AND_ASSIGN(char* map, file->Map(8, kPath));
  Store(map, 0, 1);
  fs.PowerLoss({});  // kDropUnsynced
  file.reset();
  EXPECT_EQ(Contents(fs), std::string(8, 'a'));
}

TEST(MemFileSystemMap, MappingOutlivingTheFileSystemIsHarmless) {
  auto fs = std::make_unique<MemFileSystem>();
  auto file = Durable(*fs, 8, 'a');
  ASSERT_NE(file, nullptr);
  FABRIC_ASSERT_OK_AND_ASSIGN(char* map, file->Map(8, kPath));
  fs.reset();
  Store(map, 0, 1);  // the buffer lives as long as the handle
  EXPECT_THAT(file->SyncMap(kPath), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(MemFileSystemMap, OnlyChangedPagesAreWrittenAndTheLastOneTears) {
  constexpr size_t kPage = 4096;
  MemFileSystem fs;
  auto file = Durable(fs, 3 * kPage, 'a');
  ASSERT_NE(file, nullptr);
  FABRIC_ASSERT_OK_AND_ASSIGN(char* map, file->Map(3 * kPage, kPath));
  Store(map, 8, 1);          // page 0
  Store(map, 2 * kPage, 2);  // page 2, the last write
  file.reset();
  fs.PowerLoss({.data = DataLoss::kTearLast,
                .drop_unsynced_entries = false,
                .tear_keep = 4,
                .fill = TornFill::kZeros});
  std::string want(3 * kPage, 'a');
  want.replace(8, 8, Word(1));
  want.replace(2 * kPage, kPage, std::string(kPage, '\0'));
  want.replace(2 * kPage, 4, Word(2).substr(0, 4));
  EXPECT_EQ(Contents(fs), want);  // page 1 was never written
}

TEST(MemFileSystemMap, CopiesStopAtTheFilesEnd) {
  MemFileSystem fs;
  auto file = Durable(fs, 8192, 'a');
  ASSERT_NE(file, nullptr);
  FABRIC_ASSERT_OK_AND_ASSIGN(char* map, file->Map(8192, kPath));
  FABRIC_ASSERT_OK(file->Truncate(16, kPath));
  Store(map, 8, 1);
  Store(map, 4096, 2);  // past the end now: dropped, as munmap would
  file.reset();
  EXPECT_EQ(Contents(fs), std::string(8, 'a') + Word(1));
}

TEST(MemFileSystemMap, Errors) {
  MemFileSystem fs;
  auto file = Durable(fs, 8, 'a');
  ASSERT_NE(file, nullptr);
  EXPECT_THAT(file->SyncMap(kPath),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(file->Map(0, kPath),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(file->Map(9, kPath),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  FABRIC_ASSERT_OK(file->Map(8, kPath).status());
  EXPECT_THAT(file->Map(8, kPath),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  FABRIC_ASSERT_OK_AND_ASSIGN(auto read_only, fs.Open(kPath, O_RDONLY, 0));
  EXPECT_THAT(read_only->Map(8, kPath),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(fs.ops(), 0u);  // refused before being counted
}

// Atomic stores from another thread while SyncMap copies the buffer (for
// TSan builds: the copy uses atomic loads, so this is not a race).
TEST(MemFileSystemMap, StoresFromAnotherThreadWhileSyncing) {
  MemFileSystem fs;
  auto file = Durable(fs, 64, '\0');
  ASSERT_NE(file, nullptr);
  FABRIC_ASSERT_OK_AND_ASSIGN(char* map, file->Map(64, kPath));
  std::atomic<bool> done{false};
  std::thread writer([map, &done] {
    for (uint64_t i = 1; i <= 2000; ++i) Store(map, 8 * (i % 8), i);
    done = true;
  });
  absl::Status synced;
  while (!done && synced.ok()) synced = file->SyncMap(kPath);
  writer.join();
  FABRIC_ASSERT_OK(synced);
  FABRIC_ASSERT_OK(file->SyncMap(kPath));
  std::string data = Contents(fs);
  uint64_t last = 0;
  std::memcpy(&last, data.data() + 8 * (2000 % 8), 8);
  EXPECT_EQ(last, 2000u);
}

}  // namespace
}  // namespace fabric::spool_internal
