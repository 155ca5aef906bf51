// SPDX-License-Identifier: Apache-2.0
// The files of secure mode through the real `fabric` binary (plan S9 and
// S13 of security-anchors.md at the CLI level): unsafe or broken key files,
// an open roster and an open beacon secret are refused with exit 1, the
// FAB-SEC-* id and the path, before READY, never echoing the secret, while
// 0600 and 0400 are accepted; an `--exec` command's environment and the
// node's own command line and environment hold no key material; an
// explicit `--security off` beats the environment; and `fabric security
// check` passing and failing; and (S12) a shared spool or state directory
// refused unless --allow-shared-files. Patterns, S3, SIGHUP and the relay are
// in secure_cli_test.cc (one file would pass STYLE.md's 800 lines).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cli_harness.h"
#include "tests/testing/secure_cli_harness.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::testing::Fingerprint;
using ::fabric::testing::Finish;
using ::fabric::testing::kSecureWait;
using ::fabric::testing::ReadFile;
using ::fabric::testing::RunResult;
using ::fabric::testing::SecretText;
using ::fabric::testing::Subprocess;
using ::fabric::testing::WaitUntil;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

void WriteFile(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
}

class SecureCliFilesTest : public testing::SecureCliFixture {
 protected:
  void SetUp() override {
    SecureCliFixture::SetUp();
    Members({"n"});
    secret_ = SecretText(keys_.key_file("n"));
    ASSERT_FALSE(secret_.empty());
    key_text_ = ReadFile(keys_.key_file("n"));
  }

  // A copy of n's key file at DIR/NAME with `mode`.
  std::string KeyCopy(const std::string& name, mode_t mode) {
    const std::string path = absl::StrCat(cli_.dir(), "/", name);
    WriteFile(path, key_text_, mode);
    return path;
  }

  // `fabric node` with these files (at debug level, so every log line that
  // could carry a secret is printed) must exit 1 before READY, naming `id`
  // and `path` on stderr, with the secret nowhere.
  void Refused(const std::string& key, const std::string& roster,
               const std::string& beacon, const std::string& id,
               const std::string& path) {
    SCOPED_TRACE(absl::StrCat(id, " ", path));
    FABRIC_ASSERT_OK_AND_ASSIGN(
        RunResult r,
        Run({"node", "--name", "n", "--log-level", "debug", "--key", key,
             "--roster", roster, "--beacon-secret", beacon}));
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr(absl::StrCat("fabric: ", id, " ", path)));
    EXPECT_THAT(r.out, Not(HasSubstr("READY")));
    EXPECT_THAT(r.out, Not(HasSubstr(secret_)));
    EXPECT_THAT(r.err, Not(HasSubstr(secret_)));
  }
  void KeyRefused(const std::string& key, const std::string& id) {
    Refused(key, keys_.roster_dir(), keys_.beacon_secret_file(), id, key);
  }

  // `fabric node` with `key` starts (READY) and stops cleanly on SIGTERM.
  void KeyAccepted(const std::string& key) {
    SCOPED_TRACE(key);
    FABRIC_ASSERT_OK_AND_ASSIGN(
        Subprocess * node,
        Start({"node", "--name", "n", "--key", key, "--roster",
               keys_.roster_dir(), "--beacon-secret",
               keys_.beacon_secret_file()}));
    node->Signal(SIGTERM);
    FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, Finish(*node));
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }

  // `fabric security check <args>` with the cluster flags.
  RunResult Check(std::vector<std::string> args,
                  std::vector<std::string> env = {}) {
    args.insert(args.begin(), {FABRIC_CLI_PATH, "security", "check"});
    for (std::string& f : cli_.ClusterFlags()) args.push_back(std::move(f));
    absl::StatusOr<std::unique_ptr<Subprocess>> proc =
        Subprocess::Spawn(std::move(args), std::move(env));
    EXPECT_THAT(proc, testing::IsOk());
    if (!proc.ok()) return {};
    absl::StatusOr<RunResult> r = Finish(**proc, kSecureWait);
    EXPECT_THAT(r, testing::IsOk());
    if (!r.ok()) return {};
    EXPECT_THAT(r->out, Not(HasSubstr(secret_)));
    EXPECT_THAT(r->err, Not(HasSubstr(secret_)));
    return *std::move(r);
  }

  std::string secret_;    // Z85 of n's secret key
  std::string key_text_;  // n's whole key file
};

