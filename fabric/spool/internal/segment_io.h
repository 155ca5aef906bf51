// SPDX-License-Identifier: Apache-2.0
// Creating a segment file and rewriting one for compaction, each with the
// crash-safe sequence of docs/spool.md section 8: write "<name>.tmp",
// fdatasync it, rename it over the final name, fsync the directory.
#ifndef FABRIC_SPOOL_INTERNAL_SEGMENT_IO_H_
#define FABRIC_SPOOL_INTERNAL_SEGMENT_IO_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "fabric/spool/internal/file_util.h"
#include "fabric/spool/internal/index.h"
#include "fabric/spool/internal/record.h"

namespace fabric::spool_internal {

// Creates segment `header.segment` in `dir` holding only its header and
// returns it open for writing at offset kSegmentHeaderSize.
absl::StatusOr<File> CreateSegment(const std::string& dir,
                                   const SegmentHeader& header);

// Rewrites segment `snapshot.segment` keeping its live records byte for byte
// (same lsn, same checksums) and, when `snapshot.keep_resolutions`, the seqs
// its ACK, DEAD and DEAD_REMOVED records resolved, as summary ACK and
// DEAD_REMOVED records. Returns the new file size. On failure the old file
// is left in place.
absl::StatusOr<uint64_t> RewriteSegment(const std::string& dir,
                                        const NodeId& producer_id,
                                        const CompactionSnapshot& snapshot);

}  // namespace fabric::spool_internal

#endif  // FABRIC_SPOOL_INTERNAL_SEGMENT_IO_H_
