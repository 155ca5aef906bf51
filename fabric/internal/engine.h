// SPDX-License-Identifier: Apache-2.0
// The engine behind `fabric::Node`: one thread running a reactor over the
// mailbox ROUTER, one DEALER link (and its monitor) per peer, the beacon
// socket and timers. Application threads reach it only through `Post`
// (a command queue plus an eventfd that wakes the poll). docs/threading.md
// describes the threads; docs/protocol.md the messages.
#ifndef FABRIC_INTERNAL_ENGINE_H_
#define FABRIC_INTERNAL_ENGINE_H_

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "discovery/beacon.h"
#include "discovery/beacon_auth.h"
#include "discovery/beacon_replay_filter.h"
#include "discovery/beacon_socket.h"
#include "fabric/base/clock.h"
#include "fabric/codec/control.h"
#include "fabric/codec/envelope.h"
#include "fabric/internal/event_dispatcher.h"
#include "fabric/internal/socket_profile.h"
#include "fabric/node.h"
#include "fabric/peers/peer_table.h"
#include "fabric/plugin.h"
#include "fabric/security/node_security.h"

namespace fabric::node_internal {

// One outgoing connection to a peer's mailbox. The engine thread owns it;
// other threads reach a connected link only through `Engine::SendDirect`,
// and every use of `dealer` holds `Engine::link_mu_`.
struct Link {
  std::string endpoint;
  zmq::socket_t dealer;
  zmq::socket_t monitor;        // PAIR receiving the dealer's events
  std::optional<NodeId> peer;   // set once that endpoint's HELLO arrived
  std::string server_key;       // secure mode: the key the server must prove
  int handshake_failures = 0;   // NO_DETAIL failures in a row
  bool seed = false;            // configured seed: never dropped
  bool connected = false;       // ZMTP handshake done, not yet dropped
  bool gossip_pending = false;  // seeds mode: send our view once connected
  bool closing = false;         // reaped at the end of the loop iteration
  // The peer this link is listed under in `Engine::direct_`, if any.
  std::optional<NodeId> direct_key;
  absl::Time created_at;
  // Written by any sender, read by the heartbeat timer: relaxed atomics.
  std::atomic<int64_t> last_sent_ns{0};
  std::atomic<uint64_t> direct_sent{0};  // not yet added to the peer table
  // Set by every send. A send runs libzmq's command processing on the
  // sending thread, which may consume the signal (ZMQ_FD) that would have
  // woken the engine for an inbound message, so the engine looks at such
  // a link's DEALER itself (Engine::RecheckLinks).
  std::atomic<bool> recheck{false};
  // The ZMQ_FDs of `dealer` and `monitor`, watched by the engine's epoll.
  int dealer_fd = -1;
  int monitor_fd = -1;
};

// Thread safety: `Post`, `SendDirect`, `Close`, `Join`, `Stats` and the
// accessors are thread-safe; everything else runs on the engine thread.
class Engine : public NodeContext {
 public:
  static absl::StatusOr<std::unique_ptr<Engine>> Create(NodeOptions options);
  ~Engine() override;

  void Start();
  void Close() noexcept;
  void Join();
  absl::Status Post(std::function<void(NodeContext&)> fn);
  // Sends a message of a pattern kind on the peer's link from the calling
  // thread, without waking the engine. Returns kInvalidArgument for a core
  // kind, kUnavailable when no connected link to the peer is known (also
  // before the engine starts and after it stops) and kResourceExhausted
  // when the link's queue is full.
  absl::Status SendDirect(const NodeId& peer, uint16_t kind,
                          absl::string_view body);
  bool OnEngineThread() const;
  NodeStats Stats() const;

  const std::string& name() const { return options_.name; }
  const std::string& cluster() const { return options_.cluster; }
  const std::string& mailbox_endpoint() const { return mailbox_endpoint_; }

