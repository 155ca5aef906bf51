// SPDX-License-Identifier: Apache-2.0
// Recovery rules (docs/spool.md section 7): every intact record is kept; a
// damaged range followed by an intact record is corruption (reported,
// skipped, the file copied to quarantine/ once); unreadable bytes at the end
// of the newest segment are a torn tail (truncated), anywhere else they are
// corruption. Nothing here aborts on bad input.
#include "fabric/spool/internal/log_recovery.h"

#include <fcntl.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fabric/base/log.h"
#include "fabric/base/status_macros.h"
#include "fabric/spool/internal/file_util.h"
#include "fabric/spool/internal/payload.h"
#include "fabric/spool/internal/segment_io.h"
#include "fabric/spool/internal/spool_format.h"

namespace fabric::spool_internal {
namespace {

class Recovery {
 public:
  Recovery(const std::string& dir, const LogRecoveryOptions& options,
           LogVisitor* visitor, LogRecovery* out)
      : dir_(dir),
        options_(options),
        repair_(options.mode == RecoveryMode::kOpen),
        visitor_(visitor),
        out_(out) {}

  absl::Status Run() {
    absl::StatusOr<std::vector<std::string>> names = ListDir(dir_);
    if (!names.ok()) {
      if (absl::IsNotFound(names.status())) {
        return absl::NotFoundError(
            absl::StrCat("no ", options_.what, " directory ", dir_));
      }
      return absl::DataLossError(
          absl::StrCat("cannot read ", options_.what,
                       " directory: ", names.status().message()));
    }
    std::vector<uint64_t> numbers;
    for (const std::string& name : *names) {
      if (std::optional<uint64_t> n = ParseSegmentFileName(name)) {
        numbers.push_back(*n);
      } else if (repair_ && absl::EndsWith(name, kTmpSuffix)) {
        // Left by a crash before its rename: never part of the log.
        FABRIC_RETURN_IF_ERROR(RemoveFile(JoinPath(dir_, name)));
      }
    }
    std::sort(numbers.begin(), numbers.end());
    out_->last_segment = numbers.empty() ? 0 : numbers.back();
    FABRIC_RETURN_IF_ERROR(LoadMeta(numbers));
    for (uint64_t n : numbers) {
      FABRIC_RETURN_IF_ERROR(Segment(n, n == numbers.back()));
    }
    const uint64_t max_seq = visitor_->max_seq();
    if (max_seq != UINT64_MAX) {
      out_->next_seq = std::max(out_->next_seq, max_seq + 1);
    }
    const uint64_t seen = out_->next_seq;
    out_->next_seq = reservation_.NextSeq(seen, out_->torn_tail_bytes);
    out_->seqs_skipped = out_->next_seq - seen;
    if (repair_ && out_->seqs_skipped > 0) {
      Log(LogLevel::kWarning,
          absl::StrCat("FAB-SPOOL-SEQS-SKIPPED ", dir_, ": seqs ", seen, "..",
                       out_->next_seq - 1,
                       " are skipped: they may have been confirmed before an "
                       "unclean stop took their records (docs/spool.md 6.1)"));
    }
    if (repair_) {
      for (const SpoolProblem& p : out_->problems) {
        Log(LogLevel::kWarning,
            absl::StrCat("FAB-SPOOL-CORRUPT ", dir_, "/", p.segment, " offset ",
                         p.offset, ": ", p.what));
      }
    }
    return absl::OkStatus();
  }

 private:
  void Log(LogLevel level, absl::string_view message) const {
    LogIfEnabled(level, options_.log_component, message);
  }

  // Reads the first segment header of `path`, if any.
  static absl::StatusOr<SegmentHeader> ReadHeader(const std::string& path) {
    FABRIC_ASSIGN_OR_RETURN(File file, OpenFile(path, O_RDONLY, 0));
    std::string buffer;
    FABRIC_RETURN_IF_ERROR(PRead(file, 0, kSegmentHeaderSize, &buffer, path));
    return DecodeSegmentHeader(buffer);
  }

  // Copies a damaged file into quarantine/ once, for forensics. Best
  // effort: a failure is logged, never fatal.
  void Quarantine(const std::string& name, absl::string_view contents) {
    const std::string qdir = JoinPath(dir_, kQuarantineDirName);
    absl::Status status = MakeDirs(qdir);
    if (status.ok() && FileExists(JoinPath(qdir, name))) return;
    if (status.ok()) status = WriteFileAtomically(qdir, name, contents);
    if (!status.ok()) {
      Log(LogLevel::kWarning,
          absl::StrCat("FAB-SPOOL-QUARANTINE cannot copy ", name,
                       " to quarantine: ", status.message()));
    }
  }

