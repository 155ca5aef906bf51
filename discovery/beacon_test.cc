// SPDX-License-Identifier: Apache-2.0
#include "discovery/beacon.h"

#include <random>

#include "absl/time/clock.h"
#include "discovery/beacon_format.h"
#include "discovery/beacon_socket.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_util.h"

namespace fabric::discovery {
namespace {

using ::fabric::testing::StatusIs;

Beacon Sample() {
  Beacon b;
  b.cluster_hash = ClusterHash("prod");
  b.id = NodeId::Random();
  b.mailbox_port = 40123;
  b.publish_port = 40124;
  b.state_version = 0xdeadbeef;
  return b;
}

TEST(Beacon, RoundTripIsFixedSize) {
  const Beacon b = Sample();
  const std::string wire = EncodeBeacon(b);
  EXPECT_EQ(wire.size(), kBeaconSize);
  EXPECT_EQ(wire.substr(0, 4), "FBRC");
  FABRIC_ASSERT_OK_AND_ASSIGN(Beacon back, DecodeBeacon(wire));
  EXPECT_EQ(back.id, b.id);
  EXPECT_EQ(back.cluster_hash, b.cluster_hash);
  EXPECT_EQ(back.mailbox_port, b.mailbox_port);
  EXPECT_EQ(back.publish_port, b.publish_port);
  EXPECT_EQ(back.state_version, b.state_version);
  EXPECT_FALSE(back.leaving());
}

TEST(Beacon, LeavingFlag) {
  Beacon b = Sample();
  b.flags = kFlagLeaving;
  FABRIC_ASSERT_OK_AND_ASSIGN(Beacon back, DecodeBeacon(EncodeBeacon(b)));
  EXPECT_TRUE(back.leaving());
}

TEST(Beacon, ClusterHashSeparatesNames) {
  EXPECT_NE(ClusterHash("a"), ClusterHash("b"));
  EXPECT_EQ(ClusterHash("prod"), ClusterHash("prod"));
}

TEST(Beacon, RejectsGarbageWrongVersionAndWrongSize) {
  EXPECT_THAT(DecodeBeacon(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeBeacon("ZRE\x01 hello"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  std::string wire = EncodeBeacon(Sample());
  std::string v2 = wire;
  v2[kVersionOffset] = 2;
  EXPECT_THAT(DecodeBeacon(v2), StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_THAT(DecodeBeacon(wire.substr(0, kBeaconSize - 1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeBeacon(wire + "x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  Beacon zero_port = Sample();
  zero_port.mailbox_port = 0;
  EXPECT_THAT(DecodeBeacon(EncodeBeacon(zero_port)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(Beacon, RandomBytesNeverCrash) {
  std::mt19937 rng(1);
  for (int i = 0; i < 50000; ++i) {
    std::string d(rng() % 80, '\0');
    for (char& c : d) c = static_cast<char>(rng());
    if (rng() % 2 && d.size() >= 4) d.replace(0, 4, "FBRC");
    absl::StatusOr<Beacon> b = DecodeBeacon(d);
    if (b.ok()) {
      EXPECT_NE(b->mailbox_port, 0);
    }
  }
}

TEST(BeaconSocket, LoopbackBroadcastReachesEverySocketOnThePort) {
  const uint16_t port = ::fabric::testing::FreeUdpPort();
  BeaconSocketOptions options;
  options.loopback = true;
  options.port = port;
  FABRIC_ASSERT_OK_AND_ASSIGN(auto a, BeaconSocket::Open(options));
  FABRIC_ASSERT_OK_AND_ASSIGN(auto b, BeaconSocket::Open(options));
  FABRIC_ASSERT_OK(a->Send("ping"));
  for (BeaconSocket* s : {a.get(), b.get()}) {
    std::optional<Datagram> got;
    ASSERT_TRUE(::fabric::testing::WaitUntil(
        [&] {
          absl::StatusOr<std::optional<Datagram>> d = s->Receive();
          if (d.ok() && d->has_value()) got = **d;
          return got.has_value();
        },
        absl::Seconds(5)));
    EXPECT_EQ(got->payload, "ping");
    EXPECT_EQ(got->source_address, "127.0.0.1");
  }
}

TEST(BeaconSocket, RejectsBadOptions) {
  BeaconSocketOptions options;
  options.port = 0;
  EXPECT_THAT(BeaconSocket::Open(options),
              StatusIs(absl::StatusCode::kInvalidArgument));
  options.port = ::fabric::testing::FreeUdpPort();
  options.loopback = false;
  options.interface = "no-such-if0";
  EXPECT_THAT(BeaconSocket::Open(options),
              StatusIs(absl::StatusCode::kNotFound));
  options.interface = "lo";  // exists, but cannot broadcast
  EXPECT_THAT(BeaconSocket::Open(options),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace fabric::discovery
