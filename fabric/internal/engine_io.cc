// SPDX-License-Identifier: Apache-2.0
// Inbound traffic of the engine: mailbox messages, beacons, and what comes
// back on links (HELLO_REQUEST, monitor events). Every input is untrusted:
// anything malformed is dropped and counted, never fatal.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <zmq.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "discovery/beacon_format.h"
#include "fabric/base/log.h"
#include "fabric/internal/engine.h"
#include "fabric/security/keys.h"

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
  // Secure mode: the User-Id libzmq attaches (the Z85 key ZAP admitted),
  // decoded once per run of messages from one sender.
  std::string last_user_id;
  std::string key;
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
    if (security_) {
      const char* user_id = zmq_msg_gets(payload.handle(), "User-Id");
      if (user_id == nullptr) {
        Bump(counters_.messages_unauthenticated);
        continue;
      }
      if (last_user_id != user_id) {
        absl::StatusOr<std::string> raw = security::DecodeZ85Key(user_id);
        if (!raw.ok()) {
          Bump(counters_.messages_unauthenticated);
          continue;
        }
        last_user_id = user_id;
        key = std::move(*raw);
      }
      // The roster may have lost this key since its handshake: ZAP is
      // asked once per connection, so revocation is enforced here.
      if (!KeyAdmitted(key)) continue;
    }
    HandleMailboxMessage(
        absl::string_view(routing_id.data<char>(), routing_id.size()),
        absl::string_view(payload.data<char>(), payload.size()), key);
  }
}

