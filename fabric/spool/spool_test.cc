// SPDX-License-Identifier: Apache-2.0
// Behaviour of `fabric::Spool` through its public API: round trips across
// reopen, durability callbacks per fsync policy, the size limit, dead
// letters, the directory lock and I/O failures (fail-stop).
#include "fabric/spool/spool.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <thread>
#include <type_traits>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "fabric/spool/internal/file_system.h"
#include "fabric/spool/internal/file_util.h"
#include "fabric/spool/internal/mem_file_system.h"
#include "fabric/spool/internal/spool_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::spool_internal::MemFileSystem;
using ::fabric::spool_internal::MemOp;
using ::fabric::spool_internal::ScopedFileSystem;
using ::fabric::spool_internal::testing::Body;
using ::fabric::spool_internal::testing::SegmentPaths;
using ::fabric::spool_internal::testing::SizeOf;
using ::fabric::spool_internal::testing::TempDir;
using ::fabric::spool_internal::testing::TestOptions;
using ::fabric::testing::IsOk;
using ::fabric::testing::StatusIs;
using ::fabric::testing::WaitUntil;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

static_assert(!std::is_copy_constructible_v<Spool>);
static_assert(!std::is_copy_assignable_v<Spool>);

std::vector<uint64_t> Seqs(const std::vector<SpooledTask>& tasks) {
  std::vector<uint64_t> seqs;
  for (const SpooledTask& t : tasks) seqs.push_back(t.seq);
  return seqs;
}

