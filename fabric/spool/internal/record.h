// SPDX-License-Identifier: Apache-2.0
// Record framing and segment headers (docs/spool.md sections 3-4): encoding
// one framed record, checking one at an offset, and walking a whole segment
// image with the recovery rules (keep every intact record, resynchronize past
// corruption, tell a torn tail apart from damage in the middle).
#ifndef FABRIC_SPOOL_INTERNAL_RECORD_H_
#define FABRIC_SPOOL_INTERNAL_RECORD_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fabric/base/node_id.h"
#include "fabric/spool/internal/spool_format.h"

namespace fabric::spool_internal {

// Low 32 bits of XXH3_64bits(data) seeded with `seed`.
uint32_t Checksum(absl::string_view data, uint64_t seed = 0);

struct SegmentHeader {
  uint64_t segment = 0;
  uint64_t base_seq = 1;  // no ENQ in the segment has a lower seq
  uint64_t base_lsn = 1;  // no record in the segment has a lower lsn
  absl::Time created;
  NodeId producer_id;
  uint32_t flags = 0;
  uint32_t version = kFormatVersion;
  // Every seq up to this may have been handed out when the segment was
  // created; 0 when unknown (spools written before this field existed).
  uint64_t seq_reserved = 0;
};

std::string EncodeSegmentHeader(const SegmentHeader& header);
// Returns kDataLoss naming the problem when `data` does not start with a
// valid header (short, bad magic, bad checksum), kUnimplemented for a newer
// format version.
absl::StatusOr<SegmentHeader> DecodeSegmentHeader(absl::string_view data);

// Appends one framed record to `out`.
void AppendRecord(std::string* out, RecordType type, uint64_t lsn,
                  uint64_t segment, absl::string_view payload);
inline uint64_t FramedSize(size_t payload_size) {
  return kRecordOverhead + payload_size;
}

// One intact record inside a segment image.
struct RecordView {
  uint8_t type = 0;  // a RecordType value, or unknown
  uint8_t flags = 0;
  uint64_t lsn = 0;
  uint64_t offset = 0;  // of the record's first byte in the segment
  uint64_t size = 0;    // framed size
  absl::string_view payload;
};

// Checks the record at `offset` of `image`: header checksum, length cap,
// segment number (low 32 bits), lsn > `min_lsn`, payload within the image,
// payload checksum. On failure `*why` says what was wrong.
bool ParseRecordAt(absl::string_view image, uint64_t offset, uint64_t segment,
                   uint64_t min_lsn, RecordView* record, std::string* why);

// What walking a segment image found.
struct SegmentWalk {
  struct Skip {
    uint64_t offset = 0;
    uint64_t bytes = 0;
    std::string what;
  };
  uint64_t records = 0;
  uint64_t last_lsn = 0;
  // Damaged ranges followed by an intact record: corruption in the middle.
  std::vector<Skip> skipped;
  // End of the last intact record (or of the header). Bytes from here to the
  // end of the image hold no intact record: a torn tail in the newest
  // segment, corruption in an older one. `tail_what` says why the first
  // record there failed.
  uint64_t valid_end = 0;
  std::string tail_what;
};

// Walks the records of `image` from `start` (normally kSegmentHeaderSize),
// calling `visit` for each intact record in order. Never fails: damage is
// described in the result. `segment` is the number from the file name.
SegmentWalk WalkSegment(absl::string_view image, uint64_t segment,
                        uint64_t start,
                        const std::function<void(const RecordView&)>& visit);

}  // namespace fabric::spool_internal

#endif  // FABRIC_SPOOL_INTERNAL_RECORD_H_
