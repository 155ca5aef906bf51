// SPDX-License-Identifier: Apache-2.0
// Crash-point exploration of the task spool and the topic log on the
// in-memory file system (docs/spool.md section 13). A workload runs; for
// every N up to the number of file operations it makes, the run is repeated
// with a crash at operation N (that operation and every later one fail, as
// if the process died there), then a power loss under each model (nothing
// lost; every unsynced write dropped, with and without the unsynced
// directory entries; the last write torn at a varying byte and its rest
// absent, zeroed or garbage), then the log is reopened and checked:
//   - it opens (damage is reported, never fatal);
//   - every confirmed task / message is there (under kAlways and kBatch
//     whatever the model; under kInterval and kNone after a process crash,
//     and what a successful Flush covered after a power loss);
//   - nothing acked and flushed comes back, nothing comes back twice, and
//     every body is the one appended;
//   - the next seq is above every seq ever confirmed (never reused);
//   - reopening again finds the same state, and no temporary file is left.
// Every crash point is taken; the quick pass (CI, about a second) tears the
// last write at one byte per crash point, FABRIC_CRASH_POINTS=full
// (`tools/dev crash-points`) at 14 and repeats the whole exploration 5
// times, as the writer thread batches differently each time. The models
// are in internal/crash_models.h, shared with the exploration of subscriber
// position files (fabric/spool/position_file_crash_points_test.cc).
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fabric/spool/internal/crash_models.h"
#include "fabric/spool/internal/file_system.h"
#include "fabric/spool/internal/file_util.h"
#include "fabric/spool/internal/log_core.h"
#include "fabric/spool/internal/mem_file_system.h"
#include "fabric/spool/spool.h"
#include "fabric/spool/topic_log.h"
#include "gtest/gtest.h"

