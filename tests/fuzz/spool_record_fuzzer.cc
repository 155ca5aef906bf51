// SPDX-License-Identifier: Apache-2.0
// libFuzzer target over the spool's record reader: the input is walked as a
// segment image (framing, checksums, resynchronization) and every intact
// record's payload is decoded; the input is also tried as a segment header,
// META and each payload kind. Build with clang as decoders_fuzzer.cc says,
// then run build-fuzz/tests/spool_record_fuzzer -max_total_time=60.
#include <cstddef>
#include <cstdint>

#include "fabric/spool/internal/meta.h"
#include "fabric/spool/internal/payload.h"
#include "fabric/spool/internal/record.h"

namespace si = fabric::spool_internal;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  si::DecodeSegmentHeader(input).IgnoreError();
  si::DecodeMeta(input).IgnoreError();
  si::DecodeEnqPayload(input).IgnoreError();
  si::DecodeDeadPayload(input).IgnoreError();
  si::DecodeSeqRanges(input).IgnoreError();
  si::WalkSegment(input, 1, 0, [](const si::RecordView& r) {
    switch (static_cast<si::RecordType>(r.type)) {
      case si::RecordType::kEnq:
        si::DecodeEnqPayload(r.payload).IgnoreError();
        break;
      case si::RecordType::kDead:
        si::DecodeDeadPayload(r.payload).IgnoreError();
        break;
      default:
        si::DecodeSeqRanges(r.payload).IgnoreError();
        break;
    }
  });
  return 0;
}
