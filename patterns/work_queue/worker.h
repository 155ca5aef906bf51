// SPDX-License-Identifier: Apache-2.0
// `fabric::Worker`: serves one or more work queues. It advertises the queues
// (offer "queue"), grants producers credit from its prefetch window, runs
// the handler on `concurrency` threads and reports each outcome back. It
// drops duplicates of tasks it completed within `dedup_window` (acking them
// again without running the handler).
//
//   fabric::WorkerOptions options;
//   options.queues = {"images"};
//   options.concurrency = 4;
//   options.handler = [](const fabric::Task& task, fabric::TaskContext& ctx) {
//     if (!Resize(task.body)) return
//     fabric::Outcome::RetryAfter(absl::Seconds(5)); return
//     fabric::Outcome::Ack();
//   };
//   ASSIGN_OR_RETURN(std::unique_ptr<fabric::Worker> worker,
//                    fabric::Worker::Create(*node, std::move(options)));
#ifndef PATTERNS_WORK_QUEUE_WORKER_H_
#define PATTERNS_WORK_QUEUE_WORKER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fabric/node.h"
#include "fabric/work_queue/task.h"

namespace fabric {

// Handed to the handler with each task.
// Thread safety: use only on the handler's thread, during the call.
class TaskContext {
 public:
  virtual ~TaskContext() = default;
  // Asks the producer to keep the lease for `extension` more from now (for
  // tasks that run longer than the lease). Non-blocking.
  virtual absl::Status ExtendLease(absl::Duration extension) = 0;
};

using TaskHandler = std::function<Outcome(const Task&, TaskContext&)>;

struct WorkerOptions {
  std::vector<std::string> queues;
  TaskHandler handler;  // called on the worker's threads; may block
  int concurrency = 1;  // handler threads
  // Tasks held at once (running plus waiting), the credit producers share.
  // At most 65536.
  int prefetch = 256;
  // Completed task ids remembered to drop redeliveries: for this long
  // (forgotten up to 1/256 of it later: acks are dated in chunks), and at most
  // `dedup_max` of them (oldest forgotten first). Tasks completed in seq
  // order cost almost nothing, out of order or interleaved with other
  // producers' a few bytes each, and a seq not completed here between
  // completed ones (acked elsewhere) about 20 bytes while it is a gap.
  absl::Duration dedup_window = absl::Minutes(5);
  size_t dedup_max = 1 << 20;
  // On Close, how long running handlers may take to finish; tasks still
  // waiting are handed back to their producers at once.
  absl::Duration drain_timeout = absl::Seconds(10);
};

struct WorkerStats {
  uint64_t received = 0;  // task deliveries received
  uint64_t acked = 0;
  uint64_t retried = 0;
  uint64_t rejected = 0;
  uint64_t released = 0;        // handed back unrun (Close)
  uint64_t duplicates = 0;      // dropped: completed within the dedup window
  uint64_t malformed = 0;       // undecodable work-queue frames at this node
  uint64_t handler_errors = 0;  // handler threw (counted as a retry)
  uint64_t running = 0;         // gauge
  uint64_t waiting = 0;         // gauge
};

// Thread safety: thread-safe.
class Worker {
 public:
  // Starts the handler threads and advertises the queues on `node`, which
  // must outlive the worker. Returns kInvalidArgument for bad options and
  // kAlreadyExists when `node` already has a worker for one of the queues.
  static absl::StatusOr<std::unique_ptr<Worker>> Create(Node& node,
                                                        WorkerOptions options);

  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  // Calls Close.
  ~Worker();

  WorkerStats Stats() const;
  // Stops advertising, hands waiting tasks back, lets running handlers
  // finish (up to drain_timeout) and reports their outcomes. Idempotent.
  void Close();

 private:
  class Impl;
  explicit Worker(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace fabric

#endif  // PATTERNS_WORK_QUEUE_WORKER_H_
