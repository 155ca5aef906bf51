// SPDX-License-Identifier: Apache-2.0
// S6 and S7 of the security test plan (security-anchors.md section 7):
// forged and replayed signed beacons against two secure nodes that have
// met, sent from this process onto loopback discovery the way
// discovery/beacon_socket.cc does (broadcast to 127.255.255.255:PORT; the
// nodes' receive sockets are bound to that address, so unicast to
// 127.0.0.1 would never reach them). Every case asserts the node's counter
// equals the datagrams sent, that no peer left and that the mesh is as it
// was; the plaintext controls show the same forgeries do act on nodes that
// do not check signatures, so the measures can see what they look for.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "discovery/beacon.h"
#include "discovery/beacon_auth.h"
#include "discovery/beacon_format.h"
#include "discovery/beacon_socket.h"
#include "fabric/node.h"
#include "fabric/security/keys.h"
#include "gtest/gtest.h"
#include "tests/testing/secure_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

namespace discovery = ::fabric::discovery;
using ::fabric::testing::IsOk;
using ::fabric::testing::WaitUntil;

constexpr absl::Duration kWait = absl::Seconds(15);

// Writes `value` big-endian (the beacon byte order) at `out[offset]`.
template <typename T>
void PutBigEndian(std::string& out, size_t offset, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) {
    out[offset + sizeof(T) - 1 - i] = static_cast<char>(value & 0xff);
    value = static_cast<T>(value >> 8);
  }
}

std::string RandomBytes(std::mt19937_64& rng, size_t n) {
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

// A UDP socket bound to `source` (any 127.0.0.0/8 address works on lo) that
// broadcasts to the loopback beacon address, blocking, so that no datagram
// is lost on our side.
class BeaconInjector {
 public:
  BeaconInjector(const std::string& source, uint16_t port) {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    sockaddr_in from{};
    from.sin_family = AF_INET;
    inet_pton(AF_INET, source.c_str(), &from.sin_addr);
    to_.sin_family = AF_INET;
    to_.sin_port = htons(port);
    inet_pton(AF_INET, "127.255.255.255", &to_.sin_addr);
    ok_ =
        fd_ >= 0 &&
        setsockopt(fd_, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) == 0 &&
        bind(fd_, reinterpret_cast<const sockaddr*>(&from), sizeof(from)) == 0;
  }
  ~BeaconInjector() {
    if (fd_ >= 0) close(fd_);
  }
  BeaconInjector(const BeaconInjector&) = delete;
  BeaconInjector& operator=(const BeaconInjector&) = delete;

  bool ok() const { return ok_; }
  // Sends `datagram` `times` times; returns how many the kernel took.
  int Send(absl::string_view datagram, int times = 1) {
    int sent = 0;
    for (int i = 0; i < times; ++i) {
      if (sendto(fd_, datagram.data(), datagram.size(), 0,
                 reinterpret_cast<const sockaddr*>(&to_),
                 sizeof(to_)) == static_cast<ssize_t>(datagram.size())) {
        ++sent;
      }
    }
    return sent;
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
  sockaddr_in to_{};
};

// Returns how many ZeroMQ sockets this process holds: libzmq gives every
// socket a mailbox signalled through an eventfd, and a fabric link is three
// sockets (DEALER, its monitor's PAIR and ours). So a link the engine
// opens, even one that never connects, shows here.
int ZmqSocketCount() {
  int count = 0;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  char target[256];
  while (dirent* e = readdir(dir)) {
    const std::string path = absl::StrCat("/proc/self/fd/", e->d_name);
    const ssize_t n = readlink(path.c_str(), target, sizeof(target) - 1);
    if (n > 0 && absl::string_view(target, n) == "anon_inode:[eventfd]") {
      ++count;
    }
  }
  closedir(dir);
  return count;
}

// CPU seconds (user + system) of this process's threads, summed by thread
// name, from /proc/self/task/*/stat.
std::map<std::string, double> ThreadCpuByName() {
  std::map<std::string, double> cpu;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return cpu;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(absl::StrCat("/proc/self/task/", e->d_name, "/stat"));
    std::string line;
    std::getline(in, line);
    const size_t open = line.find('(');
    const size_t close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    const std::vector<std::string> fields =
        absl::StrSplit(line.substr(close + 2), ' ');
    // After "pid (comm) ": state is field 3, utime 14, stime 15.
    if (fields.size() < 13) continue;
    cpu[line.substr(open + 1, close - open - 1)] +=
        (std::stod(fields[11]) + std::stod(fields[12])) / tick;
  }
  closedir(dir);
  return cpu;
}

// Like `WaitUntil`, checking every 100 us instead of every 10 ms: paces
// the flood by the nodes' own speed rather than by the poll interval.
bool WaitClosely(const std::function<bool()>& condition,
                 absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Microseconds(100));
  }
  return true;
}

double ProcessCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

class SecurityBeaconTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::ClearFabricEnvironment();
    ASSERT_NE(beacon_port_, 0);
    // Both keys are in the roster before either node starts, so neither
    // refuses the other while its roster reloads.
    keys_.AddMember("a");
    keys_.AddMember("b");
  }

  NodeOptions Options(const std::string& name, bool secure) {
    NodeOptions o;
    o.name = name;
    o.cluster = cluster_;
    o.beacon_port = beacon_port_;
    o.beacon_interval = absl::Milliseconds(200);
    if (secure) o.security = keys_.Options(name);
    return o;
  }
  std::unique_ptr<Node> Start(NodeOptions o) {
    absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(std::move(o));
    EXPECT_THAT(node, IsOk());
    return node.ok() ? std::move(*node) : nullptr;
  }
  static std::optional<PeerInfo> Find(const Node& node, const NodeId& id) {
    absl::StatusOr<std::vector<PeerInfo>> peers = node.Peers();
    if (!peers.ok()) return std::nullopt;
    for (const PeerInfo& p : *peers) {
      if (p.id == id) return p;
    }
    return std::nullopt;
  }
  static size_t PeerCount(const Node& node) {
    absl::StatusOr<std::vector<PeerInfo>> peers = node.Peers();
    return peers.ok() ? peers->size() : 0;
  }
  // True once each node sees the other alive.
  static bool Meshed(const Node& a, const Node& b) {
    std::optional<PeerInfo> pa = Find(a, b.id());
    std::optional<PeerInfo> pb = Find(b, a.id());
    return pa && pb && pa->state == PeerState::kAlive &&
           pb->state == PeerState::kAlive;
  }

  // The authenticator of this cluster's real beacon secrets: what the nodes
  // verify with, so the test can read (and, for controls, make) beacons
  // the nodes accept.
  absl::StatusOr<discovery::BeaconAuthenticator> RealAuthenticator() {
    absl::StatusOr<security::BeaconSecrets> secrets =
        security::LoadBeaconSecrets(keys_.beacon_secret_file());
    if (!secrets.ok()) return secrets.status();
    return discovery::BeaconAuthenticator::Create(secrets->secrets,
                                                  secrets->primary, cluster_);
  }

  // A v2 beacon that looks valid in every field (this cluster's hash, key
  // id 1, 127.0.0.1, a fresh time) but whose tag is random (even `i`) or
  // made with a secret the cluster does not hold (odd `i`).
  std::string ForgedBeacon(std::mt19937_64& rng, int i, const NodeId& id,
                           uint8_t flags, absl::string_view public_key,
                           const discovery::BeaconAuthenticator& wrong) {
    discovery::SignedBeacon b;
    b.beacon.flags = flags;
    b.beacon.id = id;
    b.beacon.mailbox_port = static_cast<uint16_t>(1024 + rng() % 64000);
    b.beacon.state_version = static_cast<uint32_t>(rng() % 16);
    b.ipv4 = INADDR_LOOPBACK;
    b.seq = 1'000'000 + static_cast<uint64_t>(i);
    b.sent_time = absl::Now();
    b.public_key = std::string(public_key);
    absl::StatusOr<std::string> wire = wrong.Sign(b);
    EXPECT_THAT(wire, IsOk());
    if (!wire.ok()) return "";
    if (i % 2 == 0) {
      wire->replace(discovery::kSignedTagOffset, discovery::kSignedTagSize,
                    RandomBytes(rng, discovery::kSignedTagSize));
    }
    return *wire;
  }

  testing::SecureCluster keys_;
  const std::string cluster_ = testing::UniqueClusterName("beacon");
  const uint16_t beacon_port_ = testing::FreeUdpPort();
};

