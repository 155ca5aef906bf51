// SPDX-License-Identifier: Apache-2.0
#include "tools/cli/output.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fabric::cli {
namespace {

using ::testing::HasSubstr;

PeerInfo Sample() {
  PeerInfo p;
  p.id = NodeId::Random();
  p.name = "web \"1\"";
  p.mailbox_endpoint = "tcp://127.0.0.1:4000";
  p.offers["queue"] = {"images"};
  p.headers["zone"] = "a\nb";
  return p;
}

TEST(Output, JsonStringEscapes) {
  EXPECT_EQ(JsonString("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
}

TEST(Output, TableHasHeaderAndRow) {
  PeerInfo p = Sample();
  const absl::Time now = absl::Now();
  p.last_seen = now - absl::Milliseconds(300);
  const std::string table = FormatPeerTable({p}, now);
  EXPECT_THAT(table, HasSubstr("NAME"));
  EXPECT_THAT(table, HasSubstr("LAST-SEEN"));
  EXPECT_THAT(table, HasSubstr(p.id.ShortHex()));
  EXPECT_THAT(table, HasSubstr("queue:images"));
  EXPECT_THAT(table, HasSubstr("0.3s ago"));
}

TEST(Output, JsonIsEscapedAndComplete) {
  PeerInfo p = Sample();
  const std::string json = FormatPeerJson({p}, absl::Now());
  EXPECT_THAT(json, HasSubstr("\"name\":\"web \\\"1\\\"\""));
  EXPECT_THAT(json, HasSubstr("\"offers\":{\"queue\":[\"images\"]}"));
  EXPECT_THAT(json, HasSubstr("\"zone\":\"a\\nb\""));
  EXPECT_THAT(json, HasSubstr(p.id.ToHex()));
}

TEST(Output, EventLine) {
  PeerEvent e{PeerEventType::kJoined, Sample(), "hello", absl::Now()};
  EXPECT_THAT(FormatEvent(e, 3, false), HasSubstr("joined web"));
  EXPECT_THAT(FormatEvent(e, 3, false), HasSubstr("peers=3"));
  EXPECT_THAT(FormatEvent(e, 3, true), HasSubstr("\"event\":\"joined\""));
  EXPECT_THAT(FormatEvent(e, 3, true), HasSubstr("\"peers\":3"));
}

}  // namespace
}  // namespace fabric::cli
