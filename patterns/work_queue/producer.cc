// SPDX-License-Identifier: Apache-2.0
#include "patterns/work_queue/producer.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <queue>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "fabric/base/log.h"
#include "fabric/base/status_macros.h"
#include "fabric/codec/wire_format.h"
#include "patterns/work_queue/internal/queue_plugin.h"
#include "patterns/work_queue/internal/wire.h"

namespace fabric {
namespace {

// A task must fit in one frame with room for the envelope.
constexpr size_t kMaxTaskBytes = kDefaultMaxMessageBytes - 64 * 1024;
// A frame of tasks stops growing past this many bytes.
constexpr size_t kMaxFrameBytes = 1 << 20;
// Unused credit is handed back after this long without a backlog, so other
// producers of the worker get it.
constexpr absl::Duration kIdleCreditReturn = absl::Milliseconds(100);
// A demand is repeated when no credit came for this long (a lost message).
constexpr absl::Duration kDemandResend = absl::Seconds(1);
// Leases are checked this often.
constexpr absl::Duration kLeaseCheck = absl::Milliseconds(100);

size_t TaskBytes(const Headers& headers, absl::string_view body) {
  size_t n = body.size();
  for (const auto& [k, v] : headers) n += k.size() + v.size();
  return n;
}

}  // namespace

std::string TaskId::ToString() const {
  return absl::StrCat(producer.ShortHex(), ":", seq);
}

class Producer::Impl : public wq::ProducerEndpoint,
                       public std::enable_shared_from_this<Impl> {
 public:
  Impl(Node& node, ProducerOptions options)
      : node_(node), options_(std::move(options)) {}

  ~Impl() override {
    StopCallbacks();
    // The spool's writer thread calls back into this object until joined.
    spool_.reset();
  }
  // Undoes a failed Init (nothing was registered with the engine).
  void Abandon() {
    {
      absl::MutexLock lock(&mu_);
      closed_ = true;
    }
    StopCallbacks();
    spool_.reset();
  }

  absl::Status Init();
  // Appends one task, waiting for room until `deadline`. When there is
  // none by then: kResourceExhausted (counted as a rejected push, its
  // message saying the push `waited` that long) if `final_wait`, else
  // kDeadlineExceeded (not counted; see PushAsyncWithin).
  absl::StatusOr<TaskId> PushAsync(absl::string_view body,
                                   const Headers& headers, absl::Time deadline,
                                   bool final_wait, absl::Duration waited);
  absl::Status WaitConfirmed(uint64_t seq, absl::Duration timeout);
  absl::Status WaitCompleted(absl::Duration timeout);
  void Close();

  const NodeId& producer_id() const { return producer_id_; }
  absl::Duration push_timeout() const { return options_.push_timeout; }
  uint64_t confirmed_seq() const {
    absl::MutexLock lock(&mu_);
    return confirmed_seq_;
  }
  ProducerStats Stats() const;
  std::vector<DeadLetter> MemoryDeadLetters() const {
    absl::MutexLock lock(&mu_);
    return memory_dead_;
  }
  absl::StatusOr<std::vector<DeadLetter>> DeadLetters() const {
    std::shared_ptr<Spool> spool;
    {
      absl::MutexLock lock(&mu_);
      if (!spooled_) return memory_dead_;
      spool = spool_;
    }
    if (spool == nullptr) return Spool::ScanDead(options_.spool_dir);
    return spool->DeadLetters();
  }

  // wq::ProducerEndpoint (engine thread).
  const std::string& queue() const override { return options_.queue; }
  void OnWorkerUp(NodeContext& ctx, const NodeId& worker) override;
  // Sets the `workers` gauge to the workers offering the queue.
  void CountWorkers();
  void OnWorkerDown(NodeContext& ctx, const NodeId& worker, bool lost) override;
  void OnCredit(NodeContext& ctx, const NodeId& from,
                const wq::Credit& m) override;
  void OnResults(NodeContext& ctx, const NodeId& from,
                 const wq::Results& m) override;
  void OnExtend(NodeContext& ctx, const NodeId& from,
                const wq::Extend& m) override;
  void OnTick(NodeContext& ctx, absl::Time now) override;

 private:
  // A task on its way from Push to the engine.
  struct NewTask {
    uint64_t seq;
    absl::Time enqueued;
    Headers headers;
    std::string body;
    bool recovered = false;
  };
  enum class State : uint8_t { kReady, kInFlight, kRetryWait };
  struct TaskState {
    Headers headers;
    std::string body;
    absl::Time enqueued;
    uint32_t attempts = 0;
    bool recovered = false;
    State state = State::kReady;
    NodeId worker;
    absl::Time lease_deadline;
  };
  struct WorkerLink {
    uint64_t credit = 0;
    bool offering = true;
    bool wants_sent = false;  // the worker believes we have a backlog
    absl::Time last_demand = absl::InfinitePast();
    absl::Time last_credit = absl::InfinitePast();
    absl::Time last_use = absl::InfinitePast();
  };

  // App side.
  absl::Status CheckOpen() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MoveDurableLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ToEngine(std::vector<NewTask> tasks);
  void OnDurable(uint64_t seq);
  void OnSpoolError(const absl::Status& status);
  void CallbackLoop();
  void StopCallbacks();

  // Engine side.
  void Drain(NodeContext& ctx);
  void Dispatch(NodeContext& ctx, absl::Time now);
  void MaybeDemand(NodeContext& ctx, absl::Time now);
  void SendDemand(NodeContext& ctx, const NodeId& worker, WorkerLink& link,
                  uint64_t backlog, uint64_t returned, absl::Time now);
  // Ends the current lease of `t` if it is in flight.
  void EndLease(uint64_t seq, TaskState& t);
  void Ack(uint64_t seq, const NodeId& from);
  // A delivery failed; retries it (after `delay`) or dead-letters it.
  void Fail(uint64_t seq, TaskState& t, const NodeId& worker,
            absl::string_view reason, absl::Duration delay, absl::Time now);
  void Kill(uint64_t seq, TaskState& t, const NodeId& worker,
            std::string reason);
  absl::Duration Backoff(uint32_t attempts);
  void FlushCompletions();

  Node& node_;
  const ProducerOptions options_;
  // Set once in Init. Pushers copy it under mu_, so Close cannot destroy
  // the spool under a push waiting for room.
  std::shared_ptr<Spool> spool_;
  bool spooled_ = false;
  NodeId producer_id_;
  std::shared_ptr<wq::QueuePlugin> plugin_;

  mutable absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;  // memory-only
  uint64_t durable_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t confirmed_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t total_ ABSL_GUARDED_BY(mu_) = 0;           // pushed + recovered
  uint64_t resolved_ ABSL_GUARDED_BY(mu_) = 0;        // acked + dead
  uint64_t held_bytes_ ABSL_GUARDED_BY(mu_) = 0;      // memory-only
  std::deque<NewTask> staging_ ABSL_GUARDED_BY(mu_);  // not yet durable
  std::vector<DeadLetter> memory_dead_ ABSL_GUARDED_BY(mu_);

  absl::Mutex inbox_mu_;
  std::vector<NewTask> inbox_ ABSL_GUARDED_BY(inbox_mu_);
  bool drain_posted_ ABSL_GUARDED_BY(inbox_mu_) = false;

  absl::Mutex cb_mu_;
  std::deque<Completion> cb_queue_ ABSL_GUARDED_BY(cb_mu_);
  bool cb_stop_ ABSL_GUARDED_BY(cb_mu_) = false;
  std::thread cb_thread_;

  struct Counters {
    std::atomic<uint64_t> pushed{0}, confirmed{0}, recovered{0}, dispatched{0},
        redelivered{0}, acked{0}, late_acks{0}, retries{0}, lease_expired{0},
        worker_lost{0}, dead_lettered{0}, rejected_pushes{0}, in_flight{0},
        backlog{0}, workers{0};
  };
  Counters counters_;

  // Engine thread only.
  bool engine_detached_ = false;
  absl::flat_hash_map<uint64_t, TaskState> tasks_;
  std::deque<uint64_t> ready_;
  absl::flat_hash_set<uint64_t> in_flight_;
  using RetryEntry = std::pair<absl::Time, uint64_t>;
  std::priority_queue<RetryEntry, std::vector<RetryEntry>,
                      std::greater<RetryEntry>>
      retry_heap_;
  absl::flat_hash_map<NodeId, WorkerLink> workers_;
  absl::Time last_lease_check_ = absl::InfinitePast();
  std::vector<Completion> completions_;
  uint64_t freed_bytes_ = 0;
  absl::BitGen rng_;
};

// ---------------------------------------------------------------- app side

absl::Status Producer::Impl::Init() {
  if (options_.queue.empty() || options_.queue.size() > wq::kMaxQueueName) {
    return absl::InvalidArgumentError("queue name must be 1..256 bytes");
  }
  if (options_.max_attempts < 1) {
    return absl::InvalidArgumentError("max_attempts must be at least 1");
  }
  if (options_.lease <= absl::ZeroDuration() ||
      options_.push_timeout < absl::ZeroDuration() ||
      options_.retry_backoff < absl::ZeroDuration() || options_.max_batch < 1 ||
      options_.max_bytes == 0) {
    return absl::InvalidArgumentError(
        "lease, max_batch and max_bytes must be positive and timeouts not "
        "negative");
  }
  if (options_.max_batch > wq::kMaxTasksPerFrame) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch must be at most ", wq::kMaxTasksPerFrame,
                     " (what workers decode in one frame)"));
  }
  std::vector<NewTask> recovered;
  if (!options_.spool_dir.empty()) {
    SpoolOptions so;
    so.dir = options_.spool_dir;
    so.queue = options_.queue;
    so.fsync = options_.fsync;
    so.fsync_interval = options_.fsync_interval;
    so.max_bytes = options_.max_bytes;
    // The spool calls back until it is destroyed, which happens in ~Impl.
    Impl* self = this;
    so.on_durable = [self](uint64_t seq) { self->OnDurable(seq); };
    so.on_error = [self](const absl::Status& s) { self->OnSpoolError(s); };
    FABRIC_ASSIGN_OR_RETURN(spool_, Spool::Open(std::move(so)));
    spooled_ = true;
    producer_id_ = spool_->producer_id();
    const SpoolReport& report = spool_->recovery();
    if (!report.corrupt.empty() || report.torn_tail_bytes > 0) {
      FABRIC_LOG(kWarning, "FAB-WQ-SPOOL-RECOVERY ", options_.spool_dir, ": ",
                 report.corrupt.size(), " corrupt record(s) skipped, ",
                 report.torn_tail_bytes, " torn tail byte(s) cut");
    }
    for (SpooledTask& t : spool_->TakePending()) {
      recovered.push_back(NewTask{t.seq, t.enqueued, std::move(t.headers),
                                  std::move(t.body), true});
    }
    absl::MutexLock lock(&mu_);
    durable_seq_ = confirmed_seq_ = report.next_seq - 1;
    total_ = recovered.size();
  } else {
    producer_id_ = NodeId::Random();
  }
  counters_.recovered = recovered.size();
  // Not yet visible to the engine: fill the engine state directly.
  for (NewTask& t : recovered) {
    TaskState& s = tasks_[t.seq];
    s.headers = std::move(t.headers);
    s.body = std::move(t.body);
    s.enqueued = t.enqueued;
    s.recovered = true;
    ready_.push_back(t.seq);
  }
  counters_.backlog = ready_.size();
  if (options_.on_completed) {
    // Holds the producer alive while a callback runs, even one that
    // closes or destroys the Producer.
    cb_thread_ =
        std::thread([self = shared_from_this()] { self->CallbackLoop(); });
  }
  FABRIC_ASSIGN_OR_RETURN(plugin_, wq::QueuePlugin::Get(node_));
  std::shared_ptr<Impl> self = shared_from_this();
  return node_.Call([self](NodeContext& ctx) {
    FABRIC_RETURN_IF_ERROR(self->plugin_->AddProducer(ctx, self));
    self->Dispatch(ctx, ctx.Now());
    self->plugin_->RunLocal(ctx);
    return absl::OkStatus();
  });
}

