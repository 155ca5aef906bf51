// SPDX-License-Identifier: Apache-2.0
// File helpers for the spool and the topic log: errno to Status, whole-file
// reads, full writes, fdatasync, directory fsync, atomic replacement and the
// segment file names. Every call that can hit the disk goes through here and
// on to `CurrentFileSystem()` (file_system.h), so tests can replace the disk
// (mem_file_system.h), which can also inject faults.
#ifndef FABRIC_SPOOL_INTERNAL_FILE_UTIL_H_
#define FABRIC_SPOOL_INTERNAL_FILE_UTIL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fabric/spool/internal/file_system.h"

namespace fabric::spool_internal {

// Maps an errno to a Status whose message is "`what`: strerror":
// ENOSPC/EDQUOT/EFBIG -> kResourceExhausted ("spool disk full: ..."),
// ENOENT -> kNotFound, EACCES/EPERM/EROFS -> kPermissionDenied, EIO ->
// kDataLoss, anything else kInternal.
absl::Status ErrnoStatus(int err, absl::string_view what);

// "seg-00000000000000000042.log" and back. Parse returns nullopt for any
// other name (including ".tmp" files).
std::string SegmentFileName(uint64_t number);
std::optional<uint64_t> ParseSegmentFileName(absl::string_view name);

std::string JoinPath(absl::string_view dir, absl::string_view name);

// Creates `path` and its missing parents (mode 0700: spools, topic logs and
// positions hold message bodies only their owner may read; an existing
// directory keeps its mode), and fsyncs the parent
// of each directory it created so the new ones survive a power loss. The
// parent of `path` itself is fsynced even when `path` existed: a run that
// died between its mkdir and that fsync left an entry a power loss could
// still take, with everything under it.
absl::Status MakeDirs(const std::string& path);
// Secure mode's rule for durable state that already exists (docs/security.md
// section 3): kFailedPrecondition "FAB-SEC-FILE-PERMS PATH has mode 0755; ..."
// naming the first path found with group or other permission bits (mode &
// 077), its mode and the fix (chmod, or the `allow_shared_files` override).
// `what` names the state in the message ("spool", "topic log", ...). OK when
// `path` does not exist (it will be created owner-only). `CheckOwnerOnlyTree`
// also checks everything under a directory `path`, down to the depth of a
// log's layout (its files and quarantine/); `CheckOwnerOnly` only `path`.
absl::Status CheckOwnerOnly(const std::string& path, absl::string_view what);
absl::Status CheckOwnerOnlyTree(const std::string& path,
                                absl::string_view what);
// Returns the names in `dir`, without "." and "..".
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir);
absl::StatusOr<std::string> ReadFile(const std::string& path);
absl::StatusOr<uint64_t> FileSize(const std::string& path);
bool FileExists(const std::string& path);

// Writes all of `data` at `offset`, retrying short writes and EINTR.
class File;
absl::Status PWriteAll(File& file, absl::string_view data, uint64_t offset,
                       absl::string_view path);
// Reads up to `n` bytes at `offset` (fewer at the end of the file).
absl::Status PRead(const File& file, uint64_t offset, size_t n,
                   std::string* out, absl::string_view path);
absl::Status DataSync(File& file, absl::string_view path);
absl::Status SyncDir(const std::string& dir);
absl::Status Truncate(File& file, uint64_t size, absl::string_view path);
absl::Status RemoveFile(const std::string& path);
absl::Status RenameFile(const std::string& from, const std::string& to);

// Writes `contents` to `dir/name` (created mode 0600) through `name.tmp`:
// write, fdatasync, rename, fsync(dir). A crash leaves either the old file
// or the new one.
// `InstallFile` (below) returns the new file, still open for writing.
absl::Status WriteFileAtomically(const std::string& dir, absl::string_view name,
                                 absl::string_view contents);

// An open file of `CurrentFileSystem()`. Thread safety: thread-compatible.
class File {
 public:
  File() = default;
  explicit File(std::unique_ptr<FileHandle> handle)
      : handle_(std::move(handle)) {}
  File(File&& other) noexcept = default;
  File& operator=(File&& other) noexcept = default;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File() = default;

  bool valid() const { return handle_ != nullptr; }
  FileHandle* handle() const { return handle_.get(); }
  void Close() noexcept { handle_.reset(); }

 private:
  std::unique_ptr<FileHandle> handle_;
};

absl::StatusOr<File> OpenFile(const std::string& path, int flags, int mode);
// `WriteFileAtomically`, returning the new file still open for writing.
absl::StatusOr<File> InstallFile(const std::string& dir, absl::string_view name,
                                 absl::string_view contents);

// Takes an exclusive lock on `dir`/LOCK (created if missing) and returns the
// open file that holds it. Returns kFailedPrecondition "`what` DIR is in use
// by another process" when someone else holds it.
absl::StatusOr<File> LockDirectory(const std::string& dir,
                                   absl::string_view what);

}  // namespace fabric::spool_internal

#endif  // FABRIC_SPOOL_INTERNAL_FILE_UTIL_H_
