// SPDX-License-Identifier: Apache-2.0
#include "patterns/pubsub/internal/wire.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "fabric/base/status_macros.h"
#include "fabric/codec/msgpack_bounded.h"

namespace fabric::ps {
namespace {

using msgpack_bounded::AsBytes;
using msgpack_bounded::AsMap;
using msgpack_bounded::AsU32;
using msgpack_bounded::AsUint;
using msgpack_bounded::Fields;
using msgpack_bounded::PackBin;
using msgpack_bounded::Packer;
using msgpack_bounded::PackString;
using msgpack_bounded::StringSink;
using msgpack_bounded::UnpackBounded;

// A replay reply holds at most this many entries (the publisher caps its
// reads well below).
constexpr size_t kMaxReplayEntries = 65536;

// Frame integers are little-endian.
constexpr bool kBigEndianHost = std::endian::native == std::endian::big;

void PutU32(char* p, uint32_t v) {
  if constexpr (kBigEndianHost) v = __builtin_bswap32(v);
  std::memcpy(p, &v, 4);
}
void PutU64(char* p, uint64_t v) {
  if constexpr (kBigEndianHost) v = __builtin_bswap64(v);
  std::memcpy(p, &v, 8);
}
uint64_t GetU64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  if constexpr (kBigEndianHost) v = __builtin_bswap64(v);
  return v;
}
uint32_t GetU32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  if constexpr (kBigEndianHost) v = __builtin_bswap32(v);
  return v;
}

absl::StatusOr<absl::Time> AsMicros(const msgpack::object& o,
                                    absl::string_view what) {
  if (o.type == msgpack::type::NEGATIVE_INTEGER) {
    return absl::FromUnixMicros(o.via.i64);
  }
  FABRIC_ASSIGN_OR_RETURN(uint64_t v, AsUint(o, what));
  if (v > static_cast<uint64_t>(INT64_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " out of range"));
  }
  return absl::FromUnixMicros(static_cast<int64_t>(v));
}

}  // namespace

absl::Status ValidateTopic(absl::string_view topic) {
  if (topic.empty()) return absl::InvalidArgumentError("topic is empty");
  if (topic.size() > kMaxTopicBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "topic of ", topic.size(), " bytes is over ", kMaxTopicBytes));
  }
  if (topic.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("topic contains a NUL byte");
  }
  return absl::OkStatus();
}

void EncodeFrameHeader(absl::string_view topic, uint8_t flags, uint64_t stream,
                       uint64_t seq, uint32_t count, char* out) {
  std::memcpy(out, topic.data(), topic.size());
  char* p = out + topic.size();
  *p++ = '\0';
  *p++ = static_cast<char>(kFrameVersion);
  *p++ = static_cast<char>(flags);
  PutU64(p, stream);
  PutU64(p + 8, seq);
  PutU32(p + 16, count);
}

void SetFrameCount(absl::string_view topic, uint32_t count, char* frame) {
  PutU32(frame + topic.size() + 1 + 18, count);
}

void EncodeEntry(absl::Time published, absl::string_view headers,
                 absl::string_view body, char* out) {
  PutU64(out, static_cast<uint64_t>(absl::ToUnixMicros(published)));
  PutU32(out + 8, static_cast<uint32_t>(headers.size()));
  PutU32(out + 12, static_cast<uint32_t>(body.size()));
  char* p = out + kEntryFixedBytes;
  if (!headers.empty()) std::memcpy(p, headers.data(), headers.size());
  p += headers.size();
  if (!body.empty()) std::memcpy(p, body.data(), body.size());
}

