// SPDX-License-Identifier: Apache-2.0
// Key material of secure mode. The file rules and formats are in
// docs/security.md and keys.h; the checked reads and exact-mode writes are
// in internal/key_file_io.cc.
#include "fabric/security/keys.h"

#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "fabric/base/status_macros.h"
#include "fabric/security/internal/key_file_io.h"

namespace fabric::security {
namespace {

using security_internal::Field;
using security_internal::Wipe;

constexpr absl::string_view kKeyFileHeader =
    "# fabric CURVE keypair. SECRET: keep this file owner-only (mode 0600);\n"
    "# never copy it into a roster, argv or the environment. The matching\n"
    "# .pub file is what other nodes' rosters hold.\n";
constexpr absl::string_view kPubFileHeader =
    "# fabric CURVE public key: a roster entry, safe to share.\n";
constexpr absl::string_view kBeaconHeader =
    "# fabric beacon secrets. SECRET: keep this file owner-only (mode 0600).\n"
    "# One line per key: ID BASE64-OF-32-BYTES [primary]\n";
constexpr int kBase64Variant = sodium_base64_VARIANT_ORIGINAL;

std::string JoinPath(absl::string_view dir, absl::string_view name) {
  if (dir.empty()) return std::string(name);
  if (dir.back() == '/') return absl::StrCat(dir, name);
  return absl::StrCat(dir, "/", name);
}

absl::Status FormatError(absl::string_view id, absl::string_view what) {
  return absl::FailedPreconditionError(absl::StrCat(id, "-FORMAT ", what));
}

const Field* FindField(const std::vector<Field>& fields,
                       absl::string_view name) {
  for (const Field& f : fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// Decodes the Z85 key of field `f` of `path`; FORMAT error otherwise.
absl::StatusOr<std::string> FieldKey(const Field& f, absl::string_view path,
                                     absl::string_view id) {
  absl::StatusOr<std::string> key = DecodeZ85Key(f.value);
  if (!key.ok()) {
    return FormatError(id, absl::StrCat(path, " line ", f.line, ": ", f.name,
                                        " is not a 40-character Z85 key"));
  }
  return key;
}

// Whether `public_key` is the public half of `secret_key` (both raw).
absl::StatusOr<bool> IsPublicOf(absl::string_view public_key,
                                absl::string_view secret_key) {
  std::string secret_z85 = Z85Key(secret_key);
  absl::Cleanup wipe = [&] { Wipe(&secret_z85); };
  char derived[kZ85KeyChars + 1] = {};
  if (secret_z85.empty() ||
      zmq_curve_public(derived, secret_z85.c_str()) != 0) {
    return absl::InternalError(
        absl::StrCat("zmq_curve_public: ", zmq_strerror(zmq_errno())));
  }
  return Z85Key(public_key) == derived;
}

std::string KeyNameRule() {
  return "1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit";
}

// Parses one line of a beacon keyring into `out`; `primary_line` records
// the line of the primary.
absl::Status ParseBeaconLine(absl::string_view line, int number,
                             absl::string_view path, BeaconSecrets* out,
                             int* primary_line) {
  auto error = [&](absl::string_view what) {
    return FormatError("FAB-SEC-BEACON",
                       absl::StrCat(path, " line ", number, ": ", what));
  };
  std::vector<absl::string_view> tokens =
      absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (tokens.size() < 2 || tokens.size() > 3 ||
      (tokens.size() == 3 && tokens[2] != "primary")) {
    return error("expected 'ID BASE64-OF-32-BYTES [primary]'");
  }
  int id = 0;
  const bool digits =
      !tokens[0].empty() && tokens[0].size() <= 3 &&
      std::all_of(tokens[0].begin(), tokens[0].end(),
                  [](char c) { return absl::ascii_isdigit(c); });
  if (!digits || !absl::SimpleAtoi(tokens[0], &id) || id < 1 || id > 255) {
    return error("the key id must be a number from 1 to 255");
  }
  const uint8_t key_id = static_cast<uint8_t>(id);
  if (out->secrets.count(key_id) != 0) {
    return error(absl::StrCat("key id ", id, " is given twice"));
  }
  const absl::string_view b64 = tokens[1];
  if (b64.size() > 128) return error("the secret is longer than 32 bytes");
  // Room for more than 32 bytes, so a longer secret is told apart from
  // text that is not base64 at all.
  unsigned char bin[96];
  size_t bin_len = 0;
  const char* end = nullptr;
  absl::Cleanup wipe = [&] { sodium_memzero(bin, sizeof(bin)); };
  const int rc = sodium_base642bin(bin, sizeof(bin), b64.data(), b64.size(),
                                   nullptr, &bin_len, &end, kBase64Variant);
  if (rc != 0 || end != b64.data() + b64.size()) {
    return error("the secret is not base64");
  }
  if (bin_len != kBeaconSecretBytes) {
    return error(absl::StrCat("the secret is ", bin_len, " bytes, not ",
                              kBeaconSecretBytes));
  }
  out->secrets[key_id].assign(reinterpret_cast<const char*>(bin), bin_len);
  if (tokens.size() == 3) {
    if (*primary_line != 0) {
      return error(absl::StrCat("a second primary (the first is on line ",
                                *primary_line, ")"));
    }
    *primary_line = number;
    out->primary = key_id;
  }
  return absl::OkStatus();
}

// Reads the *.pub entry `name` of `dir` into `entry`.
absl::Status LoadRosterEntry(const security_internal::RosterDir& dir,
                             const std::string& name, RosterEntry* entry) {
  constexpr absl::string_view kId = "FAB-SEC-ROSTER";
  const std::string path = dir.PathOf(name);
  FABRIC_ASSIGN_OR_RETURN(std::string text, dir.Read(name));
  // A .pub should hold nothing secret, but one may be a misnamed key file.
  absl::Cleanup wipe_text = [&] { Wipe(&text); };
  FABRIC_ASSIGN_OR_RETURN(
      std::vector<Field> fields,
      security_internal::ParseFields(
          text, {"name", "public-key", "endpoint", "secret-key"}, path, kId));
  absl::Cleanup wipe_fields = [&] {
    for (Field& f : fields) Wipe(&f.value);
  };
  if (FindField(fields, "secret-key") != nullptr) {
    return FormatError(kId, absl::StrCat(path,
                                         " holds a secret-key: a roster entry "
                                         "holds only the public key"));
  }
  const Field* public_key = FindField(fields, "public-key");
  if (public_key == nullptr) {
    return FormatError(kId, absl::StrCat(path, " has no public-key line"));
  }
  FABRIC_ASSIGN_OR_RETURN(entry->public_key, FieldKey(*public_key, path, kId));
  if (const Field* f = FindField(fields, "name")) {
    if (!security_internal::IsValidKeyName(f->value)) {
      return FormatError(kId, absl::StrCat(path, " line ", f->line,
                                           ": a name is ", KeyNameRule()));
    }
    entry->name = f->value;
  } else {
    entry->name = name.substr(0, name.size() - 4);  // without ".pub"
    if (!security_internal::IsValidKeyName(entry->name)) {
      return FormatError(kId,
                         absl::StrCat(path, ": the file name is no key name (",
                                      KeyNameRule(), "); add a name line"));
    }
  }
  if (const Field* f = FindField(fields, "endpoint")) {
    absl::string_view rest = f->value;
    if (!absl::ConsumePrefix(&rest, "tcp://") ||
        rest.find(':') == absl::string_view::npos || rest.front() == ':' ||
        rest.back() == ':') {
      return FormatError(kId, absl::StrCat(path, " line ", f->line,
                                           ": endpoint must be "
                                           "tcp://HOST:PORT"));
    }
    entry->endpoint = f->value;
  }
  entry->file = path;
  return absl::OkStatus();
}

int64_t ChangeTimeNs(const struct stat& st) {
  // The newer of mtime and ctime: `cp -p` or a chmod keeps the mtime but
  // is still a change a reload must see.
  const int64_t mtime =
      int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  const int64_t ctime =
      int64_t{st.st_ctim.tv_sec} * 1000000000 + st.st_ctim.tv_nsec;
  return std::max(mtime, ctime);
}

// A roster entry name: *.pub, not hidden (editors' lock and swap files
// are).
bool IsRosterEntryName(absl::string_view name) {
  return absl::EndsWith(name, ".pub") && name.size() > 4 && name.front() != '.';
}

}  // namespace

CurveKeypair::~CurveKeypair() { Wipe(&secret_key); }

BeaconSecrets::~BeaconSecrets() {
  for (auto& [id, secret] : secrets) Wipe(&secret);
}

std::string Z85Key(absl::string_view raw) {
  if (raw.size() != kCurveKeyBytes) return "";
  char text[kZ85KeyChars + 1];
  zmq_z85_encode(text, reinterpret_cast<const uint8_t*>(raw.data()),
                 raw.size());
  std::string out(text, kZ85KeyChars);
  sodium_memzero(text, sizeof(text));  // may be a secret key
  return out;
}

absl::StatusOr<std::string> DecodeZ85Key(absl::string_view text) {
  if (text.size() != kZ85KeyChars) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a key is ", kZ85KeyChars, " Z85 characters, not ", text.size()));
  }
  char z85[kZ85KeyChars + 1];
  std::memcpy(z85, text.data(), kZ85KeyChars);
  z85[kZ85KeyChars] = '\0';
  std::string raw(kCurveKeyBytes, '\0');
  const bool decoded =
      zmq_z85_decode(reinterpret_cast<uint8_t*>(raw.data()), z85) != nullptr;
  sodium_memzero(z85, sizeof(z85));
  if (!decoded) {
    Wipe(&raw);
    return absl::InvalidArgumentError(
        "a key holds characters that are not Z85");
  }
  return raw;
}

std::string KeyFingerprint(absl::string_view raw) {
  return absl::BytesToHexString(raw.substr(0, 8));
}

absl::StatusOr<CurveKeypair> GenerateKeypair(absl::string_view name) {
  if (!name.empty() && !security_internal::IsValidKeyName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("a key name is ", KeyNameRule()));
  }
  char public_z85[kZ85KeyChars + 1];
  char secret_z85[kZ85KeyChars + 1];
  absl::Cleanup wipe = [&] { sodium_memzero(secret_z85, sizeof(secret_z85)); };
  if (zmq_curve_keypair(public_z85, secret_z85) != 0) {
    return absl::InternalError(
        absl::StrCat("zmq_curve_keypair (is libzmq built with CURVE?): ",
                     zmq_strerror(zmq_errno())));
  }
  CurveKeypair keypair;
  keypair.name = std::string(name);
  FABRIC_ASSIGN_OR_RETURN(keypair.public_key,
                          DecodeZ85Key(absl::string_view(public_z85)));
  FABRIC_ASSIGN_OR_RETURN(keypair.secret_key,
                          DecodeZ85Key(absl::string_view(secret_z85)));
  return keypair;
}

absl::Status WriteKeypair(absl::string_view dir, const CurveKeypair& keypair,
                          bool force) {
  if (!security_internal::IsValidKeyName(keypair.name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("a key name is ", KeyNameRule()));
  }
  if (keypair.public_key.size() != kCurveKeyBytes ||
      keypair.secret_key.size() != kCurveKeyBytes) {
    return absl::InvalidArgumentError("a CURVE key is 32 bytes");
  }
  FABRIC_ASSIGN_OR_RETURN(const bool matches,
                          IsPublicOf(keypair.public_key, keypair.secret_key));
  if (!matches) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the public key of ", keypair.name, " is not that of its secret key"));
  }
  const std::string base = std::string(dir.empty() ? "." : dir);
  const std::string key_path = JoinPath(base, keypair.name + ".key");
  const std::string pub_path = JoinPath(base, keypair.name + ".pub");
  const std::string public_z85 = Z85Key(keypair.public_key);
  std::string secret_z85 = Z85Key(keypair.secret_key);
  std::string key_text = absl::StrCat(kKeyFileHeader, "name = ", keypair.name,
                                      "\npublic-key = ", public_z85,
                                      "\nsecret-key = ", secret_z85, "\n");
  absl::Cleanup wipe = [&] {
    Wipe(&secret_z85);
    Wipe(&key_text);
  };
  const std::string pub_text =
      absl::StrCat(kPubFileHeader, "name = ", keypair.name,
                   "\npublic-key = ", public_z85, "\n");
  if (force) {
    FABRIC_RETURN_IF_ERROR(
        security_internal::ReplaceFile(key_path, key_text, 0600));
    return security_internal::ReplaceFile(pub_path, pub_text, 0644);
  }
  struct stat st;
  for (const std::string& path : {key_path, pub_path}) {
    if (lstat(path.c_str(), &st) == 0) {
      return absl::AlreadyExistsError(absl::StrCat(path, " exists"));
    }
  }
  FABRIC_RETURN_IF_ERROR(
      security_internal::WriteNewFile(key_path, key_text, 0600));
  absl::Status pub = security_internal::WriteNewFile(pub_path, pub_text, 0644);
  // Half a pair is no use, and a second run without force must not trip
  // over it.
  if (!pub.ok()) unlink(key_path.c_str());
  return pub;
}

