// SPDX-License-Identifier: Apache-2.0
// Starting in-process nodes for pattern tests: loopback discovery on the
// test's own beacon port and cluster, with fast beacons. Test-only;
// header-only (the tests that use it link fabric_node).
#ifndef FABRIC_TESTS_TESTING_NODE_UTIL_H_
#define FABRIC_TESTS_TESTING_NODE_UTIL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fabric/node.h"
#include "gtest/gtest.h"

namespace fabric::testing {

// Starts a node named `name` in `cluster`; a failure fails the test and
// returns null.
inline std::unique_ptr<Node> StartLoopbackNode(const std::string& name,
                                               const std::string& cluster,
                                               uint16_t beacon_port) {
  NodeOptions o;
  o.name = name;
  o.cluster = cluster;
  o.beacon_port = beacon_port;
  o.beacon_interval = absl::Milliseconds(200);
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(std::move(o));
  EXPECT_TRUE(node.ok()) << node.status();
  return node.ok() ? std::move(*node) : nullptr;
}

}  // namespace fabric::testing

#endif  // FABRIC_TESTS_TESTING_NODE_UTIL_H_
