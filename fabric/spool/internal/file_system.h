// SPDX-License-Identifier: Apache-2.0
// The file layer under the spool, the topic log and the subscriber position
// files (LevelDB `Env`, RocksDB `FileSystem`): every open, read, write,
// fdatasync, truncate, rename, unlink, mkdir, directory fsync, mmap and
// msync of a log or a position file goes through a `FileSystem`. Production
// uses the POSIX one; tests swap in an in-memory one that knows what is durable
// and can lose the rest (mem_file_system.h), to prove the logs' crash
// consistency.
//
// The helpers in file_util.h call `CurrentFileSystem()`; a test installs its
// own with `ScopedFileSystem` for the lifetime of the objects it tests.
#ifndef FABRIC_SPOOL_INTERNAL_FILE_SYSTEM_H_
#define FABRIC_SPOOL_INTERNAL_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fabric::spool_internal {

// One open file. Errors are Status values made by `ErrnoStatus` (so ENOSPC
// is kResourceExhausted and EIO kDataLoss whatever the file system).
// Thread safety: thread-compatible; `PRead` may run on several threads at
// once and beside writes through another handle of the same file. The
// memory `Map` returns may be used from any thread (racing accesses must be
// atomic), also while `SyncMap` runs.
class FileHandle {
 public:
  virtual ~FileHandle() = default;
  // Writes all of `data` at `offset` (retrying short writes). `path` is
  // only for error messages.
  virtual absl::Status PWrite(absl::string_view data, uint64_t offset,
                              absl::string_view path) = 0;
  // Reads up to `n` bytes at `offset` into `out` (resized to what was
  // read; fewer bytes at the end of the file, none past it).
  virtual absl::Status PRead(uint64_t offset, size_t n, std::string* out,
                             absl::string_view path) const = 0;
  virtual absl::Status DataSync(absl::string_view path) = 0;
  virtual absl::Status Truncate(uint64_t size, absl::string_view path) = 0;
  virtual absl::StatusOr<uint64_t> Size(absl::string_view path) const = 0;

  // Maps the first `size` bytes of the file shared and read-write
  // (mmap(2) MAP_SHARED): stores into the returned memory reach the file
  // without a system call, and a process crash does not lose them (the
  // page cache keeps them); `SyncMap` makes them durable. At most one
  // mapping per handle; it lives until the handle is destroyed. The memory
  // is 8-byte aligned. kInvalidArgument for `size` 0, kFailedPrecondition if
  // the handle already has a mapping or the file is shorter than `size`,
  // kPermissionDenied on a read-only handle.
  virtual absl::StatusOr<char*> Map(uint64_t size, absl::string_view path) = 0;
  // Writes the mapping's changed pages and waits for them (msync(2)
  // MS_SYNC). kFailedPrecondition without a mapping.
  virtual absl::Status SyncMap(absl::string_view path) = 0;
};

// What `Stat` reports.
struct FileStat {
  bool is_dir = false;
  uint64_t size = 0;
  uint32_t mode = 0;  // permission bits (st_mode & 07777)
};

// Thread safety: implementations are thread-safe.
class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // `flags` are open(2)'s: O_RDONLY, O_WRONLY or O_RDWR, with O_CREAT and
  // O_TRUNC honoured; others are ignored. `mode` applies when creating
  // (POSIX: less the umask).
  virtual absl::StatusOr<std::unique_ptr<FileHandle>> Open(
      const std::string& path, int flags, int mode) = 0;
  // Creates one directory (kAlreadyExists if it exists).
  virtual absl::Status MakeDir(const std::string& path, int mode) = 0;
  virtual absl::StatusOr<FileStat> Stat(const std::string& path) = 0;
  // The names in `dir`, without "." and "..", in no particular order.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) = 0;
  virtual absl::Status Remove(const std::string& path) = 0;
  virtual absl::Status Rename(const std::string& from,
                              const std::string& to) = 0;
  // Makes the directory's entries (creations, renames, removals) durable.
  virtual absl::Status SyncDir(const std::string& dir) = 0;
  // Creates `path` if missing (mode 0600) and takes an exclusive, non-blocking
  // lock on it for as long as the returned handle lives. kFailedPrecondition
  // (without a message; the caller words it) when someone holds it.
  virtual absl::StatusOr<std::unique_ptr<FileHandle>> Lock(
      const std::string& path) = 0;
};

// The POSIX file system (process-wide, never destroyed).
FileSystem* PosixFileSystem();

// The file system the helpers of file_util.h use: the POSIX one unless a
// `ScopedFileSystem` is alive.
FileSystem* CurrentFileSystem();

// Installs `fs` as `CurrentFileSystem()` until destroyed (then the previous
// one again). For tests: it is process-wide, so install it before opening
// anything and keep it alive until everything opened through it is closed.
class ScopedFileSystem {
 public:
  explicit ScopedFileSystem(FileSystem* fs);
  ~ScopedFileSystem();
  ScopedFileSystem(const ScopedFileSystem&) = delete;
  ScopedFileSystem& operator=(const ScopedFileSystem&) = delete;

 private:
  FileSystem* previous_;
};

}  // namespace fabric::spool_internal

#endif  // FABRIC_SPOOL_INTERNAL_FILE_SYSTEM_H_
