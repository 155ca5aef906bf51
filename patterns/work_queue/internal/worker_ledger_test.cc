// SPDX-License-Identifier: Apache-2.0
// The worker's ledger alone: credit out of the prefetch window, duplicates,
// owed results and starts, producers that go away.
#include "patterns/work_queue/internal/worker_ledger.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace fabric::wq {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const absl::Time kT0 = absl::UnixEpoch() + absl::Hours(1000);
const std::string kNoReason;
constexpr absl::string_view kQueue = "q";

class WorkerLedgerTest : public ::testing::Test {
 protected:
  explicit WorkerLedgerTest(uint64_t prefetch = 10)
      : ledger_(Options(prefetch)) {}

  static WorkerLedgerOptions Options(uint64_t prefetch) {
    WorkerLedgerOptions o;
    o.prefetch = prefetch;
    o.dedup_window = absl::Minutes(5);
    o.dedup_max = 100;
    return o;
  }
  // The grant in the CREDIT or RESULTS for `node` among `msgs` (0: none).
  static uint64_t GrantTo(const std::vector<LedgerMessage>& msgs,
                          const NodeId& node) {
    for (const LedgerMessage& m : msgs) {
      if (m.to.node == node) return m.grant;
    }
    return 0;
  }
  static Results ResultsTo(const std::vector<LedgerMessage>& msgs,
                           const NodeId& node) {
    for (const LedgerMessage& m : msgs) {
      if (m.to.node == node && m.kind == kResults) {
        absl::StatusOr<Results> r = DecodeResults(m.body);
        EXPECT_TRUE(r.ok());
        return *r;
      }
    }
    return Results{};
  }
  Tasks Frame(const NodeId& producer_id, std::vector<uint64_t> seqs) {
    Tasks t{std::string(kQueue), producer_id, {}};
    for (uint64_t s : seqs) {
      WireTask task;
      task.seq = s;
      task.body = "b";
      task.delivery = 1;
      t.tasks.push_back(task);
    }
    return t;
  }
  std::vector<LedgerMessage> Send() {
    ledger_.Grant();
    return ledger_.TakeMessages(kT0);
  }

  WorkerLedger ledger_;
  NodeId p1_ = NodeId::Random();  // producer nodes
  NodeId p2_ = NodeId::Random();
  NodeId id1_ = NodeId::Random();  // producer (task) ids
};

TEST_F(WorkerLedgerTest, PrefetchIsSharedAmongProducersThatWantWork) {
  ledger_.Demand(kT0, p1_, Demand{"q", 100, 0});
  ledger_.Demand(kT0, p2_, Demand{"q", 100, 0});
  std::vector<LedgerMessage> msgs = Send();
  EXPECT_EQ(GrantTo(msgs, p1_), 5u);
  EXPECT_EQ(GrantTo(msgs, p2_), 5u);
  EXPECT_EQ(ledger_.outstanding(), 10u);
  EXPECT_THAT(Send(), IsEmpty());  // the window is lent out
  // Tasks use credit; results free room that is granted again.
  EXPECT_THAT(ledger_.Tasks(p1_, Frame(id1_, {1, 2})), ElementsAre(0, 1));
  EXPECT_EQ(ledger_.held(), 2u);
  ledger_.Resolve(kT0, ProducerKey{p1_, "q"}, TaskId{id1_, 1}, 1, 1,
                  Verdict::kAck, 0, kNoReason);
  msgs = Send();
  EXPECT_EQ(GrantTo(msgs, p1_), 1u);
  EXPECT_THAT(ResultsTo(msgs, p1_).acked, ElementsAre(1));
}

TEST_F(WorkerLedgerTest, ReturnedCreditAndALostGrantAreForgotten) {
  ledger_.Demand(kT0, p1_, Demand{"q", 100, 0});
  Send();
  ledger_.Demand(kT0, p1_, Demand{"q", 0, 4});  // hands 4 back
  EXPECT_EQ(ledger_.outstanding(), 6u);
  // Still wanting, holding nothing of ours, 1 s after our last grant.
  ledger_.Demand(kT0 + absl::Seconds(2), p1_, Demand{"q", 5, 0});
  EXPECT_EQ(ledger_.outstanding(), 0u);
  EXPECT_EQ(GrantTo(Send(), p1_), 10u);
}

