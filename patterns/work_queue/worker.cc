// SPDX-License-Identifier: Apache-2.0
#include "patterns/work_queue/worker.h"

#include <cxxabi.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <exception>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "fabric/base/log.h"
#include "fabric/base/status_macros.h"
#include "fabric/base/thread_name.h"
#include "patterns/work_queue/internal/queue_plugin.h"
#include "patterns/work_queue/internal/wire.h"
#include "patterns/work_queue/internal/worker_ledger.h"

namespace fabric {
namespace {

// Results done by a handler thread wait at most about this long to be
// reported (more while a single handler call runs).
constexpr absl::Duration kResultDelay = absl::Milliseconds(1);
// How long a handler thread waits for the start of a redelivered task to
// be handed to the node's socket before running it anyway.
constexpr absl::Duration kStartWait = absl::Milliseconds(200);

using wq::ProducerKey;

}  // namespace

class Worker::Impl : public wq::WorkerEndpoint,
                     public std::enable_shared_from_this<Impl> {
 public:
  Impl(Node& node, WorkerOptions options)
      : node_(node),
        options_(std::move(options)),
        ledger_(wq::WorkerLedgerOptions{
            static_cast<uint64_t>(std::max(options_.prefetch, 1)),
            options_.dedup_window, options_.dedup_max}) {}
  ~Impl() override = default;

  absl::Status Init();
  void Close();
  WorkerStats Stats() const;

  // wq::WorkerEndpoint (engine thread).
  void OnDemand(NodeContext& ctx, const NodeId& from,
                const wq::Demand& m) override;
  void OnTasks(NodeContext& ctx, const NodeId& from, wq::Tasks m) override;
  void OnProducerGone(NodeContext& ctx, const NodeId& node,
                      const std::string& queue) override;
  void OnTick(NodeContext& ctx, absl::Time now) override;

 private:
  struct Delivery {
    Task task;
    NodeId from;            // the producer's node
    uint32_t delivery = 0;  // the producer's number for it (wire.h)
  };
  struct Result {
    ProducerKey key;
    TaskId id;
    uint32_t attempt;
    uint32_t delivery;
    wq::Verdict verdict;
    uint64_t delay_ms = 0;
    std::string reason;
  };
  // The verdict `verdict` for `d`.
  static Result ResultFor(const Delivery& d, wq::Verdict verdict,
                          std::string reason = "") {
    return Result{ProducerKey{d.from, d.task.queue},
                  d.task.id,
                  d.task.attempt,
                  d.delivery,
                  verdict,
                  0,
                  std::move(reason)};
  }
  struct Start {
    ProducerKey key;
    TaskId id;
    uint32_t delivery;
  };
  // What one handler thread runs now, so the engine's tick can report the
  // start of a long run.
  // No lock per task: the handler thread stores `current`, then `run`
  // (both release); the engine reads `run`, then `current` (acquire),
  // holding `mu`, which the handler thread takes only to clear `current`
  // before its batch (where the deliveries live) is destroyed. A finished
  // task reported as started is harmless: it did start.
  struct RunningSlot {
    absl::Mutex mu;
    std::atomic<const Delivery*> current{nullptr};
    std::atomic<uint64_t> run{0};  // runs begun on this thread
    uint64_t reported = 0;         // engine thread only: last run reported
  };
  struct SlotClearer {
    RunningSlot& slot;
    ~SlotClearer() {
      absl::MutexLock lock(&slot.mu);
      slot.current.store(nullptr, std::memory_order_release);
    }
  };
  class Context;

  void HandlerLoop(size_t thread);
  // Reports that the handler of `d` starts (so the delivery counts as an
  // attempt, and a crash during it as a worker crash). With `wait`, returns
  // once the engine handed the report to its socket, or after kStartWait.
  void ReportStart(const Delivery& d, bool wait);
  Outcome RunHandler(const Delivery& d);
  void PostResults(std::vector<Result> results);
  // Posts `results` (leaving it empty) and counts them as no longer
  // running.
  void ReportResults(std::vector<Result>& results);
  void DrainResults(NodeContext& ctx);
  void Resolve(const Result& r, absl::Time wall_now);
  // Grants credit and sends what the ledger has for producers.
  void Flush(NodeContext& ctx, absl::Time now);
  void ExtendLease(const Delivery& d, absl::Duration extension);

  Node& node_;
  const WorkerOptions options_;
  std::shared_ptr<wq::QueuePlugin> plugin_;
  std::vector<std::thread> threads_;
  // One per handler thread; filled before the threads start, then fixed.
  std::vector<std::unique_ptr<RunningSlot>> slots_;

  mutable absl::Mutex mu_;
  std::deque<Delivery> waiting_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Set with stopping_; read without the lock between handler calls.
  std::atomic<bool> closing_{false};
  bool closed_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex results_mu_;
  std::vector<Result> results_ ABSL_GUARDED_BY(results_mu_);
  std::vector<Start> starts_ ABSL_GUARDED_BY(results_mu_);
  // Starts queued so far, and how many of them the engine has sent.
  uint64_t starts_queued_ ABSL_GUARDED_BY(results_mu_) = 0;
  uint64_t starts_sent_ ABSL_GUARDED_BY(results_mu_) = 0;
  bool results_posted_ ABSL_GUARDED_BY(results_mu_) = false;
  // Set when Close returns: the node may be gone, so handler threads still
  // running (past drain_timeout) must not touch it.
  bool node_released_ ABSL_GUARDED_BY(results_mu_) = false;

  struct Counters {
    std::atomic<uint64_t> received{0}, acked{0}, retried{0}, rejected{0},
        released{0}, duplicates{0}, handler_errors{0};
  };
  Counters counters_;

  // Engine thread only (the ledger is built in the constructor).
  bool engine_detached_ = false;
  wq::WorkerLedger ledger_;
};

class Worker::Impl::Context : public TaskContext {
 public:
  Context(Impl* impl, const Delivery* d) : impl_(impl), d_(d) {}
  absl::Status ExtendLease(absl::Duration extension) override {
    if (extension <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError("lease extension must be positive");
    }
    impl_->ExtendLease(*d_, extension);
    return absl::OkStatus();
  }

