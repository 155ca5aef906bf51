// SPDX-License-Identifier: Apache-2.0
// `NodeId`: the 16-byte random identity of one node incarnation. A restarted
// process gets a new id, so peers see a new incarnation, never a ghost.
#ifndef FABRIC_BASE_NODE_ID_H_
#define FABRIC_BASE_NODE_ID_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fabric {

// A value type. Thread safety: thread-compatible.
class NodeId {
 public:
  static constexpr size_t kSize = 16;

  NodeId() { bytes_.fill(0); }
  // Returns a fresh id from the system's random source.
  static NodeId Random();
  // Parses exactly 16 raw bytes. Returns kInvalidArgument otherwise.
  static absl::StatusOr<NodeId> FromBytes(absl::string_view bytes);
  // Parses the 32-character lower- or upper-case hex form.
  static absl::StatusOr<NodeId> FromHex(absl::string_view hex);

  absl::string_view bytes() const {
    return absl::string_view(reinterpret_cast<const char*>(bytes_.data()),
                             bytes_.size());
  }
  // Returns the 32-character lower-case hex form.
  std::string ToHex() const;
  // Returns the first 8 hex characters, for logs and tables.
  std::string ShortHex() const { return ToHex().substr(0, 8); }
  bool IsZero() const;

  friend bool operator==(const NodeId& a, const NodeId& b) {
    return a.bytes_ == b.bytes_;
  }
  friend bool operator!=(const NodeId& a, const NodeId& b) { return !(a == b); }
  friend bool operator<(const NodeId& a, const NodeId& b) {
    return a.bytes_ < b.bytes_;
  }
  template <typename H>
  friend H AbslHashValue(H h, const NodeId& id) {
    return H::combine(std::move(h), id.bytes());
  }

 private:
  std::array<uint8_t, kSize> bytes_;
};

}  // namespace fabric

#endif  // FABRIC_BASE_NODE_ID_H_