// Records `on_durable` calls. Thread-safe.
class DurableLog {
 public:
  void Attach(SpoolOptions* options) {
    options->on_durable = [this](uint64_t seq) {
      absl::MutexLock l(&mu_);
      seqs_.push_back(seq);
    };
    options->on_error = [this](const absl::Status& status) {
      absl::MutexLock l(&mu_);
      error_ = status;
      failed_.Notify();
    };
  }
  std::vector<uint64_t> seqs() const {
    absl::MutexLock l(&mu_);
    return seqs_;
  }
  uint64_t last() const {
    absl::MutexLock l(&mu_);
    return seqs_.empty() ? 0 : seqs_.back();
  }
  absl::Status WaitForError() {
    failed_.WaitForNotificationWithTimeout(absl::Seconds(10));
    absl::MutexLock l(&mu_);
    return error_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<uint64_t> seqs_ ABSL_GUARDED_BY(mu_);
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  absl::Notification failed_;
};

TEST(FsyncPolicy, NamesRoundTrip) {
  for (FsyncPolicy p : {FsyncPolicy::kAlways, FsyncPolicy::kBatch,
                        FsyncPolicy::kInterval, FsyncPolicy::kNone}) {
    EXPECT_THAT(ParseFsyncPolicy(FsyncPolicyName(p)),
                ::fabric::testing::IsOkAndHolds(p));
  }
  EXPECT_THAT(ParseFsyncPolicy("sometimes"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(Spool, OpenRejectsBadOptions) {
  const TempDir tmp("spool");
  const std::string& dir = tmp.path();
  SpoolOptions options = TestOptions(dir);
  options.queue = "";
  EXPECT_THAT(Spool::Open(options),
              StatusIs(absl::StatusCode::kInvalidArgument));
  options = TestOptions("");
  EXPECT_THAT(Spool::Open(options),
              StatusIs(absl::StatusCode::kInvalidArgument));
  options = TestOptions(dir);
  options.segment_bytes = 100;
  EXPECT_THAT(Spool::Open(options),
              StatusIs(absl::StatusCode::kInvalidArgument));
  options = TestOptions(dir, FsyncPolicy::kInterval);
  options.fsync_interval = absl::ZeroDuration();
  EXPECT_THAT(Spool::Open(options),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(Spool, RoundTripAcrossReopen) {
  const TempDir tmp("spool");
  const std::string& dir = tmp.path();
  NodeId id;
  {
    FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(dir)));
    id = spool->producer_id();
    EXPECT_FALSE(id.IsZero());
    EXPECT_TRUE(spool->TakePending().empty());
    for (uint64_t i = 1; i <= 10; ++i) {
      Headers headers = {{"n", absl::StrCat(i)}, {"kind", "test"}};
      EXPECT_THAT(spool->Append(headers, Body(i)),
                  ::fabric::testing::IsOkAndHolds(i));
    }
    spool->Ack(2);
    spool->Ack(5);
    spool->Ack(5);   // twice: harmless
    spool->Ack(99);  // unknown: ignored
    FABRIC_ASSERT_OK(spool->Flush(absl::Seconds(10)));
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(dir)));
  EXPECT_EQ(spool->producer_id(), id);
  const SpoolReport& report = spool->recovery();
  EXPECT_EQ(report.enqueued, 10u);
  EXPECT_EQ(report.acked, 2u);
  EXPECT_EQ(report.pending, 8u);
  EXPECT_EQ(report.next_seq, 11u);
  EXPECT_EQ(report.torn_tail_bytes, 0u);
  EXPECT_TRUE(report.corrupt.empty());
  EXPECT_EQ(report.queue, "q");
  std::vector<SpooledTask> pending = spool->TakePending();
  EXPECT_THAT(Seqs(pending), ElementsAre(1, 3, 4, 6, 7, 8, 9, 10));
  for (const SpooledTask& task : pending) {
    EXPECT_EQ(task.body, Body(task.seq));
    EXPECT_EQ(task.headers.at("n"), absl::StrCat(task.seq));
    EXPECT_EQ(task.headers.at("kind"), "test");
    EXPECT_LT(absl::AbsDuration(absl::Now() - task.enqueued),
              absl::Minutes(10));
  }
  EXPECT_TRUE(spool->TakePending().empty());  // moved out once
  EXPECT_THAT(spool->Append({}, "next"), ::fabric::testing::IsOkAndHolds(11));
}

TEST(Spool, SeqResumesAfterEverythingAckedAndDeleted) {
  const TempDir tmp("spool");
  const std::string& dir = tmp.path();
  SpoolOptions options = TestOptions(dir);
  options.segment_bytes = 4096;
  {
    FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(options));
    for (uint64_t i = 1; i <= 200; ++i) {
      FABRIC_ASSERT_OK(spool->Append({}, Body(i)).status());
    }
    for (uint64_t i = 1; i <= 200; ++i) spool->Ack(i);
    FABRIC_ASSERT_OK(spool->Flush(absl::Seconds(10)));
    EXPECT_TRUE(WaitUntil([&] { return SegmentPaths(dir).size() <= 2; },
                          absl::Seconds(20)));
  }
  for (int round = 0; round < 3; ++round) {
    FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(options));
    EXPECT_TRUE(spool->TakePending().empty());
    EXPECT_EQ(spool->recovery().next_seq, 201u);
    // The recovered segments hold nothing live: they go once idle.
    EXPECT_TRUE(WaitUntil([&] { return SegmentPaths(dir).size() == 1; },
                          absl::Seconds(20)));
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(options));
  EXPECT_THAT(spool->Append({}, "x"), ::fabric::testing::IsOkAndHolds(201));
}

TEST(Spool, ReopenForAnotherQueueFails) {
  const TempDir tmp("spool");
  const std::string& dir = tmp.path();
  { FABRIC_ASSERT_OK(Spool::Open(TestOptions(dir)).status()); }
  SpoolOptions options = TestOptions(dir);
  options.queue = "other";
  EXPECT_THAT(Spool::Open(options),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

class SpoolPolicyTest : public ::testing::TestWithParam<FsyncPolicy> {};

TEST_P(SpoolPolicyTest, OnDurableReportsIncreasingSeqs) {
  const TempDir tmp("spool");
  const std::string& dir = tmp.path();
  SpoolOptions options = TestOptions(dir, GetParam());
  options.fsync_interval = absl::Milliseconds(5);
  options.segment_bytes = 16 * 1024;  // a few rolls on the way
  DurableLog log;
  log.Attach(&options);
  FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(options));
  const uint64_t n = GetParam() == FsyncPolicy::kAlways ? 60 : 400;
  for (uint64_t i = 1; i <= n; ++i) {
    FABRIC_ASSERT_OK(spool->Append({}, Body(i)).status());
    if (i % 3 == 0) spool->Ack(i - 1);
  }
  FABRIC_ASSERT_OK(spool->Flush(absl::Seconds(20)));
  // Flush returns after `on_durable` covered everything appended.
  ASSERT_EQ(log.last(), n);
  const std::vector<uint64_t> seqs = log.seqs();
  for (size_t i = 1; i < seqs.size(); ++i) EXPECT_LT(seqs[i - 1], seqs[i]);
  if (GetParam() == FsyncPolicy::kAlways) {
    // One record, one fdatasync, one confirmation.
    EXPECT_EQ(seqs.size(), n);
  }
  FABRIC_EXPECT_OK(spool->health());
  FABRIC_EXPECT_OK(spool->Flush(absl::Seconds(10)));  // nothing left: at once
}

INSTANTIATE_TEST_SUITE_P(
    Policies, SpoolPolicyTest,
    ::testing::Values(FsyncPolicy::kAlways, FsyncPolicy::kBatch,
                      FsyncPolicy::kInterval, FsyncPolicy::kNone),
    [](const auto& info) { return std::string(FsyncPolicyName(info.param)); });

TEST(Spool, RejectsOversizedTask) {
  const TempDir tmp("spool");
  const std::string& dir = tmp.path();
  FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(dir)));
  const std::string huge(spool_internal::kMaxPayloadBytes + 1, 'x');
  EXPECT_THAT(spool->Append({}, huge),
              StatusIs(absl::StatusCode::kInvalidArgument));
  const std::string big(1 << 20, 'b');
  FABRIC_ASSERT_OK_AND_ASSIGN(uint64_t seq, spool->Append({}, big));
  spool.reset();
  FABRIC_ASSERT_OK_AND_ASSIGN(spool, Spool::Open(TestOptions(dir)));
  std::vector<SpooledTask> pending = spool->TakePending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].seq, seq);
  EXPECT_EQ(pending[0].body, big);
}

