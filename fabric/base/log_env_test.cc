// SPDX-License-Identifier: Apache-2.0
// An invalid FABRIC_LOG_LEVEL: ctest runs this binary with
// FABRIC_LOG_LEVEL=bogus (fabric/CMakeLists.txt). It must be a process of its
// own, as the variable is read once.
#include <string>
#include <vector>

#include "fabric/log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fabric {
namespace {

using ::testing::HasSubstr;

TEST(LogEnvTest, InvalidLevelIsReportedOnceThroughTheSink) {
  struct Line {
    LogLevel level;
    std::string component;
    std::string message;
  };
  std::vector<Line> lines;  // the sink runs on this thread only here
  SetLogSink([&lines](LogLevel level, absl::string_view component,
                      absl::string_view message) {
    lines.push_back({level, std::string(component), std::string(message)});
  });
  EXPECT_EQ(GetLogLevel(), LogLevel::kWarning);  // the default is kept
  EXPECT_EQ(GetLogLevel(), LogLevel::kWarning);
  SetLogSink(nullptr);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].level, LogLevel::kWarning);
  EXPECT_EQ(lines[0].component, "log");
  EXPECT_THAT(lines[0].message, HasSubstr("FAB-LOG-LEVEL-INVALID"));
  EXPECT_THAT(lines[0].message, HasSubstr("'bogus'"));
  EXPECT_THAT(lines[0].message, HasSubstr("using warning"));
}

}  // namespace
}  // namespace fabric
