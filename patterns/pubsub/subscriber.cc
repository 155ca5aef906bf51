// SPDX-License-Identifier: Apache-2.0
// `fabric::Subscriber`: the SUB socket and its thread, per-stream ordering,
// gap detection, replays of durable streams and saved positions.
#include "patterns/pubsub/subscriber.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "fabric/base/errno_status.h"
#include "fabric/base/log.h"
#include "fabric/base/status_macros.h"
#include "fabric/base/thread_name.h"
#include "fabric/security/node_security.h"
#include "fabric/sockets.h"
#include "fabric/spool/position_file.h"
#include "fabric/spool/topic_log.h"
#include "patterns/pubsub/internal/pubsub_plugin.h"
#include "patterns/pubsub/internal/wire.h"

namespace fabric {
namespace {

constexpr int kMaxBatch = 4096;  // frames read per loop iteration
constexpr absl::Duration kTick = absl::Milliseconds(20);
constexpr absl::Duration kSyncEvery = absl::Milliseconds(200);
constexpr absl::Duration kReportEvery = absl::Seconds(1);
constexpr absl::Duration kDisconnectGrace = absl::Seconds(3);
constexpr absl::Duration kReplayRetry = absl::Milliseconds(200);

bool ValidName(absl::string_view name) {
  if (name.empty() || name.size() > 128 || name[0] == '.') return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' &&
        c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<StartPosition> StartPosition::Parse(absl::string_view text) {
  StartPosition p;
  if (text == "latest") return p;
  if (text == "earliest") {
    p.kind = Kind::kEarliest;
    return p;
  }
  if (absl::SimpleAtoi(text, &p.seq) && p.seq > 0) {
    p.kind = Kind::kSeq;
    return p;
  }
  absl::Duration ago;
  if (absl::StartsWith(text, "-") &&
      absl::ParseDuration(text.substr(1), &ago)) {
    p.kind = Kind::kTime;
    p.time = absl::Now() - ago;
    return p;
  }
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, std::string(text), &p.time, &err)) {
    p.kind = Kind::kTime;
    return p;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "bad start position '", text,
      "' (want latest, earliest, a seq, an RFC 3339 time or -DURATION)"));
}