 private:
  Impl* impl_;
  const Delivery* d_;
};

absl::Status Worker::Impl::Init() {
  if (options_.queues.empty()) {
    return absl::InvalidArgumentError("a worker needs at least one queue");
  }
  for (const std::string& q : options_.queues) {
    if (q.empty() || q.size() > wq::kMaxQueueName) {
      return absl::InvalidArgumentError("queue name must be 1..256 bytes");
    }
  }
  if (!options_.handler) return absl::InvalidArgumentError("no handler");
  if (options_.concurrency < 1 || options_.prefetch < 1) {
    return absl::InvalidArgumentError(
        "concurrency and prefetch must be at least 1");
  }
  if (static_cast<size_t>(options_.prefetch) > wq::kMaxTasksPerFrame) {
    return absl::InvalidArgumentError(
        absl::StrCat("prefetch must be at most ", wq::kMaxTasksPerFrame,
                     " (acks of a whole window fit one frame)"));
  }
  // Before the engine knows this worker: its ticks read the slots.
  for (int i = 0; i < options_.concurrency; ++i) {
    slots_.push_back(std::make_unique<RunningSlot>());
  }
  FABRIC_ASSIGN_OR_RETURN(plugin_, wq::QueuePlugin::Get(node_));
  std::shared_ptr<Impl> self = shared_from_this();
  FABRIC_RETURN_IF_ERROR(node_.Call([self](NodeContext& ctx) {
    return self->plugin_->AddWorker(ctx, self->options_.queues, self);
  }));
  for (size_t i = 0; i < slots_.size(); ++i) {
    threads_.emplace_back([self, i] {
      SetCurrentThreadName("fab-work-", i);
      self->HandlerLoop(i);
    });
  }
  return absl::OkStatus();
}

// ------------------------------------------------------------ handler side

void Worker::Impl::HandlerLoop(size_t thread) {
  RunningSlot& slot = *slots_[thread];
  // Fast handlers take several waiting tasks at once and report them
  // together; once a handler takes over a millisecond a thread takes one
  // task at a time, so its results go out at once and idle threads are not
  // kept from work another thread holds.
  bool slow = false;
  for (;;) {
    std::vector<Delivery> batch;
    // Destroyed before `batch`, on any exit (a forced unwind included):
    // the engine must not read a delivery of a batch that is gone.
    SlotClearer clear_slot{slot};
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !waiting_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      // Take a share of what waits, so idle threads find work too.
      const size_t take =
          slow
              ? 1
              : std::clamp<size_t>(
                    waiting_.size() / static_cast<size_t>(options_.concurrency),
                    1, 256);
      for (size_t i = 0; i < take && !waiting_.empty(); ++i) {
        batch.push_back(std::move(waiting_.front()));
        waiting_.pop_front();
      }
      running_ += static_cast<int>(batch.size());
    }
    std::vector<Result> results;
    results.reserve(batch.size());
    const absl::Time started = absl::Now();
    absl::Time last_post = started;
    for (const Delivery& d : batch) {
      if (closing_.load(std::memory_order_relaxed)) {
        // Close began: what this thread took but has not started goes
        // back unrun, like the tasks still waiting.
        counters_.released++;
        results.push_back(
            ResultFor(d, wq::Verdict::kRelease, "worker closing"));
        continue;
      }
      // Starts reach the producer three ways (a start makes the delivery
      // an attempt, and a crash during it a worker crash): with the result
      // for fast handlers; from the engine's tick for a run still going
      // (within about 50 ms); and, for a task that came back before
      // (perhaps from a worker it crashed), ahead of the run, which waits
      // until the report is on the socket.
      if (d.task.redelivered) {
        ReportResults(results);
        ReportStart(d, /*wait=*/true);
      }
      slot.current.store(&d, std::memory_order_release);
      slot.run.store(slot.run.load(std::memory_order_relaxed) + 1,
                     std::memory_order_release);
      Outcome outcome = RunHandler(d);
      Result r = ResultFor(d, wq::Verdict::kAck);
      switch (outcome.verdict()) {
        case Outcome::Verdict::kAck:
          counters_.acked++;
          break;
        case Outcome::Verdict::kRetry:
          counters_.retried++;
          r.verdict = wq::Verdict::kRetry;
          r.delay_ms = static_cast<uint64_t>(
              std::max<int64_t>(0, absl::ToInt64Milliseconds(outcome.delay())));
          r.reason = outcome.reason();
          break;
        case Outcome::Verdict::kReject:
          counters_.rejected++;
          r.verdict = wq::Verdict::kReject;
          r.reason = outcome.reason();
          break;
      }
      results.push_back(std::move(r));
      // Report what is done at least every kResultDelay, so a batch of
      // slower tasks does not hold back acks that a crash would lose.
      const absl::Time now = absl::Now();
      if (now - last_post >= kResultDelay) {
        last_post = now;
        ReportResults(results);
      }
    }
    slow = (absl::Now() - started) / static_cast<int64_t>(batch.size()) >
           kResultDelay;
    ReportResults(results);
  }
}

