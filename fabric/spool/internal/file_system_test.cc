// SPDX-License-Identifier: Apache-2.0
// The POSIX `FileSystem` on a real temporary directory: the lock file's mode,
// `Stat`'s mode, the shared mapping (`Map`/`SyncMap`) and `MakeDirs` on a
// relative path. The rest of the interface is exercised by every spool and
// topic log test.
#include "fabric/spool/internal/file_system.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fabric/spool/internal/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_util.h"

namespace fabric::spool_internal {
namespace {

using ::fabric::testing::IsOkAndHolds;
using ::fabric::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Field;

TEST(PosixFileSystem, LockCreatesTheFileOwnerOnly) {
  const std::string path = ::fabric::testing::MakeTempDir("fs") + "/lock";
  FABRIC_ASSERT_OK_AND_ASSIGN(auto lock, PosixFileSystem()->Lock(path));
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THAT(PosixFileSystem()->Lock(path),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(PosixFileSystem, StatReportsTheMode) {
  const std::string dir = ::fabric::testing::MakeTempDir("fs");
  const mode_t previous = umask(0);
  FABRIC_ASSERT_OK(PosixFileSystem()->MakeDir(dir + "/d", 0710));
  FABRIC_ASSERT_OK(
      PosixFileSystem()->Open(dir + "/f", O_RDWR | O_CREAT, 0640).status());
  umask(previous);
  EXPECT_THAT(PosixFileSystem()->Stat(dir + "/d"),
              IsOkAndHolds(Field(&FileStat::mode, 0710u)));
  EXPECT_THAT(PosixFileSystem()->Stat(dir + "/f"),
              IsOkAndHolds(Field(&FileStat::mode, 0640u)));
}

TEST(PosixFileSystem, MappedStoresReachTheFile) {
  const std::string path = ::fabric::testing::MakeTempDir("fs") + "/map";
  FileSystem* fs = PosixFileSystem();
  {
    FABRIC_ASSERT_OK_AND_ASSIGN(auto file,
                                fs->Open(path, O_RDWR | O_CREAT, 0600));
    FABRIC_ASSERT_OK(file->Truncate(8192, path));
    FABRIC_ASSERT_OK_AND_ASSIGN(char* map, file->Map(8192, path));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(map) % 8, 0u);
    const uint64_t value = 0x0102030405060708;
    __atomic_store_n(reinterpret_cast<uint64_t*>(map + 4096), value,
                     __ATOMIC_RELEASE);
    FABRIC_ASSERT_OK(file->SyncMap(path));
    std::memcpy(map, "unmapped", 8);  // the page cache keeps it after munmap
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(auto file, fs->Open(path, O_RDONLY, 0));
  std::string out;
  FABRIC_ASSERT_OK(file->PRead(0, 8, &out, path));
  EXPECT_EQ(out, "unmapped");
  FABRIC_ASSERT_OK(file->PRead(4096, 8, &out, path));
  uint64_t read = 0;
  std::memcpy(&read, out.data(), 8);
  EXPECT_EQ(read, 0x0102030405060708u);
}

TEST(PosixFileSystem, MapErrors) {
  const std::string path = ::fabric::testing::MakeTempDir("fs") + "/map";
  FileSystem* fs = PosixFileSystem();
  FABRIC_ASSERT_OK_AND_ASSIGN(auto file,
                              fs->Open(path, O_RDWR | O_CREAT, 0600));
  FABRIC_ASSERT_OK(file->Truncate(64, path));
  EXPECT_THAT(file->SyncMap(path),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(file->Map(0, path), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(file->Map(65, path),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  FABRIC_ASSERT_OK(file->Map(64, path).status());
  EXPECT_THAT(file->Map(64, path),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  FABRIC_ASSERT_OK_AND_ASSIGN(auto read_only, fs->Open(path, O_RDONLY, 0));
  EXPECT_THAT(read_only->Map(64, path),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

// The POSIX file system, recording the directories it fsyncs.
class SyncDirRecorder final : public FileSystem {
 public:
  absl::StatusOr<std::unique_ptr<FileHandle>> Open(const std::string& path,
                                                   int flags,
                                                   int mode) override {
    return posix_->Open(path, flags, mode);
  }
  absl::Status MakeDir(const std::string& path, int mode) override {
    return posix_->MakeDir(path, mode);
  }
  absl::StatusOr<FileStat> Stat(const std::string& path) override {
    return posix_->Stat(path);
  }
  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) override {
    return posix_->ListDir(dir);
  }
  absl::Status Remove(const std::string& path) override {
    return posix_->Remove(path);
  }
  absl::Status Rename(const std::string& from, const std::string& to) override {
    return posix_->Rename(from, to);
  }
  absl::Status SyncDir(const std::string& dir) override {
    synced.push_back(dir);
    return posix_->SyncDir(dir);
  }
  absl::StatusOr<std::unique_ptr<FileHandle>> Lock(
      const std::string& path) override {
    return posix_->Lock(path);
  }

  std::vector<std::string> synced;

 private:
  FileSystem* const posix_ = PosixFileSystem();
};

// The parent of a relative path's first new directory is ".", not "/".
TEST(PosixFileSystem, MakeDirsSyncsTheParentsOfRelativeDirectories) {
  const std::string dir = ::fabric::testing::MakeTempDir("fs");
  char cwd[4096];
  ASSERT_NE(getcwd(cwd, sizeof cwd), nullptr);
  ASSERT_EQ(chdir(dir.c_str()), 0);
  SyncDirRecorder recorder;
  absl::Status made;
  {
    ScopedFileSystem use(&recorder);
    made = MakeDirs("a/b");
  }
  ASSERT_EQ(chdir(cwd), 0);
  FABRIC_ASSERT_OK(made);
  EXPECT_THAT(recorder.synced, ElementsAre(".", "a"));
  // Again, with everything there: the parent of the directory asked for is
  // still fsynced (an earlier run may have died before it was), nothing
  // else.
  recorder.synced.clear();
  ASSERT_EQ(chdir(dir.c_str()), 0);
  {
    ScopedFileSystem use(&recorder);
    made = MakeDirs("a/b/");
  }
  ASSERT_EQ(chdir(cwd), 0);
  FABRIC_ASSERT_OK(made);
  EXPECT_THAT(recorder.synced, ElementsAre("a"));
}

}  // namespace
}  // namespace fabric::spool_internal
