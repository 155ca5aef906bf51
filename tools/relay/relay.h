// SPDX-License-Identifier: Apache-2.0
// `fabric::relay::Relay`: joins two discovery domains ("sides" a and b:
// two clusters, two interfaces, or a LAN and a seed list) and forwards the
// work queues and topic prefixes it is configured with, in both directions.
//
// - Work queues are store-and-forward: on the side where a task is pushed
//   the relay is one more worker of the queue; it acks a task once the task
//   is durable in its own spool, and a producer it runs on the other side
//   delivers it with a producer's guarantees (leases, redelivery, retries,
//   dead letters). The relay only takes tasks while the other side has
//   workers, and stops taking them while `max_backlog` tasks wait there.
// - Topics: a subscriber on one side republishes what it receives through a
//   publisher on the other side.
// - No loops, no duplicates: both relay nodes carry the HELLO header
//   `fabric.relay` (a per-run relay id). A relay's producers never hand
//   tasks to a relay's worker, and its subscribers drop messages that carry
//   the `fabric.relay` message header a relay adds. When several relays
//   bridge the same domains (same `bridge`), every one of them forwards
//   tasks (each task goes to one worker), and only the one with the lowest
//   relay id forwards topics.
// - Each side's node is an ordinary node: give it a fixed port and it is
//   the seed of nodes that cannot broadcast.
// - Counters: `Stats()`, the service `fabric.stats/<name>` on both sides
//   (`fabric stats NAME`) and, in the daemon, Prometheus text over HTTP.
//
// See docs/relay.md.
#ifndef FABRIC_TOOLS_RELAY_RELAY_H_
#define FABRIC_TOOLS_RELAY_RELAY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fabric/node_options.h"
#include "fabric/spool/spool.h"

namespace fabric {
class Node;
}

namespace fabric::relay {

// HELLO headers of relay nodes and the message header of relayed messages.
inline constexpr char kRelayHeader[] = "fabric.relay";
inline constexpr char kBridgeHeader[] = "fabric.relay.bridge";
// Header naming what the relay forwarded: on tasks "<producer id hex>:<seq>"
// (so handlers can recognise the duplicate a relay crash can cause), on
// messages "<stream hex>:<seq>" of the original stream.
inline constexpr char kOriginHeader[] = "fabric.relay.origin";
// Prefix of the stats service: "fabric.stats/<relay name>".
inline constexpr char kStatsServicePrefix[] = "fabric.stats/";

struct RelayOptions {
  // The relay's name: its node name on both sides and the name `fabric
  // stats` takes. Required, 1..64 bytes.
  std::string name;
  // The two sides. Their `name` and `on_peer_event` are set by the relay.
  NodeOptions a;
  NodeOptions b;
  // Work queues forwarded in both directions (exact names).
  std::vector<std::string> queues;
  // Topic prefixes forwarded in both directions ("" forwards every topic).
  std::vector<std::string> topics;
  // Topics (exact names) the relay keeps in a topic log on the side it
  // republishes them, so subscribers there can replay them.
  std::vector<std::string> durable_topics;
  // Where the relay keeps its spools (queues/<a2b|b2a>/<queue>), topic
  // logs (topics/<a2b|b2a>) and subscriber positions (subs). Required when
  // `queues` or `durable_topics` is non-empty. One relay per directory.
  std::string state_dir;
  FsyncPolicy fsync = FsyncPolicy::kBatch;
  // Relays with the same bridge name coordinate (topic forwarding by one of
  // them). Default: the two cluster names, sorted, joined by '/'.
  std::string bridge;
  // Per queue and direction: while this many forwarded tasks wait at the
  // relay for a worker's credit, it takes no more from the sending side.
  uint64_t max_backlog = 1000;
  // Handler threads per forwarded queue and direction; each holds one task
  // until it is durable in the relay's spool (group commit batches them).
  int queue_concurrency = 16;
  // Leases and attempts of the relay's producers (see ProducerOptions).
  absl::Duration lease = absl::Seconds(30);
  uint32_t max_attempts = 5;
  // How long a side may have no workers of a queue before the relay stops
  // taking that queue's tasks on the other side.
  absl::Duration worker_grace = absl::Seconds(2);
};

// Directions, as they appear in stats: "a_to_b" and "b_to_a".
struct QueueStats {
  std::string queue;
  std::string direction;
  bool taking = false;       // the relay is a worker on the sending side
  uint64_t in = 0;           // tasks taken and made durable at the relay
  uint64_t out = 0;          // tasks acked by workers on the receiving side
  uint64_t in_flight = 0;    // gauge: delivered, not yet acked
  uint64_t backlog = 0;      // gauge: durable at the relay, waiting
  uint64_t redelivered = 0;  // deliveries after the first
  uint64_t dropped = 0;      // dead-lettered (kept in the relay's spool)
  uint64_t errors = 0;       // tasks the relay failed to store (retried)
  uint64_t recovered = 0;    // found in the spool at start
  uint64_t workers = 0;      // gauge: workers on the receiving side
  uint64_t spool_bytes = 0;  // gauge: bytes of the spool on disk
};

struct TopicStats {
  std::string prefix;
  std::string direction;
  bool forwarding = false;  // this relay is the bridge's topic forwarder
  uint64_t in = 0;          // messages received on the sending side
  uint64_t out = 0;         // republished on the receiving side
  uint64_t dropped = 0;     // lost before the relay (gaps) + publish errors
  uint64_t looped = 0;      // skipped: already relayed by a relay
  uint64_t standby = 0;     // skipped: another relay forwards this bridge
};

struct PeerStats {
  std::string side;  // "a" or "b"
  std::string name;
  std::string id;  // hex
  std::string state;
  bool relay = false;  // another relay of the same bridge
  uint64_t messages_in = 0;
  uint64_t messages_out = 0;
  absl::Duration since_seen;
};

struct RelayStats {
  std::string name;
  std::string relay_id;
  std::vector<QueueStats> queues;
  std::vector<TopicStats> topics;
  std::vector<PeerStats> peers;
};

// Renders stats in the Prometheus text exposition format (version 0.0.4).
std::string FormatPrometheus(const RelayStats& stats);

// Thread safety: thread-safe.
class Relay {
 public:
  // Validates the options, starts both nodes and the forwarding. Returns
  // kInvalidArgument for bad options (including two sides that are the
  // same discovery domain), the node's or spool's error when one cannot
  // start. Blocks two beacon intervals (relay discovery, section 4 of
  // docs/relay.md).
  static absl::StatusOr<std::unique_ptr<Relay>> Start(RelayOptions options);
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;
  ~Relay();  // Close()

  RelayStats Stats() const;
  // Mailbox endpoints of the two sides' nodes.
  std::string mailbox(char side) const;
  const std::string& relay_id() const;
  // The node of side 'a' or 'b', for what the daemon does to a node as
  // such (a SIGHUP reloads a secure side's roster). It lives as long as the
  // relay; the relay's own forwarding must not be disturbed through it.
  Node& node(char side) const;

  // Stops taking tasks and messages, lets running forwards finish, closes
  // the spools (what they hold is delivered by the next run) and leaves
  // both sides. Idempotent. Blocks until the forwards in progress end:
  // normally at once; up to 40 s per forwarded queue and direction when
  // the relay's spool is full and a store waits for room.
  void Close();

  class Impl;

 private:
  explicit Relay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fabric::relay

#endif  // FABRIC_TOOLS_RELAY_RELAY_H_
