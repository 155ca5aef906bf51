// SPDX-License-Identifier: Apache-2.0
// Every `--json` output of the real `fabric` binary is valid JSON Lines for
// any bytes: bodies, headers, node names, topics and service names with
// bytes >= 0x80 and invalid UTF-8 (lone continuation, overlong, surrogate)
// go in through argv, and every stdout line must parse with nlohmann (no
// exceptions) and give the bytes back, as text when they are UTF-8 and
// through "<field>_b64" otherwise. Covers work, dlq list, spool inspect,
// spool verify, sub, serve, req, node and peers. Nothing asserts on timing.
#include <signal.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cli_harness.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::testing::CliCluster;
using ::fabric::testing::Finish;
using ::fabric::testing::RunResult;
using ::fabric::testing::Subprocess;
using Json = nlohmann::json;

constexpr absl::Duration kTimeout = absl::Seconds(60);

// Every byte but NUL (argv cannot carry it): not UTF-8.
std::string AllNonNulBytes() {
  std::string s;
  for (int i = 1; i < 256; ++i) s.push_back(static_cast<char>(i));
  return s;
}

const std::string kLoneContinuation = "lone\x80";
const std::string kOverlong = "over\xc0\xaflong";
const std::string kSurrogate = "sur\xed\xa0\x80";
const std::string kUtf8 =
    "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80";

// The bodies every verb carries: binary, three invalid UTF-8 and one valid.
std::vector<std::string> Bodies() {
  return {AllNonNulBytes(), kLoneContinuation, kOverlong, kSurrogate, kUtf8};
}

// Parses one stdout line; records a failure when it is not one JSON object.
Json ParseLine(const std::string& line) {
  Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON: " << absl::CEscape(line);
  EXPECT_TRUE(j.is_discarded() || j.is_object() || j.is_array())
      << absl::CEscape(line);
  return j;
}

// Every line of `lines`, parsed.
std::vector<Json> ParseAll(const std::vector<std::string>& lines) {
  std::vector<Json> out;
  for (const std::string& line : lines) out.push_back(ParseLine(line));
  return out;
}

// obj[key] as text, or obj[key + "_b64"] decoded; "<none>" when neither is
// there. Exactly one of them may be present.
std::string BytesOf(const Json& obj, const std::string& key) {
  if (!obj.is_object()) return "<not an object>";
  const bool plain = obj.contains(key) && obj[key].is_string();
  const bool b64 = obj.contains(key + "_b64") && obj[key + "_b64"].is_string();
  EXPECT_FALSE(plain && b64) << key << " twice in " << obj.dump();
  if (plain) return obj[key].get<std::string>();
  std::string out;
  if (b64 && absl::Base64Unescape(obj[key + "_b64"].get<std::string>(), &out)) {
    return out;
  }
  return "<none>";
}

// The value of header `key` in obj["headers"] or, base64, in
// obj["headers_b64"]; "<none>" when absent.
std::string HeaderOf(const Json& obj, const std::string& key) {
  if (!obj.is_object()) return "<not an object>";
  if (obj.contains("headers") && obj["headers"].contains(key)) {
    return obj["headers"][key].get<std::string>();
  }
  const std::string k64 = absl::Base64Escape(key);
  std::string out;
  if (obj.contains("headers_b64") && obj["headers_b64"].contains(k64) &&
      absl::Base64Unescape(obj["headers_b64"][k64].get<std::string>(), &out)) {
    return out;
  }
  return "<none>";
}

// Checks a {"event":"ready",...} line for node `name`.
void ExpectReady(const Json& j, const std::string& name) {
  EXPECT_EQ(j.value("event", ""), "ready") << j.dump();
  EXPECT_EQ(BytesOf(j, "name"), name);
  EXPECT_EQ(BytesOf(j, "endpoint").rfind("tcp://127.0.0.1:", 0), 0u)
      << j.dump();
  EXPECT_EQ(BytesOf(j, "id").size(), 32u) << j.dump();
}

class CliJsonTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cli_.usable()); }

  CliCluster cli_{"clijson"};
};

