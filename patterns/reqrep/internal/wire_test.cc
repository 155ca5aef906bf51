// SPDX-License-Identifier: Apache-2.0
#include "patterns/reqrep/internal/wire.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace fabric::rr {
namespace {

using ::fabric::testing::IsOk;
using ::fabric::testing::StatusIs;

TEST(ReqRepWire, RequestsRoundTrip) {
  FrameEncoder enc;
  enc.AddRequest(7, 1, "echo", 2500, "", {}, "hello");
  enc.AddRequest(8, 3, "resize", 10, "key-1", {{"trace", "abc"}},
                 std::string("\0\xff", 2));
  EXPECT_EQ(enc.count(), 2u);
  const std::string frame = enc.Finish();
  EXPECT_EQ(enc.count(), 0u);
  absl::StatusOr<std::vector<WireRequest>> r = DecodeRequests(frame);
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].id, 7u);
  EXPECT_EQ((*r)[0].attempt, 1u);
  EXPECT_EQ((*r)[0].service, "echo");
  EXPECT_EQ((*r)[0].timeout_ms, 2500u);
  EXPECT_TRUE((*r)[0].key.empty());
  EXPECT_TRUE((*r)[0].headers.empty());
  EXPECT_EQ((*r)[0].body, "hello");
  EXPECT_EQ((*r)[1].attempt, 3u);
  EXPECT_EQ((*r)[1].key, "key-1");
  EXPECT_EQ((*r)[1].headers.at("trace"), "abc");
  EXPECT_EQ((*r)[1].body, std::string("\0\xff", 2));
}

TEST(ReqRepWire, RepliesRoundTrip) {
  FrameEncoder enc;
  enc.AddReply(7, 1, 0, 0, "", "world");
  enc.AddReply(9, 2, 14, kFlagNotExecuted, "server busy", "");
  const std::string frame = enc.Finish();
  absl::StatusOr<std::vector<WireReply>> r = DecodeReplies(frame);
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].body, "world");
  EXPECT_EQ((*r)[1].code, 14u);
  EXPECT_EQ((*r)[1].flags, kFlagNotExecuted);
  EXPECT_EQ((*r)[1].message, "server busy");
}

TEST(ReqRepWire, CancelRoundTrip) {
  absl::StatusOr<std::vector<uint64_t>> ids =
      DecodeCancel(EncodeCancel({1, 2, 300000}));
  ASSERT_THAT(ids, IsOk());
  EXPECT_THAT(*ids, ::testing::ElementsAre(1, 2, 300000));
}

TEST(ReqRepWire, RejectsMalformedFrames) {
  EXPECT_THAT(DecodeRequests(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeRequests("\x90"),  // empty array
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeReplies("\x91\x01"),  // an entry that is not an array
              StatusIs(absl::StatusCode::kInvalidArgument));
  FrameEncoder enc;
  enc.AddRequest(1, 1, "", 10, "", {}, "x");  // empty service
  EXPECT_THAT(DecodeRequests(enc.Finish()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  enc.AddReply(1, 1, 99, 0, "", "");  // no such status code
  EXPECT_THAT(DecodeReplies(enc.Finish()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  enc.AddReply(1, 1, 0, 0, "", "x");
  std::string frame = enc.Finish();
  frame.pop_back();  // truncated
  EXPECT_THAT(DecodeReplies(frame),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeCancel("\x91\xa1x"),  // id is a string
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ReqRepWire, EveryTruncationIsRejectedWithoutCrashing) {
  FrameEncoder enc;
  enc.AddRequest(42, 2, "svc", 100, "k", {{"a", "b"}}, "body");
  const std::string frame = enc.Finish();
  for (size_t n = 0; n < frame.size(); ++n) {
    EXPECT_FALSE(DecodeRequests(frame.substr(0, n)).ok()) << n;
    EXPECT_FALSE(DecodeReplies(frame.substr(0, n)).ok()) << n;
  }
}

// The worked example of docs/protocol.md section 13, byte for byte.
TEST(ReqRepWire, MatchesTheProtocolDocExample) {
  FrameEncoder enc;
  enc.AddRequest(5, 1, "echo", 2000, "", {}, "hi");
  EXPECT_EQ(enc.Finish(), std::string("\xdd\x00\x00\x00\x01\x97\x05\x01"
                                      "\xa4"
                                      "echo"
                                      "\xcd\x07\xd0\xc0\xc0\xc4\x02hi",
                                      22));
  enc.AddReply(5, 1, 0, 0, "", "hi");
  EXPECT_EQ(enc.Finish(),
            std::string("\xdd\x00\x00\x00\x01\x96\x05\x01\x00\x00\xa0"
                        "\xc4\x02hi",
                        15));
}

}  // namespace
}  // namespace fabric::rr