// S6: 10,000 forged beacons, some carrying the leaving flag for the real
// nodes' ids, reach both nodes; each is counted as a bad MAC and nothing
// else happens.
TEST_F(SecurityBeaconTest, ForgedBeaconFloodIsCountedAndChangesNothing) {
  std::unique_ptr<Node> a = Start(Options("a", true));
  std::unique_ptr<Node> b = Start(Options("b", true));
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(WaitUntil([&] { return Meshed(*a, *b); }, kWait));
  const std::string a_key = Find(*b, a->id())->public_key;
  const std::string b_key = Find(*a, b->id())->public_key;

  std::random_device seed_source;
  const uint64_t seed = (uint64_t{seed_source()} << 32) | seed_source();
  std::mt19937_64 rng(seed);
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  // The tags of odd beacons: made with a secret this cluster does not hold.
  absl::StatusOr<discovery::BeaconAuthenticator> wrong =
      discovery::BeaconAuthenticator::Create(
          {{1, security::RandomBeaconSecret()}}, 1, cluster_);
  ASSERT_THAT(wrong, IsOk());
  BeaconInjector injector("127.0.0.1", beacon_port_);
  ASSERT_TRUE(injector.ok());

  const NodeStats a0 = a->Stats();
  const NodeStats b0 = b->Stats();
  const int sockets0 = ZmqSocketCount();
  const std::map<std::string, double> cpu0 = ThreadCpuByName();
  const double process0 = ProcessCpuSeconds();
  const absl::Time t0 = absl::Now();

  // Paced in bursts of 100: a burst fits the nodes' default receive
  // buffers (212,992 bytes, about 160 small datagrams), and the next one
  // goes out once both nodes have counted it. So no datagram is lost to a
  // full socket buffer and the counters must equal the datagrams sent.
  constexpr int kForged = 10'000;
  constexpr int kBurst = 100;
  int sent = 0;
  int leaving = 0;
  while (sent < kForged) {
    for (int i = 0; i < kBurst; ++i, ++sent) {
      // One in ten says "leaving" for a real node, with its real key.
      NodeId id = NodeId::Random();
      uint8_t flags = 0;
      std::string key = RandomBytes(rng, discovery::kSignedPublicKeySize);
      if (sent % 10 == 0) {
        const bool as_a = (sent / 10) % 2 == 0;
        id = as_a ? a->id() : b->id();
        key = as_a ? a_key : b_key;
        flags = discovery::kFlagLeaving;
        ++leaving;
      }
      ASSERT_EQ(injector.Send(ForgedBeacon(rng, sent, id, flags, key, *wrong)),
                1);
    }
    const uint64_t want = static_cast<uint64_t>(sent);
    ASSERT_TRUE(WaitClosely(
        [&] {
          return a->Stats().beacons_bad_mac - a0.beacons_bad_mac >= want &&
                 b->Stats().beacons_bad_mac - b0.beacons_bad_mac >= want;
        },
        kWait))
        << "after " << sent << " forged beacons: a counted "
        << a->Stats().beacons_bad_mac - a0.beacons_bad_mac << ", b "
        << b->Stats().beacons_bad_mac - b0.beacons_bad_mac;
  }
  const absl::Duration took = absl::Now() - t0;
  const double process1 = ProcessCpuSeconds();
  const std::map<std::string, double> cpu1 = ThreadCpuByName();

  const NodeStats a1 = a->Stats();
  const NodeStats b1 = b->Stats();
  EXPECT_EQ(a1.beacons_bad_mac - a0.beacons_bad_mac, uint64_t{kForged});
  EXPECT_EQ(b1.beacons_bad_mac - b0.beacons_bad_mac, uint64_t{kForged});
  for (const NodeStats* s : {&a1, &b1}) {
    EXPECT_EQ(s->peers_left, 0u);
    EXPECT_EQ(s->peers_joined, 1u);
    EXPECT_EQ(s->beacons_malformed, 0u);
    EXPECT_EQ(s->beacons_unknown_node_key, 0u);
    EXPECT_EQ(s->beacons_replayed, 0u);
  }
  // No link was opened for any forged id or port, and none was closed.
  EXPECT_EQ(ZmqSocketCount(), sockets0);
  EXPECT_EQ(PeerCount(*a), 1u);
  EXPECT_EQ(PeerCount(*b), 1u);
  // The real peers stay alive: their own beacons keep coming and count.
  const uint64_t heard = b->Stats().beacons_received;
  ASSERT_TRUE(WaitUntil(
      [&] { return b->Stats().beacons_received >= heard + 3; }, kWait));
  EXPECT_TRUE(Meshed(*a, *b));
  EXPECT_EQ(a->Stats().peers_left + b->Stats().peers_left, 0u);

  // Information, never asserted: the flood's pace and what it cost.
  std::cout << "S6: " << sent << " forged beacons (" << leaving
            << " leaving for real ids) to 2 nodes in "
            << absl::FormatDuration(took) << " = "
            << static_cast<int>(sent / absl::ToDoubleSeconds(took))
            << " datagrams/s per node; process CPU " << process1 - process0
            << " s\n";
  for (const auto& [name, seconds] : cpu1) {
    const auto before = cpu0.find(name);
    const double used = seconds - (before == cpu0.end() ? 0.0 : before->second);
    if (used > 0.005) {
      std::cout << "  thread " << name << ": " << used << " s CPU\n";
    }
  }
}

