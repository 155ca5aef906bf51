// SPDX-License-Identifier: Apache-2.0
#include "fabric/base/clock.h"

#include <time.h>

#include "absl/time/clock.h"

namespace fabric {
namespace {

class MonotonicClock : public Clock {
 public:
  MonotonicClock() : offset_(absl::Now() - Monotonic()) {}
  absl::Time Now() const override { return Monotonic() + offset_; }

 private:
  static absl::Time Monotonic() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return absl::TimeFromTimespec(ts);
  }
  const absl::Duration offset_;
};

}  // namespace

Clock* RealClock() {
  static MonotonicClock* clock = new MonotonicClock();
  return clock;
}

absl::Time FakeClock::Now() const {
  absl::MutexLock lock(&mu_);
  return now_;
}

void FakeClock::Advance(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  now_ += d;
}

}  // namespace fabric
