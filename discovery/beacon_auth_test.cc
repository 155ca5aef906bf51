// SPDX-License-Identifier: Apache-2.0
#include "discovery/beacon_auth.h"

#include <sodium.h>

#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "discovery/beacon.h"
#include "discovery/beacon_format.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace fabric::discovery {
namespace {

using ::fabric::testing::StatusIs;
using Code = absl::StatusCode;

static_assert(!std::is_copy_constructible_v<BeaconAuthenticator>);
static_assert(!std::is_copy_assignable_v<BeaconAuthenticator>);
static_assert(std::is_nothrow_move_constructible_v<BeaconAuthenticator>);
static_assert(std::is_nothrow_move_assignable_v<BeaconAuthenticator>);

std::string Secret(char fill) { return std::string(kBeaconSecretSize, fill); }

BeaconAuthenticator MakeAuth(const std::map<uint8_t, std::string>& secrets,
                             uint8_t primary, absl::string_view cluster) {
  absl::StatusOr<BeaconAuthenticator> auth =
      BeaconAuthenticator::Create(secrets, primary, cluster);
  EXPECT_TRUE(auth.ok()) << auth.status();
  return *std::move(auth);
}

SignedBeacon Sample() {
  SignedBeacon s;
  s.beacon.flags = 0;
  s.beacon.id = NodeId::Random();
  s.beacon.mailbox_port = 40123;
  s.beacon.state_version = 0xdeadbeef;
  s.ipv4 = 0x0a4d0005;  // 10.77.0.5
  s.seq = 0x0102030405060708;
  s.sent_time = absl::FromUnixMillis(1767225600123);
  s.public_key = std::string(kSignedPublicKeySize, '\x5a');
  return s;
}

std::string SignOrDie(const BeaconAuthenticator& auth, const SignedBeacon& s) {
  absl::StatusOr<std::string> wire = auth.Sign(s);
  EXPECT_TRUE(wire.ok()) << wire.status();
  return wire.ok() ? *wire : std::string();
}

// K = BLAKE2b-256(key = secret, "fabric beacon v2" || cluster), computed
// here straight from libsodium to check the codec against the document.
std::string DeriveKeyForTest(absl::string_view secret,
                             absl::string_view cluster) {
  const std::string input = absl::StrCat("fabric beacon v2", cluster);
  std::string key(crypto_generichash_BYTES, '\0');
  crypto_generichash(
      reinterpret_cast<unsigned char*>(key.data()), key.size(),
      reinterpret_cast<const unsigned char*>(input.data()), input.size(),
      reinterpret_cast<const unsigned char*>(secret.data()), secret.size());
  return key;
}

// Recomputes the tag of `wire` (bytes 0..91) with `key`, so a test can
// change a field and still present a correctly tagged datagram.
std::string Reseal(std::string wire, absl::string_view key) {
  auto* bytes = reinterpret_cast<unsigned char*>(wire.data());
  crypto_auth(bytes + kSignedTagOffset, bytes, kSignedTagOffset,
              reinterpret_cast<const unsigned char*>(key.data()));
  return wire;
}

// Decodes and returns the reason; the test fails if it is accepted.
BeaconReject RejectOf(absl::string_view wire, const BeaconAuthenticator& auth) {
  BeaconReject reject = BeaconReject::kMalformed;
  absl::StatusOr<SignedBeacon> got = DecodeSignedBeacon(wire, auth, &reject);
  EXPECT_FALSE(got.ok());
  return reject;
}

TEST(BeaconAuth, RoundTripKeepsEveryField) {
  const BeaconAuthenticator auth = MakeAuth({{7, Secret('s')}}, 7, "prod");
  SignedBeacon s = Sample();
  s.beacon.flags = kFlagLeaving;
  s.beacon.publish_port = 40124;
  const std::string wire = SignOrDie(auth, s);
  ASSERT_EQ(wire.size(), kSignedBeaconSize);
  EXPECT_EQ(wire.substr(0, 4), "FBRC");
  EXPECT_EQ(wire[kVersionOffset], 2);
  EXPECT_EQ(wire[kSignedKeyIdOffset], 7);
  EXPECT_EQ(wire[kSignedReservedOffset], 0);

  BeaconReject reject = BeaconReject::kBadMac;
  FABRIC_ASSERT_OK_AND_ASSIGN(SignedBeacon back,
                              DecodeSignedBeacon(wire, auth, &reject));
  EXPECT_EQ(reject, BeaconReject::kBadMac);  // untouched on success
  EXPECT_TRUE(back.beacon.leaving());
  EXPECT_EQ(back.beacon.cluster_hash, ClusterHash("prod"));
  EXPECT_EQ(back.beacon.id, s.beacon.id);
  EXPECT_EQ(back.beacon.mailbox_port, 40123);
  EXPECT_EQ(back.beacon.publish_port, 40124);
  EXPECT_EQ(back.beacon.state_version, 0xdeadbeefu);
  EXPECT_EQ(back.key_id, 7);
  EXPECT_EQ(back.ipv4, 0x0a4d0005u);
  EXPECT_EQ(back.seq, 0x0102030405060708u);
  EXPECT_EQ(back.sent_time, absl::FromUnixMillis(1767225600123));
  EXPECT_EQ(back.public_key, s.public_key);
}

TEST(BeaconAuth, RoundTripOfExtremeValues) {
  const BeaconAuthenticator auth = MakeAuth({{255, Secret('x')}}, 255, "c");
  for (int64_t ms :
       {int64_t{-1}, int64_t{0}, std::numeric_limits<int64_t>::min(),
        std::numeric_limits<int64_t>::max()}) {
    SignedBeacon s = Sample();
    s.beacon.flags = 0xff;
    s.beacon.mailbox_port = 0xffff;
    s.beacon.state_version = 0xffffffff;
    s.ipv4 = 0xffffffff;
    s.seq = ~uint64_t{0};
    s.sent_time = absl::FromUnixMillis(ms);
    FABRIC_ASSERT_OK_AND_ASSIGN(
        SignedBeacon back,
        DecodeSignedBeacon(SignOrDie(auth, s), auth, nullptr));
    EXPECT_EQ(absl::ToUnixMillis(back.sent_time), ms);
    EXPECT_EQ(back.beacon.flags, 0xff);
    EXPECT_EQ(back.beacon.mailbox_port, 0xffff);
    EXPECT_EQ(back.ipv4, 0xffffffffu);
    EXPECT_EQ(back.seq, ~uint64_t{0});
    EXPECT_EQ(back.key_id, 255);
  }
}

TEST(BeaconAuth, SignWritesItsOwnKeyIdAndClusterAndWholeMilliseconds) {
  const BeaconAuthenticator auth =
      MakeAuth({{1, Secret('a')}, {2, Secret('b')}}, 2, "prod");
  SignedBeacon s = Sample();
  s.key_id = 1;
  s.beacon.cluster_hash = ClusterHash("elsewhere");
  s.sent_time = absl::FromUnixMillis(5000) + absl::Microseconds(999);
  FABRIC_ASSERT_OK_AND_ASSIGN(
      SignedBeacon back, DecodeSignedBeacon(SignOrDie(auth, s), auth, nullptr));
  EXPECT_EQ(back.key_id, 2);
  EXPECT_EQ(back.beacon.cluster_hash, ClusterHash("prod"));
  EXPECT_EQ(back.sent_time, absl::FromUnixMillis(5000));
}

TEST(BeaconAuth, SignRefusesWhatReceiversWouldDrop) {
  const BeaconAuthenticator auth = MakeAuth({{1, Secret('a')}}, 1, "prod");
  for (size_t size : {size_t{0}, size_t{31}, size_t{33}, size_t{40}}) {
    SignedBeacon s = Sample();
    s.public_key = std::string(size, 'k');
    EXPECT_THAT(auth.Sign(s), StatusIs(Code::kInvalidArgument)) << size;
  }
  SignedBeacon zero_id = Sample();
  zero_id.beacon.id = NodeId();
  EXPECT_THAT(auth.Sign(zero_id), StatusIs(Code::kInvalidArgument));
  SignedBeacon zero_port = Sample();
  zero_port.beacon.mailbox_port = 0;
  EXPECT_THAT(auth.Sign(zero_port), StatusIs(Code::kInvalidArgument));
}

TEST(BeaconAuth, CreateValidatesTheKeyring) {
  EXPECT_THAT(BeaconAuthenticator::Create({}, 1, "prod"),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(BeaconAuthenticator::Create({{0, Secret('a')}}, 0, "prod"),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(
      BeaconAuthenticator::Create({{0, Secret('a')}, {1, Secret('b')}}, 1, "p"),
      StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(BeaconAuthenticator::Create({{1, Secret('a')}}, 2, "prod"),
              StatusIs(Code::kInvalidArgument));
  for (size_t size : {size_t{0}, size_t{16}, size_t{31}, size_t{33}}) {
    absl::StatusOr<BeaconAuthenticator> auth = BeaconAuthenticator::Create(
        {{1, Secret('a')}, {2, std::string(size, 'Q')}}, 1, "prod");
    EXPECT_THAT(auth, StatusIs(Code::kInvalidArgument)) << size;
    // The message names the id, never the secret's bytes.
    EXPECT_NE(auth.status().message().find("secret 2"), absl::string_view::npos)
        << auth.status();
    if (size > 0) {
      EXPECT_EQ(auth.status().message().find("QQ"), absl::string_view::npos);
    }
  }
}

TEST(BeaconAuth, AccessorsDescribeTheKeyring) {
  const BeaconAuthenticator auth = MakeAuth(
      {{9, Secret('a')}, {3, Secret('b')}, {200, Secret('c')}}, 3, "prod");
  EXPECT_EQ(auth.primary_key_id(), 3);
  EXPECT_EQ(auth.key_ids(), (std::vector<uint8_t>{3, 9, 200}));
  EXPECT_TRUE(auth.HasKeyId(9));
  EXPECT_FALSE(auth.HasKeyId(0));
  EXPECT_FALSE(auth.HasKeyId(4));
  EXPECT_EQ(auth.cluster_hash(), ClusterHash("prod"));
}

TEST(BeaconAuth, MovedAuthenticatorKeepsItsKeys) {
  BeaconAuthenticator a = MakeAuth({{1, Secret('a')}}, 1, "prod");
  const std::string wire = SignOrDie(a, Sample());
  BeaconAuthenticator b = std::move(a);
  FABRIC_EXPECT_OK(DecodeSignedBeacon(wire, b, nullptr));
  BeaconAuthenticator c = MakeAuth({{2, Secret('b')}}, 2, "prod");
  c = std::move(b);  // the old keys of c are freed (and wiped)
  FABRIC_EXPECT_OK(DecodeSignedBeacon(wire, c, nullptr));
  EXPECT_EQ(c.key_ids(), (std::vector<uint8_t>{1}));
}

TEST(BeaconAuth, MatchesTheDocumentedConstruction) {
  // The wire bytes are exactly what docs/protocol.md describes, checked
  // with libsodium directly: the tag over bytes 0..91 under K[id].
  const BeaconAuthenticator auth = MakeAuth({{4, Secret('z')}}, 4, "prod");
  const std::string wire = SignOrDie(auth, Sample());
  const std::string key = DeriveKeyForTest(Secret('z'), "prod");
  EXPECT_EQ(Reseal(wire, key), wire);
  // Keyed BLAKE2b of the context and name, not of the name alone.
  EXPECT_NE(Reseal(wire, DeriveKeyForTest(Secret('z'), "")), wire);
}

TEST(BeaconAuth, RejectsMalformedDatagrams) {
  const BeaconAuthenticator auth = MakeAuth({{1, Secret('a')}}, 1, "prod");
  const std::string key = DeriveKeyForTest(Secret('a'), "prod");
  const std::string wire = SignOrDie(auth, Sample());
  for (absl::string_view bad :
       {absl::string_view(""), absl::string_view("FBR"),
        absl::string_view("FBRC"), absl::string_view("ZRE\x01 hello")}) {
    BeaconReject reject = BeaconReject::kBadMac;
    EXPECT_THAT(DecodeSignedBeacon(bad, auth, &reject),
                StatusIs(Code::kInvalidArgument));
    EXPECT_EQ(reject, BeaconReject::kMalformed);
  }
  std::string bad_magic = wire;
  bad_magic[0] = 'G';
  EXPECT_EQ(RejectOf(bad_magic, auth), BeaconReject::kMalformed);
  EXPECT_EQ(RejectOf(wire.substr(0, kSignedBeaconSize - 1), auth),
            BeaconReject::kMalformed);
  EXPECT_EQ(RejectOf(wire + std::string(1, '\0'), auth),
            BeaconReject::kMalformed);
  EXPECT_EQ(RejectOf(wire.substr(0, kVersionOffset + 1), auth),
            BeaconReject::kMalformed);
  // A zero node id or port is refused even under a correct tag.
  std::string zero_id = wire;
  zero_id.replace(kSignedNodeIdOffset, NodeId::kSize, NodeId::kSize, '\0');
  EXPECT_THAT(DecodeSignedBeacon(Reseal(zero_id, key), auth, nullptr),
              StatusIs(Code::kInvalidArgument));
  EXPECT_EQ(RejectOf(Reseal(zero_id, key), auth), BeaconReject::kMalformed);
  std::string zero_port = wire;
  zero_port.replace(kSignedMailboxPortOffset, 2, 2, '\0');
  EXPECT_EQ(RejectOf(Reseal(zero_port, key), auth), BeaconReject::kMalformed);
}

TEST(BeaconAuth, RejectsOtherVersions) {
  const BeaconAuthenticator auth = MakeAuth({{1, Secret('a')}}, 1, "prod");
  const std::string key = DeriveKeyForTest(Secret('a'), "prod");
  // A plaintext (version 1) beacon of our own cluster.
  Beacon v1 = Sample().beacon;
  v1.cluster_hash = ClusterHash("prod");
  BeaconReject reject = BeaconReject::kMalformed;
  EXPECT_THAT(DecodeSignedBeacon(EncodeBeacon(v1), auth, &reject),
              StatusIs(Code::kUnimplemented));
  EXPECT_EQ(reject, BeaconReject::kUnauthenticated);
  // Version 1 is told by its version byte, whatever its length.
  EXPECT_EQ(RejectOf(EncodeBeacon(v1).substr(0, 5), auth),
            BeaconReject::kUnauthenticated);
  // Any other version, even with a valid tag, before the size is checked.
  for (uint8_t version : {0, 3, 255}) {
    std::string wire = SignOrDie(auth, Sample());
    wire[kVersionOffset] = static_cast<char>(version);
    EXPECT_THAT(DecodeSignedBeacon(Reseal(wire, key), auth, &reject),
                StatusIs(Code::kUnimplemented));
    EXPECT_EQ(reject, BeaconReject::kWrongVersion);
    EXPECT_EQ(RejectOf(wire.substr(0, 20), auth), BeaconReject::kWrongVersion);
  }
}

TEST(BeaconAuth, V1DecoderCountsASignedBeaconAsWrongVersion) {
  const BeaconAuthenticator auth = MakeAuth({{1, Secret('a')}}, 1, "prod");
  // A plaintext node meets a secure one: `beacons_wrong_version`.
  EXPECT_THAT(DecodeBeacon(SignOrDie(auth, Sample())),
              StatusIs(Code::kUnimplemented));
}

TEST(BeaconAuth, RejectsOtherClusters) {
  const BeaconAuthenticator ours = MakeAuth({{1, Secret('a')}}, 1, "prod");
  // The same secret in another cluster: another hash and another key.
  const BeaconAuthenticator theirs = MakeAuth({{1, Secret('a')}}, 1, "test");
  BeaconReject reject = BeaconReject::kMalformed;
  EXPECT_THAT(DecodeSignedBeacon(SignOrDie(theirs, Sample()), ours, &reject),
              StatusIs(Code::kInvalidArgument));
  EXPECT_EQ(reject, BeaconReject::kOtherCluster);
  // Were the FNV-1a hashes of the two names to collide, the key would still
  // differ: a "test" beacon carrying the hash of "prod" fails the MAC.
  std::string collided = SignOrDie(theirs, Sample());
  const std::string ours_on_wire = SignOrDie(ours, Sample());
  collided.replace(kSignedClusterHashOffset, 8, ours_on_wire,
                   kSignedClusterHashOffset, 8);
  collided = Reseal(collided, DeriveKeyForTest(Secret('a'), "test"));
  EXPECT_THAT(DecodeSignedBeacon(collided, ours, &reject),
              StatusIs(Code::kUnauthenticated));
  EXPECT_EQ(reject, BeaconReject::kBadMac);
}

TEST(BeaconAuth, RejectsUnknownKeyIdAndBadMac) {
  const BeaconAuthenticator receiver = MakeAuth({{1, Secret('a')}}, 1, "prod");
  const BeaconAuthenticator on_two = MakeAuth({{2, Secret('a')}}, 2, "prod");
  BeaconReject reject = BeaconReject::kMalformed;
  EXPECT_THAT(
      DecodeSignedBeacon(SignOrDie(on_two, Sample()), receiver, &reject),
      StatusIs(Code::kUnauthenticated));
  EXPECT_EQ(reject, BeaconReject::kUnknownKeyId);
  // Key id 0 is never installed.
  std::string zero = SignOrDie(receiver, Sample());
  zero[kSignedKeyIdOffset] = 0;
  EXPECT_EQ(RejectOf(zero, receiver), BeaconReject::kUnknownKeyId);
  // The right id with the wrong secret, and a tag of zeros.
  const BeaconAuthenticator wrong = MakeAuth({{1, Secret('b')}}, 1, "prod");
  EXPECT_THAT(DecodeSignedBeacon(SignOrDie(wrong, Sample()), receiver, &reject),
              StatusIs(Code::kUnauthenticated));
  EXPECT_EQ(reject, BeaconReject::kBadMac);
  std::string zero_tag = SignOrDie(receiver, Sample());
  zero_tag.replace(kSignedTagOffset, kSignedTagSize, kSignedTagSize, '\0');
  EXPECT_EQ(RejectOf(zero_tag, receiver), BeaconReject::kBadMac);
}

TEST(BeaconAuth, EveryFlippedBitIsRejected) {
  const BeaconAuthenticator auth = MakeAuth({{1, Secret('a')}}, 1, "prod");
  SignedBeacon s = Sample();
  // No field is one bit away from a value checked before the tag.
  s.beacon.id = *NodeId::FromHex("a1b2c3d4e5f60718293a4b5c6d7e8f90");
  const std::string wire = SignOrDie(auth, s);
  std::map<BeaconReject, int> seen;
  for (size_t byte = 0; byte < kSignedBeaconSize; ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = wire;
      flipped[byte] = static_cast<char>(flipped[byte] ^ (1 << bit));
      BeaconReject want = BeaconReject::kBadMac;
      if (byte < kVersionOffset) {
        want = BeaconReject::kMalformed;
      } else if (byte == kVersionOffset) {
        want = BeaconReject::kWrongVersion;  // 2 is never one bit from 1
      } else if (byte >= kSignedClusterHashOffset &&
                 byte < kSignedNodeIdOffset) {
        want = BeaconReject::kOtherCluster;
      } else if (byte == kSignedKeyIdOffset) {
        want = BeaconReject::kUnknownKeyId;
      }
      EXPECT_EQ(RejectOf(flipped, auth), want)
          << "byte " << byte << " bit " << bit;
      ++seen[want];
    }
  }
  EXPECT_EQ(seen[BeaconReject::kMalformed], 32);
  EXPECT_EQ(seen[BeaconReject::kOtherCluster], 64);
  EXPECT_EQ(seen[BeaconReject::kBadMac], (124 - 4 - 1 - 1 - 8) * 8);
}

TEST(BeaconAuth, EitherInstalledKeyIdIsAccepted) {
  const BeaconAuthenticator receiver =
      MakeAuth({{1, Secret('a')}, {2, Secret('b')}}, 1, "prod");
  const BeaconAuthenticator on_one = MakeAuth({{1, Secret('a')}}, 1, "prod");
  const BeaconAuthenticator on_two =
      MakeAuth({{1, Secret('a')}, {2, Secret('b')}}, 2, "prod");
  for (const BeaconAuthenticator* sender : {&on_one, &on_two}) {
    FABRIC_ASSERT_OK_AND_ASSIGN(
        SignedBeacon got,
        DecodeSignedBeacon(SignOrDie(*sender, Sample()), receiver, nullptr));
    EXPECT_EQ(got.key_id, sender->primary_key_id());
  }
  // Each id has its own key: id 2's tag under id 1's key fails.
  std::string relabelled = SignOrDie(on_two, Sample());
  relabelled[kSignedKeyIdOffset] = 1;
  EXPECT_EQ(RejectOf(relabelled, receiver), BeaconReject::kBadMac);
}

// The three rotation steps of docs/security.md (install, use, remove), with
// a fleet of two nodes moving one at a time.
TEST(BeaconAuth, KeyIdRotationWithoutDowntime) {
  const std::string old_secret = Secret('o');
  const std::string new_secret = Secret('n');
  auto stage = [&](int step) {
    switch (step) {
      case 0:  // before: id 1 only
        return MakeAuth({{1, old_secret}}, 1, "prod");
      case 1:  // install: accept 1 and 2, still send 1
        return MakeAuth({{1, old_secret}, {2, new_secret}}, 1, "prod");
      case 2:  // use: send 2
        return MakeAuth({{1, old_secret}, {2, new_secret}}, 2, "prod");
      default:  // remove: id 2 only
        return MakeAuth({{2, new_secret}}, 2, "prod");
    }
  };
  // Nodes one step apart always understand each other.
  for (int step = 0; step < 3; ++step) {
    const BeaconAuthenticator behind = stage(step);
    const BeaconAuthenticator ahead = stage(step + 1);
    FABRIC_EXPECT_OK(
        DecodeSignedBeacon(SignOrDie(behind, Sample()), ahead, nullptr))
        << "step " << step;
    FABRIC_EXPECT_OK(
        DecodeSignedBeacon(SignOrDie(ahead, Sample()), behind, nullptr))
        << "step " << step;
  }
  // A node two steps behind is heard only as an unknown key id.
  EXPECT_EQ(RejectOf(SignOrDie(stage(2), Sample()), stage(0)),
            BeaconReject::kUnknownKeyId);
  EXPECT_EQ(RejectOf(SignOrDie(stage(1), Sample()), stage(3)),
            BeaconReject::kUnknownKeyId);
}

TEST(BeaconAuth, RandomDatagramsAreNeverAccepted) {
  const BeaconAuthenticator auth = MakeAuth({{1, Secret('a')}}, 1, "prod");
  const std::string wire = SignOrDie(auth, Sample());
  std::mt19937 rng(1);
  std::set<BeaconReject> reasons;
  for (int i = 0; i < 20000; ++i) {
    std::string d(rng() % 2 ? kSignedBeaconSize : rng() % 200, '\0');
    for (char& c : d) c = static_cast<char>(rng());
    // Mostly well-formed-looking: our header, random body and tag.
    if (rng() % 4 != 0 && d.size() >= kSignedNodeIdOffset) {
      d.replace(0, kSignedNodeIdOffset, wire, 0, kSignedNodeIdOffset);
    }
    reasons.insert(RejectOf(d, auth));
  }
  EXPECT_TRUE(reasons.count(BeaconReject::kBadMac));
  EXPECT_TRUE(reasons.count(BeaconReject::kMalformed));
}

TEST(BeaconAuth, CounterNames) {
  EXPECT_EQ(BeaconRejectCounterName(BeaconReject::kMalformed),
            "beacons_malformed");
  EXPECT_EQ(BeaconRejectCounterName(BeaconReject::kUnauthenticated),
            "beacons_unauthenticated");
  EXPECT_EQ(BeaconRejectCounterName(BeaconReject::kWrongVersion),
            "beacons_wrong_version");
  EXPECT_EQ(BeaconRejectCounterName(BeaconReject::kOtherCluster),
            "beacons_other_cluster");
  EXPECT_EQ(BeaconRejectCounterName(BeaconReject::kUnknownKeyId),
            "beacons_unknown_key_id");
  EXPECT_EQ(BeaconRejectCounterName(BeaconReject::kBadMac), "beacons_bad_mac");
}

// Hex of bytes [offset, offset + size) of `wire`, space-separated.
std::string HexField(absl::string_view wire, size_t offset, size_t size) {
  std::string out;
  for (char c : wire.substr(offset, size)) {
    absl::StrAppend(&out, out.empty() ? "" : " ",
                    absl::BytesToHexString(absl::string_view(&c, 1)));
  }
  return out;
}

// The worked example of docs/protocol.md ("Beacon v2 (secure mode)"): the
// bytes there are the ones asserted here.
TEST(BeaconAuth, ProtocolDocWorkedExample) {
  const std::string secret(kBeaconSecretSize, '\x01');
  const BeaconAuthenticator auth = MakeAuth({{1, secret}}, 1, "demo");
  SignedBeacon s;
  s.beacon.id = *NodeId::FromHex("a1b2c3d4e5f60718293a4b5c6d7e8f90");
  s.beacon.mailbox_port = 40123;
  s.beacon.state_version = 1;
  s.ipv4 = 0x0a4d0005;  // 10.77.0.5
  s.seq = 1;
  s.sent_time = absl::FromUnixMillis(1767225600000);  // 2026-01-01 00:00 UTC
  // The CURVE (X25519) public key of the secret key 32 x 0x02.
  const std::string curve_secret(32, '\x02');
  s.public_key.resize(kSignedPublicKeySize);
  ASSERT_EQ(crypto_scalarmult_base(
                reinterpret_cast<unsigned char*>(s.public_key.data()),
                reinterpret_cast<const unsigned char*>(curve_secret.data())),
            0);
  const std::string wire = SignOrDie(auth, s);
  ASSERT_EQ(wire.size(), kSignedBeaconSize);

  EXPECT_EQ(HexField(DeriveKeyForTest(secret, "demo"), 0, kBeaconKeySize),
            "ef d9 58 b6 4b f9 9c 02 97 1d 03 2d 2c 63 12 bf "
            "bc 70 37 57 7d a7 1d 8a df 4f c6 0a 01 ef 6e e3");
  EXPECT_EQ(absl::StrCat(absl::Hex(ClusterHash("demo"), absl::kZeroPad16)),
            "a5e41b674276d396");
  const std::pair<size_t, size_t> fields[] = {
      {0, 4},   {4, 1},   {5, 1},   {6, 1},   {7, 1},   {8, 8},
      {16, 16}, {32, 4},  {36, 2},  {38, 2},  {40, 4},  {44, 8},
      {52, 8},  {60, 16}, {76, 16}, {92, 16}, {108, 16}};
  std::string dump;
  for (const auto& [offset, size] : fields) {
    absl::StrAppend(&dump, offset, ": ", HexField(wire, offset, size), "\n");
  }
  EXPECT_EQ(dump, R"(0: 46 42 52 43
4: 02
5: 00
6: 01
7: 00
8: a5 e4 1b 67 42 76 d3 96
16: a1 b2 c3 d4 e5 f6 07 18 29 3a 4b 5c 6d 7e 8f 90
32: 0a 4d 00 05
36: 9c bb
38: 00 00
40: 00 00 00 01
44: 00 00 00 00 00 00 00 01
52: 00 00 01 9b 76 da a8 00
60: ce 8d 3a d1 cc b6 33 ec 7b 70 c1 78 14 a5 c7 6e
76: cd 02 96 85 05 0d 34 47 45 ba 05 87 0e 58 7d 59
92: 32 d7 d2 91 6e 4c 6b 3c 71 2d ff 45 03 8d 68 4d
108: dd b8 fc 94 f6 e5 37 8e 28 4a cf 2a 90 c8 74 5d
)");
  FABRIC_EXPECT_OK(DecodeSignedBeacon(wire, auth, nullptr));
}

TEST(BeaconFresh, WithinTheSkewEitherWay) {
  const absl::Time now = absl::FromUnixMillis(1767225600000);
  const absl::Duration skew = absl::Seconds(30);
  EXPECT_TRUE(BeaconFresh(now, now, skew));
  EXPECT_TRUE(BeaconFresh(now - skew, now, skew));  // inclusive
  EXPECT_TRUE(BeaconFresh(now + skew, now, skew));  // sender's clock ahead
  EXPECT_FALSE(BeaconFresh(now - skew - absl::Milliseconds(1), now, skew));
  EXPECT_FALSE(BeaconFresh(now + skew + absl::Milliseconds(1), now, skew));
  EXPECT_TRUE(BeaconFresh(now, now, absl::ZeroDuration()));
  EXPECT_FALSE(BeaconFresh(now, now, -absl::Seconds(1)));
}

TEST(BeaconFresh, ExtremeSendTimesAreStale) {
  const absl::Time now = absl::FromUnixMillis(1767225600000);
  for (int64_t ms : {std::numeric_limits<int64_t>::min(),
                     std::numeric_limits<int64_t>::max()}) {
    EXPECT_FALSE(BeaconFresh(absl::FromUnixMillis(ms), now, absl::Hours(24)));
    EXPECT_TRUE(BeaconFresh(absl::FromUnixMillis(ms), absl::FromUnixMillis(ms),
                            absl::ZeroDuration()));
  }
  EXPECT_FALSE(
      BeaconFresh(absl::FromUnixMillis(std::numeric_limits<int64_t>::min()),
                  absl::FromUnixMillis(std::numeric_limits<int64_t>::max()),
                  absl::Hours(24)));
}

}  // namespace
}  // namespace fabric::discovery
