// SPDX-License-Identifier: Apache-2.0
// Request/reply failover: three server processes serve the "thumbnail"
// service (fabric::Server) and a client process (fabric::Client) calls it
// continuously from four threads, each call with a 2 s deadline. The driver
// SIGKILLs one server mid-run; the client sees its connection drop, retries
// the calls that were in flight there on the other two, and new calls go
// only to the survivors. Narrates the replies per server before and after.
//
//   build/examples/rpc_failover [--verbose]
//
// Exits 0 only if every call ended by its deadline with a reply or a clear
// status (deadline exceeded, unavailable), at most 1% of them failed, and
// calls kept succeeding on the two other servers after the kill.
//
// Roles, each this binary run again by the driver (examples/demo_util.h):
//   rpc_failover server name=S     one server of the service
//   rpc_failover client servers=N  the caller
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/demo_util.h"
#include "fabric/base/status_macros.h"
#include "fabric/node.h"
#include "fabric/reqrep/client.h"
#include "fabric/reqrep/server.h"

namespace {

using ::fabric::examples::Emit;
using ::fabric::examples::Fail;
using ::fabric::examples::Fields;
using ::fabric::examples::Processes;
using ::fabric::examples::RoleNodeOptions;
using ::fabric::examples::Say;
using ::fabric::examples::StopRequested;
using ::fabric::examples::WaitForStop;

constexpr char kService[] = "thumbnail";
constexpr absl::Duration kWork = absl::Milliseconds(20);   // per request
constexpr absl::Duration kDeadline = absl::Seconds(2);     // per call
constexpr int kCallers = 4;                                // client threads
constexpr absl::Duration kPause = absl::Milliseconds(10);  // between calls
const char* const kServers[] = {"server-1", "server-2", "server-3"};

// ------------------------------------------------------------ role: server

int RunServer(const Fields& args) {
  const std::string name = args.Get("name");
  absl::StatusOr<std::unique_ptr<fabric::Node>> node =
      fabric::Node::Start(RoleNodeOptions(args, name));
  if (!node.ok()) return Fail(name, node.status());

  fabric::ServerOptions options;
  options.service = kService;
  options.threads = 2;  // handler threads
  // Runs on a handler thread; the reply names the server for the narration.
  options.handler = fabric::SyncHandler(
      [name](const fabric::Request& r) -> absl::StatusOr<std::string> {
        if (r.body.empty()) return absl::InvalidArgumentError("empty photo");
        Emit("start %s", r.body.c_str());
        absl::SleepFor(kWork);  // pretend to resize
        Emit("end %s", r.body.c_str());
        return absl::StrCat("thumb(", r.body, ") by ", name);
      });
  absl::StatusOr<std::unique_ptr<fabric::Server>> server =
      fabric::Server::Create(**node, std::move(options));
  if (!server.ok()) return Fail(name, server.status());
  Emit("ready");

  WaitForStop();
  // Drain: stop advertising, answer what was accepted, leave.
  (*server)->Close();
  Emit("stopped replied=%llu",
       static_cast<unsigned long long>((*server)->Stats().replied));
  (*node)->Close();
  return 0;
}

// ------------------------------------------------------------ role: client

// One caller thread: calls the service in a loop until `stop`, printing
// each call's outcome. Every call has its own deadline and ends with a
// reply or a status by then, retries on other servers included.
void CallLoop(fabric::Client& client, const std::atomic<bool>& stop,
              std::atomic<int>& next) {
  while (!stop.load(std::memory_order_relaxed)) {
    const int n = next.fetch_add(1, std::memory_order_relaxed) + 1;
    fabric::CallOptions call;
    call.timeout = kDeadline;
    const absl::Time start = absl::Now();
    absl::StatusOr<fabric::Reply> reply =
        client.Call(kService, absl::StrCat("photo-", n), call);
    const long long start_us = absl::ToUnixMicros(start);
    const long long end_us = absl::ToUnixMicros(absl::Now());
    if (reply.ok()) {
      Emit("call %d ok start=%lld end=%lld attempts=%u text=%s", n, start_us,
           end_us, reply->attempts, reply->body.c_str());
    } else {
      Emit("call %d failed start=%lld end=%lld code=%s text=%s", n, start_us,
           end_us, absl::StatusCodeToString(reply.status().code()).c_str(),
           std::string(reply.status().message()).c_str());
    }
    absl::SleepFor(kPause);  // the caller's think time
  }
}

int RunClient(const Fields& args) {
  absl::StatusOr<std::unique_ptr<fabric::Node>> node =
      fabric::Node::Start(RoleNodeOptions(args, "client"));
  if (!node.ok()) return Fail("client", node.status());
  fabric::ClientOptions options;
  options.spin_wait = absl::ZeroDuration();  // no busy-waiting on a shared box
  absl::StatusOr<std::unique_ptr<fabric::Client>> created =
      fabric::Client::Create(**node, options);
  if (!created.ok()) return Fail("client", created.status());
  fabric::Client& client = **created;

  // Wait (bounded) until discovery found every server, so calls are spread
  // over all of them from the start.
  const size_t want = static_cast<size_t>(args.GetInt("servers", 1));
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  absl::StatusOr<std::vector<fabric::NodeId>> servers;
  do {
    if (StopRequested(absl::Milliseconds(20))) return 0;
    servers = client.Servers(kService);
  } while ((!servers.ok() || servers->size() < want) && absl::Now() < deadline);
  Emit("ready servers=%zu", servers.ok() ? servers->size() : 0);

  std::atomic<bool> stop{false};  // relaxed: a request to stop, no data
  std::atomic<int> next{0};       // relaxed: only hands out call numbers
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&] { CallLoop(client, stop, next); });
  }
  WaitForStop();
  stop.store(true, std::memory_order_relaxed);
  for (std::thread& t : callers) t.join();
  const fabric::ClientStats s = client.Stats();
  Emit("stopped calls=%llu ok=%llu failed=%llu retries=%llu",
       static_cast<unsigned long long>(s.calls),
       static_cast<unsigned long long>(s.ok),
       static_cast<unsigned long long>(s.failed),
       static_cast<unsigned long long>(s.retries));
  client.Close();
  (*node)->Close();
  return 0;
}

