// SPDX-License-Identifier: Apache-2.0
// Request/reply benchmark, 100-byte bodies, everything in this process over
// TCP loopback: sequential round-trip latency (p50/p99) and pipelined
// requests/s for fabric (a client node and a server node, each with its
// engine thread) beside raw libzmq REQ/REP (latency) and DEALER/ROUTER
// (pipelined) measured in the same run as the yardstick. A measurement,
// never a pass/fail test (bench/README.md).
//
//   reqrep_bench [--count 20000] [--warmup 2000] [--pipelined 300000]
//                [--window 100] [--size 100] [--runs 3] [--secure]
//
// fabric runs twice: with one handler thread (the default shape: the
// handler runs off the engine thread) and with the handler inline on the
// server's engine thread (ServerOptions::threads = 0).

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_util.h"
#include "fabric/node.h"
#include "patterns/reqrep/client.h"
#include "patterns/reqrep/server.h"

namespace fabric::bench {
namespace {

struct Flags {
  int count = 20000;
  int warmup = 2000;
  int pipelined = 300000;
  int window = 100;
  int size = 100;
  int runs = 3;
};

struct Latency {
  double p50_us = 0, p99_us = 0, mean_us = 0;
};
struct Row {
  std::string name;
  std::vector<Latency> latency;  // one per run
  std::vector<double> rate;      // one per run
};

int64_t NowNs() { return absl::GetCurrentTimeNanos(); }

Latency Summarize(std::vector<int64_t> ns) {
  Latency l;
  if (ns.empty()) return l;
  std::sort(ns.begin(), ns.end());
  double sum = 0;
  for (int64_t v : ns) sum += static_cast<double>(v);
  l.p50_us = static_cast<double>(ns[ns.size() / 2]) / 1e3;
  l.p99_us = static_cast<double>(ns[ns.size() * 99 / 100]) / 1e3;
  l.mean_us = sum / static_cast<double>(ns.size()) / 1e3;
  return l;
}

// Raw libzmq REQ/REP: a REP echo thread and a REQ, kept for a whole run so
// the run can interleave them with fabric calls.
class ZmqReqRep {
 public:
  ZmqReqRep()
      : rep_(ctx_, zmq::socket_type::rep), req_(ctx_, zmq::socket_type::req) {
    rep_.set(zmq::sockopt::linger, 0);
    rep_.bind("tcp://127.0.0.1:*");
    const std::string ep = rep_.get(zmq::sockopt::last_endpoint);
    server_ = std::thread([this] {
      zmq::message_t m;
      while (rep_.recv(m) && m.size() > 0) rep_.send(m, zmq::send_flags::none);
    });
    req_.set(zmq::sockopt::linger, 0);
    req_.connect(ep);
  }
  ~ZmqReqRep() {
    req_.send(zmq::buffer("", 0), zmq::send_flags::none);  // stop marker
    server_.join();
  }
  // One round trip of `body`, in ns.
  int64_t RoundTrip(const std::string& body) {
    const int64_t t0 = NowNs();
    req_.send(zmq::buffer(body), zmq::send_flags::none);
    (void)req_.recv(reply_);
    return NowNs() - t0;
  }