void Engine::HandleMailboxMessage(absl::string_view routing_id,
                                  absl::string_view payload,
                                  absl::string_view key) {
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
  if (security_) {
    // A NodeId belongs to the key its first HELLO came under: no member
    // may speak as another.
    auto bound = bound_keys_.find(env->sender);
    if (bound != bound_keys_.end() && bound->second != key) {
      Bump(counters_.messages_key_mismatch);
      FABRIC_LOG(kDebug, kSecurity, "FAB-SEC-KEY-MISMATCH ", options_.name,
                 ": key ", security::KeyFingerprint(key), " spoke as ",
                 env->sender.ShortHex());
      return;
    }
  }
  const MessageKind kind = static_cast<MessageKind>(env->kind);
  if (kind == MessageKind::kHello) {
    HandleHello(env->sender, env->body, key);
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

void Engine::HandleHello(const NodeId& sender, absl::string_view body,
                         absl::string_view key) {
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
  if (security_) {
    // An endpoint is served by one key: a HELLO naming another key's
    // mailbox (to replace or evict that member) is refused.
    bool taken = false;
    auto at = links_.find(hello->mailbox_endpoint);
    if (at != links_.end() && at->second->server_key != key) taken = true;
    for (const PeerInfo& p : peers_.Snapshot()) {
      if (p.mailbox_endpoint == hello->mailbox_endpoint &&
          p.public_key != key) {
        taken = true;
      }
    }
    if (taken) {
      Bump(counters_.messages_key_mismatch);
      FABRIC_LOG(kDebug, kSecurity, "FAB-SEC-KEY-MISMATCH ", options_.name,
                 ": key ", security::KeyFingerprint(key), " claimed ",
                 hello->mailbox_endpoint);
      return;
    }
    bound_keys_.emplace(hello->id, std::string(key));
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
  Link* link = EnsureLink(hello->mailbox_endpoint, /*seed=*/false, key);
  if (link != nullptr) {
    link->peer = hello->id;
    SyncDirect(*link);
  }
  Dispatch(peers_.OnHello(*hello, Now(), key));
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
    if (security_ &&
        (e.public_key.empty() || !roster_->Contains(e.public_key))) {
      // Only a key the roster holds may be connected to.
      Bump(counters_.gossip_unkeyed);
      continue;
    }
    EnsureLink(e.mailbox_endpoint, /*seed=*/false, e.public_key);
  }
}

size_t Engine::DrainBeacons() {
  size_t read = 0;
  for (; read < static_cast<size_t>(kMaxBatch); ++read) {
    absl::StatusOr<std::optional<discovery::Datagram>> datagram =
        beacon_->Receive();
    if (!datagram.ok()) {
      FABRIC_LOG(kWarning, kDiscovery, "FAB-BEACON-RECV ",
                 datagram.status().ToString());
      break;
    }
    if (!datagram->has_value()) break;
    HandleBeacon(**datagram);
  }
  return read;
}

void Engine::HandleBeacon(const discovery::Datagram& datagram) {
  if (security_) {
    HandleSignedBeacon(datagram);
    return;
  }
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
  ActOnBeacon(*beacon, datagram.source_address, {});
}

void Engine::HandleSignedBeacon(const discovery::Datagram& datagram) {
  discovery::BeaconReject reject = discovery::BeaconReject::kMalformed;
  absl::StatusOr<discovery::SignedBeacon> signed_beacon =
      discovery::DecodeSignedBeacon(datagram.payload, *beacon_auth_, &reject);
  if (!signed_beacon.ok()) {
    switch (reject) {
      case discovery::BeaconReject::kMalformed:
        Bump(counters_.beacons_malformed);
        break;
      case discovery::BeaconReject::kUnauthenticated:
        Bump(counters_.beacons_unauthenticated);
        break;
      case discovery::BeaconReject::kWrongVersion:
        Bump(counters_.beacons_wrong_version);
        break;
      case discovery::BeaconReject::kOtherCluster:
        Bump(counters_.beacons_other_cluster);
        break;
      case discovery::BeaconReject::kUnknownKeyId:
        Bump(counters_.beacons_unknown_key_id);
        break;
      case discovery::BeaconReject::kBadMac:
        Bump(counters_.beacons_bad_mac);
        break;
    }
    FABRIC_LOG(kDebug, kDiscovery, "FAB-BAD-BEACON from ",
               datagram.source_address, ": ", signed_beacon.status().message());
    return;
  }
  const discovery::SignedBeacon& b = *signed_beacon;
  if (b.beacon.id == id_) return;  // our own broadcast echoes back
  Bump(counters_.beacons_received);
  // Cheapest first, each counted (protocol.md, "Beacon v2").
  in_addr source{};
  if (inet_pton(AF_INET, datagram.source_address.c_str(), &source) != 1 ||
      ntohl(source.s_addr) != b.ipv4) {
    Bump(counters_.beacons_addr_mismatch);
    return;
  }
  if (!discovery::BeaconFresh(b.sent_time, absl::Now(),
                              options_.security.beacon_max_skew)) {
    Bump(counters_.beacons_stale);
    return;
  }
  if (!roster_->Contains(b.public_key)) {
    Bump(counters_.beacons_unknown_node_key);
    return;
  }
  auto bound = bound_keys_.find(b.beacon.id);
  if (bound != bound_keys_.end() && bound->second != b.public_key) {
    Bump(counters_.messages_key_mismatch);
    return;
  }
  // Last, so that only beacons that pass every other check move a node's
  // sequence (or take a slot of the bounded filter).
  if (!replay_.Accept(b.beacon.id, b.seq)) {
    Bump(counters_.beacons_replayed);
    return;
  }
  ActOnBeacon(b.beacon, datagram.source_address, b.public_key);
  peers_.NoteBeaconKeyId(b.beacon.id, b.key_id);
}

void Engine::ActOnBeacon(const discovery::Beacon& beacon_in,
                         const std::string& source_address,
                         absl::string_view key) {
  const discovery::Beacon* beacon = &beacon_in;
  const PeerInfo* known = peers_.Find(beacon->id);
  if (beacon->leaving()) {
    if (known != nullptr) Dispatch(peers_.Remove(beacon->id, "goodbye", Now()));
    return;
  }
  // A beacon of a known peer is its heartbeat (PeerTable::OnBeacon: it never
  // revives a dropped link). An unknown node gets a link; a newer state
  // version gets a HELLO_REQUEST.
  const std::string endpoint =
      absl::StrCat("tcp://", source_address, ":", beacon->mailbox_port);
  if (known == nullptr) {
    EnsureLink(endpoint, /*seed=*/false, key);
    return;
  }
  if (known->mailbox_endpoint == endpoint && LinkOf(beacon->id) == nullptr) {
    // Its link was closed for a key change or a refusal: make it again
    // (EnsureLink honours the backoff).
    Link* link = EnsureLink(endpoint, /*seed=*/false, key);
    if (link != nullptr) {
      link->peer = beacon->id;
      SyncDirect(*link);
    }
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
  // Cut short: the pipe is not empty, so ZMQ_FD will not signal again.
  FlagForRecheck(link);
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
    if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ||
        id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
        id == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
      int32_t value = 0;
      if (event.size() >= sizeof(uint16_t) + sizeof(int32_t)) {
        std::memcpy(&value, static_cast<const char*>(event.data()) + 2,
                    sizeof(value));
      }
      OnHandshakeFailed(link, id, value);
      if (link.closing) return;
    } else if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      backoff_.erase(link.endpoint);
      link.handshake_failures = 0;
      link.connected = true;
      timers_dirty_ = true;  // heartbeats are due on it from now
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
      // libzmq also reports a connection whose handshake failed or timed
      // out as disconnected. Only a link that was up going down starts the
      // peer's reconnect grace: a failed attempt says nothing new about the
      // peer (its beacons and messages still do), and under a burst of
      // CURVE handshakes on a loaded host it made live peers "dead".
      const bool was_connected = link.connected;
      FABRIC_LOG(kDebug, kNode, "FAB-LINK-DOWN ", options_.name, " -> ",
                 link.endpoint,
                 was_connected ? " (was up)" : " (handshake never finished)");
      link.connected = false;
      SyncDirect(link);
      if (was_connected && link.peer.has_value()) {
        Dispatch(peers_.OnDisconnected(*link.peer, Now()));
        timers_dirty_ = true;  // the reconnect grace
      }
    }
  }
  // Cut short: the pipe is not empty, so ZMQ_FD will not signal again.
  FlagForRecheck(link);
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
