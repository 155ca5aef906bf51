// SPDX-License-Identifier: Apache-2.0
// S12 of the security test plan (security-anchors.md section 7), at the
// pattern level: on a secure node, a producer's spool, a durable topic's
// log and a durable subscriber's state directory and position file that
// already exist open to group or others (0755/0644, as an earlier release
// or a loose umask left them) are refused with FAB-SEC-FILE-PERMS naming the
// path; `allow_shared_files` accepts them; a plaintext node accepts them
// unchanged (the control); owner-only state is accepted in secure mode.
// What is created is owner-only in both modes (spool_file_modes_test).
// In-process nodes on loopback; about 1 s.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "fabric/node.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "patterns/pubsub/publisher.h"
#include "patterns/pubsub/subscriber.h"
#include "patterns/work_queue/producer.h"
#include "tests/testing/secure_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::testing::ScopedUmask;
using ::fabric::testing::SecureCluster;
using ::fabric::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

class SecureFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::ClearFabricEnvironment();
    root_ = testing::MakeTempDir("secure-files");
    ASSERT_FALSE(root_.empty());
    keys_.AddMember("secure");
    secure_ = StartNode("secure", /*secure=*/true);
    plain_ = StartNode("plain", /*secure=*/false);
    ASSERT_TRUE(secure_ && plain_);
    ASSERT_NE(secure_->security(), nullptr);
    ASSERT_EQ(plain_->security(), nullptr);
  }
  void TearDown() override {
    secure_.reset();
    plain_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }

  std::unique_ptr<Node> StartNode(const std::string& name, bool secure) {
    NodeOptions o;
    o.name = name;
    // One cluster each: the two never meet (they could not anyway).
    o.cluster = testing::UniqueClusterName(name);
    o.beacon_port = testing::FreeUdpPort();
    o.beacon_interval = absl::Milliseconds(200);
    if (secure) o.security = keys_.Options(name);
    absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(std::move(o));
    EXPECT_TRUE(node.ok()) << node.status();
    return node.ok() ? std::move(*node) : nullptr;
  }

  // A directory and a file made as a release before owner-only modes did:
  // under the common umask 022, so 0755 and 0644.
  static void MakeSharedDir(const std::string& dir) {
    ScopedUmask loose(022);
    ASSERT_EQ(::mkdir(dir.c_str(), 0777), 0) << dir;
  }
  static void MakeSharedFile(const std::string& path) {
    ScopedUmask loose(022);
    std::ofstream(path) << "";
  }
  static mode_t ModeOf(const std::string& path) {
    struct stat st;
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 0777;
  }
  static void Chmod(const std::string& path, mode_t mode) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
  }

  static auto Refused(const std::string& path, const std::string& mode) {
    return StatusIs(absl::StatusCode::kFailedPrecondition,
                    AllOf(HasSubstr(absl::StrCat("FAB-SEC-FILE-PERMS ", path,
                                                 " has mode ", mode)),
                          HasSubstr("chmod"), HasSubstr("allow_shared_files")));
  }

  static ProducerOptions Spooled(const std::string& dir, bool allow) {
    ProducerOptions o;
    o.queue = "jobs";
    o.spool_dir = dir;
    o.allow_shared_files = allow;
    return o;
  }
  static PublisherOptions Durable(const std::string& dir, bool allow) {
    PublisherOptions o;
    o.durable_topics = {"prices"};
    o.spool_dir = dir;
    o.allow_shared_files = allow;
    return o;
  }
  static SubscriberOptions Named(const std::string& dir, bool allow) {
    SubscriberOptions o;
    o.prefixes = {"prices"};
    o.durable_name = "x";
    o.state_dir = dir;
    o.allow_shared_files = allow;
    return o;
  }

  SecureCluster keys_;
  std::string root_;
  std::unique_ptr<Node> secure_;
  std::unique_ptr<Node> plain_;
};