TEST_F(WorkerLedgerTest, AFailedSendTakesTheGrantBack) {
  ledger_.Demand(kT0, p1_, Demand{"q", 100, 0});
  std::vector<LedgerMessage> msgs = Send();
  ASSERT_EQ(msgs.size(), 1u);
  ledger_.SendFailed(msgs[0]);
  EXPECT_EQ(ledger_.outstanding(), 0u);
}

TEST_F(WorkerLedgerTest, RecentlyAckedTasksAreAckedAgainWithoutRunning) {
  ledger_.Demand(kT0, p1_, Demand{"q", 100, 0});
  Send();
  ASSERT_THAT(ledger_.Tasks(p1_, Frame(id1_, {7})), ElementsAre(0));
  ledger_.Resolve(kT0, ProducerKey{p1_, "q"}, TaskId{id1_, 7}, 1, 1,
                  Verdict::kAck, 0, kNoReason);
  Send();
  EXPECT_THAT(ledger_.Tasks(p1_, Frame(id1_, {7})), IsEmpty());
  EXPECT_EQ(ledger_.duplicates(), 1u);
  EXPECT_THAT(ResultsTo(Send(), p1_).acked, ElementsAre(7));
  // Past the window it runs again.
  ledger_.Prune(kT0 + absl::Minutes(6));
  EXPECT_THAT(ledger_.Tasks(p1_, Frame(id1_, {7})), ElementsAre(0));
}

// Handler threads finish in any order and some tasks are not acked: only
// the acked ones are duplicates, not the gaps between them.
TEST_F(WorkerLedgerTest, OutOfOrderAcksLeaveTheGapsRunnable) {
  ASSERT_THAT(ledger_.Tasks(p1_, Frame(id1_, {1, 2, 3, 4, 5, 6})),
              ElementsAre(0, 1, 2, 3, 4, 5));
  const ProducerKey key{p1_, "q"};
  for (uint64_t seq : {5, 3, 1, 6}) {
    ledger_.Resolve(kT0, key, TaskId{id1_, seq}, 1, 1, Verdict::kAck, 0,
                    kNoReason);
  }
  ledger_.Resolve(kT0, key, TaskId{id1_, 2}, 1, 1, Verdict::kRetry, 0, "x");
  ledger_.Prune(kT0);
  // 4 still runs here: a second delivery waits for it; 2 runs again.
  EXPECT_THAT(ledger_.Tasks(p1_, Frame(id1_, {1, 2, 3, 4, 5, 6})),
              ElementsAre(1));
  EXPECT_EQ(ledger_.duplicates(), 5u);
  EXPECT_EQ(ledger_.dedup_ids(), 4u);
}

// dedup_max is 100 here: of 1000 tasks acked in order, the last 100 are
// acked again without running, the ones before run again; in order, they
// take one range.
TEST_F(WorkerLedgerTest, TheLastDedupMaxAcksAreRememberedInLittleMemory) {
  const ProducerKey key{p1_, "q"};
  for (uint64_t seq = 1; seq <= 1000; ++seq) {
    ASSERT_THAT(ledger_.Tasks(p1_, Frame(id1_, {seq})), ElementsAre(0));
    ledger_.Resolve(kT0, key, TaskId{id1_, seq}, 1, 1, Verdict::kAck, 0,
                    kNoReason);
  }
  ledger_.Prune(kT0);
  EXPECT_EQ(ledger_.dedup_ids(), 100u);
  EXPECT_LT(ledger_.dedup_bytes(), 2048u);
  EXPECT_THAT(ledger_.Tasks(p1_, Frame(id1_, {901, 1000})), IsEmpty());
  EXPECT_THAT(ledger_.Tasks(p1_, Frame(id1_, {900})), ElementsAre(0));
  // Once the window has passed, nothing is left.
  ledger_.Prune(kT0 + absl::Minutes(6));
  EXPECT_EQ(ledger_.dedup_ids(), 0u);
}

