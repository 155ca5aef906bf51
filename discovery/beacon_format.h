// SPDX-License-Identifier: Apache-2.0
// Layout of the UDP discovery beacons, big-endian: version 1, a fixed
// 38-byte datagram (docs/protocol.md, "Beacon"), and version 2, the signed
// 124-byte beacon of secure mode ("Beacon v2 (secure mode)"). A beacon only
// says "I exist, here is my mailbox, my state is version N"; the full
// description travels in HELLO.
#ifndef FABRIC_DISCOVERY_BEACON_FORMAT_H_
#define FABRIC_DISCOVERY_BEACON_FORMAT_H_

#include <cstddef>
#include <cstdint>

namespace fabric::discovery {

inline constexpr char kBeaconMagic[4] = {'F', 'B', 'R', 'C'};
inline constexpr uint8_t kBeaconVersion = 1;
inline constexpr uint8_t kBeaconVersionSigned = 2;

// Offsets of each field of version 1. Magic, version and flags sit at the
// same offsets in every version.
inline constexpr size_t kMagicOffset = 0;          // 4 bytes "FBRC"
inline constexpr size_t kVersionOffset = 4;        // u8
inline constexpr size_t kFlagsOffset = 5;          // u8, kFlag* bits
inline constexpr size_t kClusterHashOffset = 6;    // u64 FNV-1a of the name
inline constexpr size_t kNodeIdOffset = 14;        // 16 bytes
inline constexpr size_t kMailboxPortOffset = 30;   // u16
inline constexpr size_t kPublishPortOffset = 32;   // u16, 0 = none
inline constexpr size_t kStateVersionOffset = 34;  // u32, low bits
inline constexpr size_t kBeaconSize = 38;

// Offsets of each field of version 2 (beacon_auth.h). The tag is
// crypto_auth (HMAC-SHA-512-256) over bytes [0, kSignedTagOffset) with the
// key of the beacon key id.
inline constexpr size_t kSignedKeyIdOffset = 6;          // u8, 1..255
inline constexpr size_t kSignedReservedOffset = 7;       // u8, sent as 0
inline constexpr size_t kSignedClusterHashOffset = 8;    // u64 FNV-1a
inline constexpr size_t kSignedNodeIdOffset = 16;        // 16 bytes
inline constexpr size_t kSignedIpv4Offset = 32;          // 4 bytes, network
inline constexpr size_t kSignedMailboxPortOffset = 36;   // u16
inline constexpr size_t kSignedPublishPortOffset = 38;   // u16, reserved, 0
inline constexpr size_t kSignedStateVersionOffset = 40;  // u32, low bits
inline constexpr size_t kSignedSeqOffset = 44;           // u64, from 1
inline constexpr size_t kSignedSentTimeOffset = 52;      // i64, unix ms
inline constexpr size_t kSignedPublicKeyOffset = 60;     // 32 raw bytes
inline constexpr size_t kSignedTagOffset = 92;           // 32 bytes
inline constexpr size_t kSignedBeaconSize = 124;
inline constexpr size_t kSignedPublicKeySize = 32;  // a raw CURVE key
inline constexpr size_t kSignedTagSize = 32;
// The beacon secrets and the keys derived from them (docs/protocol.md).
inline constexpr size_t kBeaconSecretSize = 32;
inline constexpr size_t kBeaconKeySize = 32;
// Hashed before the cluster name to derive K[id] (no terminator).
inline constexpr char kBeaconKeyContext[] = "fabric beacon v2";

// The sender is shutting down: forget it now.
inline constexpr uint8_t kFlagLeaving = 0x01;

// Default UDP port for beacons (override per cluster to keep clusters apart
// at the socket level, not only by cluster hash).
inline constexpr uint16_t kDefaultBeaconPort = 47470;

}  // namespace fabric::discovery

#endif  // FABRIC_DISCOVERY_BEACON_FORMAT_H_
