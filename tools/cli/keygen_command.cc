// SPDX-License-Identifier: Apache-2.0
// `fabric keygen`: the key material of secure mode (docs/cli.md "keygen").
// A node's CURVE keypair as NAME.key (secret) and NAME.pub (its roster
// entry), and the cluster's beacon keyring with its three rotation steps
// (add, switch the primary, remove). Secrets only ever go to files written
// by fabric/security/keys.h; nothing here prints one.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fabric/base/status_macros.h"
#include "fabric/security/keys.h"
#include "tools/cli/commands.h"

namespace fabric::cli {
namespace {

using security::BeaconSecrets;
using security::CurveKeypair;

constexpr int kMaxKeyId = 255;

void Print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

absl::Status CheckKeygenFlags(const KeygenFlags& f) {
  const int changes = int{f.add} + int{f.has_primary} + int{f.has_remove};
  if (f.beacon_secret.empty()) {
    if (f.name.empty()) {
      return absl::InvalidArgumentError(
          "keygen needs NAME (a node keypair) or --beacon-secret FILE (a "
          "beacon keyring)");
    }
    if (changes > 0) {
      return absl::InvalidArgumentError(
          "--add, --primary and --remove need --beacon-secret FILE");
    }
    return absl::OkStatus();
  }
  if (!f.name.empty()) {
    return absl::InvalidArgumentError(
        "give NAME (a node keypair) or --beacon-secret FILE (a beacon "
        "keyring), not both");
  }
  if (f.force || !f.dir.empty()) {
    return absl::InvalidArgumentError(
        "--dir and --force go with NAME; a keyring is changed with --add, "
        "--primary ID or --remove ID");
  }
  if (changes > 1) {
    return absl::InvalidArgumentError(
        "give one of --add, --primary ID and --remove ID at a time");
  }
  if (f.has_primary && (f.primary < 1 || f.primary > kMaxKeyId)) {
    return absl::InvalidArgumentError("--primary ID must be 1..255");
  }
  if (f.has_remove && (f.remove < 1 || f.remove > kMaxKeyId)) {
    return absl::InvalidArgumentError("--remove ID must be 1..255");
  }
  return absl::OkStatus();
}

// Creates `dir` (one level, 0700) unless it is there.
absl::Status EnsureDir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) == 0) return absl::OkStatus();
  const int err = errno;
  struct stat st;
  if (err == EEXIST && stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return absl::OkStatus();
  }
  if (err == EEXIST) {
    return absl::FailedPreconditionError(
        absl::StrCat("--dir ", dir, " is not a directory"));
  }
  return absl::FailedPreconditionError(
      absl::StrCat("cannot create --dir ", dir, ": ", std::strerror(err)));
}

absl::Status WriteNewKeypair(const KeygenFlags& f) {
  const std::string dir = f.dir.empty() ? "." : f.dir;
  // First, so that a bad NAME is a usage error before anything is created.
  FABRIC_ASSIGN_OR_RETURN(const CurveKeypair keypair,
                          security::GenerateKeypair(f.name));
  FABRIC_RETURN_IF_ERROR(EnsureDir(dir));
  const absl::Status written = security::WriteKeypair(dir, keypair, f.force);
  if (absl::IsAlreadyExists(written)) {
    return absl::AlreadyExistsError(absl::StrCat(
        written.message(), "; not overwritten (--force replaces the pair)"));
  }
  FABRIC_RETURN_IF_ERROR(written);
  const std::string base =
      absl::StrCat(dir, dir.back() == '/' ? "" : "/", keypair.name);
  Print(absl::StrCat(
      "public-key  ", security::Z85Key(keypair.public_key), "\nfingerprint ",
      security::KeyFingerprint(keypair.public_key), "\nsecret      ", base,
      ".key (0600: keep it on this node only)\nroster      ", base,
      ".pub (0644: copy it into every node's roster)\n"));
  return absl::OkStatus();
}

std::string Ids(const BeaconSecrets& s) {
  std::vector<int> ids;
  for (const auto& [id, secret] : s.secrets) ids.push_back(id);
  return absl::StrJoin(ids, " ");
}

