// SPDX-License-Identifier: Apache-2.0
// Builds spool segment images (docs/spool.md sections 3-5) from fuzzer
// bytes for the spool record and topic log fuzzers. Records carry
// checksums the fuzzer could never forge, so the harness frames them
// itself, then damages the image (a flipped byte, a cut, inserted bytes) at
// a place the input chooses: the readers see intact records, damage in the
// middle and torn tails.
#ifndef TESTS_FUZZ_SEGMENT_BUILDER_H_
#define TESTS_FUZZ_SEGMENT_BUILDER_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "fabric/spool/internal/payload.h"
#include "fabric/spool/internal/record.h"
#include "fabric/spool/internal/spool_format.h"
#include "tests/fuzz/fuzz_util.h"

namespace fabric_fuzz {

namespace si = ::fabric::spool_internal;

struct BuiltRecord {
  uint8_t type = 0;
  uint64_t lsn = 0;
  uint64_t offset = 0;  // in the image
  std::string payload;
};

struct BuiltSegment {
  std::string image;
  std::vector<BuiltRecord> records;  // as framed, before any damage
  // First byte the damage changed (image.size() for a cut at the end), or
  // UINT64_MAX when the image is intact.
  uint64_t damage_at = UINT64_MAX;
};

// A task's headers: up to three short pairs.
inline fabric::Headers ReadHeaders(FieldReader& in) {
  fabric::Headers headers;
  for (int n = in.U8() % 4; n > 0; --n) headers[in.String(16)] = in.String(16);
  return headers;
}

// The payload of a record of `type`, as the writers encode it, except that
// an unknown type gets raw bytes. `seq` is the ENQ or DEAD task's seq.
inline std::string ReadPayload(FieldReader& in, si::RecordType type,
                               uint64_t seq) {
  std::string out;
  switch (type) {
    case si::RecordType::kEnq:
      si::EncodeEnqPayload(seq,
                           absl::FromUnixMicros(static_cast<int64_t>(in.U64())),
                           ReadHeaders(in), in.String(), &out);
      break;
    case si::RecordType::kDead: {
      fabric::DeadLetter dead;
      dead.task.seq = seq;
      dead.task.enqueued = absl::FromUnixMicros(in.U32());
      dead.task.headers = ReadHeaders(in);
      dead.task.body = in.String();
      dead.attempts = in.U32();
      dead.reason = in.String(32);
      dead.died = absl::FromUnixMicros(in.U32());
      si::EncodeDeadPayload(dead, &out);
      break;
    }
    case si::RecordType::kAck:
    case si::RecordType::kDeadRemoved: {
      std::vector<uint64_t> seqs(in.U8() % 8);
      for (uint64_t& s : seqs) s = in.U8();
      si::EncodeSeqRanges(si::ToRanges(std::move(seqs)), &out);
      break;
    }
    case si::RecordType::kReserve:
      si::EncodeReservePayload(in.U64(), &out);
      break;
    default:
      out = in.String();
      break;
  }
  return out;
}

// Damages `seg` as the next input byte says: nothing, a flipped byte, a
// cut, or inserted bytes, at an offset past the segment header.
inline void Damage(FieldReader& in, BuiltSegment* seg) {
  const uint8_t mode = in.U8() % 4;
  std::string& image = seg->image;
  if (mode == 0 || image.size() <= si::kSegmentHeaderSize) return;
  const uint64_t span = image.size() - si::kSegmentHeaderSize;
  const uint64_t at = si::kSegmentHeaderSize + in.U32() % span;
  switch (mode) {
    case 1:
      image[at] = static_cast<char>(image[at] ^ (in.U8() | 1));
      break;
    case 2:
      image.resize(at);
      break;
    default: {
      std::string garbage = in.String(64);
      if (garbage.empty()) garbage.push_back('x');
      image.insert(at, garbage);
      break;
    }
  }
  seg->damage_at = at;
}

// A segment numbered `number`: its header, up to `max_records` records
// (types and payloads from `in`; ENQ seqs ascend from `*next_seq` when
// `enq_only`), then damage.
inline BuiltSegment BuildSegment(FieldReader& in, uint64_t number,
                                 uint64_t* next_lsn, uint64_t* next_seq,
                                 bool enq_only, int max_records) {
  BuiltSegment seg;
  si::SegmentHeader header;
  header.segment = number;
  header.base_seq = *next_seq;
  header.base_lsn = *next_lsn;
  header.created = absl::FromUnixMicros(in.U32());
  header.producer_id = in.Id();
  header.seq_reserved = in.Bool() ? *next_seq + in.U8() : 0;
  seg.image = si::EncodeSegmentHeader(header);
  for (int n = in.U8() % (max_records + 1); n > 0; --n) {
    const uint8_t choice = in.U8();
    si::RecordType type = si::RecordType::kEnq;
    if (!enq_only || choice % 16 == 0) {
      type = static_cast<si::RecordType>(choice % 7);  // 0 and 6: unknown
    }
    // Seqs mostly ascend; now and then one repeats an earlier one.
    const uint64_t seq =
        (choice & 0x80) != 0 && *next_seq > 1 ? *next_seq - 1 : (*next_seq)++;
    BuiltRecord r;
    r.type = static_cast<uint8_t>(type);
    r.lsn = (*next_lsn)++;
    r.offset = seg.image.size();
    r.payload = ReadPayload(in, type, seq);
    si::AppendRecord(&seg.image, type, r.lsn, number, r.payload);
    seg.records.push_back(std::move(r));
  }
  Damage(in, &seg);
  return seg;
}

}  // namespace fabric_fuzz

#endif  // TESTS_FUZZ_SEGMENT_BUILDER_H_
