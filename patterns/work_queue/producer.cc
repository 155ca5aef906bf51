// SPDX-License-Identifier: Apache-2.0
#include "patterns/work_queue/producer.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <set>
#include <thread>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "fabric/base/log.h"
#include "fabric/base/status_macros.h"
#include "fabric/base/thread_name.h"
#include "fabric/codec/wire_format.h"
#include "patterns/work_queue/internal/dispatcher.h"
#include "patterns/work_queue/internal/queue_plugin.h"
#include "patterns/work_queue/internal/wire.h"

namespace fabric {
namespace {

// A frame of tasks stops growing past this many bytes.
constexpr size_t kMaxFrameBytes = 1 << 20;

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
  bool Refused(uint64_t seq) const {
    absl::MutexLock lock(&mu_);
    return refused_.contains(seq);
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

  // wq::ProducerEndpoint (engine thread): each feeds the dispatcher and
  // carries out what it decided.
  const std::string& queue() const override { return options_.queue; }
  void OnWorkerUp(NodeContext& ctx, const NodeId& worker) override;
  void OnWorkerDown(NodeContext& ctx, const NodeId& worker, bool lost) override;
  void OnCredit(NodeContext& ctx, const NodeId& from,
                const wq::Credit& m) override;
  void OnResults(NodeContext& ctx, const NodeId& from,
                 const wq::Results& m) override;
  void OnExtend(NodeContext& ctx, const NodeId& from,
                const wq::Extend& m) override;
  void OnTick(NodeContext& ctx, absl::Time now) override;

 private:
  using NewTask = wq::NewTask;

  // App side.
  absl::Status CheckOpen() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MoveDurableLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ToEngine(std::vector<NewTask> tasks);
  void OnDurable(uint64_t seq);
  void OnSpoolError(const absl::Status& status);
  void OnRefused(const std::vector<uint64_t>& seqs, const absl::Status& status);
  void CallbackLoop();
  void StopCallbacks();

  // Engine side.
  void Drain(NodeContext& ctx);
  // Carries out `effects_` (sends, spool operations, completions), feeding
  // failed sends back to the dispatcher, until nothing is left to do.
  void Apply(NodeContext& ctx, absl::Time now);
  void PublishStats();

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
  // Tasks the spool refused for a full disk, and the error it gave.
  std::set<uint64_t> refused_ ABSL_GUARDED_BY(mu_);
  absl::Status refusal_ ABSL_GUARDED_BY(mu_);
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
        redelivered{0}, started{0}, returned{0}, acked{0}, late_acks{0},
        retries{0}, lease_expired{0}, worker_lost{0}, worker_crashes{0},
        dead_lettered{0}, rejected_pushes{0}, in_flight{0}, backlog{0},
        workers{0};
    std::atomic<uint64_t> refused{0};
  };
  Counters counters_;

