// SPDX-License-Identifier: Apache-2.0
// Engine lifecycle, the poll loop and the NodeContext surface. Inbound
// traffic is in engine_io.cc, links and timers in engine_links.cc.
#include "fabric/internal/engine.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "discovery/interfaces.h"
#include "fabric/base/errno_status.h"
#include "fabric/base/log.h"
#include "fabric/base/status_macros.h"
#include "fabric/base/thread_name.h"

namespace fabric::node_internal {
namespace {

// How often links are swept and timers run. Bounds the extra latency of a
// handshake, a dropped connection or a heartbeat.
constexpr absl::Duration kSweepInterval = absl::Milliseconds(50);
// A loop iteration that starts this long after the previous one means this
// process was paused (SIGSTOP, swap, debugger).
constexpr absl::Duration kStallThreshold = absl::Seconds(1);
// libzmq allows 1023 sockets per context by default; each peer link costs 3.
constexpr int kMaxSockets = 16384;
// How long the secure start-up self-test waits for each handshake.
constexpr absl::Duration kSelfTestTimeout = absl::Seconds(3);

std::string BindEndpoint(const NodeOptions& o, const std::string& host) {
  return absl::StrCat(
      "tcp://", host, ":",
      o.mailbox_port == 0 ? std::string("*") : std::to_string(o.mailbox_port));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(NodeOptions options) {
  FABRIC_RETURN_IF_ERROR(ValidateNodeOptions(options));
  std::shared_ptr<security::NodeSecurity> secure;
  // Stamped before loading: an edit made while we load is seen by the
  // first periodic check.
  absl::StatusOr<security::RosterStamp> stamp =
      security::StatRoster(options.security.roster_dir);
  if (options.security.enabled()) {
    // Every key, the roster and the beacon secret are checked before
    // anything binds; any failure refuses to start (never plaintext).
    absl::StatusOr<std::shared_ptr<security::NodeSecurity>> loaded =
        security::LoadNodeSecurity(options);
    if (!loaded.ok()) {
      FABRIC_LOG(kError, kSecurity, loaded.status().message());
      return loaded.status();
    }
    secure = std::move(*loaded);
  }
  const NodeId id = NodeId::Random();
  if (options.name.empty()) options.name = "node-" + id.ShortHex();
  std::unique_ptr<Engine> engine(new Engine(std::move(options), id));
  const NodeOptions& o = engine->options_;
  if (secure) {
    engine->security_ = secure;
    engine->roster_ = secure->roster->Get();
    if (stamp.ok()) engine->roster_stamp_ = *stamp;
  }
  for (size_t i = 0; i < o.seeds.size(); ++i) {
    const std::string& text = o.seeds[i];
    engine->seeds_.push_back(
        {secure ? secure->seeds[i].first : text, text,
         secure ? secure->seeds[i].second : std::string()});
  }

  std::string host = "127.0.0.1";
  if (o.discovery != DiscoveryMode::kSeeds) {
    discovery::BeaconSocketOptions beacon;
    beacon.loopback = o.discovery == DiscoveryMode::kLoopback;
    beacon.interface = o.interface;
    beacon.port = o.beacon_port;
    FABRIC_ASSIGN_OR_RETURN(engine->beacon_,
                            discovery::BeaconSocket::Open(beacon));
    host = engine->beacon_->local_address();
    if (secure) {
      absl::StatusOr<discovery::BeaconAuthenticator> auth =
          discovery::BeaconAuthenticator::Create(
              secure->beacon.secrets, secure->beacon.primary, o.cluster);
      if (!auth.ok()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "FAB-SEC-BEACON-FORMAT ", o.security.beacon_secret_file, ": ",
            auth.status().message()));
      }
      engine->beacon_auth_.emplace(std::move(*auth));
      in_addr address{};
      if (inet_pton(AF_INET, host.c_str(), &address) != 1) {
        return absl::FailedPreconditionError(absl::StrCat(
            "FAB-SEC-BEACON-ADDRESS signed beacons need an IPv4 address, not ",
            host));
      }
      engine->beacon_ipv4_ = ntohl(address.s_addr);
    }
  } else if (!o.interface.empty()) {
    FABRIC_ASSIGN_OR_RETURN(discovery::InterfaceAddress iface,
                            discovery::LookupInterface(o.interface));
    host = iface.address;
  }

