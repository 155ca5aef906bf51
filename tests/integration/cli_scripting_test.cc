// SPDX-License-Identifier: Apache-2.0
// The `fabric` command as scripts use it: binary bodies from files and raw
// stdin arrive byte for byte (through --out-dir, an --exec child's stdin,
// pub/sub and req/serve), --timeout bounds a run whose stdin is held open,
// stdin that is not data is not read, sizes take units, bad environment
// values and relay config typos are usage errors, exit codes follow one
// rule (0 done, 1 failed at run time, 2 wrong command line), and work and
// serve print a summary at exit.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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
using ::fabric::testing::WaitUntil;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr absl::Duration kWait = absl::Seconds(30);

// Every byte value, newlines and NULs included, then pseudo-random bytes.
std::string BinaryBody(size_t size, uint32_t seed) {
  std::string body(size, '\0');
  std::mt19937 rng(seed);
  for (size_t i = 0; i < size; ++i) {
    body[i] = static_cast<char>(i < 256 ? i : rng() & 0xff);
  }
  return body;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// The regular files in `dir` (hidden temporaries excluded), sorted.
std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!name.empty() && name[0] != '.') files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

class CliScriptingTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cluster_.usable()); }

  // `fabric <args> <cluster flags>` under /bin/sh with `redirect` applied
  // (e.g. "< \"$IN\""), and `env` added.
  absl::StatusOr<std::unique_ptr<Subprocess>> SpawnShell(
      std::vector<std::string> args, const std::string& redirect,
      std::vector<std::string> env) {
    std::vector<std::string> argv = {
        "/bin/sh", "-c", absl::StrCat("exec \"$0\" \"$@\" ", redirect),
        FABRIC_CLI_PATH};
    for (std::string& a : args) argv.push_back(std::move(a));
    for (std::string& f : cluster_.ClusterFlags()) argv.push_back(std::move(f));
    return Subprocess::Spawn(std::move(argv), std::move(env));
  }

  absl::StatusOr<RunResult> RunShell(std::vector<std::string> args,
                                     const std::string& redirect,
                                     std::vector<std::string> env) {
    absl::StatusOr<std::unique_ptr<Subprocess>> proc =
        SpawnShell(std::move(args), redirect, std::move(env));
    if (!proc.ok()) return proc.status();
    return Finish(**proc, kWait);
  }

  std::string Path(absl::string_view name) const {
    return absl::StrCat(cluster_.dir(), "/", name);
  }

  CliCluster cluster_{"script"};
};

TEST_F(CliScriptingTest, FilesAndRawStdinArriveByteForByte) {
  const std::string a = BinaryBody(3000, 1), b = BinaryBody(70000, 2),
                    c = BinaryBody(5000, 3);
  WriteFile(Path("a.bin"), a);
  WriteFile(Path("b.bin"), b);
  WriteFile(Path("c.bin"), c);
  const std::string out = Path("out"), exec_out = Path("exec");
  ASSERT_EQ(mkdir(exec_out.c_str(), 0700), 0);
  // One worker saves bodies with --out-dir, the other through its --exec
  // child's stdin.
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto saver, cluster_.SpawnReady({"work", "files", "--out-dir", out}));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto runner, cluster_.SpawnReady({"work", "piped", "--exec",
                                        absl::StrCat("cat > ", exec_out,
                                                     "/\"$FABRIC_TASK_ID\"")}));

  // --file is one task per file, whatever bytes it holds.
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult push,
      cluster_.Run({"push", "files", "--file", Path("a.bin"), "--file",
                    Path("b.bin"), "--timeout", "50s"}));
  ASSERT_EQ(push.exit_code, 0) << push.err;
  EXPECT_THAT(push.out, HasSubstr("pushed 2 confirmed 2 acked 2"));
  // --stdin-raw is all of stdin as one task.
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult raw,
      RunShell({"push", "piped", "--stdin-raw", "--timeout", "50s"},
               "< \"$IN\"", {absl::StrCat("IN=", Path("c.bin"))}));
  ASSERT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_THAT(raw.out, HasSubstr("pushed 1 confirmed 1 acked 1"));

  ASSERT_TRUE(WaitUntil([&] { return FilesIn(out).size() == 2; }, kWait));
  std::vector<std::string> saved;
  for (const std::string& f : FilesIn(out)) saved.push_back(ReadFile(f));
  EXPECT_THAT(saved, ::testing::UnorderedElementsAre(a, b));
  ASSERT_TRUE(WaitUntil(
      [&] {
        const auto files = FilesIn(exec_out);
        return files.size() == 1 && ReadFile(files[0]).size() == c.size();
      },
      kWait));
  EXPECT_EQ(ReadFile(FilesIn(exec_out)[0]), c);
}