TEST_F(SecureCliFilesTest, KeyFilesThatAreNotOwnerOnlyAreRefused) {
  for (const mode_t mode : {0644, 0640, 0604, 0660, 0700 | 0004}) {
    KeyRefused(KeyCopy(absl::StrCat("k", mode, ".key"), mode),
               "FAB-SEC-KEY-PERMS");
  }
  // Owner-only but someone else's: refused too (chown needs root).
  if (::geteuid() == 0) {
    const std::string theirs = KeyCopy("theirs.key", 0600);
    ASSERT_EQ(::chown(theirs.c_str(), 65534, 65534), 0);
    KeyRefused(theirs, "FAB-SEC-KEY-PERMS");
  }
  // The mode is named too, so the fix is obvious.
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult r,
      Run({"node", "--key", KeyCopy("open.key", 0644), "--roster",
           keys_.roster_dir(), "--beacon-secret", keys_.beacon_secret_file()}));
  EXPECT_THAT(r.err, HasSubstr("has mode 0644"));
}

TEST_F(SecureCliFilesTest, SymlinkedMissingEmptyAndGarbageKeysAreRefused) {
  const std::string target = KeyCopy("target.key", 0600);
  const std::string link = cli_.dir() + "/link.key";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  KeyRefused(link, "FAB-SEC-KEY-PERMS");
  KeyRefused(cli_.dir() + "/missing.key", "FAB-SEC-KEY-MISSING");

  const std::string empty = cli_.dir() + "/empty.key";
  WriteFile(empty, "", 0600);
  KeyRefused(empty, "FAB-SEC-KEY-FORMAT");
  const std::string garbage = cli_.dir() + "/garbage.key";
  WriteFile(garbage, std::string("\x01\xff garbage\n\0\x7f", 14), 0600);
  KeyRefused(garbage, "FAB-SEC-KEY-FORMAT");
  // The real secret next to a public key that is not its own: refused
  // without quoting the secret line.
  const std::string other_pub =
      absl::StrCat("public-key = ", security::Z85Key(std::string(32, 'x')));
  std::string mismatched;
  for (absl::string_view line : absl::StrSplit(key_text_, '\n')) {
    absl::StrAppend(&mismatched,
                    absl::StartsWith(line, "public-key") ? other_pub : line,
                    "\n");
  }
  ASSERT_THAT(mismatched, HasSubstr(secret_));
  const std::string wrong = cli_.dir() + "/mismatched.key";
  WriteFile(wrong, mismatched, 0600);
  KeyRefused(wrong, "FAB-SEC-KEY-FORMAT");
}

TEST_F(SecureCliFilesTest, OpenRosterAndOpenBeaconSecretAreRefused) {
  const std::string open_roster = keys_.MakeRoster("open");
  keys_.AddToRoster("n", open_roster);
  ASSERT_EQ(::chmod(open_roster.c_str(), 0777), 0);
  Refused(keys_.key_file("n"), open_roster, keys_.beacon_secret_file(),
          "FAB-SEC-ROSTER-PERMS", open_roster);

  const std::string beacon = cli_.dir() + "/beacon.secret";
  WriteFile(beacon, ReadFile(keys_.beacon_secret_file()), 0644);
  Refused(keys_.key_file("n"), keys_.roster_dir(), beacon,
          "FAB-SEC-BEACON-PERMS", beacon);
  // Its secret is not echoed either.
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult r, Run({"node", "--key", keys_.key_file("n"), "--roster",
                        keys_.roster_dir(), "--beacon-secret", beacon}));
  std::string base64;  // the secret of "ID BASE64 [primary]"
  for (absl::string_view line : absl::StrSplit(ReadFile(beacon), '\n')) {
    const std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() >= 2 && !absl::StartsWith(line, "#")) base64 = f[1];
  }
  ASSERT_GE(base64.size(), 40u) << ReadFile(beacon).size();
  EXPECT_THAT(r.err, Not(HasSubstr(base64)));
  EXPECT_THAT(r.out, Not(HasSubstr(base64)));
}

TEST_F(SecureCliFilesTest, OwnerOnlyKeysAreAccepted) {
  KeyAccepted(KeyCopy("rw.key", 0600));
  KeyAccepted(KeyCopy("ro.key", 0400));
}

