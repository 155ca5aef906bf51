// SPDX-License-Identifier: Apache-2.0
#include "fabric/spool/internal/payload.h"

#include <algorithm>
#include <exception>
#include <msgpack.hpp>

#include "absl/strings/str_cat.h"
#include "fabric/base/status_macros.h"
#include "fabric/spool/internal/spool_format.h"

namespace fabric::spool_internal {
namespace {

// A msgpack write target appending to a std::string without extra copies.
struct StringSink {
  std::string* out;
  void write(const char* data, size_t size) { out->append(data, size); }
};
using Packer = msgpack::packer<StringSink>;

void PackBytes(Packer& pk, absl::string_view s) {
  pk.pack_bin(static_cast<uint32_t>(s.size()));
  pk.pack_bin_body(s.data(), s.size());
}

void PackTask(Packer& pk, uint64_t seq, absl::Time enqueued,
              const Headers& headers, absl::string_view body) {
  pk.pack_uint64(seq);
  pk.pack_int64(absl::ToUnixMicros(enqueued));
  pk.pack_map(static_cast<uint32_t>(headers.size()));
  for (const auto& [key, value] : headers) {
    PackBytes(pk, key);
    PackBytes(pk, value);
  }
  PackBytes(pk, body);
}

bool KeepReferences(msgpack::type::object_type, std::size_t, void*) {
  return true;
}

// Unpacks exactly one object with container sizes and depth capped. Spool
// payloads passed their checksum, but a bug or a crafted file must still
// not crash or exhaust memory (STYLE.md section 5).
absl::StatusOr<msgpack::object_handle> Unpack(absl::string_view data) {
  if (data.empty()) return absl::DataLossError("empty record payload");
  const msgpack::unpack_limit limit(kMaxMsgpackElements, kMaxMsgpackElements,
                                    data.size(), data.size(), 0, 3);
  std::size_t offset = 0;
  try {
    msgpack::object_handle handle = msgpack::unpack(
        data.data(), data.size(), offset, KeepReferences, nullptr, limit);
    if (offset != data.size()) {
      return absl::DataLossError("trailing bytes after record payload");
    }
    return handle;
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat("malformed payload: ", e.what()));
  }
}

absl::StatusOr<const msgpack::object_array*> Array(const msgpack::object& o,
                                                   size_t min_size,
                                                   absl::string_view what) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size < min_size) {
    return absl::DataLossError(
        absl::StrCat(what, " is not an array of ", min_size, "+ elements"));
  }
  return &o.via.array;
}

absl::StatusOr<uint64_t> Uint(const msgpack::object& o,
                              absl::string_view what) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) {
    return absl::DataLossError(absl::StrCat(what, " is not an unsigned int"));
  }
  return o.via.u64;
}

absl::StatusOr<absl::Time> Micros(const msgpack::object& o,
                                  absl::string_view what) {
  if (o.type == msgpack::type::POSITIVE_INTEGER) {
    if (o.via.u64 > static_cast<uint64_t>(INT64_MAX)) {
      return absl::DataLossError(absl::StrCat(what, " is out of range"));
    }
    return absl::FromUnixMicros(static_cast<int64_t>(o.via.u64));
  }
  if (o.type == msgpack::type::NEGATIVE_INTEGER) {
    return absl::FromUnixMicros(o.via.i64);
  }
  return absl::DataLossError(absl::StrCat(what, " is not an integer"));
}

absl::StatusOr<std::string> Bytes(const msgpack::object& o,
                                  absl::string_view what) {
  if (o.type == msgpack::type::BIN) {
    return std::string(o.via.bin.ptr, o.via.bin.size);
  }
  if (o.type == msgpack::type::STR) {
    return std::string(o.via.str.ptr, o.via.str.size);
  }
  return absl::DataLossError(absl::StrCat(what, " is not bytes"));
}

