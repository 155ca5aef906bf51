// SPDX-License-Identifier: Apache-2.0
// LAN discovery between real interfaces: the test builds its own small LAN
// out of network namespaces (a switch namespace with a bridge, and host
// namespaces joined to it by veth pairs), runs `fabric node --discovery lan`
// inside the hosts with `ip netns exec`, and removes every namespace again.
// Nothing is created in, or changed about, the root namespace. Without the
// rights or tools to create namespaces the tests skip.
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::testing::ClearFabricEnvironment;
using ::fabric::testing::FreeUdpPort;
using ::fabric::testing::Subprocess;
using ::fabric::testing::UniqueClusterName;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr absl::Duration kIpTimeout = absl::Seconds(20);
constexpr absl::Duration kTimeout = absl::Seconds(30);

// The iproute2 `ip` binary, or "" when there is none.
std::string FindIp() {
  for (const char* path :
       {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return "";
}

// Runs `ip <args>`; an error carries ip's stderr.
absl::Status RunIp(const std::string& ip, std::vector<std::string> args) {
  const std::string text = absl::StrJoin(args, " ");
  args.insert(args.begin(), ip);
  absl::StatusOr<std::unique_ptr<Subprocess>> proc = Subprocess::Spawn(args);
  if (!proc.ok()) return proc.status();
  absl::StatusOr<int> code = (*proc)->Wait(kIpTimeout);
  if (!code.ok()) return code.status();
  if (*code == 0) return absl::OkStatus();
  // Let the reader catch up with the dead child's output.
  (void)(*proc)->WaitForLine([](absl::string_view) { return false; },
                             absl::Seconds(5));
  return absl::FailedPreconditionError(
      absl::StrCat("ip ", text, " exited ", *code, ": ", (*proc)->Stderr()));
}

// A switch namespace with bridge and `hosts` host namespaces, host i with
// interface InterfaceName(i) at Address(i) on 10.213.<random>.0/24.
// Deletes every namespace it created when destroyed.
class LanLab {
 public:
  // kFailedPrecondition or kUnavailable: this machine cannot host the lab.
  static absl::StatusOr<std::unique_ptr<LanLab>> Create(int hosts) {
    const std::string ip = FindIp();
    if (ip.empty()) return absl::UnavailableError("iproute2 'ip' not found");
    static std::atomic<int> counter{0};
    std::random_device rd;
    std::unique_ptr<LanLab> lab(new LanLab(
        ip, absl::StrCat("fab-", getpid(), "-", counter.fetch_add(1)),
        static_cast<int>(rd() % 256)));
    absl::Status status = lab->Build(hosts);
    if (!status.ok()) return status;
    return lab;
  }

  LanLab(const LanLab&) = delete;
  LanLab& operator=(const LanLab&) = delete;

  ~LanLab() {
    // Deleting a namespace deletes the veths and the bridge inside it.
    for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
      absl::Status status = RunIp(ip_, {"netns", "del", *it});
      if (!status.ok()) ADD_FAILURE() << "cleanup: " << status;
    }
  }

  std::string HostNamespace(int i) const {
    return absl::StrCat(prefix_, "-h", i);
  }
  // Unique per run (PID-based) and shorter than IFNAMSIZ.
  std::string InterfaceName(int i) const {
    return absl::StrCat("fv", getpid(), "h", i);
  }
  std::string Address(int i) const {
    return absl::StrCat("10.213.", subnet_, ".", i);
  }

  // Runs `fabric <args>` inside host namespace i.
  absl::StatusOr<std::unique_ptr<Subprocess>> Spawn(
      int i, const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {ip_, "netns", "exec", HostNamespace(i),
                                     FABRIC_CLI_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    return Subprocess::Spawn(argv);
  }

 private:
  LanLab(std::string ip, std::string prefix, int subnet)
      : ip_(std::move(ip)), prefix_(std::move(prefix)), subnet_(subnet) {}

  absl::Status AddNamespace(const std::string& name) {
    absl::Status status = RunIp(ip_, {"netns", "add", name});
    if (status.ok()) created_.push_back(name);
    return status;
  }

  absl::Status Build(int hosts) {
    const std::string sw = absl::StrCat(prefix_, "-sw");
    const std::string bridge = absl::StrCat("fb", getpid());
    if (absl::Status s = AddNamespace(sw); !s.ok()) return s;
    std::vector<std::vector<std::string>> steps = {
        {"-n", sw, "link", "set", "lo", "up"},
        {"-n", sw, "link", "add", bridge, "type", "bridge"},
        {"-n", sw, "link", "set", bridge, "up"},
    };
    for (const auto& step : steps) {
      if (absl::Status s = RunIp(ip_, step); !s.ok()) return s;
    }
    for (int i = 1; i <= hosts; ++i) {
      const std::string ns = HostNamespace(i);
      const std::string host_if = InterfaceName(i);
      const std::string port_if = absl::StrCat("fp", getpid(), "h", i);
      if (absl::Status s = AddNamespace(ns); !s.ok()) return s;
      // Created inside the namespaces, never in the root one.
      steps = {
          {"-n", ns, "link", "set", "lo", "up"},
          {"-n", ns, "link", "add", host_if, "type", "veth", "peer", "name",
           port_if, "netns", sw},
          {"-n", sw, "link", "set", port_if, "master", bridge},
          {"-n", sw, "link", "set", port_if, "up"},
          {"-n", ns, "addr", "add", absl::StrCat(Address(i), "/24"), "brd", "+",
           "dev", host_if},
          {"-n", ns, "link", "set", host_if, "up"},
      };
      for (const auto& step : steps) {
        if (absl::Status s = RunIp(ip_, step); !s.ok()) return s;
      }
    }
    return absl::OkStatus();
  }

  const std::string ip_;
  const std::string prefix_;
  const int subnet_;
  std::vector<std::string> created_;
};

// One `fabric node` child and what its READY line said.
struct NodeProcess {
  std::unique_ptr<Subprocess> proc;
  std::string endpoint;
  std::string name;
};

class LanDiscoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClearFabricEnvironment();
    ASSERT_NE(beacon_port_, 0) << "no free UDP port";
    absl::StatusOr<std::unique_ptr<LanLab>> lab = LanLab::Create(3);
    if (!lab.ok()) {
      GTEST_SKIP() << "cannot build a network-namespace LAN here (needs root "
                      "or CAP_NET_ADMIN, iproute2 and bridge/veth support): "
                   << lab.status();
    }
    lab_ = std::move(*lab);
  }

  // Starts `fabric node --discovery lan` in host namespace `host`.
  absl::StatusOr<NodeProcess> StartNode(int host, const std::string& name,
                                        const std::string& cluster) {
    absl::StatusOr<std::unique_ptr<Subprocess>> proc = lab_->Spawn(
        host, {"node", "--name", name, "--discovery", "lan", "--interface",
               lab_->InterfaceName(host), "--cluster", cluster, "--beacon-port",
               absl::StrCat(beacon_port_)});
    if (!proc.ok()) return proc.status();
    absl::StatusOr<size_t> ready = (*proc)->WaitForReady("READY ", kTimeout);
    if (!ready.ok()) return ready.status();
    std::vector<std::string> f =
        absl::StrSplit((*proc)->StdoutLines()[*ready], ' ');
    if (f.size() != 4) {
      return absl::InternalError(
          absl::StrCat("bad READY line: ", (*proc)->StdoutLines()[*ready]));
    }
    return NodeProcess{std::move(*proc), f[1], name};
  }

  // The lab outlives the nodes in it (members are destroyed after the body's
  // locals).
  std::unique_ptr<LanLab> lab_;
  const uint16_t beacon_port_ = FreeUdpPort();
};

