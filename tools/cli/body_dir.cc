// SPDX-License-Identifier: Apache-2.0
#include "tools/cli/body_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

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
  const std::string path = absl::StrCat(dir_, "/", name);
  const std::string tmp = absl::StrCat(dir_, "/.", name, ".tmp");
  const int fd =
      open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("writing ", tmp));
  size_t done = 0;
  while (done < body.size()) {
    const ssize_t n = write(fd, body.data() + done, body.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      unlink(tmp.c_str());
      return absl::ErrnoToStatus(err, absl::StrCat("writing ", tmp));
    }
    done += static_cast<size_t>(n);
  }
  if (close(fd) != 0 || rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(tmp.c_str());
    return absl::ErrnoToStatus(err, absl::StrCat("writing ", path));
  }
  return path;
}

}  // namespace fabric::cli
