// SPDX-License-Identifier: Apache-2.0
// Segment roll, deletion of resolved segments and compaction of sparse ones
// (docs/spool.md section 8), checked against a model of what must be
// pending, across reopens, injected faults and SIGKILL at random points.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "fabric/spool/internal/file_system.h"
#include "fabric/spool/internal/file_util.h"
#include "fabric/spool/internal/mem_file_system.h"
#include "fabric/spool/internal/spool_test_util.h"
#include "fabric/spool/spool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::spool_internal::testing::Body;
using ::fabric::spool_internal::testing::SegmentBytes;
using ::fabric::spool_internal::testing::SegmentPaths;
using ::fabric::spool_internal::testing::TempDir;
using ::fabric::spool_internal::testing::TestOptions;
using ::fabric::testing::WaitUntil;

std::set<uint64_t> SeqSet(const std::vector<SpooledTask>& tasks) {
  std::set<uint64_t> seqs;
  for (const SpooledTask& t : tasks) seqs.insert(t.seq);
  return seqs;
}

SpoolOptions SmallSegments(const std::string& dir, uint64_t bytes = 4096) {
  SpoolOptions options = TestOptions(dir);
  options.segment_bytes = bytes;
  return options;
}

TEST(SpoolMaintenance, ResolvedSegmentsAreDeleted) {
  const TempDir tmp("spool");
  const std::string& dir = tmp.path();
  FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(SmallSegments(dir)));
  for (uint64_t i = 1; i <= 400; ++i) {
    FABRIC_ASSERT_OK(spool->Append({}, Body(i)).status());
  }
  FABRIC_ASSERT_OK(spool->Flush(absl::Seconds(10)));
  const size_t segments = SegmentPaths(dir).size();
  const uint64_t bytes = SegmentBytes(dir);
  EXPECT_GE(segments, 10u);
  for (uint64_t i = 1; i <= 400; ++i) spool->Ack(i);
  FABRIC_ASSERT_OK(spool->Flush(absl::Seconds(10)));
  EXPECT_TRUE(WaitUntil([&] { return SegmentPaths(dir).size() <= 2; },
                        absl::Seconds(20)));
  EXPECT_LT(SegmentBytes(dir), bytes / 4);
  EXPECT_EQ(spool->live_bytes(), 0u);
  spool.reset();
  FABRIC_ASSERT_OK_AND_ASSIGN(spool, Spool::Open(SmallSegments(dir)));
  EXPECT_TRUE(spool->TakePending().empty());
  EXPECT_TRUE(spool->recovery().corrupt.empty());
  EXPECT_THAT(spool->Append({}, "x"), ::fabric::testing::IsOkAndHolds(401));
}

TEST(SpoolMaintenance, SparseSegmentsAreCompacted) {
  const TempDir tmp("spool");
  const std::string& dir = tmp.path();
  FABRIC_ASSERT_OK_AND_ASSIGN(auto spool,
                              Spool::Open(SmallSegments(dir, 8192)));
  for (uint64_t i = 1; i <= 600; ++i) {
    FABRIC_ASSERT_OK(spool->Append({{"i", absl::StrCat(i)}}, Body(i)).status());
  }
  FABRIC_ASSERT_OK(spool->Flush(absl::Seconds(10)));
  const uint64_t before = SegmentBytes(dir);
  const size_t segments = SegmentPaths(dir).size();
  std::set<uint64_t> expected;
  for (uint64_t i = 1; i <= 600; ++i) {
    if (i % 10 == 0) {
      expected.insert(i);
    } else {
      spool->Ack(i);
    }
  }
  FABRIC_ASSERT_OK(spool->Flush(absl::Seconds(10)));
  // Every old segment keeps a tenth of its tasks: none can be deleted, all
  // are compacted.
  EXPECT_TRUE(WaitUntil([&] { return SegmentBytes(dir) < before / 3; },
                        absl::Seconds(20)))
      << SegmentBytes(dir) << " of " << before;
  EXPECT_EQ(SegmentPaths(dir).size(), segments);
  spool.reset();
  FABRIC_ASSERT_OK_AND_ASSIGN(spool, Spool::Open(SmallSegments(dir, 8192)));
  EXPECT_TRUE(spool->recovery().corrupt.empty());
  std::vector<SpooledTask> pending = spool->TakePending();
  EXPECT_EQ(SeqSet(pending), expected);
  for (const SpooledTask& task : pending) {
    EXPECT_EQ(task.body, Body(task.seq));
    EXPECT_EQ(task.headers.at("i"), absl::StrCat(task.seq));
  }
  // Acking the rest lets every compacted segment go.
  for (uint64_t seq : expected) spool->Ack(seq);
  FABRIC_ASSERT_OK(spool->Flush(absl::Seconds(10)));
  EXPECT_TRUE(WaitUntil([&] { return SegmentPaths(dir).size() == 1; },
                        absl::Seconds(20)));
}