// ------------------------------------------------------------------ driver

struct Call {
  int n = 0;
  bool ok = false;
  absl::Time start, end;
  int attempts = 0;
  std::string server;  // who replied
  std::string code, message;
};

struct Calls {
  std::set<std::string> ready;
  std::vector<Call> calls;
  std::map<std::string, std::set<std::string>> in_hand;  // server -> bodies

  void OnLine(const std::string& name, const std::string& line) {
    const Fields f(line);
    if (f.Word(0) == "ready") ready.insert(name);
    if (f.Word(0) == "start") in_hand[name].insert(f.Word(1));
    if (f.Word(0) == "end") in_hand[name].erase(f.Word(1));
    if (f.Word(0) != "call") return;
    Call c;
    c.n = std::atoi(f.Word(1).c_str());
    c.ok = f.Word(2) == "ok";
    c.start = absl::FromUnixMicros(f.GetInt("start"));
    c.end = absl::FromUnixMicros(f.GetInt("end"));
    c.attempts = static_cast<int>(f.GetInt("attempts"));
    const std::string text = f.Get("text");
    if (c.ok) {
      c.server = text.substr(text.rfind(' ') + 1);  // "... by server-2"
    } else {
      c.code = f.Get("code");
      c.message = text;
    }
    calls.push_back(std::move(c));
  }

  // Replies per server among the calls `pick` selects: "server-1 40, ...".
  std::string PerServer(const std::function<bool(const Call&)>& pick) const {
    std::map<std::string, int> n;
    for (const char* s : kServers) n[s] = 0;
    for (const Call& c : calls) {
      if (c.ok && pick(c)) ++n[c.server];
    }
    std::vector<std::string> out;
    for (const auto& [server, count] : n) {
      out.push_back(absl::StrCat(server, " ", count));
    }
    return absl::StrJoin(out, ", ");
  }
  int Count(const std::function<bool(const Call&)>& pick) const {
    int n = 0;
    for (const Call& c : calls) n += pick(c);
    return n;
  }
};

