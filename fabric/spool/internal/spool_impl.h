// SPDX-License-Identifier: Apache-2.0
// `Spool::Impl`: the state behind `fabric::Spool`. Front-end calls (any
// thread) encode records into in-memory chunks under `mu_` and return; one
// writer thread writes the chunks, syncs them per the fsync policy, reports
// durability and, when idle, deletes and compacts segments. spool_impl.cc
// holds the front end, spool_writer.cc the writer thread.
#ifndef FABRIC_SPOOL_INTERNAL_SPOOL_IMPL_H_
#define FABRIC_SPOOL_INTERNAL_SPOOL_IMPL_H_

#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fabric/spool/internal/file_util.h"
#include "fabric/spool/internal/index.h"
#include "fabric/spool/internal/recovery.h"
#include "fabric/spool/internal/spool_format.h"
#include "fabric/spool/spool.h"

namespace fabric {

// Thread safety: thread-safe (see spool.h). Lock order: `mu_` only; user
// callbacks run on the writer thread with no lock held.
class Spool::Impl {
 public:
  // `lock` holds the directory's flock; `active` is the freshly created
  // segment `active_segment`, empty but for its header.
  Impl(SpoolOptions options, spool_internal::File lock,
       spool_internal::Recovered recovered, spool_internal::File active,
       uint64_t active_segment);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  void Start();

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
  absl::Status Flush(absl::Duration timeout);
  uint64_t live_bytes() const;
  uint64_t max_bytes() const { return options_.max_bytes; }
  bool WaitForRoom(absl::Time deadline);
  absl::Status health() const;

 private:
  // Encoded records bound for one segment file, written in order.
  struct Chunk {
    uint64_t segment = 0;
    bool new_segment = false;  // create the file first (a roll)
    uint64_t base_seq = 0;     // header fields when `new_segment`
    uint64_t base_lsn = 0;
    uint64_t seq_reserved = 0;  // header field when `new_segment`
    std::string data;
    uint64_t max_seq = 0;  // highest ENQ seq in `data`, 0 if none
    uint64_t max_lsn = 0;
    bool needs_sync = false;  // holds a record confirmed only once durable
    // Holds a RESERVE record: under kInterval/kNone it is fdatasynced before
    // anything in it is confirmed.
    bool reserves = false;
  };
  // What the writer learned from one batch.
  struct BatchResult {
    uint64_t max_seq = 0;
    bool needs_sync = false;
    uint64_t written_lsn = 0;  // max lsn of the chunks written
    // On a failure: the chunk it hit, and whether it was the disk filling
    // up while writing or creating a file (refusable, see `on_refused`).
    size_t failed_chunk = 0;
    bool disk_full = false;
  };

  // Front end (spool_impl.cc).
  void PrepareSpaceLocked(uint64_t record_size)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RollLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AppendRecordLocked(spool_internal::RecordType type,
                          absl::string_view payload, uint64_t enq_seq,
                          bool needs_sync) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EncodePendingAcksLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Under kInterval/kNone, queues a RESERVE record when `seq` is beyond the
  // reservation (docs/spool.md section 6.1).
  void ReserveLocked(uint64_t seq) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Before closing: records the exact last seq handed out, so a clean
  // restart does not skip the rest of the reservation.
  void ReleaseReservationLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EncodeRemovalsLocked(const std::vector<uint64_t>& seqs)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string TakeBufferLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WakeWriterLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RoomMayHaveFreedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckUsableLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The disk-full error during the back-off after a refusal, else OK.
  absl::Status CheckDiskLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasRoomLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Writer thread (spool_writer.cc).
  void WriterLoop();
  bool HasWorkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration IdleTimeoutLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteBatch(std::vector<Chunk>& batch, BatchResult* result);
  absl::Status OpenNextSegment(const Chunk& chunk);
  absl::Status Sync();
  void Confirm(uint64_t seq);
  void Fail(const absl::Status& status);
  // Disk full at `batch[from]`: refuses the ENQ records of `batch[from..]`,
  // requeues their other records, and starts the back-off. Returns the lsn
  // of the first requeued record, 0 when none (or when it failed instead).
  uint64_t Refuse(std::vector<Chunk>& batch, size_t from,
                  const absl::Status& status);
  void RecycleLocked(std::vector<Chunk>& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Deletes resolved segments, then compacts at most one.
  void Maintain();
  absl::Status DeleteResolvedSegments();
  absl::Status CompactOneSegment();
  std::string SegmentPath(uint64_t segment) const;

  // Immutable after construction.
  const SpoolOptions options_;
  const NodeId producer_id_;
  const SpoolReport recovery_;
  spool_internal::File lock_;

  mutable absl::Mutex mu_;
  absl::CondVar writer_cv_;  // the writer waits for work
  absl::CondVar done_cv_;    // Flush waits for syncs
  absl::CondVar room_cv_;    // WaitForRoom waits for live bytes to drop
  absl::Status failed_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool writer_idle_ ABSL_GUARDED_BY(mu_) = false;
  bool maintenance_due_ ABSL_GUARDED_BY(mu_) = true;
  // After a refusal (disk full): appends fail and the writer waits until
  // then before writing again.
  absl::Time disk_full_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Status disk_full_ ABSL_GUARDED_BY(mu_);
  int room_waiters_ ABSL_GUARDED_BY(mu_) = 0;
  // Size of the last Append refused by the size limit, 0 after a success:
  // WaitForRoom waits until that record would fit.
  uint64_t refused_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_);
  uint64_t next_lsn_ ABSL_GUARDED_BY(mu_);
  // Every seq up to this may be handed out without a new RESERVE record.
  uint64_t reserved_seq_ ABSL_GUARDED_BY(mu_);
  uint64_t segment_ ABSL_GUARDED_BY(mu_);        // receiving new records
  uint64_t segment_bytes_ ABSL_GUARDED_BY(mu_);  // its size with pending
  std::vector<Chunk> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> spare_buffers_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> pending_acks_ ABSL_GUARDED_BY(mu_);
  std::string scratch_ ABSL_GUARDED_BY(mu_);  // one record's payload
  std::string reserve_scratch_ ABSL_GUARDED_BY(mu_);
  std::string ack_scratch_ ABSL_GUARDED_BY(mu_);  // ACK payloads (a roll can
                                                  // encode them mid-append)
  spool_internal::SpoolIndex index_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, DeadLetter> dead_ ABSL_GUARDED_BY(mu_);
  std::vector<SpooledTask> recovered_pending_ ABSL_GUARDED_BY(mu_);
  uint64_t synced_lsn_ ABSL_GUARDED_BY(mu_);      // durable on disk
  uint64_t flush_lsn_ ABSL_GUARDED_BY(mu_);       // Flush wants this synced
  uint64_t writer_segment_ ABSL_GUARDED_BY(mu_);  // file the writer has open

  // Writer thread only.
  spool_internal::File file_;
  uint64_t file_segment_;
  uint64_t file_offset_ = spool_internal::kSegmentHeaderSize;
  bool dirty_ = false;        // written since the last fdatasync
  uint64_t written_lsn_;      // highest lsn written
  uint64_t durable_seq_ = 0;  // highest seq passed to `on_durable`
  absl::Time last_sync_;
  absl::Time last_maintenance_;
  absl::Time compaction_backoff_until_ = absl::InfinitePast();

  std::thread writer_;
};

}  // namespace fabric

#endif  // FABRIC_SPOOL_INTERNAL_SPOOL_IMPL_H_
