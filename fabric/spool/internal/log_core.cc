// SPDX-License-Identifier: Apache-2.0
// The front end and the writer thread of `LogCore` (docs/spool.md section
// 6). Front-end calls run on the owner's threads under `mu_`, encode into
// in-memory chunks and return; the writer takes every pending chunk at
// once, writes it, syncs per the fsync policy, confirms, and when idle runs
// the owner's maintenance. Any failed fdatasync or write is fail-stop
// (section 9), except a full disk when the owner refuses or holds instead.
#include "fabric/spool/internal/log_core.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/base/internal/raw_logging.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fabric/base/clock.h"
#include "fabric/base/status_macros.h"
#include "fabric/base/thread_name.h"
#include "fabric/spool/internal/payload.h"
#include "fabric/spool/internal/record.h"
#include "fabric/spool/internal/segment_io.h"

namespace fabric::spool_internal {
namespace {

// Maintenance also runs this often while the writer never goes idle.
constexpr absl::Duration kBusyMaintenanceInterval = absl::Seconds(1);
// The writer wakes at least this often even with nothing to do.
constexpr absl::Duration kIdleWakeup = absl::Seconds(1);
// After a write refused for a full disk, appends fail and the writer waits
// this long before trying again.
constexpr absl::Duration kDiskFullBackoff = absl::Seconds(1);
std::atomic<int64_t> disk_full_backoff_ns{
    absl::ToInt64Nanoseconds(kDiskFullBackoff)};

absl::Duration DiskFullBackoff() {
  return absl::Nanoseconds(
      disk_full_backoff_ns.load(std::memory_order_relaxed));
}
constexpr size_t kMaxKeptChunkBytes = 8 << 20;
constexpr size_t kMaxSpareBuffers = 16;

bool ConfirmsOnWrite(FsyncPolicy policy) {
  return policy == FsyncPolicy::kInterval || policy == FsyncPolicy::kNone;
}

}  // namespace

void LogCore::SetDiskFullBackoffForTesting(absl::Duration backoff) {
  disk_full_backoff_ns.store(absl::ToInt64Nanoseconds(backoff),
                             std::memory_order_relaxed);
}

LogCore::LogCore(LogCoreOptions options, File active, uint64_t active_segment,
                 uint64_t next_seq, uint64_t next_lsn)
    : core_(std::move(options)),
      file_(std::move(active)),
      file_segment_(active_segment),
      written_lsn_(next_lsn - 1) {
  absl::MutexLock l(&mu_);
  next_seq_ = next_seq;
  next_lsn_ = next_lsn;
  segment_ = active_segment;
  segment_bytes_ = kSegmentHeaderSize;
  writer_segment_ = active_segment;
  reserved_seq_ = next_seq - 1;  // the active segment's header says so
  synced_lsn_ = next_lsn - 1;
  flush_lsn_ = synced_lsn_;
  last_sync_ = last_maintenance_ = RealClock()->Now();
}

LogCore::~LogCore() {
  // The owner's destructor stops the writer: its hooks use the owner, which
  // is gone by now.
  ABSL_RAW_CHECK(!writer_.joinable(), "LogCore owner did not call StopWriter");
}

void LogCore::StartWriter() {
  writer_ = std::thread([this] {
    SetCurrentThreadName(core_.thread_name);
    WriterLoop();
  });
}

void LogCore::StopWriter() {
  if (joined_) return;
  joined_ = true;
  {
    absl::MutexLock l(&mu_);
    ReleaseReservationLocked();
    stop_ = true;
    writer_cv_.Signal();
  }
  if (writer_.joinable()) writer_.join();
}

std::string LogCore::SegmentPath(uint64_t segment) const {
  return JoinPath(core_.dir, SegmentFileName(segment));
}

void LogCore::Log(LogLevel level, absl::string_view message) const {
  LogIfEnabled(level, core_.log_component, message);
}

// ---------------------------------------------------------------- front end

absl::Status LogCore::CheckUsableLocked() const {
  if (!failed_.ok()) return failed_;
  if (stop_)
    return absl::CancelledError(absl::StrCat(core_.what, " is closing"));
  return absl::OkStatus();
}

absl::Status LogCore::CheckDiskLocked() const {
  if (!disk_full_.ok() && (holding_ || RealClock()->Now() < disk_full_until_)) {
    return disk_full_;
  }
  return absl::OkStatus();
}

void LogCore::PrepareSpaceLocked(uint64_t record_size) {
  if (segment_bytes_ > kSegmentHeaderSize &&
      segment_bytes_ + record_size > core_.segment_bytes) {
    RollLocked();
  }
}

void LogCore::RollLocked() {
  // What the owner queued for this segment (the spool's acks) belongs in it.
  BeforeBatchLocked();
  ++segment_;
  segment_bytes_ = kSegmentHeaderSize;
  Chunk chunk;
  chunk.segment = segment_;
  chunk.new_segment = true;
  chunk.base_seq = next_seq_;
  chunk.base_lsn = next_lsn_;
  chunk.seq_reserved = std::max(reserved_seq_, next_seq_ - 1);
  chunk.data = TakeBufferLocked();
  pending_.push_back(std::move(chunk));
  maintenance_due_ = true;
  AfterRollLocked(segment_, next_seq_, next_lsn_);
  WakeWriterLocked();
}

void LogCore::ReserveLocked(uint64_t seq) {
  if (seq <= reserved_seq_ || !ConfirmsOnWrite(core_.fsync)) return;
  reserved_seq_ = seq - 1 + kSeqReserveBlock;
  EncodeReservePayload(reserved_seq_, &reserve_scratch_);
  AppendRecordLocked(RecordType::kReserve, reserve_scratch_, 0,
                     /*needs_sync=*/false);
  pending_.back().reserves = true;
}

void LogCore::ReleaseReservationLocked() {
  if (!failed_.ok() || reserved_seq_ <= next_seq_ - 1) return;
  reserved_seq_ = next_seq_ - 1;
  EncodeReservePayload(reserved_seq_, &reserve_scratch_);
  AppendRecordLocked(RecordType::kReserve, reserve_scratch_, 0,
                     /*needs_sync=*/false);
}

LogCore::Placed LogCore::AppendRecordLocked(RecordType type,
                                            absl::string_view payload,
                                            uint64_t seq, bool needs_sync) {
  // Under kAlways each record is its own chunk: written and synced alone.
  if (pending_.empty() || pending_.back().segment != segment_ ||
      (core_.fsync == FsyncPolicy::kAlways && !pending_.back().data.empty())) {
    Chunk chunk;
    chunk.segment = segment_;
    chunk.data = TakeBufferLocked();
    pending_.push_back(std::move(chunk));
  }
  Chunk& chunk = pending_.back();
  const uint64_t lsn = next_lsn_++;
  const size_t before = chunk.data.size();
  AppendRecord(&chunk.data, type, lsn, segment_, payload);
  const uint64_t size = chunk.data.size() - before;
  chunk.max_lsn = lsn;
  if (seq != 0) chunk.max_seq = seq;
  chunk.needs_sync = chunk.needs_sync || needs_sync;
  const Placed placed{segment_, segment_bytes_, size};
  segment_bytes_ += size;
  OnPlacedLocked(placed);
  WakeWriterLocked();
  return placed;
}

std::string LogCore::TakeBufferLocked() {
  if (spare_buffers_.empty()) return std::string();
  std::string buffer = std::move(spare_buffers_.back());
  spare_buffers_.pop_back();
  return buffer;
}

void LogCore::WakeWriterLocked() {
  if (writer_idle_) writer_cv_.Signal();
}

absl::Status LogCore::Flush(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock l(&mu_);
  if (!failed_.ok()) return failed_;
  BeforeBatchLocked();
  const uint64_t target = next_lsn_ - 1;
  if (synced_lsn_ >= target) return absl::OkStatus();
  // Held records wait for room that may never come: fail fast instead.
  if (holding_) return disk_full_;
  flush_lsn_ = std::max(flush_lsn_, target);
  writer_cv_.Signal();
  while (synced_lsn_ < target && failed_.ok() && !holding_) {
    if (done_cv_.WaitWithDeadline(&mu_, deadline) && synced_lsn_ < target &&
        failed_.ok() && !holding_) {
      return absl::DeadlineExceededError(
          absl::StrCat(core_.what, " ", core_.dir, ": flush not done within ",
                       absl::FormatDuration(timeout)));
    }
  }
  if (failed_.ok() && synced_lsn_ < target) return disk_full_;  // holding
  return failed_;
}

absl::Status LogCore::health() const {
  absl::MutexLock l(&mu_);
  return failed_;
}

// ------------------------------------------------------------ writer thread

bool LogCore::HasWorkLocked() const {
  if (!failed_.ok() || stop_) return stop_;
  const absl::Time now = RealClock()->Now();
  if (now < disk_full_until_) return false;  // back-off
  if (!pending_.empty() || HasOwnWorkLocked()) return true;
  if (flush_lsn_ > synced_lsn_) return true;
  if (maintenance_due_) return true;
  if (now >= last_maintenance_ + core_.maintain_every) return true;
  return core_.fsync == FsyncPolicy::kInterval && dirty_ &&
         now >= last_sync_ + core_.fsync_interval;
}

absl::Duration LogCore::IdleTimeoutLocked() const {
  const absl::Time now = RealClock()->Now();
  absl::Time wake = now + kIdleWakeup;
  if (now < disk_full_until_) wake = std::min(wake, disk_full_until_);
  if (core_.fsync == FsyncPolicy::kInterval && dirty_) {
    wake = std::min(wake, last_sync_ + core_.fsync_interval);
  }
  if (core_.maintain_every != absl::InfiniteDuration()) {
    wake = std::min(wake, last_maintenance_ + core_.maintain_every);
  }
  return std::max(wake - now, absl::ZeroDuration());
}

void LogCore::RecycleLocked(std::vector<Chunk>& batch) {
  for (Chunk& chunk : batch) {
    if (spare_buffers_.size() < kMaxSpareBuffers &&
        chunk.data.capacity() <= kMaxKeptChunkBytes) {
      chunk.data.clear();
      spare_buffers_.push_back(std::move(chunk.data));
    }
  }
  batch.clear();
}

void LogCore::WriterLoop() {
  const FsyncPolicy policy = core_.fsync;
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
      BeforeBatchLocked();
      batch.swap(pending_);
      batch_lsn = next_lsn_ - 1;
      stopping = stop_;
      flush_wanted = flush_lsn_ > synced_lsn_;
    }

