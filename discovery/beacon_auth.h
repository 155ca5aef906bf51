// SPDX-License-Identifier: Apache-2.0
// The signed discovery beacon of secure mode, version 2 (beacon_format.h;
// docs/protocol.md, "Beacon v2 (secure mode)"): a 124-byte datagram whose
// last 32 bytes are an HMAC-SHA-512-256 tag under a key derived from the
// cluster's beacon secret and name. This file holds the codec and the
// stateless receiver checks; the replay filter is beacon_replay_filter.h.
//
//   FABRIC_ASSIGN_OR_RETURN(BeaconAuthenticator auth,
//                           BeaconAuthenticator::Create(secrets, 1, "prod"));
//   FABRIC_ASSIGN_OR_RETURN(std::string wire, auth.Sign(beacon));
//   ...
//   BeaconReject reject;
//   absl::StatusOr<SignedBeacon> got = DecodeSignedBeacon(wire, auth, &reject);
//   if (!got.ok()) ++counters[BeaconRejectCounterName(reject)];
#ifndef FABRIC_DISCOVERY_BEACON_AUTH_H_
#define FABRIC_DISCOVERY_BEACON_AUTH_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "discovery/beacon.h"

namespace fabric::discovery {

// A version-2 beacon: the version-1 fields plus what binds it to its sender
// and moment. Thread safety: thread-compatible value type.
struct SignedBeacon {
  // flags, cluster hash, node id, ports and state version, as in version 1.
  Beacon beacon;
  // The beacon key id the tag was made with (1..255). Filled in by
  // `DecodeSignedBeacon`; `BeaconAuthenticator::Sign` ignores it and uses
  // its primary id.
  uint8_t key_id = 0;
  // The sender's IPv4 address in host byte order (0x0a4d0005 = 10.77.0.5):
  // the mailbox address, which the receiver must see as the datagram's
  // source.
  uint32_t ipv4 = 0;
  // 1, 2, 3 ... for this node id; receivers accept only increasing values
  // (`BeaconReplayFilter`).
  uint64_t seq = 0;
  // Wall-clock send time, carried in whole milliseconds since the Unix
  // epoch (sub-millisecond parts are dropped by `Sign`).
  absl::Time sent_time = absl::UnixEpoch();
  // The node's CURVE public key, 32 raw bytes.
  std::string public_key;
};

// Why `DecodeSignedBeacon` refused a datagram, in the order it checks. Each
// has a `NodeStats` counter (`BeaconRejectCounterName`).
enum class BeaconReject {
  kMalformed,        // not 124 bytes, not FBRC, zero node id or port
  kUnauthenticated,  // a version-1 (plaintext) beacon
  kWrongVersion,     // a fabric beacon of a version other than 1 and 2
  kOtherCluster,     // the cluster hash is not ours
  kUnknownKeyId,     // no secret installed under its key id
  kBadMac,           // the tag does not verify
};

// Returns the `NodeStats` counter a rejection is counted in, for example
// "beacons_bad_mac".
absl::string_view BeaconRejectCounterName(BeaconReject reject);

// Signs and verifies beacons of one cluster with its beacon secrets. It
// holds K[id] = BLAKE2b-256(key = secret[id], "fabric beacon v2" || cluster)
// for every installed id in sodium_malloc memory (guard pages, locked when
// the system allows, kept out of core dumps, wiped when freed); the
// secrets themselves are not kept. Rotating the secrets (install, use,
// remove; docs/protocol.md 2.8.2) replaces the whole authenticator.
//
// Thread safety: immutable after `Create`, so every method, and
// `DecodeSignedBeacon` with it, may run concurrently. Move-only: it owns
// the keys. A moved-from authenticator may only be destroyed or assigned.
class BeaconAuthenticator {
 public:
  // Returns an authenticator for `cluster` (the cluster name, as in HELLO)
  // that signs with `primary` and accepts every id of `secrets`. Returns
  // kInvalidArgument when `secrets` is empty, an id is 0, a secret is not
  // 32 bytes or `primary` is not one of the ids; kInternal when libsodium
  // cannot start; kResourceExhausted when its locked memory is unavailable.
  // Messages name ids, never secret bytes.
  static absl::StatusOr<BeaconAuthenticator> Create(
      const std::map<uint8_t, std::string>& secrets, uint8_t primary,
      absl::string_view cluster);

  BeaconAuthenticator(BeaconAuthenticator&&) noexcept;
  BeaconAuthenticator& operator=(BeaconAuthenticator&&) noexcept;
  BeaconAuthenticator(const BeaconAuthenticator&) = delete;
  BeaconAuthenticator& operator=(const BeaconAuthenticator&) = delete;
  ~BeaconAuthenticator();

  // Returns the 124 wire bytes of `beacon`, tagged with the primary key.
  // The key id and cluster hash written are this authenticator's, whatever
  // `beacon.key_id` and `beacon.beacon.cluster_hash` hold. Returns
  // kInvalidArgument when `public_key` is not 32 bytes or the node id or
  // mailbox port is zero (receivers would drop it as malformed).
  absl::StatusOr<std::string> Sign(const SignedBeacon& beacon) const;

  // Returns true when a key for `key_id` is installed.
  bool HasKeyId(uint8_t key_id) const;
  // Returns the installed key ids in increasing order.
  std::vector<uint8_t> key_ids() const;
  uint8_t primary_key_id() const { return primary_; }
  // The FNV-1a hash of the cluster name (`ClusterHash`).
  uint64_t cluster_hash() const { return cluster_hash_; }

 private:
  struct KeyTable;
  struct KeyTableDeleter {
    void operator()(KeyTable* table) const;
  };

  BeaconAuthenticator(std::unique_ptr<KeyTable, KeyTableDeleter> keys,
                      uint8_t primary, uint64_t cluster_hash);

  // Returns the key for `key_id`, or nullptr when none is installed.
  const unsigned char* Key(uint8_t key_id) const;

  friend absl::StatusOr<SignedBeacon> DecodeSignedBeacon(
      absl::string_view datagram, const BeaconAuthenticator& auth,
      BeaconReject* reject);

  // Immutable after construction (null only once moved from).
  std::unique_ptr<KeyTable, KeyTableDeleter> keys_;
  uint8_t primary_ = 0;
  uint64_t cluster_hash_ = 0;
};

// Decodes and authenticates one datagram against `auth`'s cluster and keys,
// cheapest check first: size, magic and version; zero node id or port;
// cluster hash; key id; then the tag, compared in constant time. On
// failure it stores the reason in `*reject` (when not null) and returns
// kInvalidArgument (kMalformed, kOtherCluster), kUnimplemented
// (kUnauthenticated, kWrongVersion) or kUnauthenticated (kUnknownKeyId,
// kBadMac). A success says only that a holder of the beacon secret made
// it: the caller still checks the source address against `ipv4`,
// `BeaconFresh`, the `BeaconReplayFilter` and the roster.
absl::StatusOr<SignedBeacon> DecodeSignedBeacon(absl::string_view datagram,
                                                const BeaconAuthenticator& auth,
                                                BeaconReject* reject);

// Returns true when `sent` is within `max_skew` of `now`, either way (the
// `beacons_stale` check). Never overflows: a sent time at either end of
// the 64-bit range is simply stale. False for a negative `max_skew`.
bool BeaconFresh(absl::Time sent, absl::Time now, absl::Duration max_skew);

}  // namespace fabric::discovery

#endif  // FABRIC_DISCOVERY_BEACON_AUTH_H_