// Checks and prints the outcome of every call around the kill: SIGKILL
// sent at `signalled`, server-2 reaped at `killed`.
absl::Status Verify(const Calls& c, absl::Time signalled, absl::Time killed) {
  auto before = [&](const Call& x) { return x.end < signalled; };
  auto across = [&](const Call& x) {
    return x.start < killed && x.end >= signalled;
  };
  auto after = [&](const Call& x) { return x.start >= killed; };
  const int total = static_cast<int>(c.calls.size());
  const int failed = c.Count([](const Call& x) { return !x.ok; });
  Say("Summary of %d calls (deadline %s each):", total,
      absl::FormatDuration(kDeadline).c_str());
  Say("  before the kill: %d calls; replies: %s", c.Count(before),
      c.PerServer(before).c_str());
  Say("  in flight at the kill: %d calls, %d of them retried; replies: %s",
      c.Count(across),
      c.Count([&](const Call& x) { return across(x) && x.attempts > 1; }),
      c.PerServer(across).c_str());
  Say("  after the kill: %d calls; replies: %s", c.Count(after),
      c.PerServer(after).c_str());

  std::vector<std::string> problems;
  absl::Duration slowest;
  for (const Call& x : c.calls) {
    slowest = std::max(slowest, x.end - x.start);
    // A blocking call returns by its deadline (plus scheduling slack).
    if (x.end - x.start > kDeadline + absl::Seconds(1)) {
      problems.push_back(absl::StrCat("call ", x.n, " took ",
                                      absl::FormatDuration(x.end - x.start)));
    }
    if (!x.ok) {
      Say("  call %d failed after %s: %s: %s", x.n,
          absl::FormatDuration(x.end - x.start).c_str(), x.code.c_str(),
          x.message.c_str());
      if (x.code != "DEADLINE_EXCEEDED" && x.code != "UNAVAILABLE") {
        problems.push_back(absl::StrCat("call ", x.n, " failed with ", x.code,
                                        ": ", x.message));
      }
    }
  }
  Say("  %d succeeded, %d failed; slowest call %s.", total - failed, failed,
      absl::FormatDuration(absl::Trunc(slowest, absl::Milliseconds(1)))
          .c_str());
  if (failed * 100 > total) {
    problems.push_back(absl::StrCat(failed, " of ", total, " calls failed"));
  }
  const int after_ok = c.Count([&](const Call& x) { return after(x) && x.ok; });
  const int after_dead = c.Count(
      [&](const Call& x) { return after(x) && x.server == "server-2"; });
  if (after_ok == 0 || after_dead > 0) {
    problems.push_back(
        "no failover: calls after the kill did not succeed on "
        "server-1 and server-3 alone");
  }
  if (!problems.empty()) {
    return absl::InternalError(absl::StrJoin(problems, "; "));
  }
  Say("OK: every call ended by its deadline, and after the kill every call "
      "was served by server-1 and server-3.");
  return absl::OkStatus();
}

// The demo's script. Each step waits for what it narrates, with a bound.
class Demo {
 public:
  explicit Demo(bool verbose)
      : procs_([this](const std::string& name,
                      const std::string& line) { c_.OnLine(name, line); },
               absl::Seconds(120)) {
    procs_.set_echo(verbose);
  }

