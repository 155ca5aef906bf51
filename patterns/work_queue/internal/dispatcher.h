// SPDX-License-Identifier: Apache-2.0
// The work-queue producer's decisions as a pure state machine: which task
// goes to which worker under its credit, leases, what a result, a lost
// worker or a lease running out does to a task, retries with backoff and
// dead letters. No threads, no locks, no clock reads, no I/O: every input
// carries the time, and every consequence comes back as `Effects` that the
// caller carries out (send frames and demands, ack or dead-letter in the
// spool, report completions). `Producer` is the threaded shell around it;
// tests/sim drives it with seeded random schedules.
//
// The rules (docs/work_queues.md):
// - A task is dispatched only under credit a worker granted; a redelivery
//   prefers another worker than the last one.
// - A delivery counts as an attempt only once its handler started: the
//   worker reports the start (or a result, which implies one). A delivery
//   returned unstarted (its worker died or left, its lease ran out before a
//   start was reported, the worker released it, the send failed) goes back
//   to the front of the queue with its attempts unchanged.
// - A started delivery that fails (retry verdict, lease ran out) is retried
//   unless it used the last of `max_attempts`; a started delivery whose
//   worker died counts a worker crash, and `max_worker_crashes` of them in
//   a row (no other outcome in between) make it a dead letter.
// - A reject makes it a dead letter at once; an ack from any delivery
//   completes it, once.
// - A worker holds at most one in-flight task whose earlier workers died
//   running it, so tasks that merely ran beside a task that crashes its
//   workers are not charged crash after crash with it.
//
// Invariants (checked by tests/sim after every step):
// - Each task is in exactly one place: ready (queued for credit), in flight
//   at one worker, or waiting for its retry time; it leaves for good with
//   exactly one completion (acked or dead-lettered).
// - The tasks sent to a worker since it last had zero credit never exceed
//   the credit it granted.
// - `attempts` of a task equals the number of its started deliveries in
//   this producer process.
//
// Starts and failures are taken only for the current delivery, named by
// its number (`TaskView::delivery`, echoed by the worker): a report of an
// earlier delivery still on the wire when the task went out again is
// ignored (an ack from any delivery is accepted). A worker that gives no
// delivery number (an older release) is matched by attempt number instead.
//
// Thread safety: thread-compatible (one thread at a time: the producer
// calls it on the node's engine thread).
#ifndef PATTERNS_WORK_QUEUE_INTERNAL_DISPATCHER_H_
#define PATTERNS_WORK_QUEUE_INTERNAL_DISPATCHER_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fabric/base/node_id.h"
#include "fabric/codec/control.h"
#include "fabric/spool/spool.h"
#include "patterns/work_queue/internal/wire.h"
#include "patterns/work_queue/task.h"

namespace fabric::wq {

struct DispatcherOptions {
  NodeId producer;  // the producer id completions carry
  absl::Duration lease = absl::Seconds(30);
  uint32_t max_attempts = 5;        // >= 1
  uint32_t max_worker_crashes = 5;  // >= 1
  absl::Duration retry_backoff = absl::Seconds(1);
  absl::Duration max_retry_backoff = absl::Minutes(5);
  size_t max_batch = 512;            // tasks per frame, >= 1
  size_t max_frame_bytes = 1 << 20;  // a frame stops growing past this
  // Unused credit goes back after this long without a backlog, so other
  // producers of the worker get it.
  absl::Duration idle_credit_return = absl::Milliseconds(100);
  // A demand is repeated when no credit came for this long.
  absl::Duration demand_resend = absl::Seconds(1);
  uint64_t seed = 0;  // backoff jitter
  std::string queue;  // only for the notes
};

// A task entering the dispatcher: pushed and confirmed, or recovered from
// the spool of an earlier run.
struct NewTask {
  uint64_t seq = 0;
  absl::Time enqueued;
  Headers headers;
  std::string body;
  bool recovered = false;
};

// Bytes of a task counted against limits and frame sizes: body plus
// header keys and values (the producer's max_bytes, max_frame_bytes).
size_t TaskBytes(const Headers& headers, absl::string_view body);

// What one task looks like to the caller encoding a frame. The pointers
// are valid until the next input that adds or removes tasks (every input
// but `SendFailed` and `Extend` may).
struct TaskView {
  const Headers* headers;
  const std::string* body;
  uint32_t attempt;   // this delivery's number if its handler starts
  bool redelivered;   // delivered before, or recovered from a spool
  uint32_t delivery;  // the current (or last) delivery's number
};

// What the caller must do after an input, in order of the vectors.
struct Effects {
  // Send these tasks (seqs, in order; `tasks` says what to encode for each)
  // to `worker` as one frame. Report a failed send with `SendFailed`. Send
  // the frames before the demands: a demand may say that we hold none of a
  // worker's credit because a frame here used the last of it.
  struct Frame {
    NodeId worker;
    std::vector<uint64_t> seqs;
    std::vector<TaskView> tasks;  // parallel to seqs
  };
  // Send a demand: `backlog` waiting, `returned` credit handed back.
  struct DemandOut {
    NodeId worker;
    uint64_t backlog = 0;
    uint64_t returned = 0;
  };
  std::vector<Frame> frames;
  std::vector<DemandOut> demands;
  std::vector<uint64_t> acked;   // ack in the spool
  std::vector<DeadLetter> dead;  // record as dead letters
  std::vector<Completion> completions;
  uint64_t freed_bytes = 0;  // task bytes no longer held (acked or dead)
  // Lines worth logging (worker up or lost, lease expired, dead letter),
  // each starting with its FAB-WQ-* code.
  std::vector<std::string> notes;