  // NodeContext (engine thread only).
  const NodeId& self_id() const override { return id_; }
  absl::Time Now() const override { return clock_->Now(); }
  absl::Status Send(const NodeId& peer, uint16_t kind,
                    absl::string_view body) override;
  absl::Status SetOffer(absl::string_view kind, absl::string_view name,
                        bool offered) override;
  const PeerInfo* FindPeer(const NodeId& id) const override;
  std::vector<PeerInfo> Peers() const override;
  void WakeAt(absl::Time at) override { wake_at_ = std::min(wake_at_, at); }

  // Secure mode's key material, null in plaintext mode. Immutable after
  // Create except the roster holder (thread-safe).
  std::shared_ptr<const security::NodeSecurity> security() const {
    return security_;
  }

  // Engine thread only.
  // Secure mode: reloads the roster now and cuts off revoked keys.
  // kFailedPrecondition in plaintext mode or when the roster does not load
  // (the previous one stays).
  absl::Status ReloadRoster();
  absl::Status SetHeader(absl::string_view key, absl::string_view value);
  absl::Status Attach(std::shared_ptr<Plugin> plugin);
  // The plugin owning `kind`, or null.
  std::shared_ptr<Plugin> PluginOwning(uint16_t kind) const;

 private:
  // Counters, written on the engine thread and read anywhere. Relaxed
  // ordering: each is an independent statistic.
  struct Counters {
    std::atomic<uint64_t> beacons_sent{0}, beacon_bytes_sent{0},
        beacons_received{0}, beacons_malformed{0}, beacons_wrong_version{0},
        beacons_other_cluster{0}, messages_received{0}, messages_sent{0},
        messages_malformed{0}, messages_wrong_version{0},
        messages_other_cluster{0}, messages_unknown_sender{0},
        messages_unknown_kind{0}, heartbeats_sent{0}, peers_joined{0},
        peers_left{0}, local_stalls{0}, beacons_unauthenticated{0},
        beacons_unknown_key_id{0}, beacons_bad_mac{0}, beacons_addr_mismatch{0},
        beacons_stale{0}, beacons_replayed{0}, beacons_unknown_node_key{0},
        messages_unauthenticated{0}, messages_key_mismatch{0},
        messages_revoked_key{0}, gossip_unkeyed{0}, handshakes_failed_auth{0},
        handshakes_failed_protocol{0}, handshakes_failed_other{0},
        roster_reloads{0}, roster_reload_errors{0}, keys_revoked{0},
        loop_wakeups{0};
  };

  Engine(NodeOptions options, NodeId id);

  void Run();
  void RunOnce();
  // The time the loop must wake by (before kMaxWait caps it).
  absl::Time NextWake(absl::Time now) const;
  // The earliest of the core timers: beacon, gossip, roster check, peer
  // liveness (PeerTable::NextDeadline), heartbeats, stale links, backoffs.
  // Never earlier than just after `now`: a deadline that running the timers
  // could not clear (a PING the HWM refused) is tried again a slot later,
  // not in a spin.
  absl::Time TimersDeadline(absl::Time now) const;
  // epoll registration of `fd` under `tag` (engine.cc); false on error,
  // logged.
  bool Watch(int op, int fd, uint64_t tag, uint32_t events);
  bool MailboxReadable();
  // Handles what libzmq signalled on a link's monitor or DEALER.
  void PollLink(Link& link, bool monitor);
  // Asks RecheckLinks to look at `link` (any thread).
  void FlagForRecheck(Link& link) {
    link.recheck.store(true);
    links_recheck_.store(true);
  }
  // Looks at the monitor and DEALER of every link whose `recheck` is set.
  void RecheckLinks();
  // Polls every link (a slow safety net under the event-driven path).
  void SweepLinks();
  void Shutdown();
  void DrainCommands();
  // kInvalidArgument for a core message kind (< kFirstPatternKind).
  static absl::Status CheckPatternKind(uint16_t kind);

