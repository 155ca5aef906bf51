// SPDX-License-Identifier: Apache-2.0
// Bodies of the work-queue messages carried in node envelopes
// (docs/protocol.md, "Work queues"). Decoders take untrusted bytes, enforce
// limits and never throw; decoded views reference the input.
#ifndef PATTERNS_WORK_QUEUE_INTERNAL_WIRE_H_
#define PATTERNS_WORK_QUEUE_INTERNAL_WIRE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fabric/base/node_id.h"
#include "fabric/codec/control.h"

namespace fabric::wq {

// Message kinds owned by the work-queue plugin.
inline constexpr uint16_t kDemand = 110;   // producer -> worker
inline constexpr uint16_t kCredit = 111;   // worker -> producer
inline constexpr uint16_t kTasks = 112;    // producer -> worker
inline constexpr uint16_t kResults = 113;  // worker -> producer
inline constexpr uint16_t kExtend = 114;   // worker -> producer

// The offer kind workers advertise, one name per queue served.
inline constexpr absl::string_view kQueueOffer = "queue";

inline constexpr size_t kMaxQueueName = 256;
inline constexpr size_t kMaxTasksPerFrame = 65536;

// "I have `backlog` tasks waiting and hold `credit_held` of your credit."
struct Demand {
  std::string queue;
  uint64_t backlog = 0;
  uint64_t credit_held = 0;
};

// "You may send me `grant` more tasks of `queue`."
struct Credit {
  std::string queue;
  uint64_t grant = 0;
  // The worker reports the starts of its handlers (RESULTS `started`). A
  // worker of an earlier release sends no such element: false.
  bool reports_starts = true;
};

struct WireTask {
  uint64_t seq = 0;
  uint32_t attempt = 1;
  bool redelivered = false;
  Headers headers;
  absl::string_view body;  // references the frame
  // The producer's number for this delivery of the task (1, 2, ...),
  // echoed in starts and results so that a late report of an earlier
  // delivery is never taken for this one. 0: not given (older producer).
  uint32_t delivery = 0;
};
struct Tasks {
  std::string queue;
  NodeId producer;
  std::vector<WireTask> tasks;
};

enum class Verdict : uint8_t {
  kAck = 0,
  kRetry = 1,
  kReject = 2,
  kRelease = 3
};
struct OtherResult {
  uint64_t seq = 0;
  uint32_t attempt = 0;
  Verdict verdict = Verdict::kRetry;
  uint64_t delay_ms = 0;
  std::string reason;
  uint32_t delivery = 0;  // of WireTask; 0: not given (older worker)
};
// A delivery whose handler started.
struct StartedTask {
  uint64_t seq = 0;
  uint32_t delivery = 0;  // of WireTask
  friend bool operator==(const StartedTask& a, const StartedTask& b) {
    return a.seq == b.seq && a.delivery == b.delivery;
  }
};
// Outcomes of tasks one worker ran for one producer, plus fresh credit,
// plus the tasks whose handler started (a delivery counts as an attempt
// only once started). An older worker sends no `started` list.
struct Results {
  std::string queue;
  uint64_t grant = 0;
  std::vector<uint64_t> acked;  // seqs
  std::vector<OtherResult> others;
  std::vector<StartedTask> started = {};
  // The frame had a `started` list (false from an earlier release's worker).
  bool reports_starts = true;
};

struct Extend {
  std::string queue;
  uint64_t extend_ms = 0;
  std::vector<uint64_t> seqs;
};

std::string EncodeDemand(const Demand& m);
absl::StatusOr<Demand> DecodeDemand(absl::string_view body);
std::string EncodeCredit(const Credit& m);
absl::StatusOr<Credit> DecodeCredit(absl::string_view body);

// Tasks are encoded incrementally so a producer can fill a frame up to a
// size without copying bodies twice.
class TasksEncoder {
 public:
  TasksEncoder(absl::string_view queue, const NodeId& producer);
  void Add(uint64_t seq, uint32_t attempt, bool redelivered,
           const Headers& headers, absl::string_view body,
           uint32_t delivery = 0);
  size_t count() const { return count_; }
  size_t bytes() const { return tasks_.size(); }
  std::string Finish() const;

 private:
  std::string queue_;
  NodeId producer_;
  std::string tasks_;  // concatenated msgpack task arrays
  size_t count_ = 0;
};
// `body` must outlive the result (bodies reference it).
absl::StatusOr<Tasks> DecodeTasks(absl::string_view body);

std::string EncodeResults(const Results& m);
absl::StatusOr<Results> DecodeResults(absl::string_view body);
std::string EncodeExtend(const Extend& m);
absl::StatusOr<Extend> DecodeExtend(absl::string_view body);

}  // namespace fabric::wq

#endif  // PATTERNS_WORK_QUEUE_INTERNAL_WIRE_H_
