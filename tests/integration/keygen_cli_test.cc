// SPDX-License-Identifier: Apache-2.0
// `fabric keygen` as a user meets it, running the real binary: the keypair
// files and their modes (also under umask 000), what it prints and never
// prints, refusing to overwrite, the beacon keyring's create / add /
// primary / remove steps and their refusals, usage errors (exit 2); and
// that `work --exec` and `serve --exec` commands do not see the variables
// naming secret files, while seeing the rest of the environment.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "fabric/security/keys.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cli_harness.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::testing::CliCluster;
using ::fabric::testing::Finish;
using ::fabric::testing::RunResult;
using ::fabric::testing::Subprocess;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

constexpr absl::Duration kTimeout = absl::Seconds(60);

mode_t Mode(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class KeygenCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cli_.usable()) << "no free UDP port or temp dir";
  }

  // Runs `fabric <args>` to completion (no cluster flags), with `env`
  // added to the environment.
  absl::StatusOr<RunResult> Fabric(std::vector<std::string> args,
                                   std::vector<std::string> env = {}) {
    args.insert(args.begin(), FABRIC_CLI_PATH);
    absl::StatusOr<std::unique_ptr<Subprocess>> proc =
        Subprocess::Spawn(std::move(args), std::move(env));
    if (!proc.ok()) return proc.status();
    return Finish(**proc, kTimeout);
  }

  // Runs `fabric <args>` and expects exit 0.
  RunResult Ok(std::vector<std::string> args) {
    SCOPED_TRACE(absl::StrJoin(args, " "));
    absl::StatusOr<RunResult> r = Fabric(std::move(args));
    EXPECT_THAT(r, fabric::testing::IsOk());
    if (!r.ok()) return {};
    EXPECT_EQ(r->exit_code, 0) << r->err;
    return *r;
  }

  // Runs `fabric <args>` and expects exit `code` with `needle` on stderr
  // and nothing on stdout.
  void Fails(std::vector<std::string> args, int code,
             const std::string& needle) {
    SCOPED_TRACE(absl::StrJoin(args, " "));
    FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, Fabric(std::move(args)));
    EXPECT_EQ(r.exit_code, code) << r.err;
    EXPECT_THAT(r.err, StartsWith("fabric: "));
    EXPECT_THAT(r.err, HasSubstr(needle));
    EXPECT_EQ(r.out, "");
  }

  security::BeaconSecrets LoadKeyring(const std::string& path) {
    absl::StatusOr<security::BeaconSecrets> secrets =
        security::LoadBeaconSecrets(path);
    EXPECT_THAT(secrets, fabric::testing::IsOk());
    return secrets.ok() ? *std::move(secrets) : security::BeaconSecrets{};
  }

  const CliCluster cli_{"keygen-cli"};  // removes its directory last
  const std::string& dir_ = cli_.dir();
};

TEST_F(KeygenCliTest, WritesAKeypairAndPrintsItsPublicHalf) {
  const std::string keys = dir_ + "/keys";  // created by keygen
  // Under umask 000 the modes are still exactly 0700, 0600 and 0644.
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto proc,
      Subprocess::Spawn({"/bin/sh", "-c", "umask 000; exec \"$0\" \"$@\"",
                         FABRIC_CLI_PATH, "keygen", "node-1", "--dir", keys}));
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, Finish(*proc));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Mode(keys), 0700u);
  EXPECT_EQ(Mode(keys + "/node-1.key"), 0600u);
  EXPECT_EQ(Mode(keys + "/node-1.pub"), 0644u);

  FABRIC_ASSERT_OK_AND_ASSIGN(const security::CurveKeypair keypair,
                              security::LoadKeyFile(keys + "/node-1.key"));
  EXPECT_EQ(keypair.name, "node-1");
  ASSERT_EQ(r.lines.size(), 4u) << r.out;
  EXPECT_EQ(r.lines[0],
            absl::StrCat("public-key  ", security::Z85Key(keypair.public_key)));
  EXPECT_EQ(r.lines[1], absl::StrCat("fingerprint ", security::KeyFingerprint(
                                                         keypair.public_key)));
  EXPECT_THAT(r.lines[1], MatchesRegex("fingerprint [0-9a-f]{16}"));
  EXPECT_THAT(r.lines[2], HasSubstr(keys + "/node-1.key"));
  EXPECT_THAT(r.lines[3], HasSubstr(keys + "/node-1.pub"));
  const std::string secret = security::Z85Key(keypair.secret_key);
  EXPECT_THAT(r.out, Not(HasSubstr(secret)));
  EXPECT_THAT(r.err, Not(HasSubstr(secret)));
  EXPECT_THAT(ReadAll(keys + "/node-1.pub"), Not(HasSubstr(secret)));

  // The .pub is a roster entry.
  FABRIC_ASSERT_OK_AND_ASSIGN(const security::Roster roster,
                              security::LoadRoster(keys, nullptr));
  EXPECT_TRUE(roster.Contains(keypair.public_key));
}

