// SPDX-License-Identifier: Apache-2.0
// The worker's side of the work-queue protocol as a pure unit: the credit
// it lends each producer out of its prefetch window, the deliveries it
// holds, which of them started, the results and starts still to report,
// and the tasks it completed recently (to drop duplicates). No threads, no
// locks, no clock reads, no I/O: `Worker` is the threaded shell that runs
// the handlers, feeds this ledger on the engine thread and sends what
// `TakeMessages` returns; tests/sim drives it beside the dispatcher.
//
// Invariants:
// - held + outstanding credit, over all producers, never exceeds the
//   prefetch window (outstanding: granted, tasks not yet received).
// - A task id is run at most once at a time: a second delivery of a task
//   that is running or waiting here is owed that run's result (and its
//   start), not run again.
// - A task acked here within the dedup window (and among the last
//   `dedup_max`) is acked again without running. Ids are forgotten once
//   the window has passed (up to 1/256 of it later) or when more than
//   `dedup_max` were acked since (see `AckedIds`).
//
// Thread safety: thread-compatible (the worker calls it on the node's
// engine thread).
#ifndef PATTERNS_WORK_QUEUE_INTERNAL_WORKER_LEDGER_H_
#define PATTERNS_WORK_QUEUE_INTERNAL_WORKER_LEDGER_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/time/time.h"
#include "fabric/base/node_id.h"
#include "patterns/work_queue/internal/acked_ids.h"
#include "patterns/work_queue/internal/wire.h"
#include "patterns/work_queue/task.h"

namespace fabric::wq {

// A producer as a worker sees it: its node and queue.
struct ProducerKey {
  NodeId node;
  std::string queue;
  friend bool operator==(const ProducerKey& a, const ProducerKey& b) {
    return a.node == b.node && a.queue == b.queue;
  }
  friend bool operator<(const ProducerKey& a, const ProducerKey& b) {
    return a.node < b.node || (a.node == b.node && a.queue < b.queue);
  }
  template <typename H>
  friend H AbslHashValue(H h, const ProducerKey& k) {
    return H::combine(std::move(h), k.node, k.queue);
  }
};

struct WorkerLedgerOptions {
  uint64_t prefetch = 256;  // >= 1
  // Completed ids remembered: for this long and at most this many.
  absl::Duration dedup_window = absl::Minutes(5);
  size_t dedup_max = 1 << 20;
  // A producer that says it holds none of our credit while we count some
  // as outstanding lost a grant if none was sent for this long.
  absl::Duration lost_grant = absl::Seconds(1);
};

// One message for a producer (CREDIT or RESULTS), encoded.
struct LedgerMessage {
  ProducerKey to;
  uint16_t kind = 0;
  std::string body;
  uint64_t grant = 0;  // the credit it carries (see SendFailed)
};

class WorkerLedger {
 public:
  explicit WorkerLedger(WorkerLedgerOptions options);

  // Not movable: `AckedIds` is not.
  WorkerLedger(const WorkerLedger&) = delete;
  WorkerLedger& operator=(const WorkerLedger&) = delete;

  // A DEMAND from a producer.
  void Demand(absl::Time now, const NodeId& from, const wq::Demand& m);
  // A TASKS frame: returns the indices into `m.tasks` to run (new to this
  // worker); duplicates are answered or owed here. Every returned task must
  // come back through `Resolve` (run, released or dropped).
  std::vector<size_t> Tasks(const NodeId& from, const wq::Tasks& m);
  // The handler of `id` (delivery number `delivery` from `key`) started.
  void Started(const ProducerKey& key, const TaskId& id, uint32_t delivery);
  // A held task ended: its verdict (kRelease when handed back unrun) goes
  // to its producer and to every delivery owed this run's result.
  // `wall_now` dates an ack for the dedup window.
  void Resolve(absl::Time wall_now, const ProducerKey& key, const TaskId& id,
               uint32_t attempt, uint32_t delivery, wq::Verdict verdict,
               uint64_t delay_ms, const std::string& reason);
  // The producer of `queue` at `node` is gone (every producer of the node
  // when `queue` is empty): its credit is forgotten and nothing more is
  // reported to it; its held tasks still come back through `Resolve`.
  void ProducerGone(const NodeId& node, const std::string& queue);
  // Forgets completed ids past the dedup window or limit.
  void Prune(absl::Time wall_now);
  // Shares free prefetch among the producers that want work (nothing once
  // `StopGranting` was called).
  void Grant();
  void StopGranting() { granting_ = false; }
  // The CREDIT and RESULTS frames to send now, one per producer at most.
  std::vector<LedgerMessage> TakeMessages(absl::Time now);
  // A message from TakeMessages could not be sent: its grant is taken back
  // (lost results only delay those tasks until their lease runs out).
  void SendFailed(const LedgerMessage& m);
  // The producers (other than `except`) owed the result of the run of
  // `id`: they hold a delivery of it waiting here.
  std::vector<NodeId> OwedTo(const TaskId& id, const NodeId& except) const;

  uint64_t duplicates() const { return duplicates_; }
  uint64_t held() const { return held_total_; }
  uint64_t outstanding() const { return outstanding_total_; }
  // Completed ids remembered for dedup, and the heap bytes they take.
  uint64_t dedup_ids() const { return acked_.size(); }
  size_t dedup_bytes() const { return acked_.heap_bytes(); }

 private:
  struct Link {
    bool wants = false;
    bool gone = false;
    uint64_t outstanding = 0;  // credit granted, tasks not yet received
    uint64_t held = 0;         // tasks received, not yet resolved
    uint64_t grant = 0;        // to send
    absl::Time last_grant = absl::InfinitePast();
    std::vector<uint64_t> acked;
    std::vector<wq::OtherResult> others;
    std::vector<wq::StartedTask> started;
  };
  // A second delivery waiting for the result of the run in progress.
  struct Owed {
    ProducerKey key;
    uint32_t attempt = 0;
    uint32_t delivery = 0;
  };
  struct SeenTasks {
    absl::flat_hash_set<uint64_t> in_progress;
    absl::flat_hash_set<uint64_t> running;  // in progress, handler started
    absl::flat_hash_map<uint64_t, std::vector<Owed>> owed;  // by seq
  };
  SeenTasks& SeenFor(const NodeId& producer);

  const WorkerLedgerOptions options_;
  bool granting_ = true;
  // Ordered, so that grants and messages come out in the same order in
  // every process (a simulated schedule replays exactly).
  absl::btree_map<ProducerKey, Link> links_;
  uint64_t held_total_ = 0;
  uint64_t outstanding_total_ = 0;
  size_t round_robin_ = 0;
  uint64_t duplicates_ = 0;
  // Task ids by producer id, so a frame (one producer) costs one lookup.
  absl::node_hash_map<NodeId, SeenTasks> seen_;  // stable: see SeenFor
  const NodeId* seen_cache_key_ = nullptr;
  SeenTasks* seen_cache_ = nullptr;
  AckedIds acked_;  // acked within the dedup window
};

}  // namespace fabric::wq

#endif  // PATTERNS_WORK_QUEUE_INTERNAL_WORKER_LEDGER_H_
