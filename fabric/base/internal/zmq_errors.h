// SPDX-License-Identifier: Apache-2.0
// The one adapter from libzmq errors (errno values and zmq::error_t) to
// absl::Status codes (STYLE.md section 5). Internal: only fabric/ includes it.
#ifndef FABRIC_BASE_INTERNAL_ZMQ_ERRORS_H_
#define FABRIC_BASE_INTERNAL_ZMQ_ERRORS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace fabric::base_internal {

// Maps an errno from a libzmq or socket call to a Status whose message is
// "`what`: strerror". EAGAIN/ETIMEDOUT -> kDeadlineExceeded, ETERM ->
// kCancelled, EFSM -> kFailedPrecondition, EINVAL/EPROTONOSUPPORT/ENODEV ->
// kInvalidArgument, EHOSTUNREACH -> kUnavailable, ENOMEM ->
// kResourceExhausted, EADDRINUSE -> kAlreadyExists, anything else kInternal.
absl::Status ErrnoToStatus(int err, absl::string_view what);

}  // namespace fabric::base_internal

#endif  // FABRIC_BASE_INTERNAL_ZMQ_ERRORS_H_