class Subscriber::Impl : public ps::SubscriberEndpoint,
                         public std::enable_shared_from_this<Impl> {
 public:
  Impl(Node& node, SubscriberOptions options)
      : node_(node), options_(std::move(options)) {}

  ~Impl() override {
    Close();
    if (wake_fd_ >= 0) close(wake_fd_);
  }

  absl::Status Init() {
    if (options_.prefixes.empty()) {
      return absl::InvalidArgumentError("a subscriber needs a prefix");
    }
    for (const std::string& prefix : options_.prefixes) {
      if (prefix.size() > ps::kMaxTopicBytes ||
          prefix.find('\0') != std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad prefix '", prefix, "'"));
      }
    }
    if (options_.receive_hwm < 0 || options_.max_pending == 0 ||
        options_.replay_batch == 0 || options_.replay_bytes == 0) {
      return absl::InvalidArgumentError(
          "receive_hwm must not be negative, max_pending and replay sizes "
          "must be positive");
    }
    if (!options_.durable_name.empty()) {
      if (!ValidName(options_.durable_name)) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad durable name '", options_.durable_name,
                         "' (1-128 of [A-Za-z0-9._-], not starting with '.')"));
      }
      if (options_.state_dir.empty()) {
        return absl::InvalidArgumentError(
            "a durable subscriber needs a state_dir");
      }
      // Creates state_dir (durably) if needed.
      const SharedFiles shared =
          node_.security() != nullptr && !options_.allow_shared_files
              ? SharedFiles::kRefuse
              : SharedFiles::kAllow;
      FABRIC_ASSIGN_OR_RETURN(
          positions_,
          PositionFile::Open(absl::StrCat(options_.state_dir, "/",
                                          options_.durable_name, ".pos"),
                             shared));
    }
    FABRIC_ASSIGN_OR_RETURN(plugin_, ps::PubSubPlugin::Get(node_));
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) return ZmqErrnoToStatus(errno, "eventfd");
    StreamSocketOptions& socket = socket_options_;
    socket.hwm = options_.receive_hwm;
    // A batch of small messages may fill a frame up to kMaxBatchBytes.
    socket.max_message_bytes =
        std::max(options_.max_message_bytes, ps::kMaxBatchBytes) + 1024;
    security_ = node_.security();
    if (security_) socket.curve = &security_->keypair;
    FABRIC_ASSIGN_OR_RETURN(sub_, MakeSubSocket(ctx_, socket));
    std::mt19937_64 rng(std::random_device{}());
    presence_ =
        absl::StrCat(ps::kPresencePrefix, absl::StrFormat("%016x", rng()));
    try {
      for (const std::string& prefix : options_.prefixes) {
        sub_.set(zmq::sockopt::subscribe, prefix);
      }
      sub_.set(zmq::sockopt::subscribe, presence_);
    } catch (const zmq::error_t& e) {
      return ZmqErrnoToStatus(e.num(), "subscribe");
    }
    thread_ = std::thread([this] {
      SetCurrentThreadName("fab-sub");
      Loop();
    });
    std::shared_ptr<Impl> self = shared_from_this();
    return node_.Call([self](NodeContext& ctx) {
      self->id_.store(self->plugin_->AddSubscriber(ctx, self));
      return absl::OkStatus();
    });
  }

  absl::StatusOr<Message> Next(absl::Duration timeout) {
    if (options_.handler) {
      return absl::FailedPreconditionError(
          "this subscriber delivers to its handler");
    }
    const absl::Time deadline = absl::Now() + timeout;
    absl::MutexLock l(&queue_mu_);
    const auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(queue_mu_) {
      return !queue_.empty() || closed_;
    };
    for (;;) {
      if (!queue_mu_.AwaitWithDeadline(absl::Condition(&ready), deadline)) {
        return absl::DeadlineExceededError("no message");
      }
      if (queue_.empty()) return absl::CancelledError("subscriber is closed");
      Pending p = std::move(queue_.front());
      queue_.pop_front();
      if (p.marker) {
        positions_->Commit(p.slot, p.commit_seq);
        continue;
      }
      if (p.slot >= 0) positions_->Commit(p.slot, p.message.seq);
      return std::move(p.message);
    }
  }

  absl::Status WaitForPublishers(size_t n, absl::Duration timeout) {
    absl::MutexLock l(&stats_mu_);
    const auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(stats_mu_) {
      return publishers_known_ >= n;
    };
    if (!stats_mu_.AwaitWithTimeout(absl::Condition(&enough), timeout)) {
      return absl::DeadlineExceededError(absl::StrCat(
          "only ", publishers_known_, " of ", n, " publishers found within ",
          absl::FormatDuration(timeout)));
    }
    return absl::OkStatus();
  }

  void Close() {
    {
      absl::MutexLock l(&queue_mu_);
      if (closed_) return;
      closed_ = true;
    }
    if (plugin_ != nullptr) {
      auto plugin = plugin_;
      const uint32_t id = id_.load();
      (void)node_.Call([plugin, id](NodeContext&) {
        plugin->RemoveSubscriber(id);
        return absl::OkStatus();
      });
    }
    {
      absl::MutexLock l(&inbox_mu_);
      stop_ = true;
    }
    Wake();
    if (thread_.joinable()) thread_.join();
    {
      // Messages still waiting for Next were never handed over: durable
      // streams replay them to the next subscriber of this name, which may
      // start as soon as Close returns, since the position file (and its
      // lock) goes now.
      absl::MutexLock l(&queue_mu_);
      queue_.clear();
      if (positions_ != nullptr) {
        SyncPositions();
        if (positions_->sync_failures() > 1) {
          FABRIC_LOG(kWarning, kPubSub, "FAB-SUB-POSITIONS-SYNC ",
                     positions_->sync_failures(),
                     " position syncs failed in all");
        }
        positions_.reset();
      }
    }
    sub_.close();
    ctx_.close();
  }

  SubscriberStats Stats() const {
    SubscriberStats s;
    const auto get = [](const std::atomic<uint64_t>& c) {
      return c.load(std::memory_order_relaxed);
    };
    s.received = get(counters_.received);
    s.delivered = get(counters_.delivered);
    s.replayed = get(counters_.replayed);
    s.duplicates = get(counters_.duplicates);
    s.gaps = get(counters_.gaps);
    s.lost = get(counters_.lost);
    s.malformed = get(counters_.malformed);
    s.replay_requests = get(counters_.replay_requests);
    s.streams = get(counters_.streams);
    s.held = get(counters_.held);
    absl::MutexLock l(&stats_mu_);
    s.publishers = publishers_known_;
    return s;
  }

  // SubscriberEndpoint (engine thread).
  void OnPublishers(std::vector<ps::PublisherInfo> publishers) override {
    {
      absl::MutexLock l(&inbox_mu_);
      publishers_ = std::move(publishers);
      publishers_changed_ = true;
    }
    Wake();
  }
  void OnReplayData(const NodeId& from, ps::ReplayData data) override {
    {
      absl::MutexLock l(&inbox_mu_);
      replies_.push_back({from, std::move(data)});
    }
    Wake();
  }

 private:
  struct Stream {
    std::string topic;
    uint64_t id = 0;
    bool durable = false;
    uint64_t next = 0;         // next seq to deliver; 0: not started
    bool replaying = false;    // a replay must fill what lies before `next`...
    bool initial = false;      // ...starting from the start position
    uint64_t outstanding = 0;  // request in flight, 0 if none
    absl::Time sent_at;
    absl::Time retry_at = absl::InfinitePast();
    std::map<uint64_t, Message> held;  // live messages past a gap
    int slot = -1;                     // position slot (durable name)
    std::optional<NodeId> owner;       // the node keeping it (durable)
  };
  // A message for Next, or (`marker`) only a position to commit once Next
  // has returned everything queued before it.
  struct Pending {
    Message message;
    int slot;
    bool marker = false;
    uint64_t commit_seq = 0;  // marker: the position
  };

  void Wake() {
    const uint64_t one = 1;
    if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof one);
  }

  bool Matches(absl::string_view topic) const {
    for (const std::string& prefix : options_.prefixes) {
      if (absl::StartsWith(topic, prefix)) return true;
    }
    return false;
  }

  bool QueueFull() {
    if (options_.handler) return false;
    absl::MutexLock l(&queue_mu_);
    return queue_.size() >= options_.max_pending;
  }

  void Loop() {
    absl::Time next_sync = absl::Now() + kSyncEvery;
    absl::Time next_report = absl::Now() + kReportEvery;
    uint64_t reported_lost = 0;
    for (;;) {
      const bool full = QueueFull();
      zmq::pollitem_t items[2] = {
          {nullptr, wake_fd_, ZMQ_POLLIN, 0},
          {sub_.handle(), 0, static_cast<short>(full ? 0 : ZMQ_POLLIN), 0}};
      try {
        zmq::poll(items, 2,
                  std::chrono::milliseconds(absl::ToInt64Milliseconds(kTick)));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR)
          FABRIC_LOG(kWarning, kPubSub, "FAB-SUB-POLL ", e.what());
      }
      if ((items[0].revents & ZMQ_POLLIN) != 0) {
        uint64_t count;
        (void)!read(wake_fd_, &count, sizeof count);
      }
      std::vector<Reply> replies;
      std::optional<std::vector<ps::PublisherInfo>> publishers;
      {
        absl::MutexLock l(&inbox_mu_);
        if (stop_) return;
        replies.swap(replies_);
        if (publishers_changed_) {
          publishers = std::move(publishers_);
          publishers_changed_ = false;
        }
      }
      if (publishers.has_value()) ApplyPublishers(*publishers);
      for (Reply& reply : replies) OnReplay(reply.from, std::move(reply.data));
      if ((items[1].revents & ZMQ_POLLIN) != 0) DrainSub();
      const absl::Time now = absl::Now();
      PumpReplays(now);
      DisconnectDue(now);
      if (positions_ != nullptr && now >= next_sync) {
        SyncPositions();
        next_sync = now + kSyncEvery;
      }
      if (now >= next_report) {
        next_report = now + kReportEvery;
        const uint64_t lost = Stats().lost;
        if (lost != reported_lost) {
          // Visible to the cluster (`fabric peers`) as a HELLO header.
          reported_lost = lost;
          (void)node_.SetHeader(
              absl::StrCat("pubsub.lost.", options_.durable_name.empty()
                                               ? absl::StrCat(id_.load())
                                               : options_.durable_name),
              absl::StrCat(lost));
        }
      }
    }
  }

  void ApplyPublishers(const std::vector<ps::PublisherInfo>& publishers) {
    absl::flat_hash_set<std::string> want;
    // Secure mode: the key each endpoint's XPUB must prove, its node's.
    absl::flat_hash_map<std::string, std::string> key_of;
    for (const ps::PublisherInfo& info : publishers) {
      for (const std::string& e : info.endpoints) {
        want.insert(e);
        if (security_) {
          key_of[e] = info.node == node_.id() ? security_->keypair.public_key
                                              : info.public_key;
        }
      }
    }
    // A publisher that stopped advertising is disconnected only after a
    // grace period: its last messages may still be in flight, and
    // disconnecting drops what the connection holds.
    const absl::Time now = absl::Now();
    for (const std::string& e : connected_) {
      if (!want.contains(e) && !disconnect_at_.contains(e)) {
        disconnect_at_[e] = now + kDisconnectGrace;
      }
    }
    for (const std::string& e : want) {
      disconnect_at_.erase(e);
      if (security_ && connected_.contains(e) &&
          connected_key_[e] != key_of[e]) {
        // Another key serves the endpoint now (its node restarted on the
        // same port): the old connection would retry the old key forever.
        try {
          sub_.disconnect(e);
        } catch (const zmq::error_t&) {
        }
        connected_.erase(e);
      }
      if (connected_.contains(e)) continue;
      if (security_) {
        // Set before each connect: it applies to that connection only.
        absl::Status keyed =
            SetCurveServerKey(sub_, socket_options_, key_of[e]);
        if (!keyed.ok()) {
          FABRIC_LOG(kWarning, kPubSub, "FAB-SUB-CONNECT ", e, ": ",
                     keyed.message());
          continue;
        }
      }
      try {
        sub_.connect(e);
        connected_.insert(e);
        if (security_) connected_key_[e] = key_of[e];
      } catch (const zmq::error_t& err) {
        FABRIC_LOG(kWarning, kPubSub, "FAB-SUB-CONNECT ", e, ": ", err.what());
      }
    }
    for (const ps::PublisherInfo& info : publishers) {
      for (const ps::StreamOffer& offer : info.streams) {
        if (!Matches(offer.topic)) continue;
        auto [it, created] = streams_.try_emplace(offer.stream);
        Stream& st = it->second;
        if (created) {
          st.id = offer.stream;
          st.topic = offer.topic;
          st.durable = true;
          InitStream(st);
        } else if (st.topic != offer.topic) {
          continue;
        } else if (st.owner != info.node && st.next != 0) {
          // Its publisher came back (or moved): catch up on what it wrote
          // while we could not hear it.
          st.replaying = true;
        }
        st.durable = true;
        st.owner = info.node;
      }
    }
    counters_.streams.store(streams_.size(), std::memory_order_relaxed);
    absl::MutexLock l(&stats_mu_);
    publishers_known_ = connected_.size() - disconnect_at_.size();
  }

  void DisconnectDue(absl::Time now) {
    bool changed = false;
    for (auto it = disconnect_at_.begin(); it != disconnect_at_.end();) {
      if (it->second > now) {
        ++it;
        continue;
      }
      try {
        sub_.disconnect(it->first);
      } catch (const zmq::error_t&) {
      }
      connected_.erase(it->first);
      connected_key_.erase(it->first);
      disconnect_at_.erase(it++);
      changed = true;
    }
    if (!changed) return;
    absl::MutexLock l(&stats_mu_);
    publishers_known_ = connected_.size() - disconnect_at_.size();
  }

  // Makes the committed positions survive power loss (msync). Logs only the
  // first failure, as they recur every 200 ms while the disk fails; Close
  // logs how many there were. Subscriber thread, or Close after it ended.
  void SyncPositions() {
    absl::Status status = positions_->Sync();
    if (!status.ok() && positions_->sync_failures() == 1) {
      FABRIC_LOG(kWarning, kPubSub, "FAB-SUB-POSITIONS-SYNC ",
                 status.ToString(),
                 " (positions may not survive a power loss; later failures "
                 "are counted, not logged)");
    }
  }

  // A stream seen for the first time: where does it start?
  void InitStream(Stream& st) {
    if (!st.durable) return;  // live: at the first message received
    if (positions_ != nullptr) {
      absl::StatusOr<int> slot = positions_->Slot(st.id, st.topic);
      if (slot.ok()) {
        st.slot = *slot;
        if (std::optional<uint64_t> pos = positions_->Find(st.id)) {
          st.next = *pos + 1;
          st.replaying = true;
          return;
        }
      } else {
        FABRIC_LOG(kWarning, kPubSub, "FAB-SUB-POSITIONS ",
                   slot.status().ToString());
      }
    }
    if (options_.start.kind != StartPosition::Kind::kLatest) {
      st.replaying = true;
      st.initial = true;
    }
  }

  void DrainSub() {
    for (int i = 0; i < kMaxBatch; ++i) {
      zmq::message_t frame;
      try {
        if (!sub_.recv(frame, zmq::recv_flags::dontwait)) return;
      } catch (const zmq::error_t& e) {
        return;
      }
      HandleFrame(absl::string_view(frame.data<char>(), frame.size()));
      // A frame may hold up to 1024 messages: check after each.
      if (!options_.handler && QueueFull()) return;
    }
  }

  void CountMalformed(const absl::Status& status) {
    { Bump(counters_.malformed); }
    FABRIC_LOG(kDebug, kPubSub, "FAB-SUB-MALFORMED ", status.ToString());
  }

  void HandleFrame(absl::string_view data) {
    absl::StatusOr<ps::FrameView> v = ps::DecodeFrame(data);
    if (!v.ok()) return CountMalformed(v.status());
    auto [it, created] = streams_.try_emplace(v->stream);
    Stream& st = it->second;
    if (created) {
      st.id = v->stream;
      st.topic = std::string(v->topic);
      st.durable = (v->flags & ps::kFlagDurable) != 0;
      InitStream(st);
      counters_.streams.store(streams_.size(), std::memory_order_relaxed);
    } else if (st.topic != v->topic) {
      return CountMalformed(absl::InvalidArgumentError(
          "a frame's topic differs from its stream's"));
    }
    if ((v->flags & ps::kFlagBeat) != 0) {
      Bump(counters_.received);
      OnBeat(st, v->seq);
      return;
    }
    counters_.received.fetch_add(v->count, std::memory_order_relaxed);
    absl::string_view entries = v->entries;
    for (uint64_t seq = v->seq; seq < v->seq + v->count; ++seq) {
      HandleEntry(st, seq, ps::NextEntry(&entries),
                  (v->flags & ps::kFlagDurable) != 0);
    }
  }

  void HandleEntry(Stream& st, uint64_t seq, const ps::EntryView& e,
                   bool durable) {
    if (st.next == 0 && !st.replaying) st.next = seq;  // start: latest
    if (seq < st.next) {
      Bump(counters_.duplicates);
      return;
    }
    if (st.replaying || (seq > st.next && st.durable)) {
      st.replaying = true;
      if (st.held.size() < options_.max_held) {
        Message m;
        absl::Status filled = FillMessage(st, seq, e, durable, &m);
        if (!filled.ok()) return CountMalformed(filled);
        st.held.emplace(seq, std::move(m));
      }
      // Beyond max_held it is simply not kept: being durable, the replay
      // brings it back.
      return;
    }
    if (seq > st.next) Gap(st, st.next, seq - 1, "dropped");
    absl::Status filled = FillMessage(st, seq, e, durable, &scratch_);
    if (!filled.ok()) return CountMalformed(filled);
    st.next = seq + 1;
    // With a handler `scratch_` is only lent, so its buffers are reused.
    Deliver(st, std::move(scratch_));
  }

  void OnBeat(Stream& st, uint64_t newest) {
    if (st.next == 0) {
      if (!st.replaying) st.next = newest + 1;  // latest: all before us
      return;
    }
    if (newest < st.next || st.replaying) return;
    if (st.durable) {
      st.replaying = true;
    } else {
      Gap(st, st.next, newest, "dropped");
      st.next = newest + 1;
    }
  }

  // Fills `m` (reusing its buffers) from a live message.
  static absl::Status FillMessage(const Stream& st, uint64_t seq,
                                  const ps::EntryView& e, bool durable,
                                  Message* m) {
    if (e.headers.empty()) {
      m->headers.clear();
    } else {
      FABRIC_ASSIGN_OR_RETURN(m->headers, ps::DecodeHeaders(e.headers));
    }
    m->topic = st.topic;
    m->body.assign(e.body.data(), e.body.size());
    m->stream = st.id;
    m->seq = seq;
    m->published = e.published;
    m->durable = durable;
    m->replayed = false;
    return absl::OkStatus();
  }

  void Deliver(Stream& st, Message&& m) {
    Bump(counters_.delivered);
    if (m.replayed) Bump(counters_.replayed);
    if (options_.handler) {
      const uint64_t seq = m.seq;
      options_.handler(m);
      if (st.slot >= 0) positions_->Commit(st.slot, seq);
      return;
    }
    absl::MutexLock l(&queue_mu_);
    queue_.push_back({std::move(m), st.slot});
  }

  void Gap(Stream& st, uint64_t first, uint64_t last, const char* reason) {
    GapEvent e{st.topic, st.id, first, last, reason};
    Bump(counters_.gaps);
    counters_.lost.fetch_add(e.count(), std::memory_order_relaxed);
    FABRIC_LOG(kInfo, kPubSub, "FAB-SUB-GAP ", st.topic, " stream ",
               ps::StreamHex(st.id), " lost ", e.count(), " (", first, "..",
               last, ", ", reason, ")");
    if (options_.on_gap) options_.on_gap(e);
    // A durable subscriber never asks for these again; in pull mode only
    // once Next returned what was queued before the gap.
    if (st.slot < 0 || st.next > last) return;
    if (options_.handler) {
      positions_->Commit(st.slot, last);
      return;
    }
    absl::MutexLock l(&queue_mu_);
    queue_.push_back({Message{}, st.slot, /*marker=*/true, last});
  }

  // Delivers held live messages that now follow on.
  void DrainHeld(Stream& st) {
    while (!st.held.empty()) {
      auto it = st.held.begin();
      if (it->first < st.next) {
        st.held.erase(it);
        continue;
      }
      if (it->first != st.next) return;
      Message m = std::move(it->second);
      st.held.erase(it);
      st.next = m.seq + 1;
      Deliver(st, std::move(m));
    }
  }

  void OnReplay(const NodeId& from, ps::ReplayData data) {
    auto it = streams_.find(data.stream);
    if (it == streams_.end() || it->second.outstanding != data.request) {
      return;  // late: a request we gave up on
    }
    Stream& st = it->second;
    // Only the node we asked may answer (a local failure to send is
    // reported as coming from it too).
    if (!st.owner.has_value() || from != *st.owner) {
      return CountMalformed(
          absl::InvalidArgumentError("replay reply from another node"));
    }
    st.outstanding = 0;
    if (data.status == ps::ReplayStatus::kUnknownStream) {
      // It does not keep the stream (now): perhaps it is shutting down and
      // will come back. Wait for a node to offer the stream again.
      st.owner.reset();
      st.retry_at = absl::Now() + kReplayRetry;
      return;
    }
    if (data.status != ps::ReplayStatus::kOk) {
      st.retry_at = absl::Now() + kReplayRetry;
      return;
    }
    if (data.start == 0 || data.start > data.durable_seq + 1 ||
        data.next < data.start || data.next > data.durable_seq + 1 ||
        (!st.initial && st.next != 0 && data.start < st.next)) {
      st.retry_at = absl::Now() + kReplayRetry;
      return CountMalformed(
          absl::InvalidArgumentError("replay reply with an impossible range"));
    }
    if (st.initial || st.next == 0) {
      st.next = std::max<uint64_t>(data.start, 1);
      st.initial = false;
    } else if (data.start > st.next) {
      Gap(st, st.next, data.start - 1, "retention");
      st.next = data.start;
    }
    // With a handler, ask for the next chunk before delivering this one,
    // so the publisher reads it while we deliver. (Pull mode asks after, so
    // its queue never takes two chunks beyond max_pending.)
    const bool prefetched = options_.handler && !data.entries.empty() &&
                            data.next <= data.durable_seq;
    if (prefetched) RequestReplay(st, absl::Now(), data.next);
    for (const std::string& entry : data.entries) {
      absl::StatusOr<SpooledTask> task = TopicLog::DecodeEntry(entry);
      if (!task.ok()) {
        CountMalformed(task.status());
        continue;
      }
      if (task->seq < st.next || task->seq >= data.next) continue;
      if (task->seq > st.next) Gap(st, st.next, task->seq - 1, "damaged");
      Message m;
      m.topic = st.topic;
      m.headers = std::move(task->headers);
      m.body = std::move(task->body);
      m.stream = st.id;
      m.seq = task->seq;
      m.published = task->enqueued;
      m.durable = true;
      m.replayed = true;
      st.next = m.seq + 1;
      Deliver(st, std::move(m));
    }
    if (data.next > st.next) {
      // The log skipped these (damaged or undecodable records).
      Gap(st, st.next, data.next - 1, "damaged");
      st.next = data.next;
    } else if (data.entries.empty() && st.next <= data.durable_seq) {
      // Nothing readable from here to the durable end.
      Gap(st, st.next, data.durable_seq, "damaged");
      st.next = data.durable_seq + 1;
    }
    DrainHeld(st);
    if (prefetched && st.next != data.next) {
      // Held live messages took us past where the prefetch starts: its
      // reply would overlap them. Ignore it and ask again from here.
      st.outstanding = 0;
    }
    const bool more = st.next <= data.durable_seq;
    if (more) return;  // PumpReplays asks for the next chunk
    if (st.held.empty()) {
      st.replaying = false;
      return;
    }
    if (data.entries.empty()) {
      // The log ends before what we hold: those messages are gone.
      Gap(st, st.next, st.held.begin()->first - 1, "unavailable");
      st.next = st.held.begin()->first;
      DrainHeld(st);
      st.replaying = !st.held.empty();
    }
  }

  void PumpReplays(absl::Time now) {
    for (auto& [id, st] : streams_) {
      if (!st.replaying) continue;
      if (st.outstanding != 0) {
        if (now - st.sent_at < options_.replay_timeout) continue;
        st.outstanding = 0;  // lost or unanswered: ask again
      }
      if (!st.owner.has_value() || now < st.retry_at || QueueFull() ||
          id_.load() == 0) {
        continue;
      }
      RequestReplay(st, now, st.next);
    }
  }

  // Asks the stream's owner for the next chunk, from `from` unless this is
  // the stream's first request (then from the start position).
  void RequestReplay(Stream& st, absl::Time now, uint64_t from) {
    ps::ReplayRequest r;
    r.subscriber = id_.load();
    r.request = ++request_seq_;
    r.stream = st.id;
    r.max_entries = options_.replay_batch;
    r.max_bytes = options_.replay_bytes;
    if (st.initial) {
      switch (options_.start.kind) {
        case StartPosition::Kind::kEarliest:
        case StartPosition::Kind::kLatest:
          r.from = ps::ReplayFrom::kEarliest;
          break;
        case StartPosition::Kind::kSeq:
          r.from = ps::ReplayFrom::kSeq;
          r.seq = options_.start.seq;
          break;
        case StartPosition::Kind::kTime:
          r.from = ps::ReplayFrom::kTime;
          r.time = options_.start.time;
          break;
      }
    } else {
      r.from = ps::ReplayFrom::kSeq;
      r.seq = from;
    }
    st.outstanding = r.request;
    st.sent_at = now;
    auto body = std::make_shared<std::string>(ps::EncodeReplayRequest(r));
    auto plugin = plugin_;
    std::weak_ptr<Impl> weak = weak_from_this();
    const NodeId to = *st.owner;
    (void)node_.Post([plugin, weak, to, body, r](NodeContext& ctx) {
      if (plugin->Send(ctx, to, ps::kReplayRequest, *body).ok()) return;
      // Not sent (the link is not up yet): retry soon rather than
      // waiting out the replay timeout.
      if (std::shared_ptr<Impl> self = weak.lock()) {
        ps::ReplayData failed;
        failed.subscriber = r.subscriber;
        failed.request = r.request;
        failed.stream = r.stream;
        failed.status = ps::ReplayStatus::kError;
        self->OnReplayData(to, std::move(failed));
      }
    });
    Bump(counters_.replay_requests);
    uint64_t held = 0;
    for (const auto& [sid, s] : streams_) held += s.held.size();
    counters_.held.store(held, std::memory_order_relaxed);
  }

  Node& node_;
  const SubscriberOptions options_;
  std::shared_ptr<ps::PubSubPlugin> plugin_;
  std::unique_ptr<PositionFile> positions_;
  std::atomic<uint32_t> id_{0};
  int wake_fd_ = -1;
  std::string presence_;

  // Secure mode's keys (null otherwise); `socket_options_.curve` points
  // into it.
  std::shared_ptr<const security::NodeSecurity> security_;
  StreamSocketOptions socket_options_;

  // Subscriber thread only (and Init/Close around it).
  zmq::context_t ctx_{1};
  zmq::socket_t sub_;
  std::thread thread_;
  absl::flat_hash_set<std::string> connected_;
  // Secure mode: the key each connected endpoint was connected with.
  absl::flat_hash_map<std::string, std::string> connected_key_;
  std::map<std::string, absl::Time> disconnect_at_;
  absl::flat_hash_map<uint64_t, Stream> streams_;
  uint64_t request_seq_ = 0;
  Message scratch_;

  absl::Mutex inbox_mu_;
  std::vector<ps::PublisherInfo> publishers_ ABSL_GUARDED_BY(inbox_mu_);
  bool publishers_changed_ ABSL_GUARDED_BY(inbox_mu_) = false;
  struct Reply {
    NodeId from;
    ps::ReplayData data;
  };
  std::vector<Reply> replies_ ABSL_GUARDED_BY(inbox_mu_);
  bool stop_ ABSL_GUARDED_BY(inbox_mu_) = false;

  absl::Mutex queue_mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool closed_ ABSL_GUARDED_BY(queue_mu_) = false;

  // Written by the subscriber thread, read anywhere; relaxed: each is an
  // independent statistic.
  struct Counters {
    std::atomic<uint64_t> received{0}, delivered{0}, replayed{0}, duplicates{0},
        gaps{0}, lost{0}, malformed{0}, replay_requests{0}, streams{0}, held{0};
  };
  static void Bump(std::atomic<uint64_t>& c) {
    c.fetch_add(1, std::memory_order_relaxed);
  }
  Counters counters_;
  mutable absl::Mutex stats_mu_;
  uint64_t publishers_known_ ABSL_GUARDED_BY(stats_mu_) = 0;
};

absl::StatusOr<std::unique_ptr<Subscriber>> Subscriber::Create(
    Node& node, SubscriberOptions options) {
  auto impl = std::make_shared<Impl>(node, std::move(options));
  absl::Status status = impl->Init();
  if (!status.ok()) {
    impl->Close();
    return status;
  }
  return std::unique_ptr<Subscriber>(new Subscriber(std::move(impl)));
}

Subscriber::Subscriber(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Subscriber::~Subscriber() { Close(); }

absl::StatusOr<Message> Subscriber::Next(absl::Duration timeout) {
  return impl_->Next(timeout);
}
absl::Status Subscriber::WaitForPublishers(size_t n, absl::Duration timeout) {
  return impl_->WaitForPublishers(n, timeout);
}
void Subscriber::Close() { impl_->Close(); }
SubscriberStats Subscriber::Stats() const { return impl_->Stats(); }

}  // namespace fabric
