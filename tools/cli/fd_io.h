// SPDX-License-Identifier: Apache-2.0
// Whole writes to a descriptor, and the anonymous memory files that hold a
// body for an --exec command's stdin (work, serve).
#ifndef FABRIC_TOOLS_CLI_FD_IO_H_
#define FABRIC_TOOLS_CLI_FD_IO_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fabric::cli {

// Writes all of `data` to `fd`, retrying short writes and EINTR. Returns
// the write(2) error as "`what`: strerror".
absl::Status WriteFully(int fd, absl::string_view data, absl::string_view what);

// An anonymous memory file (memfd, close-on-exec) named `name` holding
// `contents`, rewound to its start: a command that does not read its stdin
// can never block us on a full pipe. The caller owns the descriptor.
absl::StatusOr<int> MemFileWith(const char* name, absl::string_view contents);

}  // namespace fabric::cli

#endif  // FABRIC_TOOLS_CLI_FD_IO_H_
