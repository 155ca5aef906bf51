// SPDX-License-Identifier: Apache-2.0
// One test per dispatch rule of docs/work_queues.md, on the pure dispatcher:
// no node, no threads, no clock but the one each input carries.
#include "patterns/work_queue/internal/dispatcher.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fabric::wq {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const absl::Time kT0 = absl::UnixEpoch() + absl::Hours(1000);

class DispatcherTest : public ::testing::Test {
 protected:
  DispatcherTest() { Reset(DispatcherOptions{}); }

  void Reset(DispatcherOptions o) {
    o.producer = producer_;
    o.queue = "q";
    o.seed = 7;
    options_ = o;
    d_ = std::make_unique<Dispatcher>(o);
  }

  // Pushes tasks seq first..last (bodies "t<seq>").
  void Push(uint64_t first, uint64_t last, bool recovered = false) {
    std::vector<NewTask> tasks;
    for (uint64_t s = first; s <= last; ++s) {
      tasks.push_back(NewTask{s, now_, {}, absl::StrCat("t", s), recovered});
    }
    d_->AddTasks(now_, std::move(tasks), fx_);
  }
  // Seqs sent to `w` in the effects so far (all frames), then clears them.
  std::vector<uint64_t> SentTo(const NodeId& w) {
    std::vector<uint64_t> seqs;
    for (const Effects::Frame& f : fx_.frames) {
      if (f.worker == w) seqs.insert(seqs.end(), f.seqs.begin(), f.seqs.end());
    }
    return seqs;
  }
  void Up(const NodeId& w, uint64_t credit) {
    d_->WorkerUp(now_, w, fx_);
    if (credit > 0) d_->Credit(now_, w, credit, fx_);
  }
  // Reports the starts of the current deliveries of `seqs`.
  void Start(const NodeId& w, std::vector<uint64_t> seqs) {
    Results r;
    r.queue = "q";
    for (uint64_t s : seqs) {
      std::optional<Dispatcher::TaskView> t = d_->Find(s);
      r.started.push_back(StartedTask{s, t ? t->delivery : 0});
    }
    d_->Results(now_, w, r, fx_);
  }
  void Ack(const NodeId& w, std::vector<uint64_t> seqs, uint64_t grant = 0) {
    Results r;
    r.queue = "q";
    r.grant = grant;
    r.acked = std::move(seqs);
    d_->Results(now_, w, r, fx_);
  }
  void Other(const NodeId& w, uint64_t seq, Verdict v, uint64_t delay_ms = 0,
             std::string reason = "", uint64_t grant = 0) {
    Results r;
    r.queue = "q";
    r.grant = grant;
    std::optional<Dispatcher::TaskView> t = d_->Find(seq);
    r.others.push_back(OtherResult{seq, t ? t->attempt : 1, v, delay_ms,
                                   std::move(reason), t ? t->delivery : 0});
    d_->Results(now_, w, r, fx_);
  }
  uint32_t AttemptOf(uint64_t seq) { return d_->Find(seq)->attempt; }
  void Advance(absl::Duration d) {
    now_ += d;
    d_->Tick(now_, fx_);
  }
  const Completion* CompletionOf(uint64_t seq) {
    for (const Completion& c : fx_.completions) {
      if (c.id.seq == seq) return &c;
    }
    return nullptr;
  }

  NodeId producer_ = NodeId::Random();
  NodeId w1_ = NodeId::Random();
  NodeId w2_ = NodeId::Random();
  DispatcherOptions options_;
  std::unique_ptr<Dispatcher> d_;
  Effects fx_;
  absl::Time now_ = kT0;
};

TEST_F(DispatcherTest, DispatchesOnlyUnderCreditInSeqOrder) {
  Push(1, 10);
  EXPECT_TRUE(fx_.frames.empty());
  Up(w1_, 0);
  ASSERT_EQ(fx_.demands.size(), 1u);
  EXPECT_EQ(fx_.demands[0].backlog, 10u);
  fx_.Clear();
  d_->Credit(now_, w1_, 3, fx_);
  EXPECT_THAT(SentTo(w1_), ElementsAre(1, 2, 3));
  EXPECT_EQ(d_->stats().in_flight, 3u);
  EXPECT_EQ(d_->stats().backlog, 7u);
  EXPECT_EQ(d_->CreditOf(w1_), 0u);
  std::optional<Dispatcher::TaskView> t = d_->Find(1);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->attempt, 1u);
  EXPECT_FALSE(t->redelivered);
  EXPECT_EQ(*t->body, "t1");
}

