// SPDX-License-Identifier: Apache-2.0
// `fabric::Producer`: pushes tasks onto a work queue. Tasks are kept (in a
// disk spool, or in memory) until a worker acks them, dispatched by credit to
// the worker with the most free prefetch, leased, and redelivered when a
// lease runs out, a worker dies or a handler asks for a retry. A delivery
// counts as an attempt only once a handler started it: after
// `max_attempts` started deliveries, or `max_worker_crashes` workers in a
// row that died while running it, a task becomes a dead letter.
//
//   fabric::ProducerOptions options;
//   options.queue = "images";
//   options.spool_dir = "/var/lib/app/spool/images";  // empty: memory only
//   ASSIGN_OR_RETURN(std::unique_ptr<fabric::Producer> producer,
//                    fabric::Producer::Create(*node, options));
//   ASSIGN_OR_RETURN(fabric::TaskId id, producer->Push(body));  // durable
//   RETURN_IF_ERROR(producer->WaitCompleted(absl::Seconds(30)));
#ifndef PATTERNS_WORK_QUEUE_PRODUCER_H_
#define PATTERNS_WORK_QUEUE_PRODUCER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fabric/limits.h"
#include "fabric/node.h"
#include "fabric/spool/spool.h"
#include "fabric/work_queue/task.h"

namespace fabric {

// The largest task Push accepts, body and headers together: one task must
// fit in one frame with room for the envelope.
inline constexpr size_t kMaxTaskBytes = kDefaultMaxMessageBytes - 64 * 1024;

struct ProducerOptions {
  std::string queue;
  // Spool directory; empty keeps tasks in memory only (lost if this process
  // dies, like any unconfirmed work).
  std::string spool_dir;
  // Secure mode refuses an existing `spool_dir` that group or others may
  // access, or one holding such a file (mode & 077 != 0, e.g. 0755/0644
  // from an earlier release): Create fails with kFailedPrecondition
  // (FAB-SEC-FILE-PERMS) naming the path, its mode and the fix. True uses
  // it as it is. Plaintext mode never checks. Default false.
  bool allow_shared_files = false;
  FsyncPolicy fsync = FsyncPolicy::kBatch;
  absl::Duration fsync_interval = absl::Milliseconds(100);
  // Limit on bytes of tasks held (spooled or in memory) until acked. A push
  // beyond it waits up to `push_timeout`, then fails kResourceExhausted.
  uint64_t max_bytes = uint64_t{1} << 30;
  absl::Duration push_timeout = absl::Seconds(30);
  // Visibility timeout: a delivered task not acked (or extended) within it
  // is delivered again.
  absl::Duration lease = absl::Seconds(30);
  // Started deliveries (handler runs) before a task that keeps failing
  // (retry verdicts, leases running out while it runs) becomes a dead
  // letter. A delivery whose worker died or left before its handler started
  // does not count. At least 1.
  uint32_t max_attempts = 5;
  // Workers that died in a row while running the task (a poison task that
  // crashes its worker) before it becomes a dead letter. At least 1.
  uint32_t max_worker_crashes = 5;
  // Delay before retry n (n >= 1) when the handler named none:
  // retry_backoff * 2^(n-1), capped at max_retry_backoff, +-10% jitter.
  absl::Duration retry_backoff = absl::Seconds(1);
  absl::Duration max_retry_backoff = absl::Minutes(5);
  // Most tasks in one frame to a worker, at most 65536; a frame also stops
  // growing at 1 MiB unless a single task is larger.
  size_t max_batch = 512;
  // Which workers may be given tasks. Called on the node's engine thread
  // each time a worker of the queue appears or changes its HELLO, with its
  // peer info (nullptr for a worker on this same node); must be quick and
  // must not block. A worker it refuses is treated as not offering the
  // queue. Empty: every worker. The relay uses it so its forwarded tasks
  // never reach another relay (no loops).
  std::function<bool(const PeerInfo* worker)> accept_worker;
  // Called for every task that completes (acked or dead-lettered), in the
  // order they complete, on the producer's own callback thread. May block
  // briefly; a slow callback delays later ones, never the queue.
  std::function<void(const Completion&)> on_completed;
};

// Counters of one producer (monotonic since Create).
struct ProducerStats {
  uint64_t pushed = 0;       // accepted by Push/PushAsync
  uint64_t confirmed = 0;    // durable under the fsync policy
  uint64_t recovered = 0;    // unacked tasks found in the spool at start
  uint64_t dispatched = 0;   // deliveries sent (first and repeated)
  uint64_t redelivered = 0;  // deliveries after the first
  uint64_t started = 0;      // deliveries whose handler started (attempts)
  uint64_t returned = 0;     // deliveries back unstarted (not attempts)
  uint64_t acked = 0;
  uint64_t late_acks = 0;  // acks from a delivery no longer current
  uint64_t retries = 0;    // retry verdicts from handlers
  uint64_t lease_expired = 0;
  uint64_t worker_lost = 0;     // deliveries outstanding at a worker that died
  uint64_t worker_crashes = 0;  // of those, started ones
  uint64_t dead_lettered = 0;
  uint64_t rejected_pushes = 0;  // pushes refused (limit, spool failure,
                                 // disk full)
  uint64_t refused = 0;    // of those, accepted but then refused because the
                           // spool's disk was full (never confirmed)
  uint64_t malformed = 0;  // undecodable work-queue frames at this node
  uint64_t in_flight = 0;  // gauge: delivered, not yet resolved
  uint64_t backlog = 0;    // gauge: confirmed, waiting for credit
  uint64_t workers = 0;    // gauge: workers offering the queue
};

// Thread safety: thread-safe. Push may be called from many threads at once.
class Producer {
 public:
  // Opens the spool (recovering it: its unacked tasks are delivered again
  // with `redelivered` set) and starts serving `options.queue` on `node`,
  // which must outlive the producer. Returns kAlreadyExists when `node`
  // already has a producer for the queue, kInvalidArgument for bad options
  // and the spool's error when it cannot be opened (kFailedPrecondition for
  // a spool open to group or others on a secure node: `allow_shared_files`).
  static absl::StatusOr<std::unique_ptr<Producer>> Create(
      Node& node, ProducerOptions options);

  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;
  // Calls Close.
  ~Producer();

