// SPDX-License-Identifier: Apache-2.0
// Fabric's threads carry their role in their name (docs/threading.md), as
// the kernel shows it in /proc/self/task/*/comm.
#include <dirent.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/time/time.h"
#include "fabric/node.h"
#include "fabric/spool/internal/spool_test_util.h"
#include "fabric/spool/spool.h"
#include "fabric/spool/topic_log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::spool_internal::testing::TempDir;
using ::fabric::spool_internal::testing::TestOptions;
using ::fabric::testing::WaitUntil;
using ::testing::Contains;
using ::testing::Not;

constexpr absl::Duration kWait = absl::Seconds(20);

std::vector<std::string> ThreadNames() {
  std::vector<std::string> names;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return names;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream comm(std::string("/proc/self/task/") + e->d_name + "/comm");
    std::string name;
    if (std::getline(comm, name)) {
      names.push_back(std::string(absl::StripTrailingAsciiWhitespace(name)));
    }
  }
  closedir(dir);
  return names;
}

bool HasThread(const std::string& name) {
  for (const std::string& n : ThreadNames()) {
    if (n == name) return true;
  }
  return false;
}

TEST(ThreadNamesTest, NodeAndSpoolThreadsAreNamedByRole) {
  NodeOptions o;
  o.name = "names";
  o.cluster = ::fabric::testing::UniqueClusterName("names");
  o.beacon_port = ::fabric::testing::FreeUdpPort();
  o.on_peer_event = [](const PeerEvent&) {};
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(std::move(o));
  ASSERT_TRUE(node.ok()) << node.status();

  const TempDir spool_dir("names-spool");
  absl::StatusOr<std::unique_ptr<Spool>> spool =
      Spool::Open(TestOptions(spool_dir.path()));
  ASSERT_TRUE(spool.ok()) << spool.status();

  const TempDir log_dir("names-log");
  TopicLogOptions log_options;
  log_options.dir = log_dir.path();
  log_options.topic = "names";
  absl::StatusOr<std::unique_ptr<TopicLog>> log = TopicLog::Open(log_options);
  ASSERT_TRUE(log.ok()) << log.status();

  // Each thread names itself as it starts: wait for that, no sleeps.
  for (const char* name :
       {"fab-engine", "fab-events", "fab-spool", "fab-topiclog"}) {
    EXPECT_TRUE(WaitUntil([&] { return HasThread(name); }, kWait))
        << name << " not among the threads";
  }
  for (const std::string& name : ThreadNames()) {
    EXPECT_LE(name.size(), 15u) << name;
  }

  log->reset();
  spool->reset();
  node->reset();
  EXPECT_THAT(ThreadNames(), Not(Contains("fab-engine")));
  EXPECT_THAT(ThreadNames(), Not(Contains("fab-spool")));
}

}  // namespace
}  // namespace fabric
