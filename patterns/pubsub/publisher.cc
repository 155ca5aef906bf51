// SPDX-License-Identifier: Apache-2.0
// `fabric::Publisher`: the XPUB, per-topic streams, durable topic logs, the
// background thread (subscriber presence, beats, replays) and registration
// with the node's pub/sub plugin.
#include "patterns/pubsub/publisher.h"

#include <cstring>
#include <deque>
#include <random>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
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
#include "fabric/spool/topic_log.h"
#include "patterns/pubsub/internal/pubsub_plugin.h"
#include "patterns/pubsub/internal/wire.h"

namespace fabric {
namespace {

// Replies are capped well below the node's 16 MiB message limit.
constexpr uint32_t kMaxReplayEntries = 16384;
constexpr uint32_t kMaxReplayBytes = 4 << 20;
constexpr absl::Duration kPoll = absl::Milliseconds(20);
// A durable message must fit one replay reply under the node's default
// 16 MiB message limit.
constexpr size_t kMaxMessageBytes = 15 << 20;
constexpr int kBeatIdleIntervals = 10;
// Closed batches waiting for the sender thread (each at most 64 KiB, or one
// larger message); when the publisher outruns it beyond this, messages are
// dropped and counted.
constexpr size_t kMaxReadyBatches = 4096;
// A live message published this long after the previous one, with nothing
// queued, is sent by the publishing thread itself.
constexpr absl::Duration kIdleGap = absl::Microseconds(20);

// "tcp://127.0.0.1:4000" -> "127.0.0.1" (brackets kept for IPv6).
std::string HostOf(const std::string& endpoint) {
  std::string host = endpoint;
  if (absl::StartsWith(host, "tcp://")) host = host.substr(6);
  const size_t colon = host.rfind(':');
  if (colon != std::string::npos) host.resize(colon);
  return host;
}

uint64_t RandomStreamId() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  uint64_t id = 0;
  while (id == 0) id = rng();
  return id;
}

}  // namespace