absl::StatusOr<CurveKeypair> LoadKeyFile(absl::string_view path_view) {
  constexpr absl::string_view kId = "FAB-SEC-KEY";
  const std::string path(path_view);
  FABRIC_ASSIGN_OR_RETURN(std::string text,
                          security_internal::ReadSecretFile(path, kId));
  absl::Cleanup wipe_text = [&] { Wipe(&text); };
  FABRIC_ASSIGN_OR_RETURN(
      std::vector<Field> fields,
      security_internal::ParseFields(text, {"name", "public-key", "secret-key"},
                                     path, kId));
  absl::Cleanup wipe_fields = [&] {
    for (Field& f : fields) Wipe(&f.value);
  };
  CurveKeypair keypair;
  for (absl::string_view required : {"public-key", "secret-key"}) {
    if (FindField(fields, required) == nullptr) {
      return FormatError(kId,
                         absl::StrCat(path, " has no ", required, " line"));
    }
  }
  FABRIC_ASSIGN_OR_RETURN(
      keypair.public_key,
      FieldKey(*FindField(fields, "public-key"), path, kId));
  FABRIC_ASSIGN_OR_RETURN(
      keypair.secret_key,
      FieldKey(*FindField(fields, "secret-key"), path, kId));
  if (const Field* f = FindField(fields, "name")) {
    if (!security_internal::IsValidKeyName(f->value)) {
      return FormatError(kId, absl::StrCat(path, " line ", f->line,
                                           ": a name is ", KeyNameRule()));
    }
    keypair.name = f->value;
  }
  FABRIC_ASSIGN_OR_RETURN(const bool matches,
                          IsPublicOf(keypair.public_key, keypair.secret_key));
  if (!matches) {
    return FormatError(kId, absl::StrCat(path,
                                         ": public-key is not the public half "
                                         "of secret-key"));
  }
  return keypair;
}

