// SPDX-License-Identifier: Apache-2.0
// Entry point of the `fabric` command. All logic lives in tools/cli/.
#include "absl/synchronization/mutex.h"
#include "tools/cli/cli.h"

int main(int argc, char** argv) {
  // Debian's Abseil is built with mutex deadlock detection on, which costs
  // every lock a lock-graph update; the work-queue hot path takes several
  // locks per batch. Tests keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return fabric::cli::Run(argc, argv);
}
