// SPDX-License-Identifier: Apache-2.0
// Producers and workers on several nodes of one process, over real loopback
// sockets and real spool files. Multi-process scenarios (SIGKILL) are in
// tests/integration/.
#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "patterns/work_queue/producer.h"
#include "patterns/work_queue/worker.h"
#include "tests/testing/node_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::testing::IsOk;
using ::fabric::testing::StatusIs;
using ::fabric::testing::WaitUntil;

constexpr absl::Duration kWait = absl::Seconds(30);

// What handlers saw. Thread-safe.
class Seen {
 public:
  void Add(const std::string& worker, const Task& task) {
    absl::MutexLock lock(&mu_);
    by_body_[task.body]++;
    by_worker_[worker]++;
    order_.push_back(task.body);
    attempts_[task.body] = task.attempt;
    if (task.redelivered) redelivered_.insert(task.body);
  }
  int Count(const std::string& body) {
    absl::MutexLock lock(&mu_);
    auto it = by_body_.find(body);
    return it == by_body_.end() ? 0 : it->second;
  }
  int Worker(const std::string& worker) {
    absl::MutexLock lock(&mu_);
    return by_worker_[worker];
  }
  size_t Distinct() {
    absl::MutexLock lock(&mu_);
    return by_body_.size();
  }
  uint32_t Attempt(const std::string& body) {
    absl::MutexLock lock(&mu_);
    return attempts_[body];
  }
  bool Redelivered(const std::string& body) {
    absl::MutexLock lock(&mu_);
    return redelivered_.contains(body);
  }
  std::vector<std::string> Order() {
    absl::MutexLock lock(&mu_);
    return order_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, int> by_body_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> by_worker_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint32_t> attempts_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> redelivered_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> order_ ABSL_GUARDED_BY(mu_);
};

class WorkQueueTest : public ::testing::Test {
 protected:
  std::unique_ptr<Node> StartNode(const std::string& name) {
    return ::fabric::testing::StartLoopbackNode(name, cluster_, port_);
  }
  ProducerOptions POptions() {
    ProducerOptions o;
    o.queue = "jobs";
    o.retry_backoff = absl::Milliseconds(10);
    return o;
  }
  std::unique_ptr<Producer> StartProducer(Node& node, ProducerOptions o) {
    absl::StatusOr<std::unique_ptr<Producer>> p =
        Producer::Create(node, std::move(o));
    EXPECT_THAT(p, IsOk());
    return p.ok() ? std::move(*p) : nullptr;
  }
  std::unique_ptr<Worker> StartWorker(Node& node, const std::string& label,
                                      TaskHandler inner = nullptr,
                                      int prefetch = 16) {
    WorkerOptions o;
    o.queues = {"jobs"};
    o.prefetch = prefetch;
    o.concurrency = 2;
    o.handler = [this, label, inner](const Task& t, TaskContext& ctx) {
      seen_.Add(label, t);
      return inner ? inner(t, ctx) : Outcome::Ack();
    };
    absl::StatusOr<std::unique_ptr<Worker>> w =
        Worker::Create(node, std::move(o));
    EXPECT_THAT(w, IsOk());
    return w.ok() ? std::move(*w) : nullptr;
  }
  static bool WaitWorkers(const Producer& p, uint64_t n) {
    return WaitUntil([&] { return p.Stats().workers >= n; }, kWait);
  }

  // A producer process restarting while `worker` runs its task: producer
  // node p1 (on spool `o.spool_dir`) pushes "slow", waits until the
  // handler `started` and closes as a process exit would; p2 starts on
  // the same spool and delivers the task again. Returns p2 once `worker`
  // counted that delivery as a duplicate; a null producer if it failed.
  struct Restarted {
    std::unique_ptr<Node> node;
    std::unique_ptr<Producer> producer;
  };
  Restarted RestartWhileRunning(const ProducerOptions& o, const Worker& worker,
                                absl::Notification& started) {
    {
      auto pn = StartNode("p1");
      auto producer = StartProducer(*pn, o);
      if (producer == nullptr || !WaitWorkers(*producer, 1)) return {};
      EXPECT_THAT(producer->Push("slow").status(), IsOk());
      if (!started.WaitForNotificationWithTimeout(kWait)) return {};
      producer->Close();
      pn->Close();
      pn->Join();
    }
    Restarted r{StartNode("p2"), nullptr};
    r.producer = StartProducer(*r.node, o);
    if (r.producer == nullptr || !WaitWorkers(*r.producer, 1) ||
        !WaitUntil([&] { return worker.Stats().duplicates >= 1; }, kWait)) {
      r.producer.reset();
    }
    return r;
  }

