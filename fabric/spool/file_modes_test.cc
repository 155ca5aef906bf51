// SPDX-License-Identifier: Apache-2.0
// What the spool, the topic log and subscriber position files create is
// owner-only, directories 0700 and files 0600, whatever the umask: their
// records hold message bodies (docs/spool.md, "Files and modes"). Checked
// with stat(2) on a real directory under umask 0, and through the
// in-memory file system, which records the modes asked for. With
// SharedFiles::kRefuse (what secure mode asks for, docs/security.md section
// 3), existing state open to group or others is refused, and kAllow (the
// default) is the control that opens the same directory.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fabric/spool/internal/file_system.h"
#include "fabric/spool/internal/mem_file_system.h"
#include "fabric/spool/position_file.h"
#include "fabric/spool/spool.h"
#include "fabric/spool/topic_log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::testing::ScopedUmask;

using ::fabric::testing::StatusIs;
using spool_internal::CurrentFileSystem;
using spool_internal::FileStat;
using spool_internal::MemFileSystem;
using spool_internal::ScopedFileSystem;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr absl::Duration kFlush = absl::Seconds(10);

// Writes a spool at `dir` with several segments, acks and a dead letter,
// then damages its META so that a reopen rebuilds it and quarantines the
// old one; `damage` overwrites a file in place (its mode stays).
void RunSpool(const std::string& dir,
              const std::function<void(const std::string&)>& damage) {
  SpoolOptions options;
  options.dir = dir;
  options.queue = "jobs";
  options.segment_bytes = 4096;  // several segments
  {
    FABRIC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Spool> spool,
                                Spool::Open(options));
    for (int i = 0; i < 40; ++i) {
      FABRIC_ASSERT_OK_AND_ASSIGN(const uint64_t seq,
                                  spool->Append({}, std::string(400, 'x')));
      if (i % 2 == 0) spool->Ack(seq);
    }
    DeadLetter dead;
    dead.task.seq = 2;
    dead.task.body = "dead";
    dead.attempts = 5;
    dead.reason = "max_attempts";
    FABRIC_ASSERT_OK(spool->AddDead(dead));
    FABRIC_ASSERT_OK(spool->Flush(kFlush));
  }
  damage(dir + "/META");
  FABRIC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Spool> spool,
                              Spool::Open(options));
  FABRIC_ASSERT_OK(spool->Flush(kFlush));
}

void RunTopicLog(const std::string& dir) {
  TopicLogOptions options;
  options.dir = dir;
  options.topic = "prices";
  options.segment_bytes = 4096;
  options.retention_bytes = 16384;  // old segments are deleted, too
  FABRIC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<TopicLog> log,
                              TopicLog::Open(options));
  for (int i = 0; i < 100; ++i) {
    FABRIC_ASSERT_OK(log->Append(absl::Now(), {}, std::string(400, 'y')));
  }
  FABRIC_ASSERT_OK(log->Flush(kFlush));
}

void RunPositionFile(const std::string& path) {
  FABRIC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<PositionFile> positions,
                              PositionFile::Open(path));
  FABRIC_ASSERT_OK(positions->Sync());
}

// What a walk found: every path with a wrong mode, and the names seen.
struct Walk {
  std::vector<std::string> wrong;
  std::vector<std::string> names;
  int dirs = 0;
  int files = 0;
};

void Check(const std::string& path, bool is_dir, uint32_t mode, Walk* walk) {
  const uint32_t want = is_dir ? 0700 : 0600;
  if (mode != want) {
    char text[64];
    std::snprintf(text, sizeof(text), " has mode %04o, not %04o", mode, want);
    walk->wrong.push_back(path + text);
  }
  walk->names.push_back(std::filesystem::path(path).filename());
  ++(is_dir ? walk->dirs : walk->files);
}

// Walks everything under `root` (not `root` itself) on the real disk.
Walk WalkPosix(const std::string& root) {
  Walk walk;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(root)) {
    struct stat st;
    EXPECT_EQ(lstat(entry.path().c_str(), &st), 0) << entry.path();
    Check(entry.path(), S_ISDIR(st.st_mode), st.st_mode & 07777, &walk);
  }
  return walk;
}

