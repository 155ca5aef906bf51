// SPDX-License-Identifier: Apache-2.0
// Worker dedup memory (issue 23): what a worker's ledger keeps to drop
// redeliveries of the tasks it completed, after N acks at the default
// `dedup_window` (5 min) and `dedup_max` (2^20), for several ack orders.
// It drives `wq::WorkerLedger` alone (an internal unit, as tests/sim does):
// no nodes, no sockets, so the heap figure is the ledger's own. A
// measurement, never a pass/fail test (bench/README.md).
//
//   dedup_bench [--counts 500000,1000000] [--frame 400] [--seed 1]
#include <malloc.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_util.h"
#include "fabric/base/node_id.h"
#include "patterns/work_queue/internal/worker_ledger.h"

namespace fabric::bench {
namespace {

struct Flags {
  std::vector<int> counts = {500000, 1000000};
  int frame = 400;  // tasks per TASKS frame (work_queue_bench sees ~400)
  int seed = 1;
};

// Which seqs this worker gets and in which order it acks them.
enum class Order {
  kInOrder,       // every seq, acked in order (one handler thread)
  kShuffled8,     // every seq, acked in random order within groups of 8
                  // (8 handler threads finishing in any order)
  kHalfChunks,    // every other frame (a second worker takes the rest)
  kEveryOther,    // every other seq: no two acked seqs adjacent
  kTwoProducers,  // two producers' frames, acks alternating between them
};

const char* OrderName(Order o) {
  switch (o) {
    case Order::kInOrder:
      return "in order";
    case Order::kShuffled8:
      return "shuffled in groups of 8";
    case Order::kHalfChunks:
      return "every other frame";
    case Order::kEveryOther:
      return "every other seq";
    case Order::kTwoProducers:
      return "2 producers, alternating";
    default:
      return "?";
  }
}

// Bytes the allocator hands out now (brk heap and mmapped blocks).
size_t HeapInUse() {
  const struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

// Resident set of this process, from /proc/self/status (0 if unreadable).
size_t RssBytes() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      size_t kb = 0;
      in >> kb;
      return kb * 1024;
    }
    in.ignore(1 << 16, '\n');
  }
  return 0;
}

struct Row {
  std::string order;
  int count = 0;
  size_t heap = 0;  // heap the ledger holds after `count` acks
  size_t rss = 0;   // RSS growth over the same run
  double ns_per_ack = 0;
};

Row Run(const Flags& f, Order order, int count) {
  malloc_trim(0);
  const size_t heap0 = HeapInUse();
  const size_t rss0 = RssBytes();
  wq::WorkerLedgerOptions options;  // defaults: 5 min, 2^20 ids
  auto ledger = std::make_unique<wq::WorkerLedger>(options);
  const NodeId node = NodeId::Random();
  const NodeId producer = NodeId::Random();
  const NodeId producer2 = NodeId::Random();
  const wq::ProducerKey key{node, "q"};
  std::mt19937_64 rng(static_cast<uint64_t>(f.seed));
  // Acks dated 10 us apart: 1M acks span 10 s, well inside the window.
  const absl::Time t0 = absl::Now();
  uint64_t acked = 0;
  uint64_t next_seq = 1;
  const std::string no_reason;
  const absl::Time start = absl::Now();
  while (acked < static_cast<uint64_t>(count)) {
    wq::Tasks frame{"q", producer, {}};
    for (int i = 0; i < f.frame; ++i) {
      wq::WireTask t;
      t.seq = next_seq;
      next_seq += order == Order::kEveryOther ? 2 : 1;
      frame.tasks.push_back(std::move(t));
    }
    if (order == Order::kHalfChunks) next_seq += f.frame;
    std::vector<size_t> run = ledger->Tasks(node, frame);
    if (order == Order::kShuffled8) {
      for (size_t g = 0; g < run.size(); g += 8) {
        std::shuffle(run.begin() + g, run.begin() + std::min(g + 8, run.size()),
                     rng);
      }
    }
    if (order == Order::kTwoProducers) {
      // The same seqs from a second producer, acked in turn with the first.
      wq::Tasks frame2 = frame;
      frame2.producer = producer2;
      ledger->Tasks(node, frame2);
      for (size_t k : run) {
        for (const NodeId& p : {producer, producer2}) {
          const absl::Time at = t0 + absl::Microseconds(10 * acked);
          ledger->Resolve(at, key, TaskId{p, frame.tasks[k].seq}, 1, 1,
                          wq::Verdict::kAck, 0, no_reason);
          acked++;
        }
      }
      run.clear();
    }
    for (size_t i : run) {
      const absl::Time at = t0 + absl::Microseconds(10 * acked);
      ledger->Resolve(at, key, TaskId{producer, frame.tasks[i].seq}, 1, 1,
                      wq::Verdict::kAck, 0, no_reason);
      acked++;
    }
    const absl::Time now = t0 + absl::Microseconds(10 * acked);
    ledger->Prune(now);
    ledger->TakeMessages(now);  // drops the acks it would send
  }
  const absl::Duration took = absl::Now() - start;
  malloc_trim(0);
  Row r;
  r.order = OrderName(order);
  r.count = count;
  r.heap = HeapInUse() - heap0;
  const size_t rss = RssBytes();
  r.rss = rss > rss0 ? rss - rss0 : 0;
  r.ns_per_ack = absl::ToDoubleNanoseconds(took) / static_cast<double>(acked);
  return r;
}

}  // namespace
}  // namespace fabric::bench

int main(int argc, char** argv) {
  using namespace fabric::bench;
  InitBenchProcess();
  Flags f;
  CLI::App app{"worker dedup memory: the ledger after N acks at defaults"};
  app.add_option("--counts", f.counts, "acks per run (list)")
      ->delimiter(',')
      ->check(CLI::Range(1, kMaxFlag));
  app.add_option("--frame", f.frame, "tasks per TASKS frame")
      ->check(CLI::Range(1, 65536));
  app.add_option("--seed", f.seed, "shuffle seed")
      ->check(CLI::Range(0, kMaxFlag));
  if (int code = ParseBenchFlags(app, argc, argv); code >= 0) return code;
  std::vector<Row> rows;
  for (Order o : {Order::kInOrder, Order::kShuffled8, Order::kHalfChunks,
                  Order::kEveryOther, Order::kTwoProducers}) {
    for (int count : f.counts) rows.push_back(Run(f, o, count));
  }
  std::printf("worker ledger, dedup_window 5 min, dedup_max 2^20, frame %d\n",
              f.frame);
  std::printf("%-26s %9s %12s %12s %10s %8s\n", "acks", "count", "heap MB",
              "RSS+ MB", "ns/ack", "B/ack");
  for (const Row& r : rows) {
    std::printf("%-26s %9d %12.2f %12.2f %10.0f %8.1f\n", r.order.c_str(),
                r.count, static_cast<double>(r.heap) / 1e6,
                static_cast<double>(r.rss) / 1e6, r.ns_per_ack,
                static_cast<double>(r.heap) / r.count);
  }
  return 0;
}
