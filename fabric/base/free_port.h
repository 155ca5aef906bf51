// SPDX-License-Identifier: Apache-2.0
// A port of 127.0.0.1 that the kernel says is free: for tests, examples and
// benchmarks that start processes on one host and need a beacon or listen
// port nobody else uses. The port is released before returning, so another
// process may take it first; callers that bind it later must handle that.
#ifndef FABRIC_BASE_FREE_PORT_H_
#define FABRIC_BASE_FREE_PORT_H_

#include <cstdint>

#include "absl/status/statusor.h"

namespace fabric {

enum class PortKind { kTcp, kUdp };

// Binds port 0 of 127.0.0.1, reads the port the kernel chose and closes the
// socket. Thread safety: thread-safe.
absl::StatusOr<uint16_t> FreeLoopbackPort(PortKind kind);

}  // namespace fabric

#endif  // FABRIC_BASE_FREE_PORT_H_
