// SPDX-License-Identifier: Apache-2.0
// libFuzzer target over the spool's on-disk decoders (docs/spool.md): the
// segment header, META, every record payload kind and the record walk that
// recovery and reads share. The input is decoded as each of them; what
// decodes must encode and decode back to the same value, and a walk of the
// input as a segment image must report records and damage consistently.
// The input also drives a segment builder (segment_builder.h) that frames
// real records with valid checksums and then damages them, so the walk is
// fuzzed past the checksums the fuzzer cannot forge: every record before
// the damage must be found as written. Build and run: tests/fuzz/README.md.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "fabric/spool/internal/meta.h"
#include "fabric/spool/internal/payload.h"
#include "fabric/spool/internal/record.h"
#include "fabric/spool/internal/spool_format.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/segment_builder.h"

namespace {

namespace si = ::fabric::spool_internal;
using ::fabric_fuzz::BuiltSegment;
using ::fabric_fuzz::FieldReader;

// Every refusal of a damaged file is kDataLoss (kUnimplemented: a newer
// format).
void RequireRefusal(const absl::Status& status) {
  FABRIC_FUZZ_REQUIRE(status.code() == absl::StatusCode::kDataLoss ||
                      status.code() == absl::StatusCode::kUnimplemented);
}

bool SameTask(const fabric::SpooledTask& a, const fabric::SpooledTask& b) {
  return a.seq == b.seq && a.enqueued == b.enqueued && a.headers == b.headers &&
         a.body == b.body;
}

bool SameHeader(const si::SegmentHeader& a, const si::SegmentHeader& b) {
  return a.segment == b.segment && a.base_seq == b.base_seq &&
         a.base_lsn == b.base_lsn && a.created == b.created &&
         a.producer_id == b.producer_id && a.flags == b.flags &&
         a.version == b.version && a.seq_reserved == b.seq_reserved;
}

void CheckEnq(absl::string_view payload) {
  absl::StatusOr<fabric::SpooledTask> task = si::DecodeEnqPayload(payload);
  uint64_t seq = 0;
  absl::Time enqueued;
  const bool peeked = si::PeekEnqPayload(payload, &seq, &enqueued);
  if (!task.ok()) return RequireRefusal(task.status());
  // The reads' fast path agrees with the full decoder on a payload in the
  // writers' shape (a fixarray; seqs a reader can hold as int64).
  if (static_cast<uint8_t>(payload[0]) == 0x94 &&
      task->seq <= static_cast<uint64_t>(INT64_MAX)) {
    FABRIC_FUZZ_REQUIRE(peeked && seq == task->seq &&
                        enqueued == task->enqueued);
  }
  std::string again;
  si::EncodeEnqPayload(task->seq, task->enqueued, task->headers, task->body,
                       &again);
  absl::StatusOr<fabric::SpooledTask> back = si::DecodeEnqPayload(again);
  FABRIC_FUZZ_REQUIRE(back.ok() && SameTask(*task, *back));
  if (task->seq <= static_cast<uint64_t>(INT64_MAX)) {
    FABRIC_FUZZ_REQUIRE(si::PeekEnqPayload(again, &seq, &enqueued) &&
                        seq == task->seq && enqueued == task->enqueued);
  }
}

void CheckDead(absl::string_view payload) {
  absl::StatusOr<fabric::DeadLetter> dead = si::DecodeDeadPayload(payload);
  if (!dead.ok()) return RequireRefusal(dead.status());
  std::string again;
  si::EncodeDeadPayload(*dead, &again);
  absl::StatusOr<fabric::DeadLetter> back = si::DecodeDeadPayload(again);
  FABRIC_FUZZ_REQUIRE(back.ok() && SameTask(dead->task, back->task) &&
                      back->attempts == dead->attempts &&
                      back->reason == dead->reason && back->died == dead->died);
}

void CheckSeqRanges(absl::string_view payload) {
  absl::StatusOr<si::SeqRanges> ranges = si::DecodeSeqRanges(payload);
  if (!ranges.ok()) return RequireRefusal(ranges.status());
  for (const auto& [lo, hi] : *ranges) FABRIC_FUZZ_REQUIRE(lo <= hi);
  std::string again;
  si::EncodeSeqRanges(*ranges, &again);
  absl::StatusOr<si::SeqRanges> back = si::DecodeSeqRanges(again);
  FABRIC_FUZZ_REQUIRE(back.ok() && *back == *ranges);
}

void CheckReserve(absl::string_view payload) {
  absl::StatusOr<uint64_t> ceiling = si::DecodeReservePayload(payload);
  if (!ceiling.ok()) return RequireRefusal(ceiling.status());
  std::string again;
  si::EncodeReservePayload(*ceiling, &again);
  FABRIC_FUZZ_REQUIRE(again == payload);
}

void CheckPayload(uint8_t type, absl::string_view payload) {
  switch (static_cast<si::RecordType>(type)) {
    case si::RecordType::kEnq:
      CheckEnq(payload);
      break;
    case si::RecordType::kDead:
      CheckDead(payload);
      break;
    case si::RecordType::kAck:
    case si::RecordType::kDeadRemoved:
      CheckSeqRanges(payload);
      break;
    case si::RecordType::kReserve:
      CheckReserve(payload);
      break;
    default:
      break;
  }
}

void CheckSegmentHeader(absl::string_view data) {
  absl::StatusOr<si::SegmentHeader> header = si::DecodeSegmentHeader(data);
  if (!header.ok()) return RequireRefusal(header.status());
  absl::StatusOr<si::SegmentHeader> back =
      si::DecodeSegmentHeader(si::EncodeSegmentHeader(*header));
  FABRIC_FUZZ_REQUIRE(back.ok() && SameHeader(*header, *back));
}

void CheckMeta(absl::string_view data) {
  absl::StatusOr<si::Meta> meta = si::DecodeMeta(data);
  if (!meta.ok()) return RequireRefusal(meta.status());
  absl::StatusOr<si::Meta> back = si::DecodeMeta(si::EncodeMeta(*meta));
  FABRIC_FUZZ_REQUIRE(back.ok() && back->producer_id == meta->producer_id &&
                      back->queue == meta->queue &&
                      back->version == meta->version &&
                      back->created == meta->created);
}

// Walks `image` and checks what the walk reports against the image: intact
// records in order, each one that ParseRecordAt accepts where it was
// found, damage only between them, nothing past the end. Returns the
// records found.
std::vector<si::RecordView> CheckWalk(absl::string_view image,
                                      uint64_t segment) {
  std::vector<si::RecordView> found;
  const si::SegmentWalk walk =
      si::WalkSegment(image, segment, si::kSegmentHeaderSize,
                      [&](const si::RecordView& r) { found.push_back(r); });
  FABRIC_FUZZ_REQUIRE(walk.records == found.size());
  uint64_t end = std::min<uint64_t>(si::kSegmentHeaderSize, image.size());
  uint64_t lsn = 0;
  size_t skip = 0;
  for (const si::RecordView& r : found) {
    // What lies between two records was reported as skipped.
    if (r.offset != end) {
      FABRIC_FUZZ_REQUIRE(skip < walk.skipped.size() &&
                          walk.skipped[skip].offset == end &&
                          walk.skipped[skip].bytes == r.offset - end);
      ++skip;
    }
    FABRIC_FUZZ_REQUIRE(r.lsn > lsn);
    FABRIC_FUZZ_REQUIRE(r.size == si::FramedSize(r.payload.size()));
    FABRIC_FUZZ_REQUIRE(r.offset + r.size <= image.size());
    si::RecordView again;
    std::string why;
    FABRIC_FUZZ_REQUIRE(
        si::ParseRecordAt(image, r.offset, segment, lsn, &again, &why));
    FABRIC_FUZZ_REQUIRE(again.payload == r.payload && again.lsn == r.lsn);
    CheckPayload(r.type, r.payload);
    lsn = r.lsn;
    end = r.offset + r.size;
  }
  FABRIC_FUZZ_REQUIRE(skip == walk.skipped.size());
  FABRIC_FUZZ_REQUIRE(walk.last_lsn == lsn && walk.valid_end == end);
  FABRIC_FUZZ_REQUIRE(walk.valid_end <= image.size());
  FABRIC_FUZZ_REQUIRE(walk.tail_what.empty() == (end == image.size()));
  return found;
}

// Builds a segment from the input's bytes: every record before the damage
// is found as written; with no damage, every record and nothing else.
void CheckBuiltSegment(absl::string_view input) {
  FieldReader in(input);
  uint64_t lsn = 1 + in.U8();
  uint64_t seq = 1 + in.U8();
  const uint64_t number = 1 + in.U8();
  const BuiltSegment seg = fabric_fuzz::BuildSegment(
      in, number, &lsn, &seq, /*enq_only=*/false, /*max_records=*/8);
  absl::StatusOr<si::SegmentHeader> header = si::DecodeSegmentHeader(seg.image);
  FABRIC_FUZZ_REQUIRE(header.ok() && header->segment == number);
  const std::vector<si::RecordView> found = CheckWalk(seg.image, number);
  size_t intact = 0;
  for (const fabric_fuzz::BuiltRecord& r : seg.records) {
    if (r.offset + si::FramedSize(r.payload.size()) > seg.damage_at) break;
    FABRIC_FUZZ_REQUIRE(intact < found.size());
    const si::RecordView& got = found[intact++];
    FABRIC_FUZZ_REQUIRE(got.type == r.type && got.lsn == r.lsn &&
                        got.offset == r.offset && got.payload == r.payload);
  }
  if (seg.damage_at == UINT64_MAX) {
    FABRIC_FUZZ_REQUIRE(found.size() == seg.records.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  CheckSegmentHeader(input);
  CheckMeta(input);
  CheckEnq(input);
  CheckDead(input);
  CheckSeqRanges(input);
  CheckReserve(input);
  CheckWalk(input, 1);
  CheckBuiltSegment(input);
  return 0;
}
