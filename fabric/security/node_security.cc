// SPDX-License-Identifier: Apache-2.0
#include "fabric/security/node_security.h"

#include <sodium.h>
#include <zmq.h>

#include "absl/strings/str_cat.h"
#include "fabric/base/log.h"

namespace fabric::security {
namespace {

absl::Status Refuse(absl::string_view message) {
  return absl::FailedPreconditionError(message);
}

// Loaders report a missing file as they see fit; secure mode refuses to
// start for any of it.
absl::Status AsPrecondition(const absl::Status& s) {
  if (s.ok() || absl::IsFailedPrecondition(s)) return s;
  return absl::FailedPreconditionError(s.message());
}

}  // namespace

absl::string_view SeedEndpoint(absl::string_view seed) {
  const size_t hash = seed.find('#');
  return hash == absl::string_view::npos ? seed : seed.substr(0, hash);
}

absl::StatusOr<std::string> ResolveSeedKey(const Roster& roster,
                                           absl::string_view seed,
                                           absl::string_view roster_dir) {
  const absl::string_view endpoint = SeedEndpoint(seed);
  if (endpoint.size() != seed.size()) {
    const absl::string_view name = seed.substr(endpoint.size() + 1);
    const RosterEntry* entry = roster.FindByName(name);
    if (entry == nullptr) {
      return Refuse(absl::StrCat("FAB-SEC-SEED-KEY seed ", seed,
                                 ": the roster ", roster_dir,
                                 " has no entry named '", name, "'"));
    }
    return entry->public_key;
  }
  const RosterEntry* entry = roster.FindByEndpoint(endpoint);
  if (entry == nullptr) {
    return Refuse(
        absl::StrCat("FAB-SEC-SEED-KEY seed ", seed,
                     ": no roster entry has this endpoint; write it as ", seed,
                     "#NAME for the roster entry NAME"));
  }
  return entry->public_key;
}

absl::StatusOr<std::shared_ptr<NodeSecurity>> LoadNodeSecurity(
    const NodeOptions& options) {
  const SecurityOptions& o = options.security;
  if (zmq_has("curve") != 1) {
    return Refuse("FAB-SEC-NO-CURVE this libzmq was built without CURVE");
  }
  if (sodium_init() < 0) {
    return Refuse("FAB-SEC-NO-SODIUM libsodium failed to initialize");
  }
  if (o.key_file.empty()) {
    return Refuse(
        "FAB-SEC-KEY-MISSING secure mode needs a key file (--key or "
        "FABRIC_KEY_FILE; make one with `fabric keygen NAME`)");
  }
  if (o.roster_dir.empty()) {
    return Refuse(
        "FAB-SEC-ROSTER-MISSING secure mode needs a roster directory "
        "(--roster or FABRIC_ROSTER) of the *.pub keys allowed to join");
  }
  const bool beacons = options.discovery != DiscoveryMode::kSeeds;
  if (beacons && o.beacon_secret_file.empty()) {
    return Refuse(
        absl::StrCat("FAB-SEC-BEACON-MISSING secure mode with ",
                     DiscoveryModeName(options.discovery),
                     " discovery needs a beacon secret (--beacon-secret or "
                     "FABRIC_BEACON_SECRET_FILE; make one with `fabric keygen "
                     "--beacon-secret FILE`)"));
  }
  auto security = std::make_shared<NodeSecurity>();
  absl::StatusOr<CurveKeypair> keypair = LoadKeyFile(o.key_file);
  if (!keypair.ok()) return AsPrecondition(keypair.status());
  security->keypair = std::move(*keypair);

  std::vector<std::string> warnings;
  absl::StatusOr<Roster> roster = LoadRoster(o.roster_dir, &warnings);
  if (!roster.ok()) return AsPrecondition(roster.status());
  for (const std::string& w : warnings) {
    FABRIC_LOG(kWarning, kSecurity, w);
  }
  if (!roster->Contains(security->keypair.public_key)) {
    return Refuse(absl::StrCat("FAB-SEC-ROSTER-SELF the roster ", o.roster_dir,
                               " lacks this node's own key (fingerprint ",
                               KeyFingerprint(security->keypair.public_key),
                               " from ", o.key_file,
                               "): copy its .pub file there"));
  }
  for (const std::string& seed : options.seeds) {
    absl::StatusOr<std::string> key =
        ResolveSeedKey(*roster, seed, o.roster_dir);
    if (!key.ok()) return key.status();
    security->seeds.emplace_back(std::string(SeedEndpoint(seed)), *key);
  }
  security->roster = std::make_shared<RosterHolder>(
      std::make_shared<const Roster>(std::move(*roster)));
  security->roster_dir = o.roster_dir;

  if (!o.beacon_secret_file.empty()) {
    absl::StatusOr<BeaconSecrets> beacon =
        LoadBeaconSecrets(o.beacon_secret_file);
    if (!beacon.ok()) return AsPrecondition(beacon.status());
    security->beacon = std::move(*beacon);
  }
  return security;
}

}  // namespace fabric::security
