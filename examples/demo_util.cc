// SPDX-License-Identifier: Apache-2.0
#include "examples/demo_util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "fabric/base/free_port.h"

namespace fabric::examples {
namespace {

// ------------------------------------------------ signal-handler state
// Written by async-signal handlers, so plain sig_atomic_t and a self-pipe.

volatile sig_atomic_t g_interrupted = 0;  // the signal number
int g_wake_pipe[2] = {-1, -1};  // the handler writes a byte to wake poll
constexpr int kMaxChildren = 64;
volatile sig_atomic_t g_child_pids[kMaxChildren] = {};  // for the alarm

void OnInterrupt(int signal) {
  g_interrupted = signal;
  const char byte = 1;
  if (g_wake_pipe[1] >= 0) {
    ssize_t ignored = write(g_wake_pipe[1], &byte, 1);
    (void)ignored;  // a full pipe already wakes the poll
  }
}

// Last resort when the driver itself is stuck: kill every child, exit.
void OnAlarm(int) {
  for (int i = 0; i < kMaxChildren; ++i) {
    if (g_child_pids[i] > 0) kill(g_child_pids[i], SIGKILL);
  }
  static const char kMessage[] =
      "demo: watchdog expired; killed every role process\n";
  ssize_t ignored = write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
  (void)ignored;
  _exit(1);
}

void RegisterPid(pid_t pid) {
  for (int i = 0; i < kMaxChildren; ++i) {
    if (g_child_pids[i] == 0) {
      g_child_pids[i] = pid;
      return;
    }
  }
}

void UnregisterPid(pid_t pid) {
  for (int i = 0; i < kMaxChildren; ++i) {
    if (g_child_pids[i] == pid) g_child_pids[i] = 0;
  }
}

void InstallDriverSignals() {
  if (g_wake_pipe[0] < 0 && pipe2(g_wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    g_wake_pipe[0] = g_wake_pipe[1] = -1;
  }
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sa.sa_handler = OnAlarm;
  sigaction(SIGALRM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

std::string SelfPath() {
  char buffer[4096];
  const ssize_t n = readlink("/proc/self/exe", buffer, sizeof(buffer) - 1);
  if (n <= 0) return "/proc/self/exe";
  return std::string(buffer, static_cast<size_t>(n));
}

std::string RandomClusterName() {
  std::random_device rd;
  return absl::StrFormat("demo-%08x%08x", rd(), rd());
}

absl::Time StartTime() {
  static const absl::Time start = absl::Now();
  return start;
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

// ---------------------------------------------------------------- role side

Fields::Fields(absl::string_view line) {
  while (!line.empty()) {
    const size_t space = line.find(' ');
    if (absl::StartsWith(line, "text=") || space == absl::string_view::npos) {
      Add(line);
      break;
    }
    Add(line.substr(0, space));
    line.remove_prefix(space + 1);
  }
}

Fields::Fields(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) Add(argv[i]);
}

void Fields::Add(absl::string_view token) {
  if (token.empty()) return;
  const size_t eq = token.find('=');
  if (eq == absl::string_view::npos) {
    words_.emplace_back(token);
  } else {
    values_[std::string(token.substr(0, eq))] =
        std::string(token.substr(eq + 1));
  }
}

std::string Fields::Word(size_t i) const {
  return i < words_.size() ? words_[i] : "";
}

bool Fields::Has(absl::string_view key) const {
  return values_.find(key) != values_.end();
}

std::string Fields::Get(absl::string_view key,
                        absl::string_view fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? std::string(fallback) : it->second;
}

int64_t Fields::GetInt(absl::string_view key, int64_t fallback) const {
  int64_t value = 0;
  auto it = values_.find(key);
  if (it == values_.end() || !absl::SimpleAtoi(it->second, &value)) {
    return fallback;
  }
  return value;
}

NodeOptions RoleNodeOptions(const Fields& args, std::string name) {
  NodeOptions options;
  options.name = std::move(name);
  options.cluster = args.Get("cluster", "demo");
  options.discovery = DiscoveryMode::kLoopback;  // never leaves this host
  options.beacon_port = static_cast<uint16_t>(args.GetInt("beacon_port"));
  options.mailbox_port = 0;  // any free port
  options.beacon_interval = absl::Milliseconds(250);
  return options;
}

void InitRole() {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

bool StopRequested(absl::Duration wait) {
  static bool stopped = false;
  if (stopped) return true;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  const timespec ts = absl::ToTimespec(std::max(wait, absl::ZeroDuration()));
  stopped = sigtimedwait(&set, nullptr, &ts) > 0;
  return stopped;
}

void WaitForStop() {
  while (!StopRequested(absl::Seconds(1))) {
  }
}

int Fail(const std::string& who, const absl::Status& status) {
  std::fprintf(stderr, "%s: %s\n", who.c_str(), status.ToString().c_str());
  return 1;
}

void Emit(const char* format, ...) {
  flockfile(stdout);
  va_list args;
  va_start(args, format);
  std::vfprintf(stdout, format, args);
  va_end(args);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  funlockfile(stdout);
}

// ------------------------------------------------------------- driver side

void Say(const char* format, ...) {
  const double seconds = absl::ToDoubleSeconds(absl::Now() - StartTime());
  char text[2048];
  va_list args;
  va_start(args, format);
  std::vsnprintf(text, sizeof(text), format, args);
  va_end(args);
  std::printf("[%5.1fs] %s\n", seconds, text);
  std::fflush(stdout);
}

TempDir::TempDir(absl::string_view prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(
      base != nullptr && *base != '\0' ? base : "/tmp", "/", prefix, "-XXXXXX");
  if (mkdtemp(pattern.data()) != nullptr) path_ = std::move(pattern);
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ignored;  // best effort: nothing left to report it to
  std::filesystem::remove_all(path_, ignored);
}

Processes::Processes(LineHandler on_line, absl::Duration watchdog)
    : on_line_(std::move(on_line)),
      watchdog_(absl::Now() + watchdog),
      self_(SelfPath()),
      cluster_(RandomClusterName()),
      beacon_port_(FreeLoopbackPort(PortKind::kUdp).value_or(0)) {
  StartTime();
  InstallDriverSignals();
  // Soft deadline: `watchdog` (waits fail); hard one 20 s later (OnAlarm).
  alarm(static_cast<unsigned>(absl::ToInt64Seconds(watchdog)) + 20);
}

Processes::~Processes() {
  StopAll();
  alarm(0);
}

absl::Status Processes::Start(const std::string& name, const std::string& role,
                              std::vector<std::string> args) {
  if (running(name)) {
    return absl::AlreadyExistsError(absl::StrCat(name, " is running"));
  }
  if (beacon_port_ == 0) return absl::UnavailableError("no free UDP port");
  args.insert(args.begin(), {self_, role});
  args.push_back(absl::StrCat("cluster=", cluster_));
  args.push_back(absl::StrCat("beacon_port=", beacon_port_));
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec. Its own process
    // group, so Ctrl-C reaches the driver only and the driver stops it.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    signal(SIGPIPE, SIG_DFL);
    const int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, STDIN_FILENO);
    dup2(fds[1], STDOUT_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  RegisterPid(pid);
  children_[name] = Child{pid, fds[0], "", false, -1};
  return absl::OkStatus();
}

bool Processes::running(const std::string& name) const {
  auto it = children_.find(name);
  return it != children_.end() && it->second.pid > 0;
}

bool Processes::ReadFrom(const std::string& name, Child& child) {
  char buffer[8192];
  while (true) {
    const ssize_t n = read(child.out, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return true;  // EAGAIN: nothing more for now
    if (n == 0) {
      close(child.out);
      child.out = -1;
      return false;
    }
    child.partial.append(buffer, static_cast<size_t>(n));
    size_t pos;
    while ((pos = child.partial.find('\n')) != std::string::npos) {
      const std::string line = child.partial.substr(0, pos);
      child.partial.erase(0, pos + 1);
      if (echo_) std::printf("          %s| %s\n", name.c_str(), line.c_str());
      on_line_(name, line);
    }
  }
}

void Processes::Pump(absl::Duration wait) {
  std::vector<pollfd> fds;
  std::vector<std::string> names;
  for (auto& [name, child] : children_) {
    if (child.out < 0) continue;
    fds.push_back({child.out, POLLIN, 0});
    names.push_back(name);
  }
  if (g_wake_pipe[0] >= 0) fds.push_back({g_wake_pipe[0], POLLIN, 0});
  const int ms = static_cast<int>(
      std::clamp<int64_t>(absl::ToInt64Milliseconds(wait), 0, 50));
  if (poll(fds.data(), fds.size(), ms) <= 0) return;
  for (size_t i = 0; i < names.size(); ++i) {
    if (fds[i].revents != 0) ReadFrom(names[i], children_[names[i]]);
  }
  if (g_wake_pipe[0] >= 0 && fds.back().revents != 0) {
    // Drain it, or every later poll returns at once (g_interrupted stays).
    char drain[64];
    while (read(g_wake_pipe[0], drain, sizeof(drain)) > 0) {
    }
  }
}

void Processes::Reaped(const std::string& name, Child& child, int wait_status) {
  UnregisterPid(child.pid);
  child.pid = -1;
  child.exit_code = DecodeWaitStatus(wait_status);
  // The child is gone, so its pipe holds all it will ever write.
  if (child.out >= 0 && ReadFrom(name, child)) {
    close(child.out);  // EAGAIN with the writer dead: someone else holds it
    child.out = -1;
  }
  if (!child.partial.empty()) {
    on_line_(name, child.partial);
    child.partial.clear();
  }
}

absl::Status Processes::ReapExited() {
  absl::Status result;
  for (auto& [name, child] : children_) {
    if (child.pid <= 0) continue;
    int status = 0;
    if (waitpid(child.pid, &status, WNOHANG) != child.pid) continue;
    const bool expected = child.expect_exit;
    Reaped(name, child, status);
    if (!expected && child.exit_code != 0 && result.ok()) {
      result = absl::AbortedError(absl::StrCat(
          name, " exited unexpectedly with ",
          child.exit_code > 128 ? absl::StrCat("signal ", child.exit_code - 128)
                                : absl::StrCat("status ", child.exit_code)));
    }
  }
  return result;
}

absl::Status Processes::WaitUntil(const std::function<bool()>& done,
                                  absl::Duration timeout,
                                  absl::string_view what) {
  const absl::Time deadline = std::min(absl::Now() + timeout, watchdog_);
  while (true) {
    if (done()) return absl::OkStatus();
    if (g_interrupted) {
      return absl::CancelledError("interrupted (SIGINT/SIGTERM)");
    }
    absl::Status reaped = ReapExited();
    if (!reaped.ok()) return reaped;
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          now >= watchdog_ ? "the demo's watchdog expired" : "timed out",
          " after ", absl::FormatDuration(timeout), " ", what));
    }
    Pump(deadline - now);
  }
}

absl::StatusOr<int> Processes::AwaitExit(const std::string& name,
                                         absl::Duration timeout) {
  auto it = children_.find(name);
  if (it == children_.end()) {
    return absl::NotFoundError(absl::StrCat("no process ", name));
  }
  Child& child = it->second;
  const absl::Time deadline = absl::Now() + timeout;
  while (child.pid > 0) {
    int status = 0;
    if (waitpid(child.pid, &status, WNOHANG) == child.pid) {
      Reaped(name, child, status);
      break;
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          name, " still running after ", absl::FormatDuration(timeout)));
    }
    Pump(absl::Milliseconds(20));
  }
  return child.exit_code;
}

absl::Status Processes::Kill(const std::string& name) {
  auto it = children_.find(name);
  if (it == children_.end() || it->second.pid <= 0) {
    return absl::NotFoundError(absl::StrCat(name, " is not running"));
  }
  it->second.expect_exit = true;
  kill(it->second.pid, SIGKILL);
  return AwaitExit(name, absl::Seconds(10)).status();
}

absl::StatusOr<int> Processes::Stop(const std::string& name,
                                    absl::Duration grace) {
  auto it = children_.find(name);
  if (it == children_.end()) {
    return absl::NotFoundError(absl::StrCat("no process ", name));
  }
  if (it->second.pid <= 0) return it->second.exit_code;
  it->second.expect_exit = true;
  kill(it->second.pid, SIGTERM);
  kill(it->second.pid, SIGCONT);  // a stopped process takes SIGTERM too
  absl::StatusOr<int> code = AwaitExit(name, grace);
  if (code.ok() || !running(name)) return code;
  kill(it->second.pid, SIGKILL);
  return AwaitExit(name, absl::Seconds(10));
}

absl::Status Processes::StopCleanly(const std::string& name,
                                    absl::Duration grace) {
  absl::StatusOr<int> code = Stop(name, grace);
  if (!code.ok()) return code.status();
  if (*code != 0) {
    return absl::InternalError(
        absl::StrCat(name, " did not stop cleanly: exit code ", *code));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> Processes::WaitExit(const std::string& name,
                                        absl::Duration timeout) {
  auto it = children_.find(name);
  if (it != children_.end()) it->second.expect_exit = true;
  return AwaitExit(name, timeout);
}

void Processes::StopAll(absl::Duration grace) {
  // SIGTERM everyone first so they stop in parallel, then collect them.
  for (auto& [name, child] : children_) {
    if (child.pid <= 0) continue;
    child.expect_exit = true;
    kill(child.pid, SIGTERM);
    kill(child.pid, SIGCONT);
  }
  for (auto& [name, child] : children_) {
    if (child.pid > 0) Stop(name, grace).IgnoreError();  // best effort
  }
}

int DemoMain(int argc, char** argv,
             const std::map<std::string, RoleMain>& roles,
             const std::function<absl::Status(bool verbose)>& driver) {
  const char* self = argc > 0 ? argv[0] : "demo";
  if (argc > 1 && argv[1][0] != '-') {
    auto role = roles.find(argv[1]);
    if (role == roles.end()) {
      std::fprintf(stderr, "%s: unknown role %s\n", self, argv[1]);
      return 2;
    }
    InitRole();
    return role->second(Fields(argc, argv));
  }
  const bool verbose = argc == 2 && (std::strcmp(argv[1], "--verbose") == 0 ||
                                     std::strcmp(argv[1], "-v") == 0);
  if (argc > 1 && !verbose) {
    std::fprintf(stderr, "usage: %s [--verbose]\n", self);
    return 2;
  }
  const absl::Status status = driver(verbose);
  if (status.ok()) return 0;
  if (absl::IsCancelled(status) && g_interrupted != 0) {
    Say("Interrupted: every process was stopped and the temp files removed.");
    return 128 + g_interrupted;
  }
  Say("FAILED: %s", status.ToString().c_str());
  return 1;
}

}  // namespace fabric::examples
