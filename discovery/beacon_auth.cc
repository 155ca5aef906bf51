// SPDX-License-Identifier: Apache-2.0
// Wire layout, key derivation and check order: docs/protocol.md, "Beacon v2
// (secure mode)". libsodium does the cryptography (crypto_auth is
// HMAC-SHA-512-256, crypto_generichash is BLAKE2b).
#include "discovery/beacon_auth.h"

#include <sodium.h>

#include <array>
#include <cstring>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "discovery/beacon_format.h"
#include "discovery/internal/big_endian.h"

namespace fabric::discovery {

using discovery_internal::GetBigEndian;
using discovery_internal::PutBigEndian;

static_assert(kSignedTagSize == crypto_auth_BYTES);
static_assert(kBeaconKeySize == crypto_auth_KEYBYTES);
static_assert(kBeaconSecretSize == crypto_generichash_KEYBYTES);
static_assert(kBeaconKeySize >= crypto_generichash_BYTES_MIN &&
              kBeaconKeySize <= crypto_generichash_BYTES_MAX);
static_assert(sizeof(kBeaconKeyContext) - 1 == 16);
static_assert(kSignedTagOffset + kSignedTagSize == kSignedBeaconSize);
static_assert(kSignedPublicKeyOffset + kSignedPublicKeySize ==
              kSignedTagOffset);

// One slot per possible key id: a lookup on the receive path is an index,
// whatever the number of installed ids. 8 KiB, in sodium_malloc memory.
struct BeaconAuthenticator::KeyTable {
  std::array<std::array<unsigned char, kBeaconKeySize>, 256> keys;
  std::array<bool, 256> installed;
};

void BeaconAuthenticator::KeyTableDeleter::operator()(KeyTable* table) const {
  // sodium_free wipes the memory before it unmaps it.
  table->~KeyTable();
  sodium_free(table);
}

namespace {

// Fills `key` with K = BLAKE2b-256(key = secret, context || cluster).
// crypto_generichash fails only for sizes out of range, which the
// static_asserts above rule out, so its result is not checked.
void DeriveKey(absl::string_view secret, absl::string_view cluster,
               unsigned char* key) {
  const std::string input = absl::StrCat(kBeaconKeyContext, cluster);
  crypto_generichash(
      key, kBeaconKeySize, reinterpret_cast<const unsigned char*>(input.data()),
      input.size(), reinterpret_cast<const unsigned char*>(secret.data()),
      secret.size());
}

absl::Status Reject(BeaconReject reason, BeaconReject* out,
                    absl::Status status) {
  if (out != nullptr) *out = reason;
  return status;
}

}  // namespace

absl::string_view BeaconRejectCounterName(BeaconReject reject) {
  switch (reject) {
    case BeaconReject::kMalformed:
      return "beacons_malformed";
    case BeaconReject::kUnauthenticated:
      return "beacons_unauthenticated";
    case BeaconReject::kWrongVersion:
      return "beacons_wrong_version";
    case BeaconReject::kOtherCluster:
      return "beacons_other_cluster";
    case BeaconReject::kUnknownKeyId:
      return "beacons_unknown_key_id";
    case BeaconReject::kBadMac:
      return "beacons_bad_mac";
  }
  return "beacons_malformed";  // not reached: the switch covers the enum
}

absl::StatusOr<BeaconAuthenticator> BeaconAuthenticator::Create(
    const std::map<uint8_t, std::string>& secrets, uint8_t primary,
    absl::string_view cluster) {
  if (secrets.empty()) {
    return absl::InvalidArgumentError("no beacon secret given");
  }
  for (const auto& [id, secret] : secrets) {
    if (id == 0) {
      return absl::InvalidArgumentError("beacon key id 0 is reserved");
    }
    if (secret.size() != kBeaconSecretSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("beacon secret ", id, " is ", secret.size(),
                       " bytes, want ", kBeaconSecretSize));
    }
  }
  if (secrets.count(primary) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "primary beacon key id ", primary, " is not among the secrets"));
  }
  if (sodium_init() < 0) {
    return absl::InternalError("libsodium failed to initialise");
  }
  // sodium_malloc returns memory that ends at a guard page, aligned only to
  // what the size allows; byte arrays need none.
  static_assert(alignof(KeyTable) == 1);
  void* memory = sodium_malloc(sizeof(KeyTable));
  if (memory == nullptr) {
    return absl::ResourceExhaustedError(
        "no locked memory for the beacon keys (sodium_malloc)");
  }
  // Value-initialised: every slot zero and not installed.
  std::unique_ptr<KeyTable, KeyTableDeleter> keys(new (memory) KeyTable());
  for (const auto& [id, secret] : secrets) {
    DeriveKey(secret, cluster, keys->keys[id].data());
    keys->installed[id] = true;
  }
  return BeaconAuthenticator(std::move(keys), primary, ClusterHash(cluster));
}