Roster::Roster(std::vector<RosterEntry> entries)
    : entries_(std::move(entries)) {
  for (size_t i = 0; i < entries_.size(); ++i) {
    by_key_.emplace(entries_[i].public_key, i);  // the first one wins
  }
}

bool Roster::Contains(absl::string_view public_key) const {
  return Find(public_key) != nullptr;
}

const RosterEntry* Roster::Find(absl::string_view public_key) const {
  auto it = by_key_.find(std::string(public_key));
  return it == by_key_.end() ? nullptr : &entries_[it->second];
}

const RosterEntry* Roster::FindByName(absl::string_view name) const {
  for (const RosterEntry& e : entries_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

const RosterEntry* Roster::FindByEndpoint(absl::string_view endpoint) const {
  for (const RosterEntry& e : entries_) {
    if (!e.endpoint.empty() && e.endpoint == endpoint) return &e;
  }
  return nullptr;
}

absl::StatusOr<RosterStamp> StatRoster(absl::string_view dir_view) {
  const std::string dir(dir_view);
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) {
      return absl::FailedPreconditionError(
          absl::StrCat("FAB-SEC-ROSTER-MISSING ", dir, " does not exist"));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "FAB-SEC-ROSTER-PERMS cannot stat ", dir, ": ", std::strerror(err)));
  }
  RosterStamp stamp;
  stamp.dir_mtime_ns = ChangeTimeNs(st);
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "FAB-SEC-ROSTER-PERMS cannot list ", dir, ": ", std::strerror(errno)));
  }
  absl::Cleanup close_dir = [d] { closedir(d); };
  while (struct dirent* entry = readdir(d)) {
    if (!IsRosterEntryName(entry->d_name)) continue;
    struct stat file;
    // Follows links, as LoadRoster does; one removed meanwhile is gone.
    if (fstatat(dirfd(d), entry->d_name, &file, 0) != 0) continue;
    ++stamp.files;
    stamp.bytes += static_cast<uint64_t>(file.st_size);
    stamp.newest_mtime_ns = std::max(stamp.newest_mtime_ns, ChangeTimeNs(file));
  }
  return stamp;
}

