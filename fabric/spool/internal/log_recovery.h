// SPDX-License-Identifier: Apache-2.0
// Reading an append log's directory back (docs/spool.md section 7), for
// both the task spool and the topic log: META, every segment in order,
// every record checked, seq reservations, and the repairs `Open` makes
// (truncate a torn tail, delete a segment torn during creation, rebuild
// META, copy damaged files to quarantine/). What the records mean is the
// owner's: a `LogVisitor` sees each intact record in log order.
#ifndef FABRIC_SPOOL_INTERNAL_LOG_RECOVERY_H_
#define FABRIC_SPOOL_INTERNAL_LOG_RECOVERY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fabric/spool/internal/file_util.h"
#include "fabric/spool/internal/meta.h"
#include "fabric/spool/internal/record.h"
#include "fabric/spool/spool.h"

namespace fabric::spool_internal {

enum class RecoveryMode {
  kOpen,  // repair as described above; REQUIRES: the LOCK is held
  kScan,  // change nothing; report what kOpen would do
};

// The seq reservation (docs/spool.md section 6.1) as recovery reads it: the
// last RESERVE record or segment header `seq_reserved`, in log order.
struct SeqReservationState {
  bool known = false;  // false for logs written before reservations
  uint64_t ceiling = 0;
  void Header(uint64_t seq_reserved) {
    if (seq_reserved != 0) {
      known = true;
      ceiling = seq_reserved;
    }
  }
  void Record(uint64_t value) {
    known = true;
    ceiling = value;
  }
  // The next seq to hand out: above every seq seen (`next_seq`) and every
  // seq that may have been handed out. Logs without reservations skip past
  // every seq a torn tail of `torn_tail_bytes` could have held.
  uint64_t NextSeq(uint64_t next_seq, uint64_t torn_tail_bytes) const;
};

// What recovering a log found.
struct LogRecovery {
  Meta meta;
  std::vector<SpoolProblem> problems;  // damage reported, never fatal
  uint64_t torn_tail_bytes = 0;        // cut off (Open) or that would be
  // Seqs above every record found that are never handed out: they may have
  // been confirmed before an unclean stop (docs/spool.md section 6.1).
  uint64_t seqs_skipped = 0;
  uint64_t next_seq = 1;  // the seq to hand out next
  uint64_t next_lsn = 1;
  uint64_t last_segment = 0;  // highest segment number among the files
  void AddProblem(absl::string_view file, uint64_t offset, std::string what);
};

// The owner's view of the records. Called in log order.
class LogVisitor {
 public:
  virtual ~LogVisitor() = default;
  // A segment whose records follow; `header` is null when it is damaged
  // (its records are read anyway). `file_bytes` is its size on disk.
  virtual void BeginSegment(uint64_t /*number*/,
                            const SegmentHeader* /*header*/,
                            uint64_t /*file_bytes*/) {}
  // An intact record (RESERVE records are handled by recovery itself).
  // Problems with its contents go to `out->AddProblem`.
  virtual void Record(absl::string_view file, uint64_t segment,
                      const RecordView& record, LogRecovery* out) = 0;
  // The segment's size once repaired (smaller when a torn tail was cut).
  virtual void EndSegment(uint64_t /*number*/, uint64_t /*file_bytes*/) {}
  // The highest seq any record used, 0 if none.
  virtual uint64_t max_seq() const = 0;
};

struct LogRecoveryOptions {
  RecoveryMode mode = RecoveryMode::kOpen;
  // META's queue field: the spool's queue, or "topic:<topic>". kOpen checks
  // it and writes it into a new or rebuilt META.
  std::string queue;
  std::string what;                 // "spool", "topic log": in messages
  absl::string_view log_component;  // for the log lines
};

// Creates the segment a log starts writing in after recovering, numbered
// `last_segment + 1` (recovered files are never appended to), its header
// carrying the log's `id`, next seq and lsn and reserving exactly the seqs
// handed out so far, so the floor survives even once every older segment
// is gone.
absl::StatusOr<File> CreateActiveSegment(const std::string& dir,
                                         const NodeId& id,
                                         uint64_t last_segment,
                                         uint64_t next_seq, uint64_t next_lsn);

// Recovers the log in `dir`. Returns kNotFound when `dir` or (kScan) the
// log does not exist, kFailedPrecondition when it belongs to another queue
// or topic, kUnimplemented for a newer format, kDataLoss when the
// directory cannot be read, and the I/O error of a failed repair.
absl::StatusOr<LogRecovery> RecoverLog(const std::string& dir,
                                       const LogRecoveryOptions& options,
                                       LogVisitor* visitor);

}  // namespace fabric::spool_internal

#endif  // FABRIC_SPOOL_INTERNAL_LOG_RECOVERY_H_
