// SPDX-License-Identifier: Apache-2.0
// The environment of --exec commands (child.h): the secret-file variables
// of secure mode are withheld, the caller's own variables are replaced, and
// everything else is passed on.
#include "tools/cli/child.h"

#include <stdlib.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fabric::cli {
namespace {

using ::testing::Contains;
using ::testing::Not;

TEST(ChildEnvironment, WithholdsSecretFilesAndReplacesTheCallers) {
  ASSERT_EQ(setenv("FABRIC_KEY_FILE", "/keys/n.key", 1), 0);
  ASSERT_EQ(setenv("FABRIC_ROSTER", "/keys/roster", 1), 0);
  ASSERT_EQ(setenv("FABRIC_BEACON_SECRET_FILE", "/keys/beacon", 1), 0);
  ASSERT_EQ(setenv("FABRIC_KEY_FILE_NOTE", "kept", 1), 0);  // another name
  ASSERT_EQ(setenv("FABRIC_CLUSTER", "kept", 1), 0);
  ASSERT_EQ(setenv("FABRIC_TASK_ID", "stale", 1), 0);

  constexpr absl::string_view kReplaced[] = {"FABRIC_TASK_ID="};
  const std::vector<std::string> env = ChildEnvironment(kReplaced);
  EXPECT_THAT(env, Not(Contains("FABRIC_KEY_FILE=/keys/n.key")));
  EXPECT_THAT(env, Not(Contains("FABRIC_ROSTER=/keys/roster")));
  EXPECT_THAT(env, Not(Contains("FABRIC_BEACON_SECRET_FILE=/keys/beacon")));
  EXPECT_THAT(env, Not(Contains("FABRIC_TASK_ID=stale")));
  EXPECT_THAT(env, Contains("FABRIC_KEY_FILE_NOTE=kept"));
  EXPECT_THAT(env, Contains("FABRIC_CLUSTER=kept"));

  // Without them set, nothing else changes: the same entries as environ.
  for (absl::string_view name : kWithheldFromChildren) {
    ASSERT_EQ(unsetenv(std::string(name).c_str()), 0);
  }
  EXPECT_EQ(ChildEnvironment({}).size(), env.size() + 1);  // + TASK_ID
}

}  // namespace
}  // namespace fabric::cli