TEST_F(SecureFilesTest, SharedSpoolIsRefusedUnlessAllowed) {
  const std::string dir = root_ + "/spool";
  MakeSharedDir(dir);
  ASSERT_EQ(ModeOf(dir), 0755u);
  EXPECT_THAT(Producer::Create(*secure_, Spooled(dir, false)),
              Refused(dir, "0755"));
  // The override, then the plaintext control: both open it as it is.
  FABRIC_EXPECT_OK(Producer::Create(*secure_, Spooled(dir, true)).status());
  FABRIC_EXPECT_OK(Producer::Create(*plain_, Spooled(dir, false)).status());
  EXPECT_EQ(ModeOf(dir), 0755u);
  // Owner-only again, but holding a file an earlier run left 0644.
  Chmod(dir, 0700);
  const std::string old = dir + "/quarantine";
  ASSERT_EQ(::mkdir(old.c_str(), 0700), 0);
  MakeSharedFile(old + "/META");
  EXPECT_THAT(Producer::Create(*secure_, Spooled(dir, false)),
              Refused(old + "/META", "0644"));
  // Owner-only throughout: accepted in secure mode.
  Chmod(old + "/META", 0600);
  FABRIC_EXPECT_OK(Producer::Create(*secure_, Spooled(dir, false)).status());
}

TEST_F(SecureFilesTest, SharedTopicLogIsRefusedUnlessAllowed) {
  const std::string dir = root_ + "/topics";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  const std::string log = dir + "/prices";
  MakeSharedDir(log);
  EXPECT_THAT(Publisher::Create(*secure_, Durable(dir, false)),
              Refused(log, "0755"));
  FABRIC_EXPECT_OK(Publisher::Create(*secure_, Durable(dir, true)).status());
  FABRIC_EXPECT_OK(Publisher::Create(*plain_, Durable(dir, false)).status());
  Chmod(log, 0700);
  FABRIC_EXPECT_OK(Publisher::Create(*secure_, Durable(dir, false)).status());
}

TEST_F(SecureFilesTest, SharedPositionsAreRefusedUnlessAllowed) {
  const std::string dir = root_ + "/subs";
  MakeSharedDir(dir);
  EXPECT_THAT(Subscriber::Create(*secure_, Named(dir, false)),
              Refused(dir, "0755"));
  FABRIC_EXPECT_OK(Subscriber::Create(*secure_, Named(dir, true)).status());
  FABRIC_EXPECT_OK(Subscriber::Create(*plain_, Named(dir, false)).status());
  // The directory owner-only, the position file itself open.
  Chmod(dir, 0700);
  Chmod(dir + "/x.pos", 0644);
  EXPECT_THAT(Subscriber::Create(*secure_, Named(dir, false)),
              Refused(dir + "/x.pos", "0644"));
  Chmod(dir + "/x.pos", 0600);
  FABRIC_EXPECT_OK(Subscriber::Create(*secure_, Named(dir, false)).status());
}

TEST_F(SecureFilesTest, NewStateIsCreatedOwnerOnlyInSecureMode) {
  ScopedUmask open_umask(0);
  FABRIC_ASSERT_OK(
      Producer::Create(*secure_, Spooled(root_ + "/new/spool", false))
          .status());
  FABRIC_ASSERT_OK(
      Publisher::Create(*secure_, Durable(root_ + "/new/topics", false))
          .status());
  FABRIC_ASSERT_OK(
      Subscriber::Create(*secure_, Named(root_ + "/new/subs", false)).status());
  EXPECT_EQ(ModeOf(root_ + "/new/spool"), 0700u);
  EXPECT_EQ(ModeOf(root_ + "/new/spool/META"), 0600u);
  EXPECT_EQ(ModeOf(root_ + "/new/topics/prices"), 0700u);
  EXPECT_EQ(ModeOf(root_ + "/new/subs"), 0700u);
  EXPECT_EQ(ModeOf(root_ + "/new/subs/x.pos"), 0600u);
}

}  // namespace
}  // namespace fabric
