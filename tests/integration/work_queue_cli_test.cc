// SPDX-License-Identifier: Apache-2.0
// Work queues through the `fabric` command, as real processes on loopback:
// `fabric work` serves, `fabric push` produces (in memory or through a
// spool), workers and producers are SIGKILLed mid-run, tasks retry into
// dead letters that `fabric dlq` lists and replays, the spool limit and
// `fabric spool verify` are exercised, and bad arguments exit 2. Deadlines
// are generous and nothing asserts on timing.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
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
using ::fabric::testing::LastValue;
using ::fabric::testing::RunResult;
using ::fabric::testing::Subprocess;
using ::fabric::testing::WaitUntil;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr absl::Duration kTimeout = absl::Seconds(60);

// The "pushed P confirmed C acked A dead D recovered R" line as a map.
std::map<std::string, int64_t> Summary(const std::vector<std::string>& lines) {
  std::map<std::string, int64_t> out;
  for (const std::string& line : lines) {
    if (!absl::StartsWith(line, "pushed ")) continue;
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    for (size_t i = 0; i + 1 < f.size(); i += 2) {
      int64_t v = 0;
      if (absl::SimpleAtoi(f[i + 1], &v)) out[f[i]] = v;
    }
  }
  return out;
}

// One `task ID queue=Q attempt=N [redelivered] BODY` line.
struct TaskLine {
  std::string id;
  std::string queue;
  int attempt = 0;
  bool redelivered = false;
  std::string body;
};

bool ParseTaskLine(absl::string_view line, TaskLine* t) {
  std::vector<std::string> f = absl::StrSplit(line, absl::MaxSplits(' ', 4));
  if (f.size() < 4 || f[0] != "task" || !absl::StartsWith(f[2], "queue=") ||
      !absl::StartsWith(f[3], "attempt=") ||
      !absl::SimpleAtoi(absl::string_view(f[3]).substr(8), &t->attempt)) {
    return false;
  }
  t->id = f[1];
  t->queue = f[2].substr(6);
  std::string rest = f.size() > 4 ? f[4] : "";
  t->redelivered =
      absl::StartsWith(rest, "redelivered ") || rest == "redelivered";
  if (t->redelivered) rest = rest.size() > 12 ? rest.substr(12) : "";
  t->body = rest;
  return true;
}

std::vector<TaskLine> TaskLines(const Subprocess& proc) {
  std::vector<TaskLine> out;
  for (const std::string& line : proc.StdoutLines()) {
    TaskLine t;
    if (ParseTaskLine(line, &t)) out.push_back(t);
  }
  return out;
}

class WorkQueueCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cli_.usable()) << "no free UDP port or temp dir";
    spool_ = dir_ + "/spool";
  }

  std::vector<std::string> ClusterFlags() const { return cli_.ClusterFlags(); }
  absl::StatusOr<std::unique_ptr<Subprocess>> Spawn(
      std::vector<std::string> args) {
    return cli_.Spawn(std::move(args));
  }
  absl::StatusOr<RunResult> Run(std::vector<std::string> args) {
    return cli_.Run(std::move(args), kTimeout);
  }

  // Starts `fabric work QUEUE --name NAME <extra>` and awaits READY.
  absl::StatusOr<std::unique_ptr<Subprocess>> StartWorker(
      const std::string& name, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"work", queue_, "--name", name};
    for (std::string& f : extra) args.push_back(std::move(f));
    return cli_.SpawnReady(std::move(args));
  }

  // Waits until `worker` printed a task line for every body in `bodies`.
  static bool SawAll(const Subprocess& worker,
                     const std::set<std::string>& bodies) {
    return WaitUntil(
        [&] {
          std::set<std::string> seen;
          for (const TaskLine& t : TaskLines(worker)) seen.insert(t.body);
          return std::includes(seen.begin(), seen.end(), bodies.begin(),
                               bodies.end());
        },
        absl::Seconds(10));
  }

  static std::set<std::string> Bodies(int from, int to) {
    std::set<std::string> out;
    for (int i = from; i <= to; ++i) out.insert(absl::StrCat("msg-", i));
    return out;
  }

  void ExpectUsageError(std::vector<std::string> args,
                        const std::string& needle) {
    SCOPED_TRACE(absl::StrJoin(args, " "));
    FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, Run(std::move(args)));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_THAT(r.err, StartsWith("fabric: "));
    EXPECT_THAT(r.err, HasSubstr(needle));
    EXPECT_EQ(r.out, "");
  }

  const CliCluster cli_{"wq-cli"};  // removes its directory last
  const std::string& dir_ = cli_.dir();
  const std::string queue_ = "jobs";
  std::string spool_;
};

