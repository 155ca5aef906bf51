// SPDX-License-Identifier: Apache-2.0
// Layout of the UDP discovery beacon: a fixed 38-byte datagram, big-endian
// (docs/protocol.md, "Beacon"). A beacon only says "I exist, here is my
// mailbox, my state is version N"; the full description travels in HELLO.
#ifndef FABRIC_DISCOVERY_BEACON_FORMAT_H_
#define FABRIC_DISCOVERY_BEACON_FORMAT_H_

#include <cstddef>
#include <cstdint>

namespace fabric::discovery {

inline constexpr char kBeaconMagic[4] = {'F', 'B', 'R', 'C'};
inline constexpr uint8_t kBeaconVersion = 1;

// Offsets of each field.
inline constexpr size_t kMagicOffset = 0;          // 4 bytes "FBRC"
inline constexpr size_t kVersionOffset = 4;        // u8
inline constexpr size_t kFlagsOffset = 5;          // u8, kFlag* bits
inline constexpr size_t kClusterHashOffset = 6;    // u64 FNV-1a of the name
inline constexpr size_t kNodeIdOffset = 14;        // 16 bytes
inline constexpr size_t kMailboxPortOffset = 30;   // u16
inline constexpr size_t kPublishPortOffset = 32;   // u16, 0 = none
inline constexpr size_t kStateVersionOffset = 34;  // u32, low bits
inline constexpr size_t kBeaconSize = 38;

// The sender is shutting down: forget it now.
inline constexpr uint8_t kFlagLeaving = 0x01;

// Default UDP port for beacons (override per cluster to keep clusters apart
// at the socket level, not only by cluster hash).
inline constexpr uint16_t kDefaultBeaconPort = 47470;

}  // namespace fabric::discovery

#endif  // FABRIC_DISCOVERY_BEACON_FORMAT_H_