void Worker::Impl::ReportStart(const Delivery& d, bool wait) {
  absl::MutexLock lock(&results_mu_);
  if (node_released_) return;
  starts_.push_back(
      Start{ProducerKey{d.from, d.task.queue}, d.task.id, d.delivery});
  const uint64_t ticket = ++starts_queued_;
  if (!results_posted_) {
    results_posted_ = true;
    std::shared_ptr<Impl> self = shared_from_this();
    (void)node_.Post([self](NodeContext& ctx) { self->DrainResults(ctx); });
  }
  if (!wait) return;
  auto sent = [this, ticket]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(results_mu_) {
    return starts_sent_ >= ticket || node_released_;
  };
  results_mu_.AwaitWithTimeout(absl::Condition(&sent), kStartWait);
}

void Worker::Impl::ReportResults(std::vector<Result>& results) {
  if (results.empty()) return;
  const int n = static_cast<int>(results.size());
  PostResults(std::move(results));
  results.clear();
  absl::MutexLock lock(&mu_);
  running_ -= n;
}

Outcome Worker::Impl::RunHandler(const Delivery& d) {
  Context ctx(this, &d);
  try {
    return options_.handler(d.task, ctx);
  } catch (abi::__forced_unwind&) {
    // The thread is being ended (pthread_exit or cancellation, as an
    // embedding interpreter does to threads at exit): swallowing the unwind
    // would abort the process.
    throw;
  } catch (const std::exception& e) {
    counters_.handler_errors++;
    return Outcome::RetryAfter(absl::ZeroDuration(),
                               absl::StrCat("handler threw: ", e.what()));
  } catch (...) {
    counters_.handler_errors++;
    return Outcome::RetryAfter(absl::ZeroDuration(), "handler threw");
  }
}

void Worker::Impl::PostResults(std::vector<Result> results) {
  absl::MutexLock lock(&results_mu_);
  if (node_released_) return;  // the producers' leases cover these
  for (Result& r : results) results_.push_back(std::move(r));
  if (results_posted_) return;
  results_posted_ = true;
  // Post under the lock (it never blocks) so Close cannot release the node
  // in between.
  std::shared_ptr<Impl> self = shared_from_this();
  (void)node_.Post([self](NodeContext& ctx) { self->DrainResults(ctx); });
}