  const std::string cluster_ = ::fabric::testing::UniqueClusterName("wq");
  const uint16_t port_ = ::fabric::testing::FreeUdpPort();
  Seen seen_;
};

TEST_F(WorkQueueTest, TasksReachWorkersOnOtherNodesAndComplete) {
  auto pn = StartNode("producer");
  auto wn1 = StartNode("w1");
  auto wn2 = StartNode("w2");
  auto slow = [](const Task&, TaskContext&) {
    absl::SleepFor(absl::Milliseconds(1));
    return Outcome::Ack();
  };
  auto w1 = StartWorker(*wn1, "w1", slow);
  auto w2 = StartWorker(*wn2, "w2", slow);
  std::atomic<int> completions{0};
  ProducerOptions o = POptions();
  o.on_completed = [&](const Completion& c) {
    if (c.kind == Completion::Kind::kAcked) completions++;
  };
  auto producer = StartProducer(*pn, o);
  ASSERT_TRUE(WaitWorkers(*producer, 2));
  for (int i = 0; i < 500; ++i) {
    FABRIC_ASSERT_OK_AND_ASSIGN(TaskId id,
                                producer->Push(absl::StrCat("task-", i)));
    EXPECT_EQ(id.seq, static_cast<uint64_t>(i + 1));
  }
  FABRIC_ASSERT_OK(producer->WaitCompleted(kWait));
  EXPECT_TRUE(WaitUntil([&] { return completions.load() == 500; }, kWait));
  EXPECT_EQ(seen_.Distinct(), 500u);
  for (int i = 0; i < 500; ++i)
    EXPECT_EQ(seen_.Count(absl::StrCat("task-", i)), 1);
  // Credit-based dispatch spreads the work over both workers.
  EXPECT_GT(seen_.Worker("w1"), 0);
  EXPECT_GT(seen_.Worker("w2"), 0);
  ProducerStats s = producer->Stats();
  EXPECT_EQ(s.acked, 500u);
  EXPECT_EQ(s.dead_lettered, 0u);
  EXPECT_EQ(s.in_flight, 0u);
}

TEST_F(WorkQueueTest, ProducerAndWorkerOnTheSameNodeUseTheLocalLoop) {
  auto node = StartNode("solo");
  auto worker = StartWorker(*node, "self");
  auto producer = StartProducer(*node, POptions());
  ASSERT_TRUE(WaitWorkers(*producer, 1));
  for (int i = 0; i < 50; ++i) {
    FABRIC_ASSERT_OK(producer->PushAsync(absl::StrCat("t", i)).status());
  }
  FABRIC_ASSERT_OK(producer->WaitCompleted(kWait));
  EXPECT_EQ(seen_.Distinct(), 50u);
}

// Regression: a closing worker used to grant credit again for the tasks it
// handed back, so a producer on the same node sent them straight back and
// the two spun on the engine thread (in the plugin's local loop), never
// reaching the worker's removal: Close did not return. It takes a handler
// thread handing back the rest of its batch just before Close asks the
// engine to remove the worker, so the test closes busy workers many times.
TEST_F(WorkQueueTest, ClosingAWorkerWithItsProducerOnTheSameNodeReturns) {
  auto node = StartNode("solo");
  auto producer = StartProducer(*node, POptions());
  for (int round = 0; round < 40; ++round) {
    for (int i = 0; i < 100; ++i) {
      FABRIC_ASSERT_OK(producer->PushAsync(absl::StrCat("t", i)).status());
    }
    std::atomic<int> calls{0};
    WorkerOptions o;
    o.queues = {"jobs"};
    o.concurrency = 2;
    o.prefetch = 32;  // less than the backlog: the producer keeps asking
    o.handler = [&calls](const Task&, TaskContext&) {
      calls.fetch_add(1);
      absl::SleepFor(absl::Microseconds(200));
      return Outcome::Ack();
    };
    absl::StatusOr<std::unique_ptr<Worker>> worker =
        Worker::Create(*node, std::move(o));
    ASSERT_THAT(worker, IsOk());
    ASSERT_TRUE(
        WaitUntil([&] { return calls.load() >= 1 + round % 5; }, kWait));
    absl::Notification closed;
    std::thread closer([&] {
      (*worker)->Close();
      closed.Notify();
    });
    const bool returned = closed.WaitForNotificationWithTimeout(kWait);
    ASSERT_TRUE(returned) << "round " << round;
    closer.join();
  }
  auto heir = StartWorker(*node, "heir");
  FABRIC_ASSERT_OK(producer->WaitCompleted(kWait));
  EXPECT_EQ(producer->Stats().dead_lettered, 0u);
}

TEST_F(WorkQueueTest, AcceptWorkerKeepsTasksFromRefusedWorkers) {
  auto pn = StartNode("p");
  auto rn = StartNode("r");
  auto wn = StartNode("w");
  FABRIC_ASSERT_OK(rn->SetHeader("role", "relay"));
  auto local = StartWorker(*pn, "local");
  auto refused = StartWorker(*rn, "r");
  auto accepted = StartWorker(*wn, "w");
  std::atomic<int> asked_local{0};
  ProducerOptions o = POptions();
  o.accept_worker = [&](const PeerInfo* peer) {
    if (peer == nullptr) {
      asked_local++;
      return false;
    }
    return !peer->headers.contains("role");
  };
  auto producer = StartProducer(*pn, o);
  ASSERT_TRUE(WaitWorkers(*producer, 1));
  for (int i = 0; i < 100; ++i) {
    FABRIC_ASSERT_OK(producer->PushAsync(absl::StrCat("t", i)).status());
  }
  FABRIC_ASSERT_OK(producer->WaitCompleted(kWait));
  EXPECT_EQ(seen_.Distinct(), 100u);
  EXPECT_EQ(seen_.Worker("w"), 100);
  EXPECT_EQ(seen_.Worker("r"), 0);
  EXPECT_EQ(seen_.Worker("local"), 0);
  EXPECT_GT(asked_local.load(), 0);
}

// A handler thread takes several waiting tasks at once. Those done must be
// reported while a later one still runs, or a long task would hold back
// every ack before it (and a crash would turn them into redeliveries).
TEST_F(WorkQueueTest, AcksOfFinishedTasksDoNotWaitForTheRestOfTheBatch) {
  auto pn = StartNode("p");
  auto wn = StartNode("w");
  auto producer = StartProducer(*pn, POptions());
  // Queued before any worker exists, so they arrive in one frame and one
  // handler thread takes them together.
  for (int i = 0; i < 30; ++i) {
    FABRIC_ASSERT_OK(producer->PushAsync(absl::StrCat("t", i)).status());
  }
  absl::Notification release;
  WorkerOptions o;
  o.queues = {"jobs"};
  o.concurrency = 1;
  o.prefetch = 256;
  o.handler = [&](const Task& t, TaskContext&) {
    if (t.body == "t20") {
      release.WaitForNotificationWithTimeout(kWait);
    } else {
      absl::SleepFor(absl::Milliseconds(2));
    }
    return Outcome::Ack();
  };
  absl::StatusOr<std::unique_ptr<Worker>> worker =
      Worker::Create(*wn, std::move(o));
  ASSERT_THAT(worker, IsOk());
  EXPECT_TRUE(WaitUntil([&] { return producer->Stats().acked >= 20; }, kWait))
      << producer->Stats().acked << " acked while t20 runs";
  release.Notify();
  FABRIC_ASSERT_OK(producer->WaitCompleted(kWait));
}

// Close hands back what a handler thread took but did not start, instead
// of running it after Close (the batch of one thread, one frame).
TEST_F(WorkQueueTest, CloseHandsBackTheUnstartedRestOfABatch) {
  auto pn = StartNode("p");
  auto wn = StartNode("w");
  auto wn2 = StartNode("w2");
  auto producer = StartProducer(*pn, POptions());
  for (int i = 0; i < 30; ++i) {
    FABRIC_ASSERT_OK(producer->PushAsync(absl::StrCat("t", i)).status());
  }
  absl::Notification started, release;
  WorkerOptions o;
  o.queues = {"jobs"};
  o.concurrency = 1;
  o.prefetch = 256;
  o.handler = [&](const Task& t, TaskContext&) {
    seen_.Add("first", t);
    if (!started.HasBeenNotified()) started.Notify();
    release.WaitForNotificationWithTimeout(kWait);
    return Outcome::Ack();
  };
  absl::StatusOr<std::unique_ptr<Worker>> worker =
      Worker::Create(*wn, std::move(o));
  ASSERT_THAT(worker, IsOk());
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(kWait));
  std::thread closer([&] { (*worker)->Close(); });
  // Close is under way (it waits for the running handler): let it finish.
  ASSERT_TRUE(WaitUntil([&] { return producer->Stats().workers == 0; }, kWait));
  release.Notify();
  closer.join();
  auto heir = StartWorker(*wn2, "heir");
  FABRIC_ASSERT_OK(producer->WaitCompleted(kWait));
  EXPECT_EQ(seen_.Worker("first"), 1);
  EXPECT_EQ(seen_.Distinct(), 30u);
  EXPECT_GE((*worker)->Stats().released, 29u);
}

