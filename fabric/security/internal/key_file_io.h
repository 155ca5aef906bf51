// SPDX-License-Identifier: Apache-2.0
// File handling under fabric/security/keys.h: reading a secret or roster
// file only after `fstat` on the opened descriptor says it is safe (the
// OpenSSH `sshkey_perm_ok` rule), writing files with an exact mode without
// following symlinks, and the `name = value` text format of key files.
// Every refusal is kFailedPrecondition with a FAB-SEC-* id and the path;
// no message ever quotes the contents of a file.
#ifndef FABRIC_SECURITY_INTERNAL_KEY_FILE_IO_H_
#define FABRIC_SECURITY_INTERNAL_KEY_FILE_IO_H_

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fabric::security_internal {

// Key files, .pub files and keyrings are small; anything this large or
// larger is refused before it is read.
inline constexpr size_t kMaxKeyFileBytes = 4096;

// Initializes libsodium once (sodium_init); aborts when it cannot, which
// happens only when the system has no randomness to give. Thread-safe.
void InitSodium();

// Overwrites the bytes of `s` (sodium_memzero) and clears it.
void Wipe(std::string* s);

// Reads a secret file (a key file, a beacon keyring). `id` is the message
// prefix, e.g. "FAB-SEC-KEY": `id`-MISSING when `path` does not exist,
// `id`-PERMS unless it is a regular file (not a symlink: O_NOFOLLOW), owned
// by the effective uid, `mode & 077 == 0` and under kMaxKeyFileBytes. The
// caller wipes the result. Thread-safe.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path,
                                           absl::string_view id);

// A directory opened for reading the roster in it. Closes on destruction.
// Thread safety: thread-compatible.
class RosterDir {
 public:
  // Opens `dir` and checks it: FAB-SEC-ROSTER-MISSING when it does not
  // exist, FAB-SEC-ROSTER-PERMS unless it is a directory owned by the
  // effective uid or root and not group- or world-writable.
  static absl::StatusOr<RosterDir> Open(const std::string& dir);
  RosterDir(RosterDir&& other) noexcept;
  RosterDir& operator=(RosterDir&&) = delete;
  RosterDir(const RosterDir&) = delete;
  RosterDir& operator=(const RosterDir&) = delete;
  ~RosterDir();

  // The entry names, sorted, without "." and "..".
  absl::StatusOr<std::vector<std::string>> Names() const;
  // Reads entry `name` (symlinks are followed: a roster may be a mounted
  // config map) after checking the opened file as `Open` checks the
  // directory, plus regular and under kMaxKeyFileBytes.
  absl::StatusOr<std::string> Read(const std::string& name) const;
  // The path of entry `name`, for messages.
  std::string PathOf(absl::string_view name) const;

 private:
  RosterDir(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_;
};

// Creates `path` with exactly `mode` (O_CREAT|O_EXCL|O_NOFOLLOW, then
// fchmod past the umask), writes `contents`, fsyncs it and its directory.
// kAlreadyExists when something (even a dangling symlink) is at `path`.
absl::Status WriteNewFile(const std::string& path, absl::string_view contents,
                          mode_t mode);
// Replaces `path` atomically: writes a fresh temporary file beside it as
// `WriteNewFile` does, renames it over `path` (which replaces a symlink,
// never its target) and fsyncs the directory.
absl::Status ReplaceFile(const std::string& path, absl::string_view contents,
                         mode_t mode);

// One `name = value` line of a key or roster file.
struct Field {
  std::string name;
  std::string value;
  int line = 0;  // 1-based
};
// Splits `text` into fields: blank lines and lines starting with `#` are
// skipped; whitespace around names and values is dropped. `id`-FORMAT
// (kFailedPrecondition) names `path` and the line of anything else, a field
// not in `allowed` or one given twice, without quoting it. The caller wipes
// the values of secret files.
absl::StatusOr<std::vector<Field>> ParseFields(
    absl::string_view text, const std::vector<absl::string_view>& allowed,
    absl::string_view path, absl::string_view id);

// Whether `name` may name a key: 1..64 of [A-Za-z0-9._-], starting with a
// letter or digit (it becomes a file name and appears in logs).
bool IsValidKeyName(absl::string_view name);

}  // namespace fabric::security_internal

#endif  // FABRIC_SECURITY_INTERNAL_KEY_FILE_IO_H_
