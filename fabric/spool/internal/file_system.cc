// SPDX-License-Identifier: Apache-2.0
// The POSIX `FileSystem` and the process-wide current one.
#include "fabric/spool/internal/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "fabric/spool/internal/file_util.h"

namespace fabric::spool_internal {
namespace {

class PosixHandle final : public FileHandle {
 public:
  explicit PosixHandle(int fd) : fd_(fd) {}
  ~PosixHandle() override {
    if (map_ != nullptr) munmap(map_, map_size_);
    close(fd_);
  }

  absl::Status PWrite(absl::string_view data, uint64_t offset,
                      absl::string_view path) override {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = pwrite(fd_, data.data() + done, data.size() - done,
                         static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus(errno, path);
      done += static_cast<size_t>(n);
    }
    return absl::OkStatus();
  }

  absl::Status PRead(uint64_t offset, size_t n, std::string* out,
                     absl::string_view path) const override {
    out->resize(n);
    size_t done = 0;
    while (done < n) {
      ssize_t got = pread(fd_, out->data() + done, n - done,
                          static_cast<off_t>(offset + done));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        return ErrnoStatus(errno, absl::StrCat("cannot read ", path));
      }
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    out->resize(done);
    return absl::OkStatus();
  }

  absl::Status DataSync(absl::string_view path) override {
    if (fdatasync(fd_) != 0) {
      return ErrnoStatus(errno, absl::StrCat("fdatasync ", path));
    }
    return absl::OkStatus();
  }

  absl::Status Truncate(uint64_t size, absl::string_view path) override {
    if (ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return ErrnoStatus(errno, absl::StrCat("ftruncate ", path));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<uint64_t> Size(absl::string_view path) const override {
    struct stat st;
    if (fstat(fd_, &st) != 0) return ErrnoStatus(errno, path);
    return static_cast<uint64_t>(st.st_size);
  }

  absl::StatusOr<char*> Map(uint64_t size, absl::string_view path) override {
    const std::string what = absl::StrCat("map ", path);
    if (size == 0) return absl::InvalidArgumentError(what + ": empty mapping");
    if (map_ != nullptr) {
      return absl::FailedPreconditionError(what + ": already mapped");
    }
    struct stat st;
    if (fstat(fd_, &st) != 0) return ErrnoStatus(errno, what);
    if (static_cast<uint64_t>(st.st_size) < size) {
      // Touching a page past the end would raise SIGBUS.
      return absl::FailedPreconditionError(absl::StrCat(
          what, ": the file has ", st.st_size, " of ", size, " bytes"));
    }
    void* map = mmap(nullptr, static_cast<size_t>(size), PROT_READ | PROT_WRITE,
                     MAP_SHARED, fd_, 0);
    if (map == MAP_FAILED) return ErrnoStatus(errno, what);
    map_ = static_cast<char*>(map);
    map_size_ = static_cast<size_t>(size);
    return map_;
  }

  absl::Status SyncMap(absl::string_view path) override {
    const std::string what = absl::StrCat("msync ", path);
    if (map_ == nullptr) {
      return absl::FailedPreconditionError(what + ": not mapped");
    }
    if (msync(map_, map_size_, MS_SYNC) != 0) return ErrnoStatus(errno, what);
    return absl::OkStatus();
  }

 private:
  const int fd_;
  char* map_ = nullptr;  // set once by Map
  size_t map_size_ = 0;
};

class Posix final : public FileSystem {
 public:
  absl::StatusOr<std::unique_ptr<FileHandle>> Open(const std::string& path,
                                                   int flags,
                                                   int mode) override {
    int fd = open(path.c_str(), flags | O_CLOEXEC, mode);
    if (fd < 0) return ErrnoStatus(errno, absl::StrCat("cannot open ", path));
    return std::unique_ptr<FileHandle>(new PosixHandle(fd));
  }

  absl::Status MakeDir(const std::string& path, int mode) override {
    if (mkdir(path.c_str(), static_cast<mode_t>(mode)) != 0) {
      if (errno == EEXIST) {
        return absl::AlreadyExistsError(absl::StrCat(path, " exists"));
      }
      return ErrnoStatus(errno, absl::StrCat("cannot create ", path));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<FileStat> Stat(const std::string& path) override {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, path);
    return FileStat{S_ISDIR(st.st_mode), static_cast<uint64_t>(st.st_size),
                    static_cast<uint32_t>(st.st_mode & 07777)};
  }

  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) override {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) {
      return ErrnoStatus(errno, absl::StrCat("cannot list ", dir));
    }
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* entry = readdir(d)) {
      absl::string_view name(entry->d_name);
      if (name != "." && name != "..") names.emplace_back(name);
    }
    const int err = errno;
    closedir(d);
    if (err != 0) return ErrnoStatus(err, absl::StrCat("cannot list ", dir));
    return names;
  }

  absl::Status Remove(const std::string& path) override {
    if (unlink(path.c_str()) != 0) {
      return ErrnoStatus(errno, absl::StrCat("cannot remove ", path));
    }
    return absl::OkStatus();
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    if (rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoStatus(errno, absl::StrCat("rename ", from, " to ", to));
    }
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& dir) override {
    int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, absl::StrCat("cannot open ", dir));
    const int rc = fsync(fd);
    const int err = errno;
    close(fd);
    if (rc != 0) return ErrnoStatus(err, absl::StrCat("fsync ", dir));
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<FileHandle>> Lock(
      const std::string& path) override {
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoStatus(errno, absl::StrCat("cannot open ", path));
    auto handle = std::make_unique<PosixHandle>(fd);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) return absl::FailedPreconditionError("");
      return ErrnoStatus(errno, absl::StrCat("cannot lock ", path));
    }
    return std::unique_ptr<FileHandle>(std::move(handle));
  }
};

std::atomic<FileSystem*> current{nullptr};

}  // namespace

FileSystem* PosixFileSystem() {
  static Posix* const posix = new Posix();
  return posix;
}

FileSystem* CurrentFileSystem() {
  FileSystem* fs = current.load(std::memory_order_acquire);
  return fs != nullptr ? fs : PosixFileSystem();
}

ScopedFileSystem::ScopedFileSystem(FileSystem* fs)
    : previous_(current.exchange(fs, std::memory_order_acq_rel)) {}

ScopedFileSystem::~ScopedFileSystem() {
  current.store(previous_, std::memory_order_release);
}

}  // namespace fabric::spool_internal