// A worker refused after it granted credit (its HELLO changed) gets that
// credit back, so it can serve other producers.
TEST_F(WorkQueueTest, RefusingAWorkerHandsItsCreditBack) {
  auto pn = StartNode("p");
  auto pn2 = StartNode("p2");
  auto wn = StartNode("w");
  auto worker = StartWorker(*wn, "w", nullptr, /*prefetch=*/4);
  ProducerOptions o = POptions();
  o.accept_worker = [](const PeerInfo* peer) {
    return peer != nullptr && !peer->headers.contains("role");
  };
  auto picky = StartProducer(*pn, o);
  ASSERT_TRUE(WaitWorkers(*picky, 1));
  // It holds the worker's whole prefetch as credit once it has a backlog.
  FABRIC_ASSERT_OK(picky->Push("first").status());
  FABRIC_ASSERT_OK(picky->WaitCompleted(kWait));
  FABRIC_ASSERT_OK(wn->SetHeader("role", "relay"));
  ASSERT_TRUE(WaitUntil([&] { return picky->Stats().workers == 0; }, kWait));
  auto other = StartProducer(*pn2, POptions());
  ASSERT_TRUE(WaitWorkers(*other, 1));
  for (int i = 0; i < 20; ++i) {
    FABRIC_ASSERT_OK(other->PushAsync(absl::StrCat("t", i)).status());
  }
  FABRIC_ASSERT_OK(other->WaitCompleted(kWait));
  EXPECT_EQ(seen_.Distinct(), 21u);
}

