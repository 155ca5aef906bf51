// SPDX-License-Identifier: Apache-2.0
// Pub/sub frames and replay messages: round trips, and garbage refused with
// a status, never a crash.
#include "patterns/pubsub/internal/wire.h"

#include <string>

#include "gtest/gtest.h"

namespace fabric::ps {
namespace {

TEST(PubSubWireTest, FrameRoundTrip) {
  const std::string headers = EncodeHeaders({{"k", "v"}});
  const absl::Time t = absl::FromUnixMicros(1700000000123456);
  std::string frame(FrameSize("orders.eu", headers, "body"), '\0');
  EncodeFrame("orders.eu", kFlagDurable, 77, 9, t, headers, "body",
              frame.data());
  absl::StatusOr<FrameView> v = DecodeFrame(frame);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->topic, "orders.eu");
  EXPECT_EQ(v->flags, kFlagDurable);
  EXPECT_EQ(v->stream, 77u);
  EXPECT_EQ(v->seq, 9u);
  EXPECT_EQ(v->published, t);
  EXPECT_EQ(v->body, "body");
  absl::StatusOr<Headers> h = DecodeHeaders(v->headers);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->at("k"), "v");
}

TEST(PubSubWireTest, GarbageFramesAreRefused) {
  EXPECT_FALSE(DecodeFrame("").ok());
  EXPECT_FALSE(DecodeFrame("no-nul").ok());
  EXPECT_FALSE(DecodeFrame(std::string("\0abc", 4)).ok());
  EXPECT_FALSE(DecodeFrame(std::string("t\0short", 7)).ok());
  std::string frame(FrameSize("t", "", "x"), '\0');
  EncodeFrame("t", 0, 1, 1, absl::Now(), "", "x", frame.data());
  std::string wrong_version = frame;
  wrong_version[2] = 9;
  EXPECT_TRUE(absl::IsUnimplemented(DecodeFrame(wrong_version).status()));
  std::string overrun = frame;
  overrun[2 + 1 + 1 + 24] = static_cast<char>(0xff);  // headers_len
  EXPECT_FALSE(DecodeFrame(overrun).ok());
  std::string beat(FrameSize("t", "", "x"), '\0');
  EncodeFrame("t", kFlagBeat, 1, 1, absl::Now(), "", "x", beat.data());
  EXPECT_FALSE(DecodeFrame(beat).ok());
  EXPECT_FALSE(DecodeHeaders("\x91\x01").ok());
}

TEST(PubSubWireTest, ReplayMessagesRoundTrip) {
  ReplayRequest r{3, 4, 5, ReplayFrom::kTime, 6, absl::FromUnixSeconds(7),
                  8, 9};
  absl::StatusOr<ReplayRequest> r2 =
      DecodeReplayRequest(EncodeReplayRequest(r));
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2->subscriber, 3u);
  EXPECT_EQ(r2->request, 4u);
  EXPECT_EQ(r2->from, ReplayFrom::kTime);
  EXPECT_EQ(r2->time, absl::FromUnixSeconds(7));
  EXPECT_EQ(r2->max_bytes, 9u);
  ReplayData d;
  d.subscriber = 1;
  d.request = 2;
  d.stream = 3;
  d.start = 10;
  d.first_seq = 5;
  d.durable_seq = 20;
  d.next = 12;
  d.entries = {"a", "bb"};
  absl::StatusOr<ReplayData> d2 = DecodeReplayData(EncodeReplayData(d));
  ASSERT_TRUE(d2.ok()) << d2.status();
  EXPECT_EQ(d2->entries, d.entries);
  EXPECT_EQ(d2->next, 12u);
  EXPECT_FALSE(DecodeReplayData("\x93\x01\x02\x03").ok());
  EXPECT_FALSE(DecodeReplayRequest("garbage").ok());
}

TEST(PubSubWireTest, StreamOffers) {
  std::optional<StreamOffer> o =
      ParseStreamOffer(StreamOfferName(0xabc, "t.x"));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->stream, 0xabcu);
  EXPECT_EQ(o->topic, "t.x");
  EXPECT_FALSE(ParseStreamOffer("zz t").has_value());
  EXPECT_FALSE(ParseStreamOffer("0000000000000000 t").has_value());
  EXPECT_FALSE(ParseStreamOffer("0000000000000001 ").has_value());
}

}  // namespace
}  // namespace fabric::ps