  // engine_io.cc: inbound traffic.
  // Drains the mailbox, then calls OnMailboxDrained if plugins got any.
  void DrainMailbox();
  void DrainMailboxBatch();
  // `key`: secure mode, the sender's authenticated CURVE key (raw).
  void HandleMailboxMessage(absl::string_view routing_id,
                            absl::string_view payload, absl::string_view key);
  void HandleHello(const NodeId& sender, absl::string_view body,
                   absl::string_view key);
  void HandleGossip(const NodeId& sender, absl::string_view body);
  // Returns how many datagrams it read.
  size_t DrainBeacons();
  void HandleBeacon(const discovery::Datagram& datagram);
  // Secure mode: only a v2 beacon that passes every check (protocol.md,
  // "Beacon v2") reaches the plaintext rules; v1 is counted and dropped.
  void HandleSignedBeacon(const discovery::Datagram& datagram);
  // The rules every accepted beacon follows; `key` is its node's key
  // (secure mode) or empty.
  void ActOnBeacon(const discovery::Beacon& beacon,
                   const std::string& source_address, absl::string_view key);
  void DrainLink(Link& link);
  void DrainMonitor(Link& link);
  void RequestHello(absl::string_view routing_id);

  // engine_links.cc: outbound links and timers.
  // `server_key`: secure mode, the key the endpoint's server must prove
  // (required there). Returns null while the endpoint is backing off after
  // a refused handshake, or when the link cannot be made.
  Link* EnsureLink(const std::string& endpoint, bool seed,
                   absl::string_view server_key);
  // A refused handshake: counted, logged once per endpoint, and the link
  // closed and backed off (libzmq never retries it).
  void OnHandshakeFailed(Link& link, uint16_t event, int32_t value);
  // Remakes seed links that are gone, and links to known peers whose
  // backoff ran out; forgets other expired backoffs.
  void RetryRefused(absl::Time now);
  // Secure mode: reloads the roster if it changed (or `force`), and cuts
  // off every peer whose key left it.
  absl::Status CheckRoster(bool force);
  // Secure mode: true when `key` may speak; counts and drops otherwise.
  bool KeyAdmitted(absl::string_view key);
  Link* FindLink(const std::string& endpoint);
  Link* LinkOf(const NodeId& peer);
  void CloseLink(Link& link);
  // Lists `link` in direct_ under its peer while it is connected, named and
  // not closing; unlists it otherwise. Call after changing any of those.
  void SyncDirect(Link& link);
  void ReapLinks();
  // Sends `wire` on the link's DEALER without blocking: kResourceExhausted
  // when it is not connected or its queue is full, kUnavailable on error.
  absl::Status SendLocked(Link& link, absl::string_view wire)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(link_mu_);
  bool SendOnLink(Link& link, const std::string& wire);
  void SendHello(Link& link);
  void BroadcastHello();
  void SendBeacon(bool leaving);
  bool BeaconsReach(const NodeId& peer) const;
  void OnTimers(absl::Time now);
  void SendGossip(const NodeId& to, const std::vector<GossipEntry>& entries);
  std::vector<GossipEntry> GossipList(const NodeId& except) const;
  void Dispatch(std::vector<PeerEvent> events);
  void BumpStateVersion();
  // Returns kResourceExhausted when our HELLO would break a peer's limits.
  absl::Status CheckHelloLimits() const;

  // Immutable after construction.
  NodeOptions options_;
  const NodeId id_;
  Clock* const clock_;
  SocketProfile profile_;
  uint64_t cluster_hash_ = 0;
  std::string mailbox_endpoint_;
  uint16_t mailbox_port_ = 0;
  int wake_fd_ = -1;
  // The loop waits on this: the wake eventfd, the mailbox's and every
  // link's ZMQ_FD, and the beacon socket.
  int epoll_fd_ = -1;

