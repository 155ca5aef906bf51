// SPDX-License-Identifier: Apache-2.0
// Work-queue benchmark: 1 producer -> 2 workers, 100-byte tasks, end-to-end
// tasks/s and push-to-ack latency for memory-only, spool+none, spool+batch
// and spool+always, with raw libzmq PUSH/PULL (no acks) measured in the same
// run as the yardstick. Each fabric run uses three nodes (producer and two
// workers) in this process, each with its own engine thread and sockets, over
// TCP loopback. A measurement, never a pass/fail test (bench/README.md).
//
//   work_queue_bench [--count 300000] [--always-count 20000] [--size 100]
//                    [--window 20000] [--prefetch 1000] [--modes LIST]
//                    [--secure]
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
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_util.h"
#include "fabric/node.h"
#include "patterns/work_queue/producer.h"
#include "patterns/work_queue/worker.h"

namespace fabric::bench {
namespace {

struct Flags {
  int count = 300000;
  int always_count = 20000;
  int size = 100;
  int window = 20000;  // tasks pushed but not yet acked, at most
  int prefetch = 1000;
  std::vector<std::string> modes = {"zmq", "memory", "none", "batch", "always"};
};

struct Result {
  std::string name;
  int count = 0;
  double rate = 0;  // per second
  double p50_us = -1, p99_us = -1;
  uint64_t redelivered = 0;
  std::string note;
};

double Percentile(std::vector<int64_t>& v, double p) {
  if (v.empty()) return -1;
  size_t k = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return static_cast<double>(v[k]) / 1000.0;
}

int64_t NowNs() { return absl::GetCurrentTimeNanos(); }

// Raw libzmq: one PUSH, two PULL threads, no acknowledgements.
Result RunZmq(const Flags& f) {
  zmq::context_t ctx(1);
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::sndhwm, 100000);
  push.set(zmq::sockopt::linger, 0);
  push.bind("tcp://127.0.0.1:0");
  const std::string ep = push.get(zmq::sockopt::last_endpoint);
  std::atomic<int> received{0};
  std::atomic<int64_t> last_ns{0};
  std::vector<std::thread> pullers;
  std::atomic<int> ready{0};
  for (int i = 0; i < 2; ++i) {
    pullers.emplace_back([&] {
      zmq::socket_t pull(ctx, zmq::socket_type::pull);
      pull.set(zmq::sockopt::rcvhwm, 100000);
      pull.set(zmq::sockopt::linger, 0);
      pull.set(zmq::sockopt::rcvtimeo, 3000);
      pull.connect(ep);
      ready++;
      zmq::message_t msg;
      while (received.load() < f.count) {
        if (!pull.recv(msg)) break;
        if (msg.size() == 1) break;  // stop marker
        received++;
        last_ns = NowNs();
      }
    });
  }
  while (ready.load() < 2) absl::SleepFor(absl::Milliseconds(1));
  absl::SleepFor(absl::Milliseconds(200));  // both connections up
  std::string body(static_cast<size_t>(f.size), 'x');
  const int64_t start = NowNs();
  for (int i = 0; i < f.count; ++i) {
    push.send(zmq::buffer(body), zmq::send_flags::none);
  }
  for (int i = 0; i < 2; ++i) push.send(zmq::buffer("!", 1));
  for (std::thread& t : pullers) t.join();
  Result r;
  r.name = "raw libzmq PUSH/PULL (no acks)";
  r.count = received.load();
  r.rate = r.count / (static_cast<double>(last_ns.load() - start) / 1e9);
  return r;
}

// One fabric run: producer node + two worker nodes.
Result RunFabric(const Flags& f, const std::string& mode, int count, int window,
                 const BenchCluster& cluster) {
  Result r;
  r.count = count;
  std::unique_ptr<Node> pn = StartBenchNode("bench-producer", cluster);
  std::unique_ptr<Node> wn1 = StartBenchNode("bench-w1", cluster);
  std::unique_ptr<Node> wn2 = StartBenchNode("bench-w2", cluster);
  std::vector<std::unique_ptr<Worker>> workers;
  for (Node* n : {wn1.get(), wn2.get()}) {
    WorkerOptions w;
    w.queues = {"bench"};
    w.prefetch = f.prefetch;
    w.concurrency = 1;
    w.handler = [](const Task&, TaskContext&) { return Outcome::Ack(); };
    absl::StatusOr<std::unique_ptr<Worker>> worker =
        Worker::Create(*n, std::move(w));
    if (!worker.ok()) std::exit(1);
    workers.push_back(std::move(*worker));
  }
  std::string dir;
  if (mode != "memory") {
    char tmpl[] = "/tmp/fabric-bench-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  // Indexed by seq (a fresh producer numbers its tasks 1, 2, ...). Written
  // and read without locks so the bench adds little to what it measures.
  std::vector<std::atomic<int64_t>> pushed_ns(static_cast<size_t>(count) + 2);
  std::vector<std::atomic<int64_t>> acked_ns(static_cast<size_t>(count) + 2);
  std::atomic<int> completed{0};
  ProducerOptions o;
  o.queue = "bench";
  o.spool_dir = dir;
  if (mode == "none") o.fsync = FsyncPolicy::kNone;
  if (mode == "batch") o.fsync = FsyncPolicy::kBatch;
  if (mode == "always") o.fsync = FsyncPolicy::kAlways;
  o.on_completed = [&](const Completion& c) {
    if (c.id.seq < acked_ns.size()) acked_ns[c.id.seq] = NowNs();
    completed.fetch_add(1, std::memory_order_release);
  };
  absl::StatusOr<std::unique_ptr<Producer>> producer = Producer::Create(*pn, o);
  if (!producer.ok()) {
    std::fprintf(stderr, "producer: %s\n",
                 producer.status().ToString().c_str());
    std::exit(1);
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while ((*producer)->Stats().workers < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  const std::string body(static_cast<size_t>(f.size), 'x');
  const int64_t start = NowNs();
  for (int i = 0; i < count; ++i) {
    // Closed loop: at most `window` tasks pushed and not yet acked.
    // (Sleeping, not spinning: spinning would steal one of two cores.)
    while (i - completed.load(std::memory_order_acquire) >= window) {
      absl::SleepFor(absl::Microseconds(100));
    }
    pushed_ns[static_cast<size_t>(i) + 1] = NowNs();
    absl::StatusOr<TaskId> id = (*producer)->PushAsync(body);
    if (!id.ok() || id->seq != static_cast<uint64_t>(i) + 1) {
      std::fprintf(stderr, "push: %s\n",
                   id.ok() ? "unexpected seq" : id.status().ToString().c_str());
      std::exit(1);
    }
  }
  absl::Status done = (*producer)->WaitCompleted(absl::Minutes(5));
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (completed.load() < count && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  std::vector<int64_t> latency_ns;
  latency_ns.reserve(static_cast<size_t>(count));
  int64_t last_ns = start;
  for (size_t seq = 1; seq <= static_cast<size_t>(count); ++seq) {
    const int64_t acked = acked_ns[seq].load();
    if (acked == 0) continue;
    latency_ns.push_back(acked - pushed_ns[seq].load());
    last_ns = std::max(last_ns, acked);
  }
  r.rate = completed.load() / (static_cast<double>(last_ns - start) / 1e9);
  r.p50_us = Percentile(latency_ns, 0.50);
  r.p99_us = Percentile(latency_ns, 0.99);
  r.redelivered = (*producer)->Stats().redelivered;
  // Batching on the wire: tasks per frame the producer sent and acks per
  // frame it received.
  const NodeStats ps = pn->Stats();
  r.note = absl::StrFormat(
      "tasks/frame %.0f acks/frame %.0f ",
      count / std::max(1.0, static_cast<double>(ps.messages_sent)),
      count / std::max(1.0, static_cast<double>(ps.messages_received)));
  if (!done.ok()) absl::StrAppend(&r.note, done.message());
  (*producer)->Close();
  for (auto& w : workers) w->Close();
  if (!dir.empty()) {
    std::string rm = absl::StrCat("rm -rf '", dir, "'");
    if (std::system(rm.c_str()) != 0) std::fprintf(stderr, "rm failed\n");
  }
  return r;
}

}  // namespace
}  // namespace fabric::bench

int main(int argc, char** argv) {
  using namespace fabric::bench;
  InitBenchProcess();
  Flags f;
  CLI::App app{"work queue benchmark: fabric beside raw libzmq PUSH/PULL"};
  app.add_option("--count", f.count, "tasks per run")
      ->check(CLI::Range(1, kMaxFlag));
  app.add_option("--always-count", f.always_count, "tasks with fsync=always")
      ->check(CLI::Range(1, kMaxFlag));
  app.add_option("--size", f.size, "task bytes")
      ->check(CLI::Range(1, kMaxFlag));
  app.add_option("--window", f.window, "tasks pushed but not yet acked")
      ->check(CLI::Range(1, kMaxFlag));
  app.add_option("--prefetch", f.prefetch, "tasks a worker holds")
      ->check(CLI::Range(1, kMaxFlag));
  app.add_option("--modes", f.modes, "zmq,memory,none,batch,always")
      ->delimiter(',')
      ->check(CLI::IsMember({"zmq", "memory", "none", "batch", "always"}));
  AddSecureFlag(app);
  if (int code = ParseBenchFlags(app, argc, argv); code >= 0) return code;
  std::vector<Result> results;
  for (const std::string& mode : f.modes) {
    std::fprintf(stderr, "running %s ...\n", mode.c_str());
    if (mode == "zmq") {
      results.push_back(RunZmq(f));
      continue;
    }
    const int count = mode == "always" ? f.always_count : f.count;
    // fsync=always confirms one task per fdatasync: a deep window would only
    // measure queueing, so it runs with the window of the peers' durable
    // workloads (100).
    const int window = mode == "always" ? std::min(f.window, 100) : f.window;
    Result r = RunFabric(f, mode, count, window,
                         NewBenchCluster(absl::StrCat("wq-", mode)));
    r.note = absl::StrCat("window ", window, " ", r.note);
    r.name = mode == "memory"
                 ? "fabric memory-only, acked"
                 : absl::StrCat("fabric spool fsync=", mode, ", acked");
    results.push_back(r);
  }
  std::printf(
      "1 producer -> 2 workers, %d-byte tasks, window %d, prefetch %d; "
      "fabric security: %s\n",
      f.size, f.window, f.prefetch,
      BenchSecure() ? "curve (one key per node)" : "off");
  std::printf("%-34s %9s %12s %10s %10s %s\n", "mode", "tasks", "tasks/s",
              "p50 us", "p99 us", "notes");
  for (const Result& r : results) {
    std::printf("%-34s %9d %12.0f %10.0f %10.0f %s%s\n", r.name.c_str(),
                r.count, r.rate, r.p50_us, r.p99_us,
                r.redelivered
                    ? absl::StrCat("redelivered=", r.redelivered, " ").c_str()
                    : "",
                r.note.c_str());
  }
  return 0;
}
