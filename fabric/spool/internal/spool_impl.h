// SPDX-License-Identifier: Apache-2.0
// `Spool::Impl`: the state behind `fabric::Spool`, on the append log both
// logs share (`LogCore`, log_core.h): front-end calls (any thread) encode
// records under `mu_` and return; the core's writer thread writes, syncs,
// confirms and, when idle, runs `Maintain` here, which deletes and compacts
// segments. spool_impl.cc holds the front end, spool_writer.cc the
// maintenance.
#ifndef FABRIC_SPOOL_INTERNAL_SPOOL_IMPL_H_
#define FABRIC_SPOOL_INTERNAL_SPOOL_IMPL_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fabric/spool/internal/file_util.h"
#include "fabric/spool/internal/index.h"
#include "fabric/spool/internal/log_core.h"
#include "fabric/spool/internal/recovery.h"
#include "fabric/spool/internal/spool_format.h"
#include "fabric/spool/spool.h"

namespace fabric {

// Thread safety: thread-safe (see spool.h). Lock order: `mu_` (the log
// core's) only; user callbacks run on the writer thread with no lock held.
class Spool::Impl : public spool_internal::LogCore {
 public:
  // `lock` holds the directory's flock; `active` is the freshly created
  // segment `active_segment`, empty but for its header.
  Impl(SpoolOptions options, spool_internal::File lock,
       spool_internal::Recovered recovered, spool_internal::File active,
       uint64_t active_segment);
  ~Impl() override;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  void Start() { StartWriter(); }

  const NodeId& producer_id() const { return producer_id_; }
  const SpoolReport& recovery() const { return recovery_; }
  std::vector<SpooledTask> TakePending();
  std::vector<DeadLetter> DeadLetters() const;
  absl::StatusOr<uint64_t> Append(const Headers& headers,
                                  absl::string_view body);
  void Ack(uint64_t seq);
  absl::Status AddDead(const DeadLetter& dead);
  absl::StatusOr<std::vector<SpooledTask>> ReplayDead(
      const std::vector<uint64_t>& seqs);
  absl::StatusOr<size_t> PurgeDead(const std::vector<uint64_t>& seqs);
  uint64_t live_bytes() const;
  uint64_t max_bytes() const { return options_.max_bytes; }
  bool WaitForRoom(absl::Time deadline);

 private:
  // Front end (spool_impl.cc).
  void EncodePendingAcksLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EncodeRemovalsLocked(const std::vector<uint64_t>& seqs)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RoomMayHaveFreedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasRoomLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // LogCore hooks.
  void BeforeBatchLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    EncodePendingAcksLocked();
  }
  bool HasOwnWorkLocked() const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !pending_acks_.empty();
  }
  void AfterRollLocked(uint64_t segment, uint64_t base_seq,
                       uint64_t base_lsn) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnPlacedLocked(const Placed& placed) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnConfirmed(uint64_t seq) override;
  void OnFailed(const absl::Status& status) override;
  DiskFullAction OnDiskFull() const override {
    return options_.on_refused ? DiskFullAction::kRefuse
                               : DiskFullAction::kFail;
  }
  void OnRefusedLocked(const std::vector<RefusedRecord>& records) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnRefused(const std::vector<uint64_t>& seqs,
                 const absl::Status& status) override;
  // Deletes resolved segments, then compacts at most one (spool_writer.cc).
  void Maintain() override;
  absl::Status DeleteResolvedSegments();
  absl::Status CompactOneSegment();

  // Immutable after construction.
  const SpoolOptions options_;
  const NodeId producer_id_;
  const SpoolReport recovery_;
  spool_internal::File lock_;

  absl::CondVar room_cv_;  // WaitForRoom waits for live bytes to drop
  int room_waiters_ ABSL_GUARDED_BY(mu_) = 0;
  // Size of the last Append refused by the size limit, 0 after a success:
  // WaitForRoom waits until that record would fit.
  uint64_t refused_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<uint64_t> pending_acks_ ABSL_GUARDED_BY(mu_);
  std::string scratch_ ABSL_GUARDED_BY(mu_);      // one record's payload
  std::string ack_scratch_ ABSL_GUARDED_BY(mu_);  // ACK payloads (a roll can
                                                  // encode them mid-append)
  spool_internal::SpoolIndex index_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, DeadLetter> dead_ ABSL_GUARDED_BY(mu_);
  std::vector<SpooledTask> recovered_pending_ ABSL_GUARDED_BY(mu_);

  // Writer thread only.
  absl::Time compaction_backoff_until_ = absl::InfinitePast();
};

}  // namespace fabric

#endif  // FABRIC_SPOOL_INTERNAL_SPOOL_IMPL_H_
