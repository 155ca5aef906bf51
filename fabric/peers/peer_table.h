// SPDX-License-Identifier: Apache-2.0
// The liveness state machine over all known peers. Pure logic with no
// sockets: the engine feeds it what it hears (HELLOs, any traffic, link
// drops, goodbyes) and the current time, and acts on the events it returns.
#ifndef FABRIC_PEERS_PEER_TABLE_H_
#define FABRIC_PEERS_PEER_TABLE_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fabric/base/node_id.h"
#include "fabric/codec/control.h"
#include "fabric/peers/peer_info.h"

namespace fabric {

struct LivenessOptions {
  // Silence after which an alive peer becomes suspect.
  absl::Duration suspect_timeout = absl::Seconds(2);
  // Silence after which a peer is dead. Must exceed `suspect_timeout`.
  absl::Duration dead_timeout = absl::Seconds(3);
  // How long a peer whose connection dropped may take to reconnect before it
  // is dead. On one host a killed process refuses reconnects at once.
  absl::Duration disconnect_grace = absl::Milliseconds(300);
  // How long a dead peer's id is remembered so gossip cannot revive it.
  absl::Duration tombstone_ttl = absl::Seconds(30);
};

// Thread safety: thread-compatible (the engine uses it on its loop thread).
class PeerTable {
 public:
  explicit PeerTable(LivenessOptions options) : options_(options) {}

  // A HELLO arrived. Returns kJoined for a new peer (and kLeft for an older
  // incarnation on the same mailbox endpoint), kUpdated when its state
  // version changed, kBack when it was suspect.
  // `public_key`: secure mode, the CURVE key the HELLO came under (kept by
  // the incarnation's first HELLO; the engine drops any other).
  std::vector<PeerEvent> OnHello(const Hello& hello, absl::Time now,
                                 absl::string_view public_key = {});
  // Any message from a known peer. Returns kBack when it was suspect.
  std::vector<PeerEvent> OnTraffic(const NodeId& id, absl::Time now);
  // A beacon from a known peer: it counts as a heartbeat (refreshes
  // `last_seen`, suspect -> back) but does not clear a dropped link.
  std::vector<PeerEvent> OnBeacon(const NodeId& id, absl::Time now);
  // Secure mode: the beacon key id the peer's last accepted beacon used
  // (shown by `fabric peers --json` to follow a rotation). No event.
  void NoteBeaconKeyId(const NodeId& id, uint8_t key_id);
  // Our link to the peer dropped. Returns kSuspect when it was alive. The peer
  // is dead after `disconnect_grace` unless traffic arrives.
  std::vector<PeerEvent> OnDisconnected(const NodeId& id, absl::Time now);
  // Our link to the peer is up again.
  void OnConnected(const NodeId& id);
  // We sent the peer `count` mailbox messages (counted in `messages_out`).
  void OnSent(const NodeId& id, uint64_t count);
  // Forgets `id` now (goodbye, protocol violation). Returns kLeft.
  std::vector<PeerEvent> Remove(const NodeId& id, absl::string_view reason,
                                absl::Time now);
  // Applies timeouts. Returns kSuspect and kLeft events.
  std::vector<PeerEvent> Tick(absl::Time now);
  // The earliest time at which `Tick` could change a peer's state, given
  // what was heard so far (InfiniteFuture with no peers). Hearing from a
  // peer only moves it later, so a caller may wake at an older answer.
  absl::Time NextDeadline() const;
  // Treats every peer as heard from at `now`. Used after this process itself
  // stalled (SIGSTOP, swap), so our own pause is not blamed on the peers.
  void ForgiveSilence(absl::Time now);

  // True while `id` died less than `tombstone_ttl` ago.
  bool IsTombstoned(const NodeId& id, absl::Time now) const;

  const PeerInfo* Find(const NodeId& id) const;
  std::vector<PeerInfo> Snapshot() const;
  size_t size() const { return peers_.size(); }

 private:
  struct Record {
    PeerInfo info;
    bool link_down = false;
    absl::Time link_down_at;
  };

  PeerEvent MakeEvent(PeerEventType type, const Record& record,
                      std::string reason, absl::Time now) const;
  PeerEvent Kill(const NodeId& id, std::string reason, absl::Time now);

  const LivenessOptions options_;
  absl::flat_hash_map<NodeId, Record> peers_;
  absl::flat_hash_map<NodeId, absl::Time> tombstones_;  // id -> expiry
};

}  // namespace fabric

#endif  // FABRIC_PEERS_PEER_TABLE_H_
