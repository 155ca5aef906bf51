// SPDX-License-Identifier: Apache-2.0
// work_queue_sim: runs the work-queue simulation (dispatcher and worker
// ledgers).
//
//   work_queue_sim [--seconds N] [--steps K] [--first-seed S]
//                         random seeds until N seconds pass (default 10)
//   work_queue_sim --seed S [--steps K]
//                         one seed, printing its schedule
//   --demands-before-frames
//                         carry out effects in the order producer.cc once
//                         did, which lets a worker's ledger lend more than
//                         its prefetch (SimOptions::demands_before_frames;
//                         fails within the first seeds)
//
// Exits 1 on the first failing seed, after printing the failure and its
// shrunk schedule. A failing seed replays exactly in this binary: the
// dispatcher's worker choice follows hash-map order, which Abseil seeds
// from an address, so the binary re-executes itself once with address
// space randomization off (personality(2)) to give every run the same
// layout.
#include <sys/personality.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "tests/sim/work_queue_sim.h"

namespace {

void Usage() {
  std::fprintf(stderr,
               "usage: work_queue_sim [--seconds N] [--steps K] "
               "[--first-seed S] | --seed S [--steps K]\n"
               "       [--demands-before-frames]\n");
}

bool ParseU64(const char* s, uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0') return false;
  out = v;
  return true;
}

// Re-executes with ASLR off once, so hash iteration order (and with it the
// dispatcher's choice between workers) is the same in every run.
void StableLayout(char** argv) {
  const int current = personality(0xffffffff);
  if (current == -1 || (current & ADDR_NO_RANDOMIZE) != 0) return;
  if (std::getenv("WORK_QUEUE_SIM_ASLR") != nullptr) return;
  if (personality(static_cast<unsigned long>(current) | ADDR_NO_RANDOMIZE) ==
      -1) {
    return;
  }
  execv("/proc/self/exe", argv);
  // Not possible (sandbox): run as is; replays hold within this process.
}

}  // namespace

int main(int argc, char** argv) {
  StableLayout(argv);
  uint64_t seconds = 10, steps = 300, first_seed = 0;
  std::optional<uint64_t> seed;
  bool demands_before_frames = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--demands-before-frames") {
      demands_before_frames = true;
      continue;
    }
    uint64_t v = 0;
    if (i + 1 >= argc || !ParseU64(argv[i + 1], v)) {
      Usage();
      return 2;
    }
    ++i;
    if (flag == "--seconds") {
      seconds = v;
    } else if (flag == "--steps") {
      steps = v;
    } else if (flag == "--seed") {
      seed = v;
    } else if (flag == "--first-seed") {
      first_seed = v;
    } else {
      Usage();
      return 2;
    }
  }
  fabric::wq_sim::SimOptions options;
  options.steps = static_cast<int>(steps);
  options.demands_before_frames = demands_before_frames;
  if (seed.has_value()) {
    options.seed = *seed;
    const fabric::wq_sim::SimResult r = fabric::wq_sim::RunSeed(options);
    if (!r.ok) {
      std::printf("%s", fabric::wq_sim::FormatFailure(r, true).c_str());
      return 1;
    }
    std::printf(
        "seed %llu ok (%s): %llu tasks, %llu acked, %llu dead, "
        "%llu dispatcher inputs\noptions: %s\nschedule:\n%s",
        static_cast<unsigned long long>(r.seed),
        fabric::wq_sim::ProfileName(r.profile),
        static_cast<unsigned long long>(r.tasks),
        static_cast<unsigned long long>(r.acked),
        static_cast<unsigned long long>(r.dead),
        static_cast<unsigned long long>(r.inputs), r.config.c_str(),
        fabric::wq_sim::FormatTrace(r.events).c_str());
    return 0;
  }
  // Random seeds: from the clock unless given, printed so a run repeats.
  if (first_seed == 0) {
    first_seed = static_cast<uint64_t>(
        std::chrono::system_clock::now().time_since_epoch().count());
  }
  std::printf("work_queue_sim: seeds from %llu, %llu s, %llu steps each\n",
              static_cast<unsigned long long>(first_seed),
              static_cast<unsigned long long>(seconds),
              static_cast<unsigned long long>(steps));
  const auto start = std::chrono::steady_clock::now();
  const auto until = start + std::chrono::seconds(seconds);
  uint64_t seeds = 0, events = 0, inputs = 0, dead = 0;
  for (uint64_t s = first_seed;; ++s) {
    if (std::chrono::steady_clock::now() >= until) break;
    options.seed = s;
    const fabric::wq_sim::SimResult r = fabric::wq_sim::RunSeed(options);
    seeds++;
    events += r.events.size();
    inputs += r.inputs;
    dead += r.dead;
    if (!r.ok) {
      std::printf("%s", fabric::wq_sim::FormatFailure(r).c_str());
      std::printf("replay: work_queue_sim --seed %llu --steps %llu%s\n",
                  static_cast<unsigned long long>(s),
                  static_cast<unsigned long long>(steps),
                  demands_before_frames ? " --demands-before-frames" : "");
      return 1;
    }
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::printf(
      "%llu seeds ok in %.1f s: %.0f events/s, %.0f dispatcher "
      "steps/s, %llu dead letters\n",
      static_cast<unsigned long long>(seeds), elapsed,
      static_cast<double>(events) / elapsed,
      static_cast<double>(inputs) / elapsed,
      static_cast<unsigned long long>(dead));
  return 0;
}