  try {
    engine->ctx_.set(zmq::ctxopt::max_sockets, kMaxSockets);
  } catch (const zmq::error_t& e) {
    return ZmqErrnoToStatus(e.num(), "zmq context");
  }
  if (secure) {
    // The handler runs before the mailbox binds: a CURVE server without one
    // in its context would admit any key (security-anchors.md 2.3).
    FABRIC_ASSIGN_OR_RETURN(
        engine->zap_,
        security::ZapHandler::Start(engine->ctx_, secure->roster, o.name));
  }
  FABRIC_ASSIGN_OR_RETURN(
      engine->mailbox_,
      MakeMailbox(engine->ctx_, engine->profile_, BindEndpoint(o, host),
                  secure ? &secure->keypair : nullptr));
  engine->mailbox_endpoint_ = engine->mailbox_.get(zmq::sockopt::last_endpoint);
  if (secure) {
    // Proven, not assumed: a stranger is refused and we are admitted,
    // before any beacon or link goes out.
    absl::Status tested = security::SelfTest(
        *engine->zap_, engine->mailbox_endpoint_, secure->keypair.public_key,
        secure->keypair, zmq::socket_type::dealer, kSelfTestTimeout);
    if (!tested.ok()) {
      FABRIC_LOG(kError, kSecurity, tested.message());
      return tested;
    }
  }
  const size_t colon = engine->mailbox_endpoint_.rfind(':');
  engine->mailbox_port_ = static_cast<uint16_t>(
      std::stoi(engine->mailbox_endpoint_.substr(colon + 1)));

