// SPDX-License-Identifier: Apache-2.0
#include "fabric/base/errno_status.h"

#include <zmq.h>

#include <cerrno>

#include "absl/strings/str_cat.h"

namespace fabric {

absl::Status ZmqErrnoToStatus(int err, absl::string_view what) {
  const std::string message = absl::StrCat(what, ": ", zmq_strerror(err));
  switch (err) {
    case EAGAIN:
    case ETIMEDOUT:
      return absl::DeadlineExceededError(message);
    case ETERM:
      return absl::CancelledError(message);
    case EFSM:
      return absl::FailedPreconditionError(message);
    case EINVAL:
    case EPROTONOSUPPORT:
    case ENODEV:
    case EADDRNOTAVAIL:
      return absl::InvalidArgumentError(message);
    case EHOSTUNREACH:
      return absl::UnavailableError(message);
    case ENOMEM:
    case EMFILE:
      return absl::ResourceExhaustedError(message);
    case EADDRINUSE:
      return absl::AlreadyExistsError(message);
    default:
      return absl::InternalError(message);
  }
}

}  // namespace fabric
