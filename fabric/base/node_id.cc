// SPDX-License-Identifier: Apache-2.0
#include "fabric/base/node_id.h"

#include <sys/random.h>

#include <cstring>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace fabric {

NodeId NodeId::Random() {
  NodeId id;
  size_t filled = 0;
  while (filled < kSize) {
    ssize_t n = getrandom(id.bytes_.data() + filled, kSize - filled, 0);
    if (n <= 0) break;
    filled += static_cast<size_t>(n);
  }
  if (filled < kSize) {
    // getrandom(2) failing is near impossible on Linux >= 3.17; fall back to
    // random_device so we still never hand out an all-zero id.
    std::random_device rd;
    for (size_t i = filled; i < kSize; ++i) {
      id.bytes_[i] = static_cast<uint8_t>(rd());
    }
  }
  return id;
}

absl::StatusOr<NodeId> NodeId::FromBytes(absl::string_view bytes) {
  if (bytes.size() != kSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("node id must be 16 bytes, got ", bytes.size()));
  }
  NodeId id;
  std::memcpy(id.bytes_.data(), bytes.data(), kSize);
  return id;
}

absl::StatusOr<NodeId> NodeId::FromHex(absl::string_view hex) {
  if (hex.size() != 2 * kSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("node id must be 32 hex characters, got '", hex, "'"));
  }
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          absl::StrCat("node id '", hex, "' is not hex"));
    }
  }
  return FromBytes(absl::HexStringToBytes(hex));
}

std::string NodeId::ToHex() const { return absl::BytesToHexString(bytes()); }

bool NodeId::IsZero() const {
  for (uint8_t b : bytes_) {
    if (b != 0) return false;
  }
  return true;
}

}  // namespace fabric
