// SPDX-License-Identifier: Apache-2.0
// Reading a spool directory back: META, every segment in order, every
// record checked, the live state rebuilt (docs/spool.md section 7). The same
// code serves `Spool::Open` (which may repair: truncate a torn tail, delete a
// segment torn during creation, rebuild META, copy damaged files to
// quarantine/) and the read-only `Spool::Scan`.
#ifndef FABRIC_SPOOL_INTERNAL_RECOVERY_H_
#define FABRIC_SPOOL_INTERNAL_RECOVERY_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fabric/spool/internal/index.h"
#include "fabric/spool/internal/meta.h"
#include "fabric/spool/spool.h"

namespace fabric::spool_internal {

enum class RecoveryMode {
  kOpen,  // repair as described above; REQUIRES: the LOCK is held
  kScan,  // change nothing; report what kOpen would do
};

struct Recovered {
  Meta meta;
  SpoolReport report;
  std::vector<SpooledTask> pending;     // ascending seq (kOpen only)
  std::map<uint64_t, DeadLetter> dead;  // by seq
  SpoolIndex index;
  uint64_t next_seq = 1;
  uint64_t next_lsn = 1;
  uint64_t last_segment = 0;  // highest segment number among the files
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

// Recovers the spool in `dir`. `queue` is checked against META (kOpen) and
// used when META must be created or rebuilt. Returns kNotFound when `dir`
// or (kScan) the spool does not exist, kFailedPrecondition for another
// queue's spool, kUnimplemented for a newer format, kDataLoss when the
// directory cannot be read, and the I/O error of a failed repair.
absl::StatusOr<Recovered> Recover(const std::string& dir, RecoveryMode mode,
                                  absl::string_view queue);

}  // namespace fabric::spool_internal

#endif  // FABRIC_SPOOL_INTERNAL_RECOVERY_H_
