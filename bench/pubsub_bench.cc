// SPDX-License-Identifier: Apache-2.0
// Pub/sub benchmark: 1 publisher -> 2 subscribers (--subscribers), 100-byte
// messages,
// messages/s per subscriber and loss, for raw libzmq PUB/SUB and fabric in
// the same run; then durable-topic replay from a warm topic log (published
// and synced first, so the log is in the page cache). Everything runs in
// this process over TCP loopback, each party with its own context (fabric:
// its own node) and threads. A measurement, never a pass/fail test.
//
// Mode `latency` then paces the same two set-ups at one message every
// --interval-us and reports the one-way latency at the subscribers (the
// cost of the publisher's batching when it is not busy).
//
//   pubsub_bench [--count 200000] [--size 100] [--replay-count 1000000]
//                [--modes zmq,fabric,replay,latency] [--runs 3]
//                [--latency-count 5000] [--interval-us 200]
//                [--subscribers 2] [--secure]
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_util.h"
#include "fabric/node.h"
#include "patterns/pubsub/publisher.h"
#include "patterns/pubsub/subscriber.h"

namespace fabric::bench {
namespace {

struct Flags {
  int count = 200000;
  int size = 100;
  int replay_count = 1000000;
  int runs = 3;
  int latency_count = 5000;
  int interval_us = 200;
  int subscribers = 2;  // fan-out: subscriber threads (zmq) or nodes
  std::vector<std::string> modes = {"zmq", "fabric", "replay", "latency"};
};

// Unbounded queues on both sides, for zmq and fabric alike, as in
// ../shared/peers (so the rows measure throughput; any loss is reported).
constexpr int kHwm = 0;
// A subscriber that hears nothing for this long has got all it will get.
constexpr absl::Duration kQuiet = absl::Seconds(1);

struct SubResult {
  int64_t received = 0;
  int64_t lost_counted = 0;       // fabric: reported as gaps
  double rate = 0;                // messages/s, first to last received
  double p50_us = 0, p99_us = 0;  // paced runs: one-way latency
};

struct Result {
  std::string name;
  bool paced = false;
  int sent = 0;
  std::vector<SubResult> subs;
};

int64_t NowNs() { return absl::GetCurrentTimeNanos(); }

// In paced runs a body carries its send time (ns) at this offset.
constexpr size_t kStampAt = 8;

// Per-subscriber counters written by its receiving thread.
struct Counter {
  std::atomic<int64_t> received{0};
  std::atomic<int64_t> first_ns{0};
  std::atomic<int64_t> last_ns{0};
  bool paced = false;
  std::vector<int64_t> latency_ns;  // receiving thread, read after it ends
  void Hit(absl::string_view body) {
    const int64_t now = NowNs();
    if (received.fetch_add(1, std::memory_order_relaxed) == 0) {
      first_ns.store(now, std::memory_order_relaxed);
    }
    last_ns.store(now, std::memory_order_relaxed);
    if (paced && body.size() >= kStampAt + 8) {
      int64_t sent;
      std::memcpy(&sent, body.data() + kStampAt, 8);
      latency_ns.push_back(now - sent);
    }
  }
  // Rate as ../shared/peers computes it: received / (last receive - first
  // send).
  SubResult Get(int64_t start_ns) const {
    SubResult r;
    r.received = received.load();
    const double secs = static_cast<double>(last_ns.load() - start_ns) / 1e9;
    r.rate = secs > 0 ? static_cast<double>(r.received) / secs : 0;
    if (!latency_ns.empty()) {
      std::vector<int64_t> v = latency_ns;
      std::sort(v.begin(), v.end());
      r.p50_us = static_cast<double>(v[v.size() / 2]) / 1e3;
      r.p99_us = static_cast<double>(v[v.size() * 99 / 100]) / 1e3;
    }
    return r;
  }
};

// Sends `count` bodies: back to back, or paced with a send stamp in each.
template <typename SendFn>
void SendAll(const Flags& f, bool paced, std::string body, SendFn send) {
  const int count = paced ? f.latency_count : f.count;
  for (int i = 0; i < count; ++i) {
    if (paced) {
      absl::SleepFor(absl::Microseconds(f.interval_us));
      const int64_t now = NowNs();
      std::memcpy(body.data() + kStampAt, &now, 8);
    }
    send(body);
  }
}

// Waits until no counter moved for kQuiet, or all reached `want`.
void WaitQuiet(const std::vector<std::unique_ptr<Counter>>& counters,
               int64_t want) {
  std::vector<int64_t> last(counters.size(), -1);
  absl::Time moved = absl::Now();
  for (;;) {
    absl::SleepFor(absl::Milliseconds(20));
    bool all = true, changed = false;
    for (size_t i = 0; i < counters.size(); ++i) {
      const int64_t n = counters[i]->received.load();
      if (n != last[i]) changed = true;
      last[i] = n;
      if (n < want) all = false;
    }
    if (all) return;
    if (changed) moved = absl::Now();
    if (absl::Now() - moved > kQuiet) return;
  }
}

Result RunZmq(const Flags& f, bool paced) {
  zmq::context_t pub_ctx(1);
  zmq::socket_t pub(pub_ctx, zmq::socket_type::pub);
  pub.set(zmq::sockopt::sndhwm, kHwm);
  pub.set(zmq::sockopt::linger, 0);
  pub.bind("tcp://127.0.0.1:*");
  const std::string ep = pub.get(zmq::sockopt::last_endpoint);
  std::vector<std::unique_ptr<Counter>> counters;
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  std::atomic<bool> stop{false};
  for (int i = 0; i < f.subscribers; ++i) {
    counters.push_back(std::make_unique<Counter>());
    Counter* c = counters.back().get();
    c->paced = paced;
    threads.emplace_back([&, c] {
      zmq::context_t ctx(1);
      zmq::socket_t sub(ctx, zmq::socket_type::sub);
      sub.set(zmq::sockopt::rcvhwm, kHwm);
      sub.set(zmq::sockopt::linger, 0);
      sub.set(zmq::sockopt::rcvtimeo, 100);
      sub.set(zmq::sockopt::subscribe, "bench");
      sub.set(zmq::sockopt::subscribe, "probe");
      sub.connect(ep);
      bool seen_probe = false;
      while (!stop.load()) {
        zmq::message_t m;
        if (!sub.recv(m)) continue;
        if (m.size() >= 5 && std::memcmp(m.data(), "probe", 5) == 0) {
          if (!seen_probe) ready.fetch_add(1);
          seen_probe = true;
          continue;
        }
        c->Hit(absl::string_view(m.data<char>(), m.size()));
      }
    });
  }
  // Probe until every subscription is in place (the slow-joiner problem).
  while (ready.load() < f.subscribers) {
    pub.send(zmq::buffer(std::string("probe")), zmq::send_flags::none);
    absl::SleepFor(absl::Milliseconds(10));
  }
  absl::SleepFor(absl::Milliseconds(50));
  std::string body(static_cast<size_t>(f.size), 'x');
  std::memcpy(body.data(), "bench", 5);
  const int64_t start = NowNs();
  SendAll(f, paced, body, [&](const std::string& b) {
    pub.send(zmq::buffer(b), zmq::send_flags::none);
  });
  const int sent = paced ? f.latency_count : f.count;
  WaitQuiet(counters, sent);
  stop = true;
  for (auto& t : threads) t.join();
  Result r{"raw libzmq PUB/SUB", paced, sent, {}};
  for (auto& c : counters) r.subs.push_back(c->Get(start));
  return r;
}

Result RunFabric(const Flags& f, bool paced) {
  const BenchCluster cluster =
      NewBenchCluster("ps", static_cast<size_t>(f.subscribers) + 1);
  auto pn = StartBenchNode("pub", cluster);
  std::vector<std::unique_ptr<Node>> nodes;
  std::vector<std::unique_ptr<Counter>> counters;
  std::vector<std::unique_ptr<Subscriber>> subs;
  for (int i = 0; i < f.subscribers; ++i) {
    nodes.push_back(StartBenchNode(absl::StrCat("sub", i), cluster));
    counters.push_back(std::make_unique<Counter>());
    Counter* c = counters.back().get();
    c->paced = paced;
    SubscriberOptions o;
    o.prefixes = {"bench"};
    o.receive_hwm = kHwm;
    o.handler = [c](const Message& m) { c->Hit(m.body); };
    auto sub = Subscriber::Create(*nodes.back(), std::move(o));
    if (!sub.ok()) std::exit(1);
    subs.push_back(std::move(*sub));
  }
  PublisherOptions po;
  po.send_hwm = kHwm;
  auto pub = Publisher::Create(*pn, po);
  if (!pub.ok() ||
      !(*pub)->WaitForSubscribers(f.subscribers, absl::Seconds(30)).ok()) {
    std::fprintf(stderr, "publisher not ready\n");
    std::exit(1);
  }
  const int64_t start = NowNs();
  SendAll(f, paced, std::string(static_cast<size_t>(f.size), 'x'),
          [&](const std::string& b) { (void)(*pub)->Publish("bench", b); });
  const int sent = paced ? f.latency_count : f.count;
  WaitQuiet(counters, sent);
  // Let a beat report any loss at the tail.
  absl::SleepFor(absl::Milliseconds(1500));
  Result r{"fabric Publisher/Subscriber", paced, sent, {}};
  for (size_t i = 0; i < subs.size(); ++i) {
    SubResult s = counters[i]->Get(start);
    s.lost_counted = static_cast<int64_t>(subs[i]->Stats().lost);
    r.subs.push_back(s);
  }
  for (auto& s : subs) s->Close();
  (*pub)->Close();
  return r;
}

Result RunReplay(const Flags& f) {
  const BenchCluster cluster = NewBenchCluster("rp");
  const std::string dir = absl::StrCat("/tmp/fabric-bench-replay-", NowNs());
  auto pn = StartBenchNode("pub", cluster);
  PublisherOptions po;
  po.durable_topics = {"log"};
  po.spool_dir = dir;
  po.fsync = FsyncPolicy::kNone;
  auto pub = Publisher::Create(*pn, po);
  if (!pub.ok()) std::exit(1);
  const std::string body(static_cast<size_t>(f.size), 'x');
  for (int i = 0; i < f.replay_count; ++i) (void)(*pub)->Publish("log", body);
  (void)(*pub)->Flush(absl::Seconds(60));
  auto sn = StartBenchNode("late", cluster);
  std::vector<std::unique_ptr<Counter>> counters;
  counters.push_back(std::make_unique<Counter>());
  Counter* c = counters.back().get();
  SubscriberOptions o;
  o.prefixes = {"log"};
  o.start.kind = StartPosition::Kind::kEarliest;
  o.handler = [c](const Message& m) { c->Hit(m.body); };
  auto sub = Subscriber::Create(*sn, std::move(o));
  if (!sub.ok()) std::exit(1);
  WaitQuiet(counters, f.replay_count);
  // Replay throughput: first to last replayed message (discovery and the
  // first request come before the first one).
  Result r{"durable replay (warm log)",
           false,
           f.replay_count,
           {counters[0]->Get(counters[0]->first_ns.load())}};
  (*sub)->Close();
  (*pub)->Close();
  (void)std::system(absl::StrCat("rm -rf ", dir).c_str());
  return r;
}

void Print(const Result& r) {
  const int sent = r.sent;
  for (size_t i = 0; i < r.subs.size(); ++i) {
    const SubResult& s = r.subs[i];
    if (r.paced) {
      std::printf(
          "%-30s sub%zu  latency p50 %7.1f us  p99 %7.1f us  received "
          "%d/%d\n",
          r.name.c_str(), i, s.p50_us, s.p99_us, static_cast<int>(s.received),
          sent);
      continue;
    }
    std::printf("%-30s sub%zu  %10.0f msg/s  received %9lld/%d  lost %lld%s\n",
                r.name.c_str(), i, s.rate, static_cast<long long>(s.received),
                sent, static_cast<long long>(sent - s.received),
                r.name.rfind("fabric", 0) == 0
                    ? absl::StrFormat(" (counted as gaps: %lld)",
                                      static_cast<long long>(s.lost_counted))
                          .c_str()
                    : "");
  }
  std::fflush(stdout);
}

}  // namespace
}  // namespace fabric::bench

