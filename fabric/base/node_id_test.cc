// SPDX-License-Identifier: Apache-2.0
#include "fabric/base/node_id.h"

#include <type_traits>

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace fabric {
namespace {

using ::fabric::testing::StatusIs;

TEST(NodeId, RandomIdsDifferAndAreNotZero) {
  absl::flat_hash_set<NodeId> seen;
  for (int i = 0; i < 1000; ++i) {
    NodeId id = NodeId::Random();
    EXPECT_FALSE(id.IsZero());
    EXPECT_TRUE(seen.insert(id).second);
  }
}

TEST(NodeId, HexRoundTrip) {
  NodeId id = NodeId::Random();
  EXPECT_EQ(id.ToHex().size(), 32u);
  FABRIC_ASSERT_OK_AND_ASSIGN(NodeId back, NodeId::FromHex(id.ToHex()));
  EXPECT_EQ(back, id);
  EXPECT_EQ(id.ShortHex(), id.ToHex().substr(0, 8));
}

TEST(NodeId, RejectsBadInput) {
  EXPECT_THAT(NodeId::FromBytes("short"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(NodeId::FromHex("zz"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(NodeId::FromHex(std::string(32, 'g')),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

static_assert(std::is_trivially_copyable_v<NodeId>);

}  // namespace
}  // namespace fabric
