// SPDX-License-Identifier: Apache-2.0
// Inbound traffic of the engine: mailbox messages, beacons, and what comes
// back on links (HELLO_REQUEST, monitor events). Every input is untrusted:
// anything malformed is dropped and counted, never fatal.
#include <zmq.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "discovery/beacon_format.h"
#include "fabric/base/log.h"
#include "fabric/internal/engine.h"

namespace fabric::node_internal {
namespace {

// Messages drained per socket per loop iteration, so one busy peer cannot
// starve timers and the other sockets.
constexpr int kMaxBatch = 1024;

// Endpoints in HELLO and GOSSIP are untrusted: only TCP mailboxes are ever
// connected to (no ipc:// or inproc:// from the network).
bool IsTcpEndpoint(absl::string_view endpoint) {
  return absl::StartsWith(endpoint, "tcp://") && endpoint.rfind(':') > 6 &&
         endpoint.size() < 256;
}

void Bump(std::atomic<uint64_t>& counter) {
  counter.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

void Engine::DrainMailbox() {
  plugin_messages_ = 0;
  DrainMailboxBatch();
  if (plugin_messages_ > 0) {
    for (auto& plugin : plugins_) plugin->OnMailboxDrained(*this);
  }
}

void Engine::DrainMailboxBatch() {
  for (int i = 0; i < kMaxBatch; ++i) {
    zmq::message_t routing_id;
    zmq::message_t payload;
    try {
      if (!mailbox_.recv(routing_id, zmq::recv_flags::dontwait)) return;
      if (!routing_id.more()) {
        Bump(counters_.messages_malformed);
        continue;
      }
      // A frame over ZMQ_MAXMSGSIZE never gets here: libzmq drops the
      // connection. recv of the next part cannot would-block mid-message.
      (void)mailbox_.recv(payload, zmq::recv_flags::none);
      if (payload.more()) {
        // Our peers send exactly two parts: drop the whole message, counted
        // once.
        zmq::message_t junk;
        do {
          (void)mailbox_.recv(junk, zmq::recv_flags::none);
        } while (junk.more());
        Bump(counters_.messages_malformed);
        continue;
      }
    } catch (const zmq::error_t& e) {
      FABRIC_LOG(kWarning, kNode, "FAB-MAILBOX-RECV ", e.what());
      return;
    }
    if (payload.size() == 0) {
      Bump(counters_.messages_malformed);
      continue;
    }
    HandleMailboxMessage(
        absl::string_view(routing_id.data<char>(), routing_id.size()),
        absl::string_view(payload.data<char>(), payload.size()));
  }
}

void Engine::HandleMailboxMessage(absl::string_view routing_id,
                                  absl::string_view payload) {
  Bump(counters_.messages_received);
  absl::StatusOr<EnvelopeView> env =
      DecodeEnvelope(payload, options_.max_message_bytes);
  if (!env.ok()) {
    if (absl::IsUnimplemented(env.status())) {
      Bump(counters_.messages_wrong_version);
    } else {
      Bump(counters_.messages_malformed);
    }
    FABRIC_LOG(kDebug, kNode, "FAB-BAD-FRAME ", options_.name, ": ",
               env.status().ToString());
    return;
  }
  const MessageKind kind = static_cast<MessageKind>(env->kind);
  if (kind == MessageKind::kHello) {
    HandleHello(env->sender, env->body);
    return;
  }
  if (peers_.Find(env->sender) == nullptr) {
    // We do not know this sender (we declared it dead, or its HELLO was
    // lost): ask it to introduce itself instead of acting on the message.
    Bump(counters_.messages_unknown_sender);
    if (kind != MessageKind::kGoodbye) RequestHello(routing_id);
    return;
  }
  Dispatch(peers_.OnTraffic(env->sender, Now()));
  switch (kind) {
    case MessageKind::kPing: {
      absl::StatusOr<uint64_t> version = DecodePing(env->body);
      if (!version.ok()) {
        Bump(counters_.messages_malformed);
        return;
      }
      const PeerInfo* peer = peers_.Find(env->sender);
      if (peer != nullptr && *version != peer->state_version) {
        RequestHello(routing_id);
      }
      return;
    }
    case MessageKind::kGoodbye:
      Dispatch(peers_.Remove(env->sender, "goodbye", Now()));
      return;
    case MessageKind::kGossip:
      HandleGossip(env->sender, env->body);
      return;
    case MessageKind::kHelloRequest: {
      Link* link = LinkOf(env->sender);
      if (link != nullptr) SendHello(*link);
      return;
    }
    default:
      break;
  }
  auto owner = kind_owner_.find(env->kind);
  if (owner == kind_owner_.end()) {
    Bump(counters_.messages_unknown_kind);
    return;
  }
  const PeerInfo* peer = peers_.Find(env->sender);
  ++plugin_messages_;
  owner->second->OnMessage(*this, *peer, env->kind, env->body);
}

void Engine::HandleHello(const NodeId& sender, absl::string_view body) {
  absl::StatusOr<Hello> hello = DecodeHello(body);
  if (!hello.ok()) {
    Bump(counters_.messages_malformed);
    FABRIC_LOG(kDebug, kNode, "FAB-BAD-HELLO ", options_.name, ": ",
               hello.status().ToString());
    return;
  }
  if (hello->id == id_) return;  // we reached ourselves through a seed
  if (hello->id != sender || !IsTcpEndpoint(hello->mailbox_endpoint)) {
    Bump(counters_.messages_malformed);
    return;
  }
  if (hello->cluster != options_.cluster) {
    Bump(counters_.messages_other_cluster);
    FABRIC_LOG(kDebug, kNode, "FAB-CLUSTER-MISMATCH ", options_.name,
               " ignores ", hello->name, " of cluster '", hello->cluster, "'");
    return;
  }
  const PeerInfo* known = peers_.Find(hello->id);
  if (known != nullptr && known->mailbox_endpoint != hello->mailbox_endpoint) {
    // The peer moved (it rebound its mailbox): drop the link to the old one.
    Link* old = FindLink(known->mailbox_endpoint);
    if (old != nullptr && old->peer == hello->id) {
      old->peer.reset();
      SyncDirect(*old);
      if (!old->seed) CloseLink(*old);
    }
  }
  // Bind the link first, so that a kLeft for an older incarnation on the
  // same endpoint does not close the link the new one now uses.
  Link* link = EnsureLink(hello->mailbox_endpoint, /*seed=*/false);
  if (link != nullptr) {
    link->peer = hello->id;
    SyncDirect(*link);
  }
  Dispatch(peers_.OnHello(*hello, Now()));
}

void Engine::HandleGossip(const NodeId& sender, absl::string_view body) {
  absl::StatusOr<std::vector<GossipEntry>> entries = DecodeGossip(body);
  if (!entries.ok()) {
    Bump(counters_.messages_malformed);
    return;
  }
  const absl::Time now = Now();
  for (const GossipEntry& e : *entries) {
    if (e.id == id_ || e.id == sender || peers_.Find(e.id) != nullptr ||
        peers_.IsTombstoned(e.id, now) || !IsTcpEndpoint(e.mailbox_endpoint) ||
        e.mailbox_endpoint == mailbox_endpoint_) {
      continue;
    }
    EnsureLink(e.mailbox_endpoint, /*seed=*/false);
  }
}

void Engine::DrainBeacons() {
  for (int i = 0; i < kMaxBatch; ++i) {
    absl::StatusOr<std::optional<discovery::Datagram>> datagram =
        beacon_->Receive();
    if (!datagram.ok()) {
      FABRIC_LOG(kWarning, kDiscovery, "FAB-BEACON-RECV ",
                 datagram.status().ToString());
      return;
    }
    if (!datagram->has_value()) return;
    HandleBeacon(**datagram);
  }
}

void Engine::HandleBeacon(const discovery::Datagram& datagram) {
  absl::StatusOr<discovery::Beacon> beacon =
      discovery::DecodeBeacon(datagram.payload);
  if (!beacon.ok()) {
    Bump(absl::IsUnimplemented(beacon.status())
             ? counters_.beacons_wrong_version
             : counters_.beacons_malformed);
    FABRIC_LOG(kDebug, kDiscovery, "FAB-BAD-BEACON from ",
               datagram.source_address, ": ", beacon.status().ToString());
    return;
  }
  if (beacon->id == id_) return;  // our own broadcast echoes back
  Bump(counters_.beacons_received);
  if (beacon->cluster_hash != cluster_hash_) {
    Bump(counters_.beacons_other_cluster);
    return;
  }
  const PeerInfo* known = peers_.Find(beacon->id);
  if (beacon->leaving()) {
    if (known != nullptr) Dispatch(peers_.Remove(beacon->id, "goodbye", Now()));
    return;
  }
  // A beacon of a known peer is its heartbeat (PeerTable::OnBeacon: it never
  // revives a dropped link). An unknown node gets a link; a newer state
  // version gets a HELLO_REQUEST.
  const std::string endpoint = absl::StrCat("tcp://", datagram.source_address,
                                            ":", beacon->mailbox_port);
  if (known == nullptr) {
    EnsureLink(endpoint, /*seed=*/false);
    return;
  }
  Dispatch(peers_.OnBeacon(beacon->id, Now()));
  known = peers_.Find(beacon->id);
  if (known != nullptr &&
      static_cast<uint32_t>(known->state_version) != beacon->state_version) {
    Link* link = LinkOf(beacon->id);
    if (link != nullptr) {
      SendOnLink(*link, EncodeEnvelope(MessageKind::kHelloRequest, id_, ""));
    }
  }
}

void Engine::DrainLink(Link& link) {
  // Peers answer on our link only with HELLO_REQUEST.
  for (int i = 0; i < kMaxBatch; ++i) {
    zmq::message_t msg;
    try {
      absl::MutexLock lock(&link_mu_);
      if (!link.dealer.recv(msg, zmq::recv_flags::dontwait)) return;
    } catch (const zmq::error_t& e) {
      return;
    }
    Bump(counters_.messages_received);
    absl::StatusOr<EnvelopeView> env =
        DecodeEnvelope(absl::string_view(msg.data<char>(), msg.size()),
                       options_.max_message_bytes);
    if (!env.ok()) {
      Bump(absl::IsUnimplemented(env.status())
               ? counters_.messages_wrong_version
               : counters_.messages_malformed);
      continue;
    }
    if (env->kind != static_cast<uint16_t>(MessageKind::kHelloRequest)) {
      Bump(counters_.messages_unknown_kind);
      continue;
    }
    SendHello(link);
  }
}

void Engine::DrainMonitor(Link& link) {
  for (int i = 0; i < kMaxBatch; ++i) {
    zmq::message_t event;
    zmq::message_t address;
    try {
      if (!link.monitor.recv(event, zmq::recv_flags::dontwait)) return;
      if (event.more()) (void)link.monitor.recv(address);
    } catch (const zmq::error_t& e) {
      return;
    }
    if (event.size() < sizeof(uint16_t)) continue;
    uint16_t id = 0;
    std::memcpy(&id, event.data(), sizeof(id));
    if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      link.connected = true;
      if (link.peer.has_value()) peers_.OnConnected(*link.peer);
      SendHello(link);  // HELLO is the first message on every connection
      if (!link.peer.has_value()) {
        // We reached a mailbox found by beacon, seed or gossip but do not
        // know its node yet. It may know us already (say it was paused
        // while we declared it dead) and then has no reason to introduce
        // itself, so ask.
        SendOnLink(link, EncodeEnvelope(MessageKind::kHelloRequest, id_, ""));
      }
      if (link.gossip_pending && link.peer.has_value()) {
        link.gossip_pending = false;
        SendGossip(*link.peer, GossipList(*link.peer));
      }
      // Only now may other threads send on it: HELLO goes first.
      SyncDirect(link);
    } else if (id == ZMQ_EVENT_DISCONNECTED) {
      link.connected = false;
      SyncDirect(link);
      if (link.peer.has_value()) {
        Dispatch(peers_.OnDisconnected(*link.peer, Now()));
      }
    }
  }
}

void Engine::RequestHello(absl::string_view routing_id) {
  const std::string wire = EncodeEnvelope(MessageKind::kHelloRequest, id_, "");
  try {
    mailbox_.send(zmq::buffer(routing_id.data(), routing_id.size()),
                  zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    mailbox_.send(zmq::buffer(wire), zmq::send_flags::dontwait);
  } catch (const zmq::error_t& e) {
    // EHOSTUNREACH (ROUTER_MANDATORY): the sender is already gone.
  }
}

}  // namespace fabric::node_internal
