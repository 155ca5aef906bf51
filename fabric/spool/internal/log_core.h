// SPDX-License-Identifier: Apache-2.0
// `LogCore`: the append log under both the task spool and the topic log
// (docs/spool.md section 6). It owns what the two used to implement each on
// their own: the pending chunks, lsns and the roll decision (front end,
// under `mu_`), and one writer thread that writes the chunks, creates
// segments at rolls, syncs per the fsync policy (group commit under
// kBatch), reserves seqs under kInterval/kNone (section 6.1), confirms,
// fails stop on I/O errors, refuses or holds what a full disk cannot take
// (as the owner chooses: `DiskFullAction`) and runs the owner's maintenance
// when idle.
//
// The spool (`Spool::Impl`) and the topic log (`TopicLog::Impl`) derive from
// it and keep only their own records and state: the spool its index, acks
// and dead letters; the topic log its per-segment read index and retention.
#ifndef FABRIC_SPOOL_INTERNAL_LOG_CORE_H_
#define FABRIC_SPOOL_INTERNAL_LOG_CORE_H_

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fabric/base/log.h"
#include "fabric/base/node_id.h"
#include "fabric/spool/internal/file_util.h"
#include "fabric/spool/internal/spool_format.h"
#include "fabric/spool/spool.h"

namespace fabric::spool_internal {

struct LogCoreOptions {
  std::string dir;
  FsyncPolicy fsync = FsyncPolicy::kBatch;
  absl::Duration fsync_interval = absl::Milliseconds(100);
  // Roll once a record would take the active segment past this.
  uint64_t segment_bytes = uint64_t{64} << 20;
  NodeId id;  // written in every segment header
  std::string thread_name;
  absl::string_view log_component;
  std::string what;          // "spool", "topic log": in messages
  std::string failed_event;  // "FAB-SPOOL-FAILED": the log line's code
  // `Maintain` also runs this often, even when not asked for.
  absl::Duration maintain_every = absl::InfiniteDuration();
};

// Thread safety: thread-safe. Lock order: the owner's calls hold `mu_`
// (shared with the owner's own state); hooks marked "no lock" run on the
// writer thread with no lock held.
class LogCore {
 public:
  LogCore(const LogCore&) = delete;
  LogCore& operator=(const LogCore&) = delete;
  virtual ~LogCore();

  // Waits until everything appended so far is written and fdatasynced
  // (whatever the policy) and confirmed. kDeadlineExceeded after `timeout`;
  // the log's error once it has failed; the disk-full error at once while
  // records are held (`kHold`).
  absl::Status Flush(absl::Duration timeout);
  // The status the log failed with, OK while healthy.
  absl::Status health() const;

  // How long appends are refused and the writer waits after a full disk
  // (1 s). Process-wide; for tests that explore every failure point.
  static void SetDiskFullBackoffForTesting(absl::Duration backoff);

 protected:
  // Encoded records bound for one segment file, written in order.
  struct Chunk {
    uint64_t segment = 0;
    bool new_segment = false;  // create the file first (a roll)
    uint64_t base_seq = 0;     // header fields when `new_segment`
    uint64_t base_lsn = 0;
    uint64_t seq_reserved = 0;
    std::string data;
    uint64_t max_seq = 0;  // highest seq confirmed by `data`, 0 if none
    uint64_t max_lsn = 0;
    bool needs_sync = false;  // holds a record confirmed only once durable
    // Holds a RESERVE record: under kInterval/kNone it is fdatasynced before
    // anything in it is confirmed.
    bool reserves = false;
  };
  // A record refused for a full disk (see `Refuse`).
  struct RefusedRecord {
    uint64_t seq = 0;
    uint64_t segment = 0;
    uint64_t bytes = 0;
  };
  // Where `AppendRecordLocked` put a record.
  struct Placed {
    uint64_t segment = 0;
    uint64_t offset = 0;  // in the segment file
    uint64_t size = 0;    // framed
  };

  // `active` is segment `active_segment`, just created by the owner's Open
  // (header only) with base seq `next_seq`, base lsn `next_lsn` and
  // `seq_reserved` = next_seq - 1.
  LogCore(LogCoreOptions options, File active, uint64_t active_segment,
          uint64_t next_seq, uint64_t next_lsn);

  void StartWriter();
  // Records the exact last seq handed out (section 6.1), writes and syncs
  // what is pending (unless kNone), confirms it and joins the writer. The
  // owner's destructor calls it first: the hooks use the owner's state.
  void StopWriter();

  // Front end; the owner holds `mu_`.
  absl::Status CheckUsableLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The disk-full error during the back-off after a refusal, or while
  // records are held (`kHold`), else OK.
  absl::Status CheckDiskLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Rolls first when a record of `record_size` would take the active
  // segment past `segment_bytes` (a segment always takes one record).
  void PrepareSpaceLocked(uint64_t record_size)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts the next segment: `BeforeRollLocked`, then a new-segment chunk,
  // then `AfterRollLocked`. Maintenance is due after a roll.
  void RollLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Under kInterval/kNone, queues a RESERVE record when `seq` is beyond
  // the reservation. Call before appending the record of `seq`.
  void ReserveLocked(uint64_t seq) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frames one record with the next lsn into the active segment's pending
  // chunk. `seq` is the seq it confirms (0 for none); `needs_sync` whether
  // kBatch/kAlways must fdatasync before confirming it.
  Placed AppendRecordLocked(RecordType type, absl::string_view payload,
                            uint64_t seq, bool needs_sync)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WakeWriterLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaintenanceDueLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    maintenance_due_ = true;
  }