TEST_F(LanDiscoveryTest, NodesOnOneLanFindEachOther) {
  const std::string cluster = UniqueClusterName("lan");
  std::vector<NodeProcess> nodes;
  for (int host = 1; host <= 3; ++host) {
    FABRIC_ASSERT_OK_AND_ASSIGN(
        NodeProcess node, StartNode(host, absl::StrCat("h", host), cluster));
    EXPECT_THAT(node.endpoint,
                StartsWith(absl::StrCat("tcp://", lab_->Address(host), ":")));
    nodes.push_back(std::move(node));
  }
  for (NodeProcess& node : nodes) {
    FABRIC_EXPECT_OK(node.proc->WaitForLineContaining(" peers=2 ", kTimeout))
        << node.name;
  }
  // Each joined line names the peer's address on the LAN.
  for (int host = 1; host <= 3; ++host) {
    const NodeProcess& node = nodes[host - 1];
    int joined = 0;
    for (const std::string& line : node.proc->StdoutLines()) {
      std::vector<std::string> f = absl::StrSplit(line, ' ');
      if (f.size() < 4 || f[0] != "joined") continue;
      ++joined;
      ASSERT_EQ(f[1].size(), 2u) << line;
      const int peer_host = f[1][1] - '0';
      EXPECT_NE(peer_host, host) << line;
      EXPECT_EQ(f[3], nodes[peer_host - 1].endpoint) << line;
      EXPECT_THAT(f[3], StartsWith(absl::StrCat(
                            "tcp://", lab_->Address(peer_host), ":")));
    }
    EXPECT_EQ(joined, 2) << absl::StrJoin(node.proc->StdoutLines(), "\n");
  }
}

