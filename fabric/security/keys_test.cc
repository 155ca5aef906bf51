// SPDX-License-Identifier: Apache-2.0
// Key material of secure mode (keys.h) on a real directory: Z85 and
// fingerprints, keypair files and their round trip, every refusal of a key
// file, a roster and a beacon keyring (each with the accepted case beside
// it), roster stamps, and that no refusal quotes a secret.
#include "fabric/security/keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_util.h"

namespace fabric::security {
namespace {

using ::fabric::testing::ScopedUmask;
using ::fabric::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

constexpr uid_t kNobody = 65534;
// The server keypair of zmq_curve(7), a known pair.
constexpr char kKnownPublic[] = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
constexpr char kKnownSecret[] = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";

static_assert(std::is_copy_constructible_v<CurveKeypair>);
static_assert(std::is_nothrow_move_constructible_v<Roster>);

class KeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fabric::testing::MakeTempDir("keys");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string Path(const std::string& name) const {
    return absl::StrCat(dir_, "/", name);
  }
  // Writes `text` to `path` with exactly `mode`.
  static void Write(const std::string& path, const std::string& text,
                    mode_t mode) {
    std::ofstream(path, std::ios::trunc) << text;
    ASSERT_EQ(chmod(path.c_str(), mode), 0) << path;
  }
  static std::string Read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  static mode_t Mode(const std::string& path) {
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) return 0;
    return st.st_mode & 07777;
  }
  // A key file holding `public_z85` and `secret_z85`.
  static std::string KeyText(const std::string& public_z85,
                             const std::string& secret_z85) {
    return absl::StrCat("# secret\nname = n\npublic-key = ", public_z85,
                        "\nsecret-key = ", secret_z85, "\n");
  }
  CurveKeypair NewKeypair(const std::string& name) {
    absl::StatusOr<CurveKeypair> keypair = GenerateKeypair(name);
    EXPECT_THAT(keypair, fabric::testing::IsOk());
    return keypair.ok() ? *std::move(keypair) : CurveKeypair{};
  }

  std::string dir_;
};