TEST_F(CliScriptingTest, PubFileReachesSubscriberOutDir) {
  const std::string body = BinaryBody(4000, 4);
  WriteFile(Path("m.bin"), body);
  const std::string out = Path("sub-out");
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto sub,
      cluster_.SpawnReady({"sub", "bin.", "--count", "1", "--out-dir", out}));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult pub,
      cluster_.Run({"pub", "bin.x", "--file", Path("m.bin"),
                    "--wait-subscribers", "1", "--timeout", "50s"}));
  ASSERT_EQ(pub.exit_code, 0) << pub.err;
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult s, Finish(*sub, kWait));
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const std::vector<std::string> files = FilesIn(out);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(ReadFile(files[0]), body);
}

TEST_F(CliScriptingTest, ReqFileToServeAndRawReply) {
  const std::string body = BinaryBody(2000, 5);
  WriteFile(Path("r.bin"), body);
  const std::string out = Path("serve-out");
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto serve, cluster_.SpawnReady({"serve", "echo", "--echo", "--count",
                                       "3", "--out-dir", out, "--json"}));
  // --raw: the reply exactly.
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult req,
      RunShell({"req", "echo", "--file", Path("r.bin"), "--raw", "--timeout",
                "20s", "--wait", "15s"},
               "> \"$OUT\"", {absl::StrCat("OUT=", Path("reply.bin"))}));
  ASSERT_EQ(req.exit_code, 0) << req.err;
  EXPECT_EQ(ReadFile(Path("reply.bin")), body);
  // Without --raw a text reply gets its final newline; with it, not.
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult text,
      RunShell({"req", "echo", "hello", "--timeout", "20s", "--wait", "15s"},
               "> \"$OUT\"", {absl::StrCat("OUT=", Path("text.txt"))}));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(ReadFile(Path("text.txt")), "hello\n");
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult exact,
      RunShell({"req", "echo", "hello", "--raw", "--timeout", "20s", "--wait",
                "15s"},
               "> \"$OUT\"", {absl::StrCat("OUT=", Path("exact.txt"))}));
  ASSERT_EQ(exact.exit_code, 0) << exact.err;
  EXPECT_EQ(ReadFile(Path("exact.txt")), "hello");

  // The request bodies were saved as sent, and serve summarizes at exit.
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult s, Finish(*serve, kWait));
  ASSERT_EQ(s.exit_code, 0) << s.err;
  std::vector<std::string> saved;
  for (const std::string& f : FilesIn(out)) saved.push_back(ReadFile(f));
  EXPECT_THAT(saved, ::testing::UnorderedElementsAre(body, "hello", "hello"));
  EXPECT_THAT(s.err, HasSubstr("serve: 3 handled in "));
  EXPECT_THAT(s.err, HasSubstr("replied 3"));
  ASSERT_FALSE(s.lines.empty());
  EXPECT_THAT(s.lines.back(), StartsWith("{\"event\":\"summary\","));
  EXPECT_THAT(s.lines.back(), HasSubstr("\"handled\":3"));
}

// A writer that holds a FIFO open without writing: a reader of it waits for
// data that never comes, as under cron or ssh with stdin left open.
class HeldOpenFifo {
 public:
  explicit HeldOpenFifo(const std::string& path) : path_(path) {
    if (mkfifo(path.c_str(), 0600) == 0) {
      fd_ = open(path.c_str(), O_RDWR | O_CLOEXEC);  // never blocks
    }
  }
  ~HeldOpenFifo() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

TEST_F(CliScriptingTest, TimeoutBoundsARunWhoseStdinStaysOpen) {
  HeldOpenFifo fifo(Path("stdin.fifo"));
  ASSERT_TRUE(fifo.ok());
  const std::vector<std::string> env = {absl::StrCat("IN=", fifo.path())};
  // Each would wait forever for stdin without the bound; the test's own
  // 30 s limit (Finish) is far above the 1 s given.
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"push", "q", "--spool", Path("spool"), "--wait-acked", "--timeout",
            "1s"},
           {"push", "q", "--stdin-raw", "--timeout", "1s"},
           {"pub", "t", "--timeout", "1s"},
           {"req", "svc", "--timeout", "1s"}}) {
    SCOPED_TRACE(absl::StrJoin(args, " "));
    FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, RunShell(args, "< \"$IN\"", env));
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("--timeout passed while waiting for input "
                                 "on stdin"));
  }
}