void Worker::Impl::ExtendLease(const Delivery& d, absl::Duration extension) {
  std::shared_ptr<Impl> self = shared_from_this();
  wq::Extend m{d.task.queue,
               static_cast<uint64_t>(absl::ToInt64Milliseconds(extension)),
               {d.task.id.seq}};
  NodeId to = d.from;
  const NodeId producer = d.task.id.producer;
  absl::MutexLock lock(&results_mu_);
  if (node_released_) return;
  (void)node_.Post([self, to, producer, m = std::move(m)](NodeContext& ctx) {
    const std::string body = wq::EncodeExtend(m);
    (void)self->plugin_->Send(ctx, to, wq::kExtend, body);
    // Deliveries of the same task waiting for this run's result (a
    // restarted producer sent it again) hold leases of their own: extend
    // those too, or they run out while the run they wait for goes on.
    if (!self->engine_detached_) {
      for (const NodeId& other :
           self->ledger_.OwedTo(TaskId{producer, m.seqs.front()}, to)) {
        (void)self->plugin_->Send(ctx, other, wq::kExtend, body);
      }
    }
    self->plugin_->RunLocal(ctx);
  });
}

// ------------------------------------------------------------- engine side

void Worker::Impl::OnDemand(NodeContext& ctx, const NodeId& from,
                            const wq::Demand& m) {
  if (engine_detached_) return;
  const absl::Time now = ctx.Now();
  ledger_.Demand(now, from, m);
  Flush(ctx, now);
}

void Worker::Impl::OnTasks(NodeContext& ctx, const NodeId& from, wq::Tasks m) {
  if (engine_detached_) return;
  const absl::Time now = ctx.Now();
  counters_.received += m.tasks.size();
  const std::vector<size_t> run = ledger_.Tasks(from, m);
  counters_.duplicates = ledger_.duplicates();
  std::vector<Delivery> batch;
  batch.reserve(run.size());
  for (size_t i : run) {
    wq::WireTask& t = m.tasks[i];
    batch.push_back(
        Delivery{Task{TaskId{m.producer, t.seq}, m.queue, std::move(t.headers),
                      std::string(t.body), t.attempt, t.redelivered},
                 from, t.delivery});
  }
  bool stopping = false;
  if (!batch.empty()) {
    absl::MutexLock lock(&mu_);
    stopping = stopping_;
    if (!stopping) {
      for (Delivery& d : batch) waiting_.push_back(std::move(d));
    }
  }
  if (stopping) {
    // Closing: no handler will start these; hand them back at once.
    const absl::Time wall_now = absl::Now();
    for (const Delivery& d : batch) {
      counters_.released++;
      Resolve(ResultFor(d, wq::Verdict::kRelease, "worker closing"), wall_now);
    }
  }
  Flush(ctx, now);
}

void Worker::Impl::OnProducerGone(NodeContext& ctx, const NodeId& node,
                                  const std::string& queue) {
  if (engine_detached_) return;
  auto matches = [&](const NodeId& n, const std::string& q) {
    return n == node && (queue.empty() || q == queue);
  };
  std::vector<Result> dropped;
  {
    // Waiting tasks of a producer that died cannot be reported; its next
    // run (or its lease) delivers them again.
    absl::MutexLock lock(&mu_);
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (matches(it->from, it->task.queue)) {
        dropped.push_back(ResultFor(*it, wq::Verdict::kRelease));
        it = waiting_.erase(it);
      } else {
        ++it;
      }
    }
  }
  const absl::Time wall_now = absl::Now();
  ledger_.ProducerGone(node, queue);
  for (const Result& r : dropped) Resolve(r, wall_now);
  Flush(ctx, ctx.Now());
}

void Worker::Impl::DrainResults(NodeContext& ctx) {
  std::vector<Result> results;
  std::vector<Start> starts;
  uint64_t starts_ticket;
  {
    absl::MutexLock lock(&results_mu_);
    results.swap(results_);
    starts.swap(starts_);
    starts_ticket = starts_queued_;
    results_posted_ = false;
  }
  if (!engine_detached_) {
    for (const Start& st : starts) ledger_.Started(st.key, st.id, st.delivery);
    const absl::Time wall_now = absl::Now();
    for (const Result& r : results) Resolve(r, wall_now);
    ledger_.Prune(wall_now);
    Flush(ctx, ctx.Now());
    plugin_->RunLocal(ctx);
  }
  if (!starts.empty()) {
    absl::MutexLock lock(&results_mu_);
    starts_sent_ = std::max(starts_sent_, starts_ticket);
  }
}

void Worker::Impl::Resolve(const Result& r, absl::Time wall_now) {
  ledger_.Resolve(wall_now, r.key, r.id, r.attempt, r.delivery, r.verdict,
                  r.delay_ms, r.reason);
}