int main(int argc, char** argv) {
  using namespace fabric::bench;
  InitBenchProcess();
  Flags f;
  CLI::App app{"pub/sub benchmark: fabric beside raw libzmq PUB/SUB"};
  app.add_option("--count", f.count, "messages per throughput run")
      ->check(CLI::Range(1, kMaxFlag));
  app.add_option("--size", f.size, "body bytes (at least 16)")
      ->check(CLI::Range(1, kMaxFlag));
  app.add_option("--replay-count", f.replay_count, "messages replayed")
      ->check(CLI::Range(1, kMaxFlag));
  app.add_option("--latency-count", f.latency_count, "paced messages")
      ->check(CLI::Range(1, kMaxFlag));
  app.add_option("--interval-us", f.interval_us, "pacing of latency runs")
      ->check(CLI::Range(1, kMaxFlag));
  app.add_option("--runs", f.runs, "rounds of every mode, interleaved")
      ->check(CLI::Range(1, kMaxFlag));
  app.add_option("--modes", f.modes, "zmq,fabric,replay,latency")
      ->delimiter(',')
      ->check(CLI::IsMember({"zmq", "fabric", "replay", "latency"}));
  app.add_option("--subscribers", f.subscribers,
                 "subscribers of the zmq, fabric and latency modes")
      ->check(CLI::Range(1, 64));
  AddSecureFlag(app);
  if (int code = ParseBenchFlags(app, argc, argv); code >= 0) return code;
  if (f.size < 16) f.size = 16;  // "bench" and the send stamp
  std::printf(
      "pubsub_bench: 1 publisher -> %d subscribers, %d messages of %d "
      "bytes, %d runs each (interleaved); fabric security: %s\n",
      f.subscribers, f.count, f.size, f.runs,
      BenchSecure() ? "curve (one key per node)" : "off");
  for (int run = 0; run < f.runs; ++run) {
    for (const std::string& mode : f.modes) {
      if (mode == "zmq") Print(RunZmq(f, false));
      if (mode == "fabric") Print(RunFabric(f, false));
      if (mode == "replay") Print(RunReplay(f));
      if (mode == "latency") {
        Print(RunZmq(f, true));
        Print(RunFabric(f, true));
      }
    }
  }
  return 0;
}