TEST(Spool, SizeLimitAndWaitForRoom) {
  const TempDir tmp("spool");
  const std::string& dir = tmp.path();
  SpoolOptions options = TestOptions(dir);
  options.max_bytes = 2000;
  FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(options));
  EXPECT_EQ(spool->max_bytes(), 2000u);
  uint64_t appended = 0;
  absl::Status full;
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<uint64_t> seq = spool->Append({}, Body(i));
    if (!seq.ok()) {
      full = seq.status();
      break;
    }
    appended = *seq;
  }
  ASSERT_GT(appended, 1u);
  EXPECT_THAT(full, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(std::string(full.message()), HasSubstr("max_bytes = 2000"));
  EXPECT_LE(spool->live_bytes(), 2000u);
  // Nothing frees room before the deadline.
  EXPECT_FALSE(spool->WaitForRoom(absl::Now() + absl::Milliseconds(1)));

  absl::Notification waiting;
  bool room = false;
  std::thread waiter([&] {
    waiting.Notify();
    room = spool->WaitForRoom(absl::Now() + absl::Seconds(30));
  });
  waiting.WaitForNotification();
  for (uint64_t seq = 1; seq <= appended; ++seq) spool->Ack(seq);
  waiter.join();
  EXPECT_TRUE(room);
  EXPECT_EQ(spool->live_bytes(), 0u);
  FABRIC_EXPECT_OK(spool->Append({}, Body(1)).status());
}

