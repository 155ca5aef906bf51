// SPDX-License-Identifier: Apache-2.0
// Encoding and decoding of discovery beacons (beacon_format.h).
#ifndef FABRIC_DISCOVERY_BEACON_H_
#define FABRIC_DISCOVERY_BEACON_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fabric/base/node_id.h"

namespace fabric::discovery {

// A decoded beacon. Thread safety: thread-compatible value type.
struct Beacon {
  uint8_t flags = 0;
  uint64_t cluster_hash = 0;
  NodeId id;
  uint16_t mailbox_port = 0;
  uint16_t publish_port = 0;
  uint32_t state_version = 0;

  bool leaving() const;
};

// Returns the 64-bit FNV-1a hash of a cluster name, as carried in beacons.
uint64_t ClusterHash(absl::string_view cluster);

// Returns the 38 wire bytes of `beacon`.
std::string EncodeBeacon(const Beacon& beacon);

// Decodes one datagram. Returns kInvalidArgument for anything that is not a
// well-formed fabric beacon (wrong magic, wrong size, zero port or id) and
// kUnimplemented for a fabric beacon of another protocol version.
absl::StatusOr<Beacon> DecodeBeacon(absl::string_view datagram);

}  // namespace fabric::discovery

#endif  // FABRIC_DISCOVERY_BEACON_H_