TEST_F(WorkQueueCliTest, TwoWorkersGetEveryTask) {
  FABRIC_ASSERT_OK_AND_ASSIGN(auto a, StartWorker("a"));
  FABRIC_ASSERT_OK_AND_ASSIGN(auto b, StartWorker("b"));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult push, Run({"push", queue_, "--count", "200", "--wait-acked",
                           "--timeout", "50s"}));
  ASSERT_EQ(push.exit_code, 0) << push.err;
  const auto summary = Summary(push.lines);
  EXPECT_EQ(summary.at("pushed"), 200) << push.out;
  EXPECT_EQ(summary.at("acked"), 200) << push.out;
  EXPECT_EQ(summary.at("dead"), 0) << push.out;

  const std::set<std::string> want = Bodies(1, 200);
  std::set<std::string> seen;
  ASSERT_TRUE(WaitUntil(
      [&] {
        seen.clear();
        for (const auto* w : {a.get(), b.get()}) {
          for (const TaskLine& t : TaskLines(*w)) {
            EXPECT_EQ(t.queue, queue_);
            seen.insert(t.body);
          }
        }
        return seen == want;
      },
      absl::Seconds(10)))
      << "saw " << seen.size() << " of 200 bodies";
  // SIGTERM: the worker closes and exits 0.
  a->Signal(SIGTERM);
  FABRIC_ASSERT_OK_AND_ASSIGN(int code, a->Wait(kTimeout));
  EXPECT_EQ(code, 0) << a->Stderr();
}

TEST_F(WorkQueueCliTest, StdinLinesAndExecEnvironment) {
  // The command sees the body on stdin and the task in its environment; its
  // output goes to the worker's stderr.
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto w, StartWorker("w", {"--exec",
                                "echo \"env $FABRIC_TASK_ID $FABRIC_QUEUE "
                                "$FABRIC_ATTEMPT body=$(cat)\" >&2"}));
  const std::string input = dir_ + "/input.txt";
  {
    std::ofstream f(input);
    f << "alpha\nbeta two\ngamma";  // no final newline
  }
  std::vector<std::string> argv = {
      "/bin/sh",       "-c",   "exec \"$0\" \"$@\" < \"$X\"",
      FABRIC_CLI_PATH, "push", queue_,
      "--timeout",     "50s"};
  for (std::string& f : ClusterFlags()) argv.push_back(std::move(f));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto proc, Subprocess::Spawn(argv, {absl::StrCat("X=", input)}));
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult push, Finish(*proc));
  ASSERT_EQ(push.exit_code, 0) << push.err;
  EXPECT_EQ(Summary(push.lines).at("acked"), 3) << push.out;

  ASSERT_TRUE(SawAll(*w, {"alpha", "beta two", "gamma"}));
  for (const TaskLine& t : TaskLines(*w)) {
    const std::string env =
        absl::StrCat("env ", t.id, " ", queue_, " 1 body=", t.body);
    EXPECT_TRUE(WaitUntil([&] { return absl::StrContains(w->Stderr(), env); },
                          absl::Seconds(10)))
        << "missing '" << env << "' in:\n"
        << w->Stderr();
  }
  EXPECT_TRUE(WaitUntil(
      [&] {
        const auto lines = w->StdoutLines();
        return std::count_if(lines.begin(), lines.end(), [](const auto& l) {
                 return absl::StartsWith(l, "ack ") &&
                        absl::EndsWith(l, " exit=0");
               }) == 3;
      },
      absl::Seconds(10)));
}

