// SPDX-License-Identifier: Apache-2.0
#include "discovery/beacon.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "discovery/beacon_format.h"
#include "discovery/internal/big_endian.h"

namespace fabric::discovery {

using discovery_internal::GetBigEndian;
using discovery_internal::PutBigEndian;

bool Beacon::leaving() const { return (flags & kFlagLeaving) != 0; }

uint64_t ClusterHash(absl::string_view cluster) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (char c : cluster) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

std::string EncodeBeacon(const Beacon& beacon) {
  std::string out(kBeaconSize, '\0');
  std::memcpy(out.data() + kMagicOffset, kBeaconMagic, sizeof(kBeaconMagic));
  out[kVersionOffset] = static_cast<char>(kBeaconVersion);
  out[kFlagsOffset] = static_cast<char>(beacon.flags);
  PutBigEndian<uint64_t>(out, kClusterHashOffset, beacon.cluster_hash);
  std::memcpy(out.data() + kNodeIdOffset, beacon.id.bytes().data(),
              NodeId::kSize);
  PutBigEndian<uint16_t>(out, kMailboxPortOffset, beacon.mailbox_port);
  PutBigEndian<uint16_t>(out, kPublishPortOffset, beacon.publish_port);
  PutBigEndian<uint32_t>(out, kStateVersionOffset, beacon.state_version);
  return out;
}

absl::StatusOr<Beacon> DecodeBeacon(absl::string_view datagram) {
  if (datagram.size() < kVersionOffset + 1 ||
      std::memcmp(datagram.data(), kBeaconMagic, sizeof(kBeaconMagic)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a fabric beacon (", datagram.size(), " bytes, bad magic)"));
  }
  const uint8_t version = static_cast<uint8_t>(datagram[kVersionOffset]);
  if (version != kBeaconVersion) {
    return absl::UnimplementedError(
        absl::StrCat("beacon protocol version ", version, " is not supported"));
  }
  if (datagram.size() != kBeaconSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "beacon of ", datagram.size(), " bytes, want ", kBeaconSize));
  }
  Beacon beacon;
  beacon.flags = static_cast<uint8_t>(datagram[kFlagsOffset]);
  beacon.cluster_hash = GetBigEndian<uint64_t>(datagram, kClusterHashOffset);
  // The size check above makes FromBytes infallible here.
  beacon.id = *NodeId::FromBytes(datagram.substr(kNodeIdOffset, NodeId::kSize));
  beacon.mailbox_port = GetBigEndian<uint16_t>(datagram, kMailboxPortOffset);
  beacon.publish_port = GetBigEndian<uint16_t>(datagram, kPublishPortOffset);
  beacon.state_version = GetBigEndian<uint32_t>(datagram, kStateVersionOffset);
  if (beacon.id.IsZero() || beacon.mailbox_port == 0) {
    return absl::InvalidArgumentError("beacon with zero node id or port");
  }
  return beacon;
}

}  // namespace fabric::discovery