 private:
  zmq::context_t ctx_{1};
  zmq::socket_t rep_;
  zmq::socket_t req_;
  zmq::message_t reply_;
  std::thread server_;
};

// Raw libzmq DEALER -> ROUTER echo with `window` requests in flight.
double ZmqDealerRouter(const Flags& f) {
  zmq::context_t ctx(1);
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.set(zmq::sockopt::sndhwm, 0);
  router.set(zmq::sockopt::rcvhwm, 0);
  router.bind("tcp://127.0.0.1:*");
  const std::string ep = router.get(zmq::sockopt::last_endpoint);
  std::thread server([&] {
    zmq::message_t id, m;
    for (int i = 0; i < f.pipelined; ++i) {
      if (!router.recv(id)) return;
      (void)router.recv(m);
      router.send(id, zmq::send_flags::sndmore);
      router.send(m, zmq::send_flags::none);
    }
  });
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.set(zmq::sockopt::sndhwm, 0);
  dealer.set(zmq::sockopt::rcvhwm, 0);
  dealer.connect(ep);
  const std::string body(static_cast<size_t>(f.size), 'x');
  zmq::message_t reply;
  int sent = 0, received = 0;
  const int64_t t0 = NowNs();
  while (received < f.pipelined) {
    while (sent < f.pipelined && sent - received < f.window) {
      dealer.send(zmq::buffer(body), zmq::send_flags::none);
      ++sent;
    }
    (void)dealer.recv(reply);
    ++received;
  }
  const double secs = static_cast<double>(NowNs() - t0) / 1e9;
  server.join();
  return f.pipelined / secs;
}

struct FabricPair {
  std::unique_ptr<Node> server_node, client_node;
  std::unique_ptr<Server> server;
  std::unique_ptr<Client> client;         // default options (spins)
  std::unique_ptr<Client> client_nospin;  // spin_wait = 0
};

FabricPair StartFabric(int threads, const BenchCluster& cluster) {
  FabricPair p;
  p.server_node = StartBenchNode("bench-server", cluster);
  p.client_node = StartBenchNode("bench-client", cluster);
  ServerOptions so;
  so.service = "bench";
  so.threads = threads;
  so.max_pending = 1 << 20;
  so.handler = [](Request r, Responder responder) {
    (void)responder.Reply(std::move(r.body));
  };
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Create(*p.server_node, std::move(so));
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Create(*p.client_node);
  if (!server.ok() || !client.ok()) {
    std::fprintf(stderr, "server/client failed\n");
    std::exit(1);
  }
  p.server = std::move(*server);
  p.client = std::move(*client);
  ClientOptions nospin;
  nospin.spin_wait = absl::ZeroDuration();
  absl::StatusOr<std::unique_ptr<Client>> quiet =
      Client::Create(*p.client_node, nospin);
  if (!quiet.ok()) std::exit(1);
  p.client_nospin = std::move(*quiet);
  // Until a call succeeds: discovery done and the link up.
  CallOptions call;
  call.timeout = absl::Seconds(2);
  call.wait_for_server = true;
  const absl::Time until = absl::Now() + absl::Seconds(30);
  while (!p.client->Call("bench", "warm", call).ok()) {
    if (absl::Now() > until) {
      std::fprintf(stderr, "no fabric server reachable\n");
      std::exit(1);
    }
  }
  return p;
}

// One fabric round trip of `body`, in ns.
int64_t FabricRoundTrip(Client& client, const std::string& body) {
  CallOptions call;
  call.timeout = absl::Seconds(5);
  const int64_t t0 = NowNs();
  absl::StatusOr<Reply> r = client.Call("bench", body, call);
  const int64_t ns = NowNs() - t0;
  if (!r.ok() || r->body.size() != body.size()) {
    std::fprintf(stderr, "call: %s\n", r.status().ToString().c_str());
    std::exit(1);
  }
  return ns;
}

// Sequential round trips of REQ/REP and of each fabric client, interleaved
// in blocks of 500 so that all see the same load on a shared machine.
// Returns one Latency per system: REQ/REP first, then `clients` in order.
std::vector<Latency> Sequential(const Flags& f,
                                const std::vector<Client*>& clients) {
  const std::string body(static_cast<size_t>(f.size), 'x');
  ZmqReqRep zmq;
  std::vector<std::vector<int64_t>> ns(clients.size() + 1);
  constexpr int kBlock = 500;
  for (int done = -f.warmup; done < f.count; done += kBlock) {
    const bool keep = done >= 0;
    for (size_t k = 0; k < ns.size(); ++k) {
      for (int i = 0; i < kBlock; ++i) {
        const int64_t t = k == 0 ? zmq.RoundTrip(body)
                                 : FabricRoundTrip(*clients[k - 1], body);
        if (keep) ns[k].push_back(t);
      }
    }
  }
  std::vector<Latency> out;
  for (auto& v : ns) out.push_back(Summarize(std::move(v)));
  return out;
}

// `window` asynchronous calls in flight; each callback (on the client
// node's engine thread) starts the next call. The state is shared with the
// callbacks, which may still run after the last completion was counted.
double FabricPipelined(const Flags& f, FabricPair& p) {
  struct State {
    std::string body;
    CallOptions call;
    Client* client;
    int total;
    std::atomic<int> started{0}, completed{0}, failed{0};
    absl::Notification all_done;
    Client::Callback on_reply;
    void StartOne() {
      if (started.fetch_add(1) >= total) return;
      client->CallAsync("bench", body, call, on_reply);
    }
  };
  auto st = std::make_shared<State>();
  st->body.assign(static_cast<size_t>(f.size), 'x');
  st->call.timeout = absl::Seconds(30);
  st->client = p.client.get();
  st->total = f.pipelined;
  std::weak_ptr<State> weak = st;
  st->on_reply = [weak](absl::StatusOr<Reply> r) {
    std::shared_ptr<State> s = weak.lock();
    if (s == nullptr) return;
    if (!r.ok()) s->failed++;
    if (s->completed.fetch_add(1) + 1 == s->total) s->all_done.Notify();
    s->StartOne();
  };
  const int64_t t0 = NowNs();
  for (int i = 0; i < f.window; ++i) st->StartOne();
  st->all_done.WaitForNotification();
  const double secs = static_cast<double>(NowNs() - t0) / 1e9;
  if (st->failed.load() > 0) {
    std::fprintf(stderr, "%d calls failed\n", st->failed.load());
  }
  return f.pipelined / secs;
}

template <typename T, typename F>
T Median(std::vector<T> v, F key) {
  std::sort(v.begin(), v.end(),
            [&](const T& a, const T& b) { return key(a) < key(b); });
  return v[v.size() / 2];
}

}  // namespace
}  // namespace fabric::bench