TEST(Spool, DeadLettersLifecycle) {
  const TempDir tmp("spool");
  const std::string& dir = tmp.path();
  {
    FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(dir)));
    for (uint64_t i = 1; i <= 5; ++i) {
      FABRIC_ASSERT_OK(
          spool->Append({{"i", absl::StrCat(i)}}, Body(i)).status());
    }
    for (uint64_t seq : {2, 3}) {
      DeadLetter dead;
      dead.task =
          SpooledTask{seq, absl::Now(), {{"i", absl::StrCat(seq)}}, Body(seq)};
      dead.attempts = 20;
      dead.reason = seq == 2 ? "max_attempts" : "rejected: bad input";
      dead.died = absl::FromUnixSeconds(1700000000);
      FABRIC_ASSERT_OK(spool->AddDead(dead));
    }
    DeadLetter again;
    again.task.seq = 2;
    EXPECT_THAT(spool->AddDead(again),
                StatusIs(absl::StatusCode::kAlreadyExists));
    ASSERT_EQ(spool->DeadLetters().size(), 2u);
    spool->Ack(1);
  }
  // Readable without opening.
  FABRIC_ASSERT_OK_AND_ASSIGN(std::vector<DeadLetter> scanned,
                              Spool::ScanDead(dir));
  ASSERT_EQ(scanned.size(), 2u);
  EXPECT_EQ(scanned[0].task.seq, 2u);
  EXPECT_EQ(scanned[0].reason, "max_attempts");
  EXPECT_EQ(scanned[0].attempts, 20u);
  EXPECT_EQ(scanned[0].died, absl::FromUnixSeconds(1700000000));
  EXPECT_EQ(scanned[0].task.body, Body(2));
  EXPECT_EQ(scanned[1].reason, "rejected: bad input");
  FABRIC_ASSERT_OK_AND_ASSIGN(SpoolReport report, Spool::Scan(dir));
  EXPECT_EQ(report.dead, 2u);
  EXPECT_EQ(report.pending, 2u);

  {
    FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(dir)));
    EXPECT_THAT(Seqs(spool->TakePending()), ElementsAre(4, 5));
    EXPECT_THAT(spool->ReplayDead({7}), StatusIs(absl::StatusCode::kNotFound));
    FABRIC_ASSERT_OK_AND_ASSIGN(std::vector<SpooledTask> replayed,
                                spool->ReplayDead({2}));
    ASSERT_EQ(replayed.size(), 1u);
    EXPECT_EQ(replayed[0].seq, 6u);
    EXPECT_EQ(replayed[0].body, Body(2));
    EXPECT_EQ(replayed[0].headers.at("i"), "2");
    std::vector<DeadLetter> left = spool->DeadLetters();
    ASSERT_EQ(left.size(), 1u);
    EXPECT_EQ(left[0].task.seq, 3u);
  }
  {
    FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(dir)));
    EXPECT_THAT(Seqs(spool->TakePending()), ElementsAre(4, 5, 6));
    ASSERT_EQ(spool->DeadLetters().size(), 1u);
    EXPECT_THAT(spool->PurgeDead({42}), ::fabric::testing::IsOkAndHolds(0));
    EXPECT_THAT(spool->PurgeDead({}), ::fabric::testing::IsOkAndHolds(1));
    EXPECT_TRUE(spool->DeadLetters().empty());
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(dir)));
  EXPECT_TRUE(spool->DeadLetters().empty());
  EXPECT_THAT(Seqs(spool->TakePending()), ElementsAre(4, 5, 6));
  EXPECT_EQ(spool->recovery().dead, 0u);
}