TEST_F(WorkQueueTest, RetryRedeliversWithAttemptCount) {
  auto pn = StartNode("p");
  auto wn = StartNode("w");
  auto worker = StartWorker(*wn, "w", [](const Task& t, TaskContext&) {
    return t.attempt < 3 ? Outcome::RetryAfter(absl::Milliseconds(20), "busy")
                         : Outcome::Ack();
  });
  auto producer = StartProducer(*pn, POptions());
  ASSERT_TRUE(WaitWorkers(*producer, 1));
  FABRIC_ASSERT_OK(producer->Push("flaky").status());
  FABRIC_ASSERT_OK(producer->WaitCompleted(kWait));
  EXPECT_EQ(seen_.Count("flaky"), 3);
  EXPECT_EQ(seen_.Attempt("flaky"), 3u);
  EXPECT_TRUE(seen_.Redelivered("flaky"));
  EXPECT_EQ(producer->Stats().retries, 2u);
  EXPECT_EQ(producer->Stats().acked, 1u);
}

TEST_F(WorkQueueTest, MaxAttemptsAndRejectMakeDeadLetters) {
  auto pn = StartNode("p");
  auto wn = StartNode("w");
  auto worker = StartWorker(*wn, "w", [](const Task& t, TaskContext&) {
    if (t.body == "poison") return Outcome::Reject("cannot parse");
    return Outcome::RetryAfter(absl::ZeroDuration(), "always fails");
  });
  std::vector<Completion> done;
  absl::Mutex mu;
  ProducerOptions o = POptions();
  o.max_attempts = 3;
  o.on_completed = [&](const Completion& c) {
    absl::MutexLock lock(&mu);
    done.push_back(c);
  };
  auto producer = StartProducer(*pn, o);
  ASSERT_TRUE(WaitWorkers(*producer, 1));
  FABRIC_ASSERT_OK(producer->Push("doomed").status());
  FABRIC_ASSERT_OK(producer->Push("poison").status());
  FABRIC_ASSERT_OK(producer->WaitCompleted(kWait));
  EXPECT_EQ(seen_.Count("doomed"), 3);
  EXPECT_EQ(seen_.Count("poison"), 1);
  std::vector<DeadLetter> dead = producer->MemoryDeadLetters();
  ASSERT_EQ(dead.size(), 2u);
  std::map<std::string, DeadLetter> by_body;
  for (const DeadLetter& d : dead) by_body[d.task.body] = d;
  EXPECT_THAT(by_body["doomed"].reason, ::testing::HasSubstr("max_attempts"));
  EXPECT_EQ(by_body["doomed"].attempts, 3u);
  EXPECT_THAT(by_body["poison"].reason,
              ::testing::HasSubstr("rejected: cannot parse"));
  EXPECT_EQ(by_body["poison"].attempts, 1u);
  ASSERT_TRUE(WaitUntil(
      [&] {
        absl::MutexLock lock(&mu);
        return done.size() == 2;
      },
      kWait));
  absl::MutexLock lock(&mu);
  for (const Completion& c : done) {
    EXPECT_EQ(c.kind, Completion::Kind::kDeadLettered);
  }
}