TEST_F(KeygenCliTest, RefusesToOverwriteWithoutForce) {
  Ok({"keygen", "n", "--dir", dir_});
  const std::string before = ReadAll(dir_ + "/n.key");
  Fails({"keygen", "n", "--dir", dir_}, 1,
        absl::StrCat(dir_,
                     "/n.key exists; not overwritten (--force "
                     "replaces the pair)"));
  EXPECT_EQ(ReadAll(dir_ + "/n.key"), before);

  const RunResult r = Ok({"keygen", "n", "--dir", dir_, "--force"});
  EXPECT_NE(ReadAll(dir_ + "/n.key"), before);
  FABRIC_ASSERT_OK_AND_ASSIGN(const security::CurveKeypair keypair,
                              security::LoadKeyFile(dir_ + "/n.key"));
  EXPECT_THAT(r.out, HasSubstr(security::Z85Key(keypair.public_key)));
  EXPECT_EQ(Mode(dir_ + "/n.key"), 0600u);
  EXPECT_EQ(Mode(dir_ + "/n.pub"), 0644u);
}

TEST_F(KeygenCliTest, BeaconKeyringRotatesInThreeSteps) {
  const std::string ring = dir_ + "/beacon.secret";
  EXPECT_THAT(Ok({"keygen", "--beacon-secret", ring}).out,
              HasSubstr("key id 1, primary"));
  EXPECT_EQ(Mode(ring), 0600u);
  security::BeaconSecrets s = LoadKeyring(ring);
  EXPECT_EQ(s.primary, 1);
  ASSERT_EQ(s.secrets.size(), 1u);
  const std::string first = s.secrets.at(1);
  Fails({"keygen", "--beacon-secret", ring}, 1, "exists");

  // Install: a second id, not yet used to send.
  EXPECT_THAT(Ok({"keygen", "--beacon-secret", ring, "--add"}).out,
              HasSubstr("added key id 2"));
  s = LoadKeyring(ring);
  EXPECT_EQ(s.primary, 1);
  ASSERT_EQ(s.secrets.size(), 2u);
  EXPECT_EQ(s.secrets.at(1), first);
  const std::string second = s.secrets.at(2);
  EXPECT_NE(second, first);

  // Use: id 2 becomes the primary; the secrets stay.
  Ok({"keygen", "--beacon-secret", ring, "--primary", "2"});
  s = LoadKeyring(ring);
  EXPECT_EQ(s.primary, 2);
  EXPECT_EQ(s.secrets.at(1), first);
  EXPECT_EQ(s.secrets.at(2), second);
  Fails({"keygen", "--beacon-secret", ring, "--remove", "2"}, 1,
        "key id 2 is the primary of");
  Fails({"keygen", "--beacon-secret", ring, "--primary", "7"}, 1,
        "has no key id 7");

  // Remove: id 1 goes.
  const RunResult removed =
      Ok({"keygen", "--beacon-secret", ring, "--remove", "1"});
  s = LoadKeyring(ring);
  EXPECT_EQ(s.primary, 2);
  ASSERT_EQ(s.secrets.size(), 1u);
  EXPECT_EQ(s.secrets.at(2), second);
  Fails({"keygen", "--beacon-secret", ring, "--remove", "1"}, 1,
        "has no key id 1");
  // The next id is above the highest, not the one just removed.
  EXPECT_THAT(Ok({"keygen", "--beacon-secret", ring, "--add"}).out,
              HasSubstr("added key id 3"));
  EXPECT_EQ(Mode(ring), 0600u);

  // No step printed a secret.
  for (const std::string& secret : {first, second}) {
    EXPECT_THAT(removed.out, Not(HasSubstr(absl::Base64Escape(secret))));
  }
}

TEST_F(KeygenCliTest, UnsafeOrMissingKeyringIsRefused) {
  const std::string ring = dir_ + "/beacon.secret";
  Fails({"keygen", "--beacon-secret", ring, "--add"}, 1,
        "FAB-SEC-BEACON-MISSING");
  Ok({"keygen", "--beacon-secret", ring});
  ASSERT_EQ(chmod(ring.c_str(), 0640), 0);
  Fails({"keygen", "--beacon-secret", ring, "--add"}, 1,
        absl::StrCat("FAB-SEC-BEACON-PERMS ", ring, " has mode 0640"));
  ASSERT_EQ(chmod(ring.c_str(), 0600), 0);
  EXPECT_EQ(LoadKeyring(ring).secrets.size(), 1u);  // unchanged
}