  absl::Status LoadMeta(const std::vector<uint64_t>& numbers) {
    const std::string path = JoinPath(dir_, kMetaFileName);
    std::string data;
    if (FileExists(path)) {
      absl::StatusOr<std::string> read = ReadFile(path);
      absl::StatusOr<Meta> meta =
          read.ok() ? DecodeMeta(*read) : absl::StatusOr<Meta>(read.status());
      if (meta.ok()) {
        if (repair_ && meta->queue != options_.queue) {
          return absl::FailedPreconditionError(
              absl::StrCat(options_.what, " ", dir_, " belongs to '",
                           meta->queue, "', not '", options_.queue, "'"));
        }
        out_->meta = *std::move(meta);
        return absl::OkStatus();
      }
      if (absl::IsUnimplemented(meta.status())) return meta.status();
      out_->AddProblem(
          kMetaFileName, 0,
          absl::StrCat("META is unreadable (", meta.status().message(),
                       "); rebuilt from the segment headers"));
      if (read.ok()) data = *std::move(read);
    } else if (numbers.empty()) {
      if (!repair_) {
        return absl::NotFoundError(
            absl::StrCat("no ", options_.what, " in ", dir_));
      }
      out_->meta =
          Meta{NodeId::Random(), options_.queue, kFormatVersion, absl::Now()};
      return WriteFileAtomically(dir_, kMetaFileName, EncodeMeta(out_->meta));
    } else {
      out_->AddProblem(kMetaFileName, 0,
                       "META is missing; rebuilt from the segment headers");
    }
    // Rebuild: the log's id is in every segment header.
    out_->meta = Meta{NodeId(), options_.queue, kFormatVersion, absl::Now()};
    for (uint64_t n : numbers) {
      absl::StatusOr<SegmentHeader> header =
          ReadHeader(JoinPath(dir_, SegmentFileName(n)));
      if (header.ok() && !header->producer_id.IsZero()) {
        out_->meta.producer_id = header->producer_id;
        break;
      }
    }
    if (out_->meta.producer_id.IsZero()) {
      out_->meta.producer_id = NodeId::Random();
    }
    if (!repair_) return absl::OkStatus();
    Log(LogLevel::kWarning, absl::StrCat("FAB-SPOOL-META-REBUILT ", dir_,
                                         ": META rebuilt from the segment "
                                         "headers"));
    if (!data.empty()) Quarantine(kMetaFileName, data);
    return WriteFileAtomically(dir_, kMetaFileName, EncodeMeta(out_->meta));
  }

  static absl::Status TruncateSegment(const std::string& path, uint64_t size) {
    FABRIC_ASSIGN_OR_RETURN(File file, OpenFile(path, O_WRONLY, 0));
    FABRIC_RETURN_IF_ERROR(Truncate(file, size, path));
    return DataSync(file, path);
  }