int main(int argc, char** argv) {
  using namespace fabric::bench;
  InitBenchProcess();
  Flags f;
  CLI::App app{"request/reply benchmark: fabric beside raw libzmq"};
  app.add_option("--count", f.count, "sequential calls measured per run")
      ->check(CLI::Range(1, kMaxFlag));
  app.add_option("--warmup", f.warmup, "sequential calls not measured")
      ->check(CLI::Range(0, kMaxFlag));
  app.add_option("--pipelined", f.pipelined, "calls per pipelined run")
      ->check(CLI::Range(1, kMaxFlag));
  app.add_option("--window", f.window, "calls in flight when pipelined")
      ->check(CLI::Range(1, kMaxFlag));
  app.add_option("--size", f.size, "body bytes")
      ->check(CLI::Range(0, kMaxFlag));
  app.add_option("--runs", f.runs, "runs, interleaved")
      ->check(CLI::Range(1, kMaxFlag));
  AddSecureFlag(app);
  if (int code = ParseBenchFlags(app, argc, argv); code >= 0) return code;
  Row zreq{"raw libzmq REQ/REP", {}, {}};
  Row zdr{"raw libzmq DEALER/ROUTER", {}, {}};
  Row fab1{"fabric, 1 handler thread", {}, {}};
  Row fab0{"fabric, inline handler", {}, {}};
  Row fab1q{"  same, client spin off", {}, {}};
  Row fab0q{"  same, client spin off", {}, {}};
  // Held for the whole run: a secure cluster's key files live as long.
  const BenchCluster cluster1 = NewBenchCluster("rr-t1");
  const BenchCluster cluster0 = NewBenchCluster("rr-t0");
  FabricPair pair1 = StartFabric(1, cluster1);
  FabricPair pair0 = StartFabric(0, cluster0);
  for (int run = 0; run < f.runs; ++run) {
    std::fprintf(stderr, "run %d/%d ...\n", run + 1, f.runs);
    std::vector<Latency> l =
        Sequential(f, {pair1.client.get(), pair0.client.get(),
                       pair1.client_nospin.get(), pair0.client_nospin.get()});
    zreq.latency.push_back(l[0]);
    fab1.latency.push_back(l[1]);
    fab0.latency.push_back(l[2]);
    fab1q.latency.push_back(l[3]);
    fab0q.latency.push_back(l[4]);
    zdr.rate.push_back(ZmqDealerRouter(f));
    fab1.rate.push_back(FabricPipelined(f, pair1));
    fab0.rate.push_back(FabricPipelined(f, pair0));
  }
  const uint64_t frames = pair1.client_node->Stats().messages_sent;
  const uint64_t requests = pair1.server->Stats().received;
  for (FabricPair* p : {&pair1, &pair0}) {
    p->client->Close();
    p->client_nospin->Close();
    p->server->Close();
  }
  auto p50 = [](const Latency& l) { return l.p50_us; };
  auto id = [](double d) { return d; };
  const Latency zl = Median(zreq.latency, p50);
  const double zr = Median(zdr.rate, id);
  std::printf(
      "%d-byte bodies; sequential: %d round trips (+%d warm-up) each, "
      "interleaved in blocks of 500; pipelined: %d requests, window %d; "
      "median of %d runs; fabric security: %s\n",
      f.size, f.count, f.warmup, f.pipelined, f.window, f.runs,
      BenchSecure() ? "curve (one key per node)" : "off");
  std::printf("%-28s %9s %9s %9s %12s %12s %12s\n", "system", "p50 us",
              "p99 us", "mean us", "p50/REQ-REP", "pipelined/s", "/DEALER-RTR");
  std::printf("%-28s %9.1f %9.1f %9.1f %12s %12s %12s\n", zreq.name.c_str(),
              zl.p50_us, zl.p99_us, zl.mean_us, "1.00", "-", "-");
  std::printf("%-28s %9s %9s %9s %12s %12.0f %12s\n", zdr.name.c_str(), "-",
              "-", "-", "-", zr, "1.00");
  for (const Row* row : {&fab1, &fab1q, &fab0, &fab0q}) {
    const Latency l = Median(row->latency, p50);
    std::printf("%-28s %9.1f %9.1f %9.1f %12.2f", row->name.c_str(), l.p50_us,
                l.p99_us, l.mean_us, l.p50_us / zl.p50_us);
    if (row->rate.empty()) {
      std::printf(" %12s %12s\n", "-", "-");
    } else {
      const double r = Median(row->rate, id);
      std::printf(" %12.0f %12.2f\n", r, r / zr);
    }
  }
  std::printf("targets: p50/REQ-REP <= 1.30, pipelined/DEALER-RTR >= 0.50\n");
  std::printf(
      "each run (p50 us REQ-REP/1-thread/1-thread no spin/inline/inline no "
      "spin):");
  for (int run = 0; run < f.runs; ++run) {
    std::printf(" [%.0f/%.0f/%.0f/%.0f/%.0f]", zreq.latency[run].p50_us,
                fab1.latency[run].p50_us, fab1q.latency[run].p50_us,
                fab0.latency[run].p50_us, fab0q.latency[run].p50_us);
  }
  std::printf("\neach run (req/s DEALER-RTR/1-thread/inline):");
  for (int run = 0; run < f.runs; ++run) {
    std::printf(" [%.0f/%.0f/%.0f]", zdr.rate[run], fab1.rate[run],
                fab0.rate[run]);
  }
  std::printf("\nrequests per frame (1-thread client): %.1f\n",
              static_cast<double>(requests) /
                  std::max<double>(1.0, static_cast<double>(frames)));
  return 0;
}
