// SPDX-License-Identifier: Apache-2.0
// `fabric::Node`: one identity in a cluster. It binds a mailbox, finds peers
// (beacons or seeds), keeps them alive with heartbeats and reports peer
// events. Patterns attach to it as plugins.
//
//   fabric::NodeOptions options;
//   options.name = "worker-1";
//   options.on_peer_event = [](const fabric::PeerEvent& e) { ... };
//   absl::StatusOr<std::unique_ptr<fabric::Node>> node =
//       fabric::Node::Start(std::move(options));
//   if (!node.ok()) return node.status();
//   ...
//   (*node)->Close();  // or just destroy it
#ifndef FABRIC_NODE_H_
#define FABRIC_NODE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fabric/base/node_id.h"
#include "fabric/limits.h"
#include "fabric/node_options.h"
#include "fabric/peers/peer_info.h"
#include "fabric/plugin.h"
#include "fabric/types.h"

namespace fabric {

namespace node_internal {
class Engine;
}
namespace security {
struct NodeSecurity;
}

// Counters of one node. Every bad input is counted, never fatal.
struct NodeStats {
  uint64_t beacons_sent = 0;
  uint64_t beacon_bytes_sent = 0;
  uint64_t beacons_received = 0;
  uint64_t beacons_malformed = 0;      // not a fabric beacon at all
  uint64_t beacons_wrong_version = 0;  // fabric beacon, other version
  uint64_t beacons_other_cluster = 0;
  uint64_t messages_received = 0;
  uint64_t messages_sent = 0;
  uint64_t messages_malformed = 0;  // bad envelope or body
  uint64_t messages_wrong_version = 0;
  uint64_t messages_other_cluster = 0;
  uint64_t messages_unknown_sender = 0;
  uint64_t messages_unknown_kind = 0;
  uint64_t heartbeats_sent = 0;
  uint64_t peers_joined = 0;
  uint64_t peers_left = 0;
  uint64_t local_stalls = 0;  // our own loop paused (SIGSTOP, swap)
  // Times the engine's loop woke up. It sleeps until a socket is ready or
  // a timer is due, so an idle node wakes a few times a second
  // (docs/architecture.md, "The engine loop").
  uint64_t loop_wakeups = 0;

  // Secure mode (docs/security.md); all zero in plaintext mode.
  uint64_t beacons_unauthenticated = 0;     // a v1 beacon: dropped
  uint64_t beacons_unknown_key_id = 0;      // signed with a secret we lack
  uint64_t beacons_bad_mac = 0;             // forged or corrupted
  uint64_t beacons_addr_mismatch = 0;       // source IP is not the signed one
  uint64_t beacons_stale = 0;               // send time beyond the skew
  uint64_t beacons_replayed = 0;            // sequence not above the last
  uint64_t beacons_unknown_node_key = 0;    // signed, but key not in roster
  uint64_t messages_unauthenticated = 0;    // no usable User-Id
  uint64_t messages_key_mismatch = 0;       // spoke as another key's node
  uint64_t messages_revoked_key = 0;        // key no longer in the roster
  uint64_t gossip_unkeyed = 0;              // gossip entry without a roster key
  uint64_t handshakes_failed_auth = 0;      // a peer's ZAP refused our key
  uint64_t handshakes_failed_protocol = 0;  // mechanism mismatch, bad key
  uint64_t handshakes_failed_other = 0;
  uint64_t roster_reloads = 0;
  uint64_t roster_reload_errors = 0;  // a bad edit: the old roster stays
  uint64_t keys_revoked = 0;          // peers cut off by a roster change
  uint64_t zap_allowed = 0;           // handshakes our ZAP handler admitted
  uint64_t zap_denied = 0;            // ... and refused
  bool zap_running = false;           // the mailbox's ZAP handler is up
};

// Thread safety: thread-safe. Every method may be called from any thread;
// commands are posted to the node's engine thread. Not copyable or movable:
// hold it by `std::unique_ptr`.
class Node {
 public:
  // Validates `options`, binds the mailbox and beacon sockets and starts the
  // engine thread. Returns kInvalidArgument for bad options, kNotFound /
  // kFailedPrecondition for an unusable interface, kAlreadyExists when a
  // fixed mailbox port is taken.
  static absl::StatusOr<std::unique_ptr<Node>> Start(NodeOptions options);

  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  // Closes and joins; bounded by `linger` plus one loop iteration.
  ~Node();

