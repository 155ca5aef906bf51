// SPDX-License-Identifier: Apache-2.0
// libFuzzer target over the discovery beacons: the v1 decoder (with a
// byte-exact round trip through the encoder), the signed v2 decoder under a
// fixed keyring, signing fields read from the input and decoding them back,
// and the replay filter. Build and run: tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "discovery/beacon.h"
#include "discovery/beacon_auth.h"
#include "discovery/beacon_format.h"
#include "discovery/beacon_replay_filter.h"
#include "discovery/internal/big_endian.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace discovery = ::fabric::discovery;

using ::fabric::discovery_internal::GetBigEndian;

// A fixed keyring: ids 1 (primary) and 2, cluster "fuzz".
const discovery::BeaconAuthenticator& Authenticator() {
  static const discovery::BeaconAuthenticator* const auth = [] {
    auto created = discovery::BeaconAuthenticator::Create(
        {{1, std::string(discovery::kBeaconSecretSize, '\x01')},
         {2, std::string(discovery::kBeaconSecretSize, '\x02')}},
        1, "fuzz");
    FABRIC_FUZZ_REQUIRE(created.ok());
    return new discovery::BeaconAuthenticator(*std::move(created));
  }();
  return *auth;
}

// Decodes `input` as a v1 beacon: what passes has a node id and a port,
// and encodes back to exactly the input (every byte is a field).
void FuzzV1Decoder(absl::string_view input) {
  absl::StatusOr<discovery::Beacon> got = discovery::DecodeBeacon(input);
  if (!got.ok()) {
    const absl::StatusCode code = got.status().code();
    FABRIC_FUZZ_REQUIRE(code == absl::StatusCode::kInvalidArgument ||
                        code == absl::StatusCode::kUnimplemented);
    return;
  }
  FABRIC_FUZZ_REQUIRE(!got->id.IsZero() && got->mailbox_port != 0);
  FABRIC_FUZZ_REQUIRE(discovery::EncodeBeacon(*got) == input);
}

// Decodes `input` as a signed beacon. Only a correct tag passes, which the
// fuzzer cannot forge; what passes must hold what was checked.
void FuzzSignedDecoder(absl::string_view input) {
  const discovery::BeaconAuthenticator& auth = Authenticator();
  discovery::BeaconReject reject = discovery::BeaconReject::kMalformed;
  absl::StatusOr<discovery::SignedBeacon> got =
      discovery::DecodeSignedBeacon(input, auth, &reject);
  if (got.ok()) {
    FABRIC_FUZZ_REQUIRE(input.size() == discovery::kSignedBeaconSize);
    FABRIC_FUZZ_REQUIRE(auth.HasKeyId(got->key_id));
    FABRIC_FUZZ_REQUIRE(got->beacon.cluster_hash == auth.cluster_hash());
  } else {
    FABRIC_FUZZ_REQUIRE(!discovery::BeaconRejectCounterName(reject).empty());
  }
}