TEST_F(WorkQueueTest, SpooledDeadLettersAreReadableAtOnceAndAfterClose) {
  auto pn = StartNode("p");
  auto wn = StartNode("w");
  auto worker = StartWorker(*wn, "w", [](const Task&, TaskContext&) {
    return Outcome::Reject("cannot parse");
  });
  ProducerOptions o = POptions();
  o.spool_dir = ::fabric::testing::MakeTempDir("wq-dead");
  auto producer = StartProducer(*pn, o);
  FABRIC_ASSERT_OK(producer->Push("poison").status());
  FABRIC_ASSERT_OK(producer->WaitCompleted(kWait));
  // The completion was reported: the dead letter is there, on disk or not.
  FABRIC_ASSERT_OK_AND_ASSIGN(std::vector<DeadLetter> dead,
                              producer->DeadLetters());
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].task.body, "poison");
  EXPECT_THAT(dead[0].reason, ::testing::HasSubstr("rejected: cannot parse"));
  producer->Close();
  FABRIC_ASSERT_OK_AND_ASSIGN(dead, producer->DeadLetters());
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].task.body, "poison");
}

TEST_F(WorkQueueTest, ExtendedLeaseKeepsALongTaskFromRedelivery) {
  auto pn = StartNode("p");
  auto wn = StartNode("w");
  auto worker = StartWorker(*wn, "w", [](const Task&, TaskContext& ctx) {
    for (int i = 0; i < 15; ++i) {
      EXPECT_THAT(ctx.ExtendLease(absl::Seconds(2)), IsOk());
      absl::SleepFor(absl::Milliseconds(200));
    }
    return Outcome::Ack();
  });
  ProducerOptions o = POptions();
  o.lease = absl::Seconds(1);
  auto producer = StartProducer(*pn, o);
  ASSERT_TRUE(WaitWorkers(*producer, 1));
  FABRIC_ASSERT_OK(producer->Push("long").status());
  FABRIC_ASSERT_OK(producer->WaitCompleted(kWait));
  EXPECT_EQ(seen_.Count("long"), 1);
  EXPECT_EQ(producer->Stats().lease_expired, 0u);
}

TEST_F(WorkQueueTest, ExpiredLeaseRedeliversAndTheLateAckStillCounts) {
  auto pn = StartNode("p");
  auto wn1 = StartNode("w1");
  absl::Notification release;
  auto w1 = StartWorker(*wn1, "stuck", [&](const Task&, TaskContext&) {
    release.WaitForNotificationWithTimeout(kWait);
    return Outcome::Ack();
  });
  ProducerOptions o = POptions();
  o.lease = absl::Milliseconds(300);
  o.max_attempts = 1000;  // redeliveries to the stuck worker until w2 is up
  auto producer = StartProducer(*pn, o);
  ASSERT_TRUE(WaitWorkers(*producer, 1));
  FABRIC_ASSERT_OK(producer->Push("slow").status());
  ASSERT_TRUE(WaitUntil([&] { return seen_.Count("slow") >= 1; }, kWait));
  // The lease runs out while the handler is stuck; a second worker gets it.
  auto wn2 = StartNode("w2");
  auto w2 = StartWorker(*wn2, "fresh");
  FABRIC_ASSERT_OK(producer->WaitCompleted(kWait));
  EXPECT_GE(producer->Stats().lease_expired, 1u);
  EXPECT_EQ(seen_.Worker("fresh"), 1);
  release.Notify();
}

TEST_F(WorkQueueTest, DeadWorkerNodeMeansRedeliveryElsewhere) {
  auto pn = StartNode("p");
  auto wn1 = StartNode("w1");
  auto wn2 = StartNode("w2");
  absl::Notification release;
  auto w1 = StartWorker(*wn1, "dying", [&](const Task&, TaskContext&) {
    release.WaitForNotificationWithTimeout(kWait);
    return Outcome::Ack();
  });
  auto producer = StartProducer(*pn, POptions());
  ASSERT_TRUE(WaitWorkers(*producer, 1));
  for (int i = 0; i < 10; ++i) {
    FABRIC_ASSERT_OK(producer->Push(absl::StrCat("t", i)).status());
  }
  ASSERT_TRUE(WaitUntil([&] { return seen_.Worker("dying") >= 2; }, kWait));
  auto w2 = StartWorker(*wn2, "heir");
  // The first worker's node goes away with its tasks (lease is 30 s, so
  // only the departure can explain a redelivery).
  wn1->Close();
  FABRIC_ASSERT_OK(producer->WaitCompleted(kWait));
  EXPECT_GE(producer->Stats().worker_lost, 1u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_GE(seen_.Count(absl::StrCat("t", i)), 1) << i;
  }
  release.Notify();
  w1.reset();
}

