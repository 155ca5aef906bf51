// SPDX-License-Identifier: Apache-2.0
// Small helpers every test uses: unique cluster names (so concurrent runs
// never hear each other), free loopback ports, temp dirs, and waiting on a
// condition with a deadline instead of sleeping.
#ifndef FABRIC_TESTS_TESTING_TEST_UTIL_H_
#define FABRIC_TESTS_TESTING_TEST_UTIL_H_

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <string>

#include "absl/time/time.h"

namespace fabric::testing {

// Returns a cluster name unique to this process and call.
std::string UniqueClusterName(const std::string& prefix = "test");

// Returns a UDP (or TCP) port on 127.0.0.1 that was free a moment ago, or
// 0 when none could be had (tests assert it is not 0).
uint16_t FreeUdpPort();
uint16_t FreeTcpPort();

// Sets the process's umask for one scope (tests of file modes). Not
// thread-safe: the umask is process-wide.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : previous_(umask(mask)) {}
  ~ScopedUmask() { umask(previous_); }
  ScopedUmask(const ScopedUmask&) = delete;
  ScopedUmask& operator=(const ScopedUmask&) = delete;

 private:
  const mode_t previous_;
};

// Creates a fresh directory under $TEST_TMPDIR or /tmp; the caller owns it.
std::string MakeTempDir(const std::string& prefix);

// Unsets the FABRIC_* variables (cluster, discovery, interface, beacon port,
// seeds) so child processes do not pick up settings from whoever runs ctest.
void ClearFabricEnvironment();

// Returns the time left until `deadline`, never negative.
absl::Duration Remaining(absl::Time deadline);

// Calls `condition` every 10 ms until it returns true or `timeout` passes.
// Returns its last result.
bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout);

}  // namespace fabric::testing

#endif  // FABRIC_TESTS_TESTING_TEST_UTIL_H_
