// SPDX-License-Identifier: Apache-2.0
// Pub/sub frames and replay messages: round trips, and garbage refused with
// a status, never a crash.
#include "patterns/pubsub/internal/wire.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace fabric::ps {
namespace {

// Builds a frame of `bodies` (seqs from `seq`), as the publisher does.
std::string Frame(
    absl::string_view topic, uint8_t flags, uint64_t seq,
    const std::vector<std::pair<std::string, std::string>>& headers_and_bodies,
    absl::Time t, uint64_t stream = 77) {
  std::string frame(FrameHeaderSize(topic), '\0');
  EncodeFrameHeader(topic, flags, stream, seq, 0, frame.data());
  for (const auto& [headers, body] : headers_and_bodies) {
    const size_t at = frame.size();
    frame.resize(at + EntrySize(headers, body));
    EncodeEntry(t, headers, body, frame.data() + at);
  }
  SetFrameCount(topic, static_cast<uint32_t>(headers_and_bodies.size()),
                frame.data());
  return frame;
}

TEST(PubSubWireTest, FrameRoundTrip) {
  const std::string headers = EncodeHeaders({{"k", "v"}});
  const absl::Time t = absl::FromUnixMicros(1700000000123456);
  const std::string frame =
      Frame("orders.eu", kFlagDurable, 9, {{headers, "body"}}, t);
  EXPECT_EQ(frame.size(), MessageSize("orders.eu", headers, "body"));
  absl::StatusOr<FrameView> v = DecodeFrame(frame);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->topic, "orders.eu");
  EXPECT_EQ(v->flags, kFlagDurable);
  EXPECT_EQ(v->stream, 77u);
  EXPECT_EQ(v->seq, 9u);
  EXPECT_EQ(v->count, 1u);
  absl::string_view entries = v->entries;
  EntryView e = NextEntry(&entries);
  EXPECT_TRUE(entries.empty());
  EXPECT_EQ(e.published, t);
  EXPECT_EQ(e.body, "body");
  absl::StatusOr<Headers> h = DecodeHeaders(e.headers);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->at("k"), "v");
}

// The example of docs/protocol.md 12.2, byte for byte.
TEST(PubSubWireTest, FrameMatchesTheProtocolExample) {
  const std::string frame =
      Frame("t", 0, 2, {{"", "hi"}}, absl::UnixEpoch(), /*stream=*/1);
  const std::string want(
      "\x74\x00\x02\x00"                  // topic, NUL, version, flags
      "\x01\x00\x00\x00\x00\x00\x00\x00"  // stream 1
      "\x02\x00\x00\x00\x00\x00\x00\x00"  // seq 2
      "\x01\x00\x00\x00"                  // one message
      "\x00\x00\x00\x00\x00\x00\x00\x00"  // published 0
      "\x00\x00\x00\x00\x02\x00\x00\x00"  // H 0, B 2
      "hi",
      42);
  EXPECT_EQ(frame, want);
}

TEST(PubSubWireTest, BatchFrameRoundTrip) {
  const std::string headers = EncodeHeaders({{"trace", "abc"}});
  const absl::Time t = absl::FromUnixMicros(1700000000000001);
  const std::string frame =
      Frame("t", 0, 41, {{"", "one"}, {headers, ""}, {"", "three"}}, t);
  absl::StatusOr<FrameView> v = DecodeFrame(frame);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->seq, 41u);
  ASSERT_EQ(v->count, 3u);
  absl::string_view entries = v->entries;
  EXPECT_EQ(NextEntry(&entries).body, "one");
  EntryView second = NextEntry(&entries);
  EXPECT_EQ(second.headers, headers);
  EXPECT_EQ(second.body, "");
  EntryView third = NextEntry(&entries);
  EXPECT_EQ(third.body, "three");
  EXPECT_EQ(third.published, t);
  EXPECT_TRUE(entries.empty());
}

TEST(PubSubWireTest, GarbageFramesAreRefused) {
  EXPECT_FALSE(DecodeFrame("").ok());
  EXPECT_FALSE(DecodeFrame("no-nul").ok());
  EXPECT_FALSE(DecodeFrame(std::string("\0abc", 4)).ok());
  EXPECT_FALSE(DecodeFrame(std::string("t\0short", 7)).ok());
  const std::string frame =
      Frame("t", 0, 1, {{"", "x"}, {"", "y"}}, absl::Now());
  ASSERT_TRUE(DecodeFrame(frame).ok());
  std::string wrong_version = frame;
  wrong_version[2] = 9;
  EXPECT_TRUE(absl::IsUnimplemented(DecodeFrame(wrong_version).status()));
  const size_t first_entry = FrameHeaderSize("t");
  std::string overrun = frame;
  overrun[first_entry + 8] = static_cast<char>(0xff);  // headers_len
  EXPECT_FALSE(DecodeFrame(overrun).ok());
  std::string too_many = frame;
  SetFrameCount("t", 3, too_many.data());
  EXPECT_FALSE(DecodeFrame(too_many).ok());
  std::string too_few = frame;
  SetFrameCount("t", 1, too_few.data());  // the second entry is left over
  EXPECT_FALSE(DecodeFrame(too_few).ok());
  std::string none = frame;
  SetFrameCount("t", 0, none.data());
  EXPECT_FALSE(DecodeFrame(none).ok());
  // A beat carries no messages.
  EXPECT_FALSE(
      DecodeFrame(Frame("t", kFlagBeat, 1, {{"", "x"}}, absl::Now())).ok());
  EXPECT_TRUE(DecodeFrame(Frame("t", kFlagBeat, 1, {}, absl::Now())).ok());
  // Seqs that would wrap around.
  EXPECT_FALSE(DecodeFrame(Frame("t", 0, UINT64_MAX, {{"", "a"}, {"", "b"}},
                                 absl::Now()))
                   .ok());
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