// Decodes the task fields at `fields[0..4)`.
absl::StatusOr<SpooledTask> DecodeTask(const msgpack::object* fields) {
  SpooledTask task;
  FABRIC_ASSIGN_OR_RETURN(task.seq, Uint(fields[0], "seq"));
  FABRIC_ASSIGN_OR_RETURN(task.enqueued, Micros(fields[1], "enqueued"));
  if (fields[2].type != msgpack::type::MAP) {
    return absl::DataLossError("headers is not a map");
  }
  const msgpack::object_map& map = fields[2].via.map;
  for (uint32_t i = 0; i < map.size; ++i) {
    FABRIC_ASSIGN_OR_RETURN(std::string key,
                            Bytes(map.ptr[i].key, "header name"));
    FABRIC_ASSIGN_OR_RETURN(std::string value,
                            Bytes(map.ptr[i].val, "header value"));
    task.headers[std::move(key)] = std::move(value);
  }
  FABRIC_ASSIGN_OR_RETURN(task.body, Bytes(fields[3], "body"));
  return task;
}

}  // namespace

void EncodeEnqPayload(uint64_t seq, absl::Time enqueued, const Headers& headers,
                      absl::string_view body, std::string* out) {
  out->clear();
  StringSink sink{out};
  Packer pk(sink);
  pk.pack_array(4);
  PackTask(pk, seq, enqueued, headers, body);
}

void EncodeDeadPayload(const DeadLetter& dead, std::string* out) {
  out->clear();
  StringSink sink{out};
  Packer pk(sink);
  pk.pack_array(7);
  PackTask(pk, dead.task.seq, dead.task.enqueued, dead.task.headers,
           dead.task.body);
  pk.pack_uint32(dead.attempts);
  PackBytes(pk, dead.reason);
  pk.pack_int64(absl::ToUnixMicros(dead.died));
}

void EncodeSeqRanges(const SeqRanges& ranges, std::string* out) {
  out->clear();
  StringSink sink{out};
  Packer pk(sink);
  pk.pack_array(static_cast<uint32_t>(2 * ranges.size()));
  for (const auto& [lo, hi] : ranges) {
    pk.pack_uint64(lo);
    pk.pack_uint64(hi);
  }
}

absl::StatusOr<SpooledTask> DecodeEnqPayload(absl::string_view payload) {
  FABRIC_ASSIGN_OR_RETURN(msgpack::object_handle handle, Unpack(payload));
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* fields,
                          Array(handle.get(), 4, "ENQ payload"));
  return DecodeTask(fields->ptr);
}

absl::StatusOr<DeadLetter> DecodeDeadPayload(absl::string_view payload) {
  FABRIC_ASSIGN_OR_RETURN(msgpack::object_handle handle, Unpack(payload));
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* fields,
                          Array(handle.get(), 7, "DEAD payload"));
  DeadLetter dead;
  FABRIC_ASSIGN_OR_RETURN(dead.task, DecodeTask(fields->ptr));
  FABRIC_ASSIGN_OR_RETURN(uint64_t attempts, Uint(fields->ptr[4], "attempts"));
  dead.attempts =
      static_cast<uint32_t>(std::min<uint64_t>(attempts, UINT32_MAX));
  FABRIC_ASSIGN_OR_RETURN(dead.reason, Bytes(fields->ptr[5], "reason"));
  FABRIC_ASSIGN_OR_RETURN(dead.died, Micros(fields->ptr[6], "died"));
  return dead;
}

absl::StatusOr<SeqRanges> DecodeSeqRanges(absl::string_view payload) {
  FABRIC_ASSIGN_OR_RETURN(msgpack::object_handle handle, Unpack(payload));
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* fields,
                          Array(handle.get(), 0, "seq ranges"));
  if (fields->size % 2 != 0) {
    return absl::DataLossError("seq ranges have an odd element count");
  }
  SeqRanges ranges;
  ranges.reserve(fields->size / 2);
  for (uint32_t i = 0; i < fields->size; i += 2) {
    FABRIC_ASSIGN_OR_RETURN(uint64_t lo, Uint(fields->ptr[i], "range start"));
    FABRIC_ASSIGN_OR_RETURN(uint64_t hi, Uint(fields->ptr[i + 1], "range end"));
    if (hi < lo) return absl::DataLossError("seq range ends before it starts");
    ranges.emplace_back(lo, hi);
  }
  return ranges;
}

