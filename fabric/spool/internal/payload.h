// SPDX-License-Identifier: Apache-2.0
// The msgpack payloads of spool records (docs/spool.md section 5). Encoders
// write into a caller-owned buffer so the append path can reuse it; decoders
// are bounded and never throw.
#ifndef FABRIC_SPOOL_INTERNAL_PAYLOAD_H_
#define FABRIC_SPOOL_INTERNAL_PAYLOAD_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fabric/codec/control.h"
#include "fabric/spool/spool.h"

namespace fabric::spool_internal {

// Inclusive ranges of seqs, ascending and disjoint.
using SeqRanges = std::vector<std::pair<uint64_t, uint64_t>>;

// Replaces `out` with the payload of an ENQ record.
void EncodeEnqPayload(uint64_t seq, absl::Time enqueued, const Headers& headers,
                      absl::string_view body, std::string* out);
void EncodeDeadPayload(const DeadLetter& dead, std::string* out);
// Payload of ACK and DEAD_REMOVED records.
void EncodeSeqRanges(const SeqRanges& ranges, std::string* out);

// Return kDataLoss naming the problem when the payload is malformed.
absl::StatusOr<SpooledTask> DecodeEnqPayload(absl::string_view payload);
absl::StatusOr<DeadLetter> DecodeDeadPayload(absl::string_view payload);
absl::StatusOr<SeqRanges> DecodeSeqRanges(absl::string_view payload);

// Reads only the seq and the time of an ENQ payload, without allocating.
// Returns false when the payload does not start like one.
bool PeekEnqPayload(absl::string_view payload, uint64_t* seq,
                    absl::Time* enqueued);

// Payload of a RESERVE record: the ceiling as 8 bytes, little-endian.
void EncodeReservePayload(uint64_t ceiling, std::string* out);
absl::StatusOr<uint64_t> DecodeReservePayload(absl::string_view payload);

// Sorts `seqs`, drops duplicates and merges neighbours into ranges.
SeqRanges ToRanges(std::vector<uint64_t> seqs);

}  // namespace fabric::spool_internal

#endif  // FABRIC_SPOOL_INTERNAL_PAYLOAD_H_