// work --json (tasks and --exec verdicts), then the dead letters in dlq list
// --json, spool inspect --json and spool verify --json.
TEST_F(CliJsonTest, WorkDlqAndSpoolRoundTripAnyBytes) {
  const std::string name = "w\xff" + kOverlong;
  const std::string header_key = "k\xfe";
  const std::string header_value = AllNonNulBytes().substr(70);  // no '='
  const std::string spool = cli_.dir() + "/spool";
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto worker,
      cli_.SpawnReady({"work", "q", "--json", "--name", name, "--count", "5",
                       "--exec", "cat >/dev/null; exit 4", "--reject-exit",
                       "4"}));
  std::vector<std::string> push = {
      "push",         "q",
      "--spool",      spool,
      "--header",     header_key + "=" + header_value,
      "--header",     "plain=" + kUtf8,
      "--wait-acked", "--timeout",
      "50s"};
  for (const std::string& b : Bodies()) push.push_back(b);
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult pushed, cli_.Run(push, kTimeout));
  EXPECT_EQ(pushed.exit_code, 1) << pushed.err;  // all dead-lettered

  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult w, Finish(*worker, kTimeout));
  EXPECT_EQ(w.exit_code, 0) << w.err;
  std::vector<Json> lines = ParseAll(w.lines);
  // READY, 5 tasks, 5 verdicts, the summary.
  ASSERT_EQ(lines.size(), 12u) << w.out;
  ExpectReady(lines[0], name);
  EXPECT_EQ(lines.back().value("event", ""), "summary");
  EXPECT_EQ(lines.back().value("rejected", 0), 5);
  lines.pop_back();
  std::set<std::string> bodies;
  int verdicts = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    const Json& j = lines[i];
    if (j.contains("verdict")) {
      EXPECT_EQ(j.value("verdict", ""), "reject") << j.dump();
      ++verdicts;
      continue;
    }
    EXPECT_EQ(BytesOf(j, "queue"), "q");
    EXPECT_EQ(HeaderOf(j, header_key), header_value) << j.dump();
    EXPECT_EQ(HeaderOf(j, "plain"), kUtf8) << j.dump();
    EXPECT_TRUE(j.contains("body") != j.contains("body_b64")) << j.dump();
    bodies.insert(BytesOf(j, "body"));
  }
  EXPECT_EQ(verdicts, 5);
  const std::vector<std::string> want = Bodies();
  EXPECT_EQ(bodies, std::set<std::string>(want.begin(), want.end()));
  // Valid UTF-8 stays readable text.
  EXPECT_NE(w.out.find("\"body\":\"" + kUtf8 + "\""), std::string::npos);

  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult dlq, cli_.Run({"dlq", "list", spool, "--json"}, kTimeout));
  ASSERT_EQ(dlq.exit_code, 0) << dlq.err;
  const std::vector<Json> dead = ParseAll(dlq.lines);
  ASSERT_EQ(dead.size(), 5u) << dlq.out;
  std::set<std::string> dead_bodies;
  for (const Json& j : dead) {
    dead_bodies.insert(BytesOf(j, "body"));
    EXPECT_EQ(HeaderOf(j, header_key), header_value) << j.dump();
    EXPECT_NE(BytesOf(j, "reason"), "<none>") << j.dump();
    EXPECT_TRUE(j.contains("seq") && j.contains("attempts")) << j.dump();
  }
  EXPECT_EQ(dead_bodies, bodies);

  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult inspect,
      cli_.Run({"spool", "inspect", spool, "--json"}, kTimeout));
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  ASSERT_EQ(inspect.lines.size(), 1u) << inspect.out;
  const Json report = ParseLine(inspect.lines[0]);
  EXPECT_EQ(BytesOf(report, "queue"), "q");
  EXPECT_EQ(report.value("dead", -1), 5) << report.dump();

  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult verify,
      cli_.Run({"spool", "verify", spool, "--json"}, kTimeout));
  ASSERT_EQ(verify.exit_code, 0) << verify.err;
  ASSERT_EQ(verify.lines.size(), 1u) << verify.out;
  const Json verified = ParseLine(verify.lines[0]);
  EXPECT_EQ(verified.value("ok", false), true) << verified.dump();
  EXPECT_EQ(verified.value("dead", -1), 5) << verified.dump();
  EXPECT_EQ(BytesOf(verified, "dir"), spool);
}

// sub --json with a binary topic, headers and bodies.
TEST_F(CliJsonTest, SubRoundTripsAnyBytes) {
  const std::string topic = "t." + kSurrogate;
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto sub, cli_.SpawnReady(
                    {"sub", "t.", "--json", "--name", kUtf8, "--count", "5"}));
  std::vector<std::string> pub = {"pub",
                                  topic,
                                  "--header",
                                  "h=" + kLoneContinuation,
                                  "--wait-subscribers",
                                  "1",
                                  "--wait-timeout",
                                  "30s",
                                  "--no-stdin"};
  for (const std::string& b : Bodies()) pub.push_back(b);
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult published, cli_.Run(pub, kTimeout));
  ASSERT_EQ(published.exit_code, 0) << published.err;

  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult s, Finish(*sub, kTimeout));
  EXPECT_EQ(s.exit_code, 0) << s.err;
  const std::vector<Json> lines = ParseAll(s.lines);
  ASSERT_EQ(lines.size(), 6u) << s.out;  // READY and five messages
  ExpectReady(lines[0], kUtf8);
  const std::vector<std::string> want = Bodies();
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(BytesOf(lines[i], "topic"), topic);
    EXPECT_EQ(HeaderOf(lines[i], "h"), kLoneContinuation);
    EXPECT_EQ(lines[i].value("seq", 0), static_cast<int>(i));
    EXPECT_EQ(BytesOf(lines[i], "body"), want[i - 1]) << lines[i].dump();
  }
}