TEST(Spool, ReplayAllDeadLetters) {
  const TempDir tmp("spool");
  const std::string& dir = tmp.path();
  FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(dir)));
  for (uint64_t i = 1; i <= 3; ++i) {
    FABRIC_ASSERT_OK(spool->Append({}, Body(i)).status());
    FABRIC_ASSERT_OK(spool->AddDead(DeadLetter{
        SpooledTask{i, absl::Now(), {}, Body(i)}, 1, "r", absl::Now()}));
  }
  EXPECT_EQ(spool->live_bytes() > 0, true);
  FABRIC_ASSERT_OK_AND_ASSIGN(std::vector<SpooledTask> replayed,
                              spool->ReplayDead({}));
  EXPECT_THAT(Seqs(replayed), ElementsAre(4, 5, 6));
  EXPECT_TRUE(spool->DeadLetters().empty());
}

TEST(Spool, SecondOpenInProcessFails) {
  const TempDir tmp("spool");
  const std::string& dir = tmp.path();
  FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(dir)));
  absl::StatusOr<std::unique_ptr<Spool>> second = Spool::Open(TestOptions(dir));
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr("in use by another process"));
}

TEST(Spool, LockHeldByAnotherProcess) {
  const TempDir tmp("spool");
  const std::string& dir = tmp.path();
  int ready[2];
  int release[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(release), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(ready[0]);
    close(release[1]);
    absl::StatusOr<std::unique_ptr<Spool>> spool =
        Spool::Open(TestOptions(dir));
    const char byte = spool.ok() ? 'R' : 'E';
    if (write(ready[1], &byte, 1) != 1) _exit(2);
    char unused;
    while (read(release[0], &unused, 1) < 0 && errno == EINTR) {
    }
    _exit(spool.ok() ? 0 : 1);
  }
  close(ready[1]);
  close(release[0]);
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  ASSERT_EQ(byte, 'R');
  absl::StatusOr<std::unique_ptr<Spool>> spool = Spool::Open(TestOptions(dir));
  EXPECT_THAT(spool, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(spool.status().message()),
              HasSubstr("in use by another process"));
  close(release[1]);
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
  close(ready[0]);
  // Released when the process went away.
  FABRIC_EXPECT_OK(Spool::Open(TestOptions(dir)).status());
}

// Runs in a forked child with RLIMIT_FSIZE: the writes past the limit fail
// with EFBIG. Exits 0 when the spool behaved, else a code naming the check.
[[noreturn]] void DiskFullChild(const std::string& dir) {
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit limit = {64 * 1024, 64 * 1024};
  if (setrlimit(RLIMIT_FSIZE, &limit) != 0) _exit(10);
  SpoolOptions options = TestOptions(dir, FsyncPolicy::kBatch);
  DurableLog log;
  log.Attach(&options);
  absl::StatusOr<std::unique_ptr<Spool>> spool = Spool::Open(options);
  if (!spool.ok()) _exit(11);
  uint64_t last = 0;
  for (int i = 0; i < 2000; ++i) {
    absl::StatusOr<uint64_t> seq = (*spool)->Append({}, Body(i, 500));
    if (!seq.ok()) break;
    last = *seq;
    if (i % 10 == 0 && !(*spool)->Flush(absl::Seconds(10)).ok()) break;
  }
  const absl::Status error = log.WaitForError();
  if (!absl::IsResourceExhausted(error)) _exit(12);
  if (error.message().find("spool disk full") == absl::string_view::npos) {
    _exit(13);
  }
  if (!absl::IsResourceExhausted((*spool)->health())) _exit(14);
  if (!absl::IsResourceExhausted((*spool)->Append({}, "x").status())) {
    _exit(15);
  }
  if (log.last() >= last) _exit(16);  // the failed batch was confirmed
  if (!absl::IsResourceExhausted((*spool)->Flush(absl::Seconds(1)))) {
    _exit(17);
  }
  _exit(0);
}