absl::StatusOr<FrameView> DecodeFrame(absl::string_view frame) {
  const void* found = std::memchr(frame.data(), '\0',
                                  std::min(frame.size(), kMaxTopicBytes + 1));
  const size_t nul =
      found == nullptr
          ? absl::string_view::npos
          : static_cast<size_t>(static_cast<const char*>(found) - frame.data());
  if (nul == absl::string_view::npos || nul == 0) {
    return absl::InvalidArgumentError("frame has no topic");
  }
  FrameView v;
  v.topic = frame.substr(0, nul);
  absl::string_view rest = frame.substr(nul + 1);
  if (rest.size() < kFrameFixedBytes) {
    return absl::InvalidArgumentError("frame is truncated");
  }
  if (static_cast<uint8_t>(rest[0]) != kFrameVersion) {
    return absl::UnimplementedError(absl::StrCat(
        "frame version ", static_cast<int>(static_cast<uint8_t>(rest[0]))));
  }
  v.flags = static_cast<uint8_t>(rest[1]);
  const char* p = rest.data() + 2;
  v.stream = GetU64(p);
  v.seq = GetU64(p + 8);
  v.count = GetU32(p + 16);
  rest.remove_prefix(kFrameFixedBytes);
  if (v.stream == 0 || v.seq == 0) {
    return absl::InvalidArgumentError("frame has a zero stream or seq");
  }
  const bool beat = (v.flags & kFlagBeat) != 0;
  if (beat != (v.count == 0)) {
    return absl::InvalidArgumentError(beat ? "beat frame has messages"
                                           : "frame has no messages");
  }
  if (v.seq > UINT64_MAX - v.count) {
    return absl::InvalidArgumentError("frame seqs overflow");
  }
  // Every entry must fit, and together they must fill the frame exactly.
  v.entries = rest;
  for (uint32_t i = 0; i < v.count; ++i) {
    if (rest.size() < kEntryFixedBytes) {
      return absl::InvalidArgumentError("frame entry is truncated");
    }
    const uint64_t len =
        uint64_t{GetU32(rest.data() + 8)} + GetU32(rest.data() + 12);
    if (len > rest.size() - kEntryFixedBytes) {
      return absl::InvalidArgumentError("frame entry overruns the frame");
    }
    rest.remove_prefix(kEntryFixedBytes + len);
  }
  if (!rest.empty()) {
    return absl::InvalidArgumentError("frame has bytes after its entries");
  }
  return v;
}

EntryView NextEntry(absl::string_view* entries) {
  const char* p = entries->data();
  EntryView e;
  e.published = absl::FromUnixMicros(static_cast<int64_t>(GetU64(p)));
  const uint32_t headers_len = GetU32(p + 8);
  const uint32_t body_len = GetU32(p + 12);
  e.headers = entries->substr(kEntryFixedBytes, headers_len);
  e.body = entries->substr(kEntryFixedBytes + headers_len, body_len);
  entries->remove_prefix(kEntryFixedBytes + headers_len + body_len);
  return e;
}

std::string EncodeHeaders(const Headers& headers) {
  std::string out;
  if (headers.empty()) return out;
  StringSink sink{&out};
  Packer pk(sink);
  pk.pack_map(static_cast<uint32_t>(headers.size()));
  for (const auto& [k, v] : headers) {
    PackString(pk, k);
    PackString(pk, v);
  }
  return out;
}

absl::StatusOr<Headers> DecodeHeaders(absl::string_view data) {
  Headers headers;
  if (data.empty()) return headers;
  FABRIC_ASSIGN_OR_RETURN(msgpack::object_handle h,
                          UnpackBounded(data, kMaxFrameHeaders, 2));
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_map* m,
                          AsMap(h.get(), "headers"));
  for (uint32_t i = 0; i < m->size; ++i) {
    FABRIC_ASSIGN_OR_RETURN(absl::string_view k,
                            AsBytes(m->ptr[i].key, "header key"));
    FABRIC_ASSIGN_OR_RETURN(absl::string_view v,
                            AsBytes(m->ptr[i].val, "header value"));
    headers.emplace(std::string(k), std::string(v));
  }
  return headers;
}

std::string EncodeReplayRequest(const ReplayRequest& r) {
  std::string out;
  StringSink sink{&out};
  Packer pk(sink);
  pk.pack_array(8);
  pk.pack(r.subscriber);
  pk.pack(r.request);
  pk.pack(r.stream);
  pk.pack(static_cast<uint8_t>(r.from));
  pk.pack(r.seq);
  pk.pack_int64(absl::ToUnixMicros(r.time));
  pk.pack(r.max_entries);
  pk.pack(r.max_bytes);
  return out;
}