  engine->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (engine->wake_fd_ < 0) {
    return ZmqErrnoToStatus(errno, "eventfd");
  }
  if (o.on_peer_event) {
    engine->dispatcher_ = std::make_unique<EventDispatcher>(o.on_peer_event);
  }
  return engine;
}

Engine::Engine(NodeOptions options, NodeId id)
    : options_(std::move(options)),
      id_(id),
      clock_(options_.clock != nullptr ? options_.clock : RealClock()),
      ctx_(1),
      peers_(LivenessOptions{
          options_.suspect_timeout, options_.dead_timeout,
          options_.disconnect_grace,
          std::max(absl::Seconds(30), 10 * options_.dead_timeout)}),
      headers_(options_.headers),
      rng_(std::hash<std::string>()(id.ToHex())) {
  profile_.max_message_bytes = options_.max_message_bytes;
  profile_.linger = options_.linger;
  profile_.zmtp_heartbeat = options_.dead_timeout;
  profile_.zmtp_timeout = options_.dead_timeout;
  cluster_hash_ = discovery::ClusterHash(options_.cluster);
}

Engine::~Engine() {
  Close();
  Join();
  // The engine thread closed its sockets in Shutdown if it ever started;
  // otherwise they close here, before the context (member order).
  links_.clear();
  mailbox_.close();
  if (wake_fd_ >= 0) close(wake_fd_);
  dispatcher_.reset();
}

void Engine::Start() {
  thread_ = std::thread([this] {
    SetCurrentThreadName("fab-engine");
    thread_id_.store(std::this_thread::get_id(), std::memory_order_release);
    Run();
  });
}

bool Engine::OnEngineThread() const {
  return thread_id_.load(std::memory_order_acquire) ==
         std::this_thread::get_id();
}

void Engine::Close() noexcept {
  {
    absl::MutexLock lock(&mu_);
    if (closing_) return;
    closing_ = true;
  }
  const uint64_t one = 1;
  ssize_t n = write(wake_fd_, &one, sizeof(one));
  (void)n;  // a full eventfd counter still wakes the loop
}

void Engine::Join() {
  {
    absl::MutexLock lock(&mu_);
    if (joined_) return;
    joined_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status Engine::Post(std::function<void(NodeContext&)> fn) {
  {
    absl::MutexLock lock(&mu_);
    if (closing_) {
      return absl::CancelledError(
          absl::StrCat("node ", options_.name, " is closed"));
    }
    commands_.push_back(std::move(fn));
  }
  const uint64_t one = 1;
  ssize_t n = write(wake_fd_, &one, sizeof(one));
  (void)n;
  return absl::OkStatus();
}

NodeStats Engine::Stats() const {
  auto get = [](const std::atomic<uint64_t>& a) {
    return a.load(std::memory_order_relaxed);
  };
  const Counters& c = counters_;
  NodeStats s;
  s.beacons_sent = get(c.beacons_sent);
  s.beacon_bytes_sent = get(c.beacon_bytes_sent);
  s.beacons_received = get(c.beacons_received);
  s.beacons_malformed = get(c.beacons_malformed);
  s.beacons_wrong_version = get(c.beacons_wrong_version);
  s.beacons_other_cluster = get(c.beacons_other_cluster);
  s.messages_received = get(c.messages_received);
  s.messages_sent = get(c.messages_sent);
  s.messages_malformed = get(c.messages_malformed);
  s.messages_wrong_version = get(c.messages_wrong_version);
  s.messages_other_cluster = get(c.messages_other_cluster);
  s.messages_unknown_sender = get(c.messages_unknown_sender);
  s.messages_unknown_kind = get(c.messages_unknown_kind);
  s.heartbeats_sent = get(c.heartbeats_sent);
  s.peers_joined = get(c.peers_joined);
  s.peers_left = get(c.peers_left);
  s.local_stalls = get(c.local_stalls);
  s.beacons_unauthenticated = get(c.beacons_unauthenticated);
  s.beacons_unknown_key_id = get(c.beacons_unknown_key_id);
  s.beacons_bad_mac = get(c.beacons_bad_mac);
  s.beacons_addr_mismatch = get(c.beacons_addr_mismatch);
  s.beacons_stale = get(c.beacons_stale);
  s.beacons_replayed = get(c.beacons_replayed);
  s.beacons_unknown_node_key = get(c.beacons_unknown_node_key);
  s.messages_unauthenticated = get(c.messages_unauthenticated);
  s.messages_key_mismatch = get(c.messages_key_mismatch);
  s.messages_revoked_key = get(c.messages_revoked_key);
  s.gossip_unkeyed = get(c.gossip_unkeyed);
  s.handshakes_failed_auth = get(c.handshakes_failed_auth);
  s.handshakes_failed_protocol = get(c.handshakes_failed_protocol);
  s.handshakes_failed_other = get(c.handshakes_failed_other);
  s.roster_reloads = get(c.roster_reloads);
  s.roster_reload_errors = get(c.roster_reload_errors);
  s.keys_revoked = get(c.keys_revoked);
  if (zap_) {
    const security::ZapStats z = zap_->Stats();
    s.zap_allowed = z.allowed;
    s.zap_denied = z.denied_unknown_key + z.denied_mechanism + z.denied_domain +
                   z.malformed;
    s.zap_running = zap_->running();
  }
  return s;
}

void Engine::Run() {
  const absl::Time now = Now();
  last_iteration_ = now;
  next_beacon_ = now;  // the first beacon goes out at once
  next_sweep_ = now;
  next_gossip_ = now + options_.beacon_interval;
  next_roster_check_ = now + options_.security.roster_check_interval;
  for (const Seed& seed : seeds_) {
    if (seed.endpoint != mailbox_endpoint_) {
      EnsureLink(seed.endpoint, /*seed=*/true, seed.key);
    }
  }
  FABRIC_LOG(kInfo, kNode, "FAB-NODE-START ", options_.name, " ", id_.ToHex(),
             " ", mailbox_endpoint_, " cluster=", options_.cluster,
             " discovery=", DiscoveryModeName(options_.discovery), " security=",
             SecurityModeName(options_.security.enabled() ? SecurityMode::kCurve
                                                          : SecurityMode::kOff),
             security_
                 ? absl::StrCat(" key=", security::KeyFingerprint(
                                             security_->keypair.public_key))
                 : std::string());
  while (!stop_) RunOnce();
  Shutdown();
}

void Engine::RunOnce() {
  // Each wake-up polls only the sockets that carry traffic: the command
  // eventfd, the mailbox and the beacon socket. Links (a DEALER and a
  // monitor per peer) see rare events (handshake, drop, HELLO_REQUEST), so
  // they are swept with the timers every kSweepInterval. Polling two sockets
  // per peer on every incoming heartbeat made the cost grow with the square
  // of the peer count, and 100 nodes on one host starved each other.
  zmq::pollitem_t items[3] = {
      {nullptr, wake_fd_, ZMQ_POLLIN, 0},
      {mailbox_.handle(), 0, ZMQ_POLLIN, 0},
      {nullptr, beacon_ ? beacon_->fd() : -1, ZMQ_POLLIN, 0}};
  const size_t count = beacon_ ? 3 : 2;
  // Rounded up to whole milliseconds (poll's unit): rounding down woke the
  // loop early and then spun with zero timeouts until the deadline.
  const absl::Duration wait =
      std::max(std::min(next_sweep_, wake_at_) - Now(), absl::ZeroDuration());
  try {
    zmq::poll(items, count,
              std::chrono::milliseconds(absl::ToInt64Milliseconds(
                  absl::Ceil(wait, absl::Milliseconds(1)))));
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) {
      FABRIC_LOG(kError, kNode, "FAB-POLL-ERROR ", e.what());
    }
    return;
  }

  const absl::Time now = Now();
  if (now - last_iteration_ > kStallThreshold) {
    // We were paused; the silence we measured is ours, not the peers'.
    counters_.local_stalls.fetch_add(1, std::memory_order_relaxed);
    FABRIC_LOG(kWarning, kNode, "FAB-LOCAL-STALL ", options_.name,
               " paused for ", absl::FormatDuration(now - last_iteration_));
    peers_.ForgiveSilence(now);
    next_beacon_ = now;
  }
  last_iteration_ = now;

  if (items[0].revents & ZMQ_POLLIN) DrainCommands();
  if (items[1].revents & ZMQ_POLLIN) DrainMailbox();
  if (count == 3 && (items[2].revents & ZMQ_POLLIN)) DrainBeacons();
  if (now >= next_sweep_) {
    next_sweep_ = now + kSweepInterval;
    if (now >= wake_at_) wake_at_ = absl::InfiniteFuture();  // ticks below
    SweepLinks();
    OnTimers(now);
    ReapLinks();
  } else if (now >= wake_at_) {
    wake_at_ = absl::InfiniteFuture();
    for (auto& plugin : plugins_) plugin->OnTick(*this, now);
  }
}

void Engine::SweepLinks() {
  if (links_.empty()) return;
  std::vector<zmq::pollitem_t> items;
  std::vector<Link*> polled;
  items.reserve(2 * links_.size());
  polled.reserve(links_.size());
  for (auto& [endpoint, link] : links_) {
    polled.push_back(link.get());
    items.push_back({link->dealer.handle(), 0, ZMQ_POLLIN, 0});
    items.push_back({link->monitor.handle(), 0, ZMQ_POLLIN, 0});
  }
  try {
    absl::MutexLock lock(&link_mu_);
    if (zmq::poll(items.data(), items.size(), std::chrono::milliseconds(0)) ==
        0) {
      return;
    }
  } catch (const zmq::error_t& e) {
    return;  // EINTR: the next sweep looks again
  }
  // Handling an event may add links (EnsureLink) or mark some closing, but
  // never frees one before ReapLinks, so `polled` stays valid.
  for (size_t i = 0; i < polled.size(); ++i) {
    Link& link = *polled[i];
    if (link.closing) continue;
    if (items[2 * i + 1].revents & ZMQ_POLLIN) DrainMonitor(link);
    if (items[2 * i].revents & ZMQ_POLLIN) DrainLink(link);
  }
}

void Engine::DrainCommands() {
  uint64_t count = 0;
  ssize_t n = read(wake_fd_, &count, sizeof(count));
  (void)n;  // EAGAIN just means another wake already drained it
  std::deque<std::function<void(NodeContext&)>> commands;
  {
    absl::MutexLock lock(&mu_);
    commands.swap(commands_);
    if (closing_) stop_ = true;
  }
  for (auto& fn : commands) fn(*this);
}

void Engine::Shutdown() {
  for (auto& plugin : plugins_) plugin->OnDetach(*this);
  const std::string goodbye = EncodeEnvelope(MessageKind::kGoodbye, id_, "");
  for (auto& [endpoint, link] : links_) {
    if (link->peer.has_value()) SendOnLink(*link, goodbye);
  }
  if (beacon_) SendBeacon(/*leaving=*/true);
  {
    // From here no other thread reaches a link (SendDirect fails).
    absl::MutexLock lock(&link_mu_);
    direct_.clear();
  }
  // Sockets close on the thread that used them; each flushes for at most
  // `linger`, which bounds shutdown.
  for (auto& [endpoint, link] : links_) {
    zmq_socket_monitor(link->dealer.handle(), nullptr, 0);
  }
  links_.clear();
  mailbox_.close();
  beacon_.reset();
  // Commands posted after the loop stopped are dropped; their callers saw
  // kCancelled or get it now through their own deadlines.
  absl::MutexLock lock(&mu_);
  commands_.clear();
  FABRIC_LOG(kInfo, kNode, "FAB-NODE-STOP ", options_.name, " ", id_.ToHex());
}

absl::Status Engine::CheckPatternKind(uint16_t kind) {
  if (kind < kFirstPatternKind) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kind ", kind,
        " is reserved for the core (patterns use >= ", kFirstPatternKind, ")"));
  }
  return absl::OkStatus();
}