absl::StatusOr<Roster> LoadRoster(absl::string_view dir_view,
                                  std::vector<std::string>* warnings) {
  constexpr absl::string_view kId = "FAB-SEC-ROSTER";
  const std::string dir(dir_view);
  FABRIC_ASSIGN_OR_RETURN(security_internal::RosterDir opened,
                          security_internal::RosterDir::Open(dir));
  FABRIC_ASSIGN_OR_RETURN(const std::vector<std::string> names, opened.Names());
  std::vector<RosterEntry> entries;
  for (const std::string& name : names) {
    if (absl::EndsWith(name, ".key") && name.front() != '.') {
      if (warnings != nullptr) {
        warnings->push_back(
            absl::StrCat("FAB-SEC-ROSTER-SECRET ", opened.PathOf(name),
                         " skipped: a roster must not carry secret key files"));
      }
      continue;
    }
    if (!IsRosterEntryName(name)) continue;
    RosterEntry entry;
    absl::Status loaded = LoadRosterEntry(opened, name, &entry);
    if (absl::IsNotFound(loaded)) {
      if (warnings != nullptr) {
        warnings->push_back(absl::StrCat("FAB-SEC-ROSTER-GONE ",
                                         loaded.message(), ": skipped"));
      }
      continue;
    }
    FABRIC_RETURN_IF_ERROR(loaded);
    for (const RosterEntry& other : entries) {
      if (other.public_key == entry.public_key) {
        return FormatError(kId, absl::StrCat(entry.file, " and ", other.file,
                                             " hold the same public key"));
      }
      if (other.name == entry.name) {
        return FormatError(kId,
                           absl::StrCat(entry.file, " and ", other.file,
                                        " have the same name ", entry.name));
      }
    }
    entries.push_back(std::move(entry));
  }
  if (entries.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("FAB-SEC-ROSTER-MISSING ", dir, " holds no *.pub key"));
  }
  return Roster(std::move(entries));
}