absl::Status Producer::Impl::CheckOpen() const {
  if (closed_) return absl::CancelledError("producer is closed");
  return failure_;
}

absl::StatusOr<TaskId> Producer::Impl::PushAsync(absl::string_view body,
                                                 const Headers& headers,
                                                 absl::Time deadline,
                                                 bool final_wait,
                                                 absl::Duration waited) {
  const size_t size = TaskBytes(headers, body);
  if (size > kMaxTaskBytes || headers.size() > kMaxHeaders) {
    counters_.rejected_pushes++;
    return absl::InvalidArgumentError(absl::StrCat(
        "task of ", size, " bytes exceeds the limit of ", kMaxTaskBytes));
  }
  if (!spooled_) {
    absl::MutexLock lock(&mu_);
    auto room = [this, size]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return closed_ || held_bytes_ + size <= options_.max_bytes ||
             held_bytes_ == 0;
    };
    mu_.AwaitWithDeadline(absl::Condition(&room), deadline);
    FABRIC_RETURN_IF_ERROR(CheckOpen());
    if (!room()) {
      if (!final_wait) return absl::DeadlineExceededError("no room yet");
      counters_.rejected_pushes++;
      return absl::ResourceExhaustedError(absl::StrCat(
          "producer limit of ", options_.max_bytes, " bytes held for queue ",
          options_.queue, " reached; waited ", absl::FormatDuration(waited)));
    }
    const uint64_t seq = next_seq_++;
    held_bytes_ += size;
    total_++;
    confirmed_seq_ = seq;
    counters_.pushed++;
    counters_.confirmed++;
    std::vector<NewTask> one;
    one.push_back(NewTask{seq, absl::Now(), headers, std::string(body)});
    ToEngine(std::move(one));
    return TaskId{producer_id_, seq};
  }
  std::shared_ptr<Spool> spool;  // outlives the lock below
  {
    absl::MutexLock lock(&mu_);
    FABRIC_RETURN_IF_ERROR(CheckOpen());
    spool = spool_;
  }
  if (spool == nullptr) return absl::CancelledError("producer is closed");
  uint64_t seq = 0;
  for (;;) {
    absl::StatusOr<uint64_t> appended = spool->Append(headers, body);
    if (appended.ok()) {
      seq = *appended;
      break;
    }
    const bool over_limit =
        spool->live_bytes() + size > spool->max_bytes() && spool->health().ok();
    if (appended.status().code() != absl::StatusCode::kResourceExhausted ||
        !over_limit) {
      counters_.rejected_pushes++;
      return appended.status();
    }
    if (!spool->WaitForRoom(deadline) && absl::Now() >= deadline) {
      if (!final_wait) return absl::DeadlineExceededError("no room yet");
      counters_.rejected_pushes++;
      return absl::ResourceExhaustedError(
          absl::StrCat("spool limit of ", spool->max_bytes(),
                       " bytes reached in ", options_.spool_dir, "; waited ",
                       absl::FormatDuration(waited), " for workers to ack"));
    }
    absl::MutexLock lock(&mu_);
    FABRIC_RETURN_IF_ERROR(CheckOpen());
  }
  absl::MutexLock lock(&mu_);
  total_++;
  counters_.pushed++;
  NewTask task{seq, absl::Now(), headers, std::string(body)};
  // Concurrent pushers may insert slightly out of order; keep seq order.
  auto pos = staging_.end();
  while (pos != staging_.begin() && std::prev(pos)->seq > seq) --pos;
  staging_.insert(pos, std::move(task));
  if (seq <= durable_seq_) MoveDurableLocked();
  return TaskId{producer_id_, seq};
}