// A producer process restarts while a worker still runs one of its tasks:
// the new run delivers the task again, and the worker answers that
// delivery with the result of the run in progress instead of leaving it to
// the lease.
TEST_F(WorkQueueTest, RestartedProducerGetsTheResultOfARunInProgress) {
  const std::string dir = ::fabric::testing::MakeTempDir("wq-owed");
  auto wn = StartNode("w");
  absl::Notification started, release;
  auto worker = StartWorker(*wn, "w", [&](const Task&, TaskContext&) {
    if (!started.HasBeenNotified()) started.Notify();
    release.WaitForNotificationWithTimeout(kWait);
    return Outcome::Ack();
  });
  ProducerOptions o = POptions();
  o.spool_dir = dir;
  o.lease = absl::Minutes(10);  // only the owed result can end it in time
  Restarted p2 = RestartWhileRunning(o, *worker, started);
  ASSERT_NE(p2.producer, nullptr);
  Producer* producer = p2.producer.get();
  release.Notify();
  FABRIC_ASSERT_OK(producer->WaitCompleted(kWait));
  EXPECT_EQ(seen_.Count("slow"), 1);
  EXPECT_EQ(producer->Stats().acked, 1u);
}

// The same, while the run extends its lease: the restarted producer's
// delivery waits for that run, so its lease is extended too rather than
// running out and being redelivered over and over.
TEST_F(WorkQueueTest, ExtendingALeaseAlsoExtendsADeliveryWaitingForTheRun) {
  const std::string dir = ::fabric::testing::MakeTempDir("wq-owed-extend");
  auto wn = StartNode("w");
  absl::Notification started, release;
  auto worker = StartWorker(*wn, "w", [&](const Task&, TaskContext& ctx) {
    if (!started.HasBeenNotified()) started.Notify();
    const absl::Time give_up = absl::Now() + kWait;
    while (!release.WaitForNotificationWithTimeout(absl::Milliseconds(100)) &&
           absl::Now() < give_up) {
      EXPECT_THAT(ctx.ExtendLease(absl::Seconds(5)), IsOk());
    }
    return Outcome::Ack();
  });
  ProducerOptions o = POptions();
  o.spool_dir = dir;
  o.lease = absl::Seconds(2);
  Restarted p2 = RestartWhileRunning(o, *worker, started);
  ASSERT_NE(p2.producer, nullptr);
  Producer* producer = p2.producer.get();
  // Two and a half leases long: without the extension the lease runs out
  // in this window (and again after every redelivery).
  EXPECT_FALSE(WaitUntil([&] { return producer->Stats().lease_expired > 0; },
                         absl::Seconds(5)));
  release.Notify();
  FABRIC_ASSERT_OK(producer->WaitCompleted(kWait));
  EXPECT_EQ(seen_.Count("slow"), 1);
  EXPECT_EQ(producer->Stats().acked, 1u);
  EXPECT_EQ(producer->Stats().lease_expired, 0u);
}

TEST_F(WorkQueueTest, SpoolKeepsUnackedTasksAndSequenceAcrossRestarts) {
  const std::string dir = ::fabric::testing::MakeTempDir("wq-spool");
  auto pn = StartNode("p");
  ProducerOptions o = POptions();
  o.spool_dir = dir;
  {
    auto producer = StartProducer(*pn, o);
    for (int i = 1; i <= 100; ++i) {
      FABRIC_ASSERT_OK(producer->Push(absl::StrCat("s", i)).status());
    }
    EXPECT_EQ(producer->confirmed_seq(), 100u);
  }
  auto wn = StartNode("w");
  auto worker = StartWorker(*wn, "w");
  auto producer = StartProducer(*pn, o);
  EXPECT_EQ(producer->Stats().recovered, 100u);
  FABRIC_ASSERT_OK_AND_ASSIGN(TaskId id, producer->Push("s101"));
  EXPECT_EQ(id.seq, 101u);
  FABRIC_ASSERT_OK(producer->WaitCompleted(kWait));
  EXPECT_EQ(seen_.Distinct(), 101u);
  EXPECT_TRUE(seen_.Redelivered("s1"));
  EXPECT_FALSE(seen_.Redelivered("s101"));
  producer.reset();
  // Everything acked: a third run has nothing to send, and seqs go on.
  auto again = StartProducer(*pn, o);
  EXPECT_EQ(again->Stats().recovered, 0u);
  FABRIC_ASSERT_OK_AND_ASSIGN(TaskId next, again->Push("s102"));
  EXPECT_EQ(next.seq, 102u);
}

