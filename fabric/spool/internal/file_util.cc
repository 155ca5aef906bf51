// SPDX-License-Identifier: Apache-2.0
#include "fabric/spool/internal/file_util.h"

#include <fcntl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "fabric/base/status_macros.h"
#include "fabric/spool/internal/spool_format.h"

namespace fabric::spool_internal {
namespace {

// Bytes per read of `ReadFile`.
constexpr size_t kReadBlockBytes = 1 << 20;
// What the spool, topic logs and position files create, in every mode
// (docs/spool.md): the records hold message bodies, so owner-only. The
// umask can only take bits away.
constexpr int kDirMode = 0700;
constexpr int kFileMode = 0600;

// How deep `CheckOwnerOnlyTree` looks below its root: a log's layout is two
// levels (its files, quarantine/ and the copies in it). The bound also keeps
// a symlink loop (Stat follows links) from recursing forever.
constexpr int kOwnerOnlyDepth = 2;

// The refusal for `path`, found while checking `root` (`recursive`: the
// tree under it too).
absl::Status SharedFileError(const std::string& path, uint32_t mode,
                             const std::string& root, absl::string_view what,
                             bool recursive) {
  return absl::FailedPreconditionError(absl::StrFormat(
      "FAB-SEC-FILE-PERMS %s has mode %04o; secure mode keeps a %s "
      "owner-only: run 'chmod %sgo-rwx %s', or allow shared files "
      "explicitly (allow_shared_files, --allow-shared-files)",
      path, mode, what, recursive ? "-R " : "", root));
}

// Checks `path` and, when it is a directory and `depth` > 0, what is in it,
// `depth` levels down.
absl::Status CheckTree(const std::string& path, const std::string& root,
                       absl::string_view what, bool recursive, int depth) {
  FileSystem* fs = CurrentFileSystem();
  absl::StatusOr<FileStat> st = fs->Stat(path);
  // Gone since it was listed (or never there): nothing to expose.
  if (absl::IsNotFound(st.status())) return absl::OkStatus();
  if (!st.ok()) return st.status();
  if ((st->mode & 077) != 0) {
    return SharedFileError(path, st->mode, root, what, recursive);
  }
  if (!st->is_dir || depth <= 0) return absl::OkStatus();
  absl::StatusOr<std::vector<std::string>> names = fs->ListDir(path);
  if (absl::IsNotFound(names.status())) return absl::OkStatus();
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    FABRIC_RETURN_IF_ERROR(
        CheckTree(JoinPath(path, name), root, what, recursive, depth - 1));
  }
  return absl::OkStatus();
}

}  // namespace

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

absl::Status MakeDirs(const std::string& dir) {
  if (dir.empty()) return absl::InvalidArgumentError("empty directory path");
  std::string path = dir;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  FileSystem* fs = CurrentFileSystem();
  auto parent_of = [](const std::string& dir) -> std::string {
    const size_t slash = dir.find_last_of('/');
    if (slash == std::string::npos) return ".";  // a relative first component
    return slash == 0 ? "/" : dir.substr(0, slash);
  };
  bool parent_synced = false;
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    const std::string prefix = path.substr(0, pos);
    absl::Status made = fs->MakeDir(prefix, kDirMode);
    if (absl::IsAlreadyExists(made)) continue;
    if (!made.ok()) return made;
    FABRIC_RETURN_IF_ERROR(SyncDir(parent_of(prefix)));
    parent_synced = pos == path.size();
  }
  FABRIC_ASSIGN_OR_RETURN(FileStat st, fs->Stat(path));
  if (!st.is_dir) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists and is not a directory"));
  }
  if (!parent_synced) FABRIC_RETURN_IF_ERROR(SyncDir(parent_of(path)));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) {
  return CurrentFileSystem()->ListDir(dir);
}