TEST_F(DispatcherTest, MostCreditFirstAndFramesSplitAtMaxBatch) {
  DispatcherOptions o;
  o.max_batch = 2;
  Reset(o);
  Up(w1_, 1);
  Up(w2_, 4);
  fx_.Clear();
  Push(1, 5);
  // w2 holds the most credit until both have one left.
  const std::vector<uint64_t> to_w2 = SentTo(w2_);
  ASSERT_EQ(to_w2.size(), 4u);
  EXPECT_EQ(to_w2[0], 1u);
  EXPECT_EQ(to_w2[2], 3u);
  EXPECT_EQ(SentTo(w1_).size(), 1u);
  for (const Effects::Frame& f : fx_.frames) EXPECT_LE(f.seqs.size(), 2u);
}

TEST_F(DispatcherTest, FramesStopGrowingAtMaxFrameBytes) {
  DispatcherOptions o;
  o.max_frame_bytes = 100;
  Reset(o);
  Up(w1_, 10);
  std::vector<NewTask> tasks;
  for (uint64_t s = 1; s <= 3; ++s) {
    tasks.push_back(NewTask{s, now_, {}, std::string(60, 'x'), false});
  }
  d_->AddTasks(now_, std::move(tasks), fx_);
  ASSERT_EQ(fx_.frames.size(), 3u);  // one 60-byte task per frame
}

TEST_F(DispatcherTest, WorkerLostBeforeStartReturnsTasksWithoutAnAttempt) {
  Push(1, 3);
  Up(w1_, 3);
  ASSERT_THAT(SentTo(w1_), ElementsAre(1, 2, 3));
  fx_.Clear();
  d_->WorkerDown(now_, w1_, /*lost=*/true, fx_);
  EXPECT_EQ(d_->stats().returned, 3u);
  EXPECT_EQ(d_->stats().worker_crashes, 0u);
  EXPECT_EQ(d_->stats().backlog, 3u);
  Up(w2_, 3);
  EXPECT_THAT(SentTo(w2_), ElementsAre(1, 2, 3));  // front, in order
  EXPECT_EQ(AttemptOf(1), 1u);
  EXPECT_TRUE(d_->Find(1)->redelivered);
}

// The defect this dispatcher fixes: a task that sat unstarted in the
// windows of many dead workers was dead-lettered.
TEST_F(DispatcherTest, ManyDeadWorkersBeforeStartNeverMakeADeadLetter) {
  Push(1, 1);
  for (int i = 0; i < 20; ++i) {
    NodeId w = NodeId::Random();
    Up(w, 1);
    ASSERT_THAT(SentTo(w), ElementsAre(1));
    fx_.Clear();
    d_->WorkerDown(now_, w, /*lost=*/true, fx_);
    ASSERT_TRUE(fx_.dead.empty());
  }
  Up(w1_, 1);
  Ack(w1_, {1});
  ASSERT_NE(CompletionOf(1), nullptr);
  EXPECT_EQ(CompletionOf(1)->kind, Completion::Kind::kAcked);
  EXPECT_EQ(CompletionOf(1)->attempts, 1u);  // the ack implies a start
  EXPECT_EQ(d_->stats().dead_lettered, 0u);
}

TEST_F(DispatcherTest, StartedTaskCrashingItsWorkersBecomesADeadLetter) {
  DispatcherOptions o;
  o.max_worker_crashes = 3;
  o.max_attempts = 100;
  Reset(o);
  Push(1, 1);
  for (int i = 0; i < 3; ++i) {
    NodeId w = NodeId::Random();
    Up(w, 1);
    Start(w, {1});
    d_->WorkerDown(now_, w, /*lost=*/true, fx_);
  }
  ASSERT_EQ(fx_.dead.size(), 1u);
  EXPECT_THAT(fx_.dead[0].reason, StartsWith("max_worker_crashes: 3"));
  EXPECT_EQ(fx_.dead[0].attempts, 3u);
  EXPECT_EQ(fx_.dead[0].task.body, "t1");
  EXPECT_EQ(d_->stats().worker_crashes, 3u);
  EXPECT_EQ(d_->size(), 0u);
}