void Producer::Impl::OnDurable(uint64_t seq) {
  absl::MutexLock lock(&mu_);
  if (seq <= durable_seq_) return;
  counters_.confirmed += seq - std::max(durable_seq_, confirmed_seq_);
  durable_seq_ = seq;
  confirmed_seq_ = seq;
  MoveDurableLocked();
}

void Producer::Impl::OnSpoolError(const absl::Status& status) {
  FABRIC_LOG(kError, "FAB-WQ-SPOOL-FAILED ", options_.spool_dir, ": ",
             status.message());
  absl::MutexLock lock(&mu_);
  if (failure_.ok()) failure_ = status;
}

void Producer::Impl::MoveDurableLocked() {
  std::vector<NewTask> ready;
  while (!staging_.empty() && staging_.front().seq <= durable_seq_) {
    ready.push_back(std::move(staging_.front()));
    staging_.pop_front();
  }
  if (!ready.empty()) ToEngine(std::move(ready));
}

void Producer::Impl::ToEngine(std::vector<NewTask> tasks) {
  bool post = false;
  {
    absl::MutexLock lock(&inbox_mu_);
    if (inbox_.empty()) {
      inbox_ = std::move(tasks);
    } else {
      for (NewTask& t : tasks) inbox_.push_back(std::move(t));
    }
    if (!drain_posted_) drain_posted_ = post = true;
  }
  if (post) {
    // Null while ~Impl runs (the spool's last confirmations arrive then).
    std::shared_ptr<Impl> self = weak_from_this().lock();
    if (self == nullptr) return;
    // A closed node drops the post; the tasks stay in the spool.
    (void)node_.Post([self](NodeContext& ctx) { self->Drain(ctx); });
  }
}

