// SPDX-License-Identifier: Apache-2.0
// Limits a user of the public API can hit or set: message size, headers,
// offers and the plugin message-kind range. Peers enforce the same values on
// the wire (fabric/codec/wire_format.h, internal, includes this header).
#ifndef FABRIC_LIMITS_H_
#define FABRIC_LIMITS_H_

#include <cstddef>
#include <cstdint>

namespace fabric {

// Default cap on one mailbox message (envelope included), the default of
// NodeOptions::max_message_bytes. libzmq's own default is unlimited; every
// socket gets ZMQ_MAXMSGSIZE from the node options.
inline constexpr size_t kDefaultMaxMessageBytes = 16 * 1024 * 1024;

// Limits on the structure of a node's HELLO (STYLE.md section 5): headers,
// offer kinds, names per kind, and the length of each string.
inline constexpr size_t kMaxHeaders = 256;
inline constexpr size_t kMaxOfferKinds = 32;
inline constexpr size_t kMaxOffersPerKind = 4096;
inline constexpr size_t kMaxStringBytes = 64 * 1024;

// Message kinds below this belong to the core; plugins (fabric/plugin.h)
// register kinds at or above it.
inline constexpr uint16_t kFirstPatternKind = 100;

}  // namespace fabric

#endif  // FABRIC_LIMITS_H_