absl::StatusOr<File> OpenFile(const std::string& path, int flags, int mode) {
  FABRIC_ASSIGN_OR_RETURN(std::unique_ptr<FileHandle> handle,
                          CurrentFileSystem()->Open(path, flags, mode));
  return File(std::move(handle));
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  FABRIC_ASSIGN_OR_RETURN(File file, OpenFile(path, O_RDONLY, 0));
  std::string data, block;
  // One read of the size the file has now, straight into the result (a
  // segment is read whole at recovery; no second copy).
  FABRIC_ASSIGN_OR_RETURN(const uint64_t size, file.handle()->Size(path));
  if (size > 0) FABRIC_RETURN_IF_ERROR(PRead(file, 0, size, &data, path));
  // The file may change under a read-only scan: read what is there.
  while (true) {
    FABRIC_RETURN_IF_ERROR(
        PRead(file, data.size(), kReadBlockBytes, &block, path));
    if (block.empty()) break;
    data.append(block);
  }
  return data;
}

absl::StatusOr<uint64_t> FileSize(const std::string& path) {
  FABRIC_ASSIGN_OR_RETURN(FileStat st, CurrentFileSystem()->Stat(path));
  return st.size;
}

bool FileExists(const std::string& path) {
  return CurrentFileSystem()->Stat(path).ok();
}

absl::Status PWriteAll(File& file, absl::string_view data, uint64_t offset,
                       absl::string_view path) {
  return file.handle()->PWrite(data, offset, path);
}

absl::Status PRead(const File& file, uint64_t offset, size_t n,
                   std::string* out, absl::string_view path) {
  return file.handle()->PRead(offset, n, out, path);
}

absl::Status DataSync(File& file, absl::string_view path) {
  return file.handle()->DataSync(path);
}

absl::Status SyncDir(const std::string& dir) {
  return CurrentFileSystem()->SyncDir(dir);
}

absl::Status Truncate(File& file, uint64_t size, absl::string_view path) {
  return file.handle()->Truncate(size, path);
}

absl::Status RemoveFile(const std::string& path) {
  absl::Status status = CurrentFileSystem()->Remove(path);
  if (absl::IsNotFound(status)) return absl::OkStatus();
  return status;
}

absl::Status RenameFile(const std::string& from, const std::string& to) {
  return CurrentFileSystem()->Rename(from, to);
}

absl::StatusOr<File> InstallFile(const std::string& dir, absl::string_view name,
                                 absl::string_view contents) {
  const std::string final_path = JoinPath(dir, name);
  const std::string tmp_path = absl::StrCat(final_path, kTmpSuffix);
  absl::StatusOr<File> file =
      OpenFile(tmp_path, O_WRONLY | O_CREAT | O_TRUNC, kFileMode);
  if (!file.ok()) return file.status();
  absl::Status status = PWriteAll(*file, contents, 0, tmp_path);
  if (status.ok()) status = DataSync(*file, tmp_path);
  if (status.ok()) status = RenameFile(tmp_path, final_path);
  if (!status.ok()) {
    RemoveFile(tmp_path).IgnoreError();  // best effort; already failing
    return status;
  }
  FABRIC_RETURN_IF_ERROR(SyncDir(dir));
  return file;
}

absl::Status WriteFileAtomically(const std::string& dir, absl::string_view name,
                                 absl::string_view contents) {
  return InstallFile(dir, name, contents).status();
}

absl::StatusOr<File> LockDirectory(const std::string& dir,
                                   absl::string_view what) {
  absl::StatusOr<std::unique_ptr<FileHandle>> lock =
      CurrentFileSystem()->Lock(JoinPath(dir, kLockFileName));
  if (absl::IsFailedPrecondition(lock.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " ", dir, " is in use by another process"));
  }
  if (!lock.ok()) return lock.status();
  return File(*std::move(lock));
}

absl::Status CheckOwnerOnly(const std::string& path, absl::string_view what) {
  return CheckTree(path, path, what, /*recursive=*/false, /*depth=*/0);
}

absl::Status CheckOwnerOnlyTree(const std::string& path,
                                absl::string_view what) {
  return CheckTree(path, path, what, /*recursive=*/true, kOwnerOnlyDepth);
}

}  // namespace fabric::spool_internal