absl::Status Producer::Impl::WaitConfirmed(uint64_t seq,
                                           absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto done = [this, seq]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return confirmed_seq_ >= seq || closed_ || !failure_.ok();
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&done), timeout)) {
    return absl::DeadlineExceededError(absl::StrCat(
        "task ", seq, " not confirmed within ", absl::FormatDuration(timeout)));
  }
  if (confirmed_seq_ >= seq) return absl::OkStatus();
  return CheckOpen();
}

absl::Status Producer::Impl::WaitCompleted(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return resolved_ >= total_ || closed_ || !failure_.ok();
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&done), timeout)) {
    return absl::DeadlineExceededError(absl::StrCat(
        total_ - resolved_, " of ", total_, " task(s) not completed within ",
        absl::FormatDuration(timeout)));
  }
  if (resolved_ >= total_) return absl::OkStatus();
  return CheckOpen();
}

void Producer::Impl::Close() {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
  }
  if (plugin_ == nullptr) return;
  std::shared_ptr<Impl> self = shared_from_this();
  absl::Status removed = node_.Call([self](NodeContext& ctx) {
    // Workers stop counting this producer as wanting work and get their
    // unused credit back.
    const absl::Time now = ctx.Now();
    for (auto& [id, link] : self->workers_) {
      const uint64_t credit = link.credit;
      link.credit = 0;
      self->SendDemand(ctx, id, link, 0, credit, now);
    }
    self->engine_detached_ = true;
    self->plugin_->RemoveProducer(ctx, self->options_.queue);
    return absl::OkStatus();
  });
  StopCallbacks();
  // Once the engine acknowledged the removal it never touches the spool
  // again, so it can be closed now (a later producer may reopen it). When
  // the node is already closed the spool closes with the last reference.
  if (removed.ok()) {
    std::shared_ptr<Spool> drop;
    {
      absl::MutexLock lock(&mu_);
      drop = std::move(spool_);
    }
    // Destroyed outside mu_: the spool reports its last records through
    // OnDurable, which takes mu_.
    drop.reset();
  }
}