TEST_F(DispatcherTest, WorkerCrashesCountOnlyInARow) {
  DispatcherOptions o;
  o.max_worker_crashes = 2;
  o.max_attempts = 100;
  o.retry_backoff = absl::ZeroDuration();
  Reset(o);
  Push(1, 1);
  NodeId w = NodeId::Random();
  Up(w, 1);
  Start(w, {1});
  d_->WorkerDown(now_, w, /*lost=*/true, fx_);  // crash 1
  w = NodeId::Random();
  Up(w, 1);
  Other(w, 1, Verdict::kRetry, 1, "busy", 1);  // resets the run of crashes
  Advance(absl::Milliseconds(2));
  ASSERT_EQ(d_->stats().in_flight, 1u);
  Start(w, {1});
  d_->WorkerDown(now_, w, /*lost=*/true, fx_);  // crash 1 again
  EXPECT_TRUE(fx_.dead.empty());
  EXPECT_EQ(AttemptOf(1), 4u);  // three started deliveries so far
}

TEST_F(DispatcherTest, RetriesCountStartedDeliveriesUpToMaxAttempts) {
  DispatcherOptions o;
  o.max_attempts = 3;
  Reset(o);
  Push(1, 1);
  Up(w1_, 5);
  for (uint32_t attempt = 1; attempt <= 3; ++attempt) {
    ASSERT_EQ(AttemptOf(1), attempt);
    Other(w1_, 1, Verdict::kRetry, 10, "flaky");
    if (attempt < 3) {
      EXPECT_EQ(d_->NextWakeup(), now_ + absl::Milliseconds(10));
      Advance(absl::Milliseconds(10));
    }
  }
  ASSERT_EQ(fx_.dead.size(), 1u);
  EXPECT_EQ(fx_.dead[0].reason, "max_attempts: 3 deliveries, last: flaky");
  EXPECT_EQ(CompletionOf(1)->attempts, 3u);
  EXPECT_EQ(d_->stats().retries, 3u);
}

TEST_F(DispatcherTest, RetryWithoutDelayUsesJitteredExponentialBackoff) {
  DispatcherOptions o;
  o.retry_backoff = absl::Seconds(1);
  o.max_retry_backoff = absl::Seconds(3);
  o.idle_credit_return = absl::Hours(1);
  Reset(o);
  Push(1, 1);
  Up(w1_, 5);
  const absl::Duration want[] = {absl::Seconds(1), absl::Seconds(2),
                                 absl::Seconds(3), absl::Seconds(3)};
  for (absl::Duration base : want) {
    Other(w1_, 1, Verdict::kRetry);
    const absl::Duration wait = d_->NextWakeup() - now_;
    EXPECT_GE(wait, base * 0.9);
    EXPECT_LE(wait, base * 1.1);
    Advance(wait - absl::Milliseconds(1));
    EXPECT_EQ(d_->stats().in_flight, 0u) << "redelivered before its time";
    Advance(absl::Milliseconds(1));
    ASSERT_EQ(d_->stats().in_flight, 1u);
  }
}

TEST_F(DispatcherTest, RejectMakesADeadLetterAtOnce) {
  Push(1, 1);
  Up(w1_, 1);
  Other(w1_, 1, Verdict::kReject, 0, "bad input");
  ASSERT_EQ(fx_.dead.size(), 1u);
  EXPECT_EQ(fx_.dead[0].reason, "rejected: bad input");
  EXPECT_EQ(fx_.dead[0].attempts, 1u);
  EXPECT_EQ(fx_.dead[0].died, now_);
}

TEST_F(DispatcherTest, LeaseExpiryBeforeStartIsNotAnAttempt) {
  DispatcherOptions o;
  o.max_attempts = 1;
  o.lease = absl::Seconds(10);
  Reset(o);
  Push(1, 1);
  Up(w1_, 1);
  EXPECT_EQ(d_->NextWakeup(), now_ + absl::Seconds(10));
  Advance(absl::Seconds(10));
  EXPECT_EQ(d_->stats().lease_expired, 1u);
  EXPECT_EQ(d_->stats().returned, 1u);
  EXPECT_TRUE(fx_.dead.empty());
  EXPECT_EQ(AttemptOf(1), 1u);
}

TEST_F(DispatcherTest, LeaseExpiryAfterStartIsAFailedAttempt) {
  DispatcherOptions o;
  o.max_attempts = 1;
  o.lease = absl::Seconds(10);
  Reset(o);
  Push(1, 1);
  Up(w1_, 1);
  Start(w1_, {1});
  Advance(absl::Seconds(10));
  ASSERT_EQ(fx_.dead.size(), 1u);
  EXPECT_EQ(fx_.dead[0].reason,
            "max_attempts: 1 deliveries, last: lease expired");
}

