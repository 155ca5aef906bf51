// SPDX-License-Identifier: Apache-2.0
#include "tests/testing/test_util.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fabric/base/free_port.h"

namespace fabric::testing {
std::string UniqueClusterName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  std::random_device rd;
  return absl::StrCat(prefix, "-", getpid(), "-", counter.fetch_add(1), "-",
                      rd() % 1000000);
}

uint16_t FreeUdpPort() { return FreeLoopbackPort(PortKind::kUdp).value_or(0); }
uint16_t FreeTcpPort() { return FreeLoopbackPort(PortKind::kTcp).value_or(0); }

std::string MakeTempDir(const std::string& prefix) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string pattern =
      absl::StrCat(base != nullptr ? base : "/tmp", "/", prefix, "-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) return "";
  return pattern;
}

void ClearFabricEnvironment() {
  for (const char* var :
       {"FABRIC_CLUSTER", "FABRIC_DISCOVERY", "FABRIC_INTERFACE",
        "FABRIC_BEACON_PORT", "FABRIC_SEEDS", "FABRIC_SECURITY",
        "FABRIC_KEY_FILE", "FABRIC_ROSTER", "FABRIC_BEACON_SECRET_FILE"}) {
    unsetenv(var);
  }
}

absl::Duration Remaining(absl::Time deadline) {
  return std::max(deadline - absl::Now(), absl::ZeroDuration());
}

bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return condition();
}

}  // namespace fabric::testing
