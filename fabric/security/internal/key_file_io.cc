// SPDX-License-Identifier: Apache-2.0
#include "fabric/security/internal/key_file_io.h"

#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "fabric/base/status_macros.h"

namespace fabric::security_internal {
namespace {

std::string OctalMode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof(text), "%04o",
                static_cast<unsigned>(mode & 07777));
  return text;
}

absl::Status Refused(absl::string_view id, absl::string_view kind,
                     absl::string_view detail) {
  return absl::FailedPreconditionError(
      absl::StrCat(id, "-", kind, " ", detail));
}

// An errno of a write path as a Status: the disk, not the key, is wrong.
absl::Status WriteError(int err, absl::string_view what) {
  const std::string message = absl::StrCat(what, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

// Closes a descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  const int fd_;
};

// The rules a file or directory is held to once opened: `secret` is the
// OpenSSH rule (owner-only, owned by us), otherwise the roster rule (not
// writable by group or others, owned by us or root).
absl::Status CheckOpened(const struct stat& st, absl::string_view path,
                         absl::string_view id, bool secret, bool dir) {
  const uid_t euid = geteuid();
  if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
    return Refused(
        id, "PERMS",
        absl::StrCat(path, " is not a ", dir ? "directory" : "regular file"));
  }
  if (secret ? st.st_uid != euid : st.st_uid != euid && st.st_uid != 0) {
    return Refused(
        id, "PERMS",
        absl::StrCat(path, " is owned by uid ", st.st_uid, ", not by ",
                     secret ? "" : "root or ", "this process's uid ", euid));
  }
  if (secret && (st.st_mode & 077) != 0) {
    return Refused(id, "PERMS",
                   absl::StrCat(path, " has mode ", OctalMode(st.st_mode),
                                "; a secret file must be owner-only "
                                "(chmod 600)"));
  }
  if (!secret && (st.st_mode & 022) != 0) {
    return Refused(
        id, "PERMS",
        absl::StrCat(path, " has mode ", OctalMode(st.st_mode), "; a roster ",
                     dir ? "directory" : "file",
                     " must not be group- or world-writable (chmod go-w)"));
  }
  if (!dir && st.st_size >= static_cast<off_t>(kMaxKeyFileBytes)) {
    return Refused(
        id, "PERMS",
        absl::StrCat(path, " is ", st.st_size, " bytes; a key file is under ",
                     kMaxKeyFileBytes, " bytes"));
  }
  return absl::OkStatus();
}

// Reads what `fd` holds, refusing a file that grew past the limit since
// its fstat.
absl::StatusOr<std::string> ReadBounded(int fd, absl::string_view path,
                                        absl::string_view id) {
  std::string data(kMaxKeyFileBytes, '\0');
  size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = read(fd, data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      Wipe(&data);
      return Refused(
          id, "PERMS",
          absl::StrCat("cannot read ", path, ": ", std::strerror(err)));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got >= kMaxKeyFileBytes) {
    Wipe(&data);
    return Refused(id, "PERMS",
                   absl::StrCat(path, " grew while read; a key file is under ",
                                kMaxKeyFileBytes, " bytes"));
  }
  data.resize(got);
  return data;
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

absl::Status SyncDir(const std::string& dir) {
  Fd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return WriteError(errno, absl::StrCat("cannot open ", dir));
  if (fsync(fd.get()) != 0) {
    return WriteError(errno, absl::StrCat("fsync ", dir));
  }
  return absl::OkStatus();
}

// `WriteNewFile` without the directory fsync.
absl::Status CreateAndWrite(const std::string& path, absl::string_view contents,
                            mode_t mode) {
  const int fd = open(
      path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST) {
      return absl::AlreadyExistsError(absl::StrCat(path, " exists"));
    }
    return WriteError(errno, absl::StrCat("cannot create ", path));
  }
  absl::Status status;
  // The umask may have taken bits away: the mode is exact.
  if (fchmod(fd, mode) != 0) {
    status = WriteError(errno, absl::StrCat("chmod ", path));
  }
  size_t done = 0;
  while (status.ok() && done < contents.size()) {
    const ssize_t n = write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = WriteError(errno, absl::StrCat("cannot write ", path));
    } else {
      done += static_cast<size_t>(n);
    }
  }
  if (status.ok() && fsync(fd) != 0) {
    status = WriteError(errno, absl::StrCat("fsync ", path));
  }
  if (close(fd) != 0 && status.ok()) {
    status = WriteError(errno, absl::StrCat("cannot close ", path));
  }
  if (!status.ok()) unlink(path.c_str());  // ours: created above
  return status;
}

}  // namespace

void InitSodium() {
  // No key or temporary name can be made safely without randomness.
  static const bool initialized = [] {
    if (sodium_init() < 0) {
      std::fputs("fabric: libsodium failed to initialize\n", stderr);
      std::abort();
    }
    return true;
  }();
  (void)initialized;
}

void Wipe(std::string* s) {
  if (!s->empty()) sodium_memzero(s->data(), s->size());
  s->clear();
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& path,
                                           absl::string_view id) {
  // O_NONBLOCK: a FIFO planted at the path must not hang the open; it is
  // refused as not regular below.
  Fd fd(open(path.c_str(),
             O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return Refused(id, "MISSING", absl::StrCat(path, " does not exist"));
    }
    if (err == ELOOP) {
      return Refused(id, "PERMS",
                     absl::StrCat(path,
                                  " is a symbolic link; a secret file must "
                                  "be a regular file"));
    }
    return Refused(
        id, "PERMS",
        absl::StrCat("cannot open ", path, ": ", std::strerror(err)));
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) {
    return Refused(
        id, "PERMS",
        absl::StrCat("cannot stat ", path, ": ", std::strerror(errno)));
  }
  FABRIC_RETURN_IF_ERROR(CheckOpened(st, path, id, /*secret=*/true, false));
  return ReadBounded(fd.get(), path, id);
}