absl::StatusOr<BeaconSecrets> LoadBeaconSecrets(absl::string_view path_view) {
  constexpr absl::string_view kId = "FAB-SEC-BEACON";
  const std::string path(path_view);
  FABRIC_ASSIGN_OR_RETURN(std::string text,
                          security_internal::ReadSecretFile(path, kId));
  absl::Cleanup wipe_text = [&] { Wipe(&text); };
  BeaconSecrets out;
  int primary_line = 0;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    FABRIC_RETURN_IF_ERROR(
        ParseBeaconLine(line, number, path, &out, &primary_line));
  }
  if (out.secrets.empty()) {
    return FormatError(kId, absl::StrCat(path, " holds no secret"));
  }
  if (primary_line == 0) {
    return FormatError(kId,
                       absl::StrCat(path,
                                    " has no primary key id (end one line with "
                                    "'primary')"));
  }
  return out;
}

absl::Status WriteBeaconSecrets(absl::string_view path,
                                const BeaconSecrets& secrets) {
  if (secrets.primary == 0 || secrets.secrets.count(secrets.primary) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "beacon secrets for ", path, " have no primary key id among them"));
  }
  std::string text(kBeaconHeader);
  absl::Cleanup wipe = [&] { Wipe(&text); };
  for (const auto& [id, secret] : secrets.secrets) {
    if (id == 0 || secret.size() != kBeaconSecretBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "beacon key id ", id, " for ", path, ": ids are 1..255 and secrets ",
          kBeaconSecretBytes, " bytes"));
    }
    char b64[sodium_base64_ENCODED_LEN(kBeaconSecretBytes, kBase64Variant)];
    sodium_bin2base64(b64, sizeof(b64),
                      reinterpret_cast<const unsigned char*>(secret.data()),
                      secret.size(), kBase64Variant);
    absl::StrAppend(&text, id, " ", b64,
                    id == secrets.primary ? " primary\n" : "\n");
    sodium_memzero(b64, sizeof(b64));
  }
  return security_internal::ReplaceFile(std::string(path), text, 0600);
}

std::string RandomBeaconSecret() {
  security_internal::InitSodium();
  std::string secret(kBeaconSecretBytes, '\0');
  randombytes_buf(secret.data(), secret.size());
  return secret;
}

}  // namespace fabric::security