TEST(SpoolMaintenance, AcksInLaterSegmentsStayUntilTheirTargetsAreGone) {
  const TempDir tmp("spool");
  const std::string& dir = tmp.path();
  {
    FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(SmallSegments(dir)));
    for (uint64_t i = 1; i <= 100; ++i) {
      FABRIC_ASSERT_OK(spool->Append({}, Body(i)).status());
    }
    // Acked only after many more appends: the ACK records land segments
    // after their ENQs. Seq 1 stays pending throughout.
    for (uint64_t i = 101; i <= 300; ++i) {
      FABRIC_ASSERT_OK(spool->Append({}, Body(i)).status());
      if (i % 2 == 0) spool->Ack(i - 99);
    }
    for (uint64_t i = 2; i <= 300; ++i) spool->Ack(i);
    FABRIC_ASSERT_OK(spool->Flush(absl::Seconds(10)));
    EXPECT_TRUE(WaitUntil([&] { return SegmentPaths(dir).size() <= 3; },
                          absl::Seconds(20)));
  }
  {
    FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(SmallSegments(dir)));
    EXPECT_EQ(SeqSet(spool->TakePending()), std::set<uint64_t>{1});
    spool->Ack(1);
    FABRIC_ASSERT_OK(spool->Flush(absl::Seconds(10)));
    EXPECT_TRUE(WaitUntil([&] { return SegmentPaths(dir).size() == 1; },
                          absl::Seconds(20)));
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(SmallSegments(dir)));
  EXPECT_TRUE(spool->TakePending().empty());
  EXPECT_EQ(spool->recovery().next_seq, 301u);
}

// What must be pending and dead after any sequence of operations.
struct Model {
  std::map<uint64_t, std::string> pending;  // seq -> body
  std::map<uint64_t, std::string> dead;

  template <typename Rng>
  static uint64_t Pick(const std::map<uint64_t, std::string>& m, Rng& rng,
                       bool oldest_biased) {
    auto it = m.begin();
    const size_t span =
        oldest_biased ? std::min<size_t>(m.size(), 20) : m.size();
    std::advance(it, rng() % span);
    return it->first;
  }
};

void CheckAgainstModel(Spool& spool, const Model& model) {
  std::vector<SpooledTask> pending = spool.TakePending();
  ASSERT_EQ(pending.size(), model.pending.size());
  for (const SpooledTask& task : pending) {
    auto it = model.pending.find(task.seq);
    ASSERT_NE(it, model.pending.end()) << "resurrected seq " << task.seq;
    EXPECT_EQ(task.body, it->second);
  }
  std::vector<DeadLetter> dead = spool.DeadLetters();
  ASSERT_EQ(dead.size(), model.dead.size());
  for (const DeadLetter& d : dead) {
    auto it = model.dead.find(d.task.seq);
    ASSERT_NE(it, model.dead.end()) << "resurrected dead seq " << d.task.seq;
    EXPECT_EQ(d.task.body, it->second);
  }
  EXPECT_TRUE(spool.recovery().corrupt.empty());
}

