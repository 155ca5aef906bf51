// SPDX-License-Identifier: Apache-2.0
// Recovery rules (docs/spool.md section 7): every intact record is kept; a
// damaged range followed by an intact record is corruption (reported,
// skipped, the file copied to quarantine/ once); unreadable bytes at the end
// of the newest segment are a torn tail (truncated), anywhere else they are
// corruption. Nothing here aborts on bad input.
#include "fabric/spool/internal/recovery.h"

#include <fcntl.h>

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fabric/base/log.h"
#include "fabric/base/status_macros.h"
#include "fabric/spool/internal/file_util.h"
#include "fabric/spool/internal/payload.h"
#include "fabric/spool/internal/record.h"
#include "fabric/spool/internal/spool_format.h"

namespace fabric::spool_internal {
namespace {

void AddProblem(Recovered* out, absl::string_view file, uint64_t offset,
                std::string what) {
  out->report.corrupt.push_back(
      SpoolProblem{std::string(file), offset, std::move(what)});
}

// Applies intact records to the index, the pending tasks and dead letters.
class Replayer {
 public:
  Replayer(Recovered* out, bool keep_tasks)
      : out_(out), keep_tasks_(keep_tasks) {}

  void Apply(absl::string_view file, uint64_t segment, const RecordView& r) {
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
      case RecordType::kReserve:
        return ApplyReserve(file, r);
      default:
        AddProblem(out_, file, r.offset,
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

  uint64_t max_seq() const { return max_seq_; }
  SeqReservationState& reservation() { return reservation_; }

 private:
  void Undecodable(absl::string_view file, const RecordView& r,
                   const absl::Status& status) {
    AddProblem(out_, file, r.offset,
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

  void ApplyReserve(absl::string_view file, const RecordView& r) {
    absl::StatusOr<uint64_t> ceiling = DecodeReservePayload(r.payload);
    if (!ceiling.ok()) return Undecodable(file, r, ceiling.status());
    reservation_.Record(*ceiling);
  }

  Recovered* out_;
  SeqReservationState reservation_;
  const bool keep_tasks_;
  absl::flat_hash_map<uint64_t, SpooledTask> tasks_;
  uint64_t max_seq_ = 0;
};

// Reads the first segment header of `path`, if any.
absl::StatusOr<SegmentHeader> ReadHeader(const std::string& path) {
  FABRIC_ASSIGN_OR_RETURN(File file, OpenFile(path, O_RDONLY, 0));
  std::string buffer;
  FABRIC_RETURN_IF_ERROR(PRead(file, 0, kSegmentHeaderSize, &buffer, path));
  return DecodeSegmentHeader(buffer);
}

// Copies a damaged file into quarantine/ once, for forensics. Best effort:
// a failure is logged, never fatal.
void Quarantine(const std::string& dir, const std::string& name,
                absl::string_view contents) {
  const std::string qdir = JoinPath(dir, kQuarantineDirName);
  absl::Status status = MakeDirs(qdir);
  if (status.ok() && FileExists(JoinPath(qdir, name))) return;
  if (status.ok()) status = WriteFileAtomically(qdir, name, contents);
  if (!status.ok()) {
    FABRIC_LOG(kWarning, kSpool, "FAB-SPOOL-QUARANTINE cannot copy ", name,
               " to quarantine: ", status.message());
  }
}

absl::Status LoadMeta(const std::string& dir, RecoveryMode mode,
                      absl::string_view queue,
                      const std::vector<uint64_t>& numbers, Recovered* out) {
  const bool repair = mode == RecoveryMode::kOpen;
  const std::string path = JoinPath(dir, kMetaFileName);
  std::string data;
  if (FileExists(path)) {
    absl::StatusOr<std::string> read = ReadFile(path);
    absl::StatusOr<Meta> meta =
        read.ok() ? DecodeMeta(*read) : absl::StatusOr<Meta>(read.status());
    if (meta.ok()) {
      if (repair && meta->queue != queue) {
        return absl::FailedPreconditionError(
            absl::StrCat("spool ", dir, " belongs to queue '", meta->queue,
                         "', not '", queue, "'"));
      }
      out->meta = *std::move(meta);
      return absl::OkStatus();
    }
    if (absl::IsUnimplemented(meta.status())) return meta.status();
    AddProblem(out, kMetaFileName, 0,
               absl::StrCat("META is unreadable (", meta.status().message(),
                            "); rebuilt from the segment headers"));
    if (read.ok()) data = *std::move(read);
  } else if (numbers.empty()) {
    if (!repair) {
      return absl::NotFoundError(absl::StrCat("no spool in ", dir));
    }
    out->meta =
        Meta{NodeId::Random(), std::string(queue), kFormatVersion, absl::Now()};
    return WriteFileAtomically(dir, kMetaFileName, EncodeMeta(out->meta));
  } else {
    AddProblem(out, kMetaFileName, 0,
               "META is missing; rebuilt from the segment headers");
  }
  // Rebuild: the producer id is in every segment header.
  out->meta = Meta{NodeId(), std::string(queue), kFormatVersion, absl::Now()};
  for (uint64_t n : numbers) {
    absl::StatusOr<SegmentHeader> header =
        ReadHeader(JoinPath(dir, SegmentFileName(n)));
    if (header.ok() && !header->producer_id.IsZero()) {
      out->meta.producer_id = header->producer_id;
      break;
    }
  }
  if (out->meta.producer_id.IsZero()) out->meta.producer_id = NodeId::Random();
  if (!repair) return absl::OkStatus();
  FABRIC_LOG(kWarning, kSpool, "FAB-SPOOL-META-REBUILT ", dir,
             ": META rebuilt from the segment headers");
  if (!data.empty()) Quarantine(dir, kMetaFileName, data);
  return WriteFileAtomically(dir, kMetaFileName, EncodeMeta(out->meta));
}

absl::Status TruncateSegment(const std::string& path, uint64_t size) {
  FABRIC_ASSIGN_OR_RETURN(File file, OpenFile(path, O_WRONLY, 0));
  FABRIC_RETURN_IF_ERROR(Truncate(file, size, path));
  return DataSync(file, path);
}

absl::Status RecoverSegment(const std::string& dir, uint64_t n, bool newest,
                            RecoveryMode mode, Replayer* replayer,
                            Recovered* out) {
  const bool repair = mode == RecoveryMode::kOpen;
  const std::string name = SegmentFileName(n);
  const std::string path = JoinPath(dir, name);
  absl::StatusOr<std::string> read = ReadFile(path);
  if (!read.ok()) {
    // Gone under a read-only scan, or unreadable: report and leave it be.
    if (!absl::IsNotFound(read.status())) {
      AddProblem(out, name, 0, std::string(read.status().message()));
    }
    return absl::OkStatus();
  }
  const std::string& image = *read;
  absl::StatusOr<SegmentHeader> header = DecodeSegmentHeader(image);
  if (absl::IsUnimplemented(header.status())) {
    return Annotate(header.status(), path);
  }
  if (header.ok() && header->segment != n) {
    header = absl::DataLossError(
        absl::StrCat("segment header names segment ", header->segment));
  }
  if (header.ok() && header->producer_id != out->meta.producer_id) {
    AddProblem(out, name, 0,
               absl::StrCat("segment belongs to another spool (producer ",
                            header->producer_id.ToHex(), "); ignored"));
    return absl::OkStatus();
  }
  if (!header.ok()) {
    const SegmentWalk probe =
        WalkSegment(image, n, kSegmentHeaderSize, [](const RecordView&) {});
    if (probe.records == 0 && newest) {
      // Torn while being created: it never held a record.
      out->report.torn_tail_bytes += image.size();
      if (!repair) return absl::OkStatus();
      FABRIC_LOG(kWarning, kSpool, "FAB-SPOOL-TORN-SEGMENT removing ", path,
                 ": ", header.status().message());
      FABRIC_RETURN_IF_ERROR(RemoveFile(path));
      return SyncDir(dir);
    }
    AddProblem(out, name, 0,
               absl::StrCat(header.status().message(),
                            "; reading its records anyway"));
  }
  if (header.ok()) replayer->reservation().Header(header->seq_reserved);
  out->index.AddSegment(n, header.ok() ? header->base_seq : 0,
                        header.ok() ? header->base_lsn : 0, image.size());
  const SegmentWalk walk =
      WalkSegment(image, n, kSegmentHeaderSize,
                  [&](const RecordView& r) { replayer->Apply(name, n, r); });
  bool damaged = !header.ok();
  for (const SegmentWalk::Skip& skip : walk.skipped) {
    AddProblem(out, name, skip.offset,
               absl::StrCat(skip.what, "; skipped ", skip.bytes, " bytes"));
    damaged = true;
  }
  const uint64_t tail = image.size() - walk.valid_end;
  if (tail > 0 && newest) {
    out->report.torn_tail_bytes += tail;
    out->index.SetFileBytes(n, walk.valid_end);
    if (repair) {
      FABRIC_LOG(kInfo, kSpool, "FAB-SPOOL-TORN-TAIL truncating ", path,
                 " from ", image.size(), " to ", walk.valid_end, " bytes (",
                 walk.tail_what, ")");
      FABRIC_RETURN_IF_ERROR(TruncateSegment(path, walk.valid_end));
    }
  } else if (tail > 0) {
    AddProblem(out, name, walk.valid_end,
               absl::StrCat(walk.tail_what, "; ", tail,
                            " bytes to the end of the segment are unreadable"));
    damaged = true;
  }
  if (damaged && repair) Quarantine(dir, name, image);
  if (header.ok()) {
    out->next_seq = std::max(out->next_seq, header->base_seq);
    out->next_lsn = std::max(out->next_lsn, header->base_lsn);
  }
  if (walk.records > 0) {
    out->next_lsn = std::max(out->next_lsn, walk.last_lsn + 1);
  }
  return absl::OkStatus();
}

}  // namespace

uint64_t SeqReservationState::NextSeq(uint64_t next_seq,
                                      uint64_t torn_tail_bytes) const {
  if (known) return std::max(next_seq, ceiling + 1);
  // A log from before reservations: the torn bytes may have held records
  // whose seqs were handed out (and, under kNone or kInterval, confirmed):
  // skip past every seq they could have used.
  if (torn_tail_bytes > 0) next_seq += torn_tail_bytes / kRecordOverhead + 1;
  return next_seq;
}

absl::StatusOr<Recovered> Recover(const std::string& dir, RecoveryMode mode,
                                  absl::string_view queue) {
  const bool repair = mode == RecoveryMode::kOpen;
  absl::StatusOr<std::vector<std::string>> names = ListDir(dir);
  if (!names.ok()) {
    if (absl::IsNotFound(names.status())) {
      return absl::NotFoundError(absl::StrCat("no spool directory ", dir));
    }
    return absl::DataLossError(absl::StrCat("cannot read spool directory: ",
                                            names.status().message()));
  }
  std::vector<uint64_t> numbers;
  for (const std::string& name : *names) {
    if (std::optional<uint64_t> n = ParseSegmentFileName(name)) {
      numbers.push_back(*n);
    } else if (repair && absl::EndsWith(name, kTmpSuffix)) {
      // Left by a crash before its rename: never part of the spool.
      FABRIC_RETURN_IF_ERROR(RemoveFile(JoinPath(dir, name)));
    }
  }
  std::sort(numbers.begin(), numbers.end());

  Recovered out;
  out.last_segment = numbers.empty() ? 0 : numbers.back();
  FABRIC_RETURN_IF_ERROR(LoadMeta(dir, mode, queue, numbers, &out));
  Replayer replayer(&out, /*keep_tasks=*/repair);
  for (uint64_t n : numbers) {
    FABRIC_RETURN_IF_ERROR(
        RecoverSegment(dir, n, n == numbers.back(), mode, &replayer, &out));
  }
  replayer.Finish();
  if (replayer.max_seq() != UINT64_MAX) {
    out.next_seq = std::max(out.next_seq, replayer.max_seq() + 1);
  }
  out.next_seq =
      replayer.reservation().NextSeq(out.next_seq, out.report.torn_tail_bytes);
  if (repair) {
    for (const SpoolProblem& p : out.report.corrupt) {
      FABRIC_LOG(kWarning, kSpool, "FAB-SPOOL-CORRUPT ", dir, "/", p.segment,
                 " offset ", p.offset, ": ", p.what);
    }
  }
  SpoolReport& report = out.report;
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
