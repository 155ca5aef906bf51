// SPDX-License-Identifier: Apache-2.0
// Big-endian integer access at fixed offsets of a datagram, shared by the
// beacon codecs (beacon.cc, beacon_auth.cc; docs/protocol.md, "Beacon").
// Private to the discovery module.
#ifndef FABRIC_DISCOVERY_INTERNAL_BIG_ENDIAN_H_
#define FABRIC_DISCOVERY_INTERNAL_BIG_ENDIAN_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace fabric::discovery_internal {

// Writes `value` big-endian at `out[offset]`.
// REQUIRES: `offset + sizeof(T) <= out.size()`.
template <typename T>
void PutBigEndian(std::string& out, size_t offset, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) {
    out[offset + i] =
        static_cast<char>((value >> (8 * (sizeof(T) - 1 - i))) & 0xff);
  }
}

// Returns the big-endian `T` at `in[offset]`.
// REQUIRES: `offset + sizeof(T) <= in.size()`.
template <typename T>
T GetBigEndian(absl::string_view in, size_t offset) {
  T value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    value = static_cast<T>((value << 8) | static_cast<uint8_t>(in[offset + i]));
  }
  return value;
}

}  // namespace fabric::discovery_internal

#endif  // FABRIC_DISCOVERY_INTERNAL_BIG_ENDIAN_H_