    BatchResult result;
    absl::Status status = WriteBatch(batch, &result);
    const DiskFullAction action = OnDiskFull();
    bool refused = false;
    if (!status.ok() && result.disk_full && action != DiskFullAction::kFail &&
        !stopping) {
      // Refuse or hold what did not fit; sync and confirm what did, as
      // usual. Refused records are settled; requeued ones are not yet.
      uint64_t requeued = 0;
      if (!Refuse(action, batch, result.failed_chunk, status, &requeued)) {
        continue;  // it failed the log instead
      }
      if (requeued != 0) batch_lsn = requeued - 1;
      status = absl::OkStatus();
      refused = true;
    }
    if (status.ok()) {
      written_lsn_ = std::max(written_lsn_, batch_lsn);
      const bool sync =
          dirty_ &&
          (flush_wanted || (stopping && policy != FsyncPolicy::kNone) ||
           (policy == FsyncPolicy::kBatch && result.needs_sync) ||
           (policy == FsyncPolicy::kInterval &&
            RealClock()->Now() >= last_sync_ + core_.fsync_interval));
      if (sync) status = SyncWriter();
    }
    if (!status.ok()) {
      Fail(status);
      continue;
    }
    // kAlways confirmed chunk by chunk in WriteBatch; kBatch synced above.
    // Confirm before `Flush` can return for these records.
    if (policy != FsyncPolicy::kAlways) Confirm(result.max_seq);
    bool maintain = false;
    bool room_again = false;
    {
      absl::MutexLock l(&mu_);
      if (!dirty_ && written_lsn_ > synced_lsn_) {
        synced_lsn_ = written_lsn_;
        done_cv_.SignalAll();
      }
      if (holding_ && !refused && written_lsn_ >= held_lsn_) {
        // What was held is written: appends are accepted again.
        holding_ = false;
        disk_full_ = absl::OkStatus();
        room_again = true;
      }
      const absl::Time now = RealClock()->Now();
      if (!stopping &&
          ((maintenance_due_ &&
            (pending_.empty() ||
             now >= last_maintenance_ + kBusyMaintenanceInterval)) ||
           now >= last_maintenance_ + core_.maintain_every)) {
        maintain = true;
        maintenance_due_ = false;
        last_maintenance_ = now;
      }
    }
    if (room_again) {
      Log(LogLevel::kWarning,
          absl::StrCat("FAB-SPOOL-DISK-ROOM ", core_.dir,
                       ": the held records are written; appends accepted"));
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

absl::Status LogCore::WriteBatch(std::vector<Chunk>& batch,
                                 BatchResult* result) {
  for (size_t i = 0; i < batch.size(); ++i) {
    Chunk& chunk = batch[i];
    if (chunk.new_segment) {
      // The old segment is complete and durable before the new one exists,
      // so only the newest segment can ever have a torn tail.
      if (dirty_) FABRIC_RETURN_IF_ERROR(SyncWriter());
      // The roll synced the old file: a batch spanning many segments is
      // confirmed as it goes, not only at its end.
      Confirm(result->max_seq);
      absl::Status status = OpenNextSegment(chunk);
      if (!status.ok()) {
        result->failed_chunk = i;
        result->disk_full = absl::IsResourceExhausted(status);
        return status;
      }
      OnWritten(file_segment_, file_offset_);
    }
    if (!chunk.data.empty()) {
      const std::string path = SegmentPath(file_segment_);
      absl::Status status = PWriteAll(file_, chunk.data, file_offset_, path);
      if (!status.ok()) {
        // Cut off whatever part landed so no partial record stays behind.
        absl::Status cut = Truncate(file_, file_offset_, path);
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
    if (ConfirmsOnWrite(core_.fsync)) {
      // Written is enough, once the reservation covering these seqs is
      // durable (section 6.1).
      if (chunk.reserves && dirty_) FABRIC_RETURN_IF_ERROR(SyncWriter());
      OnWritten(file_segment_, file_offset_);
      Confirm(result->max_seq);
    } else if (core_.fsync == FsyncPolicy::kAlways && chunk.needs_sync) {
      FABRIC_RETURN_IF_ERROR(SyncWriter());
      OnWritten(file_segment_, file_offset_);
      Confirm(chunk.max_seq);
      absl::MutexLock l(&mu_);
      synced_lsn_ = std::max(synced_lsn_, chunk.max_lsn);
      done_cv_.SignalAll();
    } else {
      OnWritten(file_segment_, file_offset_);
    }
  }
  return absl::OkStatus();
}

absl::Status LogCore::OpenNextSegment(const Chunk& chunk) {
  SegmentHeader header;
  header.segment = chunk.segment;
  header.base_seq = chunk.base_seq;
  header.base_lsn = chunk.base_lsn;
  header.seq_reserved = chunk.seq_reserved;
  header.created = absl::Now();
  header.producer_id = core_.id;
  FABRIC_ASSIGN_OR_RETURN(file_, CreateSegment(core_.dir, header));
  file_segment_ = chunk.segment;
  file_offset_ = kSegmentHeaderSize;
  absl::MutexLock l(&mu_);
  writer_segment_ = chunk.segment;
  return absl::OkStatus();
}

absl::Status LogCore::SyncWriter() {
  FABRIC_RETURN_IF_ERROR(DataSync(file_, SegmentPath(file_segment_)));
  dirty_ = false;
  last_sync_ = RealClock()->Now();
  return absl::OkStatus();
}

void LogCore::Confirm(uint64_t seq) {
  if (seq <= durable_seq_) return;
  durable_seq_ = seq;
  OnConfirmed(seq);
}

void LogCore::Fail(const absl::Status& status) {
  {
    absl::MutexLock l(&mu_);
    if (!failed_.ok()) return;
    failed_ = status;
    RecycleLocked(pending_);
    done_cv_.SignalAll();
  }
  Log(LogLevel::kError,
      absl::StrCat(core_.failed_event, " ", core_.dir, ": ", status.ToString(),
                   "; records after the last confirmation are not durable; "
                   "reopen the ",
                   core_.what, " to recover"));
  OnFailed(status);
}

bool LogCore::Refuse(DiskFullAction action, std::vector<Chunk>& batch,
                     size_t from, const absl::Status& status,
                     uint64_t* first_requeued) {
  const bool hold = action == DiskFullAction::kHold;
  std::vector<RefusedRecord> refused;
  std::vector<Chunk> retry;
  *first_requeued = 0;  // lsn
  uint64_t held_bytes = 0;
  uint64_t held_lsn = 0;
  bool refused_enq = false;
  if (hold) {
    // Every record stays, in order and at the same offsets: requeue the
    // chunks as they are.
    for (size_t i = from; i < batch.size(); ++i) {
      Chunk& chunk = batch[i];
      if (*first_requeued == 0 && !chunk.data.empty()) {
        RecordView r;
        std::string why;
        if (!ParseRecordAt(chunk.data, 0, chunk.segment, 0, &r, &why)) {
          Fail(absl::InternalError(absl::StrCat(
              core_.what, " cannot re-read its own batch: ", why)));
          return false;
        }
        *first_requeued = r.lsn;
      }
      held_bytes += chunk.data.size();
      held_lsn = std::max(held_lsn, chunk.max_lsn);
      retry.push_back(std::move(chunk));
    }
  }
  // kRefuse: the ENQ records go, the others stay.
  for (size_t i = from; !hold && i < batch.size(); ++i) {
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
      RecordView r;
      std::string why;
      if (!ParseRecordAt(chunk.data, pos, chunk.segment, 0, &r, &why)) {
        // Our own encoding: cannot happen. Fail rather than guess.
        Fail(absl::InternalError(
            absl::StrCat(core_.what, " cannot re-read its own batch: ", why)));
        return false;
      }
      const absl::string_view raw =
          absl::string_view(chunk.data).substr(pos, r.size);
      pos += r.size;
      const auto type = static_cast<RecordType>(r.type);
      if (type == RecordType::kEnq) {
        uint64_t seq = 0;
        absl::Time when;
        if (!PeekEnqPayload(r.payload, &seq, &when)) {
          Fail(absl::InternalError(
              absl::StrCat(core_.what, " cannot re-read its own ENQ")));
          return false;
        }
        refused.push_back({seq, chunk.segment, r.size});
        refused_enq = true;
        continue;
      }
      if (type == RecordType::kDeadRemoved && refused_enq) {
        // A replay's removals follow its new ENQs: writing them after those
        // were refused would lose the dead letters. Fail-stop.
        Fail(status);
        return false;
      }
      // ACK, DEAD, RESERVE, a purge's DEAD_REMOVED: written once there is
      // room.
      kept.data.append(raw.data(), raw.size());
      kept.max_lsn = r.lsn;
      if (*first_requeued == 0) *first_requeued = r.lsn;
    }
    if (kept.new_segment || !kept.data.empty())
      retry.push_back(std::move(kept));
  }
  std::vector<uint64_t> seqs;
  bool first_hold = false;
  {
    absl::MutexLock l(&mu_);
    if (!failed_.ok()) return false;
    for (const RefusedRecord& r : refused) {
      if (r.segment == segment_ && segment_bytes_ >= r.bytes) {
        segment_bytes_ -= r.bytes;
      }
      seqs.push_back(r.seq);
    }
    if (!refused.empty()) OnRefusedLocked(refused);
    // Ahead of anything appended since: lsns stay in file order.
    for (Chunk& c : pending_) retry.push_back(std::move(c));
    pending_ = std::move(retry);
    disk_full_ = status;
    disk_full_until_ = RealClock()->Now() + DiskFullBackoff();
    first_hold = hold && !holding_;
    holding_ = hold;
    if (hold) {
      held_lsn_ = held_lsn;
      done_cv_.SignalAll();  // Flush fails fast while holding
    }
  }
  std::sort(seqs.begin(), seqs.end());
  if (!hold) {
    Log(LogLevel::kWarning,
        absl::StrCat("FAB-SPOOL-DISK-FULL ", core_.dir, ": ", status.message(),
                     "; refused ", seqs.size(),
                     " record(s); appends refused for ",
                     absl::FormatDuration(DiskFullBackoff())));
  } else if (first_hold) {
    // Once per episode: the writer retries every back-off until it fits.
    Log(LogLevel::kWarning,
        absl::StrCat("FAB-SPOOL-DISK-FULL ", core_.dir, ": ", status.message(),
                     "; holding ", held_bytes,
                     " bytes of records until there is room; appends "
                     "refused until then"));
  }
  if (!seqs.empty()) OnRefused(seqs, status);
  return true;
}

}  // namespace fabric::spool_internal