// Walks everything under `dir` through the current file system.
void WalkCurrent(const std::string& dir, Walk* walk) {
  absl::StatusOr<std::vector<std::string>> names =
      CurrentFileSystem()->ListDir(dir);
  ASSERT_THAT(names, fabric::testing::IsOk());
  for (const std::string& name : *names) {
    const std::string path = absl::StrCat(dir == "/" ? "" : dir, "/", name);
    FABRIC_ASSERT_OK_AND_ASSIGN(const FileStat st,
                                CurrentFileSystem()->Stat(path));
    Check(path, st.is_dir, st.mode, walk);
    if (st.is_dir) WalkCurrent(path, walk);
  }
}

void ExpectEverythingSeen(const Walk& walk) {
  EXPECT_THAT(walk.wrong, ::testing::IsEmpty());
  for (const char* name :
       {"spool", "META", "LOCK", "quarantine", "topic", "x.pos", "deep"}) {
    EXPECT_THAT(walk.names, Contains(name));
  }
  EXPECT_THAT(walk.names, Contains(HasSubstr("seg-")));
  EXPECT_GE(walk.files, 10);
}

TEST(FileModes, OwnerOnlyOnDiskUnderUmaskZero) {
  const std::string root = fabric::testing::MakeTempDir("modes");
  ASSERT_FALSE(root.empty());
  {
    ScopedUmask open_umask(0);
    RunSpool(root + "/spools/spool", [](const std::string& path) {
      // In place, so the file keeps the mode the spool gave it.
      const int fd = open(path.c_str(), O_WRONLY | O_TRUNC);
      ASSERT_GE(fd, 0) << path;
      ASSERT_EQ(write(fd, "garbage", 7), 7);
      close(fd);
    });
    RunTopicLog(root + "/logs/topic");
    RunPositionFile(root + "/subs/deep/x.pos");
  }
  const Walk walk = WalkPosix(root);
  ExpectEverythingSeen(walk);
  std::error_code ignored;
  std::filesystem::remove_all(root, ignored);
}

TEST(FileModes, OwnerOnlyThroughTheInMemoryFileSystem) {
  MemFileSystem fs;
  ScopedFileSystem use(&fs);
  RunSpool("/spools/spool", [&fs](const std::string& path) {
    auto file = fs.Open(path, O_WRONLY | O_TRUNC, 0);
    ASSERT_THAT(file, fabric::testing::IsOk());
    FABRIC_ASSERT_OK((*file)->PWrite("garbage", 0, path));
  });
  RunTopicLog("/logs/topic");
  RunPositionFile("/subs/deep/x.pos");
  Walk walk;
  WalkCurrent("/", &walk);
  ExpectEverythingSeen(walk);
}

// Existing state open to group or others, as an earlier release left it.
class SharedFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fabric::testing::MakeTempDir("shared");
    ASSERT_FALSE(root_.empty());
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }

  static void Chmod(const std::string& path, mode_t mode) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
  }
  static std::vector<std::string> Names(const std::string& dir) {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      names.push_back(e.path().filename());
    }
    return names;
  }
  // The refusal names the id, the path, its mode and the fix.
  static auto Refused(const std::string& path, const std::string& mode,
                      const std::string& fix) {
    return StatusIs(absl::StatusCode::kFailedPrecondition,
                    AllOf(HasSubstr(absl::StrCat("FAB-SEC-FILE-PERMS ", path,
                                                 " has mode ", mode)),
                          HasSubstr(fix), HasSubstr("allow_shared_files")));
  }

  std::string root_;
};

SpoolOptions SpoolAt(const std::string& dir, SharedFiles shared) {
  SpoolOptions o;
  o.dir = dir;
  o.queue = "jobs";
  o.shared_files = shared;
  return o;
}

TopicLogOptions LogAt(const std::string& dir, SharedFiles shared) {
  TopicLogOptions o;
  o.dir = dir;
  o.topic = "prices";
  o.shared_files = shared;
  return o;
}

TEST_F(SharedFilesTest, ExistingOpenSpoolIsRefusedBeforeAnythingIsMade) {
  const std::string dir = root_ + "/spool";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  Chmod(dir, 0755);
  EXPECT_THAT(Spool::Open(SpoolAt(dir, SharedFiles::kRefuse)),
              Refused(dir, "0755", absl::StrCat("chmod -R go-rwx ", dir)));
  EXPECT_THAT(Names(dir), IsEmpty());  // no LOCK, no META
  // The control: allowed, the same directory opens and keeps its mode.
  FABRIC_EXPECT_OK(Spool::Open(SpoolAt(dir, SharedFiles::kAllow)));
  struct stat st;
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
}