absl::Status CheckHas(const BeaconSecrets& s, int id, const std::string& path) {
  if (s.secrets.count(static_cast<uint8_t>(id)) == 0) {
    return absl::NotFoundError(
        absl::StrCat(path, " has no key id ", id, " (it holds ", Ids(s), ")"));
  }
  return absl::OkStatus();
}

// The id `--add` uses: one above the highest, so an id just removed is not
// reused at once (a node still holding its old secret would take beacons
// under it as forged); the lowest free one once 255 is taken.
absl::StatusOr<uint8_t> NextKeyId(const BeaconSecrets& s,
                                  const std::string& path) {
  const int highest = s.secrets.empty() ? 0 : s.secrets.rbegin()->first;
  if (highest < kMaxKeyId) return static_cast<uint8_t>(highest + 1);
  for (int id = 1; id <= kMaxKeyId; ++id) {
    if (s.secrets.count(static_cast<uint8_t>(id)) == 0) {
      return static_cast<uint8_t>(id);
    }
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      path, " holds 255 keys; --remove one before adding another"));
}

absl::Status CreateKeyring(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(
        absl::StrCat(path,
                     " exists; change it with --add, --primary ID or "
                     "--remove ID"));
  }
  BeaconSecrets secrets;
  secrets.secrets[1] = security::RandomBeaconSecret();
  secrets.primary = 1;
  FABRIC_RETURN_IF_ERROR(security::WriteBeaconSecrets(path, secrets));
  Print(absl::StrCat("created ", path, " (0600): key id 1, primary\n"));
  return absl::OkStatus();
}

absl::Status ChangeKeyring(const KeygenFlags& f) {
  const std::string& path = f.beacon_secret;
  FABRIC_ASSIGN_OR_RETURN(BeaconSecrets secrets,
                          security::LoadBeaconSecrets(path));
  std::string done;
  if (f.add) {
    FABRIC_ASSIGN_OR_RETURN(const uint8_t id, NextKeyId(secrets, path));
    secrets.secrets[id] = security::RandomBeaconSecret();
    done = absl::StrCat("added key id ", id, " to ", path,
                        "; the primary stays ", secrets.primary);
  } else if (f.has_primary) {
    FABRIC_RETURN_IF_ERROR(CheckHas(secrets, f.primary, path));
    if (secrets.primary == f.primary) {
      Print(absl::StrCat(path, ": key id ", f.primary,
                         " is the primary already\n"));
      return absl::OkStatus();
    }
    secrets.primary = static_cast<uint8_t>(f.primary);
    done = absl::StrCat(path, ": the primary is now key id ", f.primary);
  } else {
    FABRIC_RETURN_IF_ERROR(CheckHas(secrets, f.remove, path));
    if (secrets.primary == f.remove) {
      return absl::FailedPreconditionError(absl::StrCat(
          "key id ", f.remove, " is the primary of ", path,
          ": make another id primary first (--primary ID), then remove it"));
    }
    secrets.secrets.erase(static_cast<uint8_t>(f.remove));
    done = absl::StrCat("removed key id ", f.remove, " from ", path,
                        "; the primary is ", secrets.primary);
  }
  FABRIC_RETURN_IF_ERROR(security::WriteBeaconSecrets(path, secrets));
  Print(absl::StrCat(done, " (ids: ", Ids(secrets), ")\n"));
  return absl::OkStatus();
}

}  // namespace

absl::Status RunKeygen(const CommonFlags& common, const KeygenFlags& flags) {
  FABRIC_RETURN_IF_ERROR(ApplyLogLevel(common));
  FABRIC_RETURN_IF_ERROR(CheckKeygenFlags(flags));
  if (flags.beacon_secret.empty()) return WriteNewKeypair(flags);
  if (!flags.add && !flags.has_primary && !flags.has_remove) {
    return CreateKeyring(flags.beacon_secret);
  }
  return ChangeKeyring(flags);
}

}  // namespace fabric::cli