absl::StatusOr<RosterDir> RosterDir::Open(const std::string& dir) {
  constexpr absl::string_view kId = "FAB-SEC-ROSTER";
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return Refused(kId, "MISSING", absl::StrCat(dir, " does not exist"));
    }
    if (err == ENOTDIR) {
      return Refused(kId, "PERMS", absl::StrCat(dir, " is not a directory"));
    }
    return Refused(kId, "PERMS",
                   absl::StrCat("cannot open ", dir, ": ", std::strerror(err)));
  }
  RosterDir opened(dir, fd);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return Refused(
        kId, "PERMS",
        absl::StrCat("cannot stat ", dir, ": ", std::strerror(errno)));
  }
  FABRIC_RETURN_IF_ERROR(CheckOpened(st, dir, kId, /*secret=*/false, true));
  return opened;
}

RosterDir::RosterDir(RosterDir&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

RosterDir::~RosterDir() {
  if (fd_ >= 0) close(fd_);
}

std::string RosterDir::PathOf(absl::string_view name) const {
  if (!path_.empty() && path_.back() == '/') return absl::StrCat(path_, name);
  return absl::StrCat(path_, "/", name);
}

absl::StatusOr<std::vector<std::string>> RosterDir::Names() const {
  // fdopendir owns the descriptor it is given: a duplicate, rewound since
  // it shares the offset with ours.
  const int dup_fd = fcntl(fd_, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) {
    return Refused(
        "FAB-SEC-ROSTER", "PERMS",
        absl::StrCat("cannot list ", path_, ": ", std::strerror(errno)));
  }
  DIR* d = fdopendir(dup_fd);
  if (d == nullptr) {
    close(dup_fd);
    return Refused(
        "FAB-SEC-ROSTER", "PERMS",
        absl::StrCat("cannot list ", path_, ": ", std::strerror(errno)));
  }
  rewinddir(d);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* entry = readdir(d)) {
    const absl::string_view name(entry->d_name);
    if (name != "." && name != "..") names.emplace_back(name);
  }
  const int err = errno;
  closedir(d);
  if (err != 0) {
    return Refused(
        "FAB-SEC-ROSTER", "PERMS",
        absl::StrCat("cannot list ", path_, ": ", std::strerror(err)));
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::string> RosterDir::Read(const std::string& name) const {
  constexpr absl::string_view kId = "FAB-SEC-ROSTER";
  const std::string path = PathOf(name);
  Fd fd(
      openat(fd_, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ENOENT) {
      // Removed since the listing, or a dangling link: not an entry.
      return absl::NotFoundError(absl::StrCat(path, " does not exist"));
    }
    return Refused(
        kId, "PERMS",
        absl::StrCat("cannot open ", path, ": ", std::strerror(err)));
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) {
    return Refused(
        kId, "PERMS",
        absl::StrCat("cannot stat ", path, ": ", std::strerror(errno)));
  }
  FABRIC_RETURN_IF_ERROR(CheckOpened(st, path, kId, /*secret=*/false, false));
  return ReadBounded(fd.get(), path, kId);
}

absl::Status WriteNewFile(const std::string& path, absl::string_view contents,
                          mode_t mode) {
  FABRIC_RETURN_IF_ERROR(CreateAndWrite(path, contents, mode));
  return SyncDir(DirOf(path));
}

absl::Status ReplaceFile(const std::string& path, absl::string_view contents,
                         mode_t mode) {
  InitSodium();
  unsigned char nonce[8];
  randombytes_buf(nonce, sizeof(nonce));
  const std::string tmp =
      absl::StrCat(path, ".tmp-",
                   absl::BytesToHexString(absl::string_view(
                       reinterpret_cast<const char*>(nonce), sizeof(nonce))));
  FABRIC_RETURN_IF_ERROR(CreateAndWrite(tmp, contents, mode));
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(tmp.c_str());
    return WriteError(err, absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  return SyncDir(DirOf(path));
}

absl::StatusOr<std::vector<Field>> ParseFields(
    absl::string_view text, const std::vector<absl::string_view>& allowed,
    absl::string_view path, absl::string_view id) {
  std::vector<Field> fields;
  auto format_error = [&](int line, absl::string_view what) {
    for (Field& f : fields) Wipe(&f.value);
    return Refused(id, "FORMAT",
                   absl::StrCat(path, " line ", line, ": ", what));
  };
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      return format_error(number, "expected 'name = value'");
    }
    const absl::string_view name =
        absl::StripAsciiWhitespace(line.substr(0, eq));
    const absl::string_view value =
        absl::StripAsciiWhitespace(line.substr(eq + 1));
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      // The name is not quoted: in a damaged file it may be key material.
      return format_error(number,
                          absl::StrCat("not a known field (expected one of ",
                                       absl::StrJoin(allowed, ", "), ")"));
    }
    for (const Field& f : fields) {
      if (f.name == name) {
        return format_error(number, absl::StrCat(name, " is given twice"));
      }
    }
    if (value.empty()) {
      return format_error(number, absl::StrCat(name, " has no value"));
    }
    fields.push_back(Field{std::string(name), std::string(value), number});
  }
  return fields;
}

bool IsValidKeyName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  if (!absl::ascii_isalnum(static_cast<unsigned char>(name.front()))) {
    return false;
  }
  for (char c : name) {
    const bool ok = absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace fabric::security_internal
