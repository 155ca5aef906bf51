// SPDX-License-Identifier: Apache-2.0
#include "tools/relay/relay.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "fabric/base/log.h"
#include "fabric/base/node_id.h"
#include "fabric/base/status_macros.h"
#include "fabric/base/thread_name.h"
#include "fabric/node.h"
#include "patterns/pubsub/publisher.h"
#include "patterns/pubsub/subscriber.h"
#include "patterns/reqrep/server.h"
#include "patterns/work_queue/producer.h"
#include "patterns/work_queue/worker.h"

namespace fabric::relay {
namespace {

constexpr const char* kDirectionNames[2] = {"a_to_b", "b_to_a"};
constexpr const char* kDirectionDirs[2] = {"a2b", "b2a"};
constexpr absl::Duration kTick = absl::Milliseconds(100);
constexpr absl::Duration kSpoolSizeEvery = absl::Seconds(2);
// How far a forward held back by flow control extends its task's lease.
constexpr absl::Duration kHoldExtension = absl::Seconds(30);

uint64_t DirectoryBytes(const std::string& dir) {
  std::error_code ec;
  uint64_t total = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator();
       it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      const uintmax_t size = it->file_size(size_ec);
      if (!size_ec) total += size;
    }
  }
  return total;
}

bool IsRelay(const PeerInfo* peer) {
  return peer == nullptr || peer->headers.contains(kRelayHeader);
}

