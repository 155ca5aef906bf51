// SPDX-License-Identifier: Apache-2.0
// How `fabric work`, `fabric dlq` and `fabric spool` print tasks, dead
// letters and spool reports.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/cli/json.h"
#include "tools/cli/output.h"

namespace fabric::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Bodies, names and reasons to round-trip: valid UTF-8 (é, 日本, an emoji)
// and not (every byte value, a lone continuation, an overlong, a surrogate).
std::vector<std::string> Inputs() {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  return {"caf\xc3\xa9",
          "\xe6\x97\xa5\xe6\x9c\xac",
          "\xf0\x9f\x98\x80",
          all,
          "\x80",
          "\xc0\xaf",
          "\xed\xa0\x80",
          "plain"};
}

// One JSON value on one line (a trailing newline allowed), no exceptions.
nlohmann::json ParseLine(const std::string& text) {
  std::string line = text;
  if (!line.empty() && line.back() == '\n') line.pop_back();
  EXPECT_EQ(line.find('\n'), std::string::npos) << "not one line: " << text;
  nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "invalid JSON: " << text;
  return j;
}

// obj[key] or the decoded obj[key_b64]; exactly one must exist, and the
// plain one only for valid UTF-8.
std::string BytesOf(const nlohmann::json& obj, const std::string& key) {
  const bool plain = obj.contains(key);
  const bool b64 = obj.contains(key + "_b64");
  EXPECT_NE(plain, b64) << key << " in " << obj.dump();
  if (plain) {
    const std::string s = obj[key].get<std::string>();
    EXPECT_TRUE(IsValidUtf8(s));
    return s;
  }
  std::string out;
  if (b64) {
    EXPECT_TRUE(
        absl::Base64Unescape(obj[key + "_b64"].get<std::string>(), &out));
    EXPECT_FALSE(IsValidUtf8(out)) << key << ": valid UTF-8 sent as base64";
  }
  return out;
}

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

TEST(QueueOutputJson, TaskAndVerdictLinesRoundTripAnyBytes) {
  for (const std::string& bytes : Inputs()) {
    Task t = SampleTask();
    t.queue = bytes;
    t.body = bytes;
    t.headers[bytes] = bytes;
    const nlohmann::json j = ParseLine(FormatTaskLine(t, true));
    EXPECT_EQ(j["task"], t.id.ToString());
    EXPECT_EQ(j["producer"], t.id.producer.ToHex());
    EXPECT_EQ(j["seq"], 42);
    EXPECT_EQ(j["attempt"], 2);
    EXPECT_EQ(j["redelivered"], true);
    EXPECT_EQ(BytesOf(j, "queue"), bytes);
    EXPECT_EQ(BytesOf(j, "body"), bytes);
    EXPECT_EQ(j["headers"]["k"], "v");
    if (IsValidUtf8(bytes)) {
      EXPECT_EQ(j["headers"][bytes], bytes);
      EXPECT_FALSE(j.contains("headers_b64"));
    } else {
      EXPECT_EQ(j["headers_b64"][absl::Base64Escape(bytes)],
                absl::Base64Escape(bytes));
    }

    const nlohmann::json v =
        ParseLine(FormatVerdictLine(t.id, "retry", bytes, true));
    EXPECT_EQ(v["verdict"], "retry");
    EXPECT_EQ(v["task"], t.id.ToString());
    EXPECT_EQ(BytesOf(v, "detail"), bytes);
  }
}

TEST(QueueOutputJson, DeadLetterRoundTripsAnyBytes) {
  for (const std::string& bytes : Inputs()) {
    DeadLetter d;
    d.task.seq = 7;
    d.task.body = bytes + std::string(100, 'b');  // never cut in JSON
    d.task.headers["h"] = bytes;
    d.attempts = 3;
    d.reason = bytes;
    d.died = absl::FromUnixMillis(1700000000123);
    const nlohmann::json j = ParseLine(FormatDeadLetter(d, true));
    EXPECT_EQ(j["seq"], 7);
    EXPECT_EQ(j["attempts"], 3);
    EXPECT_EQ(j["died"], "2023-11-14T22:13:20.123Z");
    EXPECT_EQ(BytesOf(j, "reason"), bytes);
    EXPECT_EQ(BytesOf(j, "body"), d.task.body);
    if (IsValidUtf8(bytes)) {
      EXPECT_EQ(j["headers"]["h"], bytes);
    } else {
      EXPECT_EQ(j["headers_b64"][absl::Base64Escape("h")],
                absl::Base64Escape(bytes));
    }
  }
}

TEST(QueueOutputJson, SpoolReportAndVerifyRoundTripAnyBytes) {
  for (const std::string& bytes : Inputs()) {
    SpoolReport r;
    r.queue = bytes;
    r.records = 5;
    r.pending = 3;
    r.corrupt.push_back({bytes, 4096, bytes});
    const std::string dir = "/tmp/" + bytes;
    const nlohmann::json j = ParseLine(FormatSpoolReport(dir, r, true));
    EXPECT_EQ(BytesOf(j, "dir"), dir);
    EXPECT_EQ(BytesOf(j, "queue"), bytes);
    EXPECT_EQ(j["pending"], 3);
    EXPECT_EQ(j["producer"], r.producer_id.ToHex());
    ASSERT_EQ(j["corrupt"].size(), 1u);
    EXPECT_EQ(BytesOf(j["corrupt"][0], "segment"), bytes);
    EXPECT_EQ(j["corrupt"][0]["offset"], 4096);
    EXPECT_EQ(BytesOf(j["corrupt"][0], "what"), bytes);

    const nlohmann::json v = ParseLine(FormatSpoolVerify(dir, r, true));
    EXPECT_EQ(v["ok"], false);
    EXPECT_EQ(v["records"], 5);
    EXPECT_EQ(BytesOf(v, "dir"), dir);
    ASSERT_EQ(v["corrupt"].size(), 1u);
    EXPECT_EQ(BytesOf(v["corrupt"][0], "what"), bytes);
  }
}

TEST(QueueOutput, SpoolVerifyText) {
  SpoolReport r;
  r.records = 4;
  r.pending = 1;
  r.acked = 2;
  r.dead = 1;
  EXPECT_EQ(FormatSpoolVerify("/s", r, false),
            "ok records=4 pending=1 acked=2 dead=1\n");
  const nlohmann::json ok = ParseLine(FormatSpoolVerify("/s", r, true));
  EXPECT_EQ(ok["ok"], true);
  EXPECT_EQ(ok["dead"], 1);
  EXPECT_TRUE(ok["corrupt"].empty());
  r.torn_tail_bytes = 12;
  r.corrupt.push_back({"000001.log", 4096, "checksum mismatch"});
  EXPECT_EQ(FormatSpoolVerify("/s", r, false),
            "corrupt 000001.log offset 4096: checksum mismatch\n"
            "torn tail of 12 bytes (cut off at the next open)\n");
  EXPECT_EQ(ParseLine(FormatSpoolVerify("/s", r, true))["torn_tail_bytes"], 12);
}

}  // namespace
}  // namespace fabric::cli
