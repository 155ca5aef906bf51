// SPDX-License-Identifier: Apache-2.0
// Secure-mode process tests of the real `fabric` binary: a CliCluster (own
// cluster name, beacon port and temp dir) plus key material for its members
// (SecureCluster), the flags that make a process a secure member, and every
// process started kept and stopped by PID at the end. Test-only;
// header-only. The test target defines FABRIC_CLI_PATH.
#ifndef FABRIC_TESTS_TESTING_SECURE_CLI_HARNESS_H_
#define FABRIC_TESTS_TESTING_SECURE_CLI_HARNESS_H_

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "fabric/security/keys.h"
#include "gtest/gtest.h"
#include "tests/testing/cli_harness.h"
#include "tests/testing/secure_util.h"
#include "tests/testing/subprocess.h"

namespace fabric::testing {

inline constexpr absl::Duration kSecureWait = absl::Seconds(60);

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The Z85 text of the secret key in `key_file`, to look for in output that
// must never hold it. Empty (and a test failure) when it does not load.
inline std::string SecretText(const std::string& key_file) {
  absl::StatusOr<security::CurveKeypair> k = security::LoadKeyFile(key_file);
  EXPECT_TRUE(k.ok()) << k.status();
  return k.ok() ? security::Z85Key(k->secret_key) : std::string();
}

// The fingerprint of member `name`'s public key (its .pub file).
inline std::string Fingerprint(const SecureCluster& keys,
                               const std::string& name) {
  absl::StatusOr<security::Roster> r =
      security::LoadRoster(keys.keys_dir(), nullptr);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return "";
  const security::RosterEntry* e = r->FindByName(name);
  EXPECT_NE(e, nullptr) << name;
  return e == nullptr ? "" : security::KeyFingerprint(e->public_key);
}

// Thread safety: thread-compatible; one per test.
class SecureCliFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cli_.usable()) << "no free UDP port or temp dir";
  }
  void TearDown() override {
    for (auto& p : procs_) p->Stop();
    std::error_code ignored;
    std::filesystem::remove_all(keys_.dir(), ignored);
  }

  // Makes keypairs for `names`, each in the shared roster.
  void Members(const std::vector<std::string>& names) {
    for (const std::string& n : names) keys_.AddMember(n);
  }

  // --key, --roster and --beacon-secret of member `name` (paths only).
  std::vector<std::string> Secure(const std::string& name,
                                  const std::string& roster = "") const {
    return {"--key",           keys_.key_file(name),
            "--roster",        roster.empty() ? keys_.roster_dir() : roster,
            "--beacon-secret", keys_.beacon_secret_file()};
  }

  // `args` followed by member `name`'s security flags.
  std::vector<std::string> As(const std::string& name,
                              std::vector<std::string> args,
                              const std::string& roster = "") const {
    for (std::string& f : Secure(name, roster)) args.push_back(std::move(f));
    return args;
  }

  // Starts `fabric <args> <cluster flags>` on `side` and waits for READY;
  // the process is stopped at the end of the test.
  absl::StatusOr<Subprocess*> StartOn(const CliCluster& side,
                                      std::vector<std::string> args) {
    return Keep(side.Spawn(std::move(args)), kReadyPrefix);
  }
  absl::StatusOr<Subprocess*> Start(std::vector<std::string> args) {
    return StartOn(cli_, std::move(args));
  }
  absl::StatusOr<Subprocess*> Keep(
      absl::StatusOr<std::unique_ptr<Subprocess>> proc,
      absl::string_view ready) {
    if (!proc.ok()) return proc.status();
    Subprocess* p = proc->get();
    procs_.push_back(std::move(*proc));
    absl::Status line = p->WaitForReady(ready, kCliReadyTimeout).status();
    if (!line.ok()) return line;
    return p;
  }

  // Runs `fabric <args> <cluster flags>` to completion.
  absl::StatusOr<RunResult> Run(std::vector<std::string> args) const {
    return cli_.Run(std::move(args), kSecureWait);
  }

  CliCluster cli_{"secure-cli"};
  SecureCluster keys_;
  std::vector<std::unique_ptr<Subprocess>> procs_;
};

// Lines of `proc`'s stdout that start with `prefix`.
inline std::vector<std::string> LinesStarting(const Subprocess& proc,
                                              absl::string_view prefix) {
  std::vector<std::string> out;
  for (const std::string& line : proc.StdoutLines()) {
    if (absl::StartsWith(line, prefix)) out.push_back(line);
  }
  return out;
}

// Bodies ("msg-N") of the `task ...` lines a worker printed.
inline std::vector<std::string> TaskBodies(const Subprocess& worker) {
  std::vector<std::string> out;
  for (const std::string& line : LinesStarting(worker, "task ")) {
    out.push_back(line.substr(line.rfind(' ') + 1));
  }
  return out;
}

}  // namespace fabric::testing

#endif  // FABRIC_TESTS_TESTING_SECURE_CLI_HARNESS_H_