  absl::Status Segment(uint64_t n, bool newest) {
    const std::string name = SegmentFileName(n);
    const std::string path = JoinPath(dir_, name);
    absl::StatusOr<std::string> read = ReadFile(path);
    if (!read.ok()) {
      // Gone under a read-only scan, or unreadable: report and leave it be.
      if (!absl::IsNotFound(read.status())) {
        out_->AddProblem(name, 0, std::string(read.status().message()));
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
    if (header.ok() && header->producer_id != out_->meta.producer_id) {
      out_->AddProblem(
          name, 0,
          absl::StrCat("segment belongs to another ", options_.what, " (id ",
                       header->producer_id.ToHex(), "); ignored"));
      return absl::OkStatus();
    }
    if (!header.ok()) {
      const SegmentWalk probe =
          WalkSegment(image, n, kSegmentHeaderSize, [](const RecordView&) {});
      if (probe.records == 0 && newest) {
        // Torn while being created: it never held a record.
        out_->torn_tail_bytes += image.size();
        if (!repair_) return absl::OkStatus();
        Log(LogLevel::kWarning,
            absl::StrCat("FAB-SPOOL-TORN-SEGMENT removing ", path, ": ",
                         header.status().message()));
        FABRIC_RETURN_IF_ERROR(RemoveFile(path));
        return SyncDir(dir_);
      }
      out_->AddProblem(name, 0,
                       absl::StrCat(header.status().message(),
                                    "; reading its records anyway"));
    }
    if (header.ok()) {
      if (SeqInRange(name, 0, "header seq_reserved", header->seq_reserved)) {
        reservation_.Header(header->seq_reserved);
      }
      if (!SeqInRange(name, 0, "header base_seq", header->base_seq)) {
        header->base_seq = 0;
      }
    }
    visitor_->BeginSegment(n, header.ok() ? &*header : nullptr, image.size());
    const SegmentWalk walk =
        WalkSegment(image, n, kSegmentHeaderSize, [&](const RecordView& r) {
          if (r.type == static_cast<uint8_t>(RecordType::kReserve)) {
            absl::StatusOr<uint64_t> ceiling = DecodeReservePayload(r.payload);
            if (ceiling.ok()) {
              if (SeqInRange(name, r.offset, "RESERVE ceiling", *ceiling)) {
                reservation_.Record(*ceiling);
              }
            } else {
              out_->AddProblem(name, r.offset,
                               absl::StrCat("undecodable record: ",
                                            ceiling.status().message()));
            }
            return;
          }
          visitor_->Record(name, n, r, out_);
        });
    bool damaged = !header.ok();
    for (const SegmentWalk::Skip& skip : walk.skipped) {
      out_->AddProblem(
          name, skip.offset,
          absl::StrCat(skip.what, "; skipped ", skip.bytes, " bytes"));
      damaged = true;
    }
    uint64_t size = image.size();
    const uint64_t tail = image.size() - walk.valid_end;
    if (tail > 0 && newest) {
      out_->torn_tail_bytes += tail;
      size = walk.valid_end;
      if (repair_) {
        Log(LogLevel::kInfo,
            absl::StrCat("FAB-SPOOL-TORN-TAIL truncating ", path, " from ",
                         image.size(), " to ", walk.valid_end, " bytes (",
                         walk.tail_what, ")"));
        FABRIC_RETURN_IF_ERROR(TruncateSegment(path, walk.valid_end));
      }
    } else if (tail > 0) {
      out_->AddProblem(
          name, walk.valid_end,
          absl::StrCat(walk.tail_what, "; ", tail,
                       " bytes to the end of the segment are unreadable"));
      damaged = true;
    }
    visitor_->EndSegment(n, size);
    if (damaged && repair_) Quarantine(name, image);
    if (header.ok()) {
      out_->next_seq = std::max(out_->next_seq, header->base_seq);
      out_->next_lsn = std::max(out_->next_lsn, header->base_lsn);
    }
    if (walk.records > 0) {
      out_->next_lsn = std::max(out_->next_lsn, walk.last_lsn + 1);
    }
    return absl::OkStatus();
  }

  // Whether `seq` can be a seq of this log; reports it as damage if not.
  bool SeqInRange(absl::string_view file, uint64_t offset,
                  absl::string_view what, uint64_t seq) {
    if (seq <= kMaxSeq) return true;
    out_->AddProblem(
        file, offset,
        absl::StrCat(what, " ", seq, " is beyond the largest seq; ignored"));
    return false;
  }

  const std::string& dir_;
  const LogRecoveryOptions& options_;
  const bool repair_;
  LogVisitor* const visitor_;
  LogRecovery* const out_;
  SeqReservationState reservation_;
};

}  // namespace

void LogRecovery::AddProblem(absl::string_view file, uint64_t offset,
                             std::string what) {
  problems.push_back(SpoolProblem{std::string(file), offset, std::move(what)});
}

uint64_t SeqReservationState::NextSeq(uint64_t next_seq,
                                      uint64_t torn_tail_bytes) const {
  if (known) return std::max(next_seq, ceiling + 1);
  // A log from before reservations: the torn bytes may have held records
  // whose seqs were handed out (and, under kNone or kInterval, confirmed):
  // skip past every seq they could have used.
  if (torn_tail_bytes > 0) next_seq += torn_tail_bytes / kRecordOverhead + 1;
  return next_seq;
}

absl::StatusOr<File> CreateActiveSegment(const std::string& dir,
                                         const NodeId& id,
                                         uint64_t last_segment,
                                         uint64_t next_seq, uint64_t next_lsn) {
  SegmentHeader header;
  header.segment = last_segment + 1;
  header.base_seq = next_seq;
  header.base_lsn = next_lsn;
  header.seq_reserved = next_seq - 1;
  header.created = absl::Now();
  header.producer_id = id;
  return CreateSegment(dir, header);
}

absl::StatusOr<LogRecovery> RecoverLog(const std::string& dir,
                                       const LogRecoveryOptions& options,
                                       LogVisitor* visitor) {
  LogRecovery out;
  Recovery recovery(dir, options, visitor, &out);
  FABRIC_RETURN_IF_ERROR(recovery.Run());
  return out;
}

}  // namespace fabric::spool_internal
