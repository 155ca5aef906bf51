// SPDX-License-Identifier: Apache-2.0
// libFuzzer target over every decoder of untrusted input: the envelope, the
// control message bodies, the beacons (v1 and signed v2), the beacon
// replay filter and the ZAP request parser with its verdict. Build with
// clang; fuzzer-no-link instruments the libraries too, so the fuzzer is
// guided by their branches, not only this file's:
//   CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DFABRIC_BUILD_BENCH=OFF
//     -DFABRIC_SANITIZE=address -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link
//   ninja -C build-fuzz decoders_fuzzer
//   build-fuzz/tests/decoders_fuzzer -max_total_time=60
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "discovery/beacon.h"
#include "discovery/beacon_auth.h"
#include "discovery/beacon_format.h"
#include "discovery/beacon_replay_filter.h"
#include "discovery/internal/big_endian.h"
#include "fabric/codec/control.h"
#include "fabric/codec/envelope.h"
#include "fabric/security/keys.h"
#include "fabric/security/zap.h"

namespace {

namespace discovery = ::fabric::discovery;

using ::fabric::discovery_internal::GetBigEndian;

// Aborts, so libFuzzer reports the input, when an invariant breaks.
void Require(bool condition) {
  if (!condition) std::abort();
}

// A fixed keyring: ids 1 (primary) and 2, cluster "fuzz".
const discovery::BeaconAuthenticator& Authenticator() {
  static const discovery::BeaconAuthenticator* const auth = [] {
    auto created = discovery::BeaconAuthenticator::Create(
        {{1, std::string(discovery::kBeaconSecretSize, '\x01')},
         {2, std::string(discovery::kBeaconSecretSize, '\x02')}},
        1, "fuzz");
    Require(created.ok());
    return new discovery::BeaconAuthenticator(*std::move(created));
  }();
  return *auth;
}

// Decodes `input` as a signed beacon. Only a correct tag passes, which the
// fuzzer cannot forge; what passes must hold what was checked.
void FuzzSignedDecoder(absl::string_view input) {
  const discovery::BeaconAuthenticator& auth = Authenticator();
  discovery::BeaconReject reject = discovery::BeaconReject::kMalformed;
  absl::StatusOr<discovery::SignedBeacon> got =
      discovery::DecodeSignedBeacon(input, auth, &reject);
  if (got.ok()) {
    Require(input.size() == discovery::kSignedBeaconSize);
    Require(auth.HasKeyId(got->key_id));
    Require(got->beacon.cluster_hash == auth.cluster_hash());
  } else {
    Require(!discovery::BeaconRejectCounterName(reject).empty());
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
    Require(in.beacon.id.IsZero() || in.beacon.mailbox_port == 0);
    return;
  }
  Require(wire->size() == discovery::kSignedBeaconSize);
  absl::StatusOr<discovery::SignedBeacon> out =
      discovery::DecodeSignedBeacon(*wire, auth, nullptr);
  Require(out.ok());
  Require(out->beacon.flags == in.beacon.flags);
  Require(out->beacon.id == in.beacon.id);
  Require(out->beacon.mailbox_port == in.beacon.mailbox_port);
  Require(out->beacon.publish_port == in.beacon.publish_port);
  Require(out->beacon.state_version == in.beacon.state_version);
  Require(out->key_id == auth.primary_key_id());
  Require(out->ipv4 == in.ipv4);
  Require(out->seq == in.seq);
  Require(absl::ToUnixMillis(out->sent_time) == sent_ms);
  Require(out->public_key == in.public_key);
  // Fresh against itself whatever the time; the v1 decoder refuses it.
  Require(discovery::BeaconFresh(out->sent_time, out->sent_time,
                                 absl::ZeroDuration()));
  Require(discovery::DecodeBeacon(*wire).status().code() ==
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
  Require(accepted == (key_id == auth.primary_key_id()));
  if (!accepted) {
    Require(reject == (auth.HasKeyId(key_id)
                           ? discovery::BeaconReject::kBadMac
                           : discovery::BeaconReject::kUnknownKeyId));
  }
  // Any single changed byte of the signed part is refused.
  std::string flipped = *wire;
  const size_t at = in.seq % discovery::kSignedBeaconSize;
  flipped[at] = static_cast<char>(flipped[at] ^ (1 | in.beacon.flags));
  Require(!discovery::DecodeSignedBeacon(flipped, auth, nullptr).ok());
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
    Require(accepted == (seq > last));
    Require(filter.LastAccepted(id) == (accepted ? seq : last));
    Require(filter.size() <= filter.capacity());
  }
}

// The one key the ZAP fuzzing roster admits.
const std::string& RosterKey() {
  static const std::string* const key = new std::string(32, '\x5a');
  return *key;
}

const fabric::security::Roster& FuzzRoster() {
  static const fabric::security::Roster* const roster =
      new fabric::security::Roster({{"member", RosterKey(), "", "member.pub"}});
  return *roster;
}

// Splits `input` into ZAP frames: after a flags byte, each frame is a
// length byte and that many bytes (a short last frame takes what is
// left). Flag bits put the values a real request has into frames 0
// (version), 2 (domain), 5 (mechanism) and 6 (the roster's key), so the
// accepting paths are reached as often as the refusals.
std::vector<std::string> ZapFrames(absl::string_view input) {
  std::vector<std::string> frames;
  if (input.empty()) return frames;
  const uint8_t flags = static_cast<uint8_t>(input[0]);
  input.remove_prefix(1);
  while (!input.empty() && frames.size() < 12) {
    const size_t n =
        std::min<size_t>(static_cast<uint8_t>(input[0]), input.size() - 1);
    frames.emplace_back(input.substr(1, n));
    input.remove_prefix(1 + n);
  }
  const std::pair<size_t, std::string> fixed[] = {
      {0, "1.0"}, {2, "fabric"}, {5, "CURVE"}, {6, RosterKey()}};
  for (size_t bit = 0; bit < 4; ++bit) {
    if ((flags & (1u << bit)) != 0 && fixed[bit].first < frames.size()) {
      frames[fixed[bit].first] = fixed[bit].second;
    }
  }
  return frames;
}

// Parses the frames as the ZAP handler does and decides them against a
// one-key roster: a parse must keep every frame as it came and refuse what
// RFC 27 and fabric's CURVE rules refuse; only the roster's key over CURVE
// in fabric's domain is ever allowed.
void FuzzZapRequest(absl::string_view input) {
  namespace security = ::fabric::security;
  const std::vector<std::string> frames = ZapFrames(input);
  absl::StatusOr<security::ZapRequest> request =
      security::ParseZapRequest(frames);
  if (!request.ok()) {
    Require(request.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  Require(frames.size() >= 6 && request->version == "1.0");
  Require(request->request_id == frames[1] && request->domain == frames[2] &&
          request->address == frames[3] && request->identity == frames[4] &&
          request->mechanism == frames[5]);
  if (request->mechanism == "CURVE") {
    Require(frames.size() == 7 && request->client_key == frames[6] &&
            request->client_key.size() == security::kCurveKeyBytes);
  } else {
    Require(request->mechanism == "NULL" || request->mechanism == "PLAIN" ||
            request->mechanism == "GSSAPI");
    Require(request->mechanism != "NULL" || frames.size() == 6);
    Require(request->client_key.empty());
  }
  const security::ZapVerdict verdict = security::Decide(*request, FuzzRoster());
  const bool should_allow = request->domain == security::kZapDomain &&
                            request->mechanism == "CURVE" &&
                            request->client_key == RosterKey();
  Require((verdict == security::ZapVerdict::kAllowed) == should_allow);
  if (request->domain != security::kZapDomain) {
    Require(verdict == security::ZapVerdict::kWrongDomain);
  }
  // Against an empty roster nothing is ever allowed.
  Require(security::Decide(*request, security::Roster()) !=
          security::ZapVerdict::kAllowed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<fabric::EnvelopeView> env =
      fabric::DecodeEnvelope(input, 1 << 20);
  if (env.ok()) {
    // Bodies are decoded the way the engine would.
    fabric::DecodeHello(env->body).IgnoreError();
    fabric::DecodePing(env->body).IgnoreError();
    fabric::DecodeGossip(env->body).IgnoreError();
  }
  fabric::DecodeHello(input).IgnoreError();
  fabric::DecodeGossip(input).IgnoreError();
  fabric::discovery::DecodeBeacon(input).IgnoreError();
  FuzzSignedDecoder(input);
  FuzzSignRoundTrip(input);
  FuzzReplayFilter(input);
  FuzzZapRequest(input);
  return 0;
}