TEST_F(CliScriptingTest, PubStopsOnSigtermWhileWaitingForStdin) {
  HeldOpenFifo fifo(Path("pub.fifo"));
  ASSERT_TRUE(fifo.ok());
  FABRIC_ASSERT_OK_AND_ASSIGN(auto pub,
                              SpawnShell({"pub", "t"}, "< \"$IN\"",
                                         {absl::StrCat("IN=", fifo.path())}));
  FABRIC_ASSERT_OK(pub->WaitForReady("READY ", kWait).status());
  pub->Signal(SIGTERM);
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, Finish(*pub, kWait));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("pub: 0 published on t"));
}

TEST_F(CliScriptingTest, VersionOnBothBinaries) {
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto cli, Subprocess::Spawn({FABRIC_CLI_PATH, "--version"}));
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult c, Finish(*cli, kWait));
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_THAT(c.out, StartsWith("fabric 0."));
  EXPECT_THAT(c.out, HasSubstr(" (git "));
  EXPECT_THAT(c.out, HasSubstr("\nlibzmq 4."));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto relay, Subprocess::Spawn({FABRIC_RELAY_PATH, "--version"}));
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, Finish(*relay, kWait));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("fabric-relay 0."));
  EXPECT_THAT(r.out, HasSubstr("\nlibzmq 4."));
}

TEST_F(CliScriptingTest, StdinThatIsNotDataIsNotRead) {
  // The harness gives children /dev/null as stdin: with --spool and nothing
  // else named, push delivers what the spool holds (nothing) and exits.
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult spool,
      cluster_.Run({"push", "q", "--spool", Path("sp"), "--timeout", "20s"}));
  EXPECT_EQ(spool.exit_code, 0) << spool.err;
  EXPECT_THAT(spool.out, HasSubstr("pushed 0 confirmed 0"));
  // Without a spool there is nothing to do: a usage error, not a wait.
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult none, cluster_.Run({"push", "q"}));
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("nothing to push"));
}

TEST_F(CliScriptingTest, SizesTakeUnits) {
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto w, cluster_.SpawnReady({"work", "sizes", "--out-dir", Path("o")}));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult push,
      cluster_.Run({"push", "sizes", "--count", "2", "--size", "1k",
                    "--max-bytes", "1GiB", "--timeout", "50s"}));
  ASSERT_EQ(push.exit_code, 0) << push.err;
  ASSERT_TRUE(WaitUntil([&] { return FilesIn(Path("o")).size() == 2; }, kWait));
  for (const std::string& f : FilesIn(Path("o"))) {
    EXPECT_EQ(ReadFile(f).size(), 1024u) << f;
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult bad,
      cluster_.Run({"push", "sizes", "--count", "1", "--max-bytes", "1Gx"}));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--max-bytes: '1Gx' is not a size"));
}

TEST_F(CliScriptingTest, PushProgressShowsTotalsRatesAndEta) {
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto w, cluster_.SpawnReady({"work", "prog", "--exec", "sleep 0.05"}));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult push,
      cluster_.Run({"push", "prog", "--count", "20", "--progress", "100ms",
                    "--timeout", "50s"}));
  ASSERT_EQ(push.exit_code, 0) << push.err;
  // At least one line comes before the last task is acked (20 tasks of
  // 50 ms each take a second or more), and it has the ETA.
  EXPECT_THAT(push.err, HasSubstr("progress: pushed=20 total=20 confirmed=20 "
                                  "confirm_rate="));
  EXPECT_THAT(push.err, ::testing::ContainsRegex("/s acked=[0-9]+ ack_rate="));
  EXPECT_THAT(push.err, ::testing::ContainsRegex(" eta=([0-9.]+[a-z]+|\\?)"));
}

