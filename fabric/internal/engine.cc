// SPDX-License-Identifier: Apache-2.0
// Engine lifecycle, the poll loop and the NodeContext surface. Inbound
// traffic is in engine_io.cc, links and timers in engine_links.cc.
#include "fabric/internal/engine.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "discovery/interfaces.h"
#include "fabric/base/errno_status.h"
#include "fabric/base/log.h"
#include "fabric/base/status_macros.h"
#include "fabric/base/thread_name.h"

namespace fabric::node_internal {
namespace {

// The loop sleeps until a socket is ready or a timer is due (NextWake),
// and never longer than this: it bounds what a libzmq signal consumed by
// another thread's send (Link::recheck) can delay, and lets a test's fake
// clock be read again.
constexpr absl::Duration kMaxWait = absl::Seconds(1);
// Plugins are ticked this often while any is attached (plugin.h).
constexpr absl::Duration kPluginTickInterval = absl::Milliseconds(50);
// The core timers (beacons, liveness, PINGs, gossip, backoffs, batched
// beacon reads) fire on a grid of this many milliseconds at most (a
// quarter of the heartbeat or beacon interval if less), so timers that
// fall into one slot share one wake-up. Timeouts are late by a slot at
// most; plugin wake-ups are never rounded.
constexpr absl::Duration kMaxTimerSlot = absl::Milliseconds(250);
// A wake-up caused by beacons leaves the beacon socket unwatched until the
// next slot (and again while each look finds more): 100 peers' beacons
// then cost four wake-ups a second, not 100. Discovery and beacon
// heartbeats are a slot later at most.
constexpr absl::Duration kMinBeaconBatch = absl::Milliseconds(10);
// How soon a link another thread sent on is looked at (Link::recheck).
constexpr absl::Duration kRecheckDelay = absl::Milliseconds(50);
// Every link is polled this often anyway: a safety net under the
// event-driven path, costing one zmq_poll over all links (at 2 s it was a
// quarter of an idle 100-peer node's CPU).
constexpr absl::Duration kFullSweepInterval = absl::Seconds(10);
// epoll tags of the fixed descriptors. A link's tag is its address (8-byte
// aligned, so never one of these), plus 1 for its monitor.
constexpr uint64_t kTagWake = 1;
constexpr uint64_t kTagMailbox = 2;
constexpr uint64_t kTagBeacon = 4;
constexpr int kMaxEpollEvents = 256;
// ZMTP PING interval (and timeout) on the node's TCP links, at least.
constexpr absl::Duration kZmtpHeartbeat = absl::Seconds(60);
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
  engine->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (engine->epoll_fd_ < 0) {
    return ZmqErrnoToStatus(errno, "epoll_create1");
  }
  int mailbox_fd = -1;
  try {
    mailbox_fd = engine->mailbox_.get(zmq::sockopt::fd);
  } catch (const zmq::error_t& e) {
    return ZmqErrnoToStatus(e.num(), "mailbox ZMQ_FD");
  }
  if (!engine->Watch(EPOLL_CTL_ADD, engine->wake_fd_, kTagWake, EPOLLIN) ||
      !engine->Watch(EPOLL_CTL_ADD, mailbox_fd, kTagMailbox, EPOLLIN) ||
      (engine->beacon_ && !engine->Watch(EPOLL_CTL_ADD, engine->beacon_->fd(),
                                         kTagBeacon, EPOLLIN))) {
    return absl::InternalError("epoll_ctl failed (logged)");
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
  // Peer death is the engine's business (beacons, PINGs, dropped
  // connections: a dead peer's link is closed); ZMTP heartbeats only reap
  // half-open TCP connections, so they can be slow. At the dead timeout
  // they were most of an idle mesh's cost: 100 peers meant 200 connection
  // timers firing every 3 s in each node's I/O thread.
  profile_.zmtp_heartbeat = std::max(kZmtpHeartbeat, options_.dead_timeout);
  profile_.zmtp_timeout = profile_.zmtp_heartbeat;
  // Data sent into a dead connection is noticed as fast as the old 3 s
  // ZMTP timeout noticed it, by the kernel.
  profile_.tcp_maxrt = options_.dead_timeout;
  cluster_hash_ = discovery::ClusterHash(options_.cluster);
  slot_ = std::clamp(
      std::min(options_.heartbeat_interval, options_.beacon_interval) / 4,
      absl::Milliseconds(1), kMaxTimerSlot);
}

Engine::~Engine() {
  Close();
  Join();
  // The engine thread closed its sockets in Shutdown if it ever started;
  // otherwise they close here, before the context (member order).
  links_.clear();
  mailbox_.close();
  if (wake_fd_ >= 0) close(wake_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
  dispatcher_.reset();
}

bool Engine::Watch(int op, int fd, uint64_t tag, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = tag;
  if (epoll_ctl(epoll_fd_, op, fd, op == EPOLL_CTL_DEL ? nullptr : &ev) == 0) {
    return true;
  }
  FABRIC_LOG(kError, kNode, "FAB-EPOLL ", options_.name, " op ", op, " fd ", fd,
             ": ", std::strerror(errno));
  return false;
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
  s.loop_wakeups = get(c.loop_wakeups);
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
  next_timers_ = now;
  next_plugin_tick_ = now;
  next_full_sweep_ = now + kFullSweepInterval;
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

absl::Time Engine::NextWake(absl::Time now) const {
  absl::Time wake = std::min(next_timers_, beacon_rearm_at_);
  wake = std::min(wake, next_full_sweep_);
  if (wake != absl::InfiniteFuture()) {
    // Up to the slot boundary, measured from the Unix epoch so that every
    // timer (and every node's clock) shares the grid.
    wake = absl::UnixEpoch() + absl::Ceil(wake - absl::UnixEpoch(), slot_);
  }
  wake = std::min(wake, wake_at_);
  if (!plugins_.empty()) wake = std::min(wake, next_plugin_tick_);
  if (timers_dirty_ || reap_pending_) wake = now;
  if (links_recheck_.load(std::memory_order_relaxed)) {
    wake = std::min(wake, now + kRecheckDelay);
  }
  return wake;
}

bool Engine::MailboxReadable() {
  try {
    return (mailbox_.get(zmq::sockopt::events) & ZMQ_POLLIN) != 0;
  } catch (const zmq::error_t& e) {
    return false;  // EINTR: the next iteration looks again
  }
}

void Engine::RunOnce() {
  // The loop sleeps in epoll until a descriptor is ready or the earliest
  // timer is due, so its cost follows traffic, not time or the peer count.
  // Each ZeroMQ socket is watched through its ZMQ_FD, which only says that
  // the socket's state may have changed: ZMQ_EVENTS then tells whether a
  // message is there (the mailbox is asked on every iteration, which also
  // covers a drain cut short by its batch limit).
  const absl::Time before = Now();
  absl::Duration wait =
      std::clamp(NextWake(before) - before, absl::ZeroDuration(), kMaxWait);
  if (MailboxReadable()) wait = absl::ZeroDuration();
  epoll_event events[kMaxEpollEvents];
  // Rounded up to whole milliseconds (epoll's unit): rounding down woke the
  // loop early and then spun with zero timeouts until the deadline.
  int n = epoll_wait(epoll_fd_, events, kMaxEpollEvents,
                     static_cast<int>(absl::ToInt64Milliseconds(
                         absl::Ceil(wait, absl::Milliseconds(1)))));
  if (n < 0) {
    if (errno != EINTR) {
      FABRIC_LOG(kError, kNode, "FAB-POLL-ERROR ", std::strerror(errno));
    }
    n = 0;
  }
  counters_.loop_wakeups.fetch_add(1, std::memory_order_relaxed);

  const absl::Time now = Now();
  // Time neither spent in a planned wait nor explained by one: the last
  // iteration's work, and any overshoot of this wait.
  const absl::Duration unplanned =
      (before - last_iteration_) +
      std::max(now - (before + wait), absl::ZeroDuration());
  if (unplanned > kStallThreshold) {
    // We were paused; the silence we measured is ours, not the peers'.
    counters_.local_stalls.fetch_add(1, std::memory_order_relaxed);
    FABRIC_LOG(kWarning, kNode, "FAB-LOCAL-STALL ", options_.name,
               " paused for ", absl::FormatDuration(unplanned));
    peers_.ForgiveSilence(now);
    next_beacon_ = now;
    timers_dirty_ = true;
  }
  last_iteration_ = now;

  bool beacons = false;
  for (int i = 0; i < n; ++i) {
    const uint64_t tag = events[i].data.u64;
    if (tag == kTagWake) DrainCommands();
    if (tag == kTagBeacon) beacons = true;
  }
  for (int i = 0; i < n; ++i) {
    const uint64_t tag = events[i].data.u64;
    if (tag != kTagWake && tag != kTagBeacon && tag != kTagMailbox) {
      // Links are freed only in ReapLinks, at the end of an iteration.
      Link* link = reinterpret_cast<Link*>(tag & ~uint64_t{1});
      if (!link->closing) PollLink(*link, (tag & 1) != 0);
    }
  }
  if (MailboxReadable()) DrainMailbox();
  if (beacon_ && (beacons || now >= beacon_rearm_at_)) {
    const size_t read = DrainBeacons();
    if (beacons || read > 0) {
      // Unwatched for a while: the next ones are read in one batch.
      if (beacon_rearm_at_ == absl::InfiniteFuture()) {
        (void)Watch(EPOLL_CTL_MOD, beacon_->fd(), kTagBeacon, 0);  // logged
      }
      beacon_rearm_at_ = now + kMinBeaconBatch;  // then the next slot
    } else if (Watch(EPOLL_CTL_MOD, beacon_->fd(), kTagBeacon, EPOLLIN)) {
      beacon_rearm_at_ = absl::InfiniteFuture();
    } else {
      beacon_rearm_at_ = now + kMinBeaconBatch;  // logged; read by timer
    }
  }
  if (now >= next_full_sweep_) {
    next_full_sweep_ = now + kFullSweepInterval;
    SweepLinks();
  }
  if (now >= next_timers_) {
    OnTimers(now);
    timers_dirty_ = true;
  }
  const bool wake_due = now >= wake_at_;
  if (wake_due) wake_at_ = absl::InfiniteFuture();  // asked again in OnTick
  if (!plugins_.empty() && (wake_due || now >= next_plugin_tick_)) {
    next_plugin_tick_ = now + kPluginTickInterval;
    for (auto& plugin : plugins_) plugin->OnTick(*this, now);
  }
  // Last: every send above may have consumed a link's signal.
  RecheckLinks();
  if (reap_pending_) ReapLinks();
  if (timers_dirty_) {
    timers_dirty_ = false;
    next_timers_ = TimersDeadline(now);
  }
}

void Engine::PollLink(Link& link, bool monitor) {
  if (monitor) {
    int events = 0;
    try {
      events = link.monitor.get(zmq::sockopt::events);
    } catch (const zmq::error_t& e) {
      return;  // EINTR: the next sweep looks again
    }
    if (events & ZMQ_POLLIN) DrainMonitor(link);
    return;
  }
  int events = 0;
  try {
    absl::MutexLock lock(&link_mu_);
    events = link.dealer.get(zmq::sockopt::events);
  } catch (const zmq::error_t& e) {
    return;
  }
  if (events & ZMQ_POLLIN) DrainLink(link);
}

void Engine::RecheckLinks() {
  if (!links_recheck_.exchange(false)) return;
  // Collected first: handling an event may add links (never free one).
  std::vector<Link*> flagged;
  for (auto& [endpoint, link] : links_) {
    if (link->recheck.exchange(false)) flagged.push_back(link.get());
  }
  for (Link* link : flagged) {
    if (!link->closing) PollLink(*link, /*monitor=*/true);
    if (!link->closing) PollLink(*link, /*monitor=*/false);
  }
  // The sends in DrainLink (HELLOs) set flags again; they are looked at
  // after the next wake-up, within kRecheckDelay.
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
  timers_dirty_ = true;
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
  // A peer that joined, dropped or went suspect may have an earlier
  // liveness deadline than the loop planned for.
  if (!events.empty()) timers_dirty_ = true;
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
      // A seed's link is closed too, and remade by the timers
      // (RetryRefused): its new handshake sends HELLO and HELLO_REQUEST,
      // so a seed that buried us while we were cut off hears from us
      // again. An idle link kept open would carry nothing that heals it.
      Link* link = FindLink(p.mailbox_endpoint);
      if (link != nullptr && link->peer == p.id) {
        link->peer.reset();
        SyncDirect(*link);
        CloseLink(*link);
      }
    }
    for (auto& plugin : plugins_) plugin->OnPeerEvent(*this, event);
    if (dispatcher_) dispatcher_->Push(std::move(event));
  }
}

}  // namespace fabric::node_internal
