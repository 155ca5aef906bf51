// SPDX-License-Identifier: Apache-2.0
#include "fabric/codec/control.h"

#include <random>
#include <string>

#include "fabric/limits.h"
#include "gtest/gtest.h"
#include "msgpack.hpp"
#include "tests/testing/status_matchers.h"

namespace fabric {
namespace {

using ::fabric::testing::StatusIs;

Hello SampleHello() {
  Hello h;
  h.id = NodeId::Random();
  h.name = "worker-1";
  h.cluster = "prod";
  h.mailbox_endpoint = "tcp://127.0.0.1:40000";
  h.publish_endpoint = "tcp://127.0.0.1:40001";
  h.state_version = 7;
  h.discovery = "loopback";
  h.headers = {{"zone", "a"}, {"version", "1.2"}};
  h.offers = {{"queue", {"images", "thumbs"}}, {"service", {"echo"}}};
  return h;
}

TEST(Control, HelloRoundTrip) {
  const Hello h = SampleHello();
  FABRIC_ASSERT_OK_AND_ASSIGN(Hello back, DecodeHello(EncodeHello(h)));
  EXPECT_EQ(back.id, h.id);
  EXPECT_EQ(back.name, h.name);
  EXPECT_EQ(back.cluster, h.cluster);
  EXPECT_EQ(back.mailbox_endpoint, h.mailbox_endpoint);
  EXPECT_EQ(back.publish_endpoint, h.publish_endpoint);
  EXPECT_EQ(back.state_version, h.state_version);
  EXPECT_EQ(back.discovery, h.discovery);
  EXPECT_EQ(back.headers, h.headers);
  EXPECT_EQ(back.offers, h.offers);
}

TEST(Control, HelloIgnoresUnknownKeys) {
  // {"id": bin16, "mailbox": "tcp://x:1", "future": 1}
  std::string body = "\x83\xa2id\xc4\x10" + std::string(16, 'a');
  body +=
      "\xa7mailbox\xa9tcp://x:1\xa6"
      "future\x01";
  FABRIC_ASSERT_OK_AND_ASSIGN(Hello h, DecodeHello(body));
  EXPECT_EQ(h.mailbox_endpoint, "tcp://x:1");
}

TEST(Control, HelloRejectsMissingFieldsAndTruncation) {
  EXPECT_THAT(DecodeHello("\x80"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  const std::string wire = EncodeHello(SampleHello());
  for (size_t n = 0; n < wire.size(); ++n) {
    EXPECT_THAT(DecodeHello(wire.substr(0, n)),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

TEST(Control, HelloRejectsWrongTypes) {
  // "offers" as a string instead of a map.
  std::string body = "\x83\xa2id\xc4\x10" + std::string(16, 'a');
  body += "\xa7mailbox\xa9tcp://x:1\xa6offers\xa1x";
  EXPECT_THAT(DecodeHello(body), StatusIs(absl::StatusCode::kInvalidArgument));
}

// A HELLO naming one offer kind twice, `first` names then `second` names.
std::string HelloWithRepeatedKind(size_t first, const std::string& second) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  pk.pack_map(3);
  pk.pack("id");
  const std::string id(16, 'a');
  pk.pack_bin(16);
  pk.pack_bin_body(id.data(), 16);
  pk.pack("mailbox");
  pk.pack("tcp://x:1");
  pk.pack("offers");
  pk.pack_map(2);
  pk.pack("queue");
  pk.pack_array(static_cast<uint32_t>(first));
  for (size_t i = 0; i < first; ++i) pk.pack("q" + std::to_string(i));
  pk.pack("queue");
  pk.pack_array(1);
  pk.pack(second);
  return std::string(buffer.data(), buffer.size());
}

TEST(Control, HelloLimitsOffersOfAKindNamedTwice) {
  // Found by control_fuzzer's review: the sets merge, and the merge must
  // respect the limit, or re-encoding gives a HELLO peers refuse.
  EXPECT_THAT(DecodeHello(HelloWithRepeatedKind(kMaxOffersPerKind, "extra")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // The control: the second list repeats a name, so the merge is at the
  // limit, and the HELLO re-encodes and decodes.
  FABRIC_ASSERT_OK_AND_ASSIGN(
      Hello h, DecodeHello(HelloWithRepeatedKind(kMaxOffersPerKind, "q0")));
  EXPECT_EQ(h.offers["queue"].size(), kMaxOffersPerKind);
  FABRIC_EXPECT_OK(DecodeHello(EncodeHello(h)).status());
}

TEST(Control, PingRoundTripAndGarbage) {
  FABRIC_ASSERT_OK_AND_ASSIGN(uint64_t v, DecodePing(EncodePing(123456789)));
  EXPECT_EQ(v, 123456789u);
  EXPECT_THAT(DecodePing(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodePing("\x90"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodePing("\x91\xa1x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(Control, GossipRoundTripAndLimits) {
  std::vector<GossipEntry> entries;
  for (int i = 0; i < 50; ++i) {
    entries.push_back(
        {NodeId::Random(), "tcp://127.0.0.1:" + std::to_string(i), ""});
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(std::vector<GossipEntry> back,
                              DecodeGossip(EncodeGossip(entries)));
  ASSERT_EQ(back.size(), entries.size());
  for (size_t i = 0; i < back.size(); ++i) {
    EXPECT_EQ(back[i].id, entries[i].id);
    EXPECT_EQ(back[i].mailbox_endpoint, entries[i].mailbox_endpoint);
  }
  // Secure mode's entries carry the key as a third element.
  std::vector<GossipEntry> keyed = {
      {NodeId::Random(), "tcp://127.0.0.1:7", std::string(32, 'k')}};
  FABRIC_ASSERT_OK_AND_ASSIGN(back, DecodeGossip(EncodeGossip(keyed)));
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].public_key, keyed[0].public_key);
  EXPECT_TRUE(entries.front().public_key.empty());
  keyed[0].public_key = "short";
  EXPECT_THAT(DecodeGossip(EncodeGossip(keyed)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // An entry that is not a pair.
  EXPECT_THAT(DecodeGossip("\x91\x91\x01"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // More entries than the limit allows.
  EXPECT_THAT(DecodeGossip("\xdd\x00\x01\x00\x01"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(Control, SurvivesRandomCorruption) {
  std::mt19937 rng(7);
  const std::string hello = EncodeHello(SampleHello());
  for (int i = 0; i < 20000; ++i) {
    std::string bad = hello;
    bad[rng() % bad.size()] = static_cast<char>(rng());
    absl::StatusOr<Hello> h = DecodeHello(bad);
    if (h.ok()) {
      EXPECT_FALSE(h->mailbox_endpoint.size() > bad.size());
    }
    absl::StatusOr<std::vector<GossipEntry>> g = DecodeGossip(bad);
    if (g.ok()) {
      EXPECT_LE(g->size(), bad.size());
    }
  }
}

}  // namespace
}  // namespace fabric