  absl::Status Run() {
    Say("RPC failover demo: cluster %s, loopback only.",
        procs_.cluster().c_str());
    FABRIC_RETURN_IF_ERROR(StartAll());
    FABRIC_RETURN_IF_ERROR(KillServer());
    auto after = [&](const Call& x) { return x.start >= killed_; };
    FABRIC_RETURN_IF_ERROR(
        procs_.WaitUntil([&] { return c_.Count(after) >= 300; }, kStep,
                         "for 300 calls after the kill"));
    Say("300 calls made since the kill; replies per server: %s.",
        c_.PerServer(after).c_str());
    Say("Stopping the client, then the servers (SIGTERM; servers drain).");
    FABRIC_RETURN_IF_ERROR(procs_.StopCleanly("client"));
    FABRIC_RETURN_IF_ERROR(procs_.StopCleanly("server-1"));
    FABRIC_RETURN_IF_ERROR(procs_.StopCleanly("server-3"));
    return Verify(c_, signalled_, killed_);
  }

 private:
  static constexpr absl::Duration kStep = absl::Seconds(30);  // never hit

  absl::Status StartAll() {
    Say("Starting 3 servers of the \"%s\" service (2 handler threads each, "
        "%s per request).",
        kService, absl::FormatDuration(kWork).c_str());
    for (const char* s : kServers) {
      FABRIC_RETURN_IF_ERROR(
          procs_.Start(s, "server", {absl::StrCat("name=", s)}));
    }
    FABRIC_RETURN_IF_ERROR(procs_.WaitUntil(
        [&] { return c_.ready.size() == 3; }, kStep, "for the servers"));
    Say("Starting the client: %d threads calling in a loop, each call with "
        "a %s deadline.",
        kCallers, absl::FormatDuration(kDeadline).c_str());
    return procs_.Start("client", "client", {"servers=3"});
  }

  // Kills server-2 in the middle of a request, once every server has
  // answered 50 calls, and shows what became of the calls it held.
  absl::Status KillServer() {
    auto ok_by = [&](const std::string& server) {
      return c_.Count(
          [&](const Call& x) { return x.ok && x.server == server; });
    };
    FABRIC_RETURN_IF_ERROR(procs_.WaitUntil(
        [&] {
          return ok_by("server-1") >= 50 && ok_by("server-2") >= 50 &&
                 ok_by("server-3") >= 50 && !c_.in_hand["server-2"].empty();
        },
        kStep, "for calls to reach every server"));
    Say("%zu calls so far; replies per server: %s.", c_.calls.size(),
        c_.PerServer([](const Call&) { return true; }).c_str());
    Say("Killing server-2 with SIGKILL while it handles a request.");
    signalled_ = absl::Now();
    FABRIC_RETURN_IF_ERROR(procs_.Kill("server-2"));
    // Taken once server-2 is reaped: calls started later cannot reach it.
    killed_ = absl::Now();
    const std::set<std::string> held = c_.in_hand["server-2"];
    Say("server-2 died in the middle of %zu call(s): %s.", held.size(),
        absl::StrJoin(held, ", ").c_str());
    auto outcome = [&](const std::string& body) -> const Call* {
      for (const Call& x : c_.calls) {
        if (absl::StrCat("photo-", x.n) == body) return &x;
      }
      return nullptr;
    };
    FABRIC_RETURN_IF_ERROR(procs_.WaitUntil(
        [&] {
          for (const std::string& body : held) {
            if (outcome(body) == nullptr) return false;
          }
          return true;
        },
        kStep, "for the calls server-2 held"));
    for (const std::string& body : held) {
      const Call& x = *outcome(body);
      Say("  call %s: %s after %s, %d attempt(s)%s%s", body.c_str(),
          x.ok ? "answered" : "FAILED",
          absl::FormatDuration(
              absl::Trunc(x.end - x.start, absl::Milliseconds(1)))
              .c_str(),
          x.attempts, x.ok ? ", by " : "", x.ok ? x.server.c_str() : "");
    }
    return absl::OkStatus();
  }

  Calls c_;
  Processes procs_;
  absl::Time signalled_;  // SIGKILL sent to server-2
  absl::Time killed_;     // server-2 reaped
};

}  // namespace

int main(int argc, char** argv) {
  return fabric::examples::DemoMain(
      argc, argv, {{"server", RunServer}, {"client", RunClient}},
      [](bool verbose) { return Demo(verbose).Run(); });
}