BeaconAuthenticator::BeaconAuthenticator(
    std::unique_ptr<KeyTable, KeyTableDeleter> keys, uint8_t primary,
    uint64_t cluster_hash)
    : keys_(std::move(keys)), primary_(primary), cluster_hash_(cluster_hash) {}

BeaconAuthenticator::BeaconAuthenticator(BeaconAuthenticator&&) noexcept =
    default;
BeaconAuthenticator& BeaconAuthenticator::operator=(
    BeaconAuthenticator&&) noexcept = default;
BeaconAuthenticator::~BeaconAuthenticator() = default;

const unsigned char* BeaconAuthenticator::Key(uint8_t key_id) const {
  return keys_->installed[key_id] ? keys_->keys[key_id].data() : nullptr;
}

bool BeaconAuthenticator::HasKeyId(uint8_t key_id) const {
  return Key(key_id) != nullptr;
}

std::vector<uint8_t> BeaconAuthenticator::key_ids() const {
  std::vector<uint8_t> ids;
  for (size_t id = 1; id < keys_->installed.size(); ++id) {
    if (keys_->installed[id]) ids.push_back(static_cast<uint8_t>(id));
  }
  return ids;
}

absl::StatusOr<std::string> BeaconAuthenticator::Sign(
    const SignedBeacon& in) const {
  if (in.public_key.size() != kSignedPublicKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("beacon public key is ", in.public_key.size(),
                     " bytes, want ", kSignedPublicKeySize));
  }
  if (in.beacon.id.IsZero() || in.beacon.mailbox_port == 0) {
    return absl::InvalidArgumentError("beacon with zero node id or port");
  }
  std::string out(kSignedBeaconSize, '\0');
  std::memcpy(out.data() + kMagicOffset, kBeaconMagic, sizeof(kBeaconMagic));
  out[kVersionOffset] = static_cast<char>(kBeaconVersionSigned);
  out[kFlagsOffset] = static_cast<char>(in.beacon.flags);
  out[kSignedKeyIdOffset] = static_cast<char>(primary_);
  PutBigEndian<uint64_t>(out, kSignedClusterHashOffset, cluster_hash_);
  std::memcpy(out.data() + kSignedNodeIdOffset, in.beacon.id.bytes().data(),
              NodeId::kSize);
  PutBigEndian<uint32_t>(out, kSignedIpv4Offset, in.ipv4);
  PutBigEndian<uint16_t>(out, kSignedMailboxPortOffset, in.beacon.mailbox_port);
  PutBigEndian<uint16_t>(out, kSignedPublishPortOffset, in.beacon.publish_port);
  PutBigEndian<uint32_t>(out, kSignedStateVersionOffset,
                         in.beacon.state_version);
  PutBigEndian<uint64_t>(out, kSignedSeqOffset, in.seq);
  PutBigEndian<uint64_t>(
      out, kSignedSentTimeOffset,
      static_cast<uint64_t>(absl::ToUnixMillis(in.sent_time)));
  std::memcpy(out.data() + kSignedPublicKeyOffset, in.public_key.data(),
              kSignedPublicKeySize);
  // crypto_auth cannot fail (it always returns 0).
  unsigned char* bytes = reinterpret_cast<unsigned char*>(out.data());
  crypto_auth(bytes + kSignedTagOffset, bytes, kSignedTagOffset, Key(primary_));
  return out;
}