TEST_F(CliScriptingTest, WorkPrintsASummaryAtExit) {
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto w, cluster_.SpawnReady({"work", "sum", "--count", "2", "--json"}));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult push,
      cluster_.Run({"push", "sum", "a", "b", "--timeout", "50s"}));
  ASSERT_EQ(push.exit_code, 0) << push.err;
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, Finish(*w, kWait));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("work: 2 handled in "));
  EXPECT_THAT(r.err, HasSubstr("acked 2"));
  ASSERT_FALSE(r.lines.empty());
  EXPECT_THAT(r.lines.back(),
              StartsWith("{\"event\":\"summary\",\"verb\":\"work\","));
  EXPECT_THAT(r.lines.back(), HasSubstr("\"acked\":2"));
}

TEST_F(CliScriptingTest, BadEnvironmentValuesAreUsageErrors) {
  std::vector<std::string> argv = {FABRIC_CLI_PATH, "peers", "--wait", "100ms"};
  for (std::string& f : cluster_.ClusterFlags()) argv.push_back(std::move(f));
  for (const std::string& env :
       {std::string("FABRIC_LOG_LEVEL=bogus"),
        std::string("FABRIC_BEACON_PORT=port"),
        std::string("FABRIC_DISCOVERY=carrier-pigeon")}) {
    SCOPED_TRACE(env);
    FABRIC_ASSERT_OK_AND_ASSIGN(auto proc, Subprocess::Spawn(argv, {env}));
    FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, Finish(*proc, kWait));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_THAT(r.err, HasSubstr(env.substr(0, env.find('='))));
  }
}

TEST_F(CliScriptingTest, RelayConfigTypoIsAUsageError) {
  const std::string config = Path("relay.toml");
  WriteFile(config, "name = \"r1\"\nqueeu = \"images\"\n");
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto proc, Subprocess::Spawn({FABRIC_RELAY_PATH, "--config", config}));
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, Finish(*proc, kWait));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("queeu"));
}

// Exit codes, per verb: 2 for a wrong command line (found before anything
// runs), 1 for a failure at run time.
TEST_F(CliScriptingTest, ExitCodesFollowOneRule) {
  const std::string missing = Path("no-such-file");
  const std::string spool = Path("empty-spool");
  ASSERT_EQ(mkdir(spool.c_str(), 0700), 0);
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"push", "q", "a", "--count", "3"}, 2, "give one of"},
      {{"push", "q", "--file", missing}, 1, "No such file"},
      {{"push", "q", "--size", "3", "a"}, 2, "--size needs --count"},
      {{"pub", "t", "--file", missing}, 1, "No such file"},
      {{"pub", "t", "--stdin-raw", "--no-stdin"}, 2, "conflict"},
      // Over the publisher's 1 MiB default: found before anything is sent.
      {{"pub", "t", "--file", Path("two-mib")},
       1,
       "more than one message may carry"},
      {{"push", "q", "--count", "1", "--size", "1T"}, 2, "--size: at most"},
      {{"--bogus"}, 2, "unknown flag '--bogus'"},
      {{"req", "svc", "a", "--file", missing}, 2, "give one of"},
      {{"req", "svc", "--file", missing}, 1, "No such file"},
      {{"req", "svc", "x", "--wait", "200ms"}, 1, "UNAVAILABLE"},
      {{"work", "q", "--reject-exit", "3"}, 2, "--reject-exit needs --exec"},
      {{"work", "q", "--out-dir", Path("relay.toml/x")}, 1, "--out-dir"},
      {{"serve", "svc"}, 2, "--exec CMD or --echo"},
      {{"sub", "p", "--count", "-1"}, 2, "--count"},
      {{"peers", "--min-peers", "3", "--wait", "200ms"}, 1, "peers"},
      {{"stats", "nobody", "--timeout", "300ms"}, 1, ""},
      {{"spool", "verify", Path("not-a-spool")}, 1, "no spool at"},
      {{"dlq", "list", Path("not-a-spool")}, 1, "no spool at"},
      {{"spool", "inspect"}, 2, "dir is required"},
      {{"node", "--log-level", "loud"}, 2, "unknown log level"},
  };
  WriteFile(Path("relay.toml"), "");
  WriteFile(Path("two-mib"), std::string(2 << 20, 'x'));
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrJoin(c.args, " "));
    FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, cluster_.Run(c.args, kWait));
    EXPECT_EQ(r.exit_code, c.code) << r.err;
    EXPECT_THAT(r.err, StartsWith("fabric: "));
    EXPECT_THAT(r.err, HasSubstr(c.says));
  }
}

}  // namespace
}  // namespace fabric
