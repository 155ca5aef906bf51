// SPDX-License-Identifier: Apache-2.0
// The POSIX `FileSystem` on a real temporary directory: the lock file's mode
// and the shared mapping (`Map`/`SyncMap`). The rest of the interface is
// exercised by every spool and topic log test.
#include "fabric/spool/internal/file_system.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_util.h"

namespace fabric::spool_internal {
namespace {

using ::fabric::testing::StatusIs;

TEST(PosixFileSystem, LockCreatesTheFileOwnerOnly) {
  const std::string path = ::fabric::testing::MakeTempDir("fs") + "/lock";
  FABRIC_ASSERT_OK_AND_ASSIGN(auto lock, PosixFileSystem()->Lock(path));
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THAT(PosixFileSystem()->Lock(path),
              StatusIs(absl::StatusCode::kFailedPrecondition));
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

}  // namespace
}  // namespace fabric::spool_internal
