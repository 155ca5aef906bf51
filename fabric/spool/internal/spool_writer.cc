// SPDX-License-Identifier: Apache-2.0
// The writer thread of `Spool::Impl`: takes every pending chunk at once,
// writes it, syncs per the fsync policy (group commit under kBatch), reports
// durability, and when idle deletes and compacts segments. Any failed
// fdatasync or write is fail-stop (docs/spool.md section 9).
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fabric/base/clock.h"
#include "fabric/base/log.h"
#include "fabric/base/status_macros.h"
#include "fabric/spool/internal/payload.h"
#include "fabric/spool/internal/record.h"
#include "fabric/spool/internal/segment_io.h"
#include "fabric/spool/internal/spool_impl.h"

namespace fabric {

using spool_internal::kSegmentHeaderSize;

namespace {

// Maintenance also runs this often while the writer never goes idle.
constexpr absl::Duration kBusyMaintenanceInterval = absl::Seconds(1);
// The writer wakes at least this often even with nothing to do.
constexpr absl::Duration kIdleWakeup = absl::Seconds(1);
// After a compaction fails for lack of space, wait this long to retry.
constexpr absl::Duration kCompactionBackoff = absl::Seconds(10);
constexpr size_t kMaxKeptChunkBytes = 8 << 20;
// After a write refused for a full disk, appends fail and the writer waits
// this long before trying again.
constexpr absl::Duration kDiskFullBackoff = absl::Seconds(1);
constexpr size_t kMaxSpareBuffers = 16;

}  // namespace

std::string Spool::Impl::SegmentPath(uint64_t segment) const {
  return spool_internal::JoinPath(options_.dir,
                                  spool_internal::SegmentFileName(segment));
}

bool Spool::Impl::HasWorkLocked() const {
  if (!failed_.ok() || stop_) return stop_;
  if (RealClock()->Now() < disk_full_until_) return false;  // back-off
  if (!pending_.empty() || !pending_acks_.empty()) return true;
  if (flush_lsn_ > synced_lsn_) return true;
  if (maintenance_due_) return true;
  return options_.fsync == FsyncPolicy::kInterval && dirty_ &&
         RealClock()->Now() >= last_sync_ + options_.fsync_interval;
}

absl::Duration Spool::Impl::IdleTimeoutLocked() const {
  const absl::Time now = RealClock()->Now();
  if (now < disk_full_until_) {
    return std::min(disk_full_until_ - now, kIdleWakeup);
  }
  if (options_.fsync == FsyncPolicy::kInterval && dirty_) {
    return std::clamp(last_sync_ + options_.fsync_interval - RealClock()->Now(),
                      absl::ZeroDuration(), kIdleWakeup);
  }
  return kIdleWakeup;
}

void Spool::Impl::RecycleLocked(std::vector<Chunk>& batch) {
  for (Chunk& chunk : batch) {
    if (spare_buffers_.size() < kMaxSpareBuffers &&
        chunk.data.capacity() <= kMaxKeptChunkBytes) {
      chunk.data.clear();
      spare_buffers_.push_back(std::move(chunk.data));
    }
  }
  batch.clear();
}

void Spool::Impl::WriterLoop() {
  const FsyncPolicy policy = options_.fsync;
  std::vector<Chunk> batch;
  while (true) {
    bool stopping = false;
    bool flush_wanted = false;
    uint64_t batch_lsn = 0;
    {
      absl::MutexLock l(&mu_);
      RecycleLocked(batch);
      while (!HasWorkLocked()) {
        writer_idle_ = true;
        writer_cv_.WaitWithTimeout(&mu_, IdleTimeoutLocked());
        writer_idle_ = false;
      }
      if (!failed_.ok()) return;  // HasWorkLocked: failed and stopping
      EncodePendingAcksLocked();
      batch.swap(pending_);
      batch_lsn = next_lsn_ - 1;
      stopping = stop_;
      flush_wanted = flush_lsn_ > synced_lsn_;
    }

    BatchResult result;
    absl::Status status = WriteBatch(batch, &result);
    if (!status.ok() && result.disk_full && options_.on_refused && !stopping) {
      // Refuse what did not fit; sync and confirm what did, as usual. The
      // refused records are settled; the requeued ones are not yet.
      const uint64_t requeued = Refuse(batch, result.failed_chunk, status);
      if (requeued != 0) batch_lsn = requeued - 1;
      status = absl::OkStatus();
    }
    if (status.ok()) {
      written_lsn_ = std::max(written_lsn_, batch_lsn);
      const bool sync =
          dirty_ &&
          (flush_wanted || (stopping && policy != FsyncPolicy::kNone) ||
           (policy == FsyncPolicy::kBatch && result.needs_sync) ||
           (policy == FsyncPolicy::kInterval &&
            RealClock()->Now() >= last_sync_ + options_.fsync_interval));
      if (sync) status = Sync();
    }
    if (!status.ok()) {
      Fail(status);
      continue;
    }
    // kAlways confirmed chunk by chunk in WriteBatch; kBatch synced above.
    // Confirm before `Flush` can return for these records.
    if (policy != FsyncPolicy::kAlways) Confirm(result.max_seq);
    bool maintain = false;
    {
      absl::MutexLock l(&mu_);
      if (!dirty_ && written_lsn_ > synced_lsn_) {
        synced_lsn_ = written_lsn_;
        done_cv_.SignalAll();
      }
      if (!stopping && maintenance_due_ &&
          (pending_.empty() ||
           RealClock()->Now() >=
               last_maintenance_ + kBusyMaintenanceInterval)) {
        maintain = true;
        maintenance_due_ = false;
        last_maintenance_ = RealClock()->Now();
      }
    }
    if (stopping) {
      absl::MutexLock l(&mu_);
      // A refusal just requeued records: one more pass writes them or
      // fails (no refusal while stopping).
      if (pending_.empty() || !failed_.ok()) return;
      continue;
    }
    if (maintain) Maintain();
  }
}

void Spool::Impl::Maintain() {
  absl::Status status = DeleteResolvedSegments();
  if (status.ok() && RealClock()->Now() >= compaction_backoff_until_) {
    status = CompactOneSegment();
    if (absl::IsResourceExhausted(status)) {
      FABRIC_LOG(kWarning, kSpool, "FAB-SPOOL-COMPACTION-FAILED ", options_.dir,
                 ": ", status.message(), "; retrying later");
      compaction_backoff_until_ = RealClock()->Now() + kCompactionBackoff;
      status = absl::OkStatus();
    }
  }
  if (!status.ok()) Fail(status);
}

absl::Status Spool::Impl::WriteBatch(std::vector<Chunk>& batch,
                                     BatchResult* result) {
  for (size_t i = 0; i < batch.size(); ++i) {
    Chunk& chunk = batch[i];
    if (chunk.new_segment) {
      // The old segment is complete and durable before the new one exists,
      // so only the newest segment can ever have a torn tail.
      if (dirty_) FABRIC_RETURN_IF_ERROR(Sync());
      // The roll synced the old file: a batch spanning many segments is
      // confirmed as it goes, not only at its end.
      Confirm(result->max_seq);
      absl::Status status = OpenNextSegment(chunk);
      if (!status.ok()) {
        result->failed_chunk = i;
        result->disk_full = absl::IsResourceExhausted(status);
        return status;
      }
    }
    if (!chunk.data.empty()) {
      const std::string path = SegmentPath(file_segment_);
      absl::Status status =
          spool_internal::PWriteAll(file_, chunk.data, file_offset_, path);
      if (!status.ok()) {
        // Cut off whatever part landed so no partial record stays behind.
        absl::Status cut = spool_internal::Truncate(file_, file_offset_, path);
        result->failed_chunk = i;
        result->disk_full = absl::IsResourceExhausted(status) && cut.ok();
        return status;
      }
      file_offset_ += chunk.data.size();
      dirty_ = true;
    }
    result->written_lsn = std::max(result->written_lsn, chunk.max_lsn);
    result->max_seq = std::max(result->max_seq, chunk.max_seq);
    result->needs_sync = result->needs_sync || chunk.needs_sync;
    if (options_.fsync == FsyncPolicy::kInterval ||
        options_.fsync == FsyncPolicy::kNone) {
      // Written is enough, once the reservation covering these seqs is
      // durable (docs/spool.md section 6.1).
      if (chunk.reserves && dirty_) FABRIC_RETURN_IF_ERROR(Sync());
      Confirm(result->max_seq);
    }
    if (options_.fsync == FsyncPolicy::kAlways && chunk.needs_sync) {
      FABRIC_RETURN_IF_ERROR(Sync());
      Confirm(chunk.max_seq);
      absl::MutexLock l(&mu_);
      synced_lsn_ = std::max(synced_lsn_, chunk.max_lsn);
      done_cv_.SignalAll();
    }
  }
  return absl::OkStatus();
}

absl::Status Spool::Impl::OpenNextSegment(const Chunk& chunk) {
  spool_internal::SegmentHeader header;
  header.segment = chunk.segment;
  header.base_seq = chunk.base_seq;
  header.base_lsn = chunk.base_lsn;
  header.seq_reserved = chunk.seq_reserved;
  header.created = absl::Now();
  header.producer_id = producer_id_;
  FABRIC_ASSIGN_OR_RETURN(file_,
                          spool_internal::CreateSegment(options_.dir, header));
  file_segment_ = chunk.segment;
  file_offset_ = kSegmentHeaderSize;
  absl::MutexLock l(&mu_);
  writer_segment_ = chunk.segment;
  return absl::OkStatus();
}

absl::Status Spool::Impl::Sync() {
  FABRIC_RETURN_IF_ERROR(
      spool_internal::DataSync(file_, SegmentPath(file_segment_)));
  dirty_ = false;
  last_sync_ = RealClock()->Now();
  return absl::OkStatus();
}

void Spool::Impl::Confirm(uint64_t seq) {
  if (seq <= durable_seq_) return;
  durable_seq_ = seq;
  if (options_.on_durable) options_.on_durable(seq);
}

void Spool::Impl::Fail(const absl::Status& status) {
  {
    absl::MutexLock l(&mu_);
    if (!failed_.ok()) return;
    failed_ = status;
    RecycleLocked(pending_);
    pending_acks_.clear();
    done_cv_.SignalAll();
    room_cv_.SignalAll();
  }
  FABRIC_LOG(kError, kSpool, "FAB-SPOOL-FAILED ", options_.dir, ": ",
             status.ToString(),
             "; records after the last confirmation are "
             "not durable; reopen the spool to recover");
  if (options_.on_error) options_.on_error(status);
}

uint64_t Spool::Impl::Refuse(std::vector<Chunk>& batch, size_t from,
                             const absl::Status& status) {
  struct Refused {
    uint64_t seq, segment, bytes;
  };
  std::vector<Refused> refused;
  std::vector<Chunk> retry;
  uint64_t first_requeued = 0;  // lsn
  for (size_t i = from; i < batch.size(); ++i) {
    const Chunk& chunk = batch[i];
    Chunk kept;
    kept.segment = chunk.segment;
    kept.new_segment = chunk.new_segment;
    kept.base_seq = chunk.base_seq;
    kept.base_lsn = chunk.base_lsn;
    kept.seq_reserved = chunk.seq_reserved;
    kept.needs_sync = chunk.needs_sync;
    kept.reserves = chunk.reserves;
    uint64_t pos = 0;
    while (pos < chunk.data.size()) {
      spool_internal::RecordView r;
      std::string why;
      if (!spool_internal::ParseRecordAt(chunk.data, pos, chunk.segment, 0, &r,
                                         &why)) {
        // Our own encoding: cannot happen. Fail rather than guess.
        Fail(absl::InternalError(
            absl::StrCat("spool cannot re-read its own batch: ", why)));
        return 0;
      }
      const absl::string_view raw =
          absl::string_view(chunk.data).substr(pos, r.size);
      pos += r.size;
      uint64_t seq = 0;
      absl::Time when;
      switch (static_cast<spool_internal::RecordType>(r.type)) {
        case spool_internal::RecordType::kEnq:
          if (!spool_internal::PeekEnqPayload(r.payload, &seq, &when)) {
            Fail(absl::InternalError("spool cannot re-read its own ENQ"));
            return 0;
          }
          refused.push_back({seq, chunk.segment, r.size});
          break;
        case spool_internal::RecordType::kDeadRemoved:
          // A replay's removals follow its new ENQs: writing them after
          // those were refused would lose the dead letters. Fail-stop.
          Fail(status);
          return 0;
        default:  // ACK, DEAD, RESERVE: written once there is room
          kept.data.append(raw.data(), raw.size());
          kept.max_lsn = r.lsn;
          if (first_requeued == 0) first_requeued = r.lsn;
          break;
      }
    }
    if (kept.new_segment || !kept.data.empty())
      retry.push_back(std::move(kept));
  }
  std::vector<uint64_t> seqs;
  {
    absl::MutexLock l(&mu_);
    if (!failed_.ok()) return 0;
    for (const Refused& r : refused) {
      // Never written: no other segment depends on it.
      index_.ResolveEnq(r.seq, r.segment);
      if (const spool_internal::SegmentInfo* seg =
              index_.FindSegment(r.segment);
          seg != nullptr && seg->file_bytes >= r.bytes) {
        index_.SetFileBytes(r.segment, seg->file_bytes - r.bytes);
      }
      if (r.segment == segment_ && segment_bytes_ >= r.bytes) {
        segment_bytes_ -= r.bytes;
      }
      seqs.push_back(r.seq);
    }
    // Ahead of anything appended since: lsns stay in file order.
    for (Chunk& c : pending_) retry.push_back(std::move(c));
    pending_ = std::move(retry);
    disk_full_ = status;
    disk_full_until_ = RealClock()->Now() + kDiskFullBackoff;
    RoomMayHaveFreedLocked();
  }
  std::sort(seqs.begin(), seqs.end());
  FABRIC_LOG(kWarning, kSpool, "FAB-SPOOL-DISK-FULL ", options_.dir, ": ",
             status.message(), "; refused ", seqs.size(),
             " task(s); appends refused for ",
             absl::FormatDuration(kDiskFullBackoff));
  if (!seqs.empty()) options_.on_refused(seqs, status);
  return first_requeued;
}

absl::Status Spool::Impl::DeleteResolvedSegments() {
  while (true) {
    std::vector<uint64_t> numbers;
    {
      absl::MutexLock l(&mu_);
      numbers = index_.Deletable(writer_segment_);
    }
    if (numbers.empty()) return absl::OkStatus();
    // What resolved these segments' records (DEAD, replays) must be durable
    // before the records vanish (kNone promises nothing on power loss).
    if (dirty_ && options_.fsync != FsyncPolicy::kNone) {
      FABRIC_RETURN_IF_ERROR(Sync());
    }
    for (uint64_t n : numbers) {
      FABRIC_RETURN_IF_ERROR(spool_internal::RemoveFile(SegmentPath(n)));
    }
    // Durable before anything depending on these deletions happens.
    FABRIC_RETURN_IF_ERROR(spool_internal::SyncDir(options_.dir));
    absl::MutexLock l(&mu_);
    for (uint64_t n : numbers) index_.DropSegment(n);
  }
}

absl::Status Spool::Impl::CompactOneSegment() {
  spool_internal::CompactionSnapshot snapshot;
  {
    absl::MutexLock l(&mu_);
    std::optional<uint64_t> candidate =
        index_.CompactionCandidate(writer_segment_);
    if (!candidate.has_value()) return absl::OkStatus();
    snapshot = index_.BeginCompaction(*candidate);
  }
  if (dirty_ && options_.fsync != FsyncPolicy::kNone) {
    FABRIC_RETURN_IF_ERROR(Sync());
  }
  FABRIC_ASSIGN_OR_RETURN(
      uint64_t size,
      spool_internal::RewriteSegment(options_.dir, producer_id_, snapshot));
  FABRIC_LOG(kInfo, kSpool, "FAB-SPOOL-COMPACTED ",
             SegmentPath(snapshot.segment), ": ", size, " bytes, ",
             snapshot.enq.size() + snapshot.dead.size(), " live records");
  absl::MutexLock l(&mu_);
  index_.FinishCompaction(snapshot, size);
  maintenance_due_ = true;
  return absl::OkStatus();
}

}  // namespace fabric