void Producer::Impl::CallbackLoop() {
  for (;;) {
    std::deque<Completion> batch;
    {
      absl::MutexLock lock(&cb_mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(cb_mu_) {
        return cb_stop_ || !cb_queue_.empty();
      };
      cb_mu_.Await(absl::Condition(&ready));
      if (cb_queue_.empty()) return;
      batch.swap(cb_queue_);
    }
    for (const Completion& c : batch) options_.on_completed(c);
  }
}

void Producer::Impl::StopCallbacks() {
  {
    absl::MutexLock lock(&cb_mu_);
    cb_stop_ = true;
  }
  if (cb_thread_.joinable() &&
      cb_thread_.get_id() != std::this_thread::get_id()) {
    cb_thread_.join();
  } else if (cb_thread_.joinable()) {
    cb_thread_.detach();
  }
}

ProducerStats Producer::Impl::Stats() const {
  const Counters& c = counters_;
  ProducerStats s;
  s.pushed = c.pushed.load();
  s.confirmed = c.confirmed.load();
  s.recovered = c.recovered.load();
  s.dispatched = c.dispatched.load();
  s.redelivered = c.redelivered.load();
  s.acked = c.acked.load();
  s.late_acks = c.late_acks.load();
  s.retries = c.retries.load();
  s.lease_expired = c.lease_expired.load();
  s.worker_lost = c.worker_lost.load();
  s.dead_lettered = c.dead_lettered.load();
  s.rejected_pushes = c.rejected_pushes.load();
  // Frames are decoded before they reach a producer: the node's plugin
  // counts them.
  s.malformed = plugin_ != nullptr ? plugin_->malformed() : 0;
  s.in_flight = c.in_flight.load();
  s.backlog = c.backlog.load();
  s.workers = c.workers.load();
  return s;
}

// ------------------------------------------------------------- engine side

void Producer::Impl::Drain(NodeContext& ctx) {
  std::vector<NewTask> batch;
  {
    absl::MutexLock lock(&inbox_mu_);
    batch.swap(inbox_);
    drain_posted_ = false;
  }
  if (engine_detached_) return;
  for (NewTask& t : batch) {
    auto [it, inserted] = tasks_.try_emplace(t.seq);
    if (!inserted) continue;
    TaskState& s = it->second;
    s.headers = std::move(t.headers);
    s.body = std::move(t.body);
    s.enqueued = t.enqueued;
    s.recovered = t.recovered;
    ready_.push_back(t.seq);
  }
  Dispatch(ctx, ctx.Now());
  FlushCompletions();
  plugin_->RunLocal(ctx);
}

void Producer::Impl::Dispatch(NodeContext& ctx, absl::Time now) {
  struct Target {
    NodeId id;
    WorkerLink* link;
    wq::TasksEncoder encoder;
    std::vector<uint64_t> seqs;
  };
  std::vector<Target> targets;
  for (auto& [id, link] : workers_) {
    if (link.offering && link.credit > 0) {
      targets.push_back(Target{
          id, &link, wq::TasksEncoder(options_.queue, producer_id_), {}});
    }
  }
  size_t with_credit = targets.size();
  auto send = [&](Target& target) {
    if (target.seqs.empty()) return;
    absl::Status sent =
        plugin_->Send(ctx, target.id, wq::kTasks, target.encoder.Finish());
    if (!sent.ok()) {
      // Undo: the tasks go back to the front, in order, and the worker gets
      // nothing more until it grants credit again.
      FABRIC_LOG(kInfo, "FAB-WQ-SEND ", options_.queue, " to ",
                 target.id.ShortHex(), " failed: ", sent.message());
      for (auto it = target.seqs.rbegin(); it != target.seqs.rend(); ++it) {
        auto t = tasks_.find(*it);
        if (t == tasks_.end()) continue;
        EndLease(*it, t->second);
        t->second.attempts--;
        t->second.state = State::kReady;
        ready_.push_front(*it);
      }
      if (target.link->credit > 0) with_credit--;
      target.link->credit = 0;
      target.link->wants_sent = false;
    } else {
      counters_.dispatched += target.seqs.size();
    }
    target.seqs.clear();
    target.encoder = wq::TasksEncoder(options_.queue, producer_id_);
  };
  while (!ready_.empty() && with_credit > 0) {
    const uint64_t seq = ready_.front();
    ready_.pop_front();
    auto it = tasks_.find(seq);
    if (it == tasks_.end() || it->second.state != State::kReady) continue;
    TaskState& t = it->second;
    const size_t task_bytes = TaskBytes(t.headers, t.body);
    // The worker with the most credit; a redelivery avoids the worker that
    // had the task last when another one has credit.
    Target* best = nullptr;
    for (Target& c : targets) {
      if (c.link->credit == 0) continue;
      if (t.attempts > 0 && c.id == t.worker && with_credit > 1) continue;
      if (best == nullptr || c.link->credit > best->link->credit) best = &c;
    }
    if (best == nullptr) {
      ready_.push_front(seq);
      break;
    }
    // Keep frames under kMaxFrameBytes unless one task alone is bigger, and
    // so always under the peers' message limit.
    if (!best->seqs.empty() &&
        best->encoder.bytes() + task_bytes > kMaxFrameBytes) {
      send(*best);
      if (best->link->credit == 0) {  // the send failed
        ready_.push_front(seq);
        continue;
      }
    }
    t.attempts++;
    t.state = State::kInFlight;
    t.worker = best->id;
    t.lease_deadline = now + options_.lease;
    in_flight_.insert(seq);
    if (t.attempts > 1) counters_.redelivered++;
    best->encoder.Add(seq, t.attempts, t.recovered || t.attempts > 1, t.headers,
                      t.body);
    best->seqs.push_back(seq);
    if (--best->link->credit == 0) with_credit--;
    best->link->last_use = now;
    if (best->seqs.size() >= options_.max_batch ||
        best->encoder.bytes() >= kMaxFrameBytes) {
      send(*best);
    }
  }
  for (Target& t : targets) send(t);
  counters_.in_flight = in_flight_.size();
  counters_.backlog = ready_.size();
  MaybeDemand(ctx, now);
}

void Producer::Impl::MaybeDemand(NodeContext& ctx, absl::Time now) {
  if (ready_.empty()) return;
  for (auto& [id, link] : workers_) {
    if (!link.offering || link.credit > 0) continue;
    if (!link.wants_sent || (now - link.last_demand > kDemandResend &&
                             now - link.last_credit > kDemandResend)) {
      SendDemand(ctx, id, link, ready_.size(), 0, now);
    }
  }
}

void Producer::Impl::SendDemand(NodeContext& ctx, const NodeId& worker,
                                WorkerLink& link, uint64_t backlog,
                                uint64_t returned, absl::Time now) {
  wq::Demand demand{options_.queue, backlog, returned};
  absl::Status sent =
      plugin_->Send(ctx, worker, wq::kDemand, wq::EncodeDemand(demand));
  link.last_demand = now;
  if (sent.ok()) link.wants_sent = backlog > 0;
}

void Producer::Impl::EndLease(uint64_t seq, TaskState& t) {
  if (t.state == State::kInFlight) in_flight_.erase(seq);
}

void Producer::Impl::CountWorkers() {
  uint64_t offering = 0;
  for (const auto& [id, link] : workers_) offering += link.offering ? 1 : 0;
  counters_.workers = offering;
}

void Producer::Impl::OnWorkerUp(NodeContext& ctx, const NodeId& worker) {
  if (engine_detached_) return;
  if (options_.accept_worker &&
      !options_.accept_worker(worker == ctx.self_id() ? nullptr
                                                      : ctx.FindPeer(worker))) {
    // Refused (perhaps newly, after its HELLO changed): hand back credit it
    // granted us, or it would stay reserved at the worker for good.
    auto it = workers_.find(worker);
    if (it != workers_.end() && it->second.credit > 0) {
      SendDemand(ctx, worker, it->second, 0, it->second.credit, ctx.Now());
    }
    OnWorkerDown(ctx, worker, /*lost=*/false);
    return;
  }
  auto [it, inserted] = workers_.try_emplace(worker);
  if (!inserted && it->second.offering) return;
  it->second.offering = true;
  it->second.wants_sent = false;
  CountWorkers();
  FABRIC_LOG(kInfo, "FAB-WQ-WORKER-UP ", options_.queue, " ",
             worker.ShortHex());
  MaybeDemand(ctx, ctx.Now());
}

void Producer::Impl::OnWorkerDown(NodeContext& ctx, const NodeId& worker,
                                  bool lost) {
  if (engine_detached_) return;
  auto it = workers_.find(worker);
  if (it == workers_.end()) return;
  if (!lost) {
    // It stopped offering the queue: no more dispatch; what it holds may
    // still complete (or come back released), or its leases run out.
    it->second.offering = false;
    it->second.credit = 0;
    CountWorkers();
    return;
  }
  const absl::Time now = ctx.Now();
  std::vector<uint64_t> held;
  for (uint64_t seq : in_flight_) {
    auto t = tasks_.find(seq);
    if (t != tasks_.end() && t->second.worker == worker) held.push_back(seq);
  }
  workers_.erase(it);
  CountWorkers();
  // Highest first, so that pushing to the front restores seq order.
  std::sort(held.rbegin(), held.rend());
  for (uint64_t seq : held) {
    auto t = tasks_.find(seq);
    counters_.worker_lost++;
    Fail(seq, t->second, worker, "worker lost", absl::ZeroDuration(), now);
  }
  if (!held.empty()) {
    FABRIC_LOG(kInfo, "FAB-WQ-WORKER-LOST ", options_.queue, " ",
               worker.ShortHex(), ": ", held.size(),
               " delivery(ies) to redeliver");
  }
  Dispatch(ctx, now);
  FlushCompletions();
}

void Producer::Impl::OnCredit(NodeContext& ctx, const NodeId& from,
                              const wq::Credit& m) {
  if (engine_detached_) return;
  auto it = workers_.find(from);
  if (it == workers_.end()) return;
  const absl::Time now = ctx.Now();
  if (!it->second.offering) {
    // Not a worker we dispatch to (any more): give the grant back.
    if (m.grant > 0) SendDemand(ctx, from, it->second, 0, m.grant, now);
    return;
  }
  it->second.credit += m.grant;
  it->second.last_credit = now;
  it->second.last_use = now;
  Dispatch(ctx, now);
}

void Producer::Impl::Ack(uint64_t seq, const NodeId& from) {
  auto it = tasks_.find(seq);
  if (it == tasks_.end()) return;  // already resolved
  TaskState& t = it->second;
  const bool current = t.state == State::kInFlight && t.worker == from;
  if (!current) counters_.late_acks++;
  EndLease(seq, t);
  if (spool_ != nullptr) {
    spool_->Ack(seq);
  } else {
    freed_bytes_ += TaskBytes(t.headers, t.body);
  }
  counters_.acked++;
  completions_.push_back(Completion{TaskId{producer_id_, seq},
                                    Completion::Kind::kAcked, t.attempts, "",
                                    from});
  tasks_.erase(it);
}

absl::Duration Producer::Impl::Backoff(uint32_t attempts) {
  absl::Duration d = options_.retry_backoff;
  for (uint32_t i = 1; i < attempts && d < options_.max_retry_backoff; ++i) {
    d *= 2;
  }
  d = std::min(d, options_.max_retry_backoff);
  return d * absl::Uniform(rng_, 0.9, 1.1);
}

void Producer::Impl::Fail(uint64_t seq, TaskState& t, const NodeId& worker,
                          absl::string_view reason, absl::Duration delay,
                          absl::Time now) {
  EndLease(seq, t);
  if (t.attempts >= options_.max_attempts) {
    Kill(seq, t, worker,
         absl::StrCat("max_attempts: ", t.attempts,
                      " deliveries, last: ", reason));
    return;
  }
  if (delay > absl::ZeroDuration()) {
    t.state = State::kRetryWait;
    retry_heap_.push({now + delay, seq});
  } else {
    t.state = State::kReady;
    ready_.push_front(seq);
  }
}

void Producer::Impl::Kill(uint64_t seq, TaskState& t, const NodeId& worker,
                          std::string reason) {
  EndLease(seq, t);
  DeadLetter dead;
  dead.task.seq = seq;
  dead.task.enqueued = t.enqueued;
  dead.task.headers = t.headers;
  dead.task.body = t.body;
  dead.attempts = t.attempts;
  dead.reason = reason;
  dead.died = absl::Now();
  FABRIC_LOG(kInfo, "FAB-WQ-DEAD ", options_.queue, " ",
             TaskId{producer_id_, seq}.ToString(), ": ", reason);
  if (spool_ != nullptr) {
    absl::Status added = spool_->AddDead(dead);
    if (!added.ok()) {
      FABRIC_LOG(kError, "FAB-WQ-DEAD-LOST ", options_.queue, " ",
                 TaskId{producer_id_, seq}.ToString(),
                 ": cannot record dead letter: ", added.message());
    }
  } else {
    absl::MutexLock lock(&mu_);
    memory_dead_.push_back(dead);
  }
  counters_.dead_lettered++;
  freed_bytes_ += TaskBytes(t.headers, t.body);
  completions_.push_back(Completion{TaskId{producer_id_, seq},
                                    Completion::Kind::kDeadLettered, t.attempts,
                                    std::move(reason), worker});
  tasks_.erase(seq);
}

void Producer::Impl::OnResults(NodeContext& ctx, const NodeId& from,
                               const wq::Results& m) {
  if (engine_detached_) return;
  const absl::Time now = ctx.Now();
  for (uint64_t seq : m.acked) Ack(seq, from);
  for (const wq::OtherResult& r : m.others) {
    auto it = tasks_.find(r.seq);
    if (it == tasks_.end()) continue;
    TaskState& t = it->second;
    // Only the current holder may fail or release a task.
    if (t.state != State::kInFlight || t.worker != from ||
        t.attempts != r.attempt) {
      continue;
    }
    switch (r.verdict) {
      case wq::Verdict::kAck:
        Ack(r.seq, from);
        break;
      case wq::Verdict::kRetry: {
        counters_.retries++;
        absl::Duration delay = r.delay_ms > 0 ? absl::Milliseconds(r.delay_ms)
                                              : Backoff(t.attempts);
        Fail(r.seq, t, from, r.reason.empty() ? "retry" : r.reason, delay, now);
        break;
      }
      case wq::Verdict::kReject:
        Kill(r.seq, t, from, absl::StrCat("rejected: ", r.reason));
        break;
      case wq::Verdict::kRelease:
        EndLease(r.seq, t);
        t.attempts--;
        t.state = State::kReady;
        ready_.push_front(r.seq);
        break;
    }
  }
  auto w = workers_.find(from);
  if (w != workers_.end() && m.grant > 0) {
    w->second.credit += m.grant;
    w->second.last_credit = now;
    w->second.last_use = now;
  }
  Dispatch(ctx, now);
  FlushCompletions();
}

void Producer::Impl::OnExtend(NodeContext& ctx, const NodeId& from,
                              const wq::Extend& m) {
  if (engine_detached_) return;
  const absl::Time deadline = ctx.Now() + absl::Milliseconds(m.extend_ms);
  for (uint64_t seq : m.seqs) {
    auto it = tasks_.find(seq);
    if (it == tasks_.end()) continue;
    TaskState& t = it->second;
    if (t.state == State::kInFlight && t.worker == from) {
      t.lease_deadline = std::max(t.lease_deadline, deadline);
    }
  }
}

void Producer::Impl::OnTick(NodeContext& ctx, absl::Time now) {
  if (engine_detached_) return;
  if (now - last_lease_check_ >= kLeaseCheck) {
    last_lease_check_ = now;
    std::vector<uint64_t> expired;
    for (uint64_t seq : in_flight_) {
      auto t = tasks_.find(seq);
      if (t != tasks_.end() && t->second.lease_deadline <= now) {
        expired.push_back(seq);
      }
    }
    std::sort(expired.rbegin(), expired.rend());
    for (uint64_t seq : expired) {
      TaskState& t = tasks_.find(seq)->second;
      counters_.lease_expired++;
      FABRIC_LOG(kInfo, "FAB-WQ-LEASE-EXPIRED ", options_.queue, " ",
                 TaskId{producer_id_, seq}.ToString(), " at ",
                 t.worker.ShortHex());
      Fail(seq, t, t.worker, "lease expired", absl::ZeroDuration(), now);
    }
  }
  std::vector<uint64_t> due;
  while (!retry_heap_.empty() && retry_heap_.top().first <= now) {
    due.push_back(retry_heap_.top().second);
    retry_heap_.pop();
  }
  std::sort(due.rbegin(), due.rend());
  for (uint64_t seq : due) {
    auto t = tasks_.find(seq);
    if (t == tasks_.end() || t->second.state != State::kRetryWait) continue;
    t->second.state = State::kReady;
    ready_.push_front(seq);
  }
  // Hand idle credit back so other producers of those workers get it.
  if (ready_.empty()) {
    for (auto& [id, link] : workers_) {
      if (link.credit > 0 && now - link.last_use > kIdleCreditReturn) {
        const uint64_t credit = link.credit;
        link.credit = 0;
        SendDemand(ctx, id, link, 0, credit, now);
      }
    }
  }
  Dispatch(ctx, now);
  FlushCompletions();
}

void Producer::Impl::FlushCompletions() {
  if (completions_.empty()) return;
  const uint64_t n = completions_.size();
  {
    absl::MutexLock lock(&mu_);
    resolved_ += n;
    held_bytes_ -= std::min(held_bytes_, freed_bytes_);
  }
  freed_bytes_ = 0;
  if (options_.on_completed) {
    absl::MutexLock lock(&cb_mu_);
    for (Completion& c : completions_) cb_queue_.push_back(std::move(c));
  }
  completions_.clear();
}

// ------------------------------------------------------------------ facade

absl::StatusOr<std::unique_ptr<Producer>> Producer::Create(
    Node& node, ProducerOptions options) {
  auto impl = std::make_shared<Impl>(node, std::move(options));
  absl::Status status = impl->Init();
  if (!status.ok()) {
    impl->Abandon();
    return status;
  }
  return std::unique_ptr<Producer>(new Producer(std::move(impl)));
}

Producer::Producer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Producer::~Producer() { Close(); }

absl::StatusOr<TaskId> Producer::Push(absl::string_view body,
                                      const Headers& headers) {
  FABRIC_ASSIGN_OR_RETURN(TaskId id, PushAsync(body, headers));
  FABRIC_RETURN_IF_ERROR(
      impl_->WaitConfirmed(id.seq, absl::InfiniteDuration()));
  return id;
}

absl::StatusOr<TaskId> Producer::PushAsync(absl::string_view body,
                                           const Headers& headers) {
  return impl_->PushAsync(body, headers, absl::Now() + impl_->push_timeout(),
                          /*final_wait=*/true, impl_->push_timeout());
}

absl::StatusOr<TaskId> Producer::PushAsyncWithin(absl::string_view body,
                                                 const Headers& headers,
                                                 absl::Duration room_wait,
                                                 bool last_try,
                                                 absl::Duration waited) {
  return impl_->PushAsync(body, headers, absl::Now() + room_wait, last_try,
                          std::max(waited, room_wait));
}

absl::Status Producer::WaitConfirmed(uint64_t seq, absl::Duration timeout) {
  return impl_->WaitConfirmed(seq, timeout);
}

absl::Status Producer::WaitCompleted(absl::Duration timeout) {
  return impl_->WaitCompleted(timeout);
}

const NodeId& Producer::producer_id() const { return impl_->producer_id(); }
uint64_t Producer::confirmed_seq() const { return impl_->confirmed_seq(); }
ProducerStats Producer::Stats() const { return impl_->Stats(); }
std::vector<DeadLetter> Producer::MemoryDeadLetters() const {
  return impl_->MemoryDeadLetters();
}
absl::StatusOr<std::vector<DeadLetter>> Producer::DeadLetters() const {
  return impl_->DeadLetters();
}
void Producer::Close() { impl_->Close(); }

}  // namespace fabric
