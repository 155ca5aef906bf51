// SPDX-License-Identifier: Apache-2.0
// The one adapter from libzmq errors (errno values and zmq::error_t) to
// absl::Status codes (STYLE.md section 5), shared by every module that makes
// socket calls.
#ifndef FABRIC_BASE_ERRNO_STATUS_H_
#define FABRIC_BASE_ERRNO_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace fabric {

// Maps an errno from a libzmq or socket call to a Status whose message is
// "`what`: strerror". EAGAIN/ETIMEDOUT -> kDeadlineExceeded, ETERM ->
// kCancelled, EFSM -> kFailedPrecondition, EINVAL/EPROTONOSUPPORT/ENODEV ->
// kInvalidArgument, EHOSTUNREACH -> kUnavailable, ENOMEM ->
// kResourceExhausted, EADDRINUSE -> kAlreadyExists, anything else kInternal.
absl::Status ZmqErrnoToStatus(int err, absl::string_view what);

}  // namespace fabric

#endif  // FABRIC_BASE_ERRNO_STATUS_H_