TEST_F(KeygenCliTest, BadArgumentsExitTwo) {
  const std::string ring = dir_ + "/beacon.secret";
  Fails({"keygen"}, 2, "keygen needs NAME");
  Fails({"keygen", "../n"}, 2, "a key name is");
  Fails({"keygen", "n", "--beacon-secret", ring}, 2, "not both");
  Fails({"keygen", "n", "--add"}, 2, "need --beacon-secret");
  Fails({"keygen", "--beacon-secret", ring, "--force"}, 2, "go with NAME");
  Fails({"keygen", "--beacon-secret", ring, "--add", "--remove", "1"}, 2,
        "one of --add");
  Fails({"keygen", "--beacon-secret", ring, "--primary", "0"}, 2, "1..255");
  Fails({"keygen", "--beacon-secret", ring, "--remove", "256"}, 2, "1..255");
  Fails({"keygen", "--beacon-secret", ring, "--primary", "x"}, 2, "--primary");
  EXPECT_FALSE(std::filesystem::exists(ring));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/n.key"));
}

TEST_F(KeygenCliTest, ExecCommandsDoNotSeeSecretFileVariables) {
  const std::string keys = dir_ + "/keys";
  const std::string roster = dir_ + "/roster";
  Ok({"keygen", "node", "--dir", keys});
  Ok({"keygen", "--beacon-secret", keys + "/beacon.secret"});
  ASSERT_EQ(mkdir(roster.c_str(), 0755), 0);
  std::filesystem::copy_file(keys + "/node.pub", roster + "/node.pub");
  // The variables point at real files, so a node that reads them (secure
  // mode) still runs, on both ends; FABRIC_PASSED_ON is the control.
  const std::vector<std::string> env = {
      "FABRIC_KEY_FILE=" + keys + "/node.key", "FABRIC_ROSTER=" + roster,
      "FABRIC_BEACON_SECRET_FILE=" + keys + "/beacon.secret",
      "FABRIC_PASSED_ON=marker"};
  auto spawn = [&](std::vector<std::string> args) {
    args.insert(args.begin(), FABRIC_CLI_PATH);
    for (std::string& f : cli_.ClusterFlags()) args.push_back(std::move(f));
    return Subprocess::Spawn(std::move(args), env);
  };
  auto expect_clean = [](const std::string& seen) {
    EXPECT_THAT(seen, HasSubstr("FABRIC_PASSED_ON=marker"));  // the control
    for (const char* name :
         {"FABRIC_KEY_FILE=", "FABRIC_ROSTER=", "FABRIC_BEACON_SECRET_FILE="}) {
      EXPECT_THAT(seen, Not(HasSubstr(name))) << seen;
    }
  };

  // serve --exec: the reply is the command's environment.
  FABRIC_ASSERT_OK_AND_ASSIGN(auto server,
                              spawn({"serve", "env", "--exec", "env"}));
  FABRIC_ASSERT_OK(server->WaitForReady("READY ", kTimeout).status());
  FABRIC_ASSERT_OK_AND_ASSIGN(auto req,
                              spawn({"req", "env", "x", "--timeout", "30000"}));
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult reply, Finish(*req));
  ASSERT_EQ(reply.exit_code, 0) << reply.err;
  EXPECT_THAT(reply.out, HasSubstr("FABRIC_SERVICE=env"));
  expect_clean(reply.out);

  // work --exec: the command prints its environment to the worker's stderr.
  FABRIC_ASSERT_OK_AND_ASSIGN(auto worker, spawn({"work", "jobs", "--exec",
                                                  "env >&2", "--count", "1"}));
  FABRIC_ASSERT_OK(worker->WaitForReady("READY ", kTimeout).status());
  FABRIC_ASSERT_OK_AND_ASSIGN(
      auto push, spawn({"push", "jobs", "one", "--timeout", "30s"}));
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult pushed, Finish(*push));
  ASSERT_EQ(pushed.exit_code, 0) << pushed.err;
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult worked, Finish(*worker));
  ASSERT_EQ(worked.exit_code, 0) << worked.err;
  EXPECT_THAT(worked.err, HasSubstr("FABRIC_TASK_ID="));
  expect_clean(worked.err);
}

}  // namespace
}  // namespace fabric