  // Starts shutdown: goodbyes to peers, a leaving beacon, then the engine
  // exits. Non-blocking and idempotent. Later calls return kCancelled.
  void Close() noexcept;
  // Blocks until the engine thread has exited. Call after `Close`.
  // REQUIRES: not called from the engine or event thread.
  void Join();

  const NodeId& id() const;
  const std::string& name() const;
  const std::string& cluster() const;
  // This node's mailbox, e.g. "tcp://127.0.0.1:40123".
  const std::string& mailbox_endpoint() const;

  // Returns a snapshot of the known peers (alive and suspect), sorted by
  // name. Returns kCancelled once closed.
  absl::StatusOr<std::vector<PeerInfo>> Peers() const;

  // Adds or removes an offer (see NodeContext::SetOffer for the codes).
  // Blocks until the engine applied it.
  absl::Status SetOffer(absl::string_view kind, absl::string_view name,
                        bool offered);
  // Sets (or with an empty value, removes) a HELLO header. Returns
  // kInvalidArgument for an empty or over-long key or value and
  // kResourceExhausted beyond kMaxHeaders. Blocks until applied.
  absl::Status SetHeader(absl::string_view key, absl::string_view value);

  // Attaches a plugin. Returns kInvalidArgument for a kind below
  // kFirstPatternKind and kAlreadyExists for a kind another plugin owns.
  absl::Status AttachPlugin(std::shared_ptr<Plugin> plugin);
  // Returns the plugin that owns `kind`; when there is none, attaches the one
  // `make` returns (on the engine thread, so two callers cannot both attach).
  // Lets several pattern objects share one per-node plugin.
  absl::StatusOr<std::shared_ptr<Plugin>> FindOrAttachPlugin(
      uint16_t kind, std::function<std::shared_ptr<Plugin>()> make);

  // Runs `fn` on the engine thread. Returns kCancelled once closed.
  absl::Status Post(std::function<void(NodeContext&)> fn);
  // Runs `fn` on the engine thread (directly when already there), waits for
  // it and returns its status; kCancelled once closed, kDeadlineExceeded if
  // the engine did not get to it within 10 s.
  absl::Status Call(std::function<absl::Status(NodeContext&)> fn);

  // Sends a message of a pattern kind to a peer from the calling thread,
  // with no hop through the engine thread: for patterns that answer from
  // their own threads. Messages to one peer leave in the order their sends
  // returned, whichever thread made them. Returns kInvalidArgument for a
  // core kind (< kFirstPatternKind), kUnavailable when no connected link to
  // the peer is known (not introduced yet, dropped, or the engine stopped) and
  // kResourceExhausted when the link's queue is full.
  absl::Status SendDirect(const NodeId& peer, uint16_t kind,
                          absl::string_view body);

  NodeStats Stats() const;

  // Secure mode: reloads the roster now (as the periodic check would when
  // the directory changes), cutting off every peer whose key left it. The
  // CLI calls it on SIGHUP. kFailedPrecondition in plaintext mode or when
  // the roster does not load (the previous one stays in force).
  absl::Status ReloadRoster();

  // Secure mode's key material, shared with pattern objects that own
  // sockets (a publisher's XPUB); null in plaintext mode.
  std::shared_ptr<const security::NodeSecurity> security() const;

 private:
  explicit Node(std::unique_ptr<node_internal::Engine> engine);
  // Runs `fn` on the engine thread (directly when already there) and
  // returns its status; kCancelled once closed.
  absl::Status CallOnEngine(std::function<absl::Status()> fn);
  std::unique_ptr<node_internal::Engine> engine_;
};

}  // namespace fabric

#endif  // FABRIC_NODE_H_