absl::StatusOr<ReplayRequest> DecodeReplayRequest(absl::string_view body) {
  FABRIC_ASSIGN_OR_RETURN(msgpack::object_handle h, UnpackBounded(body, 16, 2));
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* f,
                          Fields(h.get(), 8, "replay request"));
  ReplayRequest r;
  FABRIC_ASSIGN_OR_RETURN(r.subscriber, AsU32(f->ptr[0], "subscriber"));
  FABRIC_ASSIGN_OR_RETURN(r.request, AsUint(f->ptr[1], "request"));
  FABRIC_ASSIGN_OR_RETURN(r.stream, AsUint(f->ptr[2], "stream"));
  FABRIC_ASSIGN_OR_RETURN(uint32_t from, AsU32(f->ptr[3], "from"));
  if (from > static_cast<uint32_t>(ReplayFrom::kEarliest)) {
    return absl::InvalidArgumentError("unknown replay start");
  }
  r.from = static_cast<ReplayFrom>(from);
  FABRIC_ASSIGN_OR_RETURN(r.seq, AsUint(f->ptr[4], "seq"));
  FABRIC_ASSIGN_OR_RETURN(r.time, AsMicros(f->ptr[5], "time"));
  FABRIC_ASSIGN_OR_RETURN(r.max_entries, AsU32(f->ptr[6], "max_entries"));
  FABRIC_ASSIGN_OR_RETURN(r.max_bytes, AsU32(f->ptr[7], "max_bytes"));
  return r;
}

std::string EncodeReplayData(const ReplayData& d) {
  std::string out;
  size_t reserve = 64;
  for (const std::string& e : d.entries) reserve += e.size() + 5;
  out.reserve(reserve);
  StringSink sink{&out};
  Packer pk(sink);
  pk.pack_array(9);
  pk.pack(d.subscriber);
  pk.pack(d.request);
  pk.pack(d.stream);
  pk.pack(static_cast<uint8_t>(d.status));
  pk.pack(d.start);
  pk.pack(d.first_seq);
  pk.pack(d.durable_seq);
  pk.pack(d.next);
  pk.pack_array(static_cast<uint32_t>(d.entries.size()));
  for (const std::string& e : d.entries) PackBin(pk, e);
  return out;
}

absl::StatusOr<ReplayData> DecodeReplayData(absl::string_view body) {
  FABRIC_ASSIGN_OR_RETURN(msgpack::object_handle h,
                          UnpackBounded(body, kMaxReplayEntries, 3));
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* f,
                          Fields(h.get(), 9, "replay data"));
  ReplayData d;
  FABRIC_ASSIGN_OR_RETURN(d.subscriber, AsU32(f->ptr[0], "subscriber"));
  FABRIC_ASSIGN_OR_RETURN(d.request, AsUint(f->ptr[1], "request"));
  FABRIC_ASSIGN_OR_RETURN(d.stream, AsUint(f->ptr[2], "stream"));
  FABRIC_ASSIGN_OR_RETURN(uint32_t status, AsU32(f->ptr[3], "status"));
  if (status > static_cast<uint32_t>(ReplayStatus::kError)) {
    return absl::InvalidArgumentError("unknown replay status");
  }
  d.status = static_cast<ReplayStatus>(status);
  FABRIC_ASSIGN_OR_RETURN(d.start, AsUint(f->ptr[4], "start"));
  FABRIC_ASSIGN_OR_RETURN(d.first_seq, AsUint(f->ptr[5], "first_seq"));
  FABRIC_ASSIGN_OR_RETURN(d.durable_seq, AsUint(f->ptr[6], "durable_seq"));
  FABRIC_ASSIGN_OR_RETURN(d.next, AsUint(f->ptr[7], "next"));
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* entries,
                          Fields(f->ptr[8], 0, "entries"));
  d.entries.reserve(entries->size);
  for (uint32_t i = 0; i < entries->size; ++i) {
    FABRIC_ASSIGN_OR_RETURN(absl::string_view e,
                            AsBytes(entries->ptr[i], "entry"));
    d.entries.emplace_back(e);
  }
  return d;
}

std::string StreamHex(uint64_t stream) {
  return absl::StrFormat("%016x", stream);
}

std::string StreamOfferName(uint64_t stream, absl::string_view topic) {
  return absl::StrCat(StreamHex(stream), " ", topic);
}

std::optional<StreamOffer> ParseStreamOffer(absl::string_view name) {
  if (name.size() < 18 || name[16] != ' ') return std::nullopt;
  StreamOffer offer;
  if (!absl::SimpleHexAtoi(name.substr(0, 16), &offer.stream) ||
      offer.stream == 0) {
    return std::nullopt;
  }
  offer.topic = std::string(name.substr(17));
  if (!ValidateTopic(offer.topic).ok()) return std::nullopt;
  return offer;
}

}  // namespace fabric::ps