// Two clusters share the LAN (and the beacon port): h1 runs a1 of cluster A,
// h2 runs b2 of cluster B, h3 runs one node of each. Once the B nodes have
// found each other (so B beacons crossed the bridge, which floods them to
// h1 as well) and the A nodes too, no A node has seen a B node.
TEST_F(LanDiscoveryTest, OtherClusterOnTheSameLanIsIgnored) {
  const std::string cluster_a = UniqueClusterName("lan-a");
  const std::string cluster_b = UniqueClusterName("lan-b");
  FABRIC_ASSERT_OK_AND_ASSIGN(NodeProcess a1, StartNode(1, "a1", cluster_a));
  FABRIC_ASSERT_OK_AND_ASSIGN(NodeProcess b2, StartNode(2, "b2", cluster_b));
  FABRIC_ASSERT_OK_AND_ASSIGN(NodeProcess b3, StartNode(3, "b3", cluster_b));
  FABRIC_ASSERT_OK_AND_ASSIGN(NodeProcess a3, StartNode(3, "a3", cluster_a));

  FABRIC_ASSERT_OK(b2.proc->WaitForLineContaining("joined b3 ", kTimeout));
  FABRIC_ASSERT_OK(b3.proc->WaitForLineContaining("joined b2 ", kTimeout));
  FABRIC_ASSERT_OK(a1.proc->WaitForLineContaining("joined a3 ", kTimeout));
  FABRIC_ASSERT_OK(a3.proc->WaitForLineContaining("joined a1 ", kTimeout));

  for (const NodeProcess* node : {&a1, &a3}) {
    for (const std::string& line : node->proc->StdoutLines()) {
      EXPECT_THAT(line, Not(HasSubstr(" b2 "))) << node->name;
      EXPECT_THAT(line, Not(HasSubstr(" b3 "))) << node->name;
      EXPECT_THAT(line, Not(HasSubstr(" peers=2 "))) << node->name;
    }
  }
  for (const NodeProcess* node : {&b2, &b3}) {
    for (const std::string& line : node->proc->StdoutLines()) {
      EXPECT_THAT(line, Not(HasSubstr(" a1 "))) << node->name;
      EXPECT_THAT(line, Not(HasSubstr(" a3 "))) << node->name;
    }
  }
}

}  // namespace
}  // namespace fabric