TEST_F(WorkQueueTest, LimitAppliesBackpressureThenResourceExhausted) {
  auto pn = StartNode("p");
  ProducerOptions o = POptions();
  o.max_bytes = 1000;
  o.push_timeout = absl::Milliseconds(200);
  auto producer = StartProducer(*pn, o);
  const std::string body(100, 'b');
  for (int i = 0; i < 10; ++i) FABRIC_ASSERT_OK(producer->Push(body).status());
  EXPECT_THAT(producer->Push(body),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(producer->Stats().rejected_pushes, 1u);
  // A worker drains the queue and frees room.
  auto wn = StartNode("w");
  auto worker = StartWorker(*wn, "w");
  FABRIC_ASSERT_OK(producer->WaitCompleted(kWait));
  FABRIC_EXPECT_OK(producer->Push(body).status());
}

// PushAsyncWithin waits for room only as long as asked, and only a last try
// counts as a rejected push: a caller waiting in slices (the Python
// binding) counts one rejection per push it gives up, not one per slice.
TEST_F(WorkQueueTest, PushAsyncWithinWaitsItsSliceAndCountsOnlyTheLastTry) {
  auto pn = StartNode("p");
  ProducerOptions o = POptions();
  o.max_bytes = 200;
  auto producer = StartProducer(*pn, o);
  FABRIC_ASSERT_OK(producer->Push(std::string(150, 'x')).status());
  const std::string big(150, 'y');
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(producer->PushAsyncWithin(big, {}, absl::Milliseconds(20),
                                          /*last_try=*/false),
                StatusIs(absl::StatusCode::kDeadlineExceeded));
  }
  EXPECT_EQ(producer->Stats().rejected_pushes, 0u);
  EXPECT_THAT(producer->PushAsyncWithin(big, {}, absl::Milliseconds(20),
                                        /*last_try=*/true),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(producer->Stats().rejected_pushes, 1u);
  // Once a worker acks, there is room again.
  auto wn = StartNode("w");
  auto worker = StartWorker(*wn, "w");
  FABRIC_ASSERT_OK(producer->PushAsyncWithin(big, {}, kWait, false).status());
  FABRIC_ASSERT_OK(producer->WaitCompleted(kWait));
}

TEST_F(WorkQueueTest, SpoolLimitIsResourceExhausted) {
  auto pn = StartNode("p");
  ProducerOptions o = POptions();
  o.spool_dir = ::fabric::testing::MakeTempDir("wq-limit");
  o.max_bytes = 2000;
  o.push_timeout = absl::Milliseconds(200);
  auto producer = StartProducer(*pn, o);
  absl::Status last;
  for (int i = 0; i < 100 && last.ok(); ++i) {
    last = producer->Push(std::string(100, 'x')).status();
  }
  EXPECT_THAT(last, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(std::string(last.message()), ::testing::HasSubstr("limit"));
}

TEST_F(WorkQueueTest, CreditIsSharedFairlyBetweenProducers) {
  auto pa = StartNode("pa");
  auto pb = StartNode("pb");
  auto wn = StartNode("w");
  auto worker = StartWorker(
      *wn, "w",
      [](const Task&, TaskContext&) {
        absl::SleepFor(absl::Milliseconds(1));
        return Outcome::Ack();
      },
      /*prefetch=*/4);
  auto a = StartProducer(*pa, POptions());
  auto b = StartProducer(*pb, POptions());
  ASSERT_TRUE(WaitWorkers(*a, 1));
  ASSERT_TRUE(WaitWorkers(*b, 1));
  for (int i = 0; i < 200; ++i) {
    FABRIC_ASSERT_OK(a->PushAsync(absl::StrCat("a", i)).status());
    FABRIC_ASSERT_OK(b->PushAsync(absl::StrCat("b", i)).status());
  }
  FABRIC_ASSERT_OK(a->WaitCompleted(kWait));
  FABRIC_ASSERT_OK(b->WaitCompleted(kWait));
  // While both have a backlog, neither gets far ahead of the other.
  std::vector<std::string> order = seen_.Order();
  ASSERT_GE(order.size(), 400u);
  int from_a = 0;
  for (size_t i = 0; i < 200; ++i) from_a += order[i][0] == 'a';
  EXPECT_GT(from_a, 50);
  EXPECT_LT(from_a, 150);
}

TEST_F(WorkQueueTest, BadOptionsAndDuplicatesAreRefused) {
  auto node = StartNode("n");
  ProducerOptions bad = POptions();
  bad.queue = "";
  EXPECT_THAT(Producer::Create(*node, bad),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto p = StartProducer(*node, POptions());
  EXPECT_THAT(Producer::Create(*node, POptions()),
              StatusIs(absl::StatusCode::kAlreadyExists));
  WorkerOptions w;
  w.queues = {"jobs"};
  EXPECT_THAT(Worker::Create(*node, w),
              StatusIs(absl::StatusCode::kInvalidArgument));  // no handler
  EXPECT_THAT(p->Push(std::string(20 << 20, 'x')),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace fabric

namespace fabric {
namespace {

// A node that speaks the work-queue kinds badly.
class GarbagePlugin : public Plugin {
 public:
  std::vector<uint16_t> kinds() const override { return {110, 112, 113}; }
  void OnMessage(NodeContext&, const PeerInfo&, uint16_t,
                 absl::string_view) override {}
};

TEST_F(WorkQueueTest, MalformedFramesAreCountedAndWorkGoesOn) {
  auto wn = StartNode("w");
  auto pn = StartNode("p");
  auto rogue = StartNode("rogue");
  FABRIC_ASSERT_OK(rogue->AttachPlugin(std::make_shared<GarbagePlugin>()));
  auto worker = StartWorker(*wn, "w");
  auto producer = StartProducer(*pn, POptions());
  ASSERT_TRUE(WaitWorkers(*producer, 1));
  ASSERT_TRUE(WaitUntil(
      [&] {
        absl::StatusOr<std::vector<PeerInfo>> peers = rogue->Peers();
        return peers.ok() && peers->size() == 2;
      },
      kWait));
  const NodeId worker_id = wn->id();
  const NodeId producer_id = pn->id();
  // Sent again until counted: a send before the rogue's links are up is
  // refused (kUnavailable), not queued.
  ASSERT_TRUE(WaitUntil(
      [&] {
        (void)rogue->Post([=](NodeContext& ctx) {
          (void)ctx.Send(worker_id, 110, "\xc1 not msgpack");
          (void)ctx.Send(worker_id, 112, "\xc1 not msgpack");
          (void)ctx.Send(producer_id, 113, "\x93\x01");
        });
        absl::SleepFor(absl::Milliseconds(20));
        return worker->Stats().malformed >= 2 &&
               producer->Stats().malformed >= 1;
      },
      kWait));
  FABRIC_ASSERT_OK(producer->Push("still works").status());
  FABRIC_ASSERT_OK(producer->WaitCompleted(kWait));
  EXPECT_EQ(seen_.Count("still works"), 1);
}

}  // namespace
}  // namespace fabric

namespace fabric {
namespace {

TEST_F(WorkQueueTest, ClosedProducerHandsItsCreditBack) {
  auto wn = StartNode("w");
  auto pa = StartNode("pa");
  auto pb = StartNode("pb");
  absl::Notification release;
  // One slot: whoever holds the worker's credit decides who gets served.
  auto worker = StartWorker(
      *wn, "w",
      [&](const Task& t, TaskContext&) {
        if (t.body == "first") release.WaitForNotificationWithTimeout(kWait);
        return Outcome::Ack();
      },
      /*prefetch=*/1);
  auto a = StartProducer(*pa, POptions());
  ASSERT_TRUE(WaitWorkers(*a, 1));
  FABRIC_ASSERT_OK(a->Push("first").status());
  FABRIC_ASSERT_OK(a->Push("second").status());  // a keeps a backlog
  ASSERT_TRUE(WaitUntil([&] { return seen_.Count("first") == 1; }, kWait));
  a->Close();  // with a backlog, on a node that stays up
  release.Notify();
  auto b = StartProducer(*pb, POptions());
  ASSERT_TRUE(WaitWorkers(*b, 1));
  FABRIC_ASSERT_OK(b->Push("from b").status());
  FABRIC_ASSERT_OK(b->WaitCompleted(kWait));
  EXPECT_EQ(seen_.Count("from b"), 1);
}

}  // namespace
}  // namespace fabric
