// SPDX-License-Identifier: Apache-2.0
#include "tools/cli/input.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace fabric::cli {
namespace {

using ::fabric::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ParseByteSize, PlainBytesAndUnits) {
  EXPECT_EQ(*ParseByteSize("--x", "0"), 0);
  EXPECT_EQ(*ParseByteSize("--x", "1234"), 1234);
  EXPECT_EQ(*ParseByteSize("--x", "10B"), 10);
  EXPECT_EQ(*ParseByteSize("--x", "64k"), 64 * 1024);
  EXPECT_EQ(*ParseByteSize("--x", "64K"), 64 * 1024);
  EXPECT_EQ(*ParseByteSize("--x", "512KiB"), 512 * 1024);
  EXPECT_EQ(*ParseByteSize("--x", "16MiB"), 16 << 20);
  EXPECT_EQ(*ParseByteSize("--x", "16m"), 16 << 20);
  EXPECT_EQ(*ParseByteSize("--x", "1GiB"), int64_t{1} << 30);
  EXPECT_EQ(*ParseByteSize("--x", "2 TiB"), int64_t{2} << 40);
  EXPECT_EQ(*ParseByteSize("--x", "10kB"), 10000);
  EXPECT_EQ(*ParseByteSize("--x", "10MB"), 10000000);
  EXPECT_EQ(*ParseByteSize("--x", "3GB"), 3000000000);
  EXPECT_EQ(*ParseByteSize("--x", "1.5GiB"), (int64_t{3} << 30) / 2);
  EXPECT_EQ(*ParseByteSize("--x", "0.5k"), 512);
  EXPECT_EQ(*ParseByteSize("--x", ".5k"), 512);
  EXPECT_EQ(*ParseByteSize("--x", "1.005kB"), 1005);
  EXPECT_EQ(*ParseByteSize("--x", "0.1MB"), 100000);
}

TEST(ParseByteSize, RejectsWhatIsNotASize) {
  for (const char* bad :
       {"", "k", "-1", "1Gx", "1.5", "1.5B", "5.k", "1.2.3k", "GiB1", ".k",
        "99999999999999999999", "8589934592GiB", "1e3"}) {
    SCOPED_TRACE(bad);
    const absl::StatusOr<int64_t> size = ParseByteSize("--max-bytes", bad);
    EXPECT_THAT(size, StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(std::string(size.status().message()), HasSubstr("--max-bytes"));
  }
}

TEST(ChooseInput, OneSourceAtMost) {
  InputFlags f;
  EXPECT_EQ(*ChooseInput(f, /*stdin_is_data=*/true), InputMode::kStdinLines);
  EXPECT_EQ(*ChooseInput(f, /*stdin_is_data=*/false), InputMode::kNone);
  f.no_stdin = true;
  EXPECT_EQ(*ChooseInput(f, true), InputMode::kNone);
  f = InputFlags();
  f.stdin_raw = true;
  EXPECT_EQ(*ChooseInput(f, false), InputMode::kStdinRaw);
  f.files = {"a"};
  EXPECT_THAT(ChooseInput(f, true),
              StatusIs(absl::StatusCode::kInvalidArgument));
  f.stdin_raw = false;
  EXPECT_EQ(*ChooseInput(f, true), InputMode::kFiles);
  EXPECT_EQ(ExpectedBodies(f, InputMode::kFiles), 1);
  f = InputFlags();
  f.count = 5;
  f.size = 100;
  EXPECT_EQ(*ChooseInput(f, true), InputMode::kCount);
  EXPECT_EQ(ExpectedBodies(f, InputMode::kCount), 5);
  f.count = -1;
  const absl::StatusOr<InputMode> size_alone = ChooseInput(f, true);
  EXPECT_THAT(size_alone, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(size_alone.status().message()),
              HasSubstr("--size needs --count"));
  f = InputFlags();
  f.stdin_raw = true;
  f.no_stdin = true;
  EXPECT_THAT(ChooseInput(f, true),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(ExpectedBodies(InputFlags(), InputMode::kStdinLines), -1);
}

TEST(ReadBodyFile, RefusesWhatIsNotARegularFileOrTooBig) {
  EXPECT_THAT(ReadBodyFile("/nonexistent/file", 100),
              StatusIs(absl::StatusCode::kNotFound));
  const absl::StatusOr<std::string> dir = ReadBodyFile("/", 100);
  EXPECT_THAT(dir, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(dir.status().message()),
              HasSubstr("not a regular file"));
  const absl::Status big = CheckFiles({"/etc/passwd"}, 1);
  EXPECT_THAT(big, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(big.message()),
              HasSubstr("more than one message may carry"));
}

}  // namespace
}  // namespace fabric::cli