  bool empty() const {
    return frames.empty() && demands.empty() && acked.empty() && dead.empty() &&
           completions.empty() && freed_bytes == 0 && notes.empty();
  }
  void Clear();
};

// Counters (monotonic) and gauges of one dispatcher.
struct DispatcherStats {
  uint64_t dispatched = 0;   // deliveries sent
  uint64_t redelivered = 0;  // deliveries after the first
  uint64_t started = 0;      // deliveries whose handler started
  uint64_t returned = 0;     // deliveries back unstarted (not attempts)
  uint64_t acked = 0;
  uint64_t late_acks = 0;  // acks from a delivery no longer current
  uint64_t retries = 0;
  uint64_t lease_expired = 0;
  uint64_t worker_lost = 0;     // deliveries outstanding at a worker that died
  uint64_t worker_crashes = 0;  // of those, started ones
  uint64_t dead_lettered = 0;
  uint64_t in_flight = 0;  // gauge
  uint64_t backlog = 0;    // gauge: ready, waiting for credit
  uint64_t workers = 0;    // gauge: workers offering the queue
};

class Dispatcher {
 public:
  using TaskView = wq::TaskView;

  explicit Dispatcher(DispatcherOptions options);

  // Inputs. Each appends what must be done to `out` (never clears it).
  void AddTasks(absl::Time now, std::vector<NewTask> tasks, Effects& out);
  void WorkerUp(absl::Time now, const NodeId& worker, Effects& out);
  // The caller's acceptance test refused the worker: hand back its credit
  // and stop dispatching to it.
  void WorkerRefused(absl::Time now, const NodeId& worker, Effects& out);
  // `lost`: the worker died; its deliveries end (started ones count a
  // crash). Otherwise it stopped offering the queue and what it holds may
  // still complete.
  void WorkerDown(absl::Time now, const NodeId& worker, bool lost,
                  Effects& out);
  // `reports_starts`: the worker says which deliveries started (wire.h);
  // for one that does not (an earlier release), every delivery counts as
  // started when it is sent, the rule of that release.
  void Credit(absl::Time now, const NodeId& worker, uint64_t grant,
              Effects& out, bool reports_starts = true);
  void Results(absl::Time now, const NodeId& worker, const wq::Results& m,
               Effects& out);
  void Extend(absl::Time now, const NodeId& worker, const wq::Extend& m);
  // A frame from `Effects::frames` could not be sent: its tasks go back
  // unstarted and the worker gets nothing until it grants credit again.
  void SendFailed(absl::Time now, const NodeId& worker,
                  const std::vector<uint64_t>& seqs, Effects& out);
  // Time passed: leases, retry timers, idle credit, demand resends.
  void Tick(absl::Time now, Effects& out);
  // The producer stops: every worker gets its unused credit back.
  void Close(absl::Time now, Effects& out);

