// SPDX-License-Identifier: Apache-2.0
#include "tools/cli/fd_io.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"

namespace fabric::cli {

absl::Status WriteFully(int fd, absl::string_view data,
                        absl::string_view what) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, what);
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<int> MemFileWith(const char* name, absl::string_view contents) {
  const int fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, "memfd_create");
  absl::Status written = WriteFully(fd, contents, "writing the body");
  if (!written.ok()) {
    close(fd);
    return written;
  }
  lseek(fd, 0, SEEK_SET);
  return fd;
}

}  // namespace fabric::cli