absl::Status Engine::Send(const NodeId& peer, uint16_t kind,
                          absl::string_view body) {
  FABRIC_RETURN_IF_ERROR(CheckPatternKind(kind));
  if (peers_.Find(peer) == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no peer ", peer.ShortHex(), " known to ", options_.name));
  }
  Link* link = LinkOf(peer);
  if (link == nullptr || !link->connected) {
    return absl::UnavailableError(
        absl::StrCat("link to peer ", peer.ShortHex(), " is down"));
  }
  if (!SendOnLink(*link, EncodeEnvelope(kind, id_, body))) {
    return absl::ResourceExhaustedError(
        absl::StrCat("send queue to peer ", peer.ShortHex(), " is full"));
  }
  return absl::OkStatus();
}

absl::Status Engine::SetOffer(absl::string_view kind, absl::string_view name,
                              bool offered) {
  if (kind.empty() || name.empty() || kind.size() > kMaxStringBytes ||
      name.size() > kMaxStringBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "offer kind and name must be 1..", kMaxStringBytes, " bytes"));
  }
  const std::string k(kind);
  const std::string n(name);
  if (!offered) {
    auto it = offers_.find(k);
    if (it == offers_.end() || it->second.erase(n) == 0) {
      return absl::OkStatus();
    }
    if (it->second.empty()) offers_.erase(it);
    BumpStateVersion();
    return absl::OkStatus();
  }
  if (offers_.count(k) > 0 && offers_[k].count(n) > 0) return absl::OkStatus();
  offers_[k].insert(n);
  absl::Status fits = CheckHelloLimits();
  if (!fits.ok()) {
    offers_[k].erase(n);
    if (offers_[k].empty()) offers_.erase(k);
    return fits;
  }
  BumpStateVersion();
  return absl::OkStatus();
}