  zmq::context_t ctx_;
  // Secure mode (null otherwise). The ZAP handler is declared after the
  // context and before the mailbox: it starts before the mailbox binds and
  // stops after it closes.
  std::shared_ptr<security::NodeSecurity> security_;
  std::unique_ptr<security::ZapHandler> zap_;
  zmq::socket_t mailbox_;
  std::unique_ptr<discovery::BeaconSocket> beacon_;
  std::unique_ptr<EventDispatcher> dispatcher_;
  std::thread thread_;
  std::atomic<std::thread::id> thread_id_{};  // release/acquire with Start

  // Held for every use of a link's DEALER (send, poll, recv), by the engine
  // and by SendDirect callers: a zmq socket may move between threads only
  // across a full memory barrier, never be used by two at once.
  absl::Mutex link_mu_;
  absl::flat_hash_map<NodeId, Link*> direct_ ABSL_GUARDED_BY(link_mu_);

  mutable absl::Mutex mu_;
  std::deque<std::function<void(NodeContext&)>> commands_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool joined_ ABSL_GUARDED_BY(mu_) = false;

  // Engine thread only.
  PeerTable peers_;
  absl::flat_hash_map<std::string, std::unique_ptr<Link>> links_;
  Headers headers_;
  Offers offers_;
  uint64_t state_version_ = 1;
  std::string hello_wire_;  // cached HELLO envelope for state_version_
  std::vector<std::shared_ptr<Plugin>> plugins_;
  absl::flat_hash_map<uint16_t, Plugin*> kind_owner_;
  absl::Time next_beacon_;
  absl::Time next_gossip_;
  absl::Time next_roster_check_;
  // When OnTimers runs next (TimersDeadline as of its last computation);
  // `timers_dirty_` asks for a recomputation because something may have
  // moved a deadline earlier (a peer joined or dropped, a link was made,
  // a handshake refused).
  absl::Time next_timers_;
  absl::Duration slot_;  // the core timers' grid (engine.cc, kMaxTimerSlot)
  bool timers_dirty_ = true;
  absl::Time next_plugin_tick_;
  absl::Time next_full_sweep_;
  // The beacon socket is left out of the wait until then after a wake-up
  // it caused (kBeaconBatch); InfiniteFuture while it is watched.
  absl::Time beacon_rearm_at_ = absl::InfiniteFuture();
  bool reap_pending_ = false;  // a link was closed: ReapLinks
  // Some link has `recheck` set (written by any sending thread).
  std::atomic<bool> links_recheck_{false};
  // Secure mode, engine thread only: the roster as last loaded, the key
  // each peer's first HELLO came under, and endpoints backing off after a
  // refused handshake.
  std::shared_ptr<const security::Roster> roster_;
  security::RosterStamp roster_stamp_;
  absl::flat_hash_map<NodeId, std::string> bound_keys_;
  struct Backoff {
    absl::Time until;
    absl::Duration delay;
    std::string server_key;
    bool seed = false;
  };
  absl::flat_hash_map<std::string, Backoff> backoff_;
  // Configured seeds: endpoint, the text they were given as (secure mode
  // re-resolves its key on each roster reload) and the key.
  struct Seed {
    std::string endpoint;
    std::string text;
    std::string key;
  };
  std::vector<Seed> seeds_;
  // Secure beacon modes: the beacon MAC keys, the sequence of our beacons,
  // our address as beacons carry it, and the replay filter.
  std::optional<discovery::BeaconAuthenticator> beacon_auth_;
  uint64_t beacon_seq_ = 0;
  uint32_t beacon_ipv4_ = 0;
  discovery::BeaconReplayFilter replay_;
  // The earliest wake-up a plugin asked for (WakeAt).
  absl::Time wake_at_ = absl::InfiniteFuture();
  absl::Time last_iteration_;
  std::mt19937_64 rng_;
  uint64_t monitor_seq_ = 0;
  uint64_t plugin_messages_ = 0;  // in this DrainMailbox
  bool stop_ = false;
  Counters counters_;
};

}  // namespace fabric::node_internal

#endif  // FABRIC_INTERNAL_ENGINE_H_
