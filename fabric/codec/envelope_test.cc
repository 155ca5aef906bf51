// SPDX-License-Identifier: Apache-2.0
#include "fabric/codec/envelope.h"

#include <random>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace fabric {
namespace {

using ::fabric::testing::StatusIs;

constexpr size_t kMax = 1 << 20;

TEST(Envelope, RoundTrip) {
  const NodeId sender = NodeId::Random();
  const std::string body("payload\0with nul", 16);
  const std::string wire = EncodeEnvelope(MessageKind::kPing, sender, body);
  FABRIC_ASSERT_OK_AND_ASSIGN(EnvelopeView view, DecodeEnvelope(wire, kMax));
  EXPECT_EQ(view.kind, static_cast<uint16_t>(MessageKind::kPing));
  EXPECT_EQ(view.sender, sender);
  EXPECT_EQ(view.body, body);
}

TEST(Envelope, EmptyAndLargeBodies) {
  const NodeId sender = NodeId::Random();
  for (size_t size : {size_t{0}, size_t{1}, size_t{255}, size_t{65536}}) {
    const std::string body(size, 'x');
    const std::string wire = EncodeEnvelope(200, sender, body);
    FABRIC_ASSERT_OK_AND_ASSIGN(EnvelopeView view, DecodeEnvelope(wire, kMax));
    EXPECT_EQ(view.body.size(), size);
  }
}

TEST(Envelope, DecodeRejectsEveryTruncation) {
  const std::string wire =
      EncodeEnvelope(MessageKind::kHello, NodeId::Random(), "some body");
  for (size_t n = 0; n < wire.size(); ++n) {
    EXPECT_THAT(DecodeEnvelope(wire.substr(0, n), kMax),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << "prefix of " << n << " bytes";
  }
}

TEST(Envelope, DecodeRejectsTrailingBytes) {
  const std::string wire =
      EncodeEnvelope(MessageKind::kPing, NodeId::Random(), "b") + "x";
  EXPECT_THAT(DecodeEnvelope(wire, kMax),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(Envelope, DecodeRejectsOversized) {
  const std::string wire = EncodeEnvelope(MessageKind::kPing, NodeId::Random(),
                                          std::string(2000, 'a'));
  EXPECT_THAT(DecodeEnvelope(wire, 1024),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(Envelope, DecodeReportsOtherVersionAsUnimplemented) {
  // [2, 3, bin16, bin0]: a well-formed envelope of a future version.
  std::string wire = "\x94\x02\x03\xc4\x10";
  wire += std::string(16, 'i');
  wire += std::string("\xc4\x00", 2);
  EXPECT_THAT(DecodeEnvelope(wire, kMax),
              StatusIs(absl::StatusCode::kUnimplemented));
}

TEST(Envelope, FutureVersionWithMoreFieldsIsUnimplemented) {
  // [2, 3, bin16, bin0, 7]: a later version may add fields.
  std::string wire = "\x95\x02\x03\xc4\x10";
  wire += std::string(16, 'i');
  wire += std::string("\xc4\x00\x07", 3);
  EXPECT_THAT(DecodeEnvelope(wire, kMax),
              StatusIs(absl::StatusCode::kUnimplemented));
}

TEST(Envelope, DecodeRejectsWrongTypes) {
  // A map instead of an array, a string as version, a short sender id.
  EXPECT_THAT(DecodeEnvelope("\x80", kMax),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeEnvelope("\x94\xa1\x31\x01\xc4\x00\xc4\x00", kMax),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      DecodeEnvelope(std::string("\x94\x01\x01\xc4\x01x\xc4\x00", 9), kMax),
      StatusIs(absl::StatusCode::kInvalidArgument));
  // Kind 0 is reserved.
  std::string zero_kind = "\x94\x01";
  zero_kind += std::string("\x00", 1);
  zero_kind += "\xc4\x10" + std::string(16, 'i') + std::string("\xc4\x00", 2);
  EXPECT_THAT(DecodeEnvelope(zero_kind, kMax),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(Envelope, DecodeRejectsHugeDeclaredLengths) {
  // An array header claiming 2^32-1 elements, and a bin claiming 4 GiB.
  EXPECT_THAT(DecodeEnvelope("\xdd\xff\xff\xff\xff", kMax),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeEnvelope("\x94\x01\x01\xc6\xff\xff\xff\xff", kMax),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// Flipped bytes and random garbage: any outcome but a crash is fine, and a
// success must still describe a sane envelope.
TEST(Envelope, SurvivesCorruptionAndGarbage) {
  std::mt19937 rng(42);
  const std::string wire =
      EncodeEnvelope(MessageKind::kGossip, NodeId::Random(), "0123456789");
  for (int i = 0; i < 20000; ++i) {
    std::string bad = wire;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      bad[rng() % bad.size()] = static_cast<char>(rng());
    }
    absl::StatusOr<EnvelopeView> view = DecodeEnvelope(bad, kMax);
    if (view.ok()) {
      EXPECT_NE(view->kind, 0);
    }
  }
  for (int i = 0; i < 20000; ++i) {
    std::string garbage(rng() % 64, '\0');
    for (char& c : garbage) c = static_cast<char>(rng());
    absl::StatusOr<EnvelopeView> view = DecodeEnvelope(garbage, kMax);
    if (view.ok()) {
      EXPECT_LE(view->body.size(), garbage.size());
    }
  }
}

}  // namespace
}  // namespace fabric
