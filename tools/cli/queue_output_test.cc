// SPDX-License-Identifier: Apache-2.0
// How `fabric work`, `fabric dlq` and `fabric spool` print tasks, dead
// letters and spool reports.
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/cli/output.h"

namespace fabric::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

Task SampleTask() {
  Task t;
  t.id.producer = NodeId::Random();
  t.id.seq = 42;
  t.queue = "images";
  t.attempt = 2;
  t.redelivered = true;
  t.body = "hello world";
  t.headers["k"] = "v";
  return t;
}

TEST(QueueOutput, PrintableBodyPassesTextAndEscapesTheRest) {
  EXPECT_EQ(PrintableBody("plain text ~!"), "plain text ~!");
  EXPECT_EQ(PrintableBody("a\nb"), "a\\nb");
  EXPECT_EQ(PrintableBody(std::string("\xff\x00", 2)), "\\377\\000");
}

TEST(QueueOutput, TaskLine) {
  Task t = SampleTask();
  EXPECT_EQ(FormatTaskLine(t, false),
            absl::StrCat("task ", t.id.ToString(),
                         " queue=images attempt=2 redelivered hello world"));
  t.redelivered = false;
  t.body = "x\ty";
  EXPECT_EQ(
      FormatTaskLine(t, false),
      absl::StrCat("task ", t.id.ToString(), " queue=images attempt=2 x\\ty"));
}

TEST(QueueOutput, TaskLineJson) {
  const Task t = SampleTask();
  const std::string json = FormatTaskLine(t, true);
  EXPECT_THAT(json, StartsWith("{\"task\":"));
  EXPECT_THAT(json, HasSubstr(absl::StrCat("\"producer\":\"",
                                           t.id.producer.ToHex(), "\"")));
  EXPECT_THAT(json, HasSubstr("\"seq\":42,"));
  EXPECT_THAT(json, HasSubstr("\"redelivered\":true"));
  EXPECT_THAT(json, HasSubstr("\"headers\":{\"k\":\"v\"}"));
  EXPECT_THAT(json, HasSubstr("\"body\":\"hello world\"}"));
}

TEST(QueueOutput, VerdictLine) {
  const Task t = SampleTask();
  EXPECT_EQ(FormatVerdictLine(t.id, "retry", "exit=3", false),
            absl::StrCat("retry ", t.id.ToString(), " exit=3"));
  EXPECT_THAT(FormatVerdictLine(t.id, "ack", "exit=0", true),
              StartsWith("{\"verdict\":\"ack\","));
}

TEST(QueueOutput, DeadLetterCutsLongBodies) {
  DeadLetter d;
  d.task.seq = 7;
  d.task.body = std::string(100, 'b');
  d.attempts = 3;
  d.reason = "max_attempts: exit 3";
  d.died = absl::FromUnixMillis(1700000000123);
  EXPECT_EQ(FormatDeadLetter(d, false),
            absl::StrCat("seq=7 attempts=3 died=2023-11-14T22:13:20.123Z "
                         "reason=\"max_attempts: exit 3\" body=\"",
                         std::string(60, 'b'), "\"..."));
  EXPECT_THAT(FormatDeadLetter(d, true),
              HasSubstr(absl::StrCat("\"body\":\"", std::string(100, 'b'))));
}

TEST(QueueOutput, SpoolReport) {
  SpoolReport r;
  r.queue = "images";
  r.pending = 3;
  r.corrupt.push_back({"000001.log", 4096, "checksum mismatch"});
  const std::string text = FormatSpoolReport("/tmp/s", r, false);
  EXPECT_THAT(text, HasSubstr("queue            images\n"));
  EXPECT_THAT(text, HasSubstr("pending          3\n"));
  EXPECT_THAT(
      text, HasSubstr("  corrupt 000001.log offset 4096: checksum mismatch\n"));
  const std::string json = FormatSpoolReport("/tmp/s", r, true);
  EXPECT_THAT(json, HasSubstr("\"pending\":3,"));
  EXPECT_THAT(json, HasSubstr("\"corrupt\":[{\"segment\":\"000001.log\","
                              "\"offset\":4096,\"what\":\"checksum "
                              "mismatch\"}]"));
}

}  // namespace
}  // namespace fabric::cli