// The control for S6: plaintext nodes act on forged (v1) beacons, and the
// measures above see it. A leaving beacon with a real id evicts that peer,
// and beacons with made-up ids and ports make links (more ZeroMQ sockets).
TEST_F(SecurityBeaconTest, PlaintextControlActsOnForgedBeacons) {
  std::unique_ptr<Node> a = Start(Options("a", false));
  std::unique_ptr<Node> b = Start(Options("b", false));
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(WaitUntil([&] { return Meshed(*a, *b); }, kWait));
  BeaconInjector injector("127.0.0.1", beacon_port_);
  ASSERT_TRUE(injector.ok());
  const int sockets0 = ZmqSocketCount();
  for (int i = 0; i < 20; ++i) {
    discovery::Beacon forged;
    forged.cluster_hash = discovery::ClusterHash(cluster_);
    forged.id = NodeId::Random();
    // Ports nobody listens on, so these links reach no other test's node.
    forged.mailbox_port = testing::FreeTcpPort();
    ASSERT_EQ(injector.Send(discovery::EncodeBeacon(forged)), 1);
  }
  EXPECT_TRUE(WaitUntil([&] { return ZmqSocketCount() > sockets0; }, kWait));
  discovery::Beacon leave;
  leave.flags = discovery::kFlagLeaving;
  leave.cluster_hash = discovery::ClusterHash(cluster_);
  leave.id = a->id();
  leave.mailbox_port = 1;
  ASSERT_EQ(injector.Send(discovery::EncodeBeacon(leave)), 1);
  EXPECT_TRUE(WaitUntil([&] { return b->Stats().peers_left >= 1; }, kWait));
}

// A beacon read off the wire with what it says.
struct Captured {
  std::string wire;
  discovery::SignedBeacon beacon;
};