absl::StatusOr<SignedBeacon> DecodeSignedBeacon(absl::string_view datagram,
                                                const BeaconAuthenticator& auth,
                                                BeaconReject* reject) {
  // Magic, then version before size, as for version 1 (protocol.md 2.6): a
  // fabric beacon of another version is told apart whatever its length.
  if (datagram.size() < kVersionOffset + 1 ||
      std::memcmp(datagram.data(), kBeaconMagic, sizeof(kBeaconMagic)) != 0) {
    return Reject(
        BeaconReject::kMalformed, reject,
        absl::InvalidArgumentError(absl::StrCat(
            "not a fabric beacon (", datagram.size(), " bytes, bad magic)")));
  }
  const uint8_t version = static_cast<uint8_t>(datagram[kVersionOffset]);
  if (version == kBeaconVersion) {
    return Reject(
        BeaconReject::kUnauthenticated, reject,
        absl::UnimplementedError("unsigned (version 1) beacon in secure mode"));
  }
  if (version != kBeaconVersionSigned) {
    return Reject(
        BeaconReject::kWrongVersion, reject,
        absl::UnimplementedError(absl::StrCat("beacon protocol version ",
                                              version, " is not supported")));
  }
  if (datagram.size() != kSignedBeaconSize) {
    return Reject(BeaconReject::kMalformed, reject,
                  absl::InvalidArgumentError(
                      absl::StrCat("signed beacon of ", datagram.size(),
                                   " bytes, want ", kSignedBeaconSize)));
  }
  SignedBeacon out;
  Beacon& b = out.beacon;
  b.flags = static_cast<uint8_t>(datagram[kFlagsOffset]);
  b.cluster_hash = GetBigEndian<uint64_t>(datagram, kSignedClusterHashOffset);
  // The size check above makes FromBytes infallible here.
  b.id =
      *NodeId::FromBytes(datagram.substr(kSignedNodeIdOffset, NodeId::kSize));
  b.mailbox_port = GetBigEndian<uint16_t>(datagram, kSignedMailboxPortOffset);
  b.publish_port = GetBigEndian<uint16_t>(datagram, kSignedPublishPortOffset);
  b.state_version = GetBigEndian<uint32_t>(datagram, kSignedStateVersionOffset);
  if (b.id.IsZero() || b.mailbox_port == 0) {
    return Reject(
        BeaconReject::kMalformed, reject,
        absl::InvalidArgumentError("signed beacon with zero node id or port"));
  }
  if (b.cluster_hash != auth.cluster_hash()) {
    return Reject(BeaconReject::kOtherCluster, reject,
                  absl::InvalidArgumentError(absl::StrCat(
                      "beacon of another cluster (hash ",
                      absl::Hex(b.cluster_hash, absl::kZeroPad16), ")")));
  }
  out.key_id = static_cast<uint8_t>(datagram[kSignedKeyIdOffset]);
  const unsigned char* key = auth.Key(out.key_id);
  if (key == nullptr) {
    return Reject(BeaconReject::kUnknownKeyId, reject,
                  absl::UnauthenticatedError(absl::StrCat(
                      "beacon signed with unknown key id ", out.key_id)));
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(datagram.data());
  if (crypto_auth_verify(bytes + kSignedTagOffset, bytes, kSignedTagOffset,
                         key) != 0) {
    return Reject(BeaconReject::kBadMac, reject,
                  absl::UnauthenticatedError(absl::StrCat(
                      "beacon tag does not verify (key id ", out.key_id,
                      ", node ", b.id.ShortHex(), ")")));
  }
  out.ipv4 = GetBigEndian<uint32_t>(datagram, kSignedIpv4Offset);
  out.seq = GetBigEndian<uint64_t>(datagram, kSignedSeqOffset);
  out.sent_time = absl::FromUnixMillis(static_cast<int64_t>(
      GetBigEndian<uint64_t>(datagram, kSignedSentTimeOffset)));
  out.public_key = std::string(
      datagram.substr(kSignedPublicKeyOffset, kSignedPublicKeySize));
  return out;
}

bool BeaconFresh(absl::Time sent, absl::Time now, absl::Duration max_skew) {
  // Unix-millisecond times span about 2^53 seconds; absl::Time spans 2^63,
  // so the difference cannot overflow.
  return absl::AbsDuration(now - sent) <= max_skew;
}

}  // namespace fabric::discovery