TEST_F(WorkQueueCliTest, WorkerExitsAfterCountWithJsonLines) {
  FABRIC_ASSERT_OK_AND_ASSIGN(auto w,
                              StartWorker("w", {"--count", "2", "--json"}));
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult push,
                              Run({"push", queue_, "one", "two", "--header",
                                   "color=blue", "--timeout", "50s"}));
  ASSERT_EQ(push.exit_code, 0) << push.err;
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, Finish(*w));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // READY, two tasks and the summary.
  ASSERT_EQ(r.lines.size(), 4u) << r.out;
  EXPECT_THAT(r.lines[3], StartsWith("{\"event\":\"summary\","));
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_THAT(r.lines[i], StartsWith("{\"task\":"));
    EXPECT_THAT(r.lines[i], HasSubstr("\"headers\":{\"color\":\"blue\"}"));
    EXPECT_THAT(r.lines[i], HasSubstr("\"attempt\":1,"));
  }
  EXPECT_THAT(r.out, HasSubstr("\"body\":\"one\"}"));
  EXPECT_THAT(r.out, HasSubstr("\"body\":\"two\"}"));
}

TEST_F(WorkQueueCliTest, DiscardAcksEveryTaskWithoutPrintingIt) {
  // The no-op handler for benchmarks: every task is acked, none is printed.
  constexpr int kTasks = 500;
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto w, StartWorker("w", {"--discard", "--count", absl::StrCat(kTasks)}));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult push, Run({"push", queue_, "--count", absl::StrCat(kTasks),
                           "--wait-acked", "--timeout", "50s"}));
  ASSERT_EQ(push.exit_code, 0) << push.err;
  const auto summary = Summary(push.lines);
  EXPECT_EQ(summary.at("pushed"), kTasks) << push.out;
  EXPECT_EQ(summary.at("acked"), kTasks) << push.out;
  EXPECT_EQ(summary.at("dead"), 0) << push.out;

  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, Finish(*w));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // READY and nothing else on stdout; no body anywhere.
  ASSERT_EQ(r.lines.size(), 1u) << r.out;
  EXPECT_THAT(r.lines[0], StartsWith("READY "));
  EXPECT_THAT(r.out + r.err, Not(HasSubstr("msg-")));
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("work: ", kTasks, " handled in ")))
      << r.err;
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("acked ", kTasks, ","))) << r.err;
}

TEST_F(WorkQueueCliTest, KilledWorkersTasksGoToAnother) {
  // `exec` so the sleep itself gets the worker's death signal.
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto slow,
      StartWorker("slow", {"--exec", "exec sleep 30", "--concurrency", "4",
                           "--prefetch", "20"}));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto push, Spawn({"push", queue_, "--count", "20", "--wait-acked",
                        "--lease", "20s", "--timeout", "55s"}));
  size_t from = 0;
  for (int i = 0; i < 4; ++i) {
    FABRIC_ASSERT_OK_AND_ASSIGN(
        size_t at, slow->WaitForLineContaining("task ", kTimeout, from));
    from = at + 1;
  }
  const std::vector<TaskLine> held = TaskLines(*slow);
  ASSERT_GE(held.size(), 4u);
  slow->Signal(SIGKILL);
  FABRIC_ASSERT_OK_AND_ASSIGN(int killed, slow->Wait(kTimeout));
  EXPECT_EQ(killed, 128 + SIGKILL);

  FABRIC_ASSERT_OK_AND_ASSIGN(auto fast, StartWorker("fast"));
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, Finish(*push));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Summary(r.lines).at("acked"), 20) << r.out;
  ASSERT_TRUE(SawAll(*fast, Bodies(1, 20)));

  std::map<std::string, TaskLine> by_id;
  for (const TaskLine& t : TaskLines(*fast)) by_id.emplace(t.id, t);
  for (const TaskLine& h : held) {
    SCOPED_TRACE(h.id);
    ASSERT_EQ(by_id.count(h.id), 1u);
    const TaskLine& again = by_id.at(h.id);
    EXPECT_EQ(again.body, h.body);
    EXPECT_TRUE(again.redelivered || again.attempt >= 2)
        << "attempt=" << again.attempt;
  }
}