TEST_F(WorkerLedgerTest, ASecondDeliveryIsOwedTheRunsStartAndResult) {
  // A restarted producer (another node, same task ids) sends a task that
  // is running here.
  ledger_.Demand(kT0, p1_, Demand{"q", 100, 0});
  ledger_.Demand(kT0, p2_, Demand{"q", 100, 0});
  Send();
  ASSERT_THAT(ledger_.Tasks(p1_, Frame(id1_, {3})), ElementsAre(0));
  EXPECT_THAT(ledger_.Tasks(p2_, Frame(id1_, {3})), IsEmpty());
  EXPECT_THAT(ledger_.OwedTo(TaskId{id1_, 3}, p1_), ElementsAre(p2_));
  ledger_.Started(ProducerKey{p1_, "q"}, TaskId{id1_, 3}, 1);
  std::vector<LedgerMessage> msgs = Send();
  EXPECT_THAT(ResultsTo(msgs, p1_).started, ElementsAre(StartedTask{3, 1}));
  EXPECT_THAT(ResultsTo(msgs, p2_).started, ElementsAre(StartedTask{3, 1}));
  ledger_.Resolve(kT0, ProducerKey{p1_, "q"}, TaskId{id1_, 3}, 1, 1,
                  Verdict::kRetry, 50, "busy");
  msgs = Send();
  for (const NodeId& p : {p1_, p2_}) {
    Results r = ResultsTo(msgs, p);
    ASSERT_EQ(r.others.size(), 1u);
    EXPECT_EQ(r.others[0].verdict, Verdict::kRetry);
    EXPECT_EQ(r.others[0].delay_ms, 50u);
  }
}

// A run longer than the lease: the producer sends the task again to this
// worker, which must say at once that the new delivery started (it is
// answered by the run in progress), or the producer would count it as
// unstarted and send it again forever.
TEST_F(WorkerLedgerTest, ADeliveryOfARunningTaskIsReportedStartedAtOnce) {
  ledger_.Demand(kT0, p1_, Demand{"q", 100, 0});
  Send();
  ASSERT_THAT(ledger_.Tasks(p1_, Frame(id1_, {4})), ElementsAre(0));
  ledger_.Started(ProducerKey{p1_, "q"}, TaskId{id1_, 4}, 1);
  Send();
  Tasks again = Frame(id1_, {4});
  again.tasks[0].delivery = 2;
  EXPECT_THAT(ledger_.Tasks(p1_, again), IsEmpty());
  EXPECT_THAT(ResultsTo(Send(), p1_).started, ElementsAre(StartedTask{4, 2}));
  // Not for a task that only waits here.
  ASSERT_THAT(ledger_.Tasks(p1_, Frame(id1_, {5})), ElementsAre(0));
  Tasks waiting = Frame(id1_, {5});
  waiting.tasks[0].delivery = 2;
  EXPECT_THAT(ledger_.Tasks(p1_, waiting), IsEmpty());
  EXPECT_THAT(ResultsTo(Send(), p1_).started, IsEmpty());
}

TEST_F(WorkerLedgerTest, NothingIsReportedToAProducerThatIsGone) {
  ledger_.Demand(kT0, p1_, Demand{"q", 100, 0});
  Send();
  ASSERT_THAT(ledger_.Tasks(p1_, Frame(id1_, {1, 2})), ElementsAre(0, 1));
  ledger_.Started(ProducerKey{p1_, "q"}, TaskId{id1_, 1}, 1);
  ledger_.ProducerGone(p1_, "");
  EXPECT_EQ(ledger_.outstanding(), 0u);
  for (uint64_t seq : {1, 2}) {
    ledger_.Resolve(kT0, ProducerKey{p1_, "q"}, TaskId{id1_, seq}, 1, 1,
                    Verdict::kAck, 0, kNoReason);
  }
  EXPECT_EQ(ledger_.held(), 0u);
  EXPECT_THAT(Send(), IsEmpty());
}

TEST_F(WorkerLedgerTest, AClosingWorkerGrantsNothing) {
  ledger_.StopGranting();
  ledger_.Demand(kT0, p1_, Demand{"q", 100, 0});
  EXPECT_THAT(Send(), IsEmpty());
}

}  // namespace
}  // namespace fabric::wq
