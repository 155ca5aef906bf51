// SPDX-License-Identifier: Apache-2.0
// The spool's side of the log core's writer thread: its callbacks
// (confirmations, failure, refusals for a full disk) and its maintenance,
// which deletes fully resolved segments and compacts sparse ones (docs/
// spool.md section 8).
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fabric/base/clock.h"
#include "fabric/base/log.h"
#include "fabric/base/status_macros.h"
#include "fabric/spool/internal/record.h"
#include "fabric/spool/internal/segment_io.h"
#include "fabric/spool/internal/spool_impl.h"

namespace fabric {

namespace {

// After a compaction fails for lack of space, wait this long to retry.
constexpr absl::Duration kCompactionBackoff = absl::Seconds(10);

}  // namespace

void Spool::Impl::OnConfirmed(uint64_t seq) {
  if (options_.on_durable) options_.on_durable(seq);
}

void Spool::Impl::OnFailed(const absl::Status& status) {
  {
    absl::MutexLock l(&mu_);
    pending_acks_.clear();
    room_cv_.SignalAll();
  }
  if (options_.on_error) options_.on_error(status);
}

void Spool::Impl::OnRefusedLocked(const std::vector<RefusedRecord>& records) {
  for (const RefusedRecord& r : records) {
    // Never written: no other segment depends on it.
    index_.ResolveEnq(r.seq, r.segment);
    if (const spool_internal::SegmentInfo* seg = index_.FindSegment(r.segment);
        seg != nullptr && seg->file_bytes >= r.bytes) {
      index_.SetFileBytes(r.segment, seg->file_bytes - r.bytes);
    }
  }
  RoomMayHaveFreedLocked();
}

void Spool::Impl::OnRefused(const std::vector<uint64_t>& seqs,
                            const absl::Status& status) {
  options_.on_refused(seqs, status);
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
    if (writer_dirty() && options_.fsync != FsyncPolicy::kNone) {
      FABRIC_RETURN_IF_ERROR(SyncWriter());
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
  if (writer_dirty() && options_.fsync != FsyncPolicy::kNone) {
    FABRIC_RETURN_IF_ERROR(SyncWriter());
  }
  FABRIC_ASSIGN_OR_RETURN(
      uint64_t size,
      spool_internal::RewriteSegment(options_.dir, producer_id_, snapshot));
  FABRIC_LOG(kInfo, kSpool, "FAB-SPOOL-COMPACTED ",
             SegmentPath(snapshot.segment), ": ", size, " bytes, ",
             snapshot.enq.size() + snapshot.dead.size(), " live records");
  absl::MutexLock l(&mu_);
  index_.FinishCompaction(snapshot, size);
  MaintenanceDueLocked();
  return absl::OkStatus();
}

}  // namespace fabric
