// SPDX-License-Identifier: Apache-2.0
#include "patterns/work_queue/internal/wire.h"

#include <random>
#include <string>

#include "fabric/codec/msgpack_bounded.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace fabric::wq {
namespace {

using ::fabric::testing::StatusIs;
using ::testing::ElementsAre;

TEST(WireTest, TasksRoundTrip) {
  const NodeId producer = NodeId::Random();
  TasksEncoder enc("images", producer);
  enc.Add(1, 1, false, {}, "first");
  enc.Add(2, 3, true, {{"k", "v"}, {"trace", "abc"}}, std::string(1000, 'x'),
          7);
  enc.Add(3, 1, false, {}, "");
  EXPECT_EQ(enc.count(), 3u);
  const std::string frame = enc.Finish();
  FABRIC_ASSERT_OK_AND_ASSIGN(Tasks m, DecodeTasks(frame));
  EXPECT_EQ(m.queue, "images");
  EXPECT_EQ(m.producer, producer);
  ASSERT_EQ(m.tasks.size(), 3u);
  EXPECT_EQ(m.tasks[0].seq, 1u);
  EXPECT_EQ(m.tasks[0].body, "first");
  EXPECT_FALSE(m.tasks[0].redelivered);
  EXPECT_EQ(m.tasks[1].attempt, 3u);
  EXPECT_EQ(m.tasks[1].delivery, 7u);
  EXPECT_EQ(m.tasks[0].delivery, 0u);
  EXPECT_TRUE(m.tasks[1].redelivered);
  EXPECT_EQ(m.tasks[1].headers.at("trace"), "abc");
  EXPECT_EQ(m.tasks[1].body.size(), 1000u);
  EXPECT_EQ(m.tasks[2].body, "");
}

TEST(WireTest, ResultsRoundTrip) {
  Results in;
  in.queue = "q";
  in.grant = 7;
  in.acked = {1, 2, uint64_t{1} << 40};
  in.others.push_back(OtherResult{5, 2, Verdict::kRetry, 1500, "busy"});
  in.others.push_back(OtherResult{6, 1, Verdict::kReject, 0, "bad input"});
  in.others.push_back(OtherResult{9, 1, Verdict::kRelease, 0, ""});
  in.others.back().delivery = 4;
  in.started = {StartedTask{11, 1}, StartedTask{12, 3}};
  FABRIC_ASSERT_OK_AND_ASSIGN(Results out, DecodeResults(EncodeResults(in)));
  EXPECT_EQ(out.queue, "q");
  EXPECT_EQ(out.grant, 7u);
  EXPECT_THAT(out.acked,
              ElementsAre(uint64_t{1}, uint64_t{2}, uint64_t{1} << 40));
  ASSERT_EQ(out.others.size(), 3u);
  EXPECT_EQ(out.others[0].verdict, Verdict::kRetry);
  EXPECT_EQ(out.others[0].delay_ms, 1500u);
  EXPECT_EQ(out.others[0].reason, "busy");
  EXPECT_EQ(out.others[1].verdict, Verdict::kReject);
  EXPECT_EQ(out.others[2].verdict, Verdict::kRelease);
  EXPECT_EQ(out.others[2].delivery, 4u);
  EXPECT_EQ(out.others[0].delivery, 0u);
  EXPECT_THAT(out.started, ElementsAre(StartedTask{11, 1}, StartedTask{12, 3}));
}

// A worker of the previous release sends a two-field CREDIT, and RESULTS
// with four fields and no start reports.
TEST(WireTest, CreditSaysWhetherTheWorkerReportsStarts) {
  FABRIC_ASSERT_OK_AND_ASSIGN(Credit now, DecodeCredit(EncodeCredit({"q", 3})));
  EXPECT_TRUE(now.reports_starts);
  std::string old;
  msgpack_bounded::StringSink sink{&old};
  msgpack_bounded::Packer pk(sink);
  pk.pack_array(2);
  msgpack_bounded::PackString(pk, "q");
  pk.pack(uint64_t{3});
  FABRIC_ASSERT_OK_AND_ASSIGN(Credit before, DecodeCredit(old));
  EXPECT_EQ(before.grant, 3u);
  EXPECT_FALSE(before.reports_starts);
}

TEST(WireTest, ResultsWithoutStartedListDecode) {
  std::string old;
  msgpack_bounded::StringSink sink{&old};
  msgpack_bounded::Packer pk(sink);
  pk.pack_array(4);
  msgpack_bounded::PackString(pk, "q");
  pk.pack(uint64_t{2});
  pk.pack_array(1);
  pk.pack(uint64_t{4});
  pk.pack_array(0);
  FABRIC_ASSERT_OK_AND_ASSIGN(Results out, DecodeResults(old));
  EXPECT_FALSE(out.reports_starts);
  EXPECT_EQ(out.grant, 2u);
  EXPECT_THAT(out.acked, ElementsAre(uint64_t{4}));
  EXPECT_TRUE(out.started.empty());
}

TEST(WireTest, SmallMessagesRoundTrip) {
  FABRIC_ASSERT_OK_AND_ASSIGN(Demand d,
                              DecodeDemand(EncodeDemand({"q", 100, 3})));
  EXPECT_EQ(d.queue, "q");
  EXPECT_EQ(d.backlog, 100u);
  EXPECT_EQ(d.credit_held, 3u);
  FABRIC_ASSERT_OK_AND_ASSIGN(Credit c, DecodeCredit(EncodeCredit({"q", 9})));
  EXPECT_EQ(c.grant, 9u);
  FABRIC_ASSERT_OK_AND_ASSIGN(Extend e,
                              DecodeExtend(EncodeExtend({"q", 30000, {4, 5}})));
  EXPECT_EQ(e.extend_ms, 30000u);
  EXPECT_THAT(e.seqs, ElementsAre(4u, 5u));
}

TEST(WireTest, RejectsBadQueueNames) {
  EXPECT_THAT(DecodeCredit(EncodeCredit({"", 1})),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeCredit(EncodeCredit({std::string(300, 'q'), 1})),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// Every decoder survives every truncation and random corruption of valid
// frames: it returns an error or a value, never crashes.
TEST(WireTest, TruncatedAndCorruptFramesAreRejectedCleanly) {
  TasksEncoder enc("q", NodeId::Random());
  enc.Add(1, 1, false, {{"a", "b"}}, "body");
  enc.Add(2, 2, true, {}, "more");
  Results r{"q",
            3,
            {1, 2},
            {OtherResult{3, 1, Verdict::kRetry, 5, "x"}},
            {StartedTask{4, 1}}};
  const std::vector<std::string> frames = {
      enc.Finish(), EncodeResults(r), EncodeDemand({"q", 1, 0}),
      EncodeCredit({"q", 1}), EncodeExtend({"q", 1, {1}})};
  auto decode_all = [](absl::string_view b) {
    (void)DecodeTasks(b);
    (void)DecodeResults(b);
    (void)DecodeDemand(b);
    (void)DecodeCredit(b);
    (void)DecodeExtend(b);
  };
  std::mt19937 rng(42);
  for (const std::string& frame : frames) {
    for (size_t cut = 0; cut < frame.size(); ++cut) {
      decode_all(absl::string_view(frame).substr(0, cut));
    }
    for (int i = 0; i < 2000; ++i) {
      std::string bad = frame;
      bad[rng() % bad.size()] = static_cast<char>(rng());
      decode_all(bad);
    }
  }
  EXPECT_THAT(DecodeTasks(EncodeCredit({"q", 1})),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace fabric::wq
