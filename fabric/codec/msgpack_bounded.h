// SPDX-License-Identifier: Apache-2.0
// Bounded msgpack decoding for untrusted input: explicit unpack limits and
// every msgpack exception turned into a Status. Shared by the core codecs
// and the pattern codecs (patterns/*/internal/wire.cc).
#ifndef FABRIC_CODEC_MSGPACK_BOUNDED_H_
#define FABRIC_CODEC_MSGPACK_BOUNDED_H_

#include <cstdint>
#include <map>
#include <msgpack.hpp>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fabric::msgpack_bounded {

// Unpacks exactly one msgpack object from `data`, with container sizes capped
// at `max_elements` and nesting at `max_depth`. Strings and binaries reference
// `data` (no copy), so `data` must outlive the handle. Returns
// kInvalidArgument when the bytes are not one complete object.
absl::StatusOr<msgpack::object_handle> UnpackBounded(absl::string_view data,
                                                     size_t max_elements,
                                                     size_t max_depth);

// Typed accessors returning kInvalidArgument naming `what` on a type mismatch.
absl::StatusOr<uint64_t> AsUint(const msgpack::object& o,
                                absl::string_view what);
absl::StatusOr<absl::string_view> AsBytes(const msgpack::object& o,
                                          absl::string_view what);
absl::StatusOr<const msgpack::object_array*> AsArray(const msgpack::object& o,
                                                     absl::string_view what);
absl::StatusOr<const msgpack::object_map*> AsMap(const msgpack::object& o,
                                                 absl::string_view what);
// AsUint, and kInvalidArgument above UINT32_MAX.
absl::StatusOr<uint32_t> AsU32(const msgpack::object& o,
                               absl::string_view what);
// An array of at least `min` elements.
absl::StatusOr<const msgpack::object_array*> Fields(const msgpack::object& o,
                                                    size_t min,
                                                    absl::string_view what);

// Encoding: msgpack-c writes through any type with write(const char*, size_t).
struct StringSink {
  std::string* out;
  void write(const char* data, size_t size) { out->append(data, size); }
};
using Packer = msgpack::packer<StringSink>;

inline void PackString(Packer& pk, absl::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}
inline void PackBin(Packer& pk, absl::string_view s) {
  pk.pack_bin(static_cast<uint32_t>(s.size()));
  pk.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
}

// A map of strings (headers), packed in key order.
inline void PackStringMap(Packer& pk,
                          const std::map<std::string, std::string>& m) {
  pk.pack_map(static_cast<uint32_t>(m.size()));
  for (const auto& [k, v] : m) {
    PackString(pk, k);
    PackString(pk, v);
  }
}
// A map of strings, or nil as an empty map; kInvalidArgument beyond
// `max_entries` entries or for anything else.
absl::StatusOr<std::map<std::string, std::string>> AsStringMap(
    const msgpack::object& o, absl::string_view what, size_t max_entries);

}  // namespace fabric::msgpack_bounded

#endif  // FABRIC_CODEC_MSGPACK_BOUNDED_H_
