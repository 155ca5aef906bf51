// SPDX-License-Identifier: Apache-2.0
// Deterministic simulation of the work-queue protocol: one real
// `wq::Dispatcher` (patterns/work_queue/internal/dispatcher.h) and a few
// workers, each keeping its protocol state in a real `wq::WorkerLedger`
// (worker_ledger.h) fed the way worker.cc feeds it, plus a spool model,
// driven by a schedule drawn from a seeded std::mt19937_64, with an oracle
// that checks the rules and invariants of both after every input. The sim
// models only what the threaded shells do: the producer's Apply order, the
// worker's waiting and running deliveries, each task's scripted handler,
// results posted for the engine, messages on the wire, crashes, leaving,
// restarts. No threads, no clock, no I/O: a seed replays exactly (within
// one process; see work_queue_sim_main.cc for replays across processes).
//
// A run is a list of `Event`s (the schedule), then a fixed heal-and-drain
// phase (workers healthy, no crashes, every task must end), then Close.
// Events name tasks and workers, and one that does not apply when it is
// replayed (its task is gone, its worker is down) does nothing, so a
// failing schedule can be shrunk by dropping events and replaying.
//
// Thread safety: thread-compatible (each run owns all its state).
#ifndef TESTS_SIM_WORK_QUEUE_SIM_H_
#define TESTS_SIM_WORK_QUEUE_SIM_H_

#include <cstdint>
#include <string>
#include <vector>

namespace fabric::wq_sim {

// What a task's handler does, fixed when the task is pushed.
enum class Behaviour : uint8_t {
  kAck,           // acks on its first run
  kRetryThenAck,  // asks for a retry on its first `retries` runs, then acks
  kAlwaysRetry,   // asks for a retry on every run
  kReject,        // rejects on its first run
  kPoison,        // crashes every worker that starts it (start reported)
};

// How hostile a run is; drawn from the seed.
enum class Profile : uint8_t {
  // Every handler acks; workers crash only while no handler runs, leave,
  // rejoin; sends fail; leases of unstarted deliveries run out; running
  // handlers extend their leases. Must end with zero dead letters.
  kClean,
  // Handlers retry, reject and crash (poison), but a worker never crashes
  // while it runs a task that is not poison, and runs one task at a time.
  kFailures,
  // All of the above, plus crashes at any time and leases that run out
  // while handlers run.
  kChaos,
};

// Deliberate defects, to prove that the oracle catches them.
enum class Fault : uint8_t {
  kNone,
  // The shell hands the dispatcher one more credit than the worker's ledger
  // granted.
  kInflateGrants,
  // The oracle expects one attempt more than the rules give.
  kMiscountAttempts,
  // The workers' ledgers forget completed tasks at once (dedup_max 0)
  // while the oracle expects them remembered.
  kForgetCompleted,
};

struct Event {
  enum class Kind : uint8_t {
    kPush,          // seq..seq+behaviours.size()-1 pushed and confirmed
    kGrant,         // worker's engine ticks (its ledger grants what is free),
                    // and what it sent arrives
    kStart,         // worker's handler starts its delivery of seq
    kFinish,        // the handler of seq returns; the result is posted
    kFlush,         // worker's engine drains posted starts and results into
                    // its ledger and sends; what it sent arrives
    kDupResults,    // worker's last Results arrives once more (acks and
                    // other results only)
    kExtend,        // worker extends the lease of seq by ms
    kCrash,         // worker dies (WorkerDown lost=true)
    kRestart,       // a dead worker comes back as a new node
    kLeave,         // worker stops offering (lost=false), releases unstarted
    kRejoin,        // a worker that left offers the queue again
    kExit,          // a worker that left dies (lost=true)
    kFailSends,     // the next n frames to worker fail to send (flag:
                    // the worker's own next n sends fail)
    kAdvance,       // time passes by ms (running handlers extend first)
    kTick,          // Tick now
    kTickAtWakeup,  // time jumps to NextWakeup(), then Tick
    kProducerRestart,  // producer crashes, restarts from the spool
  };
  Kind kind = Kind::kTick;
  int worker = 0;  // worker slot
  uint64_t seq = 0;
  uint64_t n = 0;     // sends / ms / delay_ms
  bool flag = false;  // start: reported; fail-sends: the worker's own;
                      // advance and tick-at-wakeup: handlers extend
  std::vector<Behaviour> behaviours;  // push
  std::vector<int> retries;           // push: for kRetryThenAck

  std::string ToString() const;
};

struct SimOptions {
  uint64_t seed = 1;
  int steps = 300;  // events in the random phase
  Fault fault = Fault::kNone;
  bool shrink = true;  // shrink a failing schedule
  // Carry out a batch of effects with its demands before its frames, as
  // producer.cc's Apply once did. Off by default (frames first, as
  // producer.cc does now): a backlog demand says "I hold none of your
  // credit", which is only true once the frames that used that credit
  // went out; the ledger's lost-grant rule may otherwise zero its count of
  // outstanding credit and grant again, and the worker is sent more than
  // its prefetch (caught as "worker-credit" or "prefetch").
  bool demands_before_frames = false;
};

struct SimResult {
  bool ok = true;
  uint64_t seed = 0;
  Profile profile = Profile::kClean;
  std::string config;  // the options drawn from the seed
  // On failure: the event index it happened at (events.size() or more: in
  // the drain phase or at Close), the invariant and what was seen.
  size_t step = 0;
  std::string invariant;
  std::string detail;
  std::vector<Event> events;  // the schedule that ran
  std::vector<Event> shrunk;  // a short schedule failing the same way
  size_t shrunk_step = 0;     // where the shrunk schedule fails, and how
  std::string shrunk_detail;
  // Counts, for reports and for tests that want clean runs.
  uint64_t inputs = 0;  // dispatcher inputs made (steps of the state machine)
  uint64_t tasks = 0;
  uint64_t acked = 0;
  uint64_t dead = 0;
  uint64_t producer_restarts = 0;
  uint64_t worker_crashes = 0;
  uint64_t send_failures = 0;  // frames and the workers' own sends
  // Deliveries the workers' ledgers answered without running (completed
  // recently, or owed the result of the run in progress).
  uint64_t duplicates = 0;
  uint64_t lease_expiries = 0;
  // No handler failed and no handler was running when its worker died or
  // its lease ran out: such a run must end with zero dead letters.
  bool clean = false;
};

// Draws a schedule of `options.steps` events from the seed, runs it with
// the oracle, and on failure shrinks it (when `options.shrink`).
SimResult RunSeed(const SimOptions& options);

// Runs a given schedule (same seed: same options and profile).
SimResult Replay(const SimOptions& options, const std::vector<Event>& events);

// Seed, step, invariant, detail, options and the shrunk schedule (the full
// one with `full_trace`), one event per line.
std::string FormatFailure(const SimResult& result, bool full_trace = false);
std::string FormatTrace(const std::vector<Event>& events);

const char* ProfileName(Profile p);

}  // namespace fabric::wq_sim

#endif  // TESTS_SIM_WORK_QUEUE_SIM_H_
