// SPDX-License-Identifier: Apache-2.0
// Key material of secure mode (docs/security.md): a node's CURVE keypair,
// the roster of public keys allowed to join, and the beacon-secret keyring.
// Every loader applies the OpenSSH rule to secret files and refuses what is
// unsafe with kFailedPrecondition; the message starts with a FAB-SEC-* id
// and names the file (and its mode), never a byte of the secret.
#ifndef FABRIC_SECURITY_KEYS_H_
#define FABRIC_SECURITY_KEYS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fabric::security {

inline constexpr size_t kCurveKeyBytes = 32;      // raw
inline constexpr size_t kZ85KeyChars = 40;        // Z85 text
inline constexpr size_t kBeaconSecretBytes = 32;  // raw

// A node's CURVE keypair. Thread safety: thread-compatible value type. The
// destructor wipes the secret.
struct CurveKeypair {
  std::string name;        // from the key file ("" if none)
  std::string public_key;  // 32 raw bytes
  std::string secret_key;  // 32 raw bytes
  ~CurveKeypair();
  CurveKeypair() = default;
  CurveKeypair(const CurveKeypair&) = default;
  CurveKeypair(CurveKeypair&&) = default;
  CurveKeypair& operator=(const CurveKeypair&) = default;
  CurveKeypair& operator=(CurveKeypair&&) = default;
};

// Z85 of a 32-byte key (40 characters), and back. Decode returns
// kInvalidArgument for anything that is not 40 Z85 characters.
std::string Z85Key(absl::string_view raw);
absl::StatusOr<std::string> DecodeZ85Key(absl::string_view text);
// 16 lowercase hex digits of the raw key's first 8 bytes: safe in logs and
// shells (Z85 holds $&<>()*).
std::string KeyFingerprint(absl::string_view raw);

// A fresh keypair (zmq_curve_keypair). kInternal if libzmq lacks CURVE.
absl::StatusOr<CurveKeypair> GenerateKeypair(absl::string_view name);

// Writes DIR/NAME.key (secret: O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600) and
// DIR/NAME.pub (0644), both fsynced. Without `force`, kAlreadyExists if
// either exists. The .pub file is a roster entry (see LoadRoster).
absl::Status WriteKeypair(absl::string_view dir, const CurveKeypair& keypair,
                          bool force);

// Reads a key file written by WriteKeypair. Refused (kFailedPrecondition,
// FAB-SEC-KEY-PERMS) unless it is a regular file, not a symlink, owned by
// the effective uid, `mode & 077 == 0` and under 4 KiB; FAB-SEC-KEY-FORMAT
// for a missing field, a bad key or a public key that does not match the
// secret one; FAB-SEC-KEY-MISSING when it does not exist.
absl::StatusOr<CurveKeypair> LoadKeyFile(absl::string_view path);

// One public key allowed to join.
struct RosterEntry {
  std::string name;        // "name" line, else the file's stem
  std::string public_key;  // 32 raw bytes
  std::string endpoint;    // optional "endpoint = tcp://H:P" (seeds)
  std::string file;        // where it was read from
};

// An immutable snapshot of a roster directory. Thread safety: immutable
// after LoadRoster, so safe to share between threads.
class Roster {
 public:
  Roster() = default;
  explicit Roster(std::vector<RosterEntry> entries);
  bool Contains(absl::string_view public_key) const;
  const RosterEntry* Find(absl::string_view public_key) const;
  const RosterEntry* FindByName(absl::string_view name) const;
  const RosterEntry* FindByEndpoint(absl::string_view endpoint) const;
  const std::vector<RosterEntry>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }

 private:
  std::vector<RosterEntry> entries_;
  std::map<std::string, size_t> by_key_;
};

// What changes when a roster directory is edited: the directory's mtime, the
// number of *.pub files, and their total size and newest mtime. Each "mtime"
// is the newer of mtime and ctime, so a chmod or a `cp -p` counts. Two
// stamps compare equal when nothing a reload would see changed.
struct RosterStamp {
  int64_t dir_mtime_ns = 0;
  int64_t newest_mtime_ns = 0;
  uint64_t files = 0;
  uint64_t bytes = 0;
  bool operator==(const RosterStamp&) const = default;
};
absl::StatusOr<RosterStamp> StatRoster(absl::string_view dir);

// Loads every *.pub file of `dir` (the format WriteKeypair writes: lines
// `name = N`, `public-key = Z85`, optional `endpoint = tcp://H:P`; `#`
// comments). Refused (FAB-SEC-ROSTER-PERMS) when the directory or a file is
// group- or world-writable or owned by neither the effective uid nor root;
// FAB-SEC-ROSTER-FORMAT names a file that does not parse;
// FAB-SEC-ROSTER-MISSING when the directory does not exist or holds no
// key. A *.key file in it is skipped and reported in `warnings` (a roster
// that travels must not carry secrets; `warnings` may be null). Hidden
// files are ignored; two files with the same key or name, or a .pub holding
// a secret-key, are FAB-SEC-ROSTER-FORMAT.
absl::StatusOr<Roster> LoadRoster(absl::string_view dir,
                                  std::vector<std::string>* warnings);

// The cluster's beacon secrets: ids 1..255, each 32 bytes, one primary
// (the id beacons are sent with). Thread-compatible value type.
struct BeaconSecrets {
  std::map<uint8_t, std::string> secrets;
  uint8_t primary = 0;
  ~BeaconSecrets();
  BeaconSecrets() = default;
  BeaconSecrets(const BeaconSecrets&) = default;
  BeaconSecrets(BeaconSecrets&&) = default;
  BeaconSecrets& operator=(const BeaconSecrets&) = default;
  BeaconSecrets& operator=(BeaconSecrets&&) = default;
};

// File format: one line per secret, `ID BASE64-OF-32-BYTES [primary]`,
// exactly one primary; `#` comments. Same permission rules as LoadKeyFile
// (FAB-SEC-BEACON-PERMS, FAB-SEC-BEACON-FORMAT, FAB-SEC-BEACON-MISSING).
absl::StatusOr<BeaconSecrets> LoadBeaconSecrets(absl::string_view path);
// Writes `secrets` to `path` (0600, through a temporary file and rename,
// fsynced). Refuses to write a keyring without a primary that exists.
absl::Status WriteBeaconSecrets(absl::string_view path,
                                const BeaconSecrets& secrets);
// A fresh random 32-byte secret (libsodium randombytes).
std::string RandomBeaconSecret();

}  // namespace fabric::security

#endif  // FABRIC_SECURITY_KEYS_H_