void Worker::Impl::Flush(NodeContext& ctx, absl::Time now) {
  if (closing_.load(std::memory_order_relaxed)) ledger_.StopGranting();
  ledger_.Grant();
  for (const wq::LedgerMessage& m : ledger_.TakeMessages(now)) {
    absl::Status sent = plugin_->Send(ctx, m.to.node, m.kind, m.body);
    if (!sent.ok()) {
      // The grant never left: take it back. Lost results only delay those
      // tasks until their lease runs out (then the dedup window acks them).
      FABRIC_LOG(kInfo, kWorkQueue, "FAB-WQ-RESULTS ", m.to.queue, " to ",
                 m.to.node.ShortHex(), " not sent: ", sent.message());
      ledger_.SendFailed(m);
    }
  }
}

void Worker::Impl::OnTick(NodeContext& ctx, absl::Time now) {
  if (engine_detached_) return;
  for (const std::unique_ptr<RunningSlot>& slot : slots_) {
    const uint64_t run = slot->run.load(std::memory_order_acquire);
    if (run == slot->reported) continue;
    absl::MutexLock lock(&slot->mu);
    const Delivery* d = slot->current.load(std::memory_order_acquire);
    slot->reported = run;
    if (d == nullptr) continue;
    // A redelivered task's start went out before its run.
    if (!d->task.redelivered) {
      ledger_.Started(ProducerKey{d->from, d->task.queue}, d->task.id,
                      d->delivery);
    }
  }
  ledger_.Prune(absl::Now());
  Flush(ctx, now);
}

void Worker::Impl::Close() {
  std::vector<Delivery> waiting;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    stopping_ = true;
    closing_ = true;
    waiting.assign(std::make_move_iterator(waiting_.begin()),
                   std::make_move_iterator(waiting_.end()));
    waiting_.clear();
  }
  std::shared_ptr<Impl> self = shared_from_this();
  // Stop advertising first so producers stop sending.
  absl::Status removed = node_.Call([self](NodeContext& ctx) {
    self->plugin_->RemoveWorker(ctx, self->options_.queues);
    return absl::OkStatus();
  });
  // Tasks not started go back to their producers unrun.
  std::vector<Result> released;
  for (const Delivery& d : waiting) {
    counters_.released++;
    released.push_back(ResultFor(d, wq::Verdict::kRelease, "worker closing"));
  }
  if (!released.empty()) PostResults(std::move(released));
  // Running handlers finish (bounded); their results follow.
  bool idle;
  {
    absl::MutexLock lock(&mu_);
    auto no_running = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return running_ == 0;
    };
    idle = mu_.AwaitWithTimeout(absl::Condition(&no_running),
                                options_.drain_timeout);
    if (!idle) {
      FABRIC_LOG(kWarning, kWorkQueue, "FAB-WQ-DRAIN ", running_,
                 " handler(s) still running after ",
                 absl::FormatDuration(options_.drain_timeout),
                 "; their leases will run out");
    }
  }
  for (std::thread& t : threads_) {
    // A thread still inside a handler keeps `self` alive and ends on its own.
    if (idle && t.get_id() != std::this_thread::get_id()) {
      t.join();
    } else {
      t.detach();
    }
  }
  if (removed.ok()) {
    (void)node_.Call([self](NodeContext& ctx) {
      self->DrainResults(ctx);
      self->engine_detached_ = true;
      return absl::OkStatus();
    });
  }
  absl::MutexLock lock(&results_mu_);
  node_released_ = true;
}

WorkerStats Worker::Impl::Stats() const {
  WorkerStats s;
  s.received = counters_.received.load();
  s.acked = counters_.acked.load();
  s.retried = counters_.retried.load();
  s.rejected = counters_.rejected.load();
  s.released = counters_.released.load();
  s.duplicates = counters_.duplicates.load();
  s.handler_errors = counters_.handler_errors.load();
  s.malformed = plugin_ != nullptr ? plugin_->malformed() : 0;
  absl::MutexLock lock(&mu_);
  s.running = static_cast<uint64_t>(running_);
  s.waiting = waiting_.size();
  return s;
}

// ------------------------------------------------------------------ facade

absl::StatusOr<std::unique_ptr<Worker>> Worker::Create(Node& node,
                                                       WorkerOptions options) {
  auto impl = std::make_shared<Impl>(node, std::move(options));
  FABRIC_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Worker>(new Worker(std::move(impl)));
}

Worker::Worker(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Worker::~Worker() { Close(); }
WorkerStats Worker::Stats() const { return impl_->Stats(); }
void Worker::Close() { impl_->Close(); }

}  // namespace fabric