class Publisher::Impl : public ps::PublisherEndpoint,
                        public std::enable_shared_from_this<Impl> {
 public:
  Impl(Node& node, PublisherOptions options)
      : node_(node), options_(std::move(options)) {}

  ~Impl() override {
    Close();
    // Closing a log may report a last durable seq: OnDurable then queues
    // batches that nobody sends any more.
    for (auto& [id, stream] : durable_by_id_) stream->log.reset();
  }

  absl::Status Init() {
    if (options_.send_hwm < 0) {
      return absl::InvalidArgumentError("send_hwm must not be negative");
    }
    if (options_.max_message_bytes == 0 ||
        options_.max_message_bytes > kMaxMessageBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "max_message_bytes must be in [1, ", kMaxMessageBytes, "]"));
    }
    if (options_.beat_interval <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError("beat_interval must be positive");
    }
    if (!options_.durable_topics.empty() && options_.spool_dir.empty()) {
      return absl::InvalidArgumentError("durable topics need a spool_dir");
    }
    FABRIC_ASSIGN_OR_RETURN(plugin_, ps::PubSubPlugin::Get(node_));
    StreamSocketOptions socket;
    socket.hwm = options_.send_hwm;
    socket.max_message_bytes = options_.max_message_bytes + 1024;
    const std::string host = options_.bind_host.empty()
                                 ? HostOf(node_.mailbox_endpoint())
                                 : options_.bind_host;
    security_ = node_.security();
    if (security_) {
      // This context is the publisher's own: a ZAP handler in the node's
      // context is invisible to it, and without one here the XPUB would
      // admit any key (security-anchors.md 2.3).
      FABRIC_ASSIGN_OR_RETURN(zap_,
                              security::ZapHandler::Start(
                                  ctx_, security_->roster,
                                  absl::StrCat(node_.name(), " publisher")));
      socket.curve = &security_->keypair;
    }
    FABRIC_ASSIGN_OR_RETURN(
        zmq::socket_t xpub,
        MakeXpubSocket(ctx_, socket, absl::StrCat("tcp://", host, ":*")));
    try {
      endpoint_ = xpub.get(zmq::sockopt::last_endpoint);
    } catch (const zmq::error_t& e) {
      return ZmqErrnoToStatus(e.num(), "read publisher endpoint");
    }
    if (security_) {
      absl::Status tested = security::SelfTest(
          *zap_, endpoint_, security_->keypair.public_key, security_->keypair,
          zmq::socket_type::sub, absl::Seconds(3));
      if (!tested.ok()) {
        FABRIC_LOG(kError, kSecurity, tested.message());
        return tested;
      }
    }
    std::vector<ps::StreamOffer> offers;
    for (const std::string& topic : options_.durable_topics) {
      FABRIC_RETURN_IF_ERROR(ps::ValidateTopic(topic));
      auto stream = std::make_unique<Stream>();
      stream->topic = topic;
      stream->durable = true;
      Stream* raw = stream.get();
      TopicLogOptions log;
      log.dir = absl::StrCat(options_.spool_dir, "/", EscapeDirName(topic));
      log.topic = topic;
      log.fsync = options_.fsync;
      log.fsync_interval = options_.fsync_interval;
      log.retention_bytes = options_.retention_bytes;
      log.retention_age = options_.retention_age;
      log.segment_bytes = options_.segment_bytes;
      log.shared_files = security_ != nullptr && !options_.allow_shared_files
                             ? SharedFiles::kRefuse
                             : SharedFiles::kAllow;
      log.on_durable = [this, raw](uint64_t seq) { OnDurable(raw, seq); };
      FABRIC_ASSIGN_OR_RETURN(stream->log, TopicLog::Open(std::move(log)));
      uint64_t id = 0;
      for (char c : stream->log->stream_id().bytes().substr(0, 8)) {
        id = (id << 8) | static_cast<uint8_t>(c);
      }
      stream->id = id == 0 ? 1 : id;
      stream->seq = stream->log->next_seq() - 1;
      stream->sent_seq = stream->seq;
      offers.push_back({stream->id, topic});
      durable_by_id_.emplace(stream->id, raw);
      absl::MutexLock l(&mu_);
      streams_.emplace(topic, std::move(stream));
    }
    {
      absl::MutexLock l(&mu_);
      xpub_ = std::move(xpub);
    }
    thread_ = std::thread([this] {
      SetCurrentThreadName("fab-pub");
      Loop();
    });
    std::shared_ptr<Impl> self = shared_from_this();
    return node_.Call([self, offers](NodeContext& ctx) {
      return self->plugin_->AddPublisher(ctx, self, self->endpoint_, offers);
    });
  }

  absl::StatusOr<uint64_t> Publish(absl::string_view topic,
                                   absl::string_view body,
                                   const Headers& headers) {
    const std::string encoded_headers = ps::EncodeHeaders(headers);
    const size_t size = ps::MessageSize(topic, encoded_headers, body);
    absl::MutexLock l(&mu_);
    if (closed_) return absl::CancelledError("publisher is closed");
    if (size > options_.max_message_bytes) {
      ++stats_.rejected;
      return absl::InvalidArgumentError(
          absl::StrCat("message of ", size, " bytes is over the ",
                       options_.max_message_bytes, "-byte limit"));
    }
    auto it = streams_.find(topic);
    if (it == streams_.end()) {
      absl::Status valid = ps::ValidateTopic(topic);
      if (!valid.ok()) {
        ++stats_.rejected;
        return valid;
      }
      auto stream = std::make_unique<Stream>();
      stream->topic = std::string(topic);
      stream->id = RandomStreamId();
      it = streams_.emplace(stream->topic, std::move(stream)).first;
    }
    Stream& s = *it->second;
    const absl::Time now = absl::Now();
    const size_t entry_size = ps::EntrySize(encoded_headers, body);
    uint64_t seq;
    if (s.durable) {
      absl::StatusOr<uint64_t> appended = s.log->Append(now, headers, body);
      if (!appended.ok()) {
        ++stats_.rejected;
        return appended.status();
      }
      seq = *appended;
      // Sent once durable (OnDurable), so no subscriber sees a message this
      // publisher could forget.
      std::string entry(entry_size, '\0');
      ps::EncodeEntry(now, encoded_headers, body, entry.data());
      s.held.emplace_back(seq, std::move(entry));
      ++durable_pending_;
    } else {
      seq = s.seq + 1;
      if (IdleLocked(now)) {
        // Nothing queued and the last publish a while ago: send from here,
        // sparing the latency of waking the sender thread.
        zmq::message_t frame(size);
        ps::EncodeFrameHeader(topic, 0, s.id, seq, 1, frame.data<char>());
        ps::EncodeEntry(now, encoded_headers, body,
                        frame.data<char>() + ps::FrameHeaderSize(topic));
        SendNowLocked(s, seq, frame);
      } else if (char* out = AddEntryLocked(s, seq, entry_size)) {
        ps::EncodeEntry(now, encoded_headers, body, out);
      }
    }
    s.seq = seq;
    s.last_publish = now;
    last_publish_ = now;
    ++stats_.published;
    return seq;
  }

  absl::Status WaitForSubscribers(size_t n, absl::Duration timeout) {
    absl::MutexLock l(&mu_);
    const auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return presence_.size() >= n || closed_;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&enough), timeout)) {
      return absl::DeadlineExceededError(absl::StrCat(
          "only ", presence_.size(), " of ", n,
          " subscribers connected within ", absl::FormatDuration(timeout)));
    }
    if (closed_) return absl::CancelledError("publisher is closed");
    return absl::OkStatus();
  }

  absl::Status Flush(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    {
      absl::MutexLock l(&mu_);
      if (closed_) return absl::CancelledError("publisher is closed");
    }
    for (auto& [id, stream] : durable_by_id_) {
      FABRIC_RETURN_IF_ERROR(stream->log->Flush(deadline - absl::Now()));
    }
    absl::MutexLock l(&mu_);
    const auto sent = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return durable_pending_ == 0;
    };
    if (!mu_.AwaitWithDeadline(absl::Condition(&sent), deadline)) {
      return absl::DeadlineExceededError("durable messages not yet sent");
    }
    return absl::OkStatus();
  }

  void Close() {
    {
      absl::MutexLock l(&mu_);
      if (closed_) return;
      closed_ = true;
    }
    if (plugin_ != nullptr) {
      const PublisherEndpoint* me = this;
      auto plugin = plugin_;
      (void)node_.Call([plugin, me](NodeContext& ctx) {
        plugin->RemovePublisher(ctx, me);
        return absl::OkStatus();
      });
    }
    {
      absl::MutexLock l(&mu_);
      stop_ = true;
    }
    if (thread_.joinable()) thread_.join();
    // Closing a log writes and syncs what it holds; its last on_durable
    // sends the held frames.
    // The logs stay open (a concurrent Flush may use them) until the Impl
    // goes; flushing now sends every held durable frame before the XPUB
    // closes.
    for (auto& [id, stream] : durable_by_id_) {
      (void)stream->log->Flush(absl::Seconds(5));
    }
    // The sender thread is gone: send what it left from here.
    SendQueued();
    {
      absl::MutexLock l(&mu_);
      xpub_.close();
    }
    zap_.reset();  // after the XPUB closed, before the context
    ctx_.close();
  }

  const std::string& endpoint() const { return endpoint_; }

  PublisherStats Stats() const {
    absl::MutexLock l(&mu_);
    PublisherStats s = stats_;
    s.subscribers = presence_.size();
    s.durable_pending = durable_pending_;
    return s;
  }

  // PublisherEndpoint (engine thread).
  bool Keeps(uint64_t stream) const override {
    return durable_by_id_.contains(stream);
  }
  void OnReplayRequest(const NodeId& from, ps::ReplayRequest request) override {
    absl::MutexLock l(&mu_);
    replays_.push_back({from, std::move(request)});
  }

 private:
  struct Stream {
    std::string topic;
    uint64_t id = 0;
    bool durable = false;
    uint64_t seq = 0;       // newest assigned
    uint64_t sent_seq = 0;  // newest handed to the XPUB
    absl::Time last_publish = absl::InfinitePast();
    std::unique_ptr<TopicLog> log;  // durable only
    // Encoded entries not yet durable, so not yet in a batch.
    std::deque<std::pair<uint64_t, std::string>> held;
    // The open batch: a frame being filled with consecutive seqs from
    // `open_seq`, sent by the sender thread when it next wakes.
    std::string open;
    uint64_t open_seq = 0;
    uint32_t open_count = 0;
    bool listed = false;  // in open_streams_
    uint32_t queued = 0;  // closed batches not yet sent
  };
  // A closed batch, ready for the XPUB.
  struct Batch {
    Stream* stream;
    uint64_t last_seq;
    uint32_t count;
    std::string frame;
  };
  struct PendingReplay {
    NodeId from;
    ps::ReplayRequest request;
  };

  // True when a message may bypass the sender thread: it sends nothing and
  // holds nothing (so no earlier message can be overtaken), and publishes
  // are far enough apart that there is nothing to batch.
  bool IdleLocked(absl::Time now) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return !sending_ && ready_.empty() && open_streams_.empty() &&
           now - last_publish_ >= kIdleGap;
  }

  void SendNowLocked(Stream& s, uint64_t seq, zmq::message_t& frame)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    try {
      if (xpub_.send(frame, zmq::send_flags::dontwait)) {
        ++stats_.sent;
        ++stats_.frames;
      }
    } catch (const zmq::error_t& e) {
      FABRIC_LOG(kWarning, kPubSub, "FAB-PUB-SEND ", e.what());
    }
    s.sent_seq = seq;
  }

  // Makes room for an entry of `size` bytes with `seq` in the stream's open
  // batch and returns where to write it, or nullptr when the send queue is
  // full and the message is dropped (subscribers see the gap).
  char* AddEntryLocked(Stream& s, uint64_t seq, size_t size)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!s.open.empty() && (s.open_seq + s.open_count != seq ||
                            s.open.size() + size > ps::kMaxBatchBytes ||
                            s.open_count >= ps::kMaxBatchCount)) {
      CloseBatchLocked(s);
    }
    if (s.open.empty()) {
      if (ready_.size() >= kMaxReadyBatches) {
        ++stats_.dropped;
        return nullptr;
      }
      const size_t header = ps::FrameHeaderSize(s.topic);
      s.open.reserve(std::min(ps::kMaxBatchBytes, 4 * (header + size)));
      s.open.resize(header);
      ps::EncodeFrameHeader(s.topic, s.durable ? ps::kFlagDurable : 0, s.id,
                            seq, 0, s.open.data());
      s.open_seq = seq;
      s.open_count = 0;
      if (!s.listed) {
        s.listed = true;
        open_streams_.push_back(&s);
      }
    }
    const size_t at = s.open.size();
    s.open.resize(at + size);
    ++s.open_count;
    return s.open.data() + at;
  }

  void CloseBatchLocked(Stream& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ps::SetFrameCount(s.topic, s.open_count, s.open.data());
    ready_.push_back(
        {&s, s.open_seq + s.open_count - 1, s.open_count, std::move(s.open)});
    ++s.queued;
    s.open.clear();
    s.open_count = 0;
  }

  // Takes every batch, open or closed, off the queue.
  std::deque<Batch> TakeBatchesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (Stream* s : open_streams_) {
      if (!s->open.empty()) CloseBatchLocked(*s);
      s->listed = false;
    }
    open_streams_.clear();
    std::deque<Batch> batches;
    batches.swap(ready_);
    return batches;
  }

  // Sender thread (or Close once it is gone): hands the batches to the XPUB
  // without holding mu_, so publishers fill the next ones meanwhile.
  void SendBatches(std::deque<Batch>& batches) {
    uint64_t sent = 0, frames = 0, durable_sent = 0;
    for (Batch& b : batches) {
      // Zero-copy: libzmq frees the string once every subscriber's copy
      // is written.
      auto* owned = new std::string(std::move(b.frame));
      zmq::message_t frame(
          owned->data(), owned->size(),
          [](void*, void* hint) { delete static_cast<std::string*>(hint); },
          owned);
      try {
        // XPUB never blocks: a subscriber whose queue is full misses it.
        if (xpub_.send(frame, zmq::send_flags::dontwait)) {
          sent += b.count;
          ++frames;
        }
      } catch (const zmq::error_t& e) {
        FABRIC_LOG(kWarning, kPubSub, "FAB-PUB-SEND ", e.what());
      }
      if (b.stream->durable) durable_sent += b.count;
    }
    absl::MutexLock l(&mu_);
    sending_ = false;
    for (const Batch& b : batches) {
      b.stream->sent_seq = b.last_seq;
      --b.stream->queued;
    }
    stats_.sent += sent;
    stats_.frames += frames;
    durable_pending_ -= durable_sent;
  }

  void SendQueued() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    std::deque<Batch> batches;
    {
      absl::MutexLock l(&mu_);
      batches = TakeBatchesLocked();
    }
    SendBatches(batches);
  }

  // Log flusher thread: moves what became durable into batches.
  void OnDurable(Stream* s, uint64_t durable_seq) {
    absl::MutexLock l(&mu_);
    while (!s->held.empty() && s->held.front().first <= durable_seq) {
      auto& [seq, entry] = s->held.front();
      if (char* out = AddEntryLocked(*s, seq, entry.size())) {
        std::memcpy(out, entry.data(), entry.size());
      } else {
        --durable_pending_;  // dropped: never to be sent
      }
      s->held.pop_front();
    }
  }

  // The sender thread: sends batches as soon as they are there (so under
  // load each frame carries what accumulated while the previous ones were
  // sent), and watches subscriptions, beats and replays.
  void Loop() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    absl::Time next_beat = absl::Now() + options_.beat_interval;
    for (;;) {
      std::vector<PendingReplay> replays;
      std::deque<Batch> batches;
      {
        absl::MutexLock l(&mu_);
        const auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
          return stop_ || !replays_.empty() || !ready_.empty() ||
                 !open_streams_.empty();
        };
        mu_.AwaitWithTimeout(absl::Condition(&ready), kPoll);
        if (stop_) return;
        replays.swap(replays_);
        batches = TakeBatchesLocked();
        sending_ = !batches.empty();
      }
      if (!batches.empty()) SendBatches(batches);
      DrainSubscriptions();
      for (PendingReplay& r : replays) Replay(r);
      const absl::Time now = absl::Now();
      if (now >= next_beat) {
        SendBeats(now);
        next_beat = now + options_.beat_interval;
      }
    }
  }

  // Subscription messages: [1|0] + prefix. Presence prefixes count
  // subscribers; topic prefixes need nothing (libzmq filters).
  void DrainSubscriptions() {
    absl::MutexLock l(&mu_);
    for (int i = 0; i < 1024; ++i) {
      zmq::message_t msg;
      try {
        if (!xpub_.recv(msg, zmq::recv_flags::dontwait)) return;
      } catch (const zmq::error_t& e) {
        return;
      }
      absl::string_view data(msg.data<char>(), msg.size());
      if (data.empty()) continue;
      const bool subscribe = data[0] == 1;
      absl::string_view prefix = data.substr(1);
      if (!absl::StartsWith(prefix, ps::kPresencePrefix)) continue;
      std::string id(prefix.substr(ps::kPresencePrefix.size()));
      if (subscribe) {
        presence_.insert(std::move(id));
      } else {
        presence_.erase(id);
      }
    }
  }

  void SendBeats(absl::Time now) {
    absl::MutexLock l(&mu_);
    for (auto& [topic, stream] : streams_) {
      Stream& s = *stream;
      // With nothing of the stream waiting, every seq assigned was sent or
      // dropped (send queue full): announcing the newest reports the drops
      // too. Otherwise only what was sent, lest the beat overtake it.
      const bool idle = s.held.empty() && s.open.empty() && s.queued == 0;
      const uint64_t newest = idle ? s.seq : s.sent_seq;
      if (newest == 0 ||
          now - s.last_publish > kBeatIdleIntervals * options_.beat_interval) {
        continue;
      }
      zmq::message_t frame(ps::FrameHeaderSize(s.topic));
      ps::EncodeFrameHeader(s.topic,
                            ps::kFlagBeat | (s.durable ? ps::kFlagDurable : 0),
                            s.id, newest, 0, frame.data<char>());
      try {
        if (xpub_.send(frame, zmq::send_flags::dontwait)) ++stats_.beats;
      } catch (const zmq::error_t&) {
      }
    }
  }

  void Replay(const PendingReplay& pending) {
    const ps::ReplayRequest& r = pending.request;
    ps::ReplayData reply;
    reply.subscriber = r.subscriber;
    reply.request = r.request;
    reply.stream = r.stream;
    auto it = durable_by_id_.find(r.stream);
    bool ok = false;
    if (it == durable_by_id_.end()) {
      reply.status = ps::ReplayStatus::kUnknownStream;
    } else {
      TopicLog& log = *it->second->log;
      absl::StatusOr<uint64_t> from = r.seq;
      if (r.from == ps::ReplayFrom::kEarliest) {
        from = log.first_seq();
      } else if (r.from == ps::ReplayFrom::kTime) {
        from = log.SeqAtTime(r.time);
      }
      TopicLogRead chunk;
      absl::Status status =
          from.ok()
              ? log.Read(*from, std::min(r.max_entries, kMaxReplayEntries),
                         std::min(r.max_bytes, kMaxReplayBytes), &chunk)
              : from.status();
      if (!status.ok()) {
        FABRIC_LOG(kWarning, kPubSub, "FAB-PUB-REPLAY ", status.ToString());
        reply.status = ps::ReplayStatus::kError;
      } else {
        ok = true;
        reply.start = std::max(*from, chunk.first_seq);
        reply.first_seq = chunk.first_seq;
        reply.durable_seq = chunk.durable_seq;
        reply.next = chunk.next;
        reply.entries = std::move(chunk.entries);
      }
    }
    {
      absl::MutexLock l(&mu_);
      ++stats_.replay_requests;
      if (ok) {
        stats_.replayed += reply.entries.size();
      } else {
        ++stats_.replay_errors;
      }
    }
    auto body = std::make_shared<std::string>(ps::EncodeReplayData(reply));
    auto plugin = plugin_;
    const NodeId to = pending.from;
    (void)node_.Post([plugin, to, body](NodeContext& ctx) {
      // A reply that cannot be sent (link down or full) is not retried
      // here: the subscriber asks again after its replay timeout.
      (void)plugin->Send(ctx, to, ps::kReplayData, *body);
    });
  }

  Node& node_;
  const PublisherOptions options_;
  std::shared_ptr<ps::PubSubPlugin> plugin_;
  std::string endpoint_;
  // Durable streams by id; filled in Init, then read-only.
  absl::flat_hash_map<uint64_t, Stream*> durable_by_id_;

  zmq::context_t ctx_{1};
  // Secure mode (null otherwise): the keys, and the ZAP handler of ctx_,
  // which outlives the XPUB and goes before the context (Close).
  std::shared_ptr<const security::NodeSecurity> security_;
  std::unique_ptr<security::ZapHandler> zap_;
  mutable absl::Mutex mu_;
  // Used under mu_, or by the sender thread alone while `sending_` is set
  // (and by Close once that thread is gone).
  zmq::socket_t xpub_;
  bool sending_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_publish_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::flat_hash_map<std::string, std::unique_ptr<Stream>> streams_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> presence_ ABSL_GUARDED_BY(mu_);
  PublisherStats stats_ ABSL_GUARDED_BY(mu_);
  uint64_t durable_pending_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;

  std::vector<Stream*> open_streams_ ABSL_GUARDED_BY(mu_);
  std::deque<Batch> ready_ ABSL_GUARDED_BY(mu_);
  std::vector<PendingReplay> replays_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

absl::StatusOr<std::unique_ptr<Publisher>> Publisher::Create(
    Node& node, PublisherOptions options) {
  auto impl = std::make_shared<Impl>(node, std::move(options));
  absl::Status status = impl->Init();
  if (!status.ok()) {
    impl->Close();
    return status;
  }
  return std::unique_ptr<Publisher>(new Publisher(std::move(impl)));
}

Publisher::Publisher(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Publisher::~Publisher() { Close(); }

absl::StatusOr<uint64_t> Publisher::Publish(absl::string_view topic,
                                            absl::string_view body,
                                            const Headers& headers) {
  return impl_->Publish(topic, body, headers);
}
absl::Status Publisher::WaitForSubscribers(size_t n, absl::Duration timeout) {
  return impl_->WaitForSubscribers(n, timeout);
}
absl::Status Publisher::Flush(absl::Duration timeout) {
  return impl_->Flush(timeout);
}
void Publisher::Close() { impl_->Close(); }
const std::string& Publisher::endpoint() const { return impl_->endpoint(); }
PublisherStats Publisher::Stats() const { return impl_->Stats(); }

}  // namespace fabric