TEST(Spool, DiskFullFailsWithResourceExhausted) {
  const TempDir tmp("spool");
  const std::string& dir = tmp.path();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) DiskFullChild(dir);
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0) << "see DiskFullChild for the code";
  // No partial record was left behind.
  FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(TestOptions(dir)));
  EXPECT_EQ(spool->recovery().torn_tail_bytes, 0u);
  EXPECT_TRUE(spool->recovery().corrupt.empty());
  EXPECT_GT(spool->recovery().pending, 0u);
}

TEST(Spool, FdatasyncFailureIsFailStop) {
  MemFileSystem fs;
  ScopedFileSystem use(&fs);
  const std::string dir = "/disk/spool";
  SpoolOptions options = TestOptions(dir, FsyncPolicy::kBatch);
  DurableLog log;
  log.Attach(&options);
  FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(options));
  FABRIC_ASSERT_OK(spool->Append({}, Body(1)).status());
  ASSERT_TRUE(WaitUntil([&] { return log.last() == 1; }, absl::Seconds(10)));
  fs.SetFault([](MemOp op, const std::string&, uint64_t) {
    return op == MemOp::kSync ? EIO : 0;
  });
  FABRIC_ASSERT_OK(spool->Append({}, Body(2)).status());
  const absl::Status error = log.WaitForError();
  EXPECT_THAT(error, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(error.message()), HasSubstr("fdatasync"));
  fs.SetFault(nullptr);
  // Never "retry fsync then confirm": seq 2 stays unconfirmed.
  EXPECT_EQ(log.last(), 1u);
  EXPECT_THAT(spool->health(), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(spool->Append({}, Body(3)),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(spool->Flush(absl::Seconds(1)),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_FALSE(spool->WaitForRoom(absl::Now() + absl::Seconds(1)));
  spool.reset();
  // Recovery is consistent; the unconfirmed task may come back (it was
  // written) and is then delivered at least once.
  FABRIC_ASSERT_OK_AND_ASSIGN(spool, Spool::Open(TestOptions(dir)));
  EXPECT_TRUE(spool->recovery().corrupt.empty());
  std::vector<uint64_t> seqs = Seqs(spool->TakePending());
  ASSERT_FALSE(seqs.empty());
  EXPECT_EQ(seqs[0], 1u);
}

TEST(Spool, WriteEnospcIsResourceExhaustedAndLeavesNoPartialRecord) {
  MemFileSystem fs;
  ScopedFileSystem use(&fs);
  const std::string dir = "/disk/spool";
  SpoolOptions options = TestOptions(dir, FsyncPolicy::kBatch);
  DurableLog log;
  log.Attach(&options);
  FABRIC_ASSERT_OK_AND_ASSIGN(auto spool, Spool::Open(options));
  FABRIC_ASSERT_OK(spool->Append({}, Body(1)).status());
  FABRIC_ASSERT_OK(spool->Flush(absl::Seconds(10)));
  const std::string segment = SegmentPaths(dir).back();
  const uint64_t size = SizeOf(segment);
  fs.SetFault([](MemOp op, const std::string&, uint64_t) {
    return op == MemOp::kWrite ? ENOSPC : 0;
  });
  FABRIC_ASSERT_OK(spool->Append({}, Body(2)).status());
  const absl::Status error = log.WaitForError();
  EXPECT_THAT(error, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(std::string(error.message()), HasSubstr("spool disk full"));
  fs.SetFault(nullptr);
  EXPECT_EQ(SizeOf(segment), size);
  EXPECT_EQ(log.last(), 1u);
  EXPECT_THAT(spool->Append({}, Body(3)),
              StatusIs(absl::StatusCode::kResourceExhausted));
  spool.reset();
  FABRIC_ASSERT_OK_AND_ASSIGN(spool, Spool::Open(TestOptions(dir)));
  EXPECT_THAT(Seqs(spool->TakePending()), ElementsAre(1));
  // Seq 2 was never written nor confirmed; the spool works again.
  FABRIC_EXPECT_OK(spool->Append({}, "x").status());
}

}  // namespace
}  // namespace fabric