// Reads beacons as a node does (a `BeaconSocket` on the cluster's port, so
// the broadcasts reach it too) until one of `id` arrives that is not
// leaving, came from 127.0.0.1 and was sent less than `max_age` ago.
std::optional<Captured> CaptureBeacon(
    discovery::BeaconSocket& tap, const discovery::BeaconAuthenticator& auth,
    const NodeId& id, absl::Duration max_age) {
  const absl::Time deadline = absl::Now() + kWait;
  while (absl::Now() < deadline) {
    pollfd p{tap.fd(), POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    absl::StatusOr<std::optional<discovery::Datagram>> d = tap.Receive();
    if (!d.ok() || !d->has_value()) continue;
    absl::StatusOr<discovery::SignedBeacon> b =
        discovery::DecodeSignedBeacon((*d)->payload, auth, nullptr);
    if (b.ok() && b->beacon.id == id && !b->beacon.leaving() &&
        (*d)->source_address == "127.0.0.1" &&
        absl::Now() - b->sent_time < max_age) {
      return Captured{std::move((*d)->payload), *std::move(b)};
    }
  }
  return std::nullopt;
}

// Counts the datagrams equal to `wire` from `source` that `tap` reads
// within `timeout` (other beacons are skipped).
int CountFrom(discovery::BeaconSocket& tap, absl::string_view wire,
              absl::string_view source, int want, absl::Duration timeout) {
  int seen = 0;
  const absl::Time deadline = absl::Now() + timeout;
  while (seen < want && absl::Now() < deadline) {
    pollfd p{tap.fd(), POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    absl::StatusOr<std::optional<discovery::Datagram>> d = tap.Receive();
    if (d.ok() && d->has_value() && (*d)->payload == wire &&
        (*d)->source_address == source) {
      ++seen;
    }
  }
  return seen;
}

// S7: real beacons of node a, captured off the wire and sent again: at once
// (replayed), after the skew allowed (stale), from another address
// (address mismatch), and a leaving beacon of a live a at a sequence b has
// seen (replayed; a stays). Each counter equals the datagrams sent; b's
// other beacon counters do not move, and a ignores its own id throughout.
TEST_F(SecurityBeaconTest, ReplayedStaleAndMisaddressedBeaconsAreCounted) {
  NodeOptions bo = Options("b", true);
  bo.security.beacon_max_skew = absl::Seconds(1);  // the minimum allowed
  std::unique_ptr<Node> a = Start(Options("a", true));
  std::unique_ptr<Node> b = Start(bo);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(WaitUntil([&] { return Meshed(*a, *b); }, kWait));
  discovery::BeaconSocketOptions tap_options;
  tap_options.loopback = true;
  tap_options.port = beacon_port_;
  absl::StatusOr<std::unique_ptr<discovery::BeaconSocket>> tap =
      discovery::BeaconSocket::Open(tap_options);
  ASSERT_THAT(tap, IsOk());
  absl::StatusOr<discovery::BeaconAuthenticator> real = RealAuthenticator();
  ASSERT_THAT(real, IsOk());
  const discovery::BeaconAuthenticator& auth = *real;
  BeaconInjector local("127.0.0.1", beacon_port_);
  BeaconInjector other("127.0.0.2", beacon_port_);
  ASSERT_TRUE(local.ok() && other.ok());
  // 20 datagrams a case: far below the nodes' receive buffers, so none is
  // dropped and each counter must match exactly.
  constexpr int kEach = 20;
  const auto delta = [&](uint64_t NodeStats::*counter, const NodeStats& from) {
    return b->Stats().*counter - from.*counter;
  };

  // (a) At once: within the skew, but b has accepted that sequence.
  std::optional<Captured> fresh =
      CaptureBeacon(**tap, auth, a->id(), absl::Milliseconds(300));
  ASSERT_TRUE(fresh.has_value());
  const NodeStats s0 = b->Stats();
  ASSERT_EQ(local.Send(fresh->wire, kEach), kEach);
  ASSERT_TRUE(WaitUntil(
      [&] { return delta(&NodeStats::beacons_replayed, s0) >= kEach; }, kWait));
  EXPECT_EQ(delta(&NodeStats::beacons_replayed, s0), uint64_t{kEach});
  EXPECT_EQ(delta(&NodeStats::beacons_stale, s0), 0u);
  EXPECT_EQ(delta(&NodeStats::beacons_addr_mismatch, s0), 0u);

  // (b) The same beacon once it is 1.5 s old, past b's 1 s skew.
  const absl::Time old_enough = fresh->beacon.sent_time + absl::Seconds(1.5);
  ASSERT_TRUE(WaitUntil([&] { return absl::Now() >= old_enough; }, kWait));
  const NodeStats s1 = b->Stats();
  ASSERT_EQ(local.Send(fresh->wire, kEach), kEach);
  ASSERT_TRUE(WaitUntil(
      [&] { return delta(&NodeStats::beacons_stale, s1) >= kEach; }, kWait));
  EXPECT_EQ(delta(&NodeStats::beacons_stale, s1), uint64_t{kEach});
  EXPECT_EQ(delta(&NodeStats::beacons_replayed, s1), 0u);
  EXPECT_EQ(delta(&NodeStats::beacons_addr_mismatch, s1), 0u);

  // (c) A fresh beacon from 127.0.0.2: it reaches the beacon port (the tap,
  // bound like the nodes, reads every copy) and b counts the address.
  fresh = CaptureBeacon(**tap, auth, a->id(), absl::Milliseconds(300));
  ASSERT_TRUE(fresh.has_value());
  const NodeStats s2 = b->Stats();
  ASSERT_EQ(other.Send(fresh->wire, kEach), kEach);
  EXPECT_EQ(CountFrom(**tap, fresh->wire, "127.0.0.2", kEach, kWait), kEach);
  ASSERT_TRUE(WaitUntil(
      [&] { return delta(&NodeStats::beacons_addr_mismatch, s2) >= kEach; },
      kWait));
  EXPECT_EQ(delta(&NodeStats::beacons_addr_mismatch, s2), uint64_t{kEach});
  EXPECT_EQ(delta(&NodeStats::beacons_replayed, s2), 0u);
  EXPECT_EQ(delta(&NodeStats::beacons_stale, s2), 0u);

  // (d) A leaving beacon of the live a at a sequence b already accepted,
  // fresh and from a's address: exactly a replay of a leaving beacon.
  // (a sends one only as it shuts down, when it is no longer live; so the
  // test, which holds the cluster's beacon secret, signs it itself.)
  fresh = CaptureBeacon(**tap, auth, a->id(), absl::Milliseconds(300));
  ASSERT_TRUE(fresh.has_value());
  discovery::SignedBeacon leaving = fresh->beacon;
  leaving.beacon.flags = discovery::kFlagLeaving;
  leaving.sent_time = absl::Now();
  absl::StatusOr<std::string> leaving_wire = auth.Sign(leaving);
  ASSERT_THAT(leaving_wire, IsOk());
  const NodeStats s3 = b->Stats();
  ASSERT_EQ(local.Send(*leaving_wire, kEach), kEach);
  ASSERT_TRUE(WaitUntil(
      [&] { return delta(&NodeStats::beacons_replayed, s3) >= kEach; }, kWait));
  EXPECT_EQ(delta(&NodeStats::beacons_replayed, s3), uint64_t{kEach});
  // a stays: b keeps hearing it and never saw it leave.
  const uint64_t heard = b->Stats().beacons_received;
  ASSERT_TRUE(WaitUntil(
      [&] { return b->Stats().beacons_received >= heard + 3; }, kWait));
  EXPECT_TRUE(Meshed(*a, *b));
  EXPECT_EQ(b->Stats().peers_left, 0u);
  EXPECT_EQ(b->Stats().beacons_bad_mac, 0u);
  // Every copy carried a's own id, which a drops unexamined.
  const NodeStats sa = a->Stats();
  EXPECT_EQ(sa.beacons_replayed + sa.beacons_stale + sa.beacons_addr_mismatch,
            0u);
  EXPECT_EQ(sa.peers_left, 0u);

  // The control: the same leaving beacon at a sequence above any a sent
  // is what a real shutdown looks like, and b acts on it at once.
  leaving.seq = fresh->beacon.seq + 1'000'000;
  leaving.sent_time = absl::Now();
  leaving_wire = auth.Sign(leaving);
  ASSERT_THAT(leaving_wire, IsOk());
  ASSERT_EQ(local.Send(*leaving_wire), 1);
  EXPECT_TRUE(WaitUntil([&] { return b->Stats().peers_left == 1; }, kWait));
  EXPECT_FALSE(Find(*b, a->id()).has_value());
}

}  // namespace
}  // namespace fabric
