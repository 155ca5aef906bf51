// SPDX-License-Identifier: Apache-2.0
// Outbound side of the engine: one DEALER link per peer mailbox, HELLOs,
// heartbeats, beacons, gossip and the timers that drive them.
#include <sys/epoll.h>
#include <zmq.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "discovery/beacon_format.h"
#include "fabric/base/log.h"
#include "fabric/base/status_macros.h"
#include "fabric/internal/engine.h"

namespace fabric::node_internal {
namespace {

// A refused link waits this long before it is tried again, doubling each
// time up to the maximum (libzmq never retries such a link itself).
constexpr absl::Duration kRefusedBackoffMin = absl::Seconds(1);
constexpr absl::Duration kRefusedBackoffMax = absl::Seconds(60);
// Handshakes failed without detail (a server proving another key) before
// the link is given up and backed off.
constexpr int kMaxHandshakeRetries = 5;

}  // namespace

Link* Engine::FindLink(const std::string& endpoint) {
  auto it = links_.find(endpoint);
  return it == links_.end() || it->second->closing ? nullptr : it->second.get();
}

Link* Engine::LinkOf(const NodeId& peer) {
  const PeerInfo* info = peers_.Find(peer);
  if (info == nullptr) return nullptr;
  Link* link = FindLink(info->mailbox_endpoint);
  return link != nullptr && link->peer == peer ? link : nullptr;
}

Link* Engine::EnsureLink(const std::string& endpoint, bool seed,
                         absl::string_view server_key) {
  if (endpoint == mailbox_endpoint_) return nullptr;
  if (security_ && server_key.size() != security::kCurveKeyBytes) {
    return nullptr;  // secure mode never connects without the server's key
  }
  auto it = links_.find(endpoint);
  if (it != links_.end() && it->second->server_key != server_key) {
    // Another key is named for the endpoint. While our link's handshake
    // holds, the server proved the old key: hearsay (gossip, a beacon)
    // does not override it. Otherwise (a restart on a fixed port) the
    // link would retry the old key forever: close it, and the next
    // beacon, HELLO or gossip makes the new one once it is reaped.
    if (it->second->connected && !it->second->closing) return nullptr;
    if (!it->second->closing) CloseLink(*it->second);
    return nullptr;
  }
  auto backoff = backoff_.find(endpoint);
  if (backoff != backoff_.end() && Now() < backoff->second.until) {
    return nullptr;  // refused recently: wait (OnHandshakeFailed)
  }
  if (it != links_.end()) {
    // A link marked closing in this iteration is revived, not replaced: the
    // poll loop may still hold a pointer to it until ReapLinks.
    Link& link = *it->second;
    if (link.closing) {
      link.closing = false;
      link.peer.reset();
      link.created_at = Now();
      SyncDirect(link);
    }
    link.seed |= seed;
    return &link;
  }
  const std::string monitor_endpoint =
      absl::StrCat("inproc://fabric-link-monitor-", ++monitor_seq_);
  absl::StatusOr<zmq::socket_t> dealer =
      MakeLink(ctx_, profile_, endpoint, monitor_endpoint,
               security_ ? &security_->keypair : nullptr, server_key);
  if (!dealer.ok()) {
    FABRIC_LOG(kWarning, kNode, "FAB-LINK-FAILED ", options_.name, " -> ",
               endpoint, ": ", dealer.status().ToString());
    return nullptr;
  }
  auto link = std::make_unique<Link>();
  link->endpoint = endpoint;
  link->server_key = std::string(server_key);
  link->dealer = std::move(*dealer);
  try {
    link->monitor = zmq::socket_t(ctx_, zmq::socket_type::pair);
    link->monitor.set(zmq::sockopt::linger, 0);
    link->monitor.connect(monitor_endpoint);
  } catch (const zmq::error_t& e) {
    FABRIC_LOG(kWarning, kNode, "FAB-LINK-FAILED ", options_.name,
               " monitor: ", e.what());
    return nullptr;
  }
  link->seed = seed;
  link->created_at = Now();
  link->last_sent_ns.store(absl::ToUnixNanos(link->created_at),
                           std::memory_order_relaxed);
  Link* raw = link.get();
  // Watched from now on: handshakes, drops and HELLO_REQUESTs wake the loop.
  try {
    raw->dealer_fd = raw->dealer.get(zmq::sockopt::fd);
    raw->monitor_fd = raw->monitor.get(zmq::sockopt::fd);
  } catch (const zmq::error_t& e) {
    FABRIC_LOG(kWarning, kNode, "FAB-LINK-FAILED ", options_.name,
               " ZMQ_FD: ", e.what());
    return nullptr;
  }
  const uint64_t tag = reinterpret_cast<uintptr_t>(raw);
  if (!Watch(EPOLL_CTL_ADD, raw->dealer_fd, tag, EPOLLIN)) {
    return nullptr;  // logged; the sockets close with `link`
  }
  if (!Watch(EPOLL_CTL_ADD, raw->monitor_fd, tag | 1, EPOLLIN)) {
    // The reaper closes a socket's ZMQ_FD later than zmq_close: leave no
    // entry that could name the freed link.
    (void)Watch(EPOLL_CTL_DEL, raw->dealer_fd, 0, 0);
    return nullptr;
  }
  links_[endpoint] = std::move(link);
  timers_dirty_ = true;  // a stale-link deadline
  // A new pipe signals nothing until its reader first found it empty:
  // look once (RecheckLinks) so the first event wakes the loop.
  FlagForRecheck(*raw);
  return raw;
}

void Engine::OnHandshakeFailed(Link& link, uint16_t event, int32_t value) {
  const char* what = "failed";
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
    counters_.handshakes_failed_auth.fetch_add(1, std::memory_order_relaxed);
    what = "refused our key";
  } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
    counters_.handshakes_failed_protocol.fetch_add(1,
                                                   std::memory_order_relaxed);
    what = value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
               ? "speaks another security mechanism (plaintext vs CURVE)"
               : "failed the protocol (a wrong server key?)";
  } else {
    counters_.handshakes_failed_other.fetch_add(1, std::memory_order_relaxed);
    // libzmq retries these itself; a server that keeps failing them (the
    // wrong key) is given up after a few.
    if (++link.handshake_failures < kMaxHandshakeRetries) return;
    what = "kept failing the handshake (a wrong server key?)";
  }
  // After an authentication or protocol failure libzmq never reconnects:
  // the link is dead. Back off, then let discovery (or, for a seed, the
  // timer) make it again.
  const absl::Time now = Now();
  Backoff& b = backoff_[link.endpoint];
  const bool first = b.delay == absl::ZeroDuration();
  b.delay =
      first ? kRefusedBackoffMin : std::min(2 * b.delay, kRefusedBackoffMax);
  b.until = now + b.delay;
  b.server_key = link.server_key;
  b.seed = link.seed;
  if (first) {
    FABRIC_LOG(kWarning, kNode, "FAB-LINK-REFUSED ", options_.name, " -> ",
               link.endpoint, ": ", what, " (event 0x", absl::Hex(event),
               ", value 0x", absl::Hex(value), "); retrying with backoff");
  } else {
    FABRIC_LOG(kDebug, kNode, "FAB-LINK-REFUSED ", options_.name, " -> ",
               link.endpoint, ": ", what, "; next try in ",
               absl::FormatDuration(b.delay));
  }
  link.connected = false;
  if (link.peer.has_value()) {
    Dispatch(peers_.OnDisconnected(*link.peer, now));
  }
  CloseLink(link);
  timers_dirty_ = true;  // the backoff's end
}

