// SPDX-License-Identifier: Apache-2.0
// Multi-process discovery demo: one command starts three node processes on
// this host (alpha, beta, gamma), which find each other over loopback
// beacons. The demo narrates, SIGKILLs beta to show failure detection, stops
// gamma cleanly to show a goodbye, then shuts down. Exits 0 only if every
// step was observed, so CI runs it as a smoke test.
//
//   build/examples/discovery_demo
//
// Each child is this same binary run as `discovery_demo --child NAME ...`:
// a plain fabric::Node printing its peer events.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fabric/node.h"

namespace {

// Child: run one node until SIGTERM, printing events as "<name>: <event>".
int RunChild(const std::string& name, const std::string& cluster,
             uint16_t port) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // taken by sigwait below
  fabric::NodeOptions options;
  options.name = name;
  options.cluster = cluster;
  options.beacon_port = port;
  options.on_peer_event = [name](const fabric::PeerEvent& e) {
    std::printf("%s: peer %s %s (%s)\n", name.c_str(),
                std::string(fabric::PeerEventTypeName(e.type)).c_str(),
                e.peer.name.c_str(), e.reason.c_str());
    std::fflush(stdout);
  };
  absl::StatusOr<std::unique_ptr<fabric::Node>> node =
      fabric::Node::Start(std::move(options));
  if (!node.ok()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(),
                 node.status().ToString().c_str());
    return 1;
  }
  std::printf("%s: started as %s on %s\n", name.c_str(),
              (*node)->id().ShortHex().c_str(),
              (*node)->mailbox_endpoint().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  (*node)->Close();  // sends goodbye to every peer
  return 0;
}

struct Child {
  pid_t pid = -1;
  int out = -1;
  std::string partial;
};

class Demo {
 public:
  Demo(std::string self, std::string cluster, uint16_t port)
      : self_(std::move(self)), cluster_(std::move(cluster)), port_(port) {}
  ~Demo() {
    for (auto& [name, child] : children_) {
      if (child.pid > 0) {
        kill(child.pid, SIGKILL);
        waitpid(child.pid, nullptr, 0);
      }
    }
  }

  bool Spawn(const std::string& name) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return false;
    const std::string port = std::to_string(port_);
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      dup2(fds[1], STDOUT_FILENO);
      execl(self_.c_str(), self_.c_str(), "--child", name.c_str(),
            cluster_.c_str(), port.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    children_[name] = Child{pid, fds[0], ""};
    return true;
  }

  // Echoes children's lines until `want` has been seen in `count` distinct
  // lines, or `timeout` passes.
  bool WaitFor(const std::string& want, int count, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    int seen = 0;
    while (absl::Now() < deadline) {
      std::vector<pollfd> fds;
      std::vector<Child*> owners;
      for (auto& [name, child] : children_) {
        if (child.out >= 0) {
          fds.push_back({child.out, POLLIN, 0});
          owners.push_back(&child);
        }
      }
      if (fds.empty()) return false;
      poll(fds.data(), fds.size(), 50);
      for (size_t i = 0; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        char buffer[4096];
        ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
        if (n <= 0) {
          close(owners[i]->out);
          owners[i]->out = -1;
          continue;
        }
        owners[i]->partial.append(buffer, static_cast<size_t>(n));
        size_t pos;
        while ((pos = owners[i]->partial.find('\n')) != std::string::npos) {
          const std::string line = owners[i]->partial.substr(0, pos);
          owners[i]->partial.erase(0, pos + 1);
          std::printf("    %s\n", line.c_str());
          if (absl::StrContains(line, want)) ++seen;
        }
      }
      if (seen >= count) return true;
    }
    return false;
  }

  void Signal(const std::string& name, int sig) {
    kill(children_[name].pid, sig);
  }
  int Reap(const std::string& name) {
    int status = 0;
    waitpid(children_[name].pid, &status, 0);
    children_[name].pid = -1;
    return status;
  }

 private:
  const std::string self_;
  const std::string cluster_;
  const uint16_t port_;
  std::map<std::string, Child> children_;
};

bool Step(bool ok, const char* what) {
  std::printf(ok ? "==> ok: %s\n" : "==> FAILED: %s\n", what);
  std::fflush(stdout);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::strcmp(argv[1], "--child") == 0) {
    uint32_t port = 0;
    if (!absl::SimpleAtoi(argv[4], &port) || port == 0 || port > 65535) {
      return 2;
    }
    return RunChild(argv[2], argv[3], static_cast<uint16_t>(port));
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);
  // A per-run cluster and beacon port keep the demo apart from anything
  // else on this host; loopback beacons never leave it.
  const std::string cluster = absl::StrCat("demo-", getpid());
  const uint16_t port = static_cast<uint16_t>(47500 + getpid() % 10000);
  std::printf(
      "==> fabric discovery demo: cluster %s, beacons on "
      "127.255.255.255:%u\n",
      cluster.c_str(), port);
  Demo demo("/proc/self/exe", cluster, port);
  std::printf("==> starting three node processes: alpha, beta, gamma\n");
  for (const char* name : {"alpha", "beta", "gamma"}) {
    if (!demo.Spawn(name)) return Step(false, "spawn a node process") ? 0 : 1;
  }
  const absl::Duration kStepTimeout = absl::Seconds(30);
  if (!Step(demo.WaitFor("peer joined", 6, kStepTimeout),
            "every node sees the two others")) {
    return 1;
  }
  std::printf("==> killing beta with SIGKILL (no goodbye)\n");
  const absl::Time killed = absl::Now();
  demo.Signal("beta", SIGKILL);
  demo.Reap("beta");
  if (!Step(demo.WaitFor("peer left beta", 2, kStepTimeout),
            "alpha and gamma detect that beta died")) {
    return 1;
  }
  std::printf("    (detected in %s)\n",
              absl::FormatDuration(absl::Now() - killed).c_str());
  std::printf("==> stopping gamma cleanly (SIGTERM: it says goodbye)\n");
  demo.Signal("gamma", SIGTERM);
  if (!Step(demo.WaitFor("peer left gamma (goodbye)", 1, kStepTimeout),
            "alpha hears gamma's goodbye")) {
    return 1;
  }
  demo.Reap("gamma");
  demo.Signal("alpha", SIGTERM);
  const int status = demo.Reap("alpha");
  Step(WIFEXITED(status) && WEXITSTATUS(status) == 0, "alpha stopped cleanly");
  std::printf("==> demo finished\n");
  return 0;
}