TEST_F(DispatcherTest, LeaseRunsFromTheStartAndExtensionsNeverShortenIt) {
  DispatcherOptions o;
  o.lease = absl::Seconds(10);
  Reset(o);
  Push(1, 1);
  Up(w1_, 1);
  now_ += absl::Seconds(8);  // waited in the worker's window
  Start(w1_, {1});
  Advance(absl::Seconds(9));  // 17 s after dispatch, 9 s after the start
  EXPECT_EQ(d_->stats().lease_expired, 0u);
  d_->Extend(now_, w1_, Extend{"q", 30000, {1}});
  d_->Extend(now_, w1_, Extend{"q", 1000, {1}});  // never shortens
  Advance(absl::Seconds(29));
  EXPECT_EQ(d_->stats().lease_expired, 0u);
  Advance(absl::Seconds(1));
  EXPECT_EQ(d_->stats().lease_expired, 1u);
}

TEST_F(DispatcherTest, ExtensionFromAnotherWorkerIsIgnored) {
  DispatcherOptions o;
  o.lease = absl::Seconds(10);
  Reset(o);
  Push(1, 1);
  Up(w1_, 1);
  d_->Extend(now_, w2_, Extend{"q", 60000, {1}});
  Advance(absl::Seconds(10));
  EXPECT_EQ(d_->stats().lease_expired, 1u);
}

TEST_F(DispatcherTest, LateAckCompletesOnceAndStaleFailuresAreIgnored) {
  DispatcherOptions o;
  o.lease = absl::Seconds(10);
  Reset(o);
  Push(1, 1);
  Up(w1_, 1);
  Start(w1_, {1});
  Advance(absl::Seconds(10));  // lease ran out at w1
  Up(w2_, 1);
  ASSERT_THAT(SentTo(w2_), ElementsAre(1));
  Results stale;
  stale.others.push_back(OtherResult{1, 1, Verdict::kReject, 0, "late"});
  d_->Results(now_, w1_, stale, fx_);
  EXPECT_TRUE(fx_.dead.empty());
  Ack(w1_, {1});  // the work was done: accepted
  Ack(w2_, {1});  // a duplicate
  ASSERT_EQ(fx_.completions.size(), 1u);
  EXPECT_EQ(d_->stats().late_acks, 1u);
  EXPECT_EQ(d_->stats().acked, 1u);
  EXPECT_THAT(fx_.acked, ElementsAre(1));
}

TEST_F(DispatcherTest, RedeliveryAvoidsTheLastWorkerWhenAnotherHasCredit) {
  Push(1, 1);
  Up(w1_, 1);
  ASSERT_THAT(SentTo(w1_), ElementsAre(1));
  fx_.Clear();
  Up(w2_, 1);
  d_->Credit(now_, w1_, 5, fx_);  // w1 has the most credit, and had it last
  Other(w1_, 1, Verdict::kRelease);
  EXPECT_THAT(SentTo(w2_), ElementsAre(1));
  EXPECT_TRUE(SentTo(w1_).empty());
  EXPECT_EQ(AttemptOf(1), 1u);  // a release is not an attempt
}

TEST_F(DispatcherTest, RedeliveryMayGoToTheLastWorkerWhenItIsTheOnlyOne) {
  Push(1, 1);
  Up(w1_, 1);
  fx_.Clear();
  d_->Credit(now_, w1_, 5, fx_);
  Other(w1_, 1, Verdict::kRelease);
  EXPECT_THAT(SentTo(w1_), ElementsAre(1));
}

TEST_F(DispatcherTest, FailedSendPutsTasksBackAndStopsUsingThatCredit) {
  Push(1, 4);
  Up(w1_, 4);
  ASSERT_THAT(SentTo(w1_), ElementsAre(1, 2, 3, 4));
  const std::vector<uint64_t> seqs = fx_.frames[0].seqs;
  fx_.Clear();
  d_->SendFailed(now_, w1_, seqs, fx_);
  EXPECT_EQ(d_->stats().dispatched, 0u);
  EXPECT_EQ(d_->CreditOf(w1_), 0u);
  EXPECT_EQ(d_->stats().backlog, 4u);
  Up(w2_, 4);
  EXPECT_THAT(SentTo(w2_), ElementsAre(1, 2, 3, 4));
  EXPECT_FALSE(d_->Find(1)->redelivered);  // it never left
}