TEST(SpoolMaintenance, RandomWorkloadMatchesModelAcrossReopens) {
  const TempDir tmp("spool");
  const std::string& dir = tmp.path();
  const SpoolOptions options = SmallSegments(dir);
  std::mt19937_64 rng(20240611);
  Model model;
  for (int round = 0; round < 8; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(options));
    CheckAgainstModel(*spool, model);
    for (int op = 0; op < 1500; ++op) {
      const uint64_t r = rng() % 100;
      if (r < 50 || model.pending.empty()) {
        const std::string body = Body(rng() % 1000, 50 + rng() % 200);
        FABRIC_ASSERT_OK_AND_ASSIGN(uint64_t seq, spool->Append({}, body));
        model.pending[seq] = body;
      } else if (r < 85) {
        const uint64_t seq = Model::Pick(model.pending, rng, rng() % 4 != 0);
        spool->Ack(seq);
        model.pending.erase(seq);
      } else if (r < 92) {
        const uint64_t seq = Model::Pick(model.pending, rng, false);
        DeadLetter dead{SpooledTask{seq, absl::Now(), {}, model.pending[seq]},
                        3, "max_attempts", absl::Now()};
        FABRIC_ASSERT_OK(spool->AddDead(dead));
        model.dead[seq] = model.pending[seq];
        model.pending.erase(seq);
      } else if (r < 97 && !model.dead.empty()) {
        const uint64_t seq = Model::Pick(model.dead, rng, false);
        FABRIC_ASSERT_OK_AND_ASSIGN(std::vector<SpooledTask> tasks,
                                    spool->ReplayDead({seq}));
        ASSERT_EQ(tasks.size(), 1u);
        model.pending[tasks[0].seq] = model.dead[seq];
        model.dead.erase(seq);
      } else if (!model.dead.empty()) {
        const uint64_t seq = Model::Pick(model.dead, rng, false);
        FABRIC_ASSERT_OK(spool->PurgeDead({seq}).status());
        model.dead.erase(seq);
      }
      if (op % 300 == 299) {
        // Let the writer go idle so it deletes and compacts.
        FABRIC_ASSERT_OK(spool->Flush(absl::Seconds(10)));
        WaitUntil([] { return false; }, absl::Milliseconds(20));
      }
    }
    FABRIC_ASSERT_OK(spool->health());
    // Deletion and compaction keep the disk near the live data.
    EXPECT_TRUE(WaitUntil(
        [&] {
          return SegmentBytes(dir) <=
                 2 * spool->live_bytes() + 8 * options.segment_bytes;
        },
        absl::Seconds(20)))
        << SegmentBytes(dir) << " on disk, " << spool->live_bytes() << " live";
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(options));
  CheckAgainstModel(*spool, model);
}

TEST(SpoolMaintenance, FailedCompactionRenameLeavesTheOldSegment) {
  spool_internal::MemFileSystem fs;
  spool_internal::ScopedFileSystem use(&fs);
  const std::string dir = "/disk/spool";
  std::atomic<int> refused{0};
  std::atomic<bool> armed{false};
  fs.SetFault([&](spool_internal::MemOp op, const std::string& path, uint64_t) {
    if (armed && op == spool_internal::MemOp::kRename &&
        absl::EndsWith(path, "/seg-00000000000000000001.log")) {
      ++refused;
      return ENOSPC;
    }
    return 0;
  });
  std::set<uint64_t> expected;
  {
    FABRIC_ASSERT_OK_AND_ASSIGN(auto spool,
                                Spool::Open(SmallSegments(dir, 8192)));
    armed = true;  // only the compaction's rename of segment 1 fails
    for (uint64_t i = 1; i <= 200; ++i) {
      FABRIC_ASSERT_OK(spool->Append({}, Body(i)).status());
    }
    for (uint64_t i = 1; i <= 200; ++i) {
      if (i % 10 == 0) {
        expected.insert(i);
      } else {
        spool->Ack(i);
      }
    }
    FABRIC_ASSERT_OK(spool->Flush(absl::Seconds(10)));
    EXPECT_TRUE(WaitUntil([&] { return refused > 0; }, absl::Seconds(20)));
    FABRIC_EXPECT_OK(spool->health());  // a failed compaction is not fatal
  }
  armed = false;
  EXPECT_FALSE(spool_internal::FileExists(
      absl::StrCat(dir, "/seg-00000000000000000001.log.tmp")));
  FABRIC_ASSERT_OK_AND_ASSIGN(auto spool,
                              Spool::Open(SmallSegments(dir, 8192)));
  EXPECT_EQ(SeqSet(spool->TakePending()), expected);
}

