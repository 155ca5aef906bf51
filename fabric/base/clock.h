// SPDX-License-Identifier: Apache-2.0
// An injectable clock, so heartbeat, timeout and backoff logic can run on a
// fake clock in tests (STYLE.md section 6).
#ifndef FABRIC_BASE_CLOCK_H_
#define FABRIC_BASE_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace fabric {

// Source of the current time.
// Thread safety: implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  // Returns the current time. Monotonic for `RealClock`.
  virtual absl::Time Now() const = 0;
};

// Returns a process-wide clock backed by CLOCK_MONOTONIC (offset so that it
// reads close to wall time). Never null; lives for the whole process.
Clock* RealClock();

// A clock that only moves when told to. Thread safety: thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::UnixEpoch() + absl::Hours(1))
      : now_(start) {}
  absl::Time Now() const override;
  // Moves the clock forward by `d` (which must not be negative).
  void Advance(absl::Duration d);

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fabric

#endif  // FABRIC_BASE_CLOCK_H_