void Engine::RetryRefused(absl::Time now) {
  // Seeds are never given up (EnsureLink honours their backoff).
  for (const Seed& seed : seeds_) {
    if (seed.endpoint != mailbox_endpoint_ &&
        FindLink(seed.endpoint) == nullptr) {
      EnsureLink(seed.endpoint, /*seed=*/true, seed.key);
    }
  }
  if (backoff_.empty()) return;
  // A known peer whose link was refused (say its roster lagged ours) gets
  // it back once the backoff ends, in every discovery mode; an endpoint
  // nobody names any more is forgotten a while after its backoff.
  absl::flat_hash_map<std::string, NodeId> known;
  for (auto it = backoff_.begin(); it != backoff_.end();) {
    Backoff& b = it->second;
    if (now < b.until || b.seed) {
      ++it;
      continue;
    }
    if (known.empty()) {
      for (const PeerInfo& p : peers_.Snapshot()) {
        known.emplace(p.mailbox_endpoint, p.id);
      }
    }
    auto peer = known.find(it->first);
    if (peer != known.end() && FindLink(it->first) == nullptr) {
      Link* link = EnsureLink(it->first, /*seed=*/false, b.server_key);
      if (link != nullptr) {
        link->peer = peer->second;
        SyncDirect(*link);
      }
    }
    if (peer == known.end() && now > b.until + kRefusedBackoffMax) {
      backoff_.erase(it++);
    } else {
      ++it;
    }
  }
}

