// SPDX-License-Identifier: Apache-2.0
// Framing per docs/spool.md. A length is never trusted before the header
// checksum holds; a damaged record is skipped only when a later intact record
// proves that the writer went on past it (LevelDB `log_reader.cc` reasons the
// same way about a torn tail being EOF).
#include "fabric/spool/internal/record.h"

#include <xxhash.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace fabric::spool_internal {
namespace {

void PutU16(char* p, uint16_t v) {
  for (int i = 0; i < 2; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
void PutU64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

constexpr size_t kHeaderChecksumOffset = 76;

}  // namespace

uint32_t Checksum(absl::string_view data, uint64_t seed) {
  return static_cast<uint32_t>(
      XXH3_64bits_withSeed(data.data(), data.size(), seed));
}

std::string EncodeSegmentHeader(const SegmentHeader& header) {
  std::string out(kSegmentHeaderSize, '\0');
  char* p = out.data();
  std::memcpy(p, kSegmentMagic, sizeof(kSegmentMagic));
  PutU32(p + 8, header.version);
  PutU32(p + 12, static_cast<uint32_t>(kSegmentHeaderSize));
  PutU64(p + 16, header.segment);
  PutU64(p + 24, header.base_seq);
  PutU64(p + 32, header.base_lsn);
  PutU64(p + 40, static_cast<uint64_t>(absl::ToUnixMicros(header.created)));
  std::memcpy(p + 48, header.producer_id.bytes().data(), NodeId::kSize);
  PutU32(p + 64, header.flags);
  PutU64(p + 68, header.seq_reserved);
  PutU32(p + kHeaderChecksumOffset,
         Checksum(absl::string_view(p, kHeaderChecksumOffset)));
  return out;
}

absl::StatusOr<SegmentHeader> DecodeSegmentHeader(absl::string_view data) {
  if (data.size() < kSegmentHeaderSize) {
    return absl::DataLossError(
        absl::StrCat("segment header is short (", data.size(), " bytes)"));
  }
  const char* p = data.data();
  if (std::memcmp(p, kSegmentMagic, sizeof(kSegmentMagic)) != 0) {
    return absl::DataLossError("bad segment header magic");
  }
  if (GetU32(p + kHeaderChecksumOffset) !=
      Checksum(absl::string_view(p, kHeaderChecksumOffset))) {
    return absl::DataLossError("segment header checksum mismatch");
  }
  SegmentHeader header;
  header.version = GetU32(p + 8);
  if (header.version > kFormatVersion) {
    return absl::UnimplementedError(absl::StrCat(
        "segment format version ", header.version,
        " is newer than this build supports (", kFormatVersion, ")"));
  }
  if (GetU32(p + 12) != kSegmentHeaderSize) {
    return absl::DataLossError("unexpected segment header size");
  }
  header.segment = GetU64(p + 16);
  header.base_seq = GetU64(p + 24);
  header.base_lsn = GetU64(p + 32);
  header.created = absl::FromUnixMicros(static_cast<int64_t>(GetU64(p + 40)));
  absl::StatusOr<NodeId> id =
      NodeId::FromBytes(absl::string_view(p + 48, NodeId::kSize));
  if (id.ok()) header.producer_id = *id;
  header.flags = GetU32(p + 64);
  header.seq_reserved = GetU64(p + 68);
  return header;
}

void AppendRecord(std::string* out, RecordType type, uint64_t lsn,
                  uint64_t segment, absl::string_view payload) {
  const size_t start = out->size();
  out->resize(start + kRecordHeaderSize + payload.size() + kRecordTrailerSize);
  char* p = out->data() + start;
  PutU32(p, kRecordMagic);
  PutU32(p + 8, static_cast<uint32_t>(payload.size()));
  p[12] = static_cast<char>(type);
  p[13] = 0;
  PutU16(p + 14, 0);
  PutU64(p + 16, lsn);
  PutU32(p + 24, static_cast<uint32_t>(segment));
  PutU32(p + 4, Checksum(absl::string_view(p + 8, kRecordHeaderSize - 8)));
  if (!payload.empty()) {
    std::memcpy(p + kRecordHeaderSize, payload.data(), payload.size());
  }
  PutU32(p + kRecordHeaderSize + payload.size(), Checksum(payload, lsn));
}

bool ParseRecordAt(absl::string_view image, uint64_t offset, uint64_t segment,
                   uint64_t min_lsn, RecordView* record, std::string* why) {
  if (offset > image.size() || image.size() - offset < kRecordHeaderSize) {
    *why = "truncated record header";
    return false;
  }
  const char* p = image.data() + offset;
  if (GetU32(p) != kRecordMagic) {
    *why = "bad record magic";
    return false;
  }
  if (GetU32(p + 4) !=
      Checksum(absl::string_view(p + 8, kRecordHeaderSize - 8))) {
    *why = "record header checksum mismatch";
    return false;
  }
  const uint32_t payload_len = GetU32(p + 8);
  if (payload_len > kMaxPayloadBytes) {
    *why = absl::StrCat("record length ", payload_len, " exceeds the limit");
    return false;
  }
  const uint32_t record_segment = GetU32(p + 24);
  if (record_segment != static_cast<uint32_t>(segment)) {
    *why = absl::StrCat("record of segment ", record_segment);
    return false;
  }
  const uint64_t lsn = GetU64(p + 16);
  if (lsn <= min_lsn) {
    *why = absl::StrCat("record lsn ", lsn, " does not follow ", min_lsn);
    return false;
  }
  const uint64_t size = FramedSize(payload_len);
  if (image.size() - offset < size) {
    *why = "record runs past the end of the file";
    return false;
  }
  absl::string_view payload(p + kRecordHeaderSize, payload_len);
  if (GetU32(p + kRecordHeaderSize + payload_len) != Checksum(payload, lsn)) {
    *why = "record payload checksum mismatch";
    return false;
  }
  record->type = static_cast<uint8_t>(p[12]);
  record->flags = static_cast<uint8_t>(p[13]);
  record->lsn = lsn;
  record->offset = offset;
  record->size = size;
  record->payload = payload;
  return true;
}

namespace {

// Returns the offset of the first intact record at or after `from`, or
// image.size() when there is none. Looks for the magic first so most bytes
// cost one comparison.
uint64_t FindNextRecord(absl::string_view image, uint64_t from,
                        uint64_t segment, uint64_t min_lsn) {
  const char first = static_cast<char>(kRecordMagic & 0xff);
  RecordView unused;
  std::string why;
  uint64_t pos = from;
  while (pos + kRecordOverhead <= image.size()) {
    const void* hit =
        std::memchr(image.data() + pos, first, image.size() - pos);
    if (hit == nullptr) break;
    pos = static_cast<uint64_t>(static_cast<const char*>(hit) - image.data());
    if (ParseRecordAt(image, pos, segment, min_lsn, &unused, &why)) return pos;
    ++pos;
  }
  return image.size();
}

}  // namespace

SegmentWalk WalkSegment(absl::string_view image, uint64_t segment,
                        uint64_t start,
                        const std::function<void(const RecordView&)>& visit) {
  SegmentWalk walk;
  uint64_t pos = std::min<uint64_t>(start, image.size());
  walk.valid_end = pos;
  RecordView record;
  std::string why;
  while (pos < image.size()) {
    if (ParseRecordAt(image, pos, segment, walk.last_lsn, &record, &why)) {
      visit(record);
      ++walk.records;
      walk.last_lsn = record.lsn;
      pos += record.size;
      walk.valid_end = pos;
      continue;
    }
    const uint64_t next =
        FindNextRecord(image, pos + 1, segment, walk.last_lsn);
    if (next >= image.size()) {
      walk.tail_what = why;
      break;
    }
    walk.skipped.push_back({pos, next - pos, why});
    pos = next;
  }
  return walk;
}

}  // namespace fabric::spool_internal
