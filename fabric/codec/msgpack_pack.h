// SPDX-License-Identifier: Apache-2.0
// Small msgpack helpers the pattern codecs share (patterns/*/internal/
// wire.cc): packing into a std::string, strings, binaries and string maps,
// and the matching bounded reads. Header-only; decoding goes through
// msgpack_bounded.h, so every read returns kInvalidArgument, never throws.
#ifndef FABRIC_CODEC_MSGPACK_PACK_H_
#define FABRIC_CODEC_MSGPACK_PACK_H_

#include <cstdint>
#include <map>
#include <msgpack.hpp>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "fabric/base/status_macros.h"
#include "fabric/codec/msgpack_bounded.h"

namespace fabric::msgpack_pack {

// msgpack-c writes through any type with write(const char*, size_t).
struct StringSink {
  std::string* out;
  void write(const char* data, size_t size) { out->append(data, size); }
};
using Packer = msgpack::packer<StringSink>;

inline void PackStr(Packer& pk, absl::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}
inline void PackBin(Packer& pk, absl::string_view s) {
  pk.pack_bin(static_cast<uint32_t>(s.size()));
  pk.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
}
inline void PackStringMap(Packer& pk,
                          const std::map<std::string, std::string>& m) {
  pk.pack_map(static_cast<uint32_t>(m.size()));
  for (const auto& [k, v] : m) {
    PackStr(pk, k);
    PackStr(pk, v);
  }
}

// Returns kInvalidArgument naming `what` unless `o` is an unsigned integer
// that fits 32 bits.
inline absl::StatusOr<uint32_t> AsU32(const msgpack::object& o,
                                      absl::string_view what) {
  FABRIC_ASSIGN_OR_RETURN(uint64_t v, msgpack_bounded::AsUint(o, what));
  if (v > UINT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(what, " out of range"));
  }
  return static_cast<uint32_t>(v);
}

// Returns kInvalidArgument naming `what` unless `o` is an array of at
// least `min` elements (later fields may be added to a message).
inline absl::StatusOr<const msgpack::object_array*> AsFields(
    const msgpack::object& o, size_t min, absl::string_view what) {
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* a,
                          msgpack_bounded::AsArray(o, what));
  if (a->size < min) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has ", a->size, " fields, want ", min));
  }
  return a;
}

// Reads a map of strings (or nil, as empty) of at most `max_entries`.
inline absl::StatusOr<std::map<std::string, std::string>> DecodeStringMap(
    const msgpack::object& o, absl::string_view what, size_t max_entries) {
  std::map<std::string, std::string> out;
  if (o.type == msgpack::type::NIL) return out;
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_map* m,
                          msgpack_bounded::AsMap(o, what));
  if (m->size > max_entries) {
    return absl::InvalidArgumentError(absl::StrCat("too many ", what));
  }
  for (uint32_t i = 0; i < m->size; ++i) {
    FABRIC_ASSIGN_OR_RETURN(absl::string_view k,
                            msgpack_bounded::AsBytes(m->ptr[i].key, what));
    FABRIC_ASSIGN_OR_RETURN(absl::string_view v,
                            msgpack_bounded::AsBytes(m->ptr[i].val, what));
    out.emplace(std::string(k), std::string(v));
  }
  return out;
}

}  // namespace fabric::msgpack_pack

#endif  // FABRIC_CODEC_MSGPACK_PACK_H_
