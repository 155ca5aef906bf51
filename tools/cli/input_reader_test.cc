// SPDX-License-Identifier: Apache-2.0
// StdinReader on a pipe the test writes, and BodyDir on a temp directory.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_util.h"
#include "tools/cli/body_dir.h"
#include "tools/cli/input.h"

namespace fabric::cli {
namespace {

using ::fabric::testing::StatusIs;
using ::testing::HasSubstr;

class Pipe {
 public:
  Pipe() { ok_ = pipe2(fds_, O_CLOEXEC) == 0; }
  ~Pipe() {
    CloseWriter();
    if (ok_) close(fds_[0]);
  }
  bool ok() const { return ok_; }
  int reader() const { return fds_[0]; }
  void Write(const std::string& s) {
    ASSERT_EQ(write(fds_[1], s.data(), s.size()),
              static_cast<ssize_t>(s.size()));
  }
  void CloseWriter() {
    if (ok_ && fds_[1] >= 0) close(fds_[1]);
    fds_[1] = -1;
  }

 private:
  int fds_[2] = {-1, -1};
  bool ok_ = false;
};

TEST(StdinReader, LinesWithAndWithoutAFinalNewline) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  p.Write(std::string("one\ntwo\0bytes\n\nlast", 19));
  p.CloseWriter();
  StdinReader r([] { return false; }, absl::InfiniteFuture(), p.reader());
  std::string line;
  ASSERT_TRUE(r.NextLine(100, &line));
  EXPECT_EQ(line, "one");
  ASSERT_TRUE(r.NextLine(100, &line));
  EXPECT_EQ(line, std::string("two\0bytes", 9));
  ASSERT_TRUE(r.NextLine(100, &line));
  EXPECT_EQ(line, "");
  ASSERT_TRUE(r.NextLine(100, &line));
  EXPECT_EQ(line, "last");
  EXPECT_FALSE(r.NextLine(100, &line));
  FABRIC_EXPECT_OK(r.status());
}

TEST(StdinReader, ALineLongerThanTheLimitFails) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  p.Write("short\n" + std::string(50, 'x') + "\n");
  p.CloseWriter();
  StdinReader r([] { return false; }, absl::InfiniteFuture(), p.reader());
  std::string line;
  ASSERT_TRUE(r.NextLine(10, &line));
  EXPECT_FALSE(r.NextLine(10, &line));
  EXPECT_THAT(r.status(), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("stdin line 2"));
}

TEST(StdinReader, TheDeadlineEndsAWaitForInputThatNeverComes) {
  Pipe p;  // the writer stays open and silent
  ASSERT_TRUE(p.ok());
  p.Write("partial");
  StdinReader r([] { return false; }, absl::Now() + absl::Milliseconds(200),
                p.reader());
  std::string body;
  EXPECT_FALSE(r.ReadAll(100, &body));
  EXPECT_THAT(r.status(), StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST(StdinReader, AStopEndsTheWaitWithoutAnError) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  std::atomic<int> checks{0};
  // Stops on the third check: the reader polls it while it waits.
  StdinReader r([&checks] { return ++checks >= 3; }, absl::InfiniteFuture(),
                p.reader());
  std::string line;
  EXPECT_FALSE(r.NextLine(100, &line));
  FABRIC_EXPECT_OK(r.status());
  EXPECT_GE(checks.load(), 3);
}

TEST(StdinReader, ReadAllKeepsEveryByteAndEnforcesTheLimit) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  {
    Pipe p;
    ASSERT_TRUE(p.ok());
    p.Write(all);
    p.CloseWriter();
    StdinReader r([] { return false; }, absl::InfiniteFuture(), p.reader());
    std::string body;
    ASSERT_TRUE(r.ReadAll(256, &body));
    EXPECT_EQ(body, all);
  }
  Pipe p;
  ASSERT_TRUE(p.ok());
  p.Write(all);
  p.CloseWriter();
  StdinReader r([] { return false; }, absl::InfiniteFuture(), p.reader());
  std::string body;
  EXPECT_FALSE(r.ReadAll(255, &body));
  EXPECT_THAT(r.status(), StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(BodyDir, WritesWholeFilesAndLeavesNoTemporaries) {
  const std::string dir = fabric::testing::MakeTempDir("bodydir");
  ASSERT_FALSE(dir.empty());
  FABRIC_ASSERT_OK_AND_ASSIGN(BodyDir out, BodyDir::Open(dir + "/out"));
  struct stat st;
  ASSERT_EQ(stat((dir + "/out").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  const std::string body("a\0b\xff", 4);
  FABRIC_ASSERT_OK_AND_ASSIGN(std::string path, out.Write("t-1", body));
  FABRIC_ASSERT_OK_AND_ASSIGN(path, out.Write("t-1", body));  // again
  EXPECT_EQ(path, dir + "/out/t-1");
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/out")) {
    EXPECT_EQ(e.path().filename(), "t-1");
    EXPECT_EQ(std::filesystem::file_size(e.path()), 4u);
    ++files;
  }
  EXPECT_EQ(files, 1);
  // A directory that is a file is refused.
  EXPECT_THAT(BodyDir::Open(path).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fabric::cli