// Reads beacon fields from `input` at the v2 offsets (whatever its header
// says), signs them and checks that the decoder gives back every field:
// the accepting half of the decoder is covered as well as the refusals.
void FuzzSignRoundTrip(absl::string_view input) {
  if (input.size() < discovery::kSignedTagOffset) return;
  discovery::SignedBeacon in;
  in.beacon.flags = static_cast<uint8_t>(input[discovery::kFlagsOffset]);
  in.beacon.id = *fabric::NodeId::FromBytes(
      input.substr(discovery::kSignedNodeIdOffset, fabric::NodeId::kSize));
  in.beacon.mailbox_port =
      GetBigEndian<uint16_t>(input, discovery::kSignedMailboxPortOffset);
  in.beacon.publish_port =
      GetBigEndian<uint16_t>(input, discovery::kSignedPublishPortOffset);
  in.beacon.state_version =
      GetBigEndian<uint32_t>(input, discovery::kSignedStateVersionOffset);
  in.ipv4 = GetBigEndian<uint32_t>(input, discovery::kSignedIpv4Offset);
  in.seq = GetBigEndian<uint64_t>(input, discovery::kSignedSeqOffset);
  const int64_t sent_ms = static_cast<int64_t>(
      GetBigEndian<uint64_t>(input, discovery::kSignedSentTimeOffset));
  in.sent_time = absl::FromUnixMillis(sent_ms);
  in.public_key = std::string(input.substr(discovery::kSignedPublicKeyOffset,
                                           discovery::kSignedPublicKeySize));

  const discovery::BeaconAuthenticator& auth = Authenticator();
  absl::StatusOr<std::string> wire = auth.Sign(in);
  if (!wire.ok()) {
    FABRIC_FUZZ_REQUIRE(in.beacon.id.IsZero() || in.beacon.mailbox_port == 0);
    return;
  }
  FABRIC_FUZZ_REQUIRE(wire->size() == discovery::kSignedBeaconSize);
  absl::StatusOr<discovery::SignedBeacon> out =
      discovery::DecodeSignedBeacon(*wire, auth, nullptr);
  FABRIC_FUZZ_REQUIRE(out.ok());
  FABRIC_FUZZ_REQUIRE(out->beacon.flags == in.beacon.flags);
  FABRIC_FUZZ_REQUIRE(out->beacon.id == in.beacon.id);
  FABRIC_FUZZ_REQUIRE(out->beacon.mailbox_port == in.beacon.mailbox_port);
  FABRIC_FUZZ_REQUIRE(out->beacon.publish_port == in.beacon.publish_port);
  FABRIC_FUZZ_REQUIRE(out->beacon.state_version == in.beacon.state_version);
  FABRIC_FUZZ_REQUIRE(out->key_id == auth.primary_key_id());
  FABRIC_FUZZ_REQUIRE(out->ipv4 == in.ipv4);
  FABRIC_FUZZ_REQUIRE(out->seq == in.seq);
  FABRIC_FUZZ_REQUIRE(absl::ToUnixMillis(out->sent_time) == sent_ms);
  FABRIC_FUZZ_REQUIRE(out->public_key == in.public_key);
  // Fresh against itself whatever the time; the v1 decoder refuses it.
  FABRIC_FUZZ_REQUIRE(discovery::BeaconFresh(out->sent_time, out->sent_time,
                                             absl::ZeroDuration()));
  FABRIC_FUZZ_REQUIRE(discovery::DecodeBeacon(*wire).status().code() ==
                      absl::StatusCode::kUnimplemented);
  // Relabelled with the input's key id: accepted only under its own id,
  // id 2's key refuses the tag, any other id is unknown.
  std::string relabelled = *wire;
  const uint8_t key_id =
      static_cast<uint8_t>(input[discovery::kSignedKeyIdOffset]);
  relabelled[discovery::kSignedKeyIdOffset] = static_cast<char>(key_id);
  discovery::BeaconReject reject = discovery::BeaconReject::kMalformed;
  const bool accepted =
      discovery::DecodeSignedBeacon(relabelled, auth, &reject).ok();
  FABRIC_FUZZ_REQUIRE(accepted == (key_id == auth.primary_key_id()));
  if (!accepted) {
    FABRIC_FUZZ_REQUIRE(reject ==
                        (auth.HasKeyId(key_id)
                             ? discovery::BeaconReject::kBadMac
                             : discovery::BeaconReject::kUnknownKeyId));
  }
  // Any single changed byte of the signed part is refused.
  std::string flipped = *wire;
  const size_t at = in.seq % discovery::kSignedBeaconSize;
  flipped[at] = static_cast<char>(flipped[at] ^ (1 | in.beacon.flags));
  FABRIC_FUZZ_REQUIRE(
      !discovery::DecodeSignedBeacon(flipped, auth, nullptr).ok());
}

// Replays (id byte, seq byte) pairs through a small filter and checks it
// against the rule: accepted only above the last accepted seq of that id.
void FuzzReplayFilter(absl::string_view input) {
  discovery::BeaconReplayFilter filter(4);
  for (size_t i = 0; i + 1 < input.size() && i < 512; i += 2) {
    std::string raw(fabric::NodeId::kSize, '\0');
    raw[0] = static_cast<char>(static_cast<uint8_t>(input[i]) % 8 + 1);
    const fabric::NodeId id = *fabric::NodeId::FromBytes(raw);
    const uint64_t seq = static_cast<uint8_t>(input[i + 1]);
    const uint64_t last = filter.LastAccepted(id);
    const bool accepted = filter.Accept(id, seq);
    FABRIC_FUZZ_REQUIRE(accepted == (seq > last));
    FABRIC_FUZZ_REQUIRE(filter.LastAccepted(id) == (accepted ? seq : last));
    FABRIC_FUZZ_REQUIRE(filter.size() <= filter.capacity());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  FuzzV1Decoder(input);
  FuzzSignedDecoder(input);
  FuzzSignRoundTrip(input);
  FuzzReplayFilter(input);
  return 0;
}
