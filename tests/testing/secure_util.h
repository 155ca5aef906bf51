// SPDX-License-Identifier: Apache-2.0
// Key material for secure-mode tests: a temporary directory with one key
// file per member, a roster directory of their public keys and a beacon
// secret, made through the same code as `fabric keygen`.
#ifndef FABRIC_TESTS_TESTING_SECURE_UTIL_H_
#define FABRIC_TESTS_TESTING_SECURE_UTIL_H_

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "fabric/node_options.h"
#include "fabric/security/keys.h"
#include "gtest/gtest.h"
#include "tests/testing/test_util.h"

namespace fabric::testing {

// Thread safety: thread-compatible; one per test.
class SecureCluster {
 public:
  // `roster` (relative names allowed) is made empty; members are added
  // with AddMember.
  SecureCluster() : dir_(MakeTempDir("fabric-secure")) {
    ::mkdir(keys_dir().c_str(), 0700);
    ::mkdir(roster_dir().c_str(), 0755);
    security::BeaconSecrets secrets;
    secrets.secrets[1] = security::RandomBeaconSecret();
    secrets.primary = 1;
    absl::Status written =
        security::WriteBeaconSecrets(beacon_secret_file(), secrets);
    EXPECT_TRUE(written.ok()) << written;
  }

  const std::string& dir() const { return dir_; }
  std::string keys_dir() const { return dir_ + "/keys"; }
  std::string roster_dir() const { return dir_ + "/roster"; }
  std::string beacon_secret_file() const { return dir_ + "/beacon.secret"; }
  std::string key_file(const std::string& name) const {
    return absl::StrCat(keys_dir(), "/", name, ".key");
  }
  std::string pub_file(const std::string& name) const {
    return absl::StrCat(keys_dir(), "/", name, ".pub");
  }

  // Makes a keypair for `name`; with `in_roster`, its .pub joins the roster.
  // Returns the raw public key.
  std::string AddMember(const std::string& name, bool in_roster = true) {
    absl::StatusOr<security::CurveKeypair> k = security::GenerateKeypair(name);
    EXPECT_TRUE(k.ok()) << k.status();
    if (!k.ok()) return "";
    absl::Status w = security::WriteKeypair(keys_dir(), *k, false);
    EXPECT_TRUE(w.ok()) << w;
    if (in_roster) AddToRoster(name);
    return k->public_key;
  }
  void AddToRoster(const std::string& name, const std::string& roster = "") {
    const std::string dest =
        absl::StrCat(roster.empty() ? roster_dir() : roster, "/", name, ".pub");
    std::ifstream in(pub_file(name));
    std::stringstream text;
    text << in.rdbuf();
    std::ofstream(dest) << text.str();
    ::chmod(dest.c_str(), 0644);
  }
  void RemoveFromRoster(const std::string& name,
                        const std::string& roster = "") {
    const std::string path =
        absl::StrCat(roster.empty() ? roster_dir() : roster, "/", name, ".pub");
    EXPECT_EQ(::unlink(path.c_str()), 0) << path;
  }
  // A second roster directory (for a node that trusts a different set).
  std::string MakeRoster(const std::string& label) {
    const std::string path = absl::StrCat(dir_, "/roster-", label);
    ::mkdir(path.c_str(), 0755);
    return path;
  }

  // Secure options for member `name` with this cluster's files.
  SecurityOptions Options(const std::string& name,
                          const std::string& roster = "") const {
    SecurityOptions o;
    o.key_file = key_file(name);
    o.roster_dir = roster.empty() ? roster_dir() : roster;
    o.beacon_secret_file = beacon_secret_file();
    return o;
  }

 private:
  std::string dir_;
};

}  // namespace fabric::testing

#endif  // FABRIC_TESTS_TESTING_SECURE_UTIL_H_