TEST_F(WorkQueueCliTest, KilledProducerResendsEveryConfirmedTask) {
  FABRIC_ASSERT_OK_AND_ASSIGN(auto w, StartWorker("w"));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto push, Spawn({"push", queue_, "--spool", spool_, "--count", "20000",
                        "--size", "1000", "--fsync", "batch", "--wait-acked",
                        "--progress", "20ms"}));
  // Kill it once enough is confirmed: usually mid-push. (Whether the worker
  // got tasks by then varies; either way no confirmed task may be lost.)
  constexpr int64_t kEnough = 2000;
  ASSERT_TRUE(WaitUntil(
      [&] {
        return LastValue(push->Stderr(), "progress:", "confirmed") >= kEnough;
      },
      kTimeout))
      << push->Stderr();
  push->Signal(SIGKILL);
  FABRIC_ASSERT_OK_AND_ASSIGN(int killed, push->Wait(kTimeout));
  EXPECT_EQ(killed, 128 + SIGKILL);
  const int64_t confirmed = LastValue(push->Stderr(), "progress:", "confirmed");
  ASSERT_GE(confirmed, kEnough);

  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult again, Run({"push", queue_, "--spool", spool_, "--wait-acked",
                            "--no-stdin", "--timeout", "55s"}));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  const auto summary = Summary(again.lines);
  EXPECT_EQ(summary.at("pushed"), 0) << again.out;
  EXPECT_EQ(summary.at("dead"), 0) << again.out;

  // Bodies are "msg-<i>" padded with '.'.
  const std::set<std::string> want = Bodies(1, static_cast<int>(confirmed));
  std::map<std::string, int> times;
  ASSERT_TRUE(WaitUntil(
      [&] {
        times.clear();
        for (const TaskLine& t : TaskLines(*w)) {
          ++times[t.body.substr(0, t.body.find('.'))];
        }
        return std::all_of(want.begin(), want.end(), [&](const std::string& b) {
          return times.count(b);
        });
      },
      absl::Seconds(10)))
      << "confirmed " << confirmed << ", processed " << times.size();
  int duplicates = 0;
  for (const auto& [body, n] : times) duplicates += n - 1;
  std::printf(
      "confirmed before the kill: %lld; recovered: %lld; bodies "
      "processed: %zu; duplicate deliveries: %d\n",
      static_cast<long long>(confirmed),
      static_cast<long long>(summary.at("recovered")), times.size(),
      duplicates);

  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult inspect,
                              Run({"spool", "inspect", spool_, "--json"}));
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  EXPECT_THAT(inspect.out, HasSubstr("\"pending\":0,")) << inspect.out;
}

TEST_F(WorkQueueCliTest, RetriedTasksBecomeDeadLettersAndReplay) {
  FABRIC_ASSERT_OK_AND_ASSIGN(auto failing,
                              StartWorker("failing", {"--exec", "exit 3"}));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult push, Run({"push", queue_, "--spool", spool_, "--count", "3",
                           "--max-attempts", "3", "--retry-backoff", "50ms",
                           "--wait-acked", "--timeout", "50s"}));
  EXPECT_EQ(push.exit_code, 1) << push.err;
  EXPECT_EQ(Summary(push.lines).at("dead"), 3) << push.out;
  EXPECT_THAT(push.err, HasSubstr("dead-lettered"));
  failing->Signal(SIGTERM);
  FABRIC_ASSERT_OK_AND_ASSIGN(int code, failing->Wait(kTimeout));
  EXPECT_EQ(code, 0) << failing->Stderr();

  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult list, Run({"dlq", "list", spool_}));
  ASSERT_EQ(list.exit_code, 0) << list.err;
  ASSERT_EQ(list.lines.size(), 3u) << list.out;
  for (const std::string& line : list.lines) {
    EXPECT_THAT(line, StartsWith("seq="));
    EXPECT_THAT(line, HasSubstr(" attempts=3 "));
    EXPECT_THAT(line, HasSubstr("max_attempts"));
    EXPECT_THAT(line, HasSubstr("body=\"msg-"));
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult json,
                              Run({"dlq", "list", spool_, "--json"}));
  EXPECT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(json.out, HasSubstr("\"attempts\":3"));

  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult replay, Run({"dlq", "replay", spool_}));
  ASSERT_EQ(replay.exit_code, 0) << replay.err;
  EXPECT_THAT(replay.out, StartsWith("replayed 3 "));

  FABRIC_ASSERT_OK_AND_ASSIGN(auto ok, StartWorker("ok"));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult again, Run({"push", queue_, "--spool", spool_, "--wait-acked",
                            "--no-stdin", "--timeout", "50s"}));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(Summary(again.lines).at("acked"), 3) << again.out;
  EXPECT_TRUE(SawAll(*ok, Bodies(1, 3)));

  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult empty, Run({"dlq", "list", spool_}));
  EXPECT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_EQ(empty.out, "");
}