namespace {

// Reads one msgpack integer at `*pos`; false if there is none.
bool ReadInt(absl::string_view data, size_t* pos, int64_t* value,
             bool* negative) {
  if (*pos >= data.size()) return false;
  const auto byte = [&](size_t i) {
    return static_cast<uint8_t>(data[*pos + i]);
  };
  const uint8_t tag = byte(0);
  size_t width = 0;
  *negative = false;
  if (tag <= 0x7f) {
    *value = tag;
    *pos += 1;
    return true;
  }
  if (tag >= 0xe0) {
    *value = static_cast<int8_t>(tag);
    *negative = true;
    *pos += 1;
    return true;
  }
  switch (tag) {
    case 0xcc:
    case 0xd0:
      width = 1;
      break;
    case 0xcd:
    case 0xd1:
      width = 2;
      break;
    case 0xce:
    case 0xd2:
      width = 4;
      break;
    case 0xcf:
    case 0xd3:
      width = 8;
      break;
    default:
      return false;
  }
  if (*pos + 1 + width > data.size()) return false;
  uint64_t raw = 0;
  for (size_t i = 0; i < width; ++i) raw = (raw << 8) | byte(1 + i);
  const bool is_signed = tag >= 0xd0;
  if (is_signed) {
    const int shift = static_cast<int>(64 - 8 * width);
    *value = static_cast<int64_t>(raw << shift) >> shift;
    *negative = *value < 0;
  } else {
    if (raw > static_cast<uint64_t>(INT64_MAX)) return false;
    *value = static_cast<int64_t>(raw);
  }
  *pos += 1 + width;
  return true;
}

}  // namespace

bool PeekEnqPayload(absl::string_view payload, uint64_t* seq,
                    absl::Time* enqueued) {
  if (payload.empty() || static_cast<uint8_t>(payload[0]) != 0x94) {
    return false;  // fixarray of 4
  }
  size_t pos = 1;
  int64_t value = 0;
  bool negative = false;
  if (!ReadInt(payload, &pos, &value, &negative) || negative) return false;
  *seq = static_cast<uint64_t>(value);
  if (!ReadInt(payload, &pos, &value, &negative)) return false;
  *enqueued = absl::FromUnixMicros(value);
  return true;
}

void EncodeReservePayload(uint64_t ceiling, std::string* out) {
  out->resize(8);
  for (int i = 0; i < 8; ++i) {
    (*out)[i] = static_cast<char>((ceiling >> (8 * i)) & 0xff);
  }
}

absl::StatusOr<uint64_t> DecodeReservePayload(absl::string_view payload) {
  if (payload.size() != 8) {
    return absl::DataLossError(
        absl::StrCat("RESERVE payload of ", payload.size(), " bytes, not 8"));
  }
  uint64_t ceiling = 0;
  for (int i = 7; i >= 0; --i) {
    ceiling = (ceiling << 8) | static_cast<uint8_t>(payload[i]);
  }
  return ceiling;
}

SeqRanges ToRanges(std::vector<uint64_t> seqs) {
  std::sort(seqs.begin(), seqs.end());
  SeqRanges ranges;
  for (uint64_t seq : seqs) {
    if (!ranges.empty() && seq <= ranges.back().second + 1) {
      ranges.back().second = std::max(ranges.back().second, seq);
    } else {
      ranges.emplace_back(seq, seq);
    }
  }
  return ranges;
}

}  // namespace fabric::spool_internal