TEST_F(DispatcherTest, IdleCreditGoesBackAndCloseReturnsTheRest) {
  Up(w1_, 8);
  fx_.Clear();
  EXPECT_EQ(d_->NextWakeup(), now_ + options_.idle_credit_return);
  Advance(options_.idle_credit_return);
  ASSERT_EQ(fx_.demands.size(), 1u);
  EXPECT_EQ(fx_.demands[0].returned, 8u);
  EXPECT_EQ(fx_.demands[0].backlog, 0u);
  fx_.Clear();
  d_->Credit(now_, w1_, 2, fx_);
  d_->Close(now_, fx_);
  ASSERT_EQ(fx_.demands.size(), 1u);
  EXPECT_EQ(fx_.demands[0].returned, 2u);
}

TEST_F(DispatcherTest, DemandIsRepeatedWhenNoCreditComes) {
  Push(1, 1);
  Up(w1_, 0);
  ASSERT_EQ(fx_.demands.size(), 1u);
  fx_.Clear();
  Advance(options_.demand_resend - absl::Milliseconds(1));
  EXPECT_TRUE(fx_.demands.empty());
  EXPECT_EQ(d_->NextWakeup(), now_ + absl::Milliseconds(1));
  Advance(absl::Milliseconds(1));
  ASSERT_EQ(fx_.demands.size(), 1u);
  EXPECT_EQ(fx_.demands[0].backlog, 1u);
}

TEST_F(DispatcherTest, RefusedWorkerGetsItsCreditBackAndNoTasks) {
  Up(w1_, 5);
  fx_.Clear();
  d_->WorkerRefused(now_, w1_, fx_);
  ASSERT_EQ(fx_.demands.size(), 1u);
  EXPECT_EQ(fx_.demands[0].returned, 5u);
  fx_.Clear();
  d_->Credit(now_, w1_, 3, fx_);  // a grant in flight comes straight back
  Push(1, 1);
  EXPECT_TRUE(SentTo(w1_).empty());
  EXPECT_EQ(d_->stats().workers, 0u);
}

TEST_F(DispatcherTest, RecoveredTasksAreFlaggedRedeliveredAtAttemptOne) {
  Push(1, 2, /*recovered=*/true);
  Up(w1_, 2);
  EXPECT_EQ(AttemptOf(1), 1u);
  EXPECT_TRUE(d_->Find(1)->redelivered);
  EXPECT_EQ(d_->stats().redelivered, 0u);  // first delivery in this process
}

// Found by tests/sim: a worker reports the start and the retry of an
// earlier delivery of a task after the task, its lease having run out
// unstarted, went to that same worker again. Attempt numbers alone cannot
// tell the two deliveries apart (an unstarted return keeps the number);
// delivery numbers can.
TEST_F(DispatcherTest, ReportsOfAnEarlierDeliveryAreNotTakenForTheCurrent) {
  DispatcherOptions o;
  o.lease = absl::Seconds(10);
  o.max_worker_crashes = 1;
  Reset(o);
  Push(1, 1);
  Up(w1_, 1);
  const uint32_t first = d_->Find(1)->delivery;
  Advance(absl::Seconds(10));  // unstarted: back to the queue
  d_->Credit(now_, w1_, 1, fx_);
  ASSERT_EQ(d_->stats().in_flight, 1u);
  ASSERT_NE(d_->Find(1)->delivery, first);
  EXPECT_EQ(AttemptOf(1), 1u);  // the same attempt number as the first
  Results stale;
  stale.started.push_back(StartedTask{1, first});
  stale.others.push_back(
      OtherResult{1, 1, Verdict::kRetry, 5, "from the first", first});
  d_->Results(now_, w1_, stale, fx_);
  EXPECT_EQ(d_->stats().started, 0u);
  EXPECT_EQ(d_->stats().retries, 0u);
  EXPECT_EQ(d_->stats().in_flight, 1u);
  // The worker dies: the current delivery never started, so no crash.
  d_->WorkerDown(now_, w1_, /*lost=*/true, fx_);
  EXPECT_EQ(d_->stats().worker_crashes, 0u);
  EXPECT_TRUE(fx_.dead.empty());
}