TEST_F(WorkQueueCliTest, RejectExitDeadLettersAtOnce) {
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto w, StartWorker("w", {"--exec", "exit 4", "--reject-exit", "4"}));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult push,
      Run({"push", queue_, "--spool", spool_, "--count", "2", "--max-attempts",
           "5", "--wait-acked", "--timeout", "50s"}));
  EXPECT_EQ(push.exit_code, 1) << push.err;
  EXPECT_EQ(Summary(push.lines).at("dead"), 2) << push.out;
  EXPECT_TRUE(WaitUntil(
      [&] {
        const auto lines = w->StdoutLines();
        return std::count_if(lines.begin(), lines.end(), [](const auto& l) {
                 return absl::StartsWith(l, "reject ") &&
                        absl::EndsWith(l, " exit=4");
               }) == 2;
      },
      absl::Seconds(10)));

  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult list, Run({"dlq", "list", spool_}));
  ASSERT_EQ(list.exit_code, 0) << list.err;
  ASSERT_EQ(list.lines.size(), 2u) << list.out;
  for (const std::string& line : list.lines) {
    EXPECT_THAT(line, HasSubstr(" attempts=1 "));
    EXPECT_THAT(line, HasSubstr("rejected"));
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult purge, Run({"dlq", "purge", spool_}));
  ASSERT_EQ(purge.exit_code, 0) << purge.err;
  EXPECT_THAT(purge.out, StartsWith("purged 2 "));
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult empty, Run({"dlq", "list", spool_}));
  EXPECT_EQ(empty.out, "");
}

TEST_F(WorkQueueCliTest, DlqRefusesASpoolAProducerHolds) {
  // No worker: the producer keeps waiting, holding the spool.
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto push, Spawn({"push", queue_, "--spool", spool_, "--count", "1",
                        "--wait-acked", "--progress", "100ms"}));
  ASSERT_TRUE(
      WaitUntil([&] { return absl::StrContains(push->Stderr(), "progress:"); },
                kTimeout));
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult purge, Run({"dlq", "purge", spool_}));
  EXPECT_EQ(purge.exit_code, 1) << purge.out;
  EXPECT_THAT(purge.err, HasSubstr("is a producer running on it?"));
  // Read-only verbs still work.
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult list, Run({"dlq", "list", spool_}));
  EXPECT_EQ(list.exit_code, 0) << list.err;

  // SIGTERM: the producer stops; its task stays in the spool.
  push->Signal(SIGTERM);
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult stopped, Finish(*push));
  EXPECT_EQ(stopped.exit_code, 1);
  EXPECT_THAT(stopped.out, HasSubstr("holds 1 unacked")) << stopped.out;
}

TEST_F(WorkQueueCliTest, SpoolLimitFailsThePush) {
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult push,
      Run({"push", queue_, "--spool", spool_, "--max-bytes", "2000", "--count",
           "100", "--size", "100", "--push-timeout", "300ms"}));
  EXPECT_EQ(push.exit_code, 1) << push.out;
  EXPECT_THAT(push.err, HasSubstr("limit")) << push.err;
  const auto summary = Summary(push.lines);
  EXPECT_GT(summary.at("pushed"), 0) << push.out;
  EXPECT_LT(summary.at("pushed"), 100) << push.out;
}

