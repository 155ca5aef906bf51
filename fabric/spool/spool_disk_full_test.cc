// SPDX-License-Identifier: Apache-2.0
// A full disk under a spool with `on_refused` (docs/spool.md section 9): the
// tasks whose records did not fit are refused (a negative confirm, never a
// positive one), appends fail fast for the back-off, acks and dead letters
// of the refused batch are kept, and once space is free appends work again.
// A topic log instead holds what did not fit and refuses new appends until
// it is written, so its seqs stay gap-free. On the in-memory file system,
// whose capacity the test sets.
#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "fabric/spool/internal/file_system.h"
#include "fabric/spool/internal/mem_file_system.h"
#include "fabric/spool/spool.h"
#include "fabric/spool/topic_log.h"
#include "gtest/gtest.h"

namespace fabric {
namespace {

using spool_internal::MemFileSystem;
using spool_internal::ScopedFileSystem;

// Callbacks in the order the spool made them.
struct Events {
  absl::Mutex mu;
  std::vector<std::pair<bool, std::vector<uint64_t>>> log;  // refused?, seqs
  uint64_t durable = 0;
  std::set<uint64_t> refused;
};

SpoolOptions Options(FsyncPolicy policy, Events* events) {
  SpoolOptions o;
  o.dir = "/disk/spool";
  o.queue = "jobs";
  o.fsync = policy;
  o.segment_bytes = 8192;
  o.on_durable = [events](uint64_t seq) {
    absl::MutexLock l(&events->mu);
    events->durable = std::max(events->durable, seq);
    events->log.push_back({false, {seq}});
  };
  o.on_refused = [events](const std::vector<uint64_t>& seqs,
                          const absl::Status& status) {
    EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
    EXPECT_TRUE(absl::StrContains(status.message(), "disk full")) << status;
    absl::MutexLock l(&events->mu);
    events->refused.insert(seqs.begin(), seqs.end());
    events->log.push_back({true, seqs});
  };
  return o;
}

std::string Body(uint64_t i) {
  std::string body = absl::StrCat("task-", i, "-");
  body.resize(300, 'x');
  return body;
}

class SpoolDiskFull : public ::testing::TestWithParam<FsyncPolicy> {};

TEST_P(SpoolDiskFull, RefusesWhatDoesNotFitThenResumes) {
  MemFileSystem fs;
  ScopedFileSystem use(&fs);
  fs.SetCapacity(48 * 1024);
  Events events;
  std::map<uint64_t, std::string> appended;
  absl::Status append_error;
  {
    absl::StatusOr<std::unique_ptr<Spool>> spool =
        Spool::Open(Options(GetParam(), &events));
    ASSERT_TRUE(spool.ok()) << spool.status();
    // Fill the disk. Appends are accepted until the writer finds the disk
    // full; then the batch in hand is refused and appends fail at once.
    // Until the writer finds the disk full, however slow it is to run.
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    for (uint64_t i = 1; absl::Now() < deadline && append_error.ok(); ++i) {
      absl::StatusOr<uint64_t> seq = (*spool)->Append({}, Body(i));
      if (!seq.ok()) {
        append_error = seq.status();
        break;
      }
      appended[*seq] = Body(i);
      if (i % 20 == 0) absl::SleepFor(absl::Milliseconds(1));
    }
    ASSERT_FALSE(append_error.ok()) << "the disk never filled up";
    EXPECT_TRUE(absl::IsResourceExhausted(append_error)) << append_error;
    EXPECT_TRUE(absl::StartsWith(append_error.message(), "spool disk full"))
        << append_error;
    EXPECT_TRUE((*spool)->health().ok()) << "a full disk must not fail it";
    // During the back-off, DLQ changes fail fast too (a replay's removals
    // must not be refused after its new tasks).
    EXPECT_TRUE(absl::IsResourceExhausted((*spool)->PurgeDead({}).status()));
    EXPECT_TRUE(absl::IsResourceExhausted((*spool)->ReplayDead({}).status()));
    // The back-off that refused this append starts just before the writer
    // calls on_refused: wait for the call.
    for (int i = 0; i < 500; ++i) {
      {
        absl::MutexLock l(&events.mu);
        if (!events.refused.empty()) break;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    {
      absl::MutexLock l(&events.mu);
      ASSERT_FALSE(events.refused.empty());
      // A refusal comes before any confirmation that covers its seqs.
      std::set<uint64_t> refused_so_far;
      for (const auto& [is_refusal, seqs] : events.log) {
        if (is_refusal) {
          refused_so_far.insert(seqs.begin(), seqs.end());
          continue;
        }
        for (uint64_t r : events.refused) {
          if (r <= seqs[0]) {
            EXPECT_TRUE(refused_so_far.contains(r))
                << "seq " << r << " confirmed by on_durable(" << seqs[0]
                << ") before it was refused";
          }
        }
      }
    }
    // A dead letter recorded while the disk is full is kept and written
    // once there is room.
    uint64_t dead_seq = 0;
    {
      absl::MutexLock l(&events.mu);
      for (const auto& [seq, body] : appended) {
        if (seq <= events.durable && !events.refused.contains(seq)) {
          dead_seq = seq;
          break;
        }
      }
    }
    ASSERT_NE(dead_seq, 0u);
    DeadLetter dead;
    dead.task = {dead_seq, absl::Now(), {}, appended[dead_seq]};
    dead.attempts = 1;
    dead.reason = "rejected: test";
    dead.died = absl::Now();
    ASSERT_TRUE((*spool)->AddDead(dead).ok());

    // Free space: after the back-off, appends are written again.
    fs.SetCapacity(uint64_t{1} << 30);
    absl::StatusOr<uint64_t> resumed;
    for (int i = 0; i < 400; ++i) {
      resumed = (*spool)->Append({}, Body(100000));
      if (resumed.ok()) break;
      absl::SleepFor(absl::Milliseconds(10));
    }
    ASSERT_TRUE(resumed.ok()) << resumed.status();
    appended[*resumed] = Body(100000);
    ASSERT_TRUE((*spool)->Flush(absl::Seconds(10)).ok());
    {
      absl::MutexLock l(&events.mu);
      EXPECT_GE(events.durable, *resumed);
      EXPECT_FALSE(events.refused.contains(*resumed));
    }
  }
  // Reopened: every confirmed task that was not refused is there, no
  // refused one is, and the dead letter made it.
  absl::StatusOr<std::unique_ptr<Spool>> spool =
      Spool::Open(Options(GetParam(), &events));
  ASSERT_TRUE(spool.ok()) << spool.status();
  std::set<uint64_t> pending;
  for (const SpooledTask& t : (*spool)->TakePending()) {
    pending.insert(t.seq);
    EXPECT_EQ(t.body, appended[t.seq]);
  }
  const std::vector<DeadLetter> dead = (*spool)->DeadLetters();
  ASSERT_EQ(dead.size(), 1u);
  absl::MutexLock l(&events.mu);
  for (const auto& [seq, body] : appended) {
    if (events.refused.contains(seq)) {
      EXPECT_FALSE(pending.contains(seq)) << "refused task " << seq << " back";
    } else if (seq != dead[0].task.seq) {
      EXPECT_TRUE(pending.contains(seq)) << "confirmed task " << seq << " lost";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Policies, SpoolDiskFull,
    ::testing::Values(FsyncPolicy::kAlways, FsyncPolicy::kBatch,
                      FsyncPolicy::kInterval, FsyncPolicy::kNone),
    [](const auto& info) { return std::string(FsyncPolicyName(info.param)); });

// Without `on_refused` a full disk stays fail-stop, as before.
TEST(SpoolDiskFullFailStop, WithoutOnRefusedTheSpoolFails) {
  MemFileSystem fs;
  ScopedFileSystem use(&fs);
  fs.SetCapacity(16 * 1024);
  SpoolOptions o;
  o.dir = "/disk/spool";
  o.queue = "jobs";
  std::atomic<bool> failed{false};
  o.on_error = [&failed](const absl::Status& s) {
    EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
    failed = true;
  };
  absl::StatusOr<std::unique_ptr<Spool>> spool = Spool::Open(o);
  ASSERT_TRUE(spool.ok()) << spool.status();
  for (uint64_t i = 1; i <= 500 && !failed; ++i) {
    if (!(*spool)->Append({}, Body(i)).ok()) break;
    absl::SleepFor(absl::Microseconds(200));
  }
  for (int i = 0; i < 500 && !failed; ++i)
    absl::SleepFor(absl::Milliseconds(2));
  EXPECT_TRUE(failed);
  EXPECT_TRUE(absl::IsResourceExhausted((*spool)->health()));
}

// ------------------------------------------------------------- topic log

TopicLogOptions TopicOptions(FsyncPolicy policy,
                             std::atomic<uint64_t>* durable) {
  TopicLogOptions o;
  o.dir = "/disk/topic";
  o.topic = "prices";
  o.fsync = policy;
  o.segment_bytes = 8192;
  o.on_durable = [durable](uint64_t seq) {
    EXPECT_GT(seq, durable->load()) << "on_durable out of order";
    durable->store(seq);
  };
  return o;
}

// Every readable message of `log`, from seq 1 on, as seq -> body.
std::map<uint64_t, std::string> ReadTopic(const TopicLog& log) {
  std::map<uint64_t, std::string> out;
  uint64_t from = 1;
  for (;;) {
    TopicLogRead chunk;
    absl::Status status = log.Read(from, 1000, 1 << 20, &chunk);
    EXPECT_TRUE(status.ok()) << status;
    if (!status.ok() || chunk.entries.empty()) break;
    for (const std::string& entry : chunk.entries) {
      absl::StatusOr<SpooledTask> task = TopicLog::DecodeEntry(entry);
      EXPECT_TRUE(task.ok()) << task.status();
      if (task.ok()) out[task->seq] = task->body;
    }
    from = chunk.next;
  }
  return out;
}

class TopicLogDiskFull : public ::testing::TestWithParam<FsyncPolicy> {};

TEST_P(TopicLogDiskFull, HoldsWhatDoesNotFitRefusesAppendsThenResumes) {
  MemFileSystem fs;
  ScopedFileSystem use(&fs);
  fs.SetCapacity(48 * 1024);
  std::atomic<uint64_t> durable{0};
  std::map<uint64_t, std::string> appended;
  {
    absl::StatusOr<std::unique_ptr<TopicLog>> log =
        TopicLog::Open(TopicOptions(GetParam(), &durable));
    ASSERT_TRUE(log.ok()) << log.status();
    absl::Status append_error;
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    for (uint64_t i = 1; absl::Now() < deadline; ++i) {
      absl::StatusOr<uint64_t> seq = (*log)->Append(absl::Now(), {}, Body(i));
      if (!seq.ok()) {
        append_error = seq.status();
        break;
      }
      ASSERT_EQ(*seq, i) << "seqs are handed out without gaps";
      appended[*seq] = Body(i);
      if (i % 20 == 0) absl::SleepFor(absl::Milliseconds(1));
    }
    ASSERT_FALSE(append_error.ok()) << "the disk never filled up";
    EXPECT_TRUE(absl::IsResourceExhausted(append_error)) << append_error;
    EXPECT_TRUE(absl::StartsWith(append_error.message(), "spool disk full"))
        << append_error;
    EXPECT_TRUE((*log)->health().ok()) << "a full disk must not fail it";
    const uint64_t last = appended.rbegin()->first;
    // Nothing that did not fit is confirmed or readable: what readers see
    // is exactly 1..durable, each as appended.
    const uint64_t confirmed = durable.load();
    EXPECT_LT(confirmed, last) << "a message the disk refused was confirmed";
    std::map<uint64_t, std::string> readable = ReadTopic(**log);
    ASSERT_FALSE(readable.empty());
    EXPECT_EQ(readable.begin()->first, 1u);
    EXPECT_EQ(readable.rbegin()->first, readable.size()) << "a gap";
    EXPECT_LE(readable.size(), last);
    for (const auto& [seq, body] : readable) EXPECT_EQ(body, appended[seq]);
    // Still full after the writer's next tries: appends keep failing (no
    // message is accepted that the disk could not take).
    absl::SleepFor(absl::Milliseconds(1200));
    EXPECT_TRUE(absl::IsResourceExhausted(
        (*log)->Append(absl::Now(), {}, "more").status()));
    EXPECT_LT(durable.load(), last);
    // Flush says so at once rather than wait for room that may not come.
    EXPECT_TRUE(absl::IsResourceExhausted((*log)->Flush(absl::Seconds(60))));

    // Free space: the held messages are written, then appends resume with
    // the next seq.
    fs.SetCapacity(uint64_t{1} << 30);
    absl::StatusOr<uint64_t> resumed;
    for (int i = 0; i < 500; ++i) {
      resumed = (*log)->Append(absl::Now(), {}, Body(100000));
      if (resumed.ok()) break;
      absl::SleepFor(absl::Milliseconds(10));
    }
    ASSERT_TRUE(resumed.ok()) << resumed.status();
    EXPECT_EQ(*resumed, last + 1);
    appended[*resumed] = Body(100000);
    ASSERT_TRUE((*log)->Flush(absl::Seconds(10)).ok());
    EXPECT_EQ(durable.load(), *resumed);
    EXPECT_EQ(ReadTopic(**log), appended);
  }
  // Reopened: every message, in order, and seqs go on.
  absl::StatusOr<std::unique_ptr<TopicLog>> log =
      TopicLog::Open(TopicOptions(GetParam(), &durable));
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(ReadTopic(**log), appended);
  EXPECT_EQ((*log)->recovery().seqs_skipped, 0u);
  absl::StatusOr<uint64_t> next = (*log)->Append(absl::Now(), {}, "after");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, appended.rbegin()->first + 1);
}

// Closed while the disk is still full: the held messages were never
// confirmed and are lost, the log fails at close (on_error) rather than
// pretend, and it reopens with every confirmed message and seqs above them.
TEST_P(TopicLogDiskFull, ClosedWhileFullKeepsEveryConfirmedMessage) {
  MemFileSystem fs;
  ScopedFileSystem use(&fs);
  fs.SetCapacity(32 * 1024);
  std::atomic<uint64_t> durable{0};
  std::atomic<bool> failed{false};
  std::map<uint64_t, std::string> appended;
  uint64_t confirmed = 0;
  {
    TopicLogOptions o = TopicOptions(GetParam(), &durable);
    o.on_error = [&failed](const absl::Status& s) {
      EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
      failed = true;
    };
    absl::StatusOr<std::unique_ptr<TopicLog>> log = TopicLog::Open(o);
    ASSERT_TRUE(log.ok()) << log.status();
    bool filled = false;
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    for (uint64_t i = 1; absl::Now() < deadline; ++i) {
      absl::StatusOr<uint64_t> seq = (*log)->Append(absl::Now(), {}, Body(i));
      if (!seq.ok()) {
        filled = true;
        break;
      }
      appended[*seq] = Body(i);
      if (i % 20 == 0) absl::SleepFor(absl::Milliseconds(1));
    }
    ASSERT_TRUE(filled) << "the disk never filled up";
    confirmed = durable.load();
    ASSERT_LT(confirmed, appended.rbegin()->first);
  }
  EXPECT_TRUE(failed) << "closing with held messages must report it";
  fs.SetCapacity(uint64_t{1} << 30);
  absl::StatusOr<std::unique_ptr<TopicLog>> log =
      TopicLog::Open(TopicOptions(GetParam(), &durable));
  ASSERT_TRUE(log.ok()) << log.status();
  std::map<uint64_t, std::string> readable = ReadTopic(**log);
  for (uint64_t seq = 1; seq <= confirmed; ++seq) {
    ASSERT_TRUE(readable.contains(seq)) << "confirmed message " << seq;
    EXPECT_EQ(readable[seq], appended[seq]);
  }
  absl::StatusOr<uint64_t> next = (*log)->Append(absl::Now(), {}, "after");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_GT(*next, readable.empty() ? 0 : readable.rbegin()->first);
  EXPECT_GT(*next, confirmed);
}

INSTANTIATE_TEST_SUITE_P(
    Policies, TopicLogDiskFull,
    ::testing::Values(FsyncPolicy::kAlways, FsyncPolicy::kBatch,
                      FsyncPolicy::kInterval, FsyncPolicy::kNone),
    [](const auto& info) { return std::string(FsyncPolicyName(info.param)); });

}  // namespace
}  // namespace fabric