TEST_F(SharedFilesTest, OpenFileInAnOwnerOnlySpoolIsRefused) {
  const std::string dir = root_ + "/spool";
  {
    FABRIC_ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<Spool> spool,
        Spool::Open(SpoolAt(dir, SharedFiles::kRefuse)));
    FABRIC_ASSERT_OK(spool->Append({}, "body").status());
    FABRIC_ASSERT_OK(spool->Flush(kFlush));
  }
  Chmod(dir + "/META", 0644);
  EXPECT_THAT(
      Spool::Open(SpoolAt(dir, SharedFiles::kRefuse)),
      Refused(dir + "/META", "0644", absl::StrCat("chmod -R go-rwx ", dir)));
  // So is a group-only bit deeper down, in quarantine/.
  Chmod(dir + "/META", 0600);
  ASSERT_EQ(::mkdir((dir + "/quarantine").c_str(), 0700), 0);
  const std::string copy = dir + "/quarantine/META";
  std::ofstream(copy) << "old";
  Chmod(copy, 0640);
  EXPECT_THAT(Spool::Open(SpoolAt(dir, SharedFiles::kRefuse)),
              Refused(copy, "0640", dir));
  Chmod(copy, 0600);
  // Owner-only throughout: the spool opens, with its task.
  FABRIC_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Spool> spool,
                              Spool::Open(SpoolAt(dir, SharedFiles::kRefuse)));
  EXPECT_EQ(spool->recovery().pending, 1u);
}

TEST_F(SharedFilesTest, NewStateIsMadeOwnerOnlyWhenRefusing) {
  ScopedUmask open_umask(0);
  FABRIC_EXPECT_OK(
      Spool::Open(SpoolAt(root_ + "/a/spool", SharedFiles::kRefuse)));
  FABRIC_EXPECT_OK(
      TopicLog::Open(LogAt(root_ + "/a/topic", SharedFiles::kRefuse)));
  FABRIC_EXPECT_OK(
      PositionFile::Open(root_ + "/a/subs/x.pos", SharedFiles::kRefuse));
  const Walk walk = WalkPosix(root_ + "/a");
  EXPECT_THAT(walk.wrong, IsEmpty());
  EXPECT_GE(walk.files, 5);
}

TEST_F(SharedFilesTest, ExistingOpenTopicLogIsRefused) {
  const std::string dir = root_ + "/topic";
  FABRIC_ASSERT_OK(TopicLog::Open(LogAt(dir, SharedFiles::kRefuse)).status());
  Chmod(dir, 0750);
  EXPECT_THAT(TopicLog::Open(LogAt(dir, SharedFiles::kRefuse)),
              Refused(dir, "0750", absl::StrCat("chmod -R go-rwx ", dir)));
  FABRIC_EXPECT_OK(TopicLog::Open(LogAt(dir, SharedFiles::kAllow)).status());
  Chmod(dir, 0700);
  FABRIC_EXPECT_OK(TopicLog::Open(LogAt(dir, SharedFiles::kRefuse)).status());
}

TEST_F(SharedFilesTest, ExistingOpenPositionFileOrDirectoryIsRefused) {
  const std::string dir = root_ + "/subs";
  const std::string path = dir + "/x.pos";
  FABRIC_ASSERT_OK(PositionFile::Open(path, SharedFiles::kRefuse).status());
  Chmod(path, 0644);
  EXPECT_THAT(PositionFile::Open(path, SharedFiles::kRefuse),
              Refused(path, "0644", absl::StrCat("chmod go-rwx ", path)));
  Chmod(path, 0600);
  Chmod(dir, 0755);
  EXPECT_THAT(PositionFile::Open(path, SharedFiles::kRefuse),
              Refused(dir, "0755", absl::StrCat("chmod go-rwx ", dir)));
  // Another subscriber's open file there is its own business.
  Chmod(dir, 0700);
  std::ofstream(dir + "/other.pos") << "";
  Chmod(dir + "/other.pos", 0644);
  FABRIC_EXPECT_OK(PositionFile::Open(path, SharedFiles::kRefuse).status());
  // The control: allowed, the open directory and file are used as they are.
  Chmod(dir, 0755);
  Chmod(path, 0644);
  FABRIC_EXPECT_OK(PositionFile::Open(path).status());
}

}  // namespace
}  // namespace fabric