bool Engine::KeyAdmitted(absl::string_view key) {
  if (roster_->Contains(key)) return true;
  counters_.messages_revoked_key.fetch_add(1, std::memory_order_relaxed);
  return false;
}

absl::Status Engine::ReloadRoster() {
  if (!security_) {
    return absl::FailedPreconditionError(
        absl::StrCat("node ", options_.name, " is not in secure mode"));
  }
  return CheckRoster(/*force=*/true);
}

absl::Status Engine::CheckRoster(bool force) {
  const std::string& dir = security_->roster_dir;
  absl::StatusOr<security::RosterStamp> stamp = security::StatRoster(dir);
  if (!force && stamp.ok() && *stamp == roster_stamp_) {
    return absl::OkStatus();
  }
  std::vector<std::string> warnings;
  absl::StatusOr<security::Roster> loaded =
      security::LoadRoster(dir, &warnings);
  if (stamp.ok()) roster_stamp_ = *stamp;  // log a bad edit once
  if (!loaded.ok()) {
    counters_.roster_reload_errors.fetch_add(1, std::memory_order_relaxed);
    FABRIC_LOG(kError, kSecurity, "FAB-SEC-ROSTER-RELOAD ", options_.name,
               " keeps its previous roster: ", loaded.status().message());
    return absl::FailedPreconditionError(loaded.status().message());
  }
  for (const std::string& w : warnings) FABRIC_LOG(kWarning, kSecurity, w);
  roster_ = std::make_shared<const security::Roster>(std::move(*loaded));
  security_->roster->Set(roster_);
  counters_.roster_reloads.fetch_add(1, std::memory_order_relaxed);
  FABRIC_LOG(kInfo, kSecurity, "FAB-SEC-ROSTER-RELOADED ", options_.name, ": ",
             roster_->size(), " keys");
  if (!roster_->Contains(security_->keypair.public_key)) {
    FABRIC_LOG(kWarning, kSecurity, "FAB-SEC-ROSTER-SELF ", options_.name,
               ": the roster no longer holds this node's own key");
  }
  // Cut off at once every peer whose key left: its messages are dropped
  // from now on (KeyAdmitted), and it leaves our view.
  std::vector<NodeId> revoked;
  for (const auto& [id, key] : bound_keys_) {
    if (!roster_->Contains(key)) revoked.push_back(id);
  }
  const absl::Time now = Now();
  for (const NodeId& id : revoked) {
    counters_.keys_revoked.fetch_add(1, std::memory_order_relaxed);
    FABRIC_LOG(kWarning, kSecurity, "FAB-SEC-KEY-REVOKED ", options_.name,
               " cuts off ", id.ShortHex(), " (key ",
               security::KeyFingerprint(bound_keys_[id]), ")");
    Dispatch(peers_.Remove(id, "key revoked", now));
    bound_keys_.erase(id);
  }
  for (auto& [endpoint, link] : links_) {
    if (!link->closing && !roster_->Contains(link->server_key)) {
      CloseLink(*link);
    }
  }
  for (auto it = backoff_.begin(); it != backoff_.end();) {
    if (!it->second.seed && !roster_->Contains(it->second.server_key)) {
      backoff_.erase(it++);
    } else {
      ++it;
    }
  }
  // A seed follows its roster entry: a rotated key is used from now on (a
  // seed whose entry is gone keeps the last key it had, and stays refused).
  for (Seed& seed : seeds_) {
    absl::StatusOr<std::string> key =
        security::ResolveSeedKey(*roster_, seed.text, dir);
    if (key.ok() && *key != seed.key) {
      seed.key = *key;
      auto b = backoff_.find(seed.endpoint);
      if (b != backoff_.end()) b->second.server_key = *key;
    }
  }
  return absl::OkStatus();
}

