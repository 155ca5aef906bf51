// SPDX-License-Identifier: Apache-2.0
// Bounded msgpack decoding for untrusted input: explicit unpack limits and
// every msgpack exception turned into a Status. Internal to fabric/codec.
#ifndef FABRIC_CODEC_INTERNAL_MSGPACK_UTIL_H_
#define FABRIC_CODEC_INTERNAL_MSGPACK_UTIL_H_

#include <cstdint>
#include <msgpack.hpp>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fabric::codec_internal {

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

}  // namespace fabric::codec_internal

#endif  // FABRIC_CODEC_INTERNAL_MSGPACK_UTIL_H_
