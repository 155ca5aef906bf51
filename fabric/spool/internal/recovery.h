// SPDX-License-Identifier: Apache-2.0
// Reading a spool directory back: the log's recovery (log_recovery.h, shared
// with the topic log) with the spool's records applied, rebuilding the live
// state (docs/spool.md section 7). The same code serves `Spool::Open`
// (which may repair) and the read-only `Spool::Scan`.
#ifndef FABRIC_SPOOL_INTERNAL_RECOVERY_H_
#define FABRIC_SPOOL_INTERNAL_RECOVERY_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fabric/spool/internal/index.h"
#include "fabric/spool/internal/log_recovery.h"
#include "fabric/spool/internal/meta.h"
#include "fabric/spool/spool.h"

namespace fabric::spool_internal {

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

// Recovers the spool in `dir`. `queue` is checked against META (kOpen) and
// used when META must be created or rebuilt. Returns kNotFound when `dir`
// or (kScan) the spool does not exist, kFailedPrecondition for another
// queue's spool, kUnimplemented for a newer format, kDataLoss when the
// directory cannot be read, and the I/O error of a failed repair.
absl::StatusOr<Recovered> Recover(const std::string& dir, RecoveryMode mode,
                                  absl::string_view queue);

}  // namespace fabric::spool_internal

#endif  // FABRIC_SPOOL_INTERNAL_RECOVERY_H_