// An explicit `--security off` flag beats security files named in the
// environment (flags beat the environment); without it those files make
// the node secure, and refuse to start when they are missing.
TEST_F(SecureCliFilesTest, ExplicitSecurityOffBeatsTheEnvironment) {
  const std::vector<std::string> env = {
      "FABRIC_KEY_FILE=" + cli_.dir() + "/missing.key",
      "FABRIC_ROSTER=" + keys_.roster_dir(),
      "FABRIC_BEACON_SECRET_FILE=" + keys_.beacon_secret_file()};
  auto spawn = [&](std::vector<std::string> args) {
    args.insert(args.begin(), FABRIC_CLI_PATH);
    for (std::string& f : cli_.ClusterFlags()) args.push_back(std::move(f));
    return Subprocess::Spawn(std::move(args), env);
  };
  FABRIC_ASSERT_OK_AND_ASSIGN(auto secure, spawn({"node"}));
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult refused, Finish(*secure));
  EXPECT_EQ(refused.exit_code, 1) << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("FAB-SEC-KEY-MISSING"));

  FABRIC_ASSERT_OK_AND_ASSIGN(
      Subprocess * plain,
      Keep(spawn({"node", "--security", "off", "--log-level", "info"}),
           testing::kReadyPrefix));
  plain->Signal(SIGTERM);
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult r, Finish(*plain));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("security=off"));

  FABRIC_ASSERT_OK_AND_ASSIGN(auto both, spawn({"node", "--security", "off",
                                                "--key", keys_.key_file("n")}));
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult usage, Finish(*both));
  EXPECT_EQ(usage.exit_code, 2) << usage.err;
  EXPECT_THAT(usage.err, HasSubstr("--security off contradicts --key"));
}

// S13: the node gets its files from the FABRIC_* variables; the `--exec`
// command, which prints its whole environment, sees none of them and no
// key material, and the node's own command line and environment hold
// paths only.
TEST_F(SecureCliFilesTest, ExecChildrenAndTheProcessTableHoldNoSecrets) {
  Members({"p"});
  const std::vector<std::string> env = {
      "FABRIC_KEY_FILE=" + keys_.key_file("n"),
      "FABRIC_ROSTER=" + keys_.roster_dir(),
      "FABRIC_BEACON_SECRET_FILE=" + keys_.beacon_secret_file()};
  std::vector<std::string> argv = {FABRIC_CLI_PATH, "work",        "jobs",
                                   "--name",        "n",           "--exec",
                                   "env",           "--log-level", "debug"};
  for (std::string& f : cli_.ClusterFlags()) argv.push_back(std::move(f));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      Subprocess * worker,
      Keep(Subprocess::Spawn(argv, env), testing::kReadyPrefix));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult push, Run(As("p", {"push", "jobs", "one task", "--timeout",
                                   "40s", "--name", "p"})));
  ASSERT_EQ(push.exit_code, 0) << push.out << push.err;
  ASSERT_TRUE(WaitUntil(
      [&] { return absl::StrContains(worker->Stderr(), "FABRIC_TASK_ID="); },
      kSecureWait))
      << worker->Stderr();
  // The node runs with the variables (positive control)...
  const std::string environ = absl::StrReplaceAll(
      ReadFile(absl::StrCat("/proc/", worker->pid(), "/environ")),
      {{std::string(1, '\0'), "\n"}});
  EXPECT_THAT(environ, HasSubstr("FABRIC_KEY_FILE=" + keys_.key_file("n")));
  EXPECT_THAT(environ, Not(HasSubstr(secret_)));
  // ...its command line holds no path or key, being given none...
  const std::string cmdline =
      ReadFile(absl::StrCat("/proc/", worker->pid(), "/cmdline"));
  EXPECT_THAT(cmdline, Not(HasSubstr(secret_)));
  // ...and the command it ran sees neither the variables nor the secret.
  worker->Signal(SIGTERM);
  FABRIC_ASSERT_OK_AND_ASSIGN(RunResult w, Finish(*worker));
  EXPECT_EQ(w.exit_code, 0) << w.err;
  EXPECT_THAT(w.err, HasSubstr("FABRIC_QUEUE=jobs"));
  for (const char* var :
       {"FABRIC_KEY_FILE=", "FABRIC_ROSTER=", "FABRIC_BEACON_SECRET_FILE="}) {
    EXPECT_THAT(w.err, Not(HasSubstr(var))) << var;
  }
  EXPECT_THAT(w.err, Not(HasSubstr(secret_)));
  EXPECT_THAT(w.out, Not(HasSubstr(secret_)));

  // Files given as flags: argv (world-readable) holds the paths, never
  // key material.
  FABRIC_ASSERT_OK_AND_ASSIGN(Subprocess * node,
                              Start(As("n", {"node", "--name", "n2"})));
  const std::vector<std::string> args = absl::StrSplit(
      ReadFile(absl::StrCat("/proc/", node->pid(), "/cmdline")), '\0');
  EXPECT_THAT(args, Contains(keys_.key_file("n")));
  EXPECT_THAT(args, Contains(keys_.beacon_secret_file()));
  for (const std::string& a : args) {
    EXPECT_THAT(a, Not(HasSubstr(secret_)));
  }
}