  // Pushes one task and blocks until it is confirmed: durable under the
  // fsync policy (at once for memory-only producers). Waits for room up to
  // `push_timeout` when the limit is reached, then returns
  // kResourceExhausted. Returns kInvalidArgument for an oversized task,
  // kCancelled once closed and the spool's error if it failed.
  absl::StatusOr<TaskId> Push(absl::string_view body,
                              const Headers& headers = {});
  // Like Push, but returns as soon as the task is appended; confirmation is
  // observed with WaitConfirmed / confirmed_seq. The fast path for batches.
  absl::StatusOr<TaskId> PushAsync(absl::string_view body,
                                   const Headers& headers = {});
  // Like PushAsync, but waits for room at most `room_wait` (instead of
  // `push_timeout`). When there is still none then: with `last_try` false it
  // returns kDeadlineExceeded and counts nothing, so that a caller can wait
  // in short slices and do something between them (the Python binding
  // checks for Ctrl-C); with `last_try` it fails as PushAsync does
  // (kResourceExhausted, counted in `rejected_pushes`; its message says the
  // push waited `waited`, the caller's whole wait, or `room_wait` if longer).
  absl::StatusOr<TaskId> PushAsyncWithin(
      absl::string_view body, const Headers& headers, absl::Duration room_wait,
      bool last_try, absl::Duration waited = absl::ZeroDuration());
  // Blocks until every task up to `seq` is confirmed (or failed). Returns
  // kResourceExhausted ("spool disk full: ...") when task `seq` itself was
  // refused: its spool write found the disk full. Such a task is never
  // confirmed or delivered, pushes fail at once for a second after it, and
  // then work again (docs/spool.md section 9). Tasks before `seq` may have
  // been refused too: see `Refused` and `ProducerStats::refused`.
  absl::Status WaitConfirmed(uint64_t seq, absl::Duration timeout);
  // True when task `seq` was refused for a full disk (see WaitConfirmed).
  bool Refused(uint64_t seq) const;
  // Blocks until every task pushed or recovered so far has completed (acked
  // or dead-lettered). kDeadlineExceeded on timeout.
  absl::Status WaitCompleted(absl::Duration timeout);

  const NodeId& producer_id() const;
  // Highest seq confirmed so far.
  uint64_t confirmed_seq() const;
  ProducerStats Stats() const;
  // Dead letters of a memory-only producer (spooled ones live in the spool:
  // `fabric dlq list DIR`).
  std::vector<DeadLetter> MemoryDeadLetters() const;
  // Every dead letter this producer holds: those kept in memory, or those
  // of its spool (also from earlier runs, until replayed or purged), up to
  // date when a completion reports them. After Close, read from the spool
  // directory (its I/O error, or kNotFound for a spool never created).
  absl::StatusOr<std::vector<DeadLetter>> DeadLetters() const;

  // Stops dispatching and detaches from the node; spooled tasks stay in the
  // spool for the next run. Idempotent.
  void Close();

 private:
  class Impl;
  explicit Producer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace fabric

#endif  // PATTERNS_WORK_QUEUE_PRODUCER_H_
