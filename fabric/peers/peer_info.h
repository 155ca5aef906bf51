// SPDX-License-Identifier: Apache-2.0
// What a node knows of one peer, and the events the application hears when
// peers come and go: joined -> (suspect -> back)* -> left.
#ifndef FABRIC_PEERS_PEER_INFO_H_
#define FABRIC_PEERS_PEER_INFO_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fabric/base/node_id.h"
#include "fabric/types.h"

namespace fabric {

enum class PeerState {
  kAlive,    // heard from within the suspect timeout, link up
  kSuspect,  // silent past the suspect timeout, or its connection dropped
  kDead,     // gone: silent past the dead timeout, goodbye, or replaced
};

// A snapshot of one peer. Thread safety: thread-compatible value type.
struct PeerInfo {
  NodeId id;
  std::string name;
  std::string mailbox_endpoint;
  std::string publish_endpoint;
  uint64_t state_version = 0;
  std::string discovery;  // the peer's discovery mode, from its HELLO
  // Secure mode: the CURVE public key (32 raw bytes) it authenticated
  // with; empty in plaintext mode. security::KeyFingerprint shows it.
  std::string public_key;
  // Secure beacon modes: the beacon key id of its last accepted beacon
  // (0: none yet, or plaintext).
  uint8_t beacon_key_id = 0;
  Headers headers;
  Offers offers;
  PeerState state = PeerState::kAlive;
  absl::Time joined_at;  // first HELLO of this incarnation
  absl::Time last_seen;  // last message of any kind from it
  // Mailbox messages of this incarnation received from it (HELLO
  // included) and sent to it by this node. Pub/sub frames do not pass the
  // mailbox and are not counted here.
  uint64_t messages_in = 0;
  uint64_t messages_out = 0;

  // Returns true when the peer offers `name` under `kind`.
  bool HasOffer(absl::string_view kind, absl::string_view name) const;
};

enum class PeerEventType {
  kJoined,   // first HELLO from a new incarnation
  kSuspect,  // alive -> suspect
  kBack,     // suspect -> alive
  kLeft,     // -> dead (the peer is forgotten after this event)
  kUpdated,  // its HELLO changed (headers or offers)
};

struct PeerEvent {
  PeerEventType type;
  PeerInfo peer;       // state after the event
  std::string reason;  // e.g. "goodbye", "connection lost", "silent 3.0s"
  absl::Time time;
};

absl::string_view PeerStateName(PeerState state);         // "alive", ...
absl::string_view PeerEventTypeName(PeerEventType type);  // "joined", ...

}  // namespace fabric

#endif  // FABRIC_PEERS_PEER_INFO_H_
