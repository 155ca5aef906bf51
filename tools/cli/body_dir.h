// SPDX-License-Identifier: Apache-2.0
// `--out-dir DIR` of work, sub and serve: each body written, byte for byte,
// to its own file, named by the task, message or request it came with.
#ifndef FABRIC_TOOLS_CLI_BODY_DIR_H_
#define FABRIC_TOOLS_CLI_BODY_DIR_H_

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fabric::cli {

// Thread safety: thread-safe (Write keeps no state between calls).
class BodyDir {
 public:
  // Creates `dir` (mode 0700) when missing. Returns kFailedPrecondition
  // when it cannot be created or is not a directory.
  static absl::StatusOr<BodyDir> Open(const std::string& dir);

  // Writes `body` to DIR/NAME atomically and durably: to a hidden temporary
  // file unique to this call, fdatasync'ed, renamed into place and the
  // directory fsync'ed, so a program watching DIR never sees a partial
  // body and a written body survives a crash. `name` must be a plain file
  // name. Returns the path.
  absl::StatusOr<std::string> Write(absl::string_view name,
                                    absl::string_view body) const;

  const std::string& dir() const { return dir_; }

 private:
  explicit BodyDir(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

}  // namespace fabric::cli

#endif  // FABRIC_TOOLS_CLI_BODY_DIR_H_
