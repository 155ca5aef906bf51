// SPDX-License-Identifier: Apache-2.0
#include "fabric/spool/internal/file_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/base/const_init.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "fabric/base/status_macros.h"
#include "fabric/spool/internal/spool_format.h"

namespace fabric::spool_internal {
namespace {

ABSL_CONST_INIT absl::Mutex fault_mu(absl::kConstInit);
// Fast path: most processes never set a hook. Relaxed is enough because the
// hook itself is read under `fault_mu`.
std::atomic<bool> fault_hook_set{false};
FileFaultHook* fault_hook ABSL_GUARDED_BY(fault_mu) = nullptr;

int InjectedFault(FileOp op, absl::string_view path) {
  if (!fault_hook_set.load(std::memory_order_relaxed)) return 0;
  absl::MutexLock lock(&fault_mu);
  return fault_hook != nullptr ? (*fault_hook)(op, path) : 0;
}

}  // namespace

void SetFileFaultHookForTesting(FileFaultHook hook) {
  absl::MutexLock lock(&fault_mu);
  delete fault_hook;
  fault_hook = hook ? new FileFaultHook(std::move(hook)) : nullptr;
  fault_hook_set.store(fault_hook != nullptr, std::memory_order_relaxed);
}

absl::Status ErrnoStatus(int err, absl::string_view what) {
  const char* text = std::strerror(err);
  switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return absl::ResourceExhaustedError(
          absl::StrCat("spool disk full: ", what, ": ", text));
    case ENOENT:
      return absl::NotFoundError(absl::StrCat(what, ": ", text));
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(absl::StrCat(what, ": ", text));
    case EIO:
      return absl::DataLossError(absl::StrCat(what, ": ", text));
    default:
      return absl::InternalError(absl::StrCat(what, ": ", text));
  }
}

std::string SegmentFileName(uint64_t number) {
  return absl::StrFormat("seg-%020u.log", number);
}

std::optional<uint64_t> ParseSegmentFileName(absl::string_view name) {
  if (name.size() != kSegmentNameSize) return std::nullopt;
  if (!absl::StartsWith(name, "seg-") || !absl::EndsWith(name, ".log")) {
    return std::nullopt;
  }
  absl::string_view digits = name.substr(4, 20);
  for (char c : digits) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return std::nullopt;
    }
  }
  uint64_t number = 0;
  if (!absl::SimpleAtoi(digits, &number)) return std::nullopt;
  return number;
}

std::string JoinPath(absl::string_view dir, absl::string_view name) {
  if (!dir.empty() && dir.back() == '/') return absl::StrCat(dir, name);
  return absl::StrCat(dir, "/", name);
}

absl::Status MakeDirs(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("empty directory path");
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    const std::string prefix = path.substr(0, pos);
    if (mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, absl::StrCat("cannot create ", prefix));
    }
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, path);
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists and is not a directory"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) {
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

absl::StatusOr<File> OpenFile(const std::string& path, int flags, int mode) {
  int fd = open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("cannot open ", path));
  return File(fd);
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  absl::StatusOr<File> file = OpenFile(path, O_RDONLY, 0);
  if (!file.ok()) return file.status();
  struct stat st;
  if (fstat(file->get(), &st) != 0) return ErrnoStatus(errno, path);
  std::string data;
  data.resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  // The file may change under a read-only scan: read what is there.
  while (true) {
    if (done == data.size()) data.resize(data.size() + 64 * 1024);
    ssize_t n = pread(file->get(), data.data() + done, data.size() - done,
                      static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, absl::StrCat("cannot read ", path));
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  data.resize(done);
  return data;
}

absl::StatusOr<uint64_t> FileSize(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, path);
  return static_cast<uint64_t>(st.st_size);
}

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

absl::Status PWriteAll(int fd, absl::string_view data, uint64_t offset,
                       absl::string_view path) {
  if (int err = InjectedFault(FileOp::kWrite, path); err != 0) {
    return ErrnoStatus(err, path);
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = pwrite(fd, data.data() + done, data.size() - done,
                       static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, path);
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status DataSync(int fd, absl::string_view path) {
  if (int err = InjectedFault(FileOp::kSync, path); err != 0) {
    return ErrnoStatus(err, absl::StrCat("fdatasync ", path));
  }
  if (fdatasync(fd) != 0) {
    return ErrnoStatus(errno, absl::StrCat("fdatasync ", path));
  }
  return absl::OkStatus();
}

absl::Status SyncDir(const std::string& dir) {
  absl::StatusOr<File> file = OpenFile(dir, O_RDONLY | O_DIRECTORY, 0);
  if (!file.ok()) return file.status();
  if (int err = InjectedFault(FileOp::kSync, dir); err != 0) {
    return ErrnoStatus(err, absl::StrCat("fsync ", dir));
  }
  if (fsync(file->get()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("fsync ", dir));
  }
  return absl::OkStatus();
}

absl::Status Truncate(int fd, uint64_t size, absl::string_view path) {
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    return ErrnoStatus(errno, absl::StrCat("ftruncate ", path));
  }
  return absl::OkStatus();
}

absl::Status RemoveFile(const std::string& path) {
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("cannot remove ", path));
  }
  return absl::OkStatus();
}

absl::Status RenameFile(const std::string& from, const std::string& to) {
  if (int err = InjectedFault(FileOp::kRename, to); err != 0) {
    return ErrnoStatus(err, absl::StrCat("rename ", from));
  }
  if (rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("rename ", from, " to ", to));
  }
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& dir, absl::string_view name,
                                 absl::string_view contents) {
  const std::string final_path = JoinPath(dir, name);
  const std::string tmp_path = absl::StrCat(final_path, kTmpSuffix);
  {
    absl::StatusOr<File> file =
        OpenFile(tmp_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (!file.ok()) return file.status();
    absl::Status status = PWriteAll(file->get(), contents, 0, tmp_path);
    if (status.ok()) status = DataSync(file->get(), tmp_path);
    if (!status.ok()) {
      RemoveFile(tmp_path).IgnoreError();  // best effort; already failing
      return status;
    }
  }
  absl::Status status = RenameFile(tmp_path, final_path);
  if (!status.ok()) {
    RemoveFile(tmp_path).IgnoreError();  // best effort; already failing
    return status;
  }
  return SyncDir(dir);
}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = other.Release();
  }
  return *this;
}

void File::Close() noexcept {
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
}

absl::StatusOr<File> LockDirectory(const std::string& dir,
                                   absl::string_view what) {
  FABRIC_ASSIGN_OR_RETURN(File lock, OpenFile(JoinPath(dir, kLockFileName),
                                              O_RDWR | O_CREAT, 0644));
  if (flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, " ", dir, " is in use by another process"));
    }
    return ErrnoStatus(errno, absl::StrCat("cannot lock ", dir));
  }
  return lock;
}

}  // namespace fabric::spool_internal
