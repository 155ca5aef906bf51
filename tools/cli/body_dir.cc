// SPDX-License-Identifier: Apache-2.0
#include "tools/cli/body_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "tools/cli/fd_io.h"

namespace fabric::cli {

absl::StatusOr<BodyDir> BodyDir::Open(const std::string& dir) {
  if (dir.empty()) return absl::InvalidArgumentError("--out-dir is empty");
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError(
        absl::StrCat("--out-dir ", dir, ": ", strerror(errno)));
  }
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--out-dir ", dir, ": not a directory"));
  }
  return BodyDir(dir);
}

absl::StatusOr<std::string> BodyDir::Write(absl::string_view name,
                                           absl::string_view body) const {
  static std::atomic<uint64_t> counter{0};
  const std::string path = absl::StrCat(dir_, "/", name);
  // Unique per process and call: two writes of one name (a redelivered
  // task, two workers on one directory) never share a temporary file.
  const std::string tmp = absl::StrCat(dir_, "/.", name, ".", getpid(), ".",
                                       counter.fetch_add(1), ".tmp");
  const int fd = open(tmp.c_str(),
                      O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("writing ", tmp));
  absl::Status written = WriteFully(fd, body, absl::StrCat("writing ", tmp));
  if (!written.ok()) {
    close(fd);
    unlink(tmp.c_str());
    return written;
  }
  // On disk before the rename publishes it, and the rename itself made
  // durable, so a body acked after Write survives a crash.
  if (fdatasync(fd) != 0 || close(fd) != 0 ||
      rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(tmp.c_str());
    return absl::ErrnoToStatus(err, absl::StrCat("writing ", path));
  }
  const int dir_fd = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    const int synced = fsync(dir_fd);
    const int err = errno;
    close(dir_fd);
    if (synced != 0) {
      return absl::ErrnoToStatus(err, absl::StrCat("syncing ", dir_));
    }
  }
  return path;
}

}  // namespace fabric::cli
