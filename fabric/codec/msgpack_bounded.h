// SPDX-License-Identifier: Apache-2.0
// Bounded msgpack decoding for untrusted input: explicit unpack limits and
// every msgpack exception turned into a Status. Shared by the core codecs
// and the pattern codecs (patterns/*/internal/wire.cc).
#ifndef FABRIC_CODEC_MSGPACK_BOUNDED_H_
#define FABRIC_CODEC_MSGPACK_BOUNDED_H_

#include <cstdint>
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

}  // namespace fabric::msgpack_bounded

#endif  // FABRIC_CODEC_MSGPACK_BOUNDED_H_