TEST_F(DispatcherTest, ResultWithoutAStartReportImpliesOne) {
  // What a worker of the previous release sends: no start reports, no
  // delivery numbers (matched by attempt number).
  DispatcherOptions o;
  o.max_attempts = 2;
  Reset(o);
  Push(1, 1);
  Up(w1_, 2);
  auto old_retry = [&] {
    Results r;
    r.others.push_back(OtherResult{1, AttemptOf(1), Verdict::kRetry, 5, "x"});
    d_->Results(now_, w1_, r, fx_);
  };
  old_retry();
  EXPECT_EQ(d_->stats().started, 1u);
  Advance(absl::Milliseconds(5));
  old_retry();
  ASSERT_EQ(fx_.dead.size(), 1u);
  EXPECT_THAT(fx_.dead[0].reason, HasSubstr("max_attempts: 2"));
}

// A worker of an earlier release reports no starts: its deliveries count
// as attempts when sent (that release's rule), so a task hanging there or
// crashing it still ends as a dead letter.
TEST_F(DispatcherTest, WorkerThatReportsNoStartsHasDeliveriesCountedWhenSent) {
  DispatcherOptions o;
  o.max_attempts = 2;
  o.max_worker_crashes = 2;
  o.lease = absl::Seconds(10);
  Reset(o);
  Push(1, 1);
  d_->WorkerUp(now_, w1_, fx_);
  d_->Credit(now_, w1_, 1, fx_, /*reports_starts=*/false);
  ASSERT_THAT(SentTo(w1_), ElementsAre(1));
  EXPECT_EQ(d_->stats().started, 1u);
  EXPECT_EQ(AttemptOf(1), 1u);  // the attempt this delivery carries
  const std::vector<uint64_t> seqs = fx_.frames[0].seqs;
  fx_.Clear();
  d_->SendFailed(now_, w1_, seqs, fx_);  // never reached it: undone
  EXPECT_EQ(d_->stats().started, 0u);
  d_->Credit(now_, w1_, 1, fx_, /*reports_starts=*/false);
  Advance(absl::Seconds(10));  // a lease that runs out is a failed attempt
  EXPECT_EQ(d_->stats().returned, 0u);
  d_->Credit(now_, w1_, 1, fx_, /*reports_starts=*/false);
  ASSERT_EQ(d_->stats().in_flight, 1u);
  d_->WorkerDown(now_, w1_, /*lost=*/true, fx_);
  EXPECT_EQ(d_->stats().worker_crashes, 1u);
  d_->WorkerUp(now_, w2_, fx_);
  d_->Credit(now_, w2_, 1, fx_, /*reports_starts=*/false);
  d_->WorkerDown(now_, w2_, /*lost=*/true, fx_);
  ASSERT_EQ(fx_.dead.size(), 1u);
  EXPECT_THAT(fx_.dead[0].reason, StartsWith("max_worker_crashes: 2"));
}

// P crashes its workers; B only ran beside it. After the crash they go to
// different workers (at most one suspect per worker), and a second suspect
// waits for a worker free of suspects rather than join the first.
TEST_F(DispatcherTest, CrashSuspectsAreSpreadOnePerWorker) {
  Push(1, 2);
  NodeId wx = NodeId::Random();
  Up(wx, 2);
  Start(wx, {1, 2});
  d_->WorkerDown(now_, wx, /*lost=*/true, fx_);
  ASSERT_EQ(d_->stats().worker_crashes, 2u);
  fx_.Clear();
  Up(w1_, 5);
  EXPECT_THAT(SentTo(w1_), ElementsAre(1));
  EXPECT_EQ(d_->stats().backlog, 1u);  // 2 waits: w1 holds a suspect
  Up(w2_, 5);
  EXPECT_THAT(SentTo(w2_), ElementsAre(2));
  // A task that never crashed anything is not held back.
  fx_.Clear();
  Push(3, 3);
  EXPECT_EQ(SentTo(w1_).size() + SentTo(w2_).size(), 1u);
}

TEST_F(DispatcherTest, SameScheduleSameJitter) {
  auto run = [this] {
    Reset(DispatcherOptions{});
    now_ = kT0;
    Push(1, 1);
    Up(w1_, 1);
    Other(w1_, 1, Verdict::kRetry);
    return d_->NextWakeup();
  };
  EXPECT_EQ(run(), run());
}

}  // namespace
}  // namespace fabric::wq