TEST_F(SecureCliFilesTest, SecurityCheckPassesOnAGoodSetUp) {
  const RunResult r = Check(Secure("n"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string fp = Fingerprint(keys_, "n");
  EXPECT_THAT(r.lines, Contains(StartsWith("ok curve libzmq ")));
  EXPECT_THAT(r.lines, Contains(absl::StrCat("ok key ", keys_.key_file("n"),
                                             ": name 'n', fingerprint ", fp)));
  EXPECT_THAT(r.lines, Contains(absl::StrCat("ok roster ", keys_.roster_dir(),
                                             ": 1 key")));
  EXPECT_THAT(r.lines, Contains(StartsWith("ok self ")));
  EXPECT_THAT(r.lines, Contains(AllOf(StartsWith("ok beacon-secret "),
                                      HasSubstr("key ids 1, primary 1"))));
  EXPECT_THAT(r.lines, Contains(AllOf(StartsWith("ok zap-mailbox tcp://"),
                                      HasSubstr("a random key refused"))));
  EXPECT_THAT(r.lines, Contains(StartsWith("ok zap-publisher tcp://")));
  for (const std::string& line : r.lines) {
    EXPECT_THAT(line, StartsWith("ok ")) << r.out;
  }

  // The same files through the environment, and a seed named by its
  // roster entry (seeds mode needs no beacon secret).
  const RunResult env =
      Check({"--discovery", "seeds", "--seed", "tcp://127.0.0.1:9#n"},
            {"FABRIC_KEY_FILE=" + keys_.key_file("n"),
             "FABRIC_ROSTER=" + keys_.roster_dir()});
  ASSERT_EQ(env.exit_code, 0) << env.out << env.err;
  EXPECT_THAT(env.lines, Contains("ok beacon-secret none: seeds discovery "
                                  "sends no beacons"));
  EXPECT_THAT(env.lines,
              Contains(absl::StrCat("ok seed tcp://127.0.0.1:9#n: roster "
                                    "entry 'n', fingerprint ",
                                    fp)));

  // A secret key file left in the roster is a warning (the node starts,
  // skipping it), printed once.
  const std::string roster = keys_.MakeRoster("with-secret");
  keys_.AddToRoster("n", roster);
  WriteFile(roster + "/n.key", key_text_, 0600);
  const RunResult warned = Check(Secure("n", roster));
  ASSERT_EQ(warned.exit_code, 0) << warned.out << warned.err;
  EXPECT_THAT(warned.lines,
              Contains(StartsWith(absl::StrCat(
                  "warn roster FAB-SEC-ROSTER-SECRET ", roster, "/n.key"))));
  EXPECT_THAT(warned.err, Not(HasSubstr("FAB-SEC-ROSTER-SECRET")));
}

TEST_F(SecureCliFilesTest, SecurityCheckNamesEachFailure) {
  // An open key file: that line fails, the others still run, no self-test.
  const std::string open = KeyCopy("open.key", 0644);
  RunResult r = Check({"--key", open, "--roster", keys_.roster_dir(),
                       "--beacon-secret", keys_.beacon_secret_file()});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(
      r.lines,
      Contains(StartsWith(absl::StrCat("FAIL key FAB-SEC-KEY-PERMS ", open))));
  EXPECT_THAT(r.lines, Contains(StartsWith("ok roster ")));
  EXPECT_THAT(r.lines, Contains(StartsWith("ok beacon-secret ")));
  EXPECT_THAT(r.lines, Contains(StartsWith("skip zap ")));
  EXPECT_THAT(r.err, HasSubstr("fabric: security check: 1 of "));

  // A roster without this node's key.
  Members({"other"});
  const std::string others = keys_.MakeRoster("others");
  keys_.AddToRoster("other", others);
  r = Check(Secure("n", others));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.lines, Contains(StartsWith("FAIL self FAB-SEC-ROSTER-SELF")));

  // Nothing configured at all: each missing piece is its own line.
  r = Check({});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.lines, Contains(StartsWith("FAIL key FAB-SEC-KEY-MISSING")));
  EXPECT_THAT(r.lines,
              Contains(StartsWith("FAIL roster FAB-SEC-ROSTER-MISSING")));
  EXPECT_THAT(
      r.lines,
      Contains(StartsWith("FAIL beacon-secret FAB-SEC-BEACON-MISSING")));

  // An open beacon secret, and a seed the roster does not know.
  const std::string beacon = cli_.dir() + "/beacon.secret";
  WriteFile(beacon, ReadFile(keys_.beacon_secret_file()), 0644);
  std::vector<std::string> args = Secure("n");
  args.back() = beacon;
  r = Check(args);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.lines,
              Contains(StartsWith(absl::StrCat(
                  "FAIL beacon-secret FAB-SEC-BEACON-PERMS ", beacon))));
  r = Check({"--key", keys_.key_file("n"), "--roster", keys_.roster_dir(),
             "--seed", "tcp://127.0.0.1:9#nobody"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.lines, Contains(StartsWith("FAIL seed FAB-SEC-SEED-KEY")));
  // A usage error stays a usage error.
  r = Check({"--security", "sometimes"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.lines, IsEmpty());
}

// S12 through the binary: a secure `push --spool` on a spool and a secure
// `sub --durable` on a state directory that an earlier release left 0755
// exit 1 before READY, naming FAB-SEC-FILE-PERMS, the path and the flag;
// `--allow-shared-files` takes them as they are, and so does plaintext
// mode (the control).
TEST_F(SecureCliFilesTest, SharedSpoolAndStateDirAreRefusedUnlessAllowed) {
  const std::string spool = cli_.dir() + "/spool";
  const std::string subs = cli_.dir() + "/subs";
  {
    testing::ScopedUmask loose(022);
    ASSERT_EQ(::mkdir(spool.c_str(), 0777), 0);
    ASSERT_EQ(::mkdir(subs.c_str(), 0777), 0);
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(
      RunResult r, Run(As("n", {"push", "q", "hello", "--spool", spool})));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.err, AllOf(HasSubstr(absl::StrCat("FAB-SEC-FILE-PERMS ", spool,
                                                  " has mode 0755")),
                           HasSubstr("--allow-shared-files")));
  EXPECT_THAT(r.out, Not(HasSubstr("READY")));
  FABRIC_ASSERT_OK_AND_ASSIGN(r, Run(As("n", {"push", "q", "hello", "--spool",
                                              spool, "--allow-shared-files"})));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("pushed 1 confirmed 1"));
  FABRIC_ASSERT_OK_AND_ASSIGN(
      r, Run({"push", "q", "again", "--spool", spool}));  // plaintext
  EXPECT_EQ(r.exit_code, 0) << r.err;

  const std::vector<std::string> sub = {"sub", "t",           "--durable",
                                        "d",   "--state-dir", subs};
  FABRIC_ASSERT_OK_AND_ASSIGN(r, Run(As("n", sub)));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("FAB-SEC-FILE-PERMS ", subs,
                                            " has mode 0755")));
  EXPECT_THAT(r.out, Not(HasSubstr("READY")));
  std::vector<std::string> allowed = sub;
  allowed.push_back("--allow-shared-files");
  FABRIC_ASSERT_OK_AND_ASSIGN(Subprocess * node, Start(As("n", allowed)));
  node->Signal(SIGTERM);
  FABRIC_ASSERT_OK_AND_ASSIGN(r, Finish(*node));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // Owner-only again: accepted without the flag.
  ASSERT_EQ(::chmod(subs.c_str(), 0700), 0);
  FABRIC_ASSERT_OK_AND_ASSIGN(node, Start(As("n", sub)));
  node->Signal(SIGTERM);
  FABRIC_ASSERT_OK_AND_ASSIGN(r, Finish(*node));
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
}  // namespace fabric
