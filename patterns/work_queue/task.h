// SPDX-License-Identifier: Apache-2.0
// Value types shared by work-queue producers and workers.
#ifndef PATTERNS_WORK_QUEUE_TASK_H_
#define PATTERNS_WORK_QUEUE_TASK_H_

#include <cstdint>
#include <string>

#include "absl/hash/hash.h"
#include "absl/time/time.h"
#include "fabric/base/node_id.h"
#include "fabric/types.h"

namespace fabric {

// Identifies a task for its whole life, across producer restarts: the
// producer's persistent id (its spool's id; random for memory-only
// producers) and a sequence number that never repeats for that id.
// Thread safety: thread-compatible value type.
struct TaskId {
  NodeId producer;
  uint64_t seq = 0;

  // "0bd6ffb8:42" (short producer id).
  std::string ToString() const;

  friend bool operator==(const TaskId& a, const TaskId& b) {
    return a.seq == b.seq && a.producer == b.producer;
  }
  friend bool operator!=(const TaskId& a, const TaskId& b) { return !(a == b); }
  template <typename H>
  friend H AbslHashValue(H h, const TaskId& id) {
    return H::combine(std::move(h), id.producer, id.seq);
  }
};

// One delivery of a task to a worker's handler.
struct Task {
  TaskId id;
  std::string queue;
  Headers headers;
  std::string body;
  uint32_t attempt = 1;      // 1 for the first delivery
  bool redelivered = false;  // an earlier delivery may have run (even if
                             // `attempt` is 1: after a producer restart)
};

// What a handler decided about a task.
// Thread safety: thread-compatible value type.
class Outcome {
 public:
  enum class Verdict : uint8_t {
    kAck = 0,     // done; never delivered again
    kRetry = 1,   // deliver again after a delay (counts an attempt)
    kReject = 2,  // dead-letter now, whatever attempts remain
  };

  static Outcome Ack() {
    return Outcome(Verdict::kAck, absl::ZeroDuration(), "");
  }
  // Retries after `delay`; a zero delay means the producer's exponential
  // backoff (ProducerOptions::retry_backoff).
  static Outcome RetryAfter(absl::Duration delay, std::string reason = "") {
    return Outcome(Verdict::kRetry, delay, std::move(reason));
  }
  static Outcome Reject(std::string reason) {
    return Outcome(Verdict::kReject, absl::ZeroDuration(), std::move(reason));
  }

  Verdict verdict() const { return verdict_; }
  absl::Duration delay() const { return delay_; }
  const std::string& reason() const { return reason_; }

 private:
  Outcome(Verdict verdict, absl::Duration delay, std::string reason)
      : verdict_(verdict), delay_(delay), reason_(std::move(reason)) {}
  Verdict verdict_;
  absl::Duration delay_;
  std::string reason_;
};

// How a task ended, as the producer sees it.
struct Completion {
  enum class Kind : uint8_t { kAcked, kDeadLettered };
  TaskId id;
  Kind kind = Kind::kAcked;
  uint32_t attempts = 0;  // started deliveries in this producer process
  std::string reason;     // for dead letters: "max_attempts: ...",
                          // "rejected: ..."
  NodeId worker;          // the node that acked or last failed it
};

}  // namespace fabric

#endif  // PATTERNS_WORK_QUEUE_TASK_H_