void Engine::CloseLink(Link& link) {
  link.closing = true;
  reap_pending_ = true;
  timers_dirty_ = true;  // a seed's link is remade by the timers
  SyncDirect(link);
}

void Engine::SyncDirect(Link& link) {
  std::optional<NodeId> want;
  if (link.peer.has_value() && link.connected && !link.closing) {
    want = link.peer;
  }
  if (want == link.direct_key) return;
  timers_dirty_ = true;  // its PINGs start or stop
  const std::optional<NodeId> had = link.direct_key;
  uint64_t direct = 0;
  {
    absl::MutexLock lock(&link_mu_);
    if (had.has_value()) {
      // Another link may have taken the peer over meanwhile (it moved).
      auto it = direct_.find(*had);
      if (it != direct_.end() && it->second == &link) direct_.erase(it);
      // Direct senders count under this lock and found the link only
      // under `had` so far: what they counted is that peer's. Fold it in
      // now rather than at a sweep the link may not live to see.
      direct = link.direct_sent.exchange(0);
    }
    if (want.has_value()) direct_[*want] = &link;
    link.direct_key = want;
  }
  if (direct > 0) peers_.OnSent(*had, direct);
}

void Engine::ReapLinks() {
  reap_pending_ = false;
  for (auto it = links_.begin(); it != links_.end();) {
    if (it->second->closing) {
      // Closing links are out of direct_ (CloseLink), so no other thread
      // can reach this one. Stop monitoring first so libzmq does not queue
      // events nobody reads.
      Link& link = *it->second;
      zmq_socket_monitor(link.dealer.handle(), nullptr, 0);
      // Before the sockets close: libzmq's reaper closes a ZMQ_FD later,
      // and may signal it meanwhile.
      (void)Watch(EPOLL_CTL_DEL, link.dealer_fd, 0, 0);   // logged
      (void)Watch(EPOLL_CTL_DEL, link.monitor_fd, 0, 0);  // logged
      links_.erase(it++);
    } else {
      ++it;
    }
  }
}

absl::Status Engine::SendLocked(Link& link, absl::string_view wire) {
  // Whatever happens, libzmq may process the socket's commands here.
  FlagForRecheck(link);
  try {
    if (!link.dealer.send(zmq::buffer(wire.data(), wire.size()),
                          zmq::send_flags::dontwait)) {
      // Not connected (IMMEDIATE) or the high-water mark is reached.
      return absl::ResourceExhaustedError("send queue is full");
    }
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(absl::StrCat("send failed: ", e.what()));
  }
  return absl::OkStatus();
}

bool Engine::SendOnLink(Link& link, const std::string& wire) {
  {
    absl::MutexLock lock(&link_mu_);
    if (!SendLocked(link, wire).ok()) return false;
  }
  link.last_sent_ns.store(absl::ToUnixNanos(Now()), std::memory_order_relaxed);
  counters_.messages_sent.fetch_add(1, std::memory_order_relaxed);
  if (link.peer.has_value()) peers_.OnSent(*link.peer, 1);
  return true;
}