absl::Status Engine::SetHeader(absl::string_view key, absl::string_view value) {
  if (key.empty() || key.size() > kMaxStringBytes ||
      value.size() > kMaxStringBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("header key must be 1..", kMaxStringBytes,
                     " bytes, value at most ", kMaxStringBytes));
  }
  const std::string k(key);
  if (value.empty()) {
    if (headers_.erase(k) > 0) BumpStateVersion();
    return absl::OkStatus();
  }
  auto it = headers_.find(k);
  if (it != headers_.end() && it->second == value) return absl::OkStatus();
  const Headers before = headers_;
  headers_[k] = std::string(value);
  absl::Status fits = CheckHelloLimits();
  if (!fits.ok()) {
    headers_ = before;
    return fits;
  }
  BumpStateVersion();
  return absl::OkStatus();
}

absl::Status Engine::CheckHelloLimits() const {
  if (headers_.size() > kMaxHeaders) {
    return absl::ResourceExhaustedError(
        absl::StrCat("more than ", kMaxHeaders, " headers"));
  }
  if (offers_.size() > kMaxOfferKinds) {
    return absl::ResourceExhaustedError(
        absl::StrCat("more than ", kMaxOfferKinds, " offer kinds"));
  }
  size_t bytes = 1024;  // fixed fields and msgpack framing, generously
  for (const auto& [kind, names] : offers_) {
    if (names.size() > kMaxOffersPerKind) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "more than ", kMaxOffersPerKind, " offers of kind ", kind));
    }
    bytes += kind.size() + 8;
    for (const std::string& n : names) bytes += n.size() + 8;
  }
  for (const auto& [k, v] : headers_) bytes += k.size() + v.size() + 16;
  if (bytes > options_.max_message_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "HELLO of about ", bytes, " bytes exceeds max_message_bytes"));
  }
  return absl::OkStatus();
}