// Returns the largest file in `dir` (a segment, for a small spool).
std::string LargestFile(const std::string& dir) {
  std::string best;
  uintmax_t best_size = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.is_regular_file() && e.file_size() > best_size) {
      best = e.path().string();
      best_size = e.file_size();
    }
  }
  return best;
}

TEST_F(WorkQueueCliTest, SpoolVerifyFindsAFlippedByte) {
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult push, Run({"push", queue_, "--spool", spool_, "--count", "50",
                           "--size", "200"}));
  ASSERT_EQ(push.exit_code, 0) << push.err;
  EXPECT_THAT(push.out, HasSubstr("holds 50 unacked"));

  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult good, Run({"spool", "verify", spool_}));
  EXPECT_EQ(good.exit_code, 0) << good.out << good.err;
  EXPECT_THAT(good.out, StartsWith("ok"));
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult inspect,
                              Run({"spool", "inspect", spool_}));
  EXPECT_EQ(inspect.exit_code, 0) << inspect.err;
  EXPECT_THAT(inspect.out, HasSubstr("\nqueue            jobs\n"));
  EXPECT_THAT(inspect.out, HasSubstr("\npending          50\n"));

  const std::string segment = LargestFile(spool_);
  ASSERT_FALSE(segment.empty());
  {
    std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    const std::streamoff middle = f.tellg() / 2;
    f.seekg(middle);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x5a);
    f.seekp(middle);
    f.write(&c, 1);
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult bad, Run({"spool", "verify", spool_}));
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  const std::string name = std::filesystem::path(segment).filename().string();
  EXPECT_THAT(bad.out, HasSubstr(absl::StrCat("corrupt ", name, " offset ")));
  EXPECT_THAT(bad.err, HasSubstr("problem"));
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult after,
                              Run({"spool", "inspect", spool_, "--json"}));
  EXPECT_EQ(after.exit_code, 0) << after.err;
  EXPECT_THAT(after.out, HasSubstr(absl::StrCat("\"segment\":\"", name)));
}

TEST_F(WorkQueueCliTest, BadArgumentsExitTwo) {
  ExpectUsageError({"push"}, "queue is required");
  ExpectUsageError({"work"}, "queues is required");
  ExpectUsageError({"push", queue_, "a", "--count", "3"},
                   "give one of MSG..., --count, --file and --stdin-raw");
  ExpectUsageError({"push", queue_, "--size", "10"}, "--size needs --count");
  ExpectUsageError({"push", queue_, "x", "--spool", spool_, "--fsync", "often"},
                   "--fsync: unknown policy 'often'");
  ExpectUsageError({"push", queue_, "x", "--fsync", "always"},
                   "--fsync needs --spool");
  ExpectUsageError({"push", queue_, "x", "--allow-shared-files"},
                   "--allow-shared-files needs --spool");
  ExpectUsageError({"push", queue_, "x", "--header", "novalue"},
                   "--header wants KEY=VALUE");
  ExpectUsageError({"push", queue_, "x", "--timeout", "soon"}, "--timeout");
  ExpectUsageError({"push", queue_, "--no-stdin"}, "nothing to push");
  ExpectUsageError({"work", queue_, "--reject-exit", "3"},
                   "--reject-exit needs --exec");
  ExpectUsageError({"work", queue_, "--concurrency", "0"}, "--concurrency");
  ExpectUsageError({"work", queue_, "--discard", "--exec", "true"},
                   "--discard and --exec exclude each other");
  ExpectUsageError({"work", queue_, "--discard", "--out-dir", dir_ + "/out"},
                   "--discard and --out-dir exclude each other");
  ExpectUsageError({"spool"}, "subcommand is required");
  ExpectUsageError({"dlq", "replay"}, "dir is required");
}

}  // namespace
}  // namespace fabric