  // Hooks for the owner.
  // Before the writer takes the pending chunks, and before a roll (mu_).
  virtual void BeforeBatchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {}
  virtual bool HasOwnWorkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return false;
  }
  virtual void AfterRollLocked(uint64_t /*segment*/, uint64_t /*base_seq*/,
                               uint64_t /*base_lsn*/)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {}
  // A record was framed into the pending chunks (mu_).
  virtual void OnPlacedLocked(const Placed& /*placed*/)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {}
  // A chunk of `segment` is written up to `end` (no lock).
  virtual void OnWritten(uint64_t /*segment*/, uint64_t /*end*/) {}
  // Every seq <= `seq` is confirmed, in order (no lock).
  virtual void OnConfirmed(uint64_t seq) = 0;
  // The log failed, once (no lock).
  virtual void OnFailed(const absl::Status& status) = 0;
  // What a full disk does to the records of a batch that did not fit
  // (docs/spool.md section 9).
  enum class DiskFullAction {
    kFail,    // the log fails, as for any write error
    kRefuse,  // ENQ records are refused (`OnRefused`), the others held;
              // appends fail for a back-off, then are accepted again
    kHold,    // every record is held, none refused; appends fail until the
              // writer has written what it holds (retried every back-off)
  };
  virtual DiskFullAction OnDiskFull() const { return DiskFullAction::kFail; }
  virtual void OnRefusedLocked(const std::vector<RefusedRecord>& /*records*/)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {}
  // The refused seqs, ascending, before any later OnConfirmed (no lock).
  virtual void OnRefused(const std::vector<uint64_t>& /*seqs*/,
                         const absl::Status& /*status*/) {}
  // When due, idle (or busy for a second), or every `maintain_every` (no
  // lock; writer thread, so it may sync and use `SyncWriter`).
  virtual void Maintain() {}

  // Writer thread only: fdatasyncs the active file.
  absl::Status SyncWriter();
  // Fails the log (fail-stop), once: `OnFailed` runs. Writer thread.
  void Fail(const absl::Status& status);
  bool writer_dirty() const { return dirty_; }
  std::string SegmentPath(uint64_t segment) const;
  void Log(LogLevel level, absl::string_view message) const;

  const LogCoreOptions core_;

  mutable absl::Mutex mu_;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_);
  uint64_t next_lsn_ ABSL_GUARDED_BY(mu_);
  uint64_t segment_ ABSL_GUARDED_BY(mu_);         // receiving new records
  uint64_t segment_bytes_ ABSL_GUARDED_BY(mu_);   // its size with pending
  uint64_t writer_segment_ ABSL_GUARDED_BY(mu_);  // file the writer has open
  absl::Status failed_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;

 private:
  struct BatchResult {
    uint64_t max_seq = 0;
    bool needs_sync = false;
    uint64_t written_lsn = 0;  // max lsn of the chunks written
    // On a failure: the chunk it hit, and whether it was the disk filling
    // up while writing or creating a file.
    size_t failed_chunk = 0;
    bool disk_full = false;
  };

  bool HasWorkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration IdleTimeoutLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseReservationLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string TakeBufferLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RecycleLocked(std::vector<Chunk>& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriterLoop();
  absl::Status WriteBatch(std::vector<Chunk>& batch, BatchResult* result);
  absl::Status OpenNextSegment(const Chunk& chunk);
  void Confirm(uint64_t seq);
  // Disk full at `batch[from]`: refuses the ENQ records of `batch[from..]`
  // (`kRefuse`; `kHold` keeps them), requeues their other records, and
  // starts the back-off. Sets `first_requeued` to the lsn of the first
  // requeued record (0: none). Returns false when it failed the log instead
  // (a replay's removals after its refused ENQs).
  bool Refuse(DiskFullAction action, std::vector<Chunk>& batch, size_t from,
              const absl::Status& status, uint64_t* first_requeued);

  absl::CondVar writer_cv_;  // the writer waits for work
  absl::CondVar done_cv_;    // Flush waits for syncs
  bool writer_idle_ ABSL_GUARDED_BY(mu_) = false;
  bool maintenance_due_ ABSL_GUARDED_BY(mu_) = true;
  absl::Time last_maintenance_ ABSL_GUARDED_BY(mu_);
  // After a refusal: appends fail and the writer waits until then.
  absl::Time disk_full_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Status disk_full_ ABSL_GUARDED_BY(mu_);
  // `kHold`: records are held; appends fail until they are written.
  bool holding_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t held_lsn_ ABSL_GUARDED_BY(mu_) = 0;  // highest lsn held
  // Every seq up to this may be handed out without a new RESERVE record.
  uint64_t reserved_seq_ ABSL_GUARDED_BY(mu_);
  std::vector<Chunk> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> spare_buffers_ ABSL_GUARDED_BY(mu_);
  std::string reserve_scratch_ ABSL_GUARDED_BY(mu_);
  uint64_t synced_lsn_ ABSL_GUARDED_BY(mu_);  // durable on disk
  uint64_t flush_lsn_ ABSL_GUARDED_BY(mu_);   // Flush wants this synced

  // Writer thread only.
  File file_;
  uint64_t file_segment_;
  uint64_t file_offset_ = kSegmentHeaderSize;
  bool dirty_ = false;        // written since the last fdatasync
  uint64_t written_lsn_;      // highest lsn written
  uint64_t durable_seq_ = 0;  // highest seq passed to OnConfirmed
  absl::Time last_sync_;

  std::thread writer_;
  bool joined_ = false;  // StopWriter ran (owner's thread)
};

}  // namespace fabric::spool_internal

#endif  // FABRIC_SPOOL_INTERNAL_LOG_CORE_H_