absl::Status Validate(const RelayOptions& o) {
  if (o.name.empty() || o.name.size() > 64) {
    return absl::InvalidArgumentError("relay name must be 1..64 bytes");
  }
  if (o.queues.empty() && o.topics.empty()) {
    return absl::InvalidArgumentError(
        "nothing to forward: name at least one queue or topic prefix");
  }
  if ((!o.queues.empty() || !o.durable_topics.empty()) && o.state_dir.empty()) {
    return absl::InvalidArgumentError(
        "forwarding queues or durable topics needs a state directory");
  }
  if (o.a.cluster == o.b.cluster && o.a.discovery == o.b.discovery &&
      o.a.beacon_port == o.b.beacon_port && o.a.interface == o.b.interface &&
      o.a.seeds == o.b.seeds) {
    return absl::InvalidArgumentError(
        "sides a and b are the same discovery domain: give them different "
        "clusters, beacon ports, interfaces or seeds");
  }
  if (o.queue_concurrency < 1 || o.queue_concurrency > 1024) {
    return absl::InvalidArgumentError("queue concurrency must be 1..1024");
  }
  if (o.max_backlog == 0) {
    return absl::InvalidArgumentError("max backlog must be at least 1");
  }
  for (const std::string& t : o.durable_topics) {
    bool covered = false;
    for (const std::string& p : o.topics) covered |= absl::StartsWith(t, p);
    if (!covered) {
      return absl::InvalidArgumentError(absl::StrCat(
          "durable topic '", t, "' is not under any forwarded prefix"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

class Relay::Impl {
 public:
  explicit Impl(RelayOptions options)
      : options_(std::move(options)), relay_id_(NodeId::Random().ToHex()) {
    if (options_.bridge.empty()) {
      // Sorted, so relays configured with the sides swapped agree.
      options_.bridge = std::min(options_.a.cluster, options_.b.cluster) + "/" +
                        std::max(options_.a.cluster, options_.b.cluster);
    }
  }

  ~Impl() { Close(); }

  absl::Status Start();
  void Close();
  RelayStats Stats() const;

  std::string mailbox(char side) const {
    return nodes_[side == 'a' ? 0 : 1]->mailbox_endpoint();
  }
  const std::string& relay_id() const { return relay_id_; }
  Node& node(char side) const { return *nodes_[side == 'a' ? 0 : 1]; }

 private:
  // One queue in one direction: a worker on the sending side (while the
  // receiving side has workers) feeding a spooled producer on the other.
  struct QueueLane {
    std::string queue;
    int dir = 0;
    std::string spool_dir;
    std::unique_ptr<Producer> producer;
    std::unique_ptr<Worker> worker;  // control thread only
    absl::Time idle_since = absl::InfiniteFuture();
    std::atomic<bool> taking{false};
    std::atomic<uint64_t> in{0};
    std::atomic<uint64_t> errors{0};
    std::atomic<uint64_t> spool_bytes{0};
  };
  // One forwarded prefix in one direction.
  struct TopicLane {
    std::string prefix;
    int dir = 0;
    std::atomic<uint64_t> in{0};
    std::atomic<uint64_t> out{0};
    std::atomic<uint64_t> dropped{0};
    std::atomic<uint64_t> looped{0};
    std::atomic<uint64_t> standby{0};
  };

  Node& source(int dir) const { return *nodes_[dir]; }
  Node& dest(int dir) const { return *nodes_[1 - dir]; }

  absl::Status StartNodes();
  absl::Status StartQueues();
  absl::Status StartTopics();
  absl::Status StartStatsServers();
  Outcome Forward(QueueLane& lane, const Task& task, TaskContext& ctx);
  void OnMessage(int dir, const Message& message);
  TopicLane* MatchTopic(int dir, const std::string& topic);
  void ControlLoop();
  void UpdateLanes(absl::Time now, bool measure_spools);
  void UpdateForwarders();

  RelayOptions options_;
  const std::string relay_id_;
  std::unique_ptr<Node> nodes_[2];
  std::vector<std::unique_ptr<QueueLane>> queues_;
  std::vector<std::unique_ptr<TopicLane>> topics_;  // longest prefix first
  std::unique_ptr<Publisher> publishers_[2];
  std::unique_ptr<Subscriber> subscribers_[2];
  std::atomic<bool> forwarding_[2] = {false, false};
  std::unique_ptr<Server> stats_servers_[2];
  std::atomic<bool> closing_{false};
  absl::Notification stop_;
  std::thread control_;
  absl::Mutex close_mu_;
  bool closed_ ABSL_GUARDED_BY(close_mu_) = false;
};

absl::Status Relay::Impl::StartNodes() {
  NodeOptions* sides[2] = {&options_.a, &options_.b};
  for (int i = 0; i < 2; ++i) {
    NodeOptions o = *sides[i];
    o.name = options_.name;
    o.headers[kRelayHeader] = relay_id_;
    o.headers[kBridgeHeader] = options_.bridge;
    o.on_peer_event = nullptr;
    absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(std::move(o));
    if (!node.ok()) {
      return absl::Status(node.status().code(),
                          absl::StrCat("side ", i == 0 ? "a" : "b", ": ",
                                       node.status().message()));
    }
    nodes_[i] = std::move(*node);
  }
  return absl::OkStatus();
}

absl::Status Relay::Impl::StartQueues() {
  for (const std::string& queue : options_.queues) {
    for (int dir = 0; dir < 2; ++dir) {
      auto lane = std::make_unique<QueueLane>();
      lane->queue = queue;
      lane->dir = dir;
      lane->spool_dir =
          absl::StrCat(options_.state_dir, "/queues/", kDirectionDirs[dir], "/",
                       EscapeDirName(queue));
      ProducerOptions p;
      p.queue = queue;
      p.spool_dir = lane->spool_dir;
      p.fsync = options_.fsync;
      p.lease = options_.lease;
      p.max_attempts = options_.max_attempts;
      // Never hand a forwarded task to a relay (this one included): that
      // is how two relays of one bridge would bounce it between segments.
      p.accept_worker = [](const PeerInfo* worker) { return !IsRelay(worker); };
      absl::StatusOr<std::unique_ptr<Producer>> producer =
          Producer::Create(dest(dir), std::move(p));
      if (!producer.ok()) {
        return absl::Status(
            producer.status().code(),
            absl::StrCat("queue ", queue, " ", kDirectionNames[dir], ": ",
                         producer.status().message()));
      }
      lane->producer = std::move(*producer);
      lane->spool_bytes = DirectoryBytes(lane->spool_dir);
      queues_.push_back(std::move(lane));
    }
  }
  return absl::OkStatus();
}

absl::Status Relay::Impl::StartTopics() {
  if (options_.topics.empty()) return absl::OkStatus();
  std::vector<std::string> prefixes = options_.topics;
  std::sort(prefixes.begin(), prefixes.end(),
            [](const std::string& x, const std::string& y) {
              return x.size() != y.size() ? x.size() > y.size() : x < y;
            });
  prefixes.erase(std::unique(prefixes.begin(), prefixes.end()), prefixes.end());
  for (int dir = 0; dir < 2; ++dir) {
    for (const std::string& prefix : prefixes) {
      auto lane = std::make_unique<TopicLane>();
      lane->prefix = prefix;
      lane->dir = dir;
      topics_.push_back(std::move(lane));
    }
  }
  for (int dir = 0; dir < 2; ++dir) {
    PublisherOptions p;
    p.durable_topics = options_.durable_topics;
    if (!p.durable_topics.empty()) {
      p.spool_dir =
          absl::StrCat(options_.state_dir, "/topics/", kDirectionDirs[dir]);
      p.fsync = options_.fsync;
    }
    FABRIC_ASSIGN_OR_RETURN(publishers_[dir],
                            Publisher::Create(dest(dir), std::move(p)));
  }
  for (int dir = 0; dir < 2; ++dir) {
    SubscriberOptions s;
    s.prefixes = prefixes;
    if (!options_.state_dir.empty()) {
      // Durable: after a restart the relay replays what durable streams
      // published while it was down.
      s.durable_name = absl::StrCat("relay-", EscapeDirName(options_.name), "-",
                                    kDirectionDirs[dir]);
      s.state_dir = absl::StrCat(options_.state_dir, "/subs");
    }
    s.handler = [this, dir](const Message& m) { OnMessage(dir, m); };
    s.on_gap = [this, dir](const GapEvent& gap) {
      TopicLane* lane = MatchTopic(dir, gap.topic);
      if (lane != nullptr) lane->dropped += gap.count();
    };
    FABRIC_ASSIGN_OR_RETURN(subscribers_[dir],
                            Subscriber::Create(source(dir), std::move(s)));
  }
  return absl::OkStatus();
}

absl::Status Relay::Impl::StartStatsServers() {
  for (int i = 0; i < 2; ++i) {
    ServerOptions s;
    s.service = absl::StrCat(kStatsServicePrefix, options_.name);
    s.threads = 1;
    s.handler =
        SyncHandler([this](const Request&) -> absl::StatusOr<std::string> {
          return FormatPrometheus(Stats());
        });
    FABRIC_ASSIGN_OR_RETURN(stats_servers_[i],
                            Server::Create(*nodes_[i], std::move(s)));
  }
  return absl::OkStatus();
}

absl::Status Relay::Impl::Start() {
  FABRIC_RETURN_IF_ERROR(Validate(options_));
  FABRIC_RETURN_IF_ERROR(StartNodes());
  FABRIC_RETURN_IF_ERROR(StartQueues());
  // Let discovery find the other relays of the bridge before deciding who
  // forwards topics, so two relays starting together do not both forward.
  absl::SleepFor(
      2 * std::max(options_.a.beacon_interval, options_.b.beacon_interval));
  UpdateForwarders();
  FABRIC_RETURN_IF_ERROR(StartTopics());
  FABRIC_RETURN_IF_ERROR(StartStatsServers());
  UpdateLanes(absl::Now(), /*measure_spools=*/false);
  control_ = std::thread([this] {
    SetCurrentThreadName("fab-relay");
    ControlLoop();
  });
  return absl::OkStatus();
}

Outcome Relay::Impl::Forward(QueueLane& lane, const Task& task,
                             TaskContext& ctx) {
  // Flow control: while the other side's workers are saturated and enough
  // tasks already wait here, leave the rest with their producer (whose own
  // workers may take them meanwhile). This task's lease at the source keeps
  // running: extend it at once and every second (by 30 s, as its own lease
  // length is not known here).
  absl::Time extended = absl::InfinitePast();
  while (lane.taking.load() && !closing_.load() &&
         lane.producer->Stats().backlog >= options_.max_backlog) {
    if (absl::Now() - extended >= absl::Seconds(1)) {
      ctx.ExtendLease(kHoldExtension).IgnoreError();
      extended = absl::Now();
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  Headers headers = task.headers;
  headers[kOriginHeader] =
      absl::StrCat(task.id.producer.ToHex(), ":", task.id.seq);
  absl::StatusOr<TaskId> id = lane.producer->Push(task.body, headers);
  if (!id.ok()) {
    ++lane.errors;
    FABRIC_LOG(kWarning, kRelay, "FAB-RELAY-STORE ", lane.queue, " ",
               kDirectionNames[lane.dir], ": ", id.status().ToString());
    return Outcome::RetryAfter(absl::Seconds(1), id.status().ToString());
  }
  ++lane.in;
  return Outcome::Ack();
}

Relay::Impl::TopicLane* Relay::Impl::MatchTopic(int dir,
                                                const std::string& topic) {
  for (auto& lane : topics_) {
    if (lane->dir == dir && absl::StartsWith(topic, lane->prefix)) {
      return lane.get();
    }
  }
  return nullptr;
}

void Relay::Impl::OnMessage(int dir, const Message& m) {
  TopicLane* lane = MatchTopic(dir, m.topic);
  if (lane == nullptr) return;  // cannot happen: we subscribed to prefixes
  ++lane->in;
  if (m.headers.contains(kRelayHeader)) {
    ++lane->looped;
    return;
  }
  if (!forwarding_[dir].load()) {
    ++lane->standby;
    return;
  }
  Headers headers = m.headers;
  headers[kRelayHeader] = relay_id_;
  headers[kOriginHeader] = absl::StrFormat("%016x:%d", m.stream, m.seq);
  absl::StatusOr<uint64_t> seq =
      publishers_[dir]->Publish(m.topic, m.body, headers);
  if (seq.ok()) {
    ++lane->out;
  } else {
    ++lane->dropped;
    FABRIC_LOG(kWarning, kRelay, "FAB-RELAY-PUBLISH ", m.topic, " ",
               kDirectionNames[dir], ": ", seq.status().ToString());
  }
}

void Relay::Impl::UpdateForwarders() {
  for (int dir = 0; dir < 2; ++dir) {
    absl::StatusOr<std::vector<PeerInfo>> peers = source(dir).Peers();
    if (!peers.ok()) continue;
    bool lowest = true;
    for (const PeerInfo& p : *peers) {
      auto relay = p.headers.find(kRelayHeader);
      auto bridge = p.headers.find(kBridgeHeader);
      // A suspect relay still counts: only one declared dead hands over, so
      // a brief link loss does not make two relays forward.
      if (relay != p.headers.end() && bridge != p.headers.end() &&
          bridge->second == options_.bridge && relay->second < relay_id_) {
        lowest = false;
      }
    }
    if (forwarding_[dir].exchange(lowest) != lowest) {
      FABRIC_LOG(kInfo, kRelay, "FAB-RELAY-TOPICS ", options_.name, " ",
                 kDirectionNames[dir], lowest ? " forwarding" : " standby");
    }
  }
}

void Relay::Impl::UpdateLanes(absl::Time now, bool measure_spools) {
  for (auto& lane : queues_) {
    const ProducerStats s = lane->producer->Stats();
    if (s.workers > 0) {
      lane->idle_since = absl::InfiniteFuture();
      if (lane->worker == nullptr && !closing_.load()) {
        WorkerOptions w;
        w.queues = {lane->queue};
        w.concurrency = options_.queue_concurrency;
        // One task per handler thread: none waits unextended behind them.
        w.prefetch = options_.queue_concurrency;
        // Longer than a Push can block (the producer's push_timeout, 30 s),
        // so Close never returns while a handler still uses this lane.
        w.drain_timeout = absl::Seconds(40);
        QueueLane* raw = lane.get();
        w.handler = [this, raw](const Task& task, TaskContext& ctx) {
          return Forward(*raw, task, ctx);
        };
        lane->taking = true;
        absl::StatusOr<std::unique_ptr<Worker>> worker =
            Worker::Create(source(lane->dir), std::move(w));
        if (worker.ok()) {
          lane->worker = std::move(*worker);
          FABRIC_LOG(kInfo, kRelay, "FAB-RELAY-TAKING ", lane->queue, " ",
                     kDirectionNames[lane->dir]);
        } else {
          lane->taking = false;
          FABRIC_LOG(kWarning, kRelay, "FAB-RELAY-WORKER ", lane->queue, ": ",
                     worker.status().ToString());
        }
      }
    } else if (lane->worker != nullptr) {
      if (lane->idle_since == absl::InfiniteFuture()) lane->idle_since = now;
      if (now - lane->idle_since >= options_.worker_grace) {
        // Nobody to deliver to: stop taking. Handlers still running store
        // their task (the spool keeps it) and ack it.
        lane->taking = false;
        lane->worker->Close();
        lane->worker.reset();
        FABRIC_LOG(kInfo, kRelay, "FAB-RELAY-IDLE ", lane->queue, " ",
                   kDirectionNames[lane->dir]);
      }
    }
    if (measure_spools) lane->spool_bytes = DirectoryBytes(lane->spool_dir);
  }
}

void Relay::Impl::ControlLoop() {
  absl::Time next_measure = absl::Now() + kSpoolSizeEvery;
  while (!stop_.WaitForNotificationWithTimeout(kTick)) {
    const absl::Time now = absl::Now();
    const bool measure = now >= next_measure;
    if (measure) next_measure = now + kSpoolSizeEvery;
    UpdateForwarders();
    UpdateLanes(now, measure);
  }
}

RelayStats Relay::Impl::Stats() const {
  RelayStats out;
  out.name = options_.name;
  out.relay_id = relay_id_;
  for (const auto& lane : queues_) {
    const ProducerStats s = lane->producer->Stats();
    QueueStats q;
    q.queue = lane->queue;
    q.direction = kDirectionNames[lane->dir];
    q.taking = lane->taking.load();
    q.in = lane->in.load();
    q.errors = lane->errors.load();
    q.out = s.acked;
    q.in_flight = s.in_flight;
    q.backlog = s.backlog;
    q.redelivered = s.redelivered;
    q.dropped = s.dead_lettered;
    q.recovered = s.recovered;
    q.workers = s.workers;
    q.spool_bytes = lane->spool_bytes.load();
    out.queues.push_back(std::move(q));
  }
  for (const auto& lane : topics_) {
    TopicStats t;
    t.prefix = lane->prefix;
    t.direction = kDirectionNames[lane->dir];
    t.forwarding = forwarding_[lane->dir].load();
    t.in = lane->in.load();
    t.out = lane->out.load();
    t.dropped = lane->dropped.load();
    t.looped = lane->looped.load();
    t.standby = lane->standby.load();
    out.topics.push_back(std::move(t));
  }
  const absl::Time now = absl::Now();
  for (int i = 0; i < 2; ++i) {
    if (nodes_[i] == nullptr) continue;
    absl::StatusOr<std::vector<PeerInfo>> peers = nodes_[i]->Peers();
    if (!peers.ok()) continue;
    for (const PeerInfo& p : *peers) {
      PeerStats ps;
      ps.side = i == 0 ? "a" : "b";
      ps.name = p.name;
      ps.id = p.id.ToHex();
      ps.state = std::string(PeerStateName(p.state));
      auto bridge = p.headers.find(kBridgeHeader);
      ps.relay = p.headers.contains(kRelayHeader) &&
                 bridge != p.headers.end() && bridge->second == options_.bridge;
      ps.messages_in = p.messages_in;
      ps.messages_out = p.messages_out;
      ps.since_seen = std::max(absl::ZeroDuration(), now - p.last_seen);
      out.peers.push_back(std::move(ps));
    }
  }
  return out;
}

void Relay::Impl::Close() {
  {
    absl::MutexLock lock(&close_mu_);
    if (closed_) return;
    closed_ = true;
  }
  closing_ = true;
  stop_.Notify();
  if (control_.joinable()) control_.join();
  for (auto& server : stats_servers_) {
    if (server != nullptr) server->Close();
  }
  // Stop taking first, so nothing new arrives while the spools close.
  for (auto& lane : queues_) {
    lane->taking = false;
    if (lane->worker != nullptr) lane->worker->Close();
  }
  for (auto& sub : subscribers_) {
    if (sub != nullptr) sub->Close();
  }
  for (auto& pub : publishers_) {
    if (pub != nullptr) pub->Close();
  }
  for (auto& lane : queues_) lane->producer->Close();
  for (auto& node : nodes_) {
    if (node != nullptr) node->Close();
  }
  for (auto& node : nodes_) {
    if (node != nullptr) node->Join();
  }
}

absl::StatusOr<std::unique_ptr<Relay>> Relay::Start(RelayOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  FABRIC_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<Relay>(new Relay(std::move(impl)));
}

Relay::Relay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Relay::~Relay() { Close(); }
RelayStats Relay::Stats() const { return impl_->Stats(); }
std::string Relay::mailbox(char side) const { return impl_->mailbox(side); }
const std::string& Relay::relay_id() const { return impl_->relay_id(); }
Node& Relay::node(char side) const { return impl_->node(side); }
void Relay::Close() { impl_->Close(); }

}  // namespace fabric::relay
