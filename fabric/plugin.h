// SPDX-License-Identifier: Apache-2.0
// How patterns plug into a node. The core knows no pattern: a pattern is a
// `Plugin` that owns some message kinds, hears peer events, and acts through
// a `NodeContext` (send to a peer, advertise an offer). Every hook runs on
// the node's engine thread and must not block; user handlers belong on a
// pattern's own threads, reached through `Node::Post`.
#ifndef FABRIC_PLUGIN_H_
#define FABRIC_PLUGIN_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fabric/base/node_id.h"
#include "fabric/limits.h"
#include "fabric/peers/peer_info.h"

namespace fabric {

// The node as seen from its engine thread.
// Thread safety: loop-thread only. Valid during the hook that received it.
class NodeContext {
 public:
  virtual ~NodeContext() = default;

  virtual const NodeId& self_id() const = 0;
  virtual absl::Time Now() const = 0;

  // Sends a message of `kind` to a live peer, without blocking. Returns
  // kInvalidArgument for a core kind (< kFirstPatternKind), kNotFound for
  // an unknown peer, kUnavailable when its link is not
  // connected and kResourceExhausted when the link's queue is full.
  virtual absl::Status Send(const NodeId& peer, uint16_t kind,
                            absl::string_view body) = 0;

  // Adds or removes `name` under offer `kind` (e.g. "queue", "images"). Peers
  // see the change at once in a new HELLO (kUpdated event). Returns
  // kInvalidArgument for an empty or over-long string and kResourceExhausted
  // when the HELLO would exceed the limits peers enforce (fabric/limits.h).
  virtual absl::Status SetOffer(absl::string_view kind, absl::string_view name,
                                bool offered) = 0;

  // Returns the peer or nullptr. The pointer is valid until the hook returns.
  virtual const PeerInfo* FindPeer(const NodeId& id) const = 0;
  // Returns every known (alive or suspect) peer.
  virtual std::vector<PeerInfo> Peers() const = 0;

  // Asks for `OnTick` no later than `at` (as read by `Now`), besides the
  // regular ticks: for a plugin whose next deadline is sooner than the
  // next 50 ms tick. Requests merge (the earliest wins) and are forgotten
  // once a tick ran; a time already past means the next loop iteration.
  virtual void WakeAt(absl::Time at) = 0;
};

// Thread safety: every hook runs on the engine thread, serially.
class Plugin {
 public:
  virtual ~Plugin() = default;

  // Message kinds routed to `OnMessage`, each >= kFirstPatternKind and owned
  // by one plugin per node.
  virtual std::vector<uint16_t> kinds() const = 0;

  // Called once when attached; may set offers.
  virtual void OnAttach(NodeContext& node) { (void)node; }
  // Called for every peer event, before the application hears it.
  virtual void OnPeerEvent(NodeContext& node, const PeerEvent& event) {
    (void)node;
    (void)event;
  }
  // Called for each message of an owned kind from a known peer. `body` is
  // untrusted and valid only during the call.
  virtual void OnMessage(NodeContext& node, const PeerInfo& from, uint16_t kind,
                         absl::string_view body) = 0;
  // Called after the engine handled what waited in its mailbox (at most
  // 1024 messages per wake-up), if any of it reached `OnMessage` of any
  // plugin: the place to send at once what several messages asked for.
  virtual void OnMailboxDrained(NodeContext& node) { (void)node; }
  // Called every 50 ms, and when a wake-up asked with `WakeAt` is due.
  virtual void OnTick(NodeContext& node, absl::Time now) {
    (void)node;
    (void)now;
  }
  // Called once when the node stops, before goodbyes are sent.
  virtual void OnDetach(NodeContext& node) { (void)node; }
};

}  // namespace fabric

#endif  // FABRIC_PLUGIN_H_
