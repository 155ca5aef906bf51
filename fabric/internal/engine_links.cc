// SPDX-License-Identifier: Apache-2.0
// Outbound side of the engine: one DEALER link per peer mailbox, HELLOs,
// heartbeats, beacons, gossip and the timers that drive them.
#include <zmq.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "discovery/beacon_format.h"
#include "fabric/base/log.h"
#include "fabric/base/status_macros.h"
#include "fabric/internal/engine.h"

namespace fabric::node_internal {

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

Link* Engine::EnsureLink(const std::string& endpoint, bool seed) {
  if (endpoint == mailbox_endpoint_) return nullptr;
  auto it = links_.find(endpoint);
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
      MakeLink(ctx_, profile_, endpoint, monitor_endpoint);
  if (!dealer.ok()) {
    FABRIC_LOG(kWarning, kNode, "FAB-LINK-FAILED ", options_.name, " -> ",
               endpoint, ": ", dealer.status().ToString());
    return nullptr;
  }
  auto link = std::make_unique<Link>();
  link->endpoint = endpoint;
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
  links_[endpoint] = std::move(link);
  return raw;
}

void Engine::CloseLink(Link& link) {
  link.closing = true;
  SyncDirect(link);
}

void Engine::SyncDirect(Link& link) {
  std::optional<NodeId> want;
  if (link.peer.has_value() && link.connected && !link.closing) {
    want = link.peer;
  }
  if (want == link.direct_key) return;
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
  for (auto it = links_.begin(); it != links_.end();) {
    if (it->second->closing) {
      // Closing links are out of direct_ (CloseLink), so no other thread
      // can reach this one. Stop monitoring first so libzmq does not queue
      // events nobody reads.
      zmq_socket_monitor(it->second->dealer.handle(), nullptr, 0);
      links_.erase(it++);
    } else {
      ++it;
    }
  }
}

absl::Status Engine::SendLocked(Link& link, absl::string_view wire) {
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
    link->last_sent_ns.store(absl::GetCurrentTimeNanos(),
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
  const std::string wire = discovery::EncodeBeacon(beacon);
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
      entries.push_back(GossipEntry{p.id, p.mailbox_endpoint});
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
    next_beacon_ = now + options_.beacon_interval;
  }
  std::string ping;  // encoded on first use: most iterations send none
  for (auto& [endpoint, link] : links_) {
    if (link->closing) continue;
    if (link->peer.has_value()) {
      const uint64_t direct = link->direct_sent.exchange(0);
      if (direct > 0) peers_.OnSent(*link->peer, direct);
      const absl::Time last_sent = absl::FromUnixNanos(
          link->last_sent_ns.load(std::memory_order_relaxed));
      if (link->connected && !BeaconsReach(*link->peer) &&
          now - last_sent >= options_.heartbeat_interval) {
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
  if (now >= next_gossip_) {
    // Anti-entropy: every interval one random peer gets our full view, so
    // nodes that joined through different seeds still find each other. In a
    // beacon mode only seeds-mode peers need it: they hear no beacons, so
    // this is how they learn of nodes that join after them.
    next_gossip_ = now + options_.beacon_interval;
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
  for (auto& plugin : plugins_) plugin->OnTick(*this, now);
}

}  // namespace fabric::node_internal