// Child side of the kill test: appends, acks some durable tasks, and tells
// the parent its first appended seq ('F'), each durable seq ('D') and each
// seq about to be acked ('A').
[[noreturn]] void KillChild(const std::string& dir, int out) {
  auto send = [out](char kind, uint64_t seq) {
    char message[9];
    message[0] = kind;
    std::memcpy(message + 1, &seq, sizeof(seq));
    if (write(out, message, sizeof(message)) != sizeof(message)) _exit(3);
  };
  std::atomic<uint64_t> durable{0};
  SpoolOptions options = SmallSegments(dir);
  options.fsync = FsyncPolicy::kBatch;
  options.on_durable = [&](uint64_t seq) {
    durable = seq;
    send('D', seq);
  };
  absl::StatusOr<std::unique_ptr<Spool>> spool = Spool::Open(options);
  if (!spool.ok()) _exit(2);
  for (const SpooledTask& task : (*spool)->TakePending()) {
    send('A', task.seq);
    (*spool)->Ack(task.seq);
  }
  uint64_t next_ack = 0;
  uint64_t last = 0;
  for (uint64_t i = 0;; ++i) {
    // Like a producer with a window of unconfirmed tasks.
    while (last > durable.load() + 256) std::this_thread::yield();
    absl::StatusOr<uint64_t> seq = (*spool)->Append({}, Body(i));
    if (!seq.ok()) {
      fprintf(stderr, "append failed: %s\n", seq.status().ToString().c_str());
      _exit(4);
    }
    last = *seq;
    if (next_ack == 0) {
      next_ack = last;
      send('F', last);
    }
    for (; next_ack + 5 <= durable.load(); ++next_ack) {
      if (next_ack % 7 == 0) continue;  // some stay pending for good
      send('A', next_ack);
      (*spool)->Ack(next_ack);
    }
  }
}

TEST(SpoolMaintenance, KillAtRandomPointsLosesNothingConfirmed) {
  const TempDir tmp("spool");
  const std::string& dir = tmp.path();
  std::mt19937_64 rng(5);
  std::set<uint64_t> acked;
  std::set<uint64_t> never_confirmed;
  uint64_t confirmed = 0;
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(fds[0]);
      KillChild(dir, fds[1]);
    }
    close(fds[1]);
    const uint64_t kill_after = 50 + rng() % 1500;
    uint64_t messages = 0;
    bool killed = false;
    char message[9];
    while (true) {
      ssize_t n = read(fds[0], message, sizeof(message));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      ASSERT_EQ(n, 9);
      uint64_t seq;
      std::memcpy(&seq, message + 1, sizeof(seq));
      if (message[0] == 'D') confirmed = std::max(confirmed, seq);
      // Seqs between what the previous run confirmed and this run's first
      // append were never confirmed: unconfirmed appends the kill may have
      // torn, and seqs recovery skipped after a torn tail so none is
      // reused. A later watermark does not cover them.
      if (message[0] == 'F') {
        for (uint64_t s = confirmed + 1; s < seq; ++s)
          never_confirmed.insert(s);
      }
      if (message[0] == 'A') acked.insert(seq);
      if (++messages == kill_after && !killed) {
        kill(child, SIGKILL);
        killed = true;
      }
    }
    close(fds[0]);
    int wstatus = 0;
    ASSERT_EQ(waitpid(child, &wstatus, 0), child);
    ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exited " << wstatus;
    FABRIC_ASSERT_OK_AND_ASSIGN(SpoolReport report, Spool::Scan(dir));
    EXPECT_TRUE(report.corrupt.empty());
    FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(SmallSegments(dir)));
    const std::set<uint64_t> pending = SeqSet(spool->TakePending());
    for (uint64_t seq = 1; seq <= confirmed; ++seq) {
      if (!acked.contains(seq) && !never_confirmed.contains(seq)) {
        ASSERT_TRUE(pending.contains(seq)) << "lost confirmed seq " << seq;
      }
    }
  }
}

}  // namespace
}  // namespace fabric