TEST_F(KeysTest, Z85RoundTripsAndRejectsWhatIsNotAKey) {
  FABRIC_ASSERT_OK_AND_ASSIGN(const std::string raw,
                              DecodeZ85Key(kKnownPublic));
  EXPECT_EQ(raw.size(), kCurveKeyBytes);
  EXPECT_EQ(Z85Key(raw), kKnownPublic);
  const std::string almost(kKnownPublic);
  EXPECT_THAT(DecodeZ85Key(almost.substr(1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeZ85Key(almost + "0"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeZ85Key(std::string(39, '0') + "~"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeZ85Key(std::string(39, '0') + " "),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(Z85Key("short"), "");
}

TEST_F(KeysTest, FingerprintIsHexOfTheFirstEightBytes) {
  std::string raw(32, '\0');
  for (int i = 0; i < 32; ++i) raw[i] = static_cast<char>(i * 17);
  EXPECT_EQ(KeyFingerprint(raw), "0011223344556677");
}

TEST_F(KeysTest, GeneratedKeypairsDifferAndCheckTheirName) {
  const CurveKeypair a = NewKeypair("node-a");
  const CurveKeypair b = NewKeypair("");
  EXPECT_EQ(a.name, "node-a");
  EXPECT_THAT(a.public_key, SizeIs(kCurveKeyBytes));
  EXPECT_THAT(a.secret_key, SizeIs(kCurveKeyBytes));
  EXPECT_NE(a.public_key, b.public_key);
  EXPECT_NE(a.secret_key, b.secret_key);
  for (const char* bad : {"../x", "a/b", "a b", ".hidden", "-x", "a\nb"}) {
    EXPECT_THAT(GenerateKeypair(bad),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
}

TEST_F(KeysTest, KeypairRoundTripsWithExactModesUnderAnyUmask) {
  for (mode_t mask : {mode_t{0}, mode_t{022}, mode_t{077}}) {
    SCOPED_TRACE(mask);
    ScopedUmask scoped(mask);
    const std::string name = absl::StrCat("n", mask);
    const CurveKeypair written = NewKeypair(name);
    FABRIC_ASSERT_OK(WriteKeypair(dir_, written, /*force=*/false));
    EXPECT_EQ(Mode(Path(name + ".key")), 0600u);
    EXPECT_EQ(Mode(Path(name + ".pub")), 0644u);
    FABRIC_ASSERT_OK_AND_ASSIGN(const CurveKeypair read,
                                LoadKeyFile(Path(name + ".key")));
    EXPECT_EQ(read.name, name);
    EXPECT_EQ(read.public_key, written.public_key);
    EXPECT_EQ(read.secret_key, written.secret_key);
  }
}

TEST_F(KeysTest, KeyFilesAreHumanCheckable) {
  const CurveKeypair keypair = NewKeypair("alice");
  FABRIC_ASSERT_OK(WriteKeypair(dir_, keypair, false));
  const std::string key = Read(Path("alice.key"));
  const std::string pub = Read(Path("alice.pub"));
  EXPECT_THAT(key, HasSubstr("SECRET"));
  EXPECT_THAT(key, HasSubstr("name = alice\n"));
  EXPECT_THAT(key, HasSubstr(absl::StrCat(
                       "public-key = ", Z85Key(keypair.public_key), "\n")));
  EXPECT_THAT(key, HasSubstr(absl::StrCat(
                       "secret-key = ", Z85Key(keypair.secret_key), "\n")));
  EXPECT_THAT(pub, HasSubstr("name = alice\n"));
  EXPECT_THAT(pub, HasSubstr(Z85Key(keypair.public_key)));
  EXPECT_THAT(pub, Not(HasSubstr("secret-key")));
  EXPECT_THAT(pub, Not(HasSubstr(Z85Key(keypair.secret_key))));
}

TEST_F(KeysTest, WriteKeypairRefusesToOverwriteWithoutForce) {
  const CurveKeypair first = NewKeypair("n");
  FABRIC_ASSERT_OK(WriteKeypair(dir_, first, false));
  const std::string before = Read(Path("n.key"));
  const CurveKeypair second = NewKeypair("n");
  EXPECT_THAT(WriteKeypair(dir_, second, false),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(Read(Path("n.key")), before);

  // A .pub alone also blocks, and no .key is left behind.
  const CurveKeypair third = NewKeypair("m");
  Write(Path("m.pub"), "x", 0644);
  EXPECT_THAT(WriteKeypair(dir_, third, false),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_FALSE(std::filesystem::exists(Path("m.key")));

  FABRIC_ASSERT_OK(WriteKeypair(dir_, second, /*force=*/true));
  FABRIC_ASSERT_OK_AND_ASSIGN(const CurveKeypair read,
                              LoadKeyFile(Path("n.key")));
  EXPECT_EQ(read.secret_key, second.secret_key);
  EXPECT_EQ(Mode(Path("n.key")), 0600u);
  EXPECT_EQ(Mode(Path("n.pub")), 0644u);
}

TEST_F(KeysTest, WriteKeypairNeverWritesThroughASymlink) {
  const std::string target = Path("target");
  Write(target, "untouched", 0644);
  ASSERT_EQ(symlink(target.c_str(), Path("n.key").c_str()), 0);
  const CurveKeypair keypair = NewKeypair("n");
  EXPECT_THAT(WriteKeypair(dir_, keypair, false),
              StatusIs(absl::StatusCode::kAlreadyExists));
  FABRIC_ASSERT_OK(WriteKeypair(dir_, keypair, /*force=*/true));
  EXPECT_EQ(Read(target), "untouched");
  FABRIC_EXPECT_OK(LoadKeyFile(Path("n.key")));  // a file now, not a link
}

TEST_F(KeysTest, WriteKeypairRefusesBadInput) {
  CurveKeypair keypair = NewKeypair("n");
  keypair.name = "../n";
  EXPECT_THAT(WriteKeypair(dir_, keypair, false),
              StatusIs(absl::StatusCode::kInvalidArgument));
  keypair.name = "n";
  keypair.public_key = NewKeypair("o").public_key;
  EXPECT_THAT(WriteKeypair(dir_, keypair, false),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(std::filesystem::exists(Path("n.key")));
}

TEST_F(KeysTest, KnownKeypairLoads) {
  const std::string path = Path("known.key");
  Write(path, KeyText(kKnownPublic, kKnownSecret), 0600);
  FABRIC_ASSERT_OK_AND_ASSIGN(const CurveKeypair keypair, LoadKeyFile(path));
  EXPECT_EQ(Z85Key(keypair.public_key), kKnownPublic);
  EXPECT_EQ(keypair.name, "n");
}

TEST_F(KeysTest, OwnerOnlyKeyFilesAreAccepted) {
  for (mode_t mode : {mode_t{0600}, mode_t{0400}}) {
    const std::string path = Path(absl::StrCat("k", mode, ".key"));
    Write(path, KeyText(kKnownPublic, kKnownSecret), mode);
    FABRIC_EXPECT_OK(LoadKeyFile(path)) << std::oct << mode;
  }
}

TEST_F(KeysTest, KeyFilesOthersCanReadAreRefused) {
  for (mode_t mode : {mode_t{0644}, mode_t{0640}, mode_t{0604}}) {
    char octal[8];
    std::snprintf(octal, sizeof(octal), "%04o", static_cast<unsigned>(mode));
    const std::string path = Path(absl::StrCat("k", mode, ".key"));
    Write(path, KeyText(kKnownPublic, kKnownSecret), mode);
    absl::StatusOr<CurveKeypair> loaded = LoadKeyFile(path);
    EXPECT_THAT(loaded, StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_EQ(loaded.status().message(),
              absl::StrCat("FAB-SEC-KEY-PERMS ", path, " has mode ", octal,
                           "; a secret file must be owner-only (chmod 600)"));
  }
}

// Asserts that loading `path` fails with `id` in the message and no secret.
void ExpectKeyRefused(const std::string& path, const std::string& id) {
  absl::StatusOr<CurveKeypair> loaded = LoadKeyFile(path);
  EXPECT_THAT(loaded, StatusIs(absl::StatusCode::kFailedPrecondition)) << path;
  EXPECT_THAT(loaded.status().message(), AllOf(HasSubstr(id), HasSubstr(path)));
  EXPECT_THAT(loaded.status().message(), Not(HasSubstr(kKnownSecret)));
}

TEST_F(KeysTest, UnsafeKeyFilesAreRefused) {
  const std::string good = Path("good.key");
  Write(good, KeyText(kKnownPublic, kKnownSecret), 0600);
  FABRIC_ASSERT_OK(LoadKeyFile(good));  // the control

  const std::string link = Path("link.key");
  ASSERT_EQ(symlink(good.c_str(), link.c_str()), 0);
  ExpectKeyRefused(link, "FAB-SEC-KEY-PERMS");
  EXPECT_THAT(LoadKeyFile(link).status().message(), HasSubstr("symbolic link"));

  ExpectKeyRefused(Path("missing.key"), "FAB-SEC-KEY-MISSING");
  ExpectKeyRefused(dir_, "FAB-SEC-KEY-PERMS");  // a directory

  const std::string fifo = Path("fifo.key");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  ExpectKeyRefused(fifo, "FAB-SEC-KEY-PERMS");  // and the open did not hang

  const std::string big = Path("big.key");
  Write(big, KeyText(kKnownPublic, kKnownSecret) + std::string(5000, '#'),
        0600);
  ExpectKeyRefused(big, "FAB-SEC-KEY-PERMS");
}

TEST_F(KeysTest, KeyFileOfAnotherUserIsRefused) {
  const std::string path = Path("other.key");
  Write(path, KeyText(kKnownPublic, kKnownSecret), 0600);
  if (chown(path.c_str(), kNobody, kNobody) != 0 || geteuid() == kNobody) {
    GTEST_SKIP() << "cannot give a file to uid " << kNobody;
  }
  ExpectKeyRefused(path, "FAB-SEC-KEY-PERMS");
  EXPECT_THAT(LoadKeyFile(path).status().message(),
              HasSubstr(absl::StrCat("owned by uid ", kNobody)));
}

TEST_F(KeysTest, MalformedKeyFilesAreRefused) {
  const std::string secret(kKnownSecret);
  // A key file whose public key is that of another keypair.
  const CurveKeypair other = NewKeypair("o");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""},
      {"garbage", "\x01\x02 not a key file at all\n"},
      {"secret alone", absl::StrCat(secret, "\n")},
      {"no public-key", absl::StrCat("secret-key = ", secret, "\n")},
      {"no secret-key", absl::StrCat("public-key = ", kKnownPublic, "\n")},
      {"unknown field",
       KeyText(kKnownPublic, kKnownSecret) + "colour = blue\n"},
      {"twice", KeyText(kKnownPublic, kKnownSecret) +
                    absl::StrCat("public-key = ", kKnownPublic, "\n")},
      {"short secret", KeyText(kKnownPublic, secret.substr(1))},
      {"bad name", "name = a/b\n" + KeyText(kKnownPublic, kKnownSecret)},
      {"wrong public key", KeyText(Z85Key(other.public_key), kKnownSecret)},
  };
  for (const auto& [what, text] : cases) {
    SCOPED_TRACE(what);
    const std::string path = Path("bad.key");
    Write(path, text, 0600);
    ExpectKeyRefused(path, "FAB-SEC-KEY-FORMAT");
  }
  Write(Path("mismatch.key"), KeyText(Z85Key(other.public_key), kKnownSecret),
        0600);
  EXPECT_THAT(LoadKeyFile(Path("mismatch.key")).status().message(),
              HasSubstr("not the public half"));
}

class RosterTest : public KeysTest {
 protected:
  void SetUp() override {
    KeysTest::SetUp();
    roster_ = Path("roster");
    ASSERT_EQ(mkdir(roster_.c_str(), 0755), 0);
    ASSERT_EQ(chmod(roster_.c_str(), 0755), 0);
    keys_ = Path("keys");
    ASSERT_EQ(mkdir(keys_.c_str(), 0700), 0);
  }
  // Generates NAME into keys/ and copies NAME.pub into the roster.
  CurveKeypair AddMember(const std::string& name) {
    CurveKeypair keypair = NewKeypair(name);
    EXPECT_THAT(WriteKeypair(keys_, keypair, false), fabric::testing::IsOk());
    Write(RosterFile(name + ".pub"), Read(keys_ + "/" + name + ".pub"), 0644);
    return keypair;
  }
  std::string RosterFile(const std::string& name) const {
    return roster_ + "/" + name;
  }
  void ExpectRefused(const std::string& id, const std::string& needle) {
    std::vector<std::string> warnings;
    absl::StatusOr<Roster> roster = LoadRoster(roster_, &warnings);
    EXPECT_THAT(roster, StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT(roster.status().message(),
                AllOf(HasSubstr(id), HasSubstr(needle)));
  }

  std::string roster_;
  std::string keys_;
};

TEST_F(RosterTest, LoadsEveryPubFile) {
  const CurveKeypair a = AddMember("a");
  const CurveKeypair b = AddMember("b");
  // Without a name line the name is the file's stem; an endpoint is kept.
  Write(RosterFile("seed-1.pub"),
        absl::StrCat("public-key = ", kKnownPublic,
                     "\nendpoint = tcp://10.0.0.1:7000\n"),
        0644);
  Write(RosterFile("README"), "not a key", 0644);
  Write(RosterFile(".#a.pub"), "an editor's lock file", 0644);

  std::vector<std::string> warnings;
  FABRIC_ASSERT_OK_AND_ASSIGN(const Roster roster,
                              LoadRoster(roster_, &warnings));
  EXPECT_THAT(warnings, ::testing::IsEmpty());
  ASSERT_EQ(roster.size(), 3u);
  EXPECT_TRUE(roster.Contains(a.public_key));
  EXPECT_TRUE(roster.Contains(b.public_key));
  EXPECT_FALSE(roster.Contains(NewKeypair("c").public_key));
  ASSERT_NE(roster.Find(b.public_key), nullptr);
  EXPECT_EQ(roster.Find(b.public_key)->name, "b");
  EXPECT_EQ(roster.Find(b.public_key)->file, RosterFile("b.pub"));
  ASSERT_NE(roster.FindByName("seed-1"), nullptr);
  EXPECT_EQ(Z85Key(roster.FindByName("seed-1")->public_key), kKnownPublic);
  ASSERT_NE(roster.FindByEndpoint("tcp://10.0.0.1:7000"), nullptr);
  EXPECT_EQ(roster.FindByEndpoint("tcp://10.0.0.1:7000")->name, "seed-1");
  EXPECT_EQ(roster.FindByEndpoint(""), nullptr);
  EXPECT_EQ(roster.FindByName("c"), nullptr);

  const Roster copy = roster;  // indices, not pointers, survive a copy
  EXPECT_EQ(copy.Find(a.public_key)->name, "a");
}

TEST_F(RosterTest, KeyFileInTheRosterIsSkippedWithAWarning) {
  const CurveKeypair a = AddMember("a");
  Write(RosterFile("b.key"), Read(keys_ + "/a.key"), 0600);
  std::vector<std::string> warnings;
  FABRIC_ASSERT_OK_AND_ASSIGN(const Roster roster,
                              LoadRoster(roster_, &warnings));
  EXPECT_EQ(roster.size(), 1u);
  EXPECT_THAT(warnings, ElementsAre(AllOf(HasSubstr("FAB-SEC-ROSTER-SECRET"),
                                          HasSubstr(RosterFile("b.key")))));
  EXPECT_THAT(warnings[0], Not(HasSubstr(Z85Key(a.secret_key))));
  FABRIC_EXPECT_OK(LoadRoster(roster_, nullptr));  // warnings are optional
}

TEST_F(RosterTest, WritableRosterDirectoryIsRefused) {
  AddMember("a");
  FABRIC_ASSERT_OK(LoadRoster(roster_, nullptr));  // the control
  for (mode_t mode : {mode_t{0777}, mode_t{0775}, mode_t{0757}}) {
    ASSERT_EQ(chmod(roster_.c_str(), mode), 0);
    ExpectRefused("FAB-SEC-ROSTER-PERMS", "chmod go-w");
  }
}

TEST_F(RosterTest, WritableRosterFileIsRefused) {
  AddMember("a");
  ASSERT_EQ(chmod(RosterFile("a.pub").c_str(), 0666), 0);
  ExpectRefused("FAB-SEC-ROSTER-PERMS", RosterFile("a.pub"));
  ASSERT_EQ(chmod(RosterFile("a.pub").c_str(), 0620), 0);
  ExpectRefused("FAB-SEC-ROSTER-PERMS", "has mode 0620");
}

TEST_F(RosterTest, RosterOfAnotherUserIsRefused) {
  AddMember("a");
  if (chown(RosterFile("a.pub").c_str(), kNobody, kNobody) != 0 ||
      geteuid() == kNobody) {
    GTEST_SKIP() << "cannot give a file to uid " << kNobody;
  }
  ExpectRefused("FAB-SEC-ROSTER-PERMS", "owned by uid 65534");
  ASSERT_EQ(chown(RosterFile("a.pub").c_str(), geteuid(), getegid()), 0);
  FABRIC_ASSERT_OK(LoadRoster(roster_, nullptr));
  ASSERT_EQ(chown(roster_.c_str(), kNobody, kNobody), 0);
  ExpectRefused("FAB-SEC-ROSTER-PERMS", "owned by uid 65534");
}

TEST_F(RosterTest, MissingOrEmptyRosterIsRefused) {
  ExpectRefused("FAB-SEC-ROSTER-MISSING", "holds no *.pub key");
  Write(RosterFile("a.key"), "x", 0600);  // a secret alone is no roster
  ExpectRefused("FAB-SEC-ROSTER-MISSING", roster_);
  EXPECT_THAT(LoadRoster(Path("nowhere"), nullptr),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(LoadRoster(Path("nowhere"), nullptr).status().message(),
              HasSubstr("FAB-SEC-ROSTER-MISSING"));
}

TEST_F(RosterTest, MalformedEntriesAreRefused) {
  const CurveKeypair a = AddMember("a");
  const std::string a_pub = Read(RosterFile("a.pub"));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"no public key", "name = x\n"},
      {"bad key", "public-key = abc\n"},
      {"a secret key", Read(keys_ + "/a.key")},
      {"bad endpoint",
       absl::StrCat("public-key = ", kKnownPublic, "\nendpoint = udp://h:1\n")},
      {"same key as a.pub",
       absl::StrCat("name = other\n", a_pub.substr(a_pub.find("public-key")))},
      {"same name as a.pub",
       absl::StrCat("name = a\npublic-key = ", kKnownPublic, "\n")},
  };
  for (const auto& [what, text] : cases) {
    SCOPED_TRACE(what);
    Write(RosterFile("x.pub"), text, 0644);
    ExpectRefused("FAB-SEC-ROSTER-FORMAT", RosterFile("x.pub"));
    EXPECT_THAT(LoadRoster(roster_, nullptr).status().message(),
                Not(HasSubstr(Z85Key(a.secret_key))));
  }
}

TEST_F(RosterTest, SymlinkedEntryIsFollowed) {
  // A mounted config map holds links to the files.
  const CurveKeypair a = NewKeypair("a");
  FABRIC_ASSERT_OK(WriteKeypair(keys_, a, false));
  ASSERT_EQ(symlink((keys_ + "/a.pub").c_str(), RosterFile("a.pub").c_str()),
            0);
  FABRIC_ASSERT_OK_AND_ASSIGN(const Roster roster,
                              LoadRoster(roster_, nullptr));
  EXPECT_TRUE(roster.Contains(a.public_key));
}

TEST_F(RosterTest, StampChangesOnAddRemoveAndEdit) {
  AddMember("a");
  FABRIC_ASSERT_OK_AND_ASSIGN(const RosterStamp first, StatRoster(roster_));
  FABRIC_ASSERT_OK_AND_ASSIGN(const RosterStamp again, StatRoster(roster_));
  EXPECT_EQ(first, again);  // nothing changed
  EXPECT_EQ(first.files, 1u);

  AddMember("b");
  FABRIC_ASSERT_OK_AND_ASSIGN(const RosterStamp added, StatRoster(roster_));
  EXPECT_NE(added, first);
  EXPECT_EQ(added.files, 2u);

  {
    std::ofstream out(RosterFile("b.pub"), std::ios::app);
    out << "endpoint = tcp://10.0.0.2:7000\n";
  }
  FABRIC_ASSERT_OK_AND_ASSIGN(const RosterStamp edited, StatRoster(roster_));
  EXPECT_NE(edited, added);

  // An edit of the same size is seen through the file's time.
  const std::string text = Read(RosterFile("b.pub"));
  Write(RosterFile("b.pub"), text.substr(0, text.size() - 2) + "1\n", 0644);
  const struct timespec later[2] = {{0, UTIME_OMIT}, {time(nullptr) + 3600, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, RosterFile("b.pub").c_str(), later, 0), 0);
  FABRIC_ASSERT_OK_AND_ASSIGN(const RosterStamp same_size, StatRoster(roster_));
  EXPECT_EQ(same_size.bytes, edited.bytes);
  EXPECT_NE(same_size, edited);

  ASSERT_EQ(unlink(RosterFile("a.pub").c_str()), 0);
  FABRIC_ASSERT_OK_AND_ASSIGN(const RosterStamp removed, StatRoster(roster_));
  EXPECT_NE(removed, same_size);
  EXPECT_EQ(removed.files, 1u);

  EXPECT_THAT(StatRoster(Path("nowhere")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

// A keyring line for `secret` under `id`, base64 made independently.
std::string BeaconLine(int id, const std::string& secret, bool primary) {
  return absl::StrCat(id, " ", absl::Base64Escape(secret),
                      primary ? " primary\n" : "\n");
}

TEST_F(KeysTest, RandomBeaconSecretsAreFreshAndFull) {
  const std::string a = RandomBeaconSecret();
  EXPECT_THAT(a, SizeIs(kBeaconSecretBytes));
  EXPECT_NE(a, RandomBeaconSecret());
  EXPECT_NE(a, std::string(kBeaconSecretBytes, '\0'));
}

TEST_F(KeysTest, BeaconSecretsRoundTrip) {
  ScopedUmask scoped(0);
  BeaconSecrets written;
  for (uint8_t id : {1, 2, 255}) written.secrets[id] = RandomBeaconSecret();
  written.primary = 2;
  const std::string path = Path("beacon.secret");
  FABRIC_ASSERT_OK(WriteBeaconSecrets(path, written));
  EXPECT_EQ(Mode(path), 0600u);
  EXPECT_THAT(Read(path), HasSubstr(BeaconLine(2, written.secrets[2], true)));
  EXPECT_THAT(Read(path),
              HasSubstr(BeaconLine(255, written.secrets[255], false)));
  FABRIC_ASSERT_OK_AND_ASSIGN(const BeaconSecrets read,
                              LoadBeaconSecrets(path));
  EXPECT_EQ(read.primary, 2);
  EXPECT_EQ(read.secrets, written.secrets);

  written.primary = 1;  // rewriting replaces the file
  FABRIC_ASSERT_OK(WriteBeaconSecrets(path, written));
  FABRIC_ASSERT_OK_AND_ASSIGN(const BeaconSecrets again,
                              LoadBeaconSecrets(path));
  EXPECT_EQ(again.primary, 1);
  EXPECT_EQ(Mode(path), 0600u);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_),
                          std::filesystem::directory_iterator()),
            1);  // no temporary file left
}

TEST_F(KeysTest, WriteBeaconSecretsRefusesAKeyringWithoutPrimary) {
  BeaconSecrets secrets;
  secrets.secrets[1] = RandomBeaconSecret();
  const std::string path = Path("beacon.secret");
  EXPECT_THAT(WriteBeaconSecrets(path, secrets),
              StatusIs(absl::StatusCode::kInvalidArgument));  // primary 0
  secrets.primary = 2;
  EXPECT_THAT(WriteBeaconSecrets(path, secrets),
              StatusIs(absl::StatusCode::kInvalidArgument));  // not there
  secrets.primary = 1;
  secrets.secrets[3] = "short";
  EXPECT_THAT(WriteBeaconSecrets(path, secrets),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(KeysTest, MalformedBeaconSecretsAreRefused) {
  const std::string s1 = RandomBeaconSecret();
  const std::string s2 = RandomBeaconSecret();
  const std::string good = BeaconLine(1, s1, false) + BeaconLine(2, s2, true);
  const std::string path = Path("beacon.secret");
  Write(path, "# comment\n\n" + good, 0600);
  FABRIC_ASSERT_OK(LoadBeaconSecrets(path));  // the control

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""},
      {"no primary", BeaconLine(1, s1, false) + BeaconLine(2, s2, false)},
      {"two primaries", BeaconLine(1, s1, true) + BeaconLine(2, s2, true)},
      {"bad base64",
       absl::StrCat("1 ", absl::Base64Escape(s1).substr(1), "! primary\n")},
      {"16 bytes", BeaconLine(1, s1.substr(0, 16), true)},
      {"33 bytes", BeaconLine(1, s1 + "x", true)},
      {"very long", BeaconLine(1, std::string(300, 'x'), true)},
      {"id 0", BeaconLine(0, s1, true)},
      {"id 256", BeaconLine(256, s1, true)},
      {"id not a number", absl::StrCat("x", BeaconLine(1, s1, true))},
      {"duplicate id", BeaconLine(1, s1, true) + BeaconLine(1, s2, false)},
      {"extra word",
       absl::StrCat("1 ", absl::Base64Escape(s1), " primary x\n")},
      {"not primary", absl::StrCat("1 ", absl::Base64Escape(s1), " main\n")},
  };
  for (const auto& [what, text] : cases) {
    SCOPED_TRACE(what);
    Write(path, text, 0600);
    absl::StatusOr<BeaconSecrets> loaded = LoadBeaconSecrets(path);
    EXPECT_THAT(loaded, StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT(loaded.status().message(),
                AllOf(HasSubstr("FAB-SEC-BEACON-FORMAT"), HasSubstr(path)));
    for (const std::string& s : {s1, s2}) {
      EXPECT_THAT(loaded.status().message(),
                  Not(HasSubstr(absl::Base64Escape(s).substr(0, 12))));
    }
  }
}

TEST_F(KeysTest, UnsafeBeaconSecretFilesAreRefused) {
  const std::string path = Path("beacon.secret");
  Write(path, BeaconLine(1, RandomBeaconSecret(), true), 0644);
  EXPECT_THAT(
      LoadBeaconSecrets(path).status().message(),
      HasSubstr(absl::StrCat("FAB-SEC-BEACON-PERMS ", path, " has mode 0644")));
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  FABRIC_ASSERT_OK(LoadBeaconSecrets(path));
  const std::string link = Path("link.secret");
  ASSERT_EQ(symlink(path.c_str(), link.c_str()), 0);
  EXPECT_THAT(LoadBeaconSecrets(link).status().message(),
              HasSubstr("FAB-SEC-BEACON-PERMS"));
  EXPECT_THAT(LoadBeaconSecrets(Path("missing")).status().message(),
              HasSubstr("FAB-SEC-BEACON-MISSING"));
  EXPECT_THAT(LoadBeaconSecrets(Path("missing")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace fabric::security