  // Engine thread only (and Init, before the engine knows this producer).
  bool engine_detached_ = false;
  std::unique_ptr<wq::Dispatcher> dispatcher_;
  wq::Effects effects_;
  wq::Effects scratch_;  // what Apply carries out
};

// ---------------------------------------------------------------- app side

absl::Status Producer::Impl::Init() {
  if (options_.queue.empty() || options_.queue.size() > wq::kMaxQueueName) {
    return absl::InvalidArgumentError("queue name must be 1..256 bytes");
  }
  if (options_.max_attempts < 1 || options_.max_worker_crashes < 1) {
    return absl::InvalidArgumentError(
        "max_attempts and max_worker_crashes must be at least 1");
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
    so.shared_files =
        node_.security() != nullptr && !options_.allow_shared_files
            ? SharedFiles::kRefuse
            : SharedFiles::kAllow;
    // The spool calls back until it is destroyed, which happens in ~Impl.
    Impl* self = this;
    so.on_durable = [self](uint64_t seq) { self->OnDurable(seq); };
    so.on_error = [self](const absl::Status& s) { self->OnSpoolError(s); };
    so.on_refused = [self](const std::vector<uint64_t>& seqs,
                           const absl::Status& s) { self->OnRefused(seqs, s); };
    FABRIC_ASSIGN_OR_RETURN(spool_, Spool::Open(std::move(so)));
    spooled_ = true;
    producer_id_ = spool_->producer_id();
    const SpoolReport& report = spool_->recovery();
    if (!report.corrupt.empty() || report.torn_tail_bytes > 0) {
      FABRIC_LOG(kWarning, kWorkQueue, "FAB-WQ-SPOOL-RECOVERY ",
                 options_.spool_dir, ": ", report.corrupt.size(),
                 " corrupt record(s) skipped, ", report.torn_tail_bytes,
                 " torn tail byte(s) cut");
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
  wq::DispatcherOptions d;
  d.producer = producer_id_;
  d.queue = options_.queue;
  d.lease = options_.lease;
  d.max_attempts = options_.max_attempts;
  d.max_worker_crashes = options_.max_worker_crashes;
  d.retry_backoff = options_.retry_backoff;
  d.max_retry_backoff = options_.max_retry_backoff;
  d.max_batch = options_.max_batch;
  d.max_frame_bytes = kMaxFrameBytes;
  d.seed = absl::Uniform<uint64_t>(absl::BitGen());
  dispatcher_ = std::make_unique<wq::Dispatcher>(std::move(d));
  // Not yet visible to the engine, and no worker is known: this only
  // queues the recovered tasks.
  dispatcher_->AddTasks(absl::Now(), std::move(recovered), effects_);
  PublishStats();
  if (options_.on_completed) {
    // Holds the producer alive while a callback runs, even one that
    // closes or destroys the Producer.
    cb_thread_ = std::thread([self = shared_from_this()] {
      SetCurrentThreadName("fab-prod-cb");
      self->CallbackLoop();
    });
  }
  FABRIC_ASSIGN_OR_RETURN(plugin_, wq::QueuePlugin::Get(node_));
  std::shared_ptr<Impl> self = shared_from_this();
  return node_.Call([self](NodeContext& ctx) {
    FABRIC_RETURN_IF_ERROR(self->plugin_->AddProducer(ctx, self));
    self->Apply(ctx, ctx.Now());
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
  const size_t size = wq::TaskBytes(headers, body);
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
        spool->live_bytes() + size > spool->max_bytes() &&
        spool->health().ok() &&
        !absl::StartsWith(appended.status().message(), "spool disk full");
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
  counters_.pushed++;
  // The spool's writer may already have refused it (disk full): never
  // staged, never delivered; WaitConfirmed(seq) reports it.
  if (refused_.contains(seq)) return TaskId{producer_id_, seq};
  total_++;
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
  const uint64_t from = std::max(durable_seq_, confirmed_seq_);
  // Refused tasks inside (from, seq] were never confirmed.
  const auto skipped =
      std::distance(refused_.upper_bound(from), refused_.upper_bound(seq));
  counters_.confirmed += seq - from - static_cast<uint64_t>(skipped);
  durable_seq_ = seq;
  confirmed_seq_ = seq;
  MoveDurableLocked();
}

void Producer::Impl::OnSpoolError(const absl::Status& status) {
  FABRIC_LOG(kError, kWorkQueue, "FAB-WQ-SPOOL-FAILED ", options_.spool_dir,
             ": ", status.message());
  absl::MutexLock lock(&mu_);
  if (failure_.ok()) failure_ = status;
}

void Producer::Impl::OnRefused(const std::vector<uint64_t>& seqs,
                               const absl::Status& status) {
  FABRIC_LOG(kWarning, kWorkQueue, "FAB-WQ-PUSH-REFUSED ", options_.spool_dir,
             ": ", seqs.size(), " task(s) refused: ", status.message());
  absl::MutexLock lock(&mu_);
  refusal_ = status;
  uint64_t unstaged = 0;
  for (uint64_t seq : seqs) {
    refused_.insert(seq);
    // A push still between Append and staging finds it in refused_.
    for (auto it = staging_.begin(); it != staging_.end(); ++it) {
      if (it->seq == seq) {
        staging_.erase(it);
        ++unstaged;
        break;
      }
    }
  }
  // They never complete: WaitCompleted must not wait for them.
  total_ -= std::min<uint64_t>(total_, unstaged);
  counters_.refused += seqs.size();
  counters_.rejected_pushes += seqs.size();
  MoveDurableLocked();
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
    return confirmed_seq_ >= seq || refused_.contains(seq) || closed_ ||
           !failure_.ok();
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&done), timeout)) {
    return absl::DeadlineExceededError(absl::StrCat(
        "task ", seq, " not confirmed within ", absl::FormatDuration(timeout)));
  }
  if (refused_.contains(seq)) return refusal_;
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
    self->dispatcher_->Close(now, self->effects_);
    self->Apply(ctx, now);
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
  s.started = c.started.load();
  s.returned = c.returned.load();
  s.acked = c.acked.load();
  s.late_acks = c.late_acks.load();
  s.retries = c.retries.load();
  s.lease_expired = c.lease_expired.load();
  s.worker_lost = c.worker_lost.load();
  s.worker_crashes = c.worker_crashes.load();
  s.dead_lettered = c.dead_lettered.load();
  s.rejected_pushes = c.rejected_pushes.load();
  s.refused = c.refused.load();
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
  const absl::Time now = ctx.Now();
  dispatcher_->AddTasks(now, std::move(batch), effects_);
  Apply(ctx, now);
  plugin_->RunLocal(ctx);
}

void Producer::Impl::Apply(NodeContext& ctx, absl::Time now) {
  uint64_t resolved = 0;
  uint64_t freed = 0;
  std::vector<DeadLetter> memory_dead;
  while (!effects_.empty()) {
    // `scratch_` is empty; swapping keeps both objects' capacity.
    std::swap(scratch_, effects_);
    wq::Effects& e = scratch_;
    // Frames before demands: a worker must see the tasks that used its last
    // credit before a demand saying we hold none of it, or it may take the
    // grant for lost and lend it again (more than its prefetch).
    for (const wq::Effects::Frame& f : e.frames) {
      wq::TasksEncoder encoder(options_.queue, producer_id_);
      for (size_t i = 0; i < f.seqs.size(); ++i) {
        const wq::TaskView& t = f.tasks[i];
        encoder.Add(f.seqs[i], t.attempt, t.redelivered, *t.headers, *t.body,
                    t.delivery);
      }
      absl::Status sent =
          plugin_->Send(ctx, f.worker, wq::kTasks, encoder.Finish());
      if (!sent.ok()) {
        FABRIC_LOG(kInfo, kWorkQueue, "FAB-WQ-SEND ", options_.queue, " to ",
                   f.worker.ShortHex(), " failed: ", sent.message());
        dispatcher_->SendFailed(now, f.worker, f.seqs, effects_);
      }
    }
    for (const wq::Effects::DemandOut& d : e.demands) {
      // A lost demand is repeated by the dispatcher's resend timer.
      (void)plugin_->Send(
          ctx, d.worker, wq::kDemand,
          wq::EncodeDemand(wq::Demand{options_.queue, d.backlog, d.returned}));
    }
    for (uint64_t seq : e.acked) {
      if (spool_ != nullptr) spool_->Ack(seq);
    }
    for (DeadLetter& dead : e.dead) {
      if (spool_ == nullptr) {
        memory_dead.push_back(std::move(dead));
        continue;
      }
      absl::Status added = spool_->AddDead(dead);
      if (!added.ok()) {
        FABRIC_LOG(kError, kWorkQueue, "FAB-WQ-DEAD-LOST ", options_.queue, " ",
                   TaskId{producer_id_, dead.task.seq}.ToString(),
                   ": cannot record dead letter: ", added.message());
      }
    }
    for (const std::string& note : e.notes) FABRIC_LOG(kInfo, kWorkQueue, note);
    freed += e.freed_bytes;
    resolved += e.completions.size();
    if (options_.on_completed && !e.completions.empty()) {
      absl::MutexLock lock(&cb_mu_);
      for (Completion& c : e.completions) cb_queue_.push_back(std::move(c));
    }
    e.Clear();
  }
  PublishStats();
  // Retry timers and leases are honoured to the millisecond, not only at
  // the engine's 50 ms ticks.
  const absl::Time next = dispatcher_->NextWakeup();
  if (next != absl::InfiniteFuture()) ctx.WakeAt(next);
  if (resolved == 0 && freed == 0 && memory_dead.empty()) return;
  absl::MutexLock lock(&mu_);
  resolved_ += resolved;
  held_bytes_ -= std::min(held_bytes_, spooled_ ? 0 : freed);
  for (DeadLetter& d : memory_dead) memory_dead_.push_back(std::move(d));
}

void Producer::Impl::PublishStats() {
  const wq::DispatcherStats& d = dispatcher_->stats();
  counters_.dispatched = d.dispatched;
  counters_.redelivered = d.redelivered;
  counters_.started = d.started;
  counters_.returned = d.returned;
  counters_.acked = d.acked;
  counters_.late_acks = d.late_acks;
  counters_.retries = d.retries;
  counters_.lease_expired = d.lease_expired;
  counters_.worker_lost = d.worker_lost;
  counters_.worker_crashes = d.worker_crashes;
  counters_.dead_lettered = d.dead_lettered;
  counters_.in_flight = d.in_flight;
  counters_.backlog = d.backlog;
  counters_.workers = d.workers;
}

void Producer::Impl::OnWorkerUp(NodeContext& ctx, const NodeId& worker) {
  if (engine_detached_) return;
  const absl::Time now = ctx.Now();
  if (options_.accept_worker &&
      !options_.accept_worker(worker == ctx.self_id() ? nullptr
                                                      : ctx.FindPeer(worker))) {
    // Refused (perhaps newly, after its HELLO changed).
    dispatcher_->WorkerRefused(now, worker, effects_);
  } else {
    dispatcher_->WorkerUp(now, worker, effects_);
  }
  Apply(ctx, now);
}

void Producer::Impl::OnWorkerDown(NodeContext& ctx, const NodeId& worker,
                                  bool lost) {
  if (engine_detached_) return;
  const absl::Time now = ctx.Now();
  dispatcher_->WorkerDown(now, worker, lost, effects_);
  Apply(ctx, now);
}

void Producer::Impl::OnCredit(NodeContext& ctx, const NodeId& from,
                              const wq::Credit& m) {
  if (engine_detached_) return;
  const absl::Time now = ctx.Now();
  dispatcher_->Credit(now, from, m.grant, effects_, m.reports_starts);
  Apply(ctx, now);
}

void Producer::Impl::OnResults(NodeContext& ctx, const NodeId& from,
                               const wq::Results& m) {
  if (engine_detached_) return;
  const absl::Time now = ctx.Now();
  dispatcher_->Results(now, from, m, effects_);
  Apply(ctx, now);
}

void Producer::Impl::OnExtend(NodeContext& ctx, const NodeId& from,
                              const wq::Extend& m) {
  if (engine_detached_) return;
  dispatcher_->Extend(ctx.Now(), from, m);
}

void Producer::Impl::OnTick(NodeContext& ctx, absl::Time now) {
  if (engine_detached_) return;
  const absl::Time next = dispatcher_->NextWakeup();
  if (now < next) {
    // A tick for someone else (or for a deadline that moved): ask again,
    // the engine keeps only the earliest request.
    if (next != absl::InfiniteFuture()) ctx.WakeAt(next);
    return;
  }
  dispatcher_->Tick(now, effects_);
  Apply(ctx, now);
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
bool Producer::Refused(uint64_t seq) const { return impl_->Refused(seq); }

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