absl::Status Engine::SendDirect(const NodeId& peer, uint16_t kind,
                                absl::string_view body) {
  FABRIC_RETURN_IF_ERROR(CheckPatternKind(kind));
  const std::string wire = EncodeEnvelope(kind, id_, body);
  Link* link = nullptr;
  {
    absl::MutexLock lock(&link_mu_);
    auto it = direct_.find(peer);
    if (it == direct_.end()) {
      return absl::UnavailableError(
          absl::StrCat("no connected link to peer ", peer.ShortHex()));
    }
    link = it->second;
    absl::Status sent = SendLocked(*link, wire);
    if (!sent.ok()) {
      return absl::Status(sent.code(), absl::StrCat("peer ", peer.ShortHex(),
                                                    ": ", sent.message()));
    }
    // Still under the lock: the link cannot be reaped before this.
    // The engine's clock (thread-safe), which heartbeats compare with: the
    // wall clock may step.
    link->last_sent_ns.store(absl::ToUnixNanos(clock_->Now()),
                             std::memory_order_relaxed);
    link->direct_sent.fetch_add(1, std::memory_order_relaxed);
  }
  counters_.messages_sent.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

void Engine::SendHello(Link& link) {
  if (hello_wire_.empty()) {
    Hello hello;
    hello.id = id_;
    hello.name = options_.name;
    hello.cluster = options_.cluster;
    hello.mailbox_endpoint = mailbox_endpoint_;
    hello.state_version = state_version_;
    hello.discovery = std::string(DiscoveryModeName(options_.discovery));
    hello.headers = headers_;
    hello.offers = offers_;
    hello_wire_ = EncodeEnvelope(MessageKind::kHello, id_, EncodeHello(hello));
  }
  SendOnLink(link, hello_wire_);
}

void Engine::BroadcastHello() {
  for (auto& [endpoint, link] : links_) {
    if (link->connected && !link->closing) SendHello(*link);
  }
}

bool Engine::BeaconsReach(const NodeId& peer) const {
  // A peer in our beacon mode hears our beacons, and a beacon every
  // heartbeat interval is a heartbeat: PINGs would only add load (each
  // one wakes two I/O threads and an engine; 100 nodes on one host drowned
  // in them).
  if (!beacon_ || options_.beacon_interval > options_.heartbeat_interval) {
    return false;
  }
  const PeerInfo* info = peers_.Find(peer);
  return info != nullptr &&
         info->discovery == DiscoveryModeName(options_.discovery);
}

void Engine::SendBeacon(bool leaving) {
  discovery::Beacon beacon;
  beacon.flags = leaving ? discovery::kFlagLeaving : 0;
  beacon.cluster_hash = cluster_hash_;
  beacon.id = id_;
  beacon.mailbox_port = mailbox_port_;
  beacon.state_version = static_cast<uint32_t>(state_version_);
  std::string wire;
  if (beacon_auth_.has_value()) {
    discovery::SignedBeacon signed_beacon;
    signed_beacon.beacon = beacon;
    signed_beacon.ipv4 = beacon_ipv4_;
    signed_beacon.seq = ++beacon_seq_;
    signed_beacon.sent_time = absl::Now();  // wall clock: receivers compare
    signed_beacon.public_key = security_->keypair.public_key;
    absl::StatusOr<std::string> signed_wire = beacon_auth_->Sign(signed_beacon);
    if (!signed_wire.ok()) {
      FABRIC_LOG(kError, kDiscovery, "FAB-BEACON-SIGN ", options_.name, ": ",
                 signed_wire.status().ToString());
      return;
    }
    wire = std::move(*signed_wire);
  } else {
    wire = discovery::EncodeBeacon(beacon);
  }
  absl::Status sent = beacon_->Send(wire);
  if (!sent.ok()) {
    FABRIC_LOG(kWarning, kDiscovery, "FAB-BEACON-SEND ", options_.name, ": ",
               sent.ToString());
    return;
  }
  counters_.beacons_sent.fetch_add(1, std::memory_order_relaxed);
  counters_.beacon_bytes_sent.fetch_add(wire.size(), std::memory_order_relaxed);
}

std::vector<GossipEntry> Engine::GossipList(const NodeId& except) const {
  std::vector<GossipEntry> entries;
  for (const PeerInfo& p : peers_.Snapshot()) {
    if (p.id != except && p.state == PeerState::kAlive) {
      entries.push_back(GossipEntry{p.id, p.mailbox_endpoint, p.public_key});
    }
  }
  return entries;
}

void Engine::SendGossip(const NodeId& to,
                        const std::vector<GossipEntry>& entries) {
  if (entries.empty()) return;
  Link* link = LinkOf(to);
  if (link == nullptr) return;
  SendOnLink(*link,
             EncodeEnvelope(MessageKind::kGossip, id_, EncodeGossip(entries)));
}

void Engine::OnTimers(absl::Time now) {
  if (beacon_ && now >= next_beacon_) {
    SendBeacon(/*leaving=*/false);
    // From the due time, not `now`: the loop wakes on slot boundaries, and
    // `now + interval` would round up to the next slot every period.
    next_beacon_ = std::max(next_beacon_ + options_.beacon_interval, now);
  }
  std::string ping;  // encoded on first use: most iterations send none
  for (auto& [endpoint, link] : links_) {
    if (link->closing) continue;
    if (link->peer.has_value()) {
      const uint64_t direct = link->direct_sent.exchange(0);
      if (direct > 0) peers_.OnSent(*link->peer, direct);
      const absl::Time last_sent = absl::FromUnixNanos(
          link->last_sent_ns.load(std::memory_order_relaxed));
      // A slot early rather than a slot late: the loop wakes on slot
      // boundaries, after the exact due time.
      if (link->connected && !BeaconsReach(*link->peer) &&
          now - last_sent >= options_.heartbeat_interval - slot_) {
        if (ping.empty()) {
          ping = EncodeEnvelope(MessageKind::kPing, id_,
                                EncodePing(state_version_));
        }
        if (SendOnLink(*link, ping)) {
          counters_.heartbeats_sent.fetch_add(1, std::memory_order_relaxed);
        }
      }
    } else if (!link->seed && now - link->created_at > options_.dead_timeout) {
      // Learned from a beacon or gossip but never introduced itself.
      CloseLink(*link);
    }
  }
  Dispatch(peers_.Tick(now));
  RetryRefused(now);
  if (security_ && now >= next_roster_check_) {
    next_roster_check_ = now + options_.security.roster_check_interval;
    (void)CheckRoster(/*force=*/false);  // logged and counted inside
    // Forget bindings of ids that are neither peers nor tombstoned.
    for (auto it = bound_keys_.begin(); it != bound_keys_.end();) {
      if (peers_.Find(it->first) == nullptr &&
          !peers_.IsTombstoned(it->first, now)) {
        bound_keys_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  if (now >= next_gossip_) {
    // Anti-entropy: every interval one random peer gets our full view, so
    // nodes that joined through different seeds still find each other. In a
    // beacon mode only seeds-mode peers need it: they hear no beacons, so
    // this is how they learn of nodes that join after them.
    next_gossip_ = std::max(next_gossip_ + options_.beacon_interval, now);
    std::vector<PeerInfo> peers = peers_.Snapshot();
    if (options_.discovery != DiscoveryMode::kSeeds) {
      const absl::string_view seeds = DiscoveryModeName(DiscoveryMode::kSeeds);
      peers.erase(std::remove_if(
                      peers.begin(), peers.end(),
                      [&](const PeerInfo& p) { return p.discovery != seeds; }),
                  peers.end());
    }
    if (!peers.empty()) {
      const PeerInfo& target = peers[rng_() % peers.size()];
      SendGossip(target.id, GossipList(target.id));
    }
  }
}

absl::Time Engine::TimersDeadline(absl::Time now) const {
  absl::Time next = std::min(next_gossip_, peers_.NextDeadline());
  if (beacon_) next = std::min(next, next_beacon_);
  if (security_) next = std::min(next, next_roster_check_);
  for (const auto& [endpoint, link] : links_) {
    if (link->closing) continue;
    if (link->peer.has_value()) {
      // A PING is due after a heartbeat interval without sends (earlier
      // than that if other threads sent meanwhile: we wake and look).
      if (link->connected && !BeaconsReach(*link->peer)) {
        next = std::min(next, absl::FromUnixNanos(link->last_sent_ns.load(
                                  std::memory_order_relaxed)) +
                                  options_.heartbeat_interval - slot_);
      }
    } else if (!link->seed) {
      next = std::min(next, link->created_at + options_.dead_timeout);
    }
  }
  for (const auto& [endpoint, b] : backoff_) {
    // An ended backoff stays while its link is retried; it needs no timer.
    if (b.until > now) next = std::min(next, b.until);
  }
  return std::max(next, now + absl::Milliseconds(1));
}

}  // namespace fabric::node_internal
