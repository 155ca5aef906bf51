// SPDX-License-Identifier: Apache-2.0
#include "tests/sim/work_queue_sim.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fabric::wq_sim {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kSeeds = 2000;
constexpr int kSteps = 300;

TEST(WorkQueueSimTest, RandomSchedulesKeepEveryInvariant) {
  uint64_t clean = 0, clean_with_churn = 0, dead = 0, restarts = 0;
  uint64_t crashes = 0, send_failures = 0, expiries = 0, inputs = 0;
  uint64_t duplicates = 0;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    SimOptions options;
    options.seed = seed;
    options.steps = kSteps;
    const SimResult r = RunSeed(options);
    ASSERT_TRUE(r.ok) << FormatFailure(r);
    inputs += r.inputs;
    dead += r.dead;
    restarts += r.producer_restarts;
    crashes += r.worker_crashes;
    send_failures += r.send_failures;
    expiries += r.lease_expiries;
    duplicates += r.duplicates;
    if (r.clean) {
      // No handler failed and none was running when its worker died or its
      // lease ran out: zero dead letters (the oracle checks it too).
      EXPECT_EQ(r.dead, 0u) << FormatFailure(r);
      clean++;
      if (r.worker_crashes + r.send_failures + r.lease_expiries > 0) {
        clean_with_churn++;
      }
    }
  }
  // The schedules cover what they are meant to.
  EXPECT_GT(clean_with_churn, kSeeds / 10);
  EXPECT_GT(dead, 0u);
  EXPECT_GT(restarts, 0u);
  EXPECT_GT(crashes, kSeeds);
  EXPECT_GT(send_failures, kSeeds);
  EXPECT_GT(expiries, kSeeds);
  EXPECT_GT(duplicates, kSeeds);
  std::printf(
      "%llu seeds, %llu dispatcher inputs, %llu clean runs (%llu with"
      " churn), %llu dead letters, %llu duplicate deliveries\n",
      static_cast<unsigned long long>(kSeeds),
      static_cast<unsigned long long>(inputs),
      static_cast<unsigned long long>(clean),
      static_cast<unsigned long long>(clean_with_churn),
      static_cast<unsigned long long>(dead),
      static_cast<unsigned long long>(duplicates));
}

TEST(WorkQueueSimTest, SameSeedSameRun) {
  SimOptions options;
  options.seed = 4242;
  const SimResult a = RunSeed(options);
  const SimResult b = Replay(options, a.events);
  ASSERT_TRUE(a.ok) << FormatFailure(a);
  EXPECT_EQ(FormatTrace(a.events), FormatTrace(RunSeed(options).events));
  EXPECT_EQ(a.inputs, b.inputs);
  EXPECT_EQ(a.acked, b.acked);
  EXPECT_EQ(a.dead, b.dead);
}

// The checker can fail: a shell that tells the dispatcher of more credit
// than the worker's ledger granted must be caught sending beyond credit, with a
// short replayable trace.
TEST(WorkQueueSimTest, CatchesDispatchBeyondGrantedCredit) {
  SimOptions options;
  options.fault = Fault::kInflateGrants;
  bool caught = false;
  for (uint64_t seed = 1; seed <= 50 && !caught; ++seed) {
    options.seed = seed;
    const SimResult r = RunSeed(options);
    if (r.ok) continue;
    caught = true;
    EXPECT_THAT(r.invariant, testing::AnyOf("credit", "worker-credit"));
    const std::string report = FormatFailure(r);
    EXPECT_THAT(report, HasSubstr("seed=" + std::to_string(seed)));
    EXPECT_THAT(report, HasSubstr("shrunk schedule"));
    ASSERT_FALSE(r.shrunk.empty());
    EXPECT_LE(r.shrunk.size(), 10u) << report;
    // The shrunk schedule replays to the same failure.
    const SimResult again = Replay(options, r.shrunk);
    EXPECT_FALSE(again.ok);
    EXPECT_EQ(again.invariant, r.invariant);
    std::printf("%s", report.c_str());
  }
  EXPECT_TRUE(caught);
}

// The checker can fail: an oracle expecting one attempt too many fails at
// the first completion.
TEST(WorkQueueSimTest, CatchesWrongAttemptCount) {
  SimOptions options;
  options.seed = 7;
  options.fault = Fault::kMiscountAttempts;
  const SimResult r = RunSeed(options);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.invariant, "attempts");
  EXPECT_THAT(FormatFailure(r), HasSubstr("seed=7"));
  EXPECT_FALSE(r.shrunk.empty());
  EXPECT_LE(r.shrunk.size(), r.events.size());
}

// The checker can fail: workers whose ledgers forget what they completed
// run a task again that they acked within the dedup window.
TEST(WorkQueueSimTest, CatchesARerunOfACompletedTask) {
  SimOptions options;
  options.fault = Fault::kForgetCompleted;
  bool caught = false;
  for (uint64_t seed = 1; seed <= 100 && !caught; ++seed) {
    options.seed = seed;
    const SimResult r = RunSeed(options);
    if (r.ok) continue;
    caught = true;
    EXPECT_EQ(r.invariant, "dedup") << FormatFailure(r);
    ASSERT_FALSE(r.shrunk.empty());
    const SimResult again = Replay(options, r.shrunk);
    EXPECT_FALSE(again.ok);
    EXPECT_EQ(again.invariant, r.invariant);
    std::printf("%s", FormatFailure(r).c_str());
  }
  EXPECT_TRUE(caught);
}

// A schedule written by hand replays: two tasks, one run by hand, the other
// by the drain phase.
TEST(WorkQueueSimTest, ReplaysAGivenSchedule) {
  SimOptions options;
  options.seed = 3;
  std::vector<Event> events;
  Event push;
  push.kind = Event::Kind::kPush;
  push.seq = 1;
  push.behaviours = {Behaviour::kAck, Behaviour::kAck};
  push.retries = {0, 0};
  events.push_back(push);
  Event grant;  // the ledger's grant (asked for at WorkerUp) arrives
  grant.kind = Event::Kind::kGrant;
  events.push_back(grant);
  Event start;
  start.kind = Event::Kind::kStart;
  start.seq = 1;
  start.flag = true;
  events.push_back(start);
  Event finish;
  finish.kind = Event::Kind::kFinish;
  finish.seq = 1;
  events.push_back(finish);
  Event flush;
  flush.kind = Event::Kind::kFlush;
  events.push_back(flush);
  const SimResult r = Replay(options, events);
  ASSERT_TRUE(r.ok) << FormatFailure(r, /*full_trace=*/true);
  EXPECT_EQ(r.tasks, 2u);
  EXPECT_EQ(r.acked, 2u);
  EXPECT_EQ(r.dead, 0u);
}

}  // namespace
}  // namespace fabric::wq_sim