void Engine::BumpStateVersion() {
  ++state_version_;
  hello_wire_.clear();
  BroadcastHello();
  next_beacon_ = Now();  // the beacon carries the new version at once too
}

const PeerInfo* Engine::FindPeer(const NodeId& id) const {
  return peers_.Find(id);
}

std::vector<PeerInfo> Engine::Peers() const { return peers_.Snapshot(); }

absl::Status Engine::Attach(std::shared_ptr<Plugin> plugin) {
  const std::vector<uint16_t> kinds = plugin->kinds();
  for (uint16_t kind : kinds) {
    if (kind < kFirstPatternKind) {
      return absl::InvalidArgumentError(
          absl::StrCat("plugin kind ", kind, " is below ", kFirstPatternKind));
    }
    if (kind_owner_.contains(kind)) {
      return absl::AlreadyExistsError(
          absl::StrCat("message kind ", kind, " already has a plugin"));
    }
  }
  for (uint16_t kind : kinds) kind_owner_[kind] = plugin.get();
  plugins_.push_back(plugin);
  plugin->OnAttach(*this);
  return absl::OkStatus();
}

std::shared_ptr<Plugin> Engine::PluginOwning(uint16_t kind) const {
  auto it = kind_owner_.find(kind);
  if (it == kind_owner_.end()) return nullptr;
  for (const std::shared_ptr<Plugin>& p : plugins_) {
    if (p.get() == it->second) return p;
  }
  return nullptr;
}

void Engine::Dispatch(std::vector<PeerEvent> events) {
  for (PeerEvent& event : events) {
    const PeerInfo& p = event.peer;
    FABRIC_LOG(kInfo, kNode, "FAB-PEER-", PeerEventTypeName(event.type), " ",
               options_.name, " sees ", p.name, " ", p.id.ShortHex(), " ",
               p.mailbox_endpoint, " (", event.reason, ")");
    if (event.type == PeerEventType::kJoined) {
      counters_.peers_joined.fetch_add(1, std::memory_order_relaxed);
      if (options_.discovery == DiscoveryMode::kSeeds ||
          p.discovery == DiscoveryModeName(DiscoveryMode::kSeeds)) {
        // A newcomer learns everyone we know as soon as our link to it is up
        // (IMMEDIATE would drop a send on a link still connecting). A
        // beacon-mode node does this for seeds-mode peers too, so it can be
        // the seed of nodes that cannot broadcast.
        Link* link = LinkOf(p.id);
        if (link != nullptr && link->connected) {
          SendGossip(p.id, GossipList(p.id));
        } else if (link != nullptr) {
          link->gossip_pending = true;
        }
      }
    } else if (event.type == PeerEventType::kLeft) {
      counters_.peers_left.fetch_add(1, std::memory_order_relaxed);
      // The id stays bound to its key while tombstoned (CheckRoster prunes
      // it after): a peer declared dead and back keeps its identity.
      Link* link = FindLink(p.mailbox_endpoint);
      if (link != nullptr && link->peer == p.id) {
        link->peer.reset();
        SyncDirect(*link);
        if (!link->seed) CloseLink(*link);
      }
    }
    for (auto& plugin : plugins_) plugin->OnPeerEvent(*this, event);
    if (dispatcher_) dispatcher_->Push(std::move(event));
  }
}

}  // namespace fabric::node_internal