namespace fabric {
namespace {

using spool_internal::DataLoss;
using spool_internal::MemFileSystem;
using spool_internal::PowerLossModel;
using spool_internal::ScopedFileSystem;
using spool_internal::testing::Model;
using spool_internal::testing::Models;
using spool_internal::testing::Rounds;

constexpr char kDir[] = "/data/spool";

std::string Body(uint64_t tag) {
  std::string body = absl::StrCat("body-", tag, "-");
  body.resize(150 + tag % 50, static_cast<char>('a' + tag % 26));
  return body;
}

bool Synced(FsyncPolicy p) {
  return p == FsyncPolicy::kAlways || p == FsyncPolicy::kBatch;
}

// No temporary file, nothing but the log's own files.
void ExpectNoOrphans(const MemFileSystem& fs, const std::string& dir) {
  for (const std::string& path : fs.FilesForTest()) {
    if (!absl::StartsWith(path, dir)) continue;
    EXPECT_FALSE(absl::EndsWith(path, ".tmp")) << "orphan " << path;
  }
}

// One log under test: how to open it, run the workload and close it, and
// how to check what a reopen finds after a crash.
template <typename Oracle>
struct Subject {
  std::string what;
  std::function<void(FsyncPolicy, Oracle&)> run;
  std::function<void(FsyncPolicy, const Model&, const Oracle&, MemFileSystem&)>
      check;
};

// The number of file operations the workload makes without a crash.
template <typename Oracle>
uint64_t CountOps(const Subject<Oracle>& subject, FsyncPolicy policy) {
  MemFileSystem fs;
  ScopedFileSystem use(&fs);
  Oracle oracle;
  subject.run(policy, oracle);
  return fs.ops();
}

// For every crash point n and power-loss model: a fresh file system that
// crashes at operation n, the workload, the power loss, the checks.
template <typename Oracle>
void ExploreCrashPoints(const Subject<Oracle>& subject, FsyncPolicy policy) {
  const uint64_t total = CountOps(subject, policy);
  ASSERT_GT(total, 20u);
  std::fprintf(stderr, "%s workload (%s): %llu file operations\n",
               subject.what.c_str(),
               std::string(FsyncPolicyName(policy)).c_str(),
               static_cast<unsigned long long>(total));
  for (uint64_t i = 0; i < Rounds() * (total + 1); ++i) {
    const uint64_t n = i % (total + 1) + 1;
    for (const Model& model : Models(n)) {
      SCOPED_TRACE(absl::StrCat(subject.what, ", policy ",
                                FsyncPolicyName(policy), ", crash at op ", n,
                                " of ", total, ", ", model.name));
      MemFileSystem fs;
      ScopedFileSystem use(&fs);
      Oracle oracle;
      fs.CrashAtOp(n);
      subject.run(policy, oracle);
      fs.PowerLoss(model.loss);
      subject.check(policy, model, oracle, fs);
      if (::testing::Test::HasFailure()) return;  // one report is enough
    }
  }
}

// ---------------------------------------------------------------- spool

// What the spool workload did, as the oracle needs it.
struct SpoolOracle {
  std::atomic<uint64_t> confirmed{0};  // max on_durable
  uint64_t flushed_confirmed = 0;      // confirmed when a Flush last succeeded
  std::map<uint64_t, std::string> bodies;  // every seq appended
  std::set<uint64_t> acked;                // Ack called
  std::set<uint64_t> acked_flushed;        // ... and a Flush succeeded after
  std::set<uint64_t> dead_flushed;         // AddDead, then a Flush succeeded
  std::set<uint64_t> dead_touched;         // AddDead called
  std::set<uint64_t> removed;              // ReplayDead/PurgeDead called on it
  std::set<uint64_t> removed_flushed;
};

SpoolOptions SpoolOpts(FsyncPolicy policy, SpoolOracle* oracle) {
  SpoolOptions o;
  o.dir = kDir;
  o.queue = "jobs";
  o.fsync = policy;
  o.fsync_interval = absl::Milliseconds(1);
  o.segment_bytes = 4096;  // a roll every ~20 tasks
  if (oracle != nullptr) {
    o.on_durable = [oracle](uint64_t seq) {
      uint64_t cur = oracle->confirmed.load();
      while (seq > cur && !oracle->confirmed.compare_exchange_weak(cur, seq)) {
      }
    };
  }
  return o;
}

// Runs the workload until the first failure (the crash). Returns normally
// either way; `spool` is destroyed by the caller.
void SpoolWorkload(Spool& spool, SpoolOracle& o) {
  auto append = [&](uint64_t tag) {
    absl::StatusOr<uint64_t> seq = spool.Append({{"tag", "x"}}, Body(tag));
    if (!seq.ok()) return false;
    o.bodies[*seq] = Body(tag);
    return true;
  };
  auto flush = [&]() {
    if (!spool.Flush(absl::Seconds(10)).ok()) return false;
    o.flushed_confirmed = o.confirmed.load();
    o.acked_flushed = o.acked;
    o.dead_flushed = o.dead_touched;
    o.removed_flushed = o.removed;
    return true;
  };
  auto ack = [&](uint64_t lo, uint64_t hi) {
    for (uint64_t s = lo; s <= hi; ++s) {
      spool.Ack(s);
      o.acked.insert(s);
    }
  };
  for (uint64_t i = 1; i <= 40; ++i) {
    if (!append(i)) return;
  }
  if (!flush()) return;
  ack(1, 20);  // whole segments resolved: deleted
  if (!flush()) return;
  for (uint64_t seq : {21, 22, 23}) {
    DeadLetter dead;
    dead.task = {seq, absl::Now(), {{"tag", "x"}}, o.bodies[seq]};
    dead.attempts = 3;
    dead.reason = "max_attempts";
    dead.died = absl::Now();
    if (!spool.AddDead(dead).ok()) return;
    o.dead_touched.insert(seq);
  }
  for (uint64_t i = 41; i <= 60; ++i) {
    if (!append(i)) return;
  }
  if (!flush()) return;
  absl::StatusOr<std::vector<SpooledTask>> replayed = spool.ReplayDead({21});
  if (!replayed.ok()) return;
  o.removed.insert(21);
  for (const SpooledTask& t : *replayed) o.bodies[t.seq] = t.body;
  if (!spool.PurgeDead({22}).ok()) return;
  o.removed.insert(22);
  ack(24, 50);  // leaves sparse segments: compaction
  if (!flush()) return;
  for (uint64_t i = 61; i <= 75; ++i) {  // an unsynced tail
    if (!append(i)) return;
  }
}

struct SpoolState {
  std::map<uint64_t, std::string> pending;
  std::map<uint64_t, std::string> dead;
  uint64_t next_seq = 0;
};

// Opens the spool, reads its state, and checks recovery was not fatal.
bool ReadSpool(FsyncPolicy policy, SpoolState* state, std::string* error) {
  absl::StatusOr<std::unique_ptr<Spool>> spool =
      Spool::Open(SpoolOpts(policy, nullptr));
  if (!spool.ok()) {
    *error = spool.status().ToString();
    return false;
  }
  for (SpooledTask& t : (*spool)->TakePending()) {
    if (!state->pending.emplace(t.seq, t.body).second) {
      *error = absl::StrCat("seq ", t.seq, " pending twice");
      return false;
    }
  }
  for (const DeadLetter& d : (*spool)->DeadLetters()) {
    state->dead.emplace(d.task.seq, d.task.body);
  }
  state->next_seq = (*spool)->recovery().next_seq;
  return true;
}

void CheckSpool(FsyncPolicy policy, const Model& model, const SpoolOracle& o,
                MemFileSystem& fs) {
  SpoolState s;
  std::string error;
  ASSERT_TRUE(ReadSpool(policy, &s, &error)) << error;
  const uint64_t confirmed = o.confirmed.load();
  const uint64_t must = Synced(policy) || model.process_crash_only
                            ? confirmed
                            : o.flushed_confirmed;
  for (const auto& [seq, body] : o.bodies) {
    if (seq > must || o.acked.contains(seq) || o.dead_touched.contains(seq)) {
      continue;
    }
    EXPECT_TRUE(s.pending.contains(seq)) << "confirmed task " << seq << " lost";
  }
  for (uint64_t seq : o.dead_flushed) {
    if (o.removed.contains(seq)) continue;
    EXPECT_TRUE(s.dead.contains(seq)) << "dead letter " << seq << " lost";
  }
  for (uint64_t seq : o.acked_flushed) {
    EXPECT_FALSE(s.pending.contains(seq)) << "acked task " << seq << " is back";
  }
  for (uint64_t seq : o.removed_flushed) {
    EXPECT_FALSE(s.dead.contains(seq)) << "removed dead letter " << seq;
  }
  for (const auto& [seq, body] : s.pending) {
    auto it = o.bodies.find(seq);
    ASSERT_NE(it, o.bodies.end()) << "unknown task " << seq;
    EXPECT_EQ(body, it->second) << "task " << seq;
    EXPECT_FALSE(s.dead.contains(seq)) << "seq " << seq << " pending and dead";
  }
  for (const auto& [seq, body] : s.dead) {
    auto it = o.bodies.find(seq);
    ASSERT_NE(it, o.bodies.end()) << "unknown dead letter " << seq;
    EXPECT_EQ(body, it->second) << "dead letter " << seq;
  }
  EXPECT_GT(s.next_seq, confirmed) << "a confirmed seq would be reused";
  if (!s.pending.empty()) {
    EXPECT_GT(s.next_seq, s.pending.rbegin()->first);
  }

  // Recovery is stable: a second open finds the same.
  SpoolState again;
  ASSERT_TRUE(ReadSpool(policy, &again, &error)) << error;
  EXPECT_EQ(again.pending, s.pending);
  EXPECT_EQ(again.dead, s.dead);
  EXPECT_GE(again.next_seq, s.next_seq);
  ExpectNoOrphans(fs, kDir);
}

Subject<SpoolOracle> SpoolSubject() {
  return {"spool",
          [](FsyncPolicy policy, SpoolOracle& oracle) {
            absl::StatusOr<std::unique_ptr<Spool>> spool =
                Spool::Open(SpoolOpts(policy, &oracle));
            if (spool.ok()) SpoolWorkload(**spool, oracle);
          },
          CheckSpool};
}

class SpoolCrashPoints : public ::testing::TestWithParam<FsyncPolicy> {};

TEST_P(SpoolCrashPoints, EveryCrashPointRecovers) {
  ExploreCrashPoints(SpoolSubject(), GetParam());
}

// An fdatasync, write or directory fsync failing with EIO at any point is
// fail-stop: the spool stops, every later append fails, nothing whose sync
// failed was confirmed (a power loss right after loses every unsynced byte,
// and every confirmed task must still be there), and the spool reopens
// consistent.
class SpoolEioPoints : public ::testing::TestWithParam<FsyncPolicy> {};

TEST_P(SpoolEioPoints, FailedSyncOrWriteIsFailStop) {
  const FsyncPolicy policy = GetParam();
  const uint64_t total = CountOps(SpoolSubject(), policy);
  ASSERT_GT(total, 50u);
  Model model;
  model.name = "power-loss";
  for (uint64_t i = 0; i < Rounds() * total; ++i) {
    const uint64_t n = i % total + 1;
    SCOPED_TRACE(absl::StrCat("policy ", FsyncPolicyName(policy),
                              ", EIO at op ", n, " of ", total));
    MemFileSystem fs;
    ScopedFileSystem use(&fs);
    SpoolOracle oracle;
    std::atomic<bool> fired{false};
    fs.SetFault([n, &fired](spool_internal::MemOp op, const std::string&,
                            uint64_t index) {
      if (index != n || (op != spool_internal::MemOp::kSync &&
                         op != spool_internal::MemOp::kWrite &&
                         op != spool_internal::MemOp::kSyncDir)) {
        return 0;
      }
      fired = true;
      return EIO;
    });
    {
      absl::StatusOr<std::unique_ptr<Spool>> spool =
          Spool::Open(SpoolOpts(policy, &oracle));
      if (spool.ok()) {
        SpoolWorkload(**spool, oracle);
        if (fired) {
          // Fail-stop, never retried: the spool stays failed.
          absl::Status health = (*spool)->health();
          for (int i = 0; i < 500 && health.ok(); ++i) {
            absl::SleepFor(absl::Milliseconds(2));
            health = (*spool)->health();
          }
          EXPECT_FALSE(health.ok());
          EXPECT_FALSE((*spool)->Append({}, "after").ok());
        }
      }
    }
    fs.SetFault(nullptr);
    fs.PowerLoss(model.loss);
    CheckSpool(policy, model, oracle, fs);
    if (::testing::Test::HasFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Policies, SpoolEioPoints,
    ::testing::Values(FsyncPolicy::kAlways, FsyncPolicy::kBatch,
                      FsyncPolicy::kInterval, FsyncPolicy::kNone),
    [](const auto& info) { return std::string(FsyncPolicyName(info.param)); });

INSTANTIATE_TEST_SUITE_P(
    Policies, SpoolCrashPoints,
    ::testing::Values(FsyncPolicy::kAlways, FsyncPolicy::kBatch,
                      FsyncPolicy::kInterval, FsyncPolicy::kNone),
    [](const auto& info) { return std::string(FsyncPolicyName(info.param)); });

// ------------------------------------------------------------ topic log

constexpr char kTopicDir[] = "/data/topic";

struct TopicOracle {
  std::atomic<uint64_t> confirmed{0};
  uint64_t flushed_confirmed = 0;
  std::map<uint64_t, std::string> bodies;
};

TopicLogOptions TopicOpts(FsyncPolicy policy, TopicOracle* oracle) {
  TopicLogOptions o;
  o.dir = kTopicDir;
  o.topic = "prices";
  o.fsync = policy;
  o.fsync_interval = absl::Milliseconds(1);
  o.segment_bytes = 4096;
  // The workload's retention deletes segments as it runs; the checks read
  // with none, so what they read does not change under them.
  o.retention_bytes = oracle != nullptr ? 3 * 4096 : uint64_t{1} << 40;
  if (oracle != nullptr) {
    o.on_durable = [oracle](uint64_t seq) {
      uint64_t cur = oracle->confirmed.load();
      while (seq > cur && !oracle->confirmed.compare_exchange_weak(cur, seq)) {
      }
    };
  }
  return o;
}

void TopicWorkload(TopicLog& log, TopicOracle& o) {
  for (uint64_t i = 1; i <= 100; ++i) {
    absl::StatusOr<uint64_t> seq = log.Append(absl::Now(), {}, Body(i));
    if (!seq.ok()) return;
    o.bodies[*seq] = Body(i);
    if (i % 40 == 0) {
      if (!log.Flush(absl::Seconds(10)).ok()) return;
      o.flushed_confirmed = o.confirmed.load();
    }
  }
}

std::string SeqList(
    const std::vector<std::pair<uint64_t, std::string>>& messages) {
  std::string out;
  for (const auto& [seq, body] : messages) absl::StrAppend(&out, seq, ",");
  return out;
}

struct TopicState {
  std::vector<std::pair<uint64_t, std::string>> messages;
  uint64_t first_seq = 0;
  uint64_t next_seq = 0;
};

bool ReadTopic(FsyncPolicy policy, TopicState* state, std::string* error) {
  absl::StatusOr<std::unique_ptr<TopicLog>> log =
      TopicLog::Open(TopicOpts(policy, nullptr));
  if (!log.ok()) {
    *error = log.status().ToString();
    return false;
  }
  state->next_seq = (*log)->next_seq();
  uint64_t from = 1;
  for (;;) {
    TopicLogRead chunk;
    absl::Status status = (*log)->Read(from, 1000, 1 << 20, &chunk);
    if (!status.ok()) {
      *error = status.ToString();
      return false;
    }
    if (chunk.entries.empty()) break;
    for (const std::string& entry : chunk.entries) {
      absl::StatusOr<SpooledTask> m = TopicLog::DecodeEntry(entry);
      if (!m.ok()) {
        *error = m.status().ToString();
        return false;
      }
      state->messages.emplace_back(m->seq, m->body);
    }
    from = chunk.next;
  }
  state->first_seq = (*log)->first_seq();
  return true;
}

void CheckTopic(FsyncPolicy policy, const Model& model, const TopicOracle& o,
                MemFileSystem& fs) {
  TopicState s;
  std::string error;
  ASSERT_TRUE(ReadTopic(policy, &s, &error)) << error;
  const uint64_t confirmed = o.confirmed.load();
  const uint64_t must = Synced(policy) || model.process_crash_only
                            ? confirmed
                            : o.flushed_confirmed;
  std::set<uint64_t> seen;
  uint64_t last = 0;
  for (const auto& [seq, body] : s.messages) {
    EXPECT_GT(seq, last) << "seqs out of order or repeated";
    last = seq;
    seen.insert(seq);
    auto it = o.bodies.find(seq);
    ASSERT_NE(it, o.bodies.end()) << "unknown message " << seq;
    EXPECT_EQ(body, it->second) << "message " << seq;
  }
  for (uint64_t seq = s.first_seq; seq <= must; ++seq) {
    EXPECT_TRUE(seen.contains(seq)) << "confirmed message " << seq << " lost";
  }
  EXPECT_GT(s.next_seq, confirmed) << "a confirmed seq would be reused";
  EXPECT_GT(s.next_seq, last);

  TopicState again;
  ASSERT_TRUE(ReadTopic(policy, &again, &error)) << error;
  EXPECT_EQ(again.messages.size(), s.messages.size());
  EXPECT_TRUE(again.messages == s.messages)
      << "a second open found other messages: " << SeqList(s.messages)
      << " then " << SeqList(again.messages);
  EXPECT_GE(again.next_seq, s.next_seq);
  ExpectNoOrphans(fs, kTopicDir);
}

Subject<TopicOracle> TopicSubject() {
  return {"topic log",
          [](FsyncPolicy policy, TopicOracle& oracle) {
            absl::StatusOr<std::unique_ptr<TopicLog>> log =
                TopicLog::Open(TopicOpts(policy, &oracle));
            if (log.ok()) TopicWorkload(**log, oracle);
          },
          CheckTopic};
}

class TopicCrashPoints : public ::testing::TestWithParam<FsyncPolicy> {};

TEST_P(TopicCrashPoints, EveryCrashPointRecovers) {
  ExploreCrashPoints(TopicSubject(), GetParam());
}

INSTANTIATE_TEST_SUITE_P(
    Policies, TopicCrashPoints,
    ::testing::Values(FsyncPolicy::kAlways, FsyncPolicy::kBatch,
                      FsyncPolicy::kInterval, FsyncPolicy::kNone),
    [](const auto& info) { return std::string(FsyncPolicyName(info.param)); });

// A full disk at any point of a topic log's life (docs/spool.md section 9):
// one write, file creation or rename fails with ENOSPC, as when the disk is
// full for a moment. The log must hold what did not fit and refuse appends
// (never fail, never confirm what is not written), and once there is room
// again write everything: after the close and a power loss, every accepted
// message is there once, in order, with no gap. The back-off is 1 ms here so
// that every point can be tried.
class TopicEnospcPoints : public ::testing::TestWithParam<FsyncPolicy> {};

TEST_P(TopicEnospcPoints, FullDiskHoldsThenWritesEverything) {
  const FsyncPolicy policy = GetParam();
  spool_internal::LogCore::SetDiskFullBackoffForTesting(absl::Milliseconds(1));
  struct Restore {
    ~Restore() {
      spool_internal::LogCore::SetDiskFullBackoffForTesting(absl::Seconds(1));
    }
  } restore;
  // The workload: 100 appends and a flush every 40, retried while the disk
  // is full (Append and Flush fail fast with kResourceExhausted then).
  auto run = [](TopicLog& log, std::vector<std::string>* accepted,
                std::atomic<uint64_t>* refusals) {
    auto retry = [&](auto fn) {
      const absl::Time deadline = absl::Now() + absl::Seconds(20);
      absl::Status status = fn();
      // A log that failed instead would refuse forever: stop at once.
      while (absl::IsResourceExhausted(status) && log.health().ok() &&
             absl::Now() < deadline) {
        ++*refusals;
        absl::SleepFor(absl::Milliseconds(1));
        status = fn();
      }
      return status;
    };
    for (uint64_t i = 1; i <= 100; ++i) {
      absl::Status status = retry([&] {
        absl::StatusOr<uint64_t> seq = log.Append(absl::Now(), {}, Body(i));
        if (seq.ok()) {
          EXPECT_EQ(*seq, accepted->size() + 1) << "a gap in seqs";
          accepted->push_back(Body(i));
        }
        return seq.status();
      });
      ASSERT_TRUE(status.ok()) << status;
      if (i % 40 == 0 || i == 100) {
        status = retry([&] { return log.Flush(absl::Seconds(10)); });
        ASSERT_TRUE(status.ok()) << status;
      }
    }
  };
  uint64_t total = 0;
  {
    MemFileSystem fs;
    ScopedFileSystem use(&fs);
    TopicOracle oracle;  // with the workload's retention
    absl::StatusOr<std::unique_ptr<TopicLog>> log =
        TopicLog::Open(TopicOpts(policy, &oracle));
    ASSERT_TRUE(log.ok()) << log.status();
    std::vector<std::string> accepted;
    std::atomic<uint64_t> refusals{0};
    run(**log, &accepted, &refusals);
    total = fs.ops();
  }
  ASSERT_GT(total, 50u);
  uint64_t fired_runs = 0;
  for (uint64_t i = 0; i < Rounds() * total; ++i) {
    const uint64_t n = i % total + 1;
    SCOPED_TRACE(absl::StrCat("policy ", FsyncPolicyName(policy),
                              ", ENOSPC at op ", n, " of ", total));
    MemFileSystem fs;
    ScopedFileSystem use(&fs);
    std::atomic<bool> fired{false};
    fs.SetFault([n, &fired](spool_internal::MemOp op, const std::string&,
                            uint64_t index) {
      if (index != n || (op != spool_internal::MemOp::kWrite &&
                         op != spool_internal::MemOp::kCreate &&
                         op != spool_internal::MemOp::kRename)) {
        return 0;
      }
      fired = true;
      return ENOSPC;
    });
    TopicOracle oracle;  // for `confirmed`
    std::vector<std::string> accepted;
    std::atomic<uint64_t> refusals{0};
    bool opened = false;
    {
      absl::StatusOr<std::unique_ptr<TopicLog>> log =
          TopicLog::Open(TopicOpts(policy, &oracle));
      // A full disk while creating the log: Open reports it, nothing more.
      if (log.ok()) {
        opened = true;
        run(**log, &accepted, &refusals);
        if (::testing::Test::HasFailure()) return;
        EXPECT_TRUE((*log)->health().ok()) << (*log)->health();
        EXPECT_EQ(oracle.confirmed.load(), accepted.size());
      } else {
        EXPECT_TRUE(absl::IsResourceExhausted(log.status())) << log.status();
      }
    }
    if (fired && opened) ++fired_runs;
    // A run may make fewer operations than the counting run (group commit
    // batches as timing allows): the fault must not hit the check's reopen.
    fs.SetFault(nullptr);
    PowerLossModel loss;  // everything not synced is gone
    if (policy == FsyncPolicy::kNone) loss.data = DataLoss::kKeepAll;
    fs.PowerLoss(loss);
    TopicState state;
    std::string error;
    ASSERT_TRUE(ReadTopic(policy, &state, &error)) << error;
    // Retention dropped the oldest segments as the workload ran: from the
    // first message kept on, every accepted one, once, in order.
    ASSERT_GE(state.first_seq, 1u);
    ASSERT_LE(state.first_seq, accepted.size() + 1);
    ASSERT_EQ(state.messages.size(), accepted.size() + 1 - state.first_seq);
    for (size_t k = 0; k < state.messages.size(); ++k) {
      const uint64_t seq = state.first_seq + k;
      EXPECT_EQ(state.messages[k].first, seq);
      EXPECT_EQ(state.messages[k].second, accepted[seq - 1])
          << "message " << seq;
    }
    EXPECT_GT(state.next_seq, accepted.size());
    ExpectNoOrphans(fs, kTopicDir);
    if (::testing::Test::HasFailure()) return;
  }
  // Most points are writes, creations or renames of a running log.
  EXPECT_GT(fired_runs, total / 4);
}

INSTANTIATE_TEST_SUITE_P(
    Policies, TopicEnospcPoints,
    ::testing::Values(FsyncPolicy::kAlways, FsyncPolicy::kBatch,
                      FsyncPolicy::kInterval, FsyncPolicy::kNone),
    [](const auto& info) { return std::string(FsyncPolicyName(info.param)); });

// The regression the issue names: under kNone a message confirmed once
// written and then lost to a power loss must not have its seq handed to a
// new message (a subscriber that saw the old one would drop the new one as
// a duplicate without reporting a gap).
TEST(TopicLogPowerLoss, LostMessagesSeqsAreNotReused) {
  MemFileSystem fs;
  ScopedFileSystem use(&fs);
  TopicOracle oracle;
  {
    absl::StatusOr<std::unique_ptr<TopicLog>> log =
        TopicLog::Open(TopicOpts(FsyncPolicy::kNone, &oracle));
    ASSERT_TRUE(log.ok()) << log.status();
    for (uint64_t i = 1; i <= 10; ++i) {
      ASSERT_TRUE((*log)->Append(absl::Now(), {}, Body(i)).ok());
    }
    ASSERT_TRUE((*log)->Flush(absl::Seconds(10)).ok());
    for (uint64_t i = 11; i <= 15; ++i) {
      ASSERT_TRUE((*log)->Append(absl::Now(), {}, Body(i)).ok());
    }
    // Wait until 11..15 are confirmed (written), as a subscriber sees them.
    for (int i = 0; i < 1000 && oracle.confirmed.load() < 15; ++i) {
      absl::SleepFor(absl::Milliseconds(2));
    }
    ASSERT_EQ(oracle.confirmed.load(), 15u);
    fs.CrashAtOp(fs.ops() + 1);  // the process dies before closing cleanly
  }
  PowerLossModel drop;
  drop.data = DataLoss::kDropUnsynced;
  fs.PowerLoss(drop);
  {
    // The loss is reported: every seq past the last one found is skipped.
    absl::StatusOr<std::unique_ptr<TopicLog>> log =
        TopicLog::Open(TopicOpts(FsyncPolicy::kNone, nullptr));
    ASSERT_TRUE(log.ok()) << log.status();
    EXPECT_EQ((*log)->recovery().seqs_skipped,
              (*log)->recovery().next_seq - 11);
    EXPECT_GE((*log)->recovery().seqs_skipped, 5u);
  }
  TopicState s;
  std::string error;
  ASSERT_TRUE(ReadTopic(FsyncPolicy::kNone, &s, &error)) << error;
  ASSERT_EQ(s.messages.size(), 10u);  // 11..15 were lost...
  EXPECT_EQ(s.messages.back().first, 10u);
  EXPECT_GT(s.next_seq, 15u);  // ...and their seqs stay unused
  absl::StatusOr<std::unique_ptr<TopicLog>> log =
      TopicLog::Open(TopicOpts(FsyncPolicy::kNone, nullptr));
  ASSERT_TRUE(log.ok()) << log.status();
  // ReadTopic's open already recovered; this clean reopen skips nothing.
  EXPECT_EQ((*log)->recovery().seqs_skipped, 0u);
  absl::StatusOr<uint64_t> seq = (*log)->Append(absl::Now(), {}, "new");
  ASSERT_TRUE(seq.ok());
  EXPECT_GT(*seq, 15u);
}

}  // namespace
}  // namespace fabric
