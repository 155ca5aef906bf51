// SPDX-License-Identifier: Apache-2.0
// A producer whose spool's disk fills up (docs/spool.md section 9): the
// pushes that did not fit get a negative confirm and are never delivered,
// pushes fail fast for a moment, and once space is free they are accepted,
// confirmed and delivered again; a worker then gets every confirmed task
// exactly once. The spool lives on the in-memory file system, whose
// capacity the test sets; nodes and workers use real loopback sockets.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "fabric/spool/internal/file_system.h"
#include "fabric/spool/internal/mem_file_system.h"
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
using spool_internal::MemFileSystem;
using spool_internal::ScopedFileSystem;

constexpr absl::Duration kWait = absl::Seconds(30);

std::string Body(int i) {
  std::string body = absl::StrCat("task-", i, "-");
  body.resize(1000, 'x');
  return body;
}

TEST(ProducerDiskFull, RefusedPushesAreNeverDeliveredAndPushesResume) {
  MemFileSystem fs;
  ScopedFileSystem use(&fs);
  fs.SetCapacity(96 * 1024);
  const std::string cluster = ::fabric::testing::UniqueClusterName("wqfull");
  const uint16_t port = ::fabric::testing::FreeUdpPort();
  auto pn = ::fabric::testing::StartLoopbackNode("p", cluster, port);
  ProducerOptions o;
  o.queue = "jobs";
  o.spool_dir = "/disk/spool";
  absl::StatusOr<std::unique_ptr<Producer>> created = Producer::Create(*pn, o);
  ASSERT_THAT(created, IsOk());
  Producer& producer = **created;

  // Fill the disk with no worker around: a few pushes at a time, each
  // group waited for, so that some are confirmed before the disk is full.
  std::map<uint64_t, std::string> pushed;
  absl::Status error;
  for (int i = 0; i < 1000 && error.ok(); ++i) {
    absl::StatusOr<TaskId> id = producer.PushAsync(Body(i));
    if (!id.ok()) {
      error = id.status();
      break;
    }
    pushed[id->seq] = Body(i);
    if (i % 4 == 3) error = producer.WaitConfirmed(id->seq, kWait);
  }
  ASSERT_FALSE(error.ok()) << "the disk never filled up";
  EXPECT_THAT(error, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_TRUE(absl::StrContains(error.message(), "disk full")) << error;

  // Every accepted push is now either confirmed or refused, never both.
  std::set<uint64_t> confirmed, refused;
  for (const auto& [seq, body] : pushed) {
    absl::Status s = producer.WaitConfirmed(seq, kWait);
    if (s.ok()) {
      EXPECT_FALSE(producer.Refused(seq));
      confirmed.insert(seq);
    } else {
      EXPECT_THAT(s, StatusIs(absl::StatusCode::kResourceExhausted)) << seq;
      EXPECT_TRUE(producer.Refused(seq)) << seq;
      refused.insert(seq);
    }
  }
  ASSERT_FALSE(refused.empty());
  ASSERT_FALSE(confirmed.empty());
  ProducerStats stats = producer.Stats();
  EXPECT_EQ(stats.refused, refused.size());
  EXPECT_EQ(stats.confirmed, confirmed.size());

  // Space comes back: after the back-off, pushes are confirmed again.
  fs.SetCapacity(uint64_t{1} << 30);
  absl::StatusOr<TaskId> resumed;
  ASSERT_TRUE(WaitUntil(
      [&] {
        resumed = producer.Push(Body(5000));
        return resumed.ok();
      },
      kWait))
      << resumed.status();
  confirmed.insert(resumed->seq);
  pushed[resumed->seq] = Body(5000);

  // A worker gets every confirmed task once and no refused one.
  auto wn = ::fabric::testing::StartLoopbackNode("w", cluster, port);
  absl::Mutex mu;
  std::map<std::string, int> seen;
  WorkerOptions wo;
  wo.queues = {"jobs"};
  wo.handler = [&](const Task& t, TaskContext&) {
    absl::MutexLock l(&mu);
    seen[t.body]++;
    return Outcome::Ack();
  };
  absl::StatusOr<std::unique_ptr<Worker>> worker =
      Worker::Create(*wn, std::move(wo));
  ASSERT_THAT(worker, IsOk());
  ASSERT_THAT(producer.WaitCompleted(kWait), IsOk());
  absl::MutexLock l(&mu);
  for (uint64_t seq : confirmed) {
    EXPECT_EQ(seen[pushed[seq]], 1) << "confirmed task " << seq;
  }
  for (uint64_t seq : refused) {
    EXPECT_EQ(seen.count(pushed[seq]), 0u) << "refused task " << seq;
  }
  EXPECT_EQ(producer.Stats().acked, confirmed.size());
}

}  // namespace
}  // namespace fabric
