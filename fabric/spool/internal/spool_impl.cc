// SPDX-License-Identifier: Apache-2.0
// The front end of `Spool::Impl`: calls from any thread encode their record
// into the pending chunks under `mu_` and return without I/O. Segment
// numbers, lsns and the roll decision are fixed here, so every record's
// header is final before the writer sees it (docs/spool.md section 6).
#include "fabric/spool/internal/spool_impl.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fabric/base/clock.h"
#include "fabric/base/status_macros.h"
#include "fabric/spool/internal/payload.h"
#include "fabric/spool/internal/record.h"

namespace fabric {

using spool_internal::FramedSize;
using spool_internal::kMaxPayloadBytes;
using spool_internal::kMaxRangesPerRecord;
using spool_internal::kSegmentHeaderSize;
using spool_internal::RecordType;
using spool_internal::SeqRanges;

namespace {

// Past this a reusable buffer is dropped after use instead of kept.
constexpr size_t kMaxKeptBufferBytes = 4 << 20;

// More would not decode at recovery (docs/spool.md section 5).
absl::Status CheckHeaders(const Headers& headers) {
  if (headers.size() > spool_internal::kMaxHeadersPerTask) {
    return absl::InvalidArgumentError(
        absl::StrCat("task has ", headers.size(), " headers; the limit is ",
                     spool_internal::kMaxHeadersPerTask));
  }
  return absl::OkStatus();
}

absl::Status TooLarge(size_t payload_size) {
  return absl::InvalidArgumentError(absl::StrCat(
      "task of ", payload_size, " bytes exceeds the spool record limit of ",
      kMaxPayloadBytes, " bytes"));
}

}  // namespace

namespace {

spool_internal::LogCoreOptions CoreOptions(const SpoolOptions& options,
                                           const NodeId& id) {
  spool_internal::LogCoreOptions core;
  core.dir = options.dir;
  core.fsync = options.fsync;
  core.fsync_interval = options.fsync_interval;
  core.segment_bytes = options.segment_bytes;
  core.id = id;
  core.thread_name = "fab-spool";
  core.log_component = log_component::kSpool;
  core.what = "spool";
  core.failed_event = "FAB-SPOOL-FAILED";
  return core;
}

}  // namespace

Spool::Impl::Impl(SpoolOptions options, spool_internal::File lock,
                  spool_internal::Recovered recovered,
                  spool_internal::File active, uint64_t active_segment)
    : LogCore(CoreOptions(options, recovered.meta.producer_id),
              std::move(active), active_segment, recovered.next_seq,
              recovered.next_lsn),
      options_(std::move(options)),
      producer_id_(recovered.meta.producer_id),
      recovery_(recovered.report),
      lock_(std::move(lock)) {
  absl::MutexLock l(&mu_);
  index_ = std::move(recovered.index);
  index_.AddSegment(active_segment, next_seq_, next_lsn_, kSegmentHeaderSize);
  dead_ = std::move(recovered.dead);
  recovered_pending_ = std::move(recovered.pending);
}

Spool::Impl::~Impl() { StopWriter(); }

std::vector<SpooledTask> Spool::Impl::TakePending() {
  absl::MutexLock l(&mu_);
  std::vector<SpooledTask> tasks = std::move(recovered_pending_);
  recovered_pending_.clear();
  return tasks;
}

std::vector<DeadLetter> Spool::Impl::DeadLetters() const {
  absl::MutexLock l(&mu_);
  std::vector<DeadLetter> letters;
  letters.reserve(dead_.size());
  for (const auto& [seq, dead] : dead_) letters.push_back(dead);
  return letters;
}

absl::StatusOr<uint64_t> Spool::Impl::Append(const Headers& headers,
                                             absl::string_view body) {
  FABRIC_RETURN_IF_ERROR(CheckHeaders(headers));
  const absl::Time now = absl::Now();
  absl::MutexLock l(&mu_);
  FABRIC_RETURN_IF_ERROR(CheckUsableLocked());
  FABRIC_RETURN_IF_ERROR(CheckDiskLocked());
  const uint64_t seq = next_seq_;
  spool_internal::EncodeEnqPayload(seq, now, headers, body, &scratch_);
  if (scratch_.size() > kMaxPayloadBytes) return TooLarge(scratch_.size());
  const uint64_t size = FramedSize(scratch_.size());
  const uint64_t live = index_.live_bytes();
  if (live + size > options_.max_bytes) {
    refused_bytes_ = size;
    return absl::ResourceExhaustedError(absl::StrCat(
        "spool ", options_.dir, " is full: ", live, " live bytes + ", size,
        " would exceed max_bytes = ", options_.max_bytes));
  }
  refused_bytes_ = 0;
  PrepareSpaceLocked(size);
  ReserveLocked(seq);
  ++next_seq_;
  index_.AddEnq(seq, segment_, size);
  AppendRecordLocked(RecordType::kEnq, scratch_, seq, /*needs_sync=*/true);
  if (scratch_.capacity() > kMaxKeptBufferBytes) scratch_ = std::string();
  return seq;
}

void Spool::Impl::Ack(uint64_t seq) {
  absl::MutexLock l(&mu_);
  if (!CheckUsableLocked().ok()) return;
  // The ACK record joins the current segment (never rolled into the next),
  // which is what the dependency recorded here assumes.
  if (!index_.ResolveEnq(seq, segment_)) return;
  pending_acks_.push_back(seq);
  MaintenanceDueLocked();
  RoomMayHaveFreedLocked();
  WakeWriterLocked();
}

absl::Status Spool::Impl::AddDead(const DeadLetter& dead) {
  FABRIC_RETURN_IF_ERROR(CheckHeaders(dead.task.headers));
  absl::MutexLock l(&mu_);
  FABRIC_RETURN_IF_ERROR(CheckUsableLocked());
  const uint64_t seq = dead.task.seq;
  if (index_.IsDead(seq)) {
    return absl::AlreadyExistsError(
        absl::StrCat("seq ", seq, " is already a dead letter"));
  }
  spool_internal::EncodeDeadPayload(dead, &scratch_);
  if (scratch_.size() > kMaxPayloadBytes) return TooLarge(scratch_.size());
  const uint64_t size = FramedSize(scratch_.size());
  PrepareSpaceLocked(size);
  index_.ResolveEnq(seq, segment_);
  index_.AddDead(seq, segment_, size);
  dead_[seq] = dead;
  AppendRecordLocked(RecordType::kDead, scratch_, 0, /*needs_sync=*/true);
  if (scratch_.capacity() > kMaxKeptBufferBytes) scratch_ = std::string();
  MaintenanceDueLocked();
  RoomMayHaveFreedLocked();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SpooledTask>> Spool::Impl::ReplayDead(
    const std::vector<uint64_t>& seqs) {
  absl::MutexLock l(&mu_);
  FABRIC_RETURN_IF_ERROR(CheckUsableLocked());
  FABRIC_RETURN_IF_ERROR(CheckDiskLocked());
  std::vector<uint64_t> list = seqs;
  if (list.empty()) {
    for (const auto& [seq, dead] : dead_) list.push_back(seq);
  }
  std::sort(list.begin(), list.end());
  list.erase(std::unique(list.begin(), list.end()), list.end());
  for (uint64_t seq : list) {
    if (!dead_.contains(seq)) {
      return absl::NotFoundError(absl::StrCat("no dead letter with seq ", seq));
    }
  }
  const absl::Time now = absl::Now();
  std::vector<SpooledTask> tasks;
  tasks.reserve(list.size());
  // New ENQs first, removals after: a crash in between leaves a duplicate,
  // never a loss.
  for (uint64_t old_seq : list) {
    const SpooledTask& old = dead_[old_seq].task;
    const uint64_t seq = next_seq_;
    spool_internal::EncodeEnqPayload(seq, now, old.headers, old.body,
                                     &scratch_);
    const uint64_t size = FramedSize(scratch_.size());
    PrepareSpaceLocked(size);
    ReserveLocked(seq);
    ++next_seq_;
    index_.AddEnq(seq, segment_, size);
    AppendRecordLocked(RecordType::kEnq, scratch_, seq, /*needs_sync=*/true);
    tasks.push_back(SpooledTask{seq, now, old.headers, old.body});
  }
  EncodeRemovalsLocked(list);
  return tasks;
}

absl::StatusOr<size_t> Spool::Impl::PurgeDead(
    const std::vector<uint64_t>& seqs) {
  absl::MutexLock l(&mu_);
  FABRIC_RETURN_IF_ERROR(CheckUsableLocked());
  FABRIC_RETURN_IF_ERROR(CheckDiskLocked());
  std::vector<uint64_t> list;
  if (seqs.empty()) {
    for (const auto& [seq, dead] : dead_) list.push_back(seq);
  } else {
    for (uint64_t seq : seqs) {
      if (dead_.contains(seq)) list.push_back(seq);
    }
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
  }
  EncodeRemovalsLocked(list);
  return list.size();
}

void Spool::Impl::EncodeRemovalsLocked(const std::vector<uint64_t>& seqs) {
  const SeqRanges ranges = spool_internal::ToRanges(seqs);
  for (size_t i = 0; i < ranges.size(); i += kMaxRangesPerRecord) {
    const SeqRanges slice(
        ranges.begin() + i,
        ranges.begin() + std::min(ranges.size(), i + kMaxRangesPerRecord));
    spool_internal::EncodeSeqRanges(slice, &scratch_);
    PrepareSpaceLocked(FramedSize(scratch_.size()));
    for (const auto& [lo, hi] : slice) {
      for (uint64_t seq = lo;; ++seq) {
        index_.RemoveDead(seq, segment_);
        dead_.erase(seq);
        if (seq == hi) break;
      }
    }
    AppendRecordLocked(RecordType::kDeadRemoved, scratch_, 0,
                       /*needs_sync=*/true);
  }
  if (!ranges.empty()) {
    MaintenanceDueLocked();
    RoomMayHaveFreedLocked();
  }
}

uint64_t Spool::Impl::live_bytes() const {
  absl::MutexLock l(&mu_);
  return index_.live_bytes();
}

bool Spool::Impl::HasRoomLocked() const {
  const uint64_t live = index_.live_bytes();
  if (refused_bytes_ > 0) return live + refused_bytes_ <= options_.max_bytes;
  return live < options_.max_bytes;
}

bool Spool::Impl::WaitForRoom(absl::Time deadline) {
  absl::MutexLock l(&mu_);
  ++room_waiters_;
  while (failed_.ok() && !HasRoomLocked()) {
    if (room_cv_.WaitWithDeadline(&mu_, deadline)) break;
  }
  --room_waiters_;
  return failed_.ok() && HasRoomLocked();
}

void Spool::Impl::AfterRollLocked(uint64_t segment, uint64_t base_seq,
                                  uint64_t base_lsn) {
  index_.AddSegment(segment, base_seq, base_lsn, kSegmentHeaderSize);
}

void Spool::Impl::OnPlacedLocked(const Placed& placed) {
  // Every record, RESERVE ones included, counts toward its segment's size.
  index_.AddFileBytes(placed.segment, placed.size);
}

void Spool::Impl::EncodePendingAcksLocked() {
  if (pending_acks_.empty()) return;
  std::vector<uint64_t> seqs;
  seqs.swap(pending_acks_);
  const SeqRanges ranges = spool_internal::ToRanges(std::move(seqs));
  for (size_t i = 0; i < ranges.size(); i += kMaxRangesPerRecord) {
    if (ranges.size() <= kMaxRangesPerRecord) {
      spool_internal::EncodeSeqRanges(ranges, &ack_scratch_);
    } else {
      spool_internal::EncodeSeqRanges(
          SeqRanges(ranges.begin() + i,
                    ranges.begin() +
                        std::min(ranges.size(), i + kMaxRangesPerRecord)),
          &ack_scratch_);
    }
    AppendRecordLocked(RecordType::kAck, ack_scratch_, 0, /*needs_sync=*/false);
  }
}

void Spool::Impl::RoomMayHaveFreedLocked() {
  if (room_waiters_ > 0) room_cv_.SignalAll();
}

}  // namespace fabric
