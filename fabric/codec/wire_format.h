// SPDX-License-Identifier: Apache-2.0
// Constants of the mailbox wire format. docs/protocol.md is the grammar with
// worked examples; change both together.
#ifndef FABRIC_CODEC_WIRE_FORMAT_H_
#define FABRIC_CODEC_WIRE_FORMAT_H_

#include <cstddef>
#include <cstdint>

#include "fabric/limits.h"

namespace fabric {

// Version carried in every envelope. A peer speaking another version is
// dropped and counted (kUnimplemented).
inline constexpr uint32_t kEnvelopeVersion = 1;

// Message kinds. Kinds below `kFirstPatternKind` belong to the core; patterns
// register kinds at or above it (fabric/limits.h, fabric/plugin.h).
enum class MessageKind : uint16_t {
  kHello = 1,         // body: Hello map (fabric/codec/control.h)
  kHelloRequest = 2,  // body: empty; "send me your HELLO"
  kPing = 3,          // body: [state_version]
  kGoodbye = 4,       // body: empty; the sender is shutting down
  kGossip = 5,        // body: [[id, mailbox endpoint], ...]
};
// kFirstPatternKind, kDefaultMaxMessageBytes and the HELLO limits are
// public: fabric/limits.h.

// Limit on msgpack structure in GOSSIP (STYLE.md section 5).
inline constexpr size_t kMaxGossipEntries = 8192;

}  // namespace fabric

#endif  // FABRIC_CODEC_WIRE_FORMAT_H_
