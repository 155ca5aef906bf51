// SPDX-License-Identifier: Apache-2.0
// Bodies of the core control messages carried in envelopes: HELLO, PING and
// GOSSIP (docs/protocol.md). HELLO_REQUEST and GOODBYE have empty bodies.
#ifndef FABRIC_CODEC_CONTROL_H_
#define FABRIC_CODEC_CONTROL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fabric/base/node_id.h"
#include "fabric/types.h"  // Offers, Headers

namespace fabric {

// The full description of a node. Sent first on every connection and again
// whenever `state_version` changes. Thread safety: thread-compatible.
struct Hello {
  NodeId id;
  std::string name;
  std::string cluster;
  std::string mailbox_endpoint;  // "tcp://127.0.0.1:40123"
  std::string publish_endpoint;  // empty when the node does not publish
  uint64_t state_version = 0;    // grows whenever headers or offers change
  // "loopback", "lan" or "seeds": peers in the same beacon mode hear each
  // other's beacons, which then serve as heartbeats (no PINGs needed).
  std::string discovery;
  Headers headers;
  Offers offers;
};

// One peer known to the sender, as carried in GOSSIP.
struct GossipEntry {
  NodeId id;
  std::string mailbox_endpoint;
  // Secure mode: the node's CURVE public key (32 raw bytes), sent as a
  // third element; empty in plaintext mode (two elements, as before).
  std::string public_key;
};

std::string EncodeHello(const Hello& hello);
// Returns kInvalidArgument for malformed or over-limit input. Unknown map keys
// are ignored, so later versions may add fields.
absl::StatusOr<Hello> DecodeHello(absl::string_view body);

std::string EncodePing(uint64_t state_version);
absl::StatusOr<uint64_t> DecodePing(absl::string_view body);

std::string EncodeGossip(const std::vector<GossipEntry>& entries);
absl::StatusOr<std::vector<GossipEntry>> DecodeGossip(absl::string_view body);

}  // namespace fabric

#endif  // FABRIC_CODEC_CONTROL_H_