// serve --json and req --json, and a failed req whose message holds a
// service name that is not UTF-8.
TEST_F(CliJsonTest, ServeAndReqRoundTripAnyBytes) {
  const std::string name = "s" + kLoneContinuation;
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto server, cli_.SpawnReady({"serve", "echo", "--echo", "--json",
                                    "--name", name, "--count", "5"}));
  for (const std::string& body : Bodies()) {
    FABRIC_ASSERT_OK_AND_ASSIGN(
        RunResult r, cli_.Run({"req", "echo", "--json", "--timeout", "20s",
                               "--wait", "20s", body},
                              kTimeout));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(r.lines.size(), 1u) << r.out;
    const Json j = ParseLine(r.lines[0]);
    EXPECT_EQ(j.value("ok", false), true) << j.dump();
    EXPECT_EQ(BytesOf(j, "body"), body) << j.dump();
    EXPECT_EQ(j.value("server", "").size(), 32u) << j.dump();
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult s, Finish(*server, kTimeout));
  EXPECT_EQ(s.exit_code, 0) << s.err;
  std::vector<Json> lines = ParseAll(s.lines);
  ASSERT_EQ(lines.size(), 7u) << s.out;  // READY, 5 requests, the summary
  ExpectReady(lines[0], name);
  EXPECT_EQ(lines.back().value("event", ""), "summary");
  EXPECT_EQ(lines.back().value("replied", 0), 5);
  lines.pop_back();
  const std::vector<std::string> want = Bodies();
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].value("status", ""), "OK") << lines[i].dump();
    EXPECT_EQ(BytesOf(lines[i], "body"), want[i - 1]) << lines[i].dump();
  }

  const std::string missing = "no\xff";
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult failed,
                              cli_.Run({"req", missing, "x", "--json", "--wait",
                                        "200ms", "--timeout", "2s"},
                                       kTimeout));
  EXPECT_EQ(failed.exit_code, 1) << failed.err;
  ASSERT_EQ(failed.lines.size(), 1u) << failed.out;
  const Json j = ParseLine(failed.lines[0]);
  EXPECT_EQ(j.value("ok", true), false) << j.dump();
  EXPECT_EQ(j.value("code", ""), "UNAVAILABLE") << j.dump();
  EXPECT_NE(BytesOf(j, "message").find(missing), std::string::npos) << j.dump();
}

// node --json events and peers --json with a node whose name, header and
// offer are not UTF-8.
TEST_F(CliJsonTest, NodeAndPeersRoundTripAnyBytes) {
  const std::string odd = "odd" + kOverlong + "\xff";
  const std::string header = AllNonNulBytes().substr(70);  // no '='
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto watcher, cli_.SpawnReady({"node", "--json", "--name", kUtf8}));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto node,
      cli_.SpawnReady({"node", "--name", odd, "--header", "x=" + header,
                       "--offer", "queue=" + kSurrogate}));
  // The watcher prints a joined event for the odd node.
  absl::StatusOr<size_t> joined = watcher->WaitForLine(
      [&](absl::string_view line) {
        const Json j = Json::parse(line, nullptr, false);
        return j.is_object() && j.value("event", "") == "joined" &&
               BytesOf(j, "name") == odd;
      },
      kTimeout);
  FABRIC_ASSERT_OK(joined);

  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult peers,
      cli_.Run({"peers", "--json", "--min-peers", "2", "--wait", "30s"},
               kTimeout));
  ASSERT_EQ(peers.exit_code, 0) << peers.err;
  ASSERT_EQ(peers.lines.size(), 1u) << peers.out;  // one array on one line
  const Json array = ParseLine(peers.lines[0]);
  ASSERT_TRUE(array.is_array()) << peers.out;
  bool found = false;
  for (const Json& p : array) {
    if (BytesOf(p, "name") != odd) continue;
    found = true;
    EXPECT_EQ(HeaderOf(p, "x"), header) << p.dump();
    std::string offer;
    ASSERT_TRUE(p.contains("offers_b64")) << p.dump();
    const Json& names = p["offers_b64"][absl::Base64Escape("queue")];
    ASSERT_TRUE(names.is_array() && names.size() == 1u) << p.dump();
    ASSERT_TRUE(absl::Base64Unescape(names[0].get<std::string>(), &offer));
    EXPECT_EQ(offer, kSurrogate);
  }
  EXPECT_TRUE(found) << peers.out;

  node->Signal(SIGTERM);
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult n, Finish(*node, kTimeout));
  EXPECT_EQ(n.exit_code, 0) << n.err;
  watcher->Signal(SIGTERM);
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult w, Finish(*watcher, kTimeout));
  EXPECT_EQ(w.exit_code, 0) << w.err;
  // Every line the watcher printed is JSON: READY, then events.
  const std::vector<Json> lines = ParseAll(w.lines);
  ASSERT_GE(lines.size(), 2u) << w.out;
  ExpectReady(lines[0], kUtf8);
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_NE(lines[i].value("event", ""), "") << lines[i].dump();
    EXPECT_NE(BytesOf(lines[i], "name"), "<none>") << lines[i].dump();
  }
}

}  // namespace
}  // namespace fabric
