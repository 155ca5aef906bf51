// SPDX-License-Identifier: Apache-2.0
// The spool's records applied to its state at recovery (docs/spool.md
// section 5): pending = ENQ - ACK - DEAD, dead letters = DEAD -
// DEAD_REMOVED. The log's own rules (damage, torn tails, reservations) are
// in log_recovery.cc. Nothing here aborts on bad input.
#include "fabric/spool/internal/recovery.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "fabric/base/log.h"
#include "fabric/base/status_macros.h"
#include "fabric/spool/internal/payload.h"
#include "fabric/spool/internal/record.h"
#include "fabric/spool/internal/spool_format.h"

namespace fabric::spool_internal {
namespace {

// Applies intact records to the index, the pending tasks and dead letters.
class Replayer : public LogVisitor {
 public:
  Replayer(Recovered* out, bool keep_tasks)
      : out_(out), keep_tasks_(keep_tasks) {}

  void BeginSegment(uint64_t number, const SegmentHeader* header,
                    uint64_t file_bytes) override {
    out_->index.AddSegment(number, header != nullptr ? header->base_seq : 0,
                           header != nullptr ? header->base_lsn : 0,
                           file_bytes);
  }
  void EndSegment(uint64_t number, uint64_t file_bytes) override {
    out_->index.SetFileBytes(number, file_bytes);
  }

  void Record(absl::string_view file, uint64_t segment, const RecordView& r,
              LogRecovery* log) override {
    log_ = log;
    ++out_->report.records;
    switch (static_cast<RecordType>(r.type)) {
      case RecordType::kEnq:
        return ApplyEnq(file, segment, r);
      case RecordType::kAck:
        return ApplyAck(file, segment, r);
      case RecordType::kDead:
        return ApplyDead(file, segment, r);
      case RecordType::kDeadRemoved:
        return ApplyDeadRemoved(file, segment, r);
      default:
        log_->AddProblem(
            file, r.offset,
            absl::StrCat("unknown record type ", r.type, "; skipped"));
    }
  }

  // Moves the pending tasks into `out->pending` in seq order.
  void Finish() {
    out_->pending.reserve(tasks_.size());
    for (auto& [seq, task] : tasks_) out_->pending.push_back(std::move(task));
    tasks_.clear();
    std::sort(out_->pending.begin(), out_->pending.end(),
              [](const SpooledTask& a, const SpooledTask& b) {
                return a.seq < b.seq;
              });
  }

  uint64_t max_seq() const override { return max_seq_; }

 private:
  void Undecodable(absl::string_view file, const RecordView& r,
                   const absl::Status& status) {
    log_->AddProblem(file, r.offset,
                     absl::StrCat("undecodable record: ", status.message()));
  }

  void ApplyEnq(absl::string_view file, uint64_t segment, const RecordView& r) {
    absl::StatusOr<SpooledTask> task = DecodeEnqPayload(r.payload);
    if (!task.ok()) return Undecodable(file, r, task.status());
    ++out_->report.enqueued;
    const uint64_t seq = task->seq;
    max_seq_ = std::max(max_seq_, seq);
    if (out_->index.AddEnq(seq, segment, r.size) && keep_tasks_) {
      tasks_.emplace(seq, *std::move(task));
    }
  }

  void ApplyAck(absl::string_view file, uint64_t segment, const RecordView& r) {
    absl::StatusOr<SeqRanges> ranges = DecodeSeqRanges(r.payload);
    if (!ranges.ok()) return Undecodable(file, r, ranges.status());
    for (const auto& [lo, hi] : *ranges) {
      for (uint64_t seq : out_->index.LiveEnqInRange(lo, hi)) {
        out_->index.ResolveEnq(seq, segment);
        tasks_.erase(seq);
        ++out_->report.acked;
      }
    }
  }

  void ApplyDead(absl::string_view file, uint64_t segment,
                 const RecordView& r) {
    absl::StatusOr<DeadLetter> dead = DecodeDeadPayload(r.payload);
    if (!dead.ok()) return Undecodable(file, r, dead.status());
    const uint64_t seq = dead->task.seq;
    max_seq_ = std::max(max_seq_, seq);
    if (out_->index.ResolveEnq(seq, segment)) tasks_.erase(seq);
    if (out_->index.AddDead(seq, segment, r.size)) {
      out_->dead[seq] = *std::move(dead);
    }
  }

  void ApplyDeadRemoved(absl::string_view file, uint64_t segment,
                        const RecordView& r) {
    absl::StatusOr<SeqRanges> ranges = DecodeSeqRanges(r.payload);
    if (!ranges.ok()) return Undecodable(file, r, ranges.status());
    for (const auto& [lo, hi] : *ranges) {
      auto it = out_->dead.lower_bound(lo);
      while (it != out_->dead.end() && it->first <= hi) {
        out_->index.RemoveDead(it->first, segment);
        it = out_->dead.erase(it);
      }
    }
  }

  Recovered* out_;
  LogRecovery* log_ = nullptr;
  const bool keep_tasks_;
  absl::flat_hash_map<uint64_t, SpooledTask> tasks_;
  uint64_t max_seq_ = 0;
};

}  // namespace

absl::StatusOr<Recovered> Recover(const std::string& dir, RecoveryMode mode,
                                  absl::string_view queue) {
  Recovered out;
  Replayer replayer(&out, /*keep_tasks=*/mode == RecoveryMode::kOpen);
  LogRecoveryOptions options;
  options.mode = mode;
  options.queue = std::string(queue);
  options.what = "spool";
  options.log_component = log_component::kSpool;
  FABRIC_ASSIGN_OR_RETURN(LogRecovery log, RecoverLog(dir, options, &replayer));
  replayer.Finish();
  out.meta = std::move(log.meta);
  out.next_seq = log.next_seq;
  out.next_lsn = log.next_lsn;
  out.last_segment = log.last_segment;
  SpoolReport& report = out.report;
  report.corrupt = std::move(log.problems);
  report.torn_tail_bytes = log.torn_tail_bytes;
  report.seqs_skipped = log.seqs_skipped;
  report.producer_id = out.meta.producer_id;
  report.queue = out.meta.queue;
  report.next_seq = out.next_seq;
  report.segments = out.index.segments().size();
  report.disk_bytes = out.index.disk_bytes();
  report.live_bytes = out.index.live_bytes();
  report.pending = out.index.live_enq_count();
  report.dead = out.dead.size();
  return out;
}

}  // namespace fabric::spool_internal
