// SPDX-License-Identifier: Apache-2.0
// Constants of the mailbox wire format. docs/protocol.md is the grammar with
// worked examples; change both together.
#ifndef FABRIC_CODEC_WIRE_FORMAT_H_
#define FABRIC_CODEC_WIRE_FORMAT_H_

#include <cstddef>
#include <cstdint>

namespace fabric {

// Version carried in every envelope. A peer speaking another version is
// dropped and counted (kUnimplemented).
inline constexpr uint32_t kEnvelopeVersion = 1;

// Message kinds. Kinds below `kFirstPatternKind` belong to the core; patterns
// register kinds at or above it (see fabric/plugin.h).
enum class MessageKind : uint16_t {
  kHello = 1,         // body: Hello map (fabric/codec/control.h)
  kHelloRequest = 2,  // body: empty; "send me your HELLO"
  kPing = 3,          // body: [state_version]
  kGoodbye = 4,       // body: empty; the sender is shutting down
  kGossip = 5,        // body: [[id, mailbox endpoint], ...]
};
inline constexpr uint16_t kFirstPatternKind = 100;

// Default cap on one mailbox message (envelope included). libzmq's own default
// is unlimited; every socket gets ZMQ_MAXMSGSIZE from the node options.
inline constexpr size_t kDefaultMaxMessageBytes = 16 * 1024 * 1024;

// Limits on msgpack structure in control messages (STYLE.md section 5).
inline constexpr size_t kMaxHeaders = 256;
inline constexpr size_t kMaxOfferKinds = 32;
inline constexpr size_t kMaxOffersPerKind = 4096;
inline constexpr size_t kMaxGossipEntries = 8192;
inline constexpr size_t kMaxStringBytes = 64 * 1024;

}  // namespace fabric

#endif  // FABRIC_CODEC_WIRE_FORMAT_H_