  // When `Tick` has something to do next (InfiniteFuture: nothing).
  absl::Time NextWakeup() const;
  // The task `seq` while it is held, else nullopt.
  std::optional<TaskView> Find(uint64_t seq) const;
  // Tasks held (not yet acked or dead).
  size_t size() const { return tasks_.size(); }
  const DispatcherStats& stats() const { return stats_; }
  // For tests/sim: the credit `worker` granted that is still unused.
  uint64_t CreditOf(const NodeId& worker) const;

 private:
  enum class State : uint8_t { kReady, kInFlight, kRetryWait };
  struct TaskState {
    Headers headers;
    std::string body;
    absl::Time enqueued;
    size_t bytes = 0;
    uint32_t attempts = 0;    // started deliveries
    uint32_t crashes = 0;     // started deliveries in a row ended by a crash
    uint32_t deliveries = 0;  // sent, started or not
    bool recovered = false;
    State state = State::kReady;
    NodeId worker;         // in flight at, or last holder
    bool started = false;  // the current delivery's handler started
    bool suspect = false;  // counted in its worker's `suspects`
    absl::Time lease_deadline;
    absl::Time retry_due;
  };
  struct WorkerLink {
    uint64_t credit = 0;
    bool offering = true;
    bool wants_sent = false;  // the worker believes we have a backlog
    // In-flight tasks here whose earlier workers died running them: at
    // most one, so that a task that crashes workers is not sent twice
    // beside the same healthy tasks (which would be charged its crashes).
    uint32_t suspects = 0;
    bool reports_starts = true;  // see Credit
    absl::Time last_demand = absl::InfinitePast();
    absl::Time last_credit = absl::InfinitePast();
    absl::Time last_use = absl::InfinitePast();
  };
  struct RetryEntry {
    absl::Time at;
    uint64_t seq;
    friend bool operator>(const RetryEntry& a, const RetryEntry& b) {
      return a.at > b.at;
    }
  };

  void Dispatch(absl::Time now, Effects& out);
  void MaybeDemand(absl::Time now, Effects& out);
  void Demand(absl::Time now, const NodeId& id, WorkerLink& link,
              uint64_t backlog, uint64_t returned, Effects& out);
  void CountWorkers();
  void Gauges();
  static TaskView ViewOf(const TaskState& t);
  // Takes `t` out of its current place (ready, in flight, retry wait).
  void Leave(uint64_t seq, TaskState& t);
  void MakeReady(uint64_t seq, TaskState& t, bool front);
  // Counts the current delivery's start once; its lease runs from now.
  void MarkStarted(absl::Time now, TaskState& t);
  void ExpireLeases(absl::Time now, Effects& out);
  // Puts `t` at the front of the queue, its attempts unchanged.
  void ReturnUnstarted(uint64_t seq, TaskState& t);
  void Ack(absl::Time now, uint64_t seq, const NodeId& from, Effects& out);
  // A started delivery failed: retry after `delay` (zero: at once), or a
  // dead letter when it used the last attempt.
  void Fail(absl::Time now, uint64_t seq, TaskState& t, absl::string_view why,
            absl::Duration delay, Effects& out);
  void Kill(absl::Time now, uint64_t seq, TaskState& t, std::string reason,
            Effects& out);
  absl::Duration Backoff(uint32_t attempts);

  const DispatcherOptions options_;
  absl::flat_hash_map<uint64_t, TaskState> tasks_;
  std::deque<uint64_t> ready_;  // may hold seqs since acked (skipped)
  size_t ready_count_ = 0;      // tasks in state kReady
  absl::flat_hash_set<uint64_t> in_flight_;
  // No lease of a task in flight ends before this: the in-flight set is
  // scanned only then, and a scan sets it to the earliest lease it saw.
  absl::Time next_lease_check_ = absl::InfiniteFuture();
  // Stale entries (a task no longer waiting for that time) are skipped.
  std::priority_queue<RetryEntry, std::vector<RetryEntry>,
                      std::greater<RetryEntry>>
      retries_;
  // Ordered, so that ties (equal credit) and the order of effects do not
  // depend on hash seeds: a schedule replays exactly in any process.
  absl::btree_map<NodeId, WorkerLink> workers_;
  DispatcherStats stats_;
  std::mt19937_64 rng_;  // seeded: a schedule replays exactly
};

}  // namespace fabric::wq

#endif  // PATTERNS_WORK_QUEUE_INTERNAL_DISPATCHER_H_
