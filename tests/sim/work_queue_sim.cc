// SPDX-License-Identifier: Apache-2.0
// The model (worker shells, spool, schedule) and the oracle of the
// work-queue dispatcher simulation. Each simulated worker keeps its
// protocol state in a real `wq::WorkerLedger`, fed as worker.cc feeds it;
// the sim models only the threaded shell around it (waiting and running
// deliveries, what handler threads posted for the engine, messages on the
// wire). Read the invariants in Sim::Check* and the Oracle* functions: each
// states the rule of dispatcher.h or worker_ledger.h it checks.
#include "tests/sim/work_queue_sim.h"

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "fabric/base/node_id.h"
#include "patterns/work_queue/internal/dispatcher.h"
#include "patterns/work_queue/internal/wire.h"
#include "patterns/work_queue/internal/worker_ledger.h"
#include "patterns/work_queue/task.h"

namespace fabric::wq_sim {
namespace {

// The ledger's lost-grant time (WorkerLedgerOptions::lost_grant). The sim
// honours the assumption it rests on: a message on the wire arrives within
// this long (see Sim::Advance).
constexpr absl::Duration kLostGrant = absl::Seconds(1);
// The drain phase gives up (liveness failure) after this many rounds.
constexpr int kMaxDrainRounds = 4000;
// Shrinking replays the schedule at most this many times.
constexpr int kMaxShrinkReplays = 1500;

// ------------------------------------------------------------ configuration

// Everything a run draws from its seed before the schedule.
struct Config {
  Profile profile = Profile::kClean;
  int workers = 2;
  uint64_t prefetch = 2;
  int concurrency = 1;  // handlers a worker runs at once
  int max_tasks = 30;
  absl::Duration dedup_window = absl::Minutes(5);
  size_t dedup_max = 1 << 20;
  wq::DispatcherOptions dispatcher;

  std::string ToString() const {
    const wq::DispatcherOptions& d = dispatcher;
    return absl::StrCat(
        "profile=", ProfileName(profile), " workers=", workers,
        " prefetch=", prefetch, " concurrency=", concurrency,
        " max_tasks=", max_tasks,
        " dedup_window=", absl::FormatDuration(dedup_window),
        " dedup_max=", dedup_max, " lease=", absl::FormatDuration(d.lease),
        " max_attempts=", d.max_attempts,
        " max_worker_crashes=", d.max_worker_crashes,
        " retry_backoff=", absl::FormatDuration(d.retry_backoff),
        " max_retry_backoff=", absl::FormatDuration(d.max_retry_backoff),
        " max_batch=", d.max_batch, " max_frame_bytes=", d.max_frame_bytes);
  }
};

template <typename T>
T Uniform(std::mt19937_64& rng, T lo, T hi) {  // inclusive
  return std::uniform_int_distribution<T>(lo, hi)(rng);
}
bool Chance(std::mt19937_64& rng, double p) {
  return std::uniform_real_distribution<double>(0, 1)(rng) < p;
}

Config DrawConfig(std::mt19937_64& rng) {
  Config c;
  const int p = Uniform(rng, 0, 9);
  c.profile =
      p < 3 ? Profile::kClean : (p < 5 ? Profile::kFailures : Profile::kChaos);
  c.workers = Uniform(rng, 1, 4);
  c.prefetch = Chance(rng, 0.1) ? Uniform<uint64_t>(rng, 8, 16)
                                : Uniform<uint64_t>(rng, 1, 5);
  c.concurrency = c.profile == Profile::kChaos ? Uniform(rng, 1, 3) : 1;
  c.max_tasks = Uniform(rng, 5, 40);
  // Short windows and small limits, so that completed ids are forgotten
  // (and tasks delivered again run again) within a run.
  c.dedup_window =
      Chance(rng, 0.5) ? absl::Seconds(Uniform(rng, 5, 120)) : absl::Minutes(5);
  c.dedup_max = Chance(rng, 0.3) ? Uniform<size_t>(rng, 1, 6) : 1 << 20;
  wq::DispatcherOptions& d = c.dispatcher;
  d.lease = absl::Seconds(Uniform(rng, 5, 60));
  d.max_attempts = Uniform<uint32_t>(rng, 1, 5);
  d.max_worker_crashes = Uniform<uint32_t>(rng, 1, 4);
  d.retry_backoff = absl::Milliseconds(Uniform(rng, 50, 2000));
  d.max_retry_backoff = absl::Seconds(Uniform(rng, 2, 60));
  d.max_batch = Uniform<size_t>(rng, 1, 4);
  d.max_frame_bytes =
      Chance(rng, 0.3) ? Uniform<size_t>(rng, 16, 128) : 1 << 20;
  d.queue = "sim";
  return c;
}

NodeId MakeId(uint64_t n, uint8_t tag) {
  std::string bytes(NodeId::kSize, static_cast<char>(tag));
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(n >> (56 - 8 * i));
  return *NodeId::FromBytes(bytes);
}

const char* BehaviourName(Behaviour b) {
  switch (b) {
    case Behaviour::kAck:
      return "ack";
    case Behaviour::kRetryThenAck:
      return "retry";
    case Behaviour::kAlwaysRetry:
      return "always-retry";
    case Behaviour::kReject:
      return "reject";
    case Behaviour::kPoison:
      return "poison";
  }
  return "?";
}

// ------------------------------------------------------------------- model

// A task as the producer's spool holds it (pushed and confirmed, not yet
// acked or dead-lettered), with the handler behaviour the schedule chose.
struct SpoolTask {
  Behaviour behaviour = Behaviour::kAck;
  int retries = 0;  // kRetryThenAck: runs that ask for a retry
  absl::Time enqueued;
  Headers headers;
  std::string body;
  size_t bytes = 0;
};

// A delivery the worker's shell holds (worker.cc Delivery): one the ledger
// returned from `Tasks`, waiting for a handler or running. The ledger keeps
// a task id here at most once at a time.
struct Delivery {
  wq::ProducerKey key;  // the producer node that sent it
  uint64_t seq = 0;
  uint32_t attempt = 0;
  uint32_t delivery = 0;  // the dispatcher's number for it (wire.h)
  bool redelivered = false;
  bool started = false;  // its handler runs
  int run = 0;           // which run of the task's handler (from 1)
};

// A handler's outcome posted for the engine, not yet resolved in the
// ledger (worker.cc results_).
struct Posted {
  wq::ProducerKey key;
  uint64_t seq = 0;
  uint32_t attempt = 0;
  uint32_t delivery = 0;
  wq::Verdict verdict = wq::Verdict::kAck;
  uint64_t delay_ms = 0;
  std::string reason;
};

// A handler's start posted for the engine (worker.cc starts_).
struct PostedStart {
  wq::ProducerKey key;
  uint64_t seq = 0;
  uint32_t delivery = 0;
};

// A CREDIT or RESULTS the ledger gave to send, on the wire to its producer.
struct Outgoing {
  wq::ProducerKey to;
  absl::Time taken;
  uint64_t grant = 0;
  std::optional<wq::Results> results;  // decoded RESULTS (else a CREDIT)
};

// One simulated worker process: the real ledger and the shell around it.
struct SimWorker {
  enum class State : uint8_t { kUp, kLeft, kDown };
  State state = State::kUp;
  NodeId id;
  int incarnation = 0;
  std::unique_ptr<wq::WorkerLedger> ledger;  // a new one per Worker
  std::vector<Delivery> window;              // waiting and running
  // Posted by handler threads for the engine (worker.cc starts_, results_).
  std::vector<PostedStart> starts;
  std::vector<Posted> results;
  std::deque<Outgoing> outbox;  // sent, not yet arrived
  std::vector<NodeId> gone;     // producer nodes gone, not yet told
  std::optional<wq::Results> last_sent;
  uint64_t fail_frames = 0;  // frames to it that will fail to send
  uint64_t fail_sends = 0;   // its own sends that will fail
  // The oracle: tasks this ledger resolved as acked, in order, with when.
  std::vector<std::pair<absl::Time, uint64_t>> acks;

  int Running() const {
    int n = 0;
    for (const Delivery& d : window) n += d.started ? 1 : 0;
    return n;
  }
  Delivery* Find(uint64_t seq) {
    for (Delivery& d : window) {
      if (d.seq == seq) return &d;
    }
    return nullptr;
  }
  bool ResultsOnTheWire() const {
    for (const Outgoing& o : outbox) {
      if (o.results.has_value()) return true;
    }
    return false;
  }
  bool EngineIdle() const {
    return starts.empty() && results.empty() && outbox.empty() && gone.empty();
  }
};

// ------------------------------------------------------------------ oracle

// The oracle's view of one task held by the current producer process.
struct Expect {
  enum class Place : uint8_t { kReady, kInFlight, kRetryWait, kMaybeReady };
  Place place = Place::kReady;
  NodeId worker;              // in flight at
  uint32_t wire_attempt = 0;  // the current delivery's attempt number
  bool counted = false;       // the current delivery's start was counted
  uint32_t attempts = 0;      // started deliveries in this process
  uint32_t crashes = 0;       // started deliveries in a row ended by a crash
  uint32_t deliveries = 0;    // sent (failed sends undone)
  bool recovered = false;
  absl::Time deadline;            // lease of the current delivery
  absl::Time retry_lo, retry_hi;  // when a retry wait may / must end
};

// The oracle's view of the dispatcher's link to one worker.
struct Link {
  bool offering = true;
  // Credit the worker granted, minus credit handed back in demands, minus
  // tasks sent: never below zero.
  int64_t balance = 0;
};

struct Predicted {
  Completion::Kind kind = Completion::Kind::kAcked;
  uint32_t attempts = 0;
  std::string reason;  // exact for rejects, else a prefix
};

class Sim {
 public:
  Sim(const SimOptions& options, Config config)
      : options_(options), cfg_(std::move(config)) {
    producer_ = MakeId(0, 0x50);
    producer_node_ = MakeId(0, 0x4e);
    now_ = absl::FromUnixSeconds(1700000000);
    workers_.resize(static_cast<size_t>(cfg_.workers));
    NewDispatcher();
    for (size_t i = 0; i < workers_.size(); ++i) {
      workers_[i].id = NewWorkerId(i);
      workers_[i].ledger = NewLedger();
      names_[workers_[i].id] = WorkerName(i);
    }
    for (const SimWorker& w : workers_) WorkerUp(w.id);
  }

  // The random phase: draws and runs events until `steps` or a failure.
  void RunGenerated(std::mt19937_64& rng, std::vector<Event>& events) {
    for (int i = 0; i < options_.steps && !failed(); ++i) {
      events.push_back(Generate(rng));
      step_ = events.size() - 1;
      Execute(events.back());
    }
  }
  void RunEvents(const std::vector<Event>& events) {
    for (size_t i = 0; i < events.size() && !failed(); ++i) {
      step_ = i;
      Execute(events[i]);
    }
  }
  // Heal and drain, Close, final checks.
  void Finish(size_t first_step) {
    if (failed()) return;
    step_ = first_step;
    Drain();
    if (!failed()) CloseProducer();
    if (!failed()) FinalChecks();
  }

  bool failed() const { return !invariant_.empty(); }
  void Fill(SimResult& r) const {
    r.ok = !failed();
    r.step = step_;
    r.invariant = invariant_;
    r.detail = detail_;
    r.inputs = inputs_;
    r.tasks = pushed_.size();
    r.acked = total_acked_;
    r.dead = total_dead_;
    r.producer_restarts = static_cast<uint64_t>(incarnation_);
    r.worker_crashes = worker_crashes_;
    r.send_failures = send_failures_;
    r.duplicates = duplicates_;
    r.lease_expiries = lease_expiries_;
    r.clean = Clean();
  }

 private:
  // ------------------------------------------------------------ helpers
  std::string WorkerName(size_t slot) const {
    return absl::StrCat("w", slot, "#", workers_[slot].incarnation);
  }
  std::string Name(const NodeId& id) const {
    auto it = names_.find(id);
    return it == names_.end() ? id.ShortHex() : it->second;
  }
  NodeId NewWorkerId(size_t slot) {
    (void)slot;
    return MakeId(++ids_, 0x57);
  }
  std::unique_ptr<wq::WorkerLedger> NewLedger() const {
    wq::WorkerLedgerOptions o;
    o.prefetch = cfg_.prefetch;
    o.dedup_window = cfg_.dedup_window;
    o.dedup_max = cfg_.dedup_max;
    o.lost_grant = kLostGrant;
    if (options_.fault == Fault::kForgetCompleted) o.dedup_max = 0;
    return std::make_unique<wq::WorkerLedger>(o);
  }
  wq::ProducerKey ProducerKeyNow() const {
    return wq::ProducerKey{producer_node_, "sim"};
  }
  SimWorker* WorkerById(const NodeId& id) {
    for (SimWorker& w : workers_) {
      if (w.id == id && w.state != SimWorker::State::kDown) return &w;
    }
    return nullptr;
  }
  bool Clean() const {
    return handler_failures_ == 0 && started_crashes_ == 0 &&
           started_lease_expiries_ == 0;
  }
  void Fail(absl::string_view invariant, std::string detail) {
    if (failed()) return;
    invariant_ = std::string(invariant);
    detail_ = std::move(detail);
  }
  void NewDispatcher() {
    wq::DispatcherOptions o = cfg_.dispatcher;
    o.producer = producer_;
    o.seed = options_.seed * 1000003 + static_cast<uint64_t>(incarnation_);
    d_ = std::make_unique<wq::Dispatcher>(std::move(o));
    tasks_.clear();
    links_.clear();
    started_ = acked_ = dead_ = dispatched_ = 0;
  }
  absl::Duration lease() const { return cfg_.dispatcher.lease; }

  // ----------------------------------------------------- dispatcher inputs
  // Every input goes through one of these: the oracle predicts, the
  // dispatcher runs, the effects are carried out as Producer::Impl::Apply
  // does, then every invariant is checked.

  void AddTasks(std::vector<wq::NewTask> tasks) {
    for (const wq::NewTask& n : tasks) {
      Expect& e = tasks_[n.seq];
      e = Expect{};
      e.recovered = n.recovered;
    }
    Run([&](wq::Effects& out) { d_->AddTasks(now_, std::move(tasks), out); });
  }
  void WorkerUp(const NodeId& w) {
    auto [it, inserted] = links_.try_emplace(w);
    it->second.offering = true;
    (void)inserted;
    Run([&](wq::Effects& out) { d_->WorkerUp(now_, w, out); });
  }
  void WorkerDown(const NodeId& w, bool lost) {
    OracleWorkerDown(w, lost);
    Run([&](wq::Effects& out) { d_->WorkerDown(now_, w, lost, out); });
  }
  void Credit(const NodeId& w, uint64_t grant) {
    auto link = links_.find(w);
    if (link != links_.end()) link->second.balance += grant;
    const uint64_t told = grant + (options_.fault == Fault::kInflateGrants);
    Run([&](wq::Effects& out) { d_->Credit(now_, w, told, out); });
  }
  void Results(const NodeId& w, wq::Results m) {
    OracleResults(w, m);
    if (options_.fault == Fault::kInflateGrants && m.grant > 0) m.grant++;
    Run([&](wq::Effects& out) { d_->Results(now_, w, m, out); });
  }
  void Extend(const NodeId& w, std::vector<uint64_t> seqs, absl::Duration by) {
    wq::Extend m{"sim", static_cast<uint64_t>(absl::ToInt64Milliseconds(by)),
                 std::move(seqs)};
    for (uint64_t seq : m.seqs) {
      auto e = tasks_.find(seq);
      if (e != tasks_.end() && e->second.place == Expect::Place::kInFlight &&
          e->second.worker == w) {
        e->second.deadline = std::max(e->second.deadline,
                                      now_ + absl::Milliseconds(m.extend_ms));
      }
    }
    Run([&](wq::Effects& out) {
      (void)out;
      d_->Extend(now_, w, m);
    });
  }
  void Tick() {
    OracleTick();
    Run([&](wq::Effects& out) { d_->Tick(now_, out); });
  }

  template <typename F>
  void Run(F input) {
    if (failed()) return;
    wq::Effects out;
    input(out);
    inputs_++;
    Apply(std::move(out));
    if (!failed()) Check();
  }

  // ---------------------------------------------------------------- oracle
  // The rules of dispatcher.h, restated from the outside.

  // "A delivery counts as an attempt only once its handler started: the
  // worker reports the start (or a result, which implies one)." Counted
  // once per delivery; the lease then runs from the start.
  void Count(Expect& e) {
    if (e.counted) return;
    e.counted = true;
    e.attempts++;
    started_++;
    e.deadline = std::max(e.deadline, now_ + lease());
  }
  bool Current(const Expect& e, const NodeId& w) const {
    return e.place == Expect::Place::kInFlight && e.worker == w;
  }
  void Predict(uint64_t seq, Completion::Kind kind, uint32_t attempts,
               std::string reason) {
    predicted_[seq] = Predicted{kind, attempts, std::move(reason)};
    tasks_.erase(seq);
  }
  // "A started delivery that fails (retry verdict, lease ran out) is
  // retried unless it used the last of max_attempts."
  void FailStarted(uint64_t seq, Expect& e, absl::Time lo, absl::Time hi) {
    if (e.attempts >= cfg_.dispatcher.max_attempts) {
      Predict(seq, Completion::Kind::kDeadLettered, e.attempts, "max_attempts");
      return;
    }
    if (hi <= now_) {
      e.place = Expect::Place::kReady;
    } else {
      e.place = Expect::Place::kRetryWait;
      e.retry_lo = lo;
      e.retry_hi = hi;
    }
  }
  void OracleResults(const NodeId& w, const wq::Results& m) {
    // "Starts and failures are taken only for the current delivery, named
    // by its number."
    for (const wq::StartedTask& st : m.started) {
      auto it = tasks_.find(st.seq);
      if (it != tasks_.end() && Current(it->second, w) &&
          (st.delivery == 0 || st.delivery == it->second.deliveries)) {
        Count(it->second);
      }
    }
    // "An ack from any delivery completes it, once."
    auto ack = [&](uint64_t seq) {
      auto it = tasks_.find(seq);
      if (it == tasks_.end()) return;  // resolved already: no completion
      if (Current(it->second, w)) Count(it->second);
      Predict(seq, Completion::Kind::kAcked, it->second.attempts, "");
    };
    for (uint64_t seq : m.acked) ack(seq);
    for (const wq::OtherResult& r : m.others) {
      auto it = tasks_.find(r.seq);
      if (it == tasks_.end()) continue;
      Expect& e = it->second;
      // "Only the current delivery may fail or release a task."
      if (!Current(e, w) || (r.delivery != 0 ? r.delivery != e.deliveries
                                             : r.attempt != e.wire_attempt)) {
        continue;
      }
      switch (r.verdict) {
        case wq::Verdict::kAck:
          ack(r.seq);
          break;
        case wq::Verdict::kRetry: {
          Count(e);
          e.crashes = 0;
          absl::Time lo, hi;
          if (r.delay_ms > 0) {
            lo = hi = now_ + absl::Milliseconds(r.delay_ms);
          } else {
            // Exponential backoff from retry_backoff, capped, +-10% jitter.
            absl::Duration b = cfg_.dispatcher.retry_backoff;
            for (uint32_t i = 1; i < e.attempts; ++i) b *= 2;
            b = std::min(b, cfg_.dispatcher.max_retry_backoff);
            lo = now_ + b * 0.9 - absl::Milliseconds(1);
            hi = now_ + b * 1.1 + absl::Milliseconds(1);
          }
          FailStarted(r.seq, e, lo, hi);
          break;
        }
        case wq::Verdict::kReject:
          // "A reject makes it a dead letter at once."
          Count(e);
          Predict(r.seq, Completion::Kind::kDeadLettered, e.attempts,
                  absl::StrCat("rejected: ", r.reason));
          break;
        case wq::Verdict::kRelease:
          // Returned unstarted: attempts unchanged.
          e.place = Expect::Place::kReady;
          break;
      }
    }
    auto link = links_.find(w);
    if (link != links_.end()) link->second.balance += m.grant;
  }
  void OracleWorkerDown(const NodeId& w, bool lost) {
    auto link = links_.find(w);
    if (link == links_.end()) return;
    if (!lost) {
      // The dispatcher drops the credit it held: tasks sent to it from now
      // on need new credit.
      link->second.offering = false;
      link->second.balance = 0;
      return;
    }
    links_.erase(link);
    std::vector<uint64_t> held;
    for (auto& [seq, e] : tasks_) {
      if (Current(e, w)) held.push_back(seq);
    }
    for (uint64_t seq : held) {
      Expect& e = tasks_[seq];
      if (!e.counted) {
        e.place = Expect::Place::kReady;  // unstarted: not an attempt
        continue;
      }
      // "A started delivery whose worker died counts a worker crash, and
      // max_worker_crashes of them in a row make it a dead letter."
      e.crashes++;
      if (e.crashes >= cfg_.dispatcher.max_worker_crashes) {
        Predict(seq, Completion::Kind::kDeadLettered, e.attempts,
                "max_worker_crashes");
      } else {
        e.place = Expect::Place::kReady;
      }
    }
  }
  void OracleTick() {
    std::vector<uint64_t> expired;
    for (auto& [seq, e] : tasks_) {
      if (e.place == Expect::Place::kInFlight && e.deadline <= now_) {
        expired.push_back(seq);
      } else if (e.place == Expect::Place::kRetryWait ||
                 e.place == Expect::Place::kMaybeReady) {
        // A retry wait ends at a tick at or after its (jittered) time.
        if (e.retry_hi <= now_) {
          e.place = Expect::Place::kReady;
        } else if (e.retry_lo <= now_) {
          e.place = Expect::Place::kMaybeReady;
        }
      }
    }
    for (uint64_t seq : expired) {
      Expect& e = tasks_[seq];
      lease_expiries_++;
      if (!e.counted) {
        e.place = Expect::Place::kReady;  // unstarted: not an attempt
        continue;
      }
      started_lease_expiries_++;
      e.crashes = 0;
      FailStarted(seq, e, now_, now_);
    }
  }
  // A frame: "dispatched only under credit a worker granted", only to a
  // worker offering the queue, and only tasks that were ready.
  void OracleFrame(const wq::Effects::Frame& f) {
    auto link = links_.find(f.worker);
    if (link == links_.end() || !link->second.offering) {
      Fail("dispatch-to-non-offering",
           absl::StrCat("frame of ", f.seqs.size(), " task(s) to ",
                        Name(f.worker), " which does not offer the queue"));
      return;
    }
    for (uint64_t seq : f.seqs) {
      auto it = tasks_.find(seq);
      if (it == tasks_.end()) {
        Fail("dispatch-unknown-task",
             absl::StrCat("s", seq, " sent to ", Name(f.worker),
                          " but it is not held"));
        return;
      }
      Expect& e = it->second;
      if (e.place == Expect::Place::kInFlight) {
        Fail("one-place", absl::StrCat("s", seq, " sent to ", Name(f.worker),
                                       " while in flight at ", Name(e.worker)));
        return;
      }
      if (e.place == Expect::Place::kRetryWait) {
        Fail("retry-too-early",
             absl::StrCat("s", seq, " sent before its retry time ",
                          absl::FormatTime(e.retry_lo)));
        return;
      }
      e.place = Expect::Place::kInFlight;
      e.worker = f.worker;
      e.counted = false;
      e.wire_attempt = e.attempts + 1;
      e.deliveries++;
      e.deadline = now_ + lease();
      dispatched_++;
    }
    link->second.balance -= static_cast<int64_t>(f.seqs.size());
    if (link->second.balance < 0) {
      Fail("credit",
           absl::StrCat("sent ", -link->second.balance, " task(s) more than ",
                        Name(f.worker), " granted"));
    }
  }
  // "A frame that could not be sent: its tasks go back unstarted."
  void OracleSendFailed(const wq::Effects::Frame& f) {
    for (uint64_t seq : f.seqs) {
      auto it = tasks_.find(seq);
      if (it == tasks_.end() || !Current(it->second, f.worker) ||
          it->second.counted) {
        continue;
      }
      it->second.place = Expect::Place::kReady;
      it->second.deliveries--;
      dispatched_--;
    }
  }

  // ------------------------------------------------------------- effects

  // Carries out effects as Producer::Impl::Apply does: frames (a failed
  // send feeds SendFailed, whose effects follow), then demands (before the
  // frames with `demands_before_frames`, as producer.cc did once), acks and
  // dead letters in the spool, completions.
  void Apply(wq::Effects first) {
    std::vector<Completion> completions;
    std::vector<uint64_t> acked;
    std::vector<DeadLetter> dead;
    uint64_t freed = 0;
    wq::Effects next = std::move(first);
    while (!next.empty() && !failed()) {
      wq::Effects e;
      std::swap(e, next);
      if (options_.demands_before_frames) {
        for (const wq::Effects::DemandOut& d : e.demands) Demand(d);
      }
      for (const wq::Effects::Frame& f : e.frames) {
        if (failed()) return;
        OracleFrame(f);
        if (failed()) return;
        SimWorker* w = WorkerById(f.worker);
        if (w == nullptr || w->fail_frames > 0) {
          if (w != nullptr) w->fail_frames--;
          send_failures_++;
          OracleSendFailed(f);
          d_->SendFailed(now_, f.worker, f.seqs, next);
          // "The worker gets nothing until it grants credit again."
          if (d_->CreditOf(f.worker) != 0) {
            Fail("send-failed", absl::StrCat(Name(f.worker),
                                             " keeps credit after a failed "
                                             "send"));
            return;
          }
          continue;
        }
        Deliver(*w, f);
      }
      if (!options_.demands_before_frames) {
        for (const wq::Effects::DemandOut& d : e.demands) Demand(d);
      }
      for (uint64_t seq : e.acked) acked.push_back(seq);
      for (DeadLetter& d : e.dead) dead.push_back(std::move(d));
      for (Completion& c : e.completions) completions.push_back(std::move(c));
      freed += e.freed_bytes;
    }
    if (!failed()) Completions(completions, acked, dead, freed);
  }

  // A demand reaches the worker: its ledger takes it and the engine
  // flushes (worker.cc OnDemand).
  void Demand(const wq::Effects::DemandOut& d) {
    auto link = links_.find(d.worker);
    if (link == links_.end()) {
      Fail("demand-to-unknown", absl::StrCat("demand to ", Name(d.worker)));
      return;
    }
    link->second.balance -= static_cast<int64_t>(d.returned);
    if (link->second.balance < 0) {
      Fail("credit", absl::StrCat("handed back ", d.returned, " credit to ",
                                  Name(d.worker), ", more than it holds"));
      return;
    }
    SimWorker* w = WorkerById(d.worker);
    if (w == nullptr) return;
    // The wire's credit_held is the demand's `returned` (producer.cc).
    const absl::StatusOr<wq::Demand> m = wq::DecodeDemand(
        wq::EncodeDemand(wq::Demand{"sim", d.backlog, d.returned}));
    if (!m.ok()) {
      Fail("wire", absl::StrCat("DEMAND: ", m.status().ToString()));
      return;
    }
    w->ledger->Demand(now_, producer_node_, *m);
    EngineFlush(*w);
  }

  // A frame reaches a worker: encoded from Find() as producer.cc does,
  // decoded and handed to its ledger (worker.cc OnTasks); the tasks the
  // ledger returns wait for a handler.
  void Deliver(SimWorker& w, const wq::Effects::Frame& f) {
    wq::TasksEncoder encoder("sim", producer_);
    for (uint64_t seq : f.seqs) {
      std::optional<wq::Dispatcher::TaskView> t = d_->Find(seq);
      if (!t.has_value()) {
        Fail("frame-holds-gone-task", absl::StrCat("s", seq));
        return;
      }
      const Expect& e = tasks_[seq];
      if (t->attempt != e.wire_attempt) {
        Fail("attempts", absl::StrCat("s", seq, " sent as attempt ", t->attempt,
                                      ", expected ", e.wire_attempt));
        return;
      }
      const bool redelivered = e.recovered || e.deliveries > 1;
      if (t->redelivered != redelivered) {
        Fail("redelivered-flag",
             absl::StrCat("s", seq, " redelivered=", t->redelivered,
                          ", expected ", redelivered));
        return;
      }
      encoder.Add(seq, t->attempt, t->redelivered, *t->headers, *t->body);
    }
    const std::string body = encoder.Finish();
    const absl::StatusOr<wq::Tasks> m = wq::DecodeTasks(body);
    if (!m.ok() || m->tasks.size() != f.seqs.size()) {
      Fail("wire", absl::StrCat("TASKS: ", m.status().ToString()));
      return;
    }
    // Frames go out before demands, so the worker's ledger counts as
    // outstanding every task the dispatcher sends it.
    if (m->tasks.size() > w.ledger->outstanding()) {
      Fail("worker-credit",
           absl::StrCat(Name(w.id), " got ", m->tasks.size(), " task(s) with ",
                        w.ledger->outstanding(),
                        " credit outstanding in its ledger"));
      return;
    }
    const wq::ProducerKey key = ProducerKeyNow();
    const uint64_t dups0 = w.ledger->duplicates();
    for (size_t i : w.ledger->Tasks(producer_node_, *m)) {
      const wq::WireTask& t = m->tasks[i];
      CheckNotRunAgain(w, t.seq);
      if (failed()) return;
      Delivery fresh;
      fresh.key = key;
      fresh.seq = t.seq;
      fresh.attempt = t.attempt;
      fresh.delivery = t.delivery;
      fresh.redelivered = t.redelivered;
      w.window.push_back(std::move(fresh));
    }
    duplicates_ += w.ledger->duplicates() - dups0;
    EngineFlush(w);
  }

  // "A task acked here within the dedup window (and among the last
  // dedup_max) is acked again without running" (worker_ledger.h).
  void CheckNotRunAgain(const SimWorker& w, uint64_t seq) {
    for (size_t i = w.acks.size(); i-- > 0;) {
      if (w.acks[i].second != seq) continue;
      const absl::Time at = w.acks[i].first;
      const size_t since = w.acks.size() - i;  // acks from then on
      if (now_ - at <= cfg_.dedup_window && since <= cfg_.dedup_max) {
        Fail("dedup",
             absl::StrCat(Name(w.id), " runs s", seq, " again: it acked it ",
                          absl::FormatDuration(now_ - at), " ago, ", since - 1,
                          " ack(s) since"));
      }
      return;
    }
  }

  // Completions against the oracle's predictions, and the spool.
  void Completions(const std::vector<Completion>& completions,
                   const std::vector<uint64_t>& acked,
                   const std::vector<DeadLetter>& dead, uint64_t freed) {
    uint64_t bytes = 0;
    std::set<uint64_t> acked_seqs(acked.begin(), acked.end());
    std::map<uint64_t, const DeadLetter*> dead_seqs;
    for (const DeadLetter& d : dead) dead_seqs[d.task.seq] = &d;
    if (acked_seqs.size() != acked.size() || dead_seqs.size() != dead.size()) {
      Fail("single-completion", "a task acked or dead-lettered twice at once");
      return;
    }
    for (const Completion& c : completions) {
      const uint64_t seq = c.id.seq;
      // No task completes twice (across producer restarts too: an acked
      // task left the spool and is never added again).
      if (completed_.count(seq) > 0) {
        Fail("single-completion", absl::StrCat("s", seq, " completed again"));
        return;
      }
      auto p = predicted_.find(seq);
      if (p == predicted_.end()) {
        Fail("unexpected-completion",
             absl::StrCat(
                 "s", seq,
                 c.kind == Completion::Kind::kAcked ? " acked" : " dead: ",
                 c.reason, " (attempts ", c.attempts,
                 ") but the rules give no outcome"));
        return;
      }
      const Predicted& want = p->second;
      const uint32_t want_attempts =
          want.attempts + (options_.fault == Fault::kMiscountAttempts);
      if (c.kind != want.kind) {
        Fail("completion-kind",
             absl::StrCat(
                 "s", seq, " ended ",
                 c.kind == Completion::Kind::kAcked ? "acked" : "dead", " (",
                 c.reason, "), expected ",
                 want.kind == Completion::Kind::kAcked ? "acked" : "dead", " (",
                 want.reason, ")"));
        return;
      }
      // attempts = started deliveries the dispatcher was told of.
      if (c.attempts != want_attempts) {
        Fail("attempts",
             absl::StrCat("s", seq, " completed with attempts=", c.attempts,
                          ", expected ", want_attempts));
        return;
      }
      if (c.id.producer != producer_) {
        Fail("completion-producer", absl::StrCat("s", seq));
        return;
      }
      const SpoolTask& task = catalog_.at(seq);
      if (c.kind == Completion::Kind::kAcked) {
        if (acked_seqs.erase(seq) == 0) {
          Fail("spool", absl::StrCat("s", seq, " acked but not in acked"));
          return;
        }
        total_acked_++;
        acked_++;
      } else {
        auto d = dead_seqs.find(seq);
        if (d == dead_seqs.end() || d->second->attempts != c.attempts ||
            d->second->reason != c.reason ||
            d->second->task.body != task.body) {
          Fail("spool", absl::StrCat("s", seq, " dead letter differs"));
          return;
        }
        dead_seqs.erase(d);
        CheckDeadReason(seq, c, want);
        if (failed()) return;
        total_dead_++;
        dead_++;
      }
      bytes += task.bytes;
      predicted_.erase(p);
      completed_[seq] = c.kind;
      spool_.erase(seq);
    }
    if (!predicted_.empty()) {
      const auto& [seq, want] = *predicted_.begin();
      Fail("missing-completion",
           absl::StrCat(
               "s", seq, " should have ended ",
               want.kind == Completion::Kind::kAcked ? "acked" : "dead: ",
               want.reason, " (attempts ", want.attempts, ")"));
      return;
    }
    if (!acked_seqs.empty() || !dead_seqs.empty()) {
      Fail("spool", "acked or dead letters without a completion");
      return;
    }
    if (bytes != freed) {
      Fail("freed-bytes", absl::StrCat("freed ", freed, ", expected ", bytes));
    }
  }

  // A dead letter's reason is true.
  void CheckDeadReason(uint64_t seq, const Completion& c,
                       const Predicted& want) {
    const SpoolTask& task = catalog_.at(seq);
    auto starts_with = [&](absl::string_view p) {
      return absl::string_view(c.reason).substr(0, p.size()) == p;
    };
    if (!starts_with(want.reason)) {
      Fail("dead-reason", absl::StrCat("s", seq, " dead: ", c.reason,
                                       "; expected ", want.reason));
    } else if (starts_with("rejected: ") && rejected_.count(seq) == 0) {
      Fail("dead-reason", absl::StrCat("s", seq, " dead: ", c.reason,
                                       " but no handler rejected it"));
    } else if (starts_with("max_attempts") &&
               c.attempts < cfg_.dispatcher.max_attempts) {
      Fail("dead-reason",
           absl::StrCat("s", seq, " dead: ", c.reason, " after ", c.attempts,
                        " < ", cfg_.dispatcher.max_attempts, " attempts"));
    } else if (starts_with("max_worker_crashes") &&
               cfg_.profile != Profile::kChaos &&
               task.behaviour != Behaviour::kPoison &&
               crashed_not_running_.count(seq) == 0) {
      Fail("dead-reason", absl::StrCat("s", seq, " dead: ", c.reason,
                                       " but it is not poison"));
    } else if (Clean()) {
      // No handler failed, no worker died while running one, no lease ran
      // out during a run: nothing may be dead-lettered.
      Fail("clean-run", absl::StrCat("s", seq, " dead: ", c.reason,
                                     " in a run without failures"));
    }
  }

  // ------------------------------------------------------------- checks

  // After every input.
  void Check() {
    // No task that was pushed (confirmed) is lost: it is held by the
    // dispatcher or completed; the dispatcher holds nothing else.
    if (d_->size() != spool_.size() || tasks_.size() != spool_.size()) {
      Fail("no-loss", absl::StrCat("dispatcher holds ", d_->size(), ", spool ",
                                   spool_.size(), ", oracle ", tasks_.size()));
      return;
    }
    uint64_t in_flight = 0, ready = 0, maybe = 0;
    for (const auto& [seq, e] : tasks_) {
      std::optional<wq::Dispatcher::TaskView> t = d_->Find(seq);
      if (!t.has_value() || spool_.count(seq) == 0) {
        Fail("no-loss", absl::StrCat("s", seq, " is neither held nor done"));
        return;
      }
      // attempts = started deliveries the dispatcher was told of; Find()
      // gives the current delivery's number, or the next one's when none
      // is in flight.
      const bool current_started =
          e.place == Expect::Place::kInFlight && e.counted;
      const uint32_t attempt = current_started ? e.attempts : e.attempts + 1;
      if (t->attempt != attempt) {
        Fail("attempts", absl::StrCat("s", seq, " next attempt ", t->attempt,
                                      ", expected ", attempt));
        return;
      }
      in_flight += e.place == Expect::Place::kInFlight;
      ready += e.place == Expect::Place::kReady;
      maybe += e.place == Expect::Place::kMaybeReady;
    }
    // Gauges and counters agree with what the oracle saw.
    const wq::DispatcherStats& s = d_->stats();
    if (s.in_flight != in_flight) {
      Fail("gauges",
           absl::StrCat("in_flight ", s.in_flight, ", expected ", in_flight));
    } else if (s.backlog < ready || s.backlog > ready + maybe) {
      Fail("gauges", absl::StrCat("backlog ", s.backlog, ", expected ", ready,
                                  "..", ready + maybe));
    } else if (s.started != started_ || s.acked != acked_ ||
               s.dead_lettered != dead_ || s.dispatched != dispatched_) {
      Fail("gauges", absl::StrCat("started/acked/dead/dispatched ", s.started,
                                  "/", s.acked, "/", s.dead_lettered, "/",
                                  s.dispatched, ", expected ", started_, "/",
                                  acked_, "/", dead_, "/", dispatched_));
    }
    if (failed()) return;
    uint64_t offering = 0;
    for (const auto& [id, link] : links_) {
      offering += link.offering;
      // The credit the dispatcher holds was granted and not yet used or
      // handed back, by its own books and by the worker's.
      const uint64_t credit = d_->CreditOf(id);
      if (static_cast<int64_t>(credit) > link.balance) {
        Fail("credit", absl::StrCat("dispatcher holds ", credit, " credit of ",
                                    Name(id), ", granted ", link.balance));
        return;
      }
      const SimWorker* w = WorkerById(id);
      if (w != nullptr && credit > w->ledger->outstanding()) {
        Fail("worker-credit",
             absl::StrCat("dispatcher holds ", credit, " credit of ", Name(id),
                          ", its ledger counts ", w->ledger->outstanding(),
                          " outstanding"));
        return;
      }
    }
    if (s.workers != offering) {
      Fail("gauges",
           absl::StrCat("workers ", s.workers, ", expected ", offering));
      return;
    }
    CheckLedgers();
  }

  // The workers' ledgers (worker_ledger.h): "held + outstanding credit
  // never exceeds the prefetch window", and the ledger holds exactly the
  // deliveries its shell holds or has not resolved yet.
  void CheckLedgers() {
    for (const SimWorker& w : workers_) {
      if (w.state == SimWorker::State::kDown) continue;
      const wq::WorkerLedger& l = *w.ledger;
      if (l.held() + l.outstanding() > cfg_.prefetch) {
        Fail("prefetch",
             absl::StrCat(Name(w.id), " holds ", l.held(), " + lends ",
                          l.outstanding(), " > prefetch ", cfg_.prefetch));
        return;
      }
      if (l.held() != w.window.size() + w.results.size()) {
        Fail("worker-held",
             absl::StrCat(Name(w.id), "'s ledger holds ", l.held(),
                          ", its shell ", w.window.size(), " + ",
                          w.results.size(), " unresolved"));
        return;
      }
    }
  }

  void FinalChecks() {
    // Every task ended, acked or dead.
    for (uint64_t seq : pushed_) {
      if (completed_.count(seq) == 0) {
        Fail("liveness", absl::StrCat("s", seq, " never completed"));
        return;
      }
    }
    if (Clean() && total_dead_ > 0) {
      Fail("clean-run", absl::StrCat(total_dead_, " dead letter(s)"));
    }
  }

  // ------------------------------------------------------------- workers
  // The worker's engine side as worker.cc: every input to the ledger is
  // followed by a flush, whose messages go on the wire (the outbox) and
  // arrive when the schedule says.

  // worker.cc Flush: grant, take the messages, send them (a failed send
  // takes its grant back).
  void EngineFlush(SimWorker& w) {
    w.ledger->Grant();
    for (wq::LedgerMessage& m : w.ledger->TakeMessages(now_)) {
      if (w.fail_sends > 0) {
        w.fail_sends--;
        send_failures_++;
        w.ledger->SendFailed(m);
        continue;
      }
      Outgoing o;
      o.to = m.to;
      o.taken = now_;
      o.grant = m.grant;
      if (m.kind == wq::kCredit) {
        const absl::StatusOr<wq::Credit> c = wq::DecodeCredit(m.body);
        if (!c.ok() || c->grant != m.grant || c->queue != "sim") {
          Fail("wire", absl::StrCat("CREDIT from ", Name(w.id)));
          return;
        }
      } else {
        absl::StatusOr<wq::Results> r = wq::DecodeResults(m.body);
        if (m.kind != wq::kResults || !r.ok() || r->grant != m.grant ||
            r->queue != "sim") {
          Fail("wire", absl::StrCat("RESULTS from ", Name(w.id)));
          return;
        }
        o.results = *std::move(r);
      }
      w.outbox.push_back(std::move(o));
    }
  }

  // worker.cc OnProducerGone, for the producer nodes gone since the last
  // engine event: waiting deliveries they sent are dropped (released), the
  // ledger forgets their credit; running ones finish and are resolved.
  void NoticeGone(SimWorker& w) {
    if (w.state == SimWorker::State::kDown || w.gone.empty()) return;
    std::vector<NodeId> gone;
    std::swap(gone, w.gone);
    for (const NodeId& node : gone) {
      std::vector<Delivery> dropped, keep;
      for (Delivery& d : w.window) {
        (!d.started && d.key.node == node ? dropped : keep)
            .push_back(std::move(d));
      }
      w.window = std::move(keep);
      w.ledger->ProducerGone(node, "");
      for (const Delivery& d : dropped) {
        Resolve(w, Posted{d.key, d.seq, d.attempt, d.delivery,
                          wq::Verdict::kRelease, 0, ""});
      }
    }
    EngineFlush(w);
  }

  void Resolve(SimWorker& w, const Posted& r) {
    w.ledger->Resolve(now_, r.key, TaskId{producer_, r.seq}, r.attempt,
                      r.delivery, r.verdict, r.delay_ms, r.reason);
    if (r.verdict == wq::Verdict::kAck) w.acks.emplace_back(now_, r.seq);
  }

  // worker.cc DrainResults: what handler threads posted reaches the
  // ledger, then the engine flushes.
  void DrainResults(SimWorker& w) {
    if (w.state == SimWorker::State::kDown) return;
    NoticeGone(w);
    std::vector<PostedStart> starts;
    std::vector<Posted> results;
    std::swap(starts, w.starts);
    std::swap(results, w.results);
    for (const PostedStart& st : starts) {
      w.ledger->Started(st.key, TaskId{producer_, st.seq}, st.delivery);
    }
    for (const Posted& r : results) Resolve(w, r);
    w.ledger->Prune(now_);
    EngineFlush(w);
  }

  // worker.cc OnTick.
  void EngineTick(SimWorker& w) {
    if (w.state == SimWorker::State::kDown) return;
    NoticeGone(w);
    w.ledger->Prune(now_);
    EngineFlush(w);
  }

  // The worker's messages on the wire reach the producer, in order (those
  // sent meanwhile stay on the wire). Messages for a producer node that
  // died are lost.
  void Arrive(SimWorker& w) {
    for (size_t n = w.outbox.size(); n > 0 && !failed(); --n) {
      if (w.state == SimWorker::State::kDown) return;
      Outgoing o = std::move(w.outbox.front());
      w.outbox.pop_front();
      if (o.to.node != producer_node_) continue;
      if (!o.results.has_value()) {
        Credit(w.id, o.grant);
        continue;
      }
      w.last_sent = *o.results;
      w.last_sent->grant = 0;
      w.last_sent->started.clear();
      Results(w.id, *std::move(o.results));
    }
  }

  // A handler started (or its outcome waits) whose task the dispatcher
  // may count, or the dispatcher counts a start of a delivery here.
  bool Busy(const SimWorker& w) const {
    if (w.Running() > 0 || !w.starts.empty() || !w.results.empty() ||
        w.ResultsOnTheWire()) {
      return true;
    }
    for (const auto& [seq, e] : tasks_) {
      if (Current(e, w.id) && e.counted) return true;
    }
    return false;
  }

  // The handler of `seq` starts (poison: its start reaches the producer,
  // then the worker dies).
  void Start(size_t slot, uint64_t seq, bool report) {
    SimWorker& w = workers_[slot];
    if (w.state == SimWorker::State::kDown) return;
    Delivery* d = w.Find(seq);
    if (d == nullptr || d->started) return;
    if (w.Running() >= cfg_.concurrency) return;
    d->started = true;
    d->run = ++runs_[seq];
    const SpoolTask& task = catalog_.at(seq);
    if (task.behaviour == Behaviour::kPoison) {
      w.starts.push_back(PostedStart{d->key, seq, d->delivery});
      DrainResults(w);
      Arrive(w);
      CrashWorker(slot);
      return;
    }
    if (report) w.starts.push_back(PostedStart{d->key, seq, d->delivery});
  }

  // The handler of `seq` returns; its result is posted for the engine.
  void FinishTask(size_t slot, uint64_t seq, uint64_t delay_ms) {
    SimWorker& w = workers_[slot];
    if (w.state == SimWorker::State::kDown) return;
    auto it = std::find_if(
        w.window.begin(), w.window.end(),
        [&](const Delivery& d) { return d.seq == seq && d.started; });
    if (it == w.window.end()) return;
    Delivery d = std::move(*it);
    w.window.erase(it);
    auto s = catalog_.find(seq);
    wq::Verdict v = wq::Verdict::kAck;
    if (s != catalog_.end()) {
      const SpoolTask& task = s->second;
      switch (task.behaviour) {
        case Behaviour::kAck:
        case Behaviour::kPoison:
          break;
        case Behaviour::kRetryThenAck:
          if (d.run <= task.retries) v = wq::Verdict::kRetry;
          break;
        case Behaviour::kAlwaysRetry:
          v = wq::Verdict::kRetry;
          break;
        case Behaviour::kReject:
          v = wq::Verdict::kReject;
          break;
      }
    }
    if (v != wq::Verdict::kAck) handler_failures_++;
    if (v == wq::Verdict::kReject) rejected_.insert(seq);
    w.results.push_back(Posted{d.key, seq, d.attempt, d.delivery, v,
                               v == wq::Verdict::kRetry ? delay_ms : 0,
                               v == wq::Verdict::kReject
                                   ? "bad input"
                                   : (v == wq::Verdict::kAck ? "" : "busy")});
  }

  void CrashWorker(size_t slot) {
    SimWorker& w = workers_[slot];
    if (w.state == SimWorker::State::kDown) return;
    if (Busy(w)) started_crashes_++;
    worker_crashes_++;
    // The dispatcher counts a start here of a task whose handler is not
    // running, so the crash counts against a task that did not cause it:
    // its result was lost or is still on the wire. (A stale start of an
    // earlier delivery is not counted: starts name their delivery.)
    for (const auto& [seq, e] : tasks_) {
      const Delivery* d = w.Find(seq);
      if (Current(e, w.id) && e.counted && (d == nullptr || !d->started)) {
        crashed_not_running_.insert(seq);
      }
    }
    w.state = SimWorker::State::kDown;
    const NodeId id = w.id;
    const uint64_t fail_frames = w.fail_frames;
    const int incarnation = w.incarnation;
    w = SimWorker{};  // the process and all it knew are gone
    w.state = SimWorker::State::kDown;
    w.id = id;
    w.incarnation = incarnation;
    w.fail_frames = fail_frames;
    WorkerDown(id, /*lost=*/true);
  }

  void RestartWorker(size_t slot) {
    SimWorker& w = workers_[slot];
    if (w.state != SimWorker::State::kDown) return;
    const uint64_t fail_frames = w.fail_frames;
    const int incarnation = w.incarnation + 1;
    w = SimWorker{};
    w.incarnation = incarnation;
    w.fail_frames = fail_frames;
    w.id = NewWorkerId(slot);
    w.ledger = NewLedger();
    names_[w.id] = WorkerName(slot);
    WorkerUp(w.id);
  }

  // The worker closes (worker.cc Close): it stops granting, the producer
  // sees it stop offering (not lost), and what it had not started goes
  // back released.
  void Leave(size_t slot) {
    SimWorker& w = workers_[slot];
    if (w.state != SimWorker::State::kUp) return;
    w.state = SimWorker::State::kLeft;
    w.ledger->StopGranting();
    WorkerDown(w.id, /*lost=*/false);
    std::vector<Delivery> keep;
    for (Delivery& d : w.window) {
      if (d.started) {
        keep.push_back(std::move(d));
        continue;
      }
      w.results.push_back(Posted{d.key, d.seq, d.attempt, d.delivery,
                                 wq::Verdict::kRelease, 0, "worker closing"});
    }
    w.window = std::move(keep);
    DrainResults(w);
    Arrive(w);
  }

  // A worker that left starts a new Worker on the same node once its
  // handlers finished: the old one's last results go out, and a new ledger
  // (nothing granted, nothing remembered) offers the queue again.
  void Rejoin(size_t slot) {
    SimWorker& w = workers_[slot];
    if (w.state != SimWorker::State::kLeft || !w.window.empty()) return;
    DrainResults(w);
    for (int i = 0; i < 8 && !w.outbox.empty() && !failed(); ++i) Arrive(w);
    if (failed()) return;
    w.ledger = NewLedger();
    w.gone.clear();
    w.acks.clear();
    w.last_sent.reset();
    w.state = SimWorker::State::kUp;
    WorkerUp(w.id);
  }

  // Time passes. First, messages on the wire that carry a grant arrive
  // before they are older than the ledger's lost-grant time (its
  // assumption: a grant still unknown to the producer after that long was
  // lost); then, when `extend`, running handlers (and those whose results
  // are not sent yet) extend their leases.
  void Advance(absl::Duration dt, bool extend) {
    if (dt <= absl::ZeroDuration()) return;
    // What arrives may make any worker send more (taken now): that too.
    for (int round = 0; round < 1000 && !failed(); ++round) {
      SimWorker* due = nullptr;
      for (SimWorker& w : workers_) {
        for (const Outgoing& o : w.outbox) {
          if (o.grant > 0 && now_ + dt - o.taken > kLostGrant) due = &w;
        }
        if (due != nullptr) break;
      }
      if (due == nullptr) break;
      Arrive(*due);
    }
    if (extend || cfg_.profile == Profile::kClean) {
      for (SimWorker& w : workers_) {
        if (w.state == SimWorker::State::kDown) continue;
        std::vector<uint64_t> seqs;
        // worker.cc ExtendLease: to the delivery's producer and to those
        // owed the run's result.
        auto add = [&](const wq::ProducerKey& key, uint64_t seq) {
          bool reaches = key.node == producer_node_;
          for (const NodeId& n :
               w.ledger->OwedTo(TaskId{producer_, seq}, key.node)) {
            reaches = reaches || n == producer_node_;
          }
          if (reaches) seqs.push_back(seq);
        };
        for (const Delivery& d : w.window) {
          if (d.started) add(d.key, d.seq);
        }
        for (const Posted& r : w.results) add(r.key, r.seq);
        for (const Outgoing& o : w.outbox) {
          if (!o.results.has_value() || o.to.node != producer_node_) continue;
          for (uint64_t seq : o.results->acked) seqs.push_back(seq);
          for (const wq::OtherResult& r : o.results->others) {
            seqs.push_back(r.seq);
          }
        }
        if (!seqs.empty()) Extend(w.id, std::move(seqs), dt + lease());
      }
    }
    now_ += dt;
  }

  // The producer process dies and a new one starts from the spool on a new
  // node (task ids keep the spool's producer id): a new dispatcher gets
  // every task not yet acked or dead, marked recovered. Workers learn that
  // the old node is gone at their next engine event; what they send it is
  // lost.
  void RestartProducer() {
    const NodeId old = producer_node_;
    incarnation_++;
    producer_node_ = MakeId(static_cast<uint64_t>(incarnation_), 0x4e);
    NewDispatcher();
    predicted_.clear();
    for (SimWorker& w : workers_) {
      if (w.state == SimWorker::State::kDown) continue;
      w.gone.push_back(old);
      w.last_sent.reset();
    }
    std::vector<wq::NewTask> recovered;
    for (uint64_t seq : spool_) {
      const SpoolTask& t = catalog_.at(seq);
      recovered.push_back(
          wq::NewTask{seq, t.enqueued, t.headers, t.body, /*recovered=*/true});
    }
    AddTasks(std::move(recovered));
    for (SimWorker& w : workers_) {
      if (w.state == SimWorker::State::kUp) WorkerUp(w.id);
    }
  }

  void CloseProducer() {
    Run([&](wq::Effects& out) { d_->Close(now_, out); });
    for (const auto& [id, link] : links_) {
      if (d_->CreditOf(id) != 0) {
        Fail("close", absl::StrCat(Name(id), " still has credit after Close"));
        return;
      }
    }
  }

  // -------------------------------------------------------------- events

  void Execute(const Event& e) {
    const size_t slot = static_cast<size_t>(e.worker);
    if (slot >= workers_.size()) return;
    SimWorker& w = workers_[slot];
    const bool strict = cfg_.profile != Profile::kChaos;
    switch (e.kind) {
      case Event::Kind::kPush: {
        std::vector<wq::NewTask> batch;
        for (size_t i = 0; i < e.behaviours.size(); ++i) {
          const uint64_t seq = e.seq + i;
          if (spool_.count(seq) > 0 || completed_.count(seq) > 0) continue;
          SpoolTask t;
          t.behaviour = e.behaviours[i];
          t.retries = i < e.retries.size() ? e.retries[i] : 0;
          t.enqueued = now_;
          t.body = std::string(seq % 37, 'x');
          if (seq % 3 == 0) t.headers["k"] = "v";
          t.bytes = t.body.size() + (seq % 3 == 0 ? 2 : 0);
          spool_.insert(seq);
          catalog_[seq] = t;
          pushed_.insert(seq);
          batch.push_back(wq::NewTask{seq, now_, t.headers, t.body, false});
        }
        AddTasks(std::move(batch));
        break;
      }
      case Event::Kind::kGrant:
        EngineTick(w);
        Arrive(w);
        break;
      case Event::Kind::kStart:
        Start(slot, e.seq, e.flag);
        break;
      case Event::Kind::kFinish:
        FinishTask(slot, e.seq, e.n);
        break;
      case Event::Kind::kFlush:
        DrainResults(w);
        Arrive(w);
        break;
      case Event::Kind::kDupResults:
        if (w.state != SimWorker::State::kDown && w.last_sent.has_value()) {
          Results(w.id, *w.last_sent);
        }
        break;
      case Event::Kind::kExtend:
        if (w.state != SimWorker::State::kDown) {
          // worker.cc ExtendLease: to the delivery's producer and to those
          // owed its run's result.
          const Delivery* d = w.Find(e.seq);
          if (d == nullptr) break;
          std::vector<NodeId> to =
              w.ledger->OwedTo(TaskId{producer_, e.seq}, d->key.node);
          to.push_back(d->key.node);
          if (std::find(to.begin(), to.end(), producer_node_) != to.end()) {
            Extend(w.id, {e.seq}, absl::Milliseconds(e.n));
          }
        }
        break;
      case Event::Kind::kCrash:
        if (w.state == SimWorker::State::kUp && !(strict && Busy(w))) {
          CrashWorker(slot);
        }
        break;
      case Event::Kind::kRestart:
        RestartWorker(slot);
        break;
      case Event::Kind::kLeave:
        Leave(slot);
        break;
      case Event::Kind::kRejoin:
        Rejoin(slot);
        break;
      case Event::Kind::kExit:
        if (w.state == SimWorker::State::kLeft && !(strict && Busy(w))) {
          CrashWorker(slot);
        }
        break;
      case Event::Kind::kFailSends:
        if (w.state == SimWorker::State::kDown) break;
        (e.flag ? w.fail_sends : w.fail_frames) = e.n;
        break;
      case Event::Kind::kAdvance:
        Advance(absl::Milliseconds(e.n), e.flag);
        break;
      case Event::Kind::kTick:
        Tick();
        break;
      case Event::Kind::kTickAtWakeup: {
        const absl::Time wake = d_->NextWakeup();
        if (wake != absl::InfiniteFuture() && wake > now_) {
          Advance(wake - now_, e.flag);
        }
        Tick();
        break;
      }
      case Event::Kind::kProducerRestart:
        RestartProducer();
        break;
    }
  }

  // Draws the next event from the current state.
  Event Generate(std::mt19937_64& rng) {
    const bool chaos = cfg_.profile == Profile::kChaos;
    for (int tries = 0; tries < 50; ++tries) {
      Event e;
      const size_t slot = Uniform<size_t>(rng, 0, workers_.size() - 1);
      e.worker = static_cast<int>(slot);
      const SimWorker& w = workers_[slot];
      const bool down = w.state == SimWorker::State::kDown;
      const int r = Uniform(rng, 0, 999);
      if (r < 80) {
        if (next_seq_ > static_cast<uint64_t>(cfg_.max_tasks)) continue;
        e.kind = Event::Kind::kPush;
        e.seq = next_seq_;
        const int n = Uniform(rng, 1, 4);
        for (int i = 0; i < n; ++i) {
          Behaviour b = Behaviour::kAck;
          int retries = 0;
          if (cfg_.profile != Profile::kClean) {
            const int k = Uniform(rng, 0, 99);
            if (k < 20) {
              b = Behaviour::kRetryThenAck;
              retries = Uniform(rng, 1, 3);
            } else if (k < 25) {
              b = Behaviour::kAlwaysRetry;
            } else if (k < 29) {
              b = Behaviour::kReject;
            } else if (k < 32) {
              b = Behaviour::kPoison;
            }
          }
          e.behaviours.push_back(b);
          e.retries.push_back(retries);
        }
        next_seq_ += static_cast<uint64_t>(n);
        return e;
      }
      if (r < 230) {
        if (down || (w.outbox.empty() && !Chance(rng, 0.2))) continue;
        e.kind = Event::Kind::kGrant;
        return e;
      }
      if (r < 380) {
        if (down) continue;
        std::vector<uint64_t> unstarted;
        for (const Delivery& d : w.window) {
          if (!d.started) unstarted.push_back(d.seq);
        }
        if (unstarted.empty() || w.Running() >= cfg_.concurrency) continue;
        e.kind = Event::Kind::kStart;
        e.seq = unstarted[Uniform<size_t>(rng, 0, unstarted.size() - 1)];
        e.flag = Chance(rng, 0.7);
        return e;
      }
      if (r < 530) {
        if (down) continue;
        std::vector<uint64_t> running;
        for (const Delivery& d : w.window) {
          if (d.started) running.push_back(d.seq);
        }
        if (running.empty()) continue;
        e.kind = Event::Kind::kFinish;
        e.seq = running[Uniform<size_t>(rng, 0, running.size() - 1)];
        e.n = Chance(rng, 0.5) ? 0 : Uniform<uint64_t>(rng, 1, 20000);
        return e;
      }
      if (r < 640) {
        if (down || w.EngineIdle()) continue;
        e.kind = Event::Kind::kFlush;
        return e;
      }
      if (r < 660) {
        if (down || !w.last_sent.has_value()) continue;
        e.kind = Event::Kind::kDupResults;
        return e;
      }
      if (r < 690) {
        if (down || w.window.empty()) continue;
        e.kind = Event::Kind::kExtend;
        e.seq = w.window[Uniform<size_t>(rng, 0, w.window.size() - 1)].seq;
        e.n = Uniform<uint64_t>(rng, 1000, 90000);
        return e;
      }
      if (r < 715) {
        if (w.state != SimWorker::State::kUp) continue;
        e.kind = Event::Kind::kCrash;
        return e;
      }
      if (r < 745) {
        if (!down) continue;
        e.kind = Event::Kind::kRestart;
        return e;
      }
      if (r < 760) {
        if (w.state != SimWorker::State::kUp) continue;
        e.kind = Event::Kind::kLeave;
        return e;
      }
      if (r < 780) {
        if (w.state != SimWorker::State::kLeft) continue;
        if (Chance(rng, 0.6)) {
          if (!w.window.empty()) continue;  // handlers still running
          e.kind = Event::Kind::kRejoin;
        } else {
          e.kind = Event::Kind::kExit;
        }
        return e;
      }
      if (r < 800) {
        if (down) continue;
        e.kind = Event::Kind::kFailSends;
        e.n = Uniform<uint64_t>(rng, 1, 2);
        e.flag = Chance(rng, 0.3);
        return e;
      }
      if (r < 880) {
        e.kind = Event::Kind::kAdvance;
        e.n = Uniform<uint64_t>(rng, 1, 2500);
        e.flag = !chaos || Chance(rng, 0.6);
        return e;
      }
      if (r < 900) {
        e.kind = Event::Kind::kAdvance;
        e.n = Uniform<uint64_t>(rng, 10000, 600000);
        e.flag = !chaos || Chance(rng, 0.5);
        return e;
      }
      if (r < 930) {
        e.kind = Event::Kind::kTick;
        return e;
      }
      if (r < 995) {
        e.kind = Event::Kind::kTickAtWakeup;
        e.flag = !chaos || Chance(rng, 0.6);
        return e;
      }
      if (!Chance(rng, 0.5)) continue;
      e.kind = Event::Kind::kProducerRestart;
      return e;
    }
    Event tick;
    tick.kind = Event::Kind::kTick;
    return tick;
  }

  // Heal and drain: workers restart or rejoin and stop failing sends; each
  // round every worker runs what it holds (one at a time, start reported),
  // its engine drains the results and ticks (the ledger grants what the
  // producer wants) and its messages arrive; when nothing moves, time jumps
  // to the dispatcher's next wakeup. Every task must end.
  void Drain() {
    for (int round = 0; round < kMaxDrainRounds && !failed(); ++round) {
      if (spool_.empty()) return;
      const uint64_t before = inputs_;
      for (size_t slot = 0; slot < workers_.size() && !failed(); ++slot) {
        SimWorker& w = workers_[slot];
        w.fail_frames = 0;
        w.fail_sends = 0;
        if (w.state == SimWorker::State::kDown) {
          RestartWorker(slot);
          continue;
        }
        // Finish what runs, then run the rest one task at a time.
        while (!w.window.empty() && w.state != SimWorker::State::kDown &&
               !failed()) {
          auto running =
              std::find_if(w.window.begin(), w.window.end(),
                           [](const Delivery& d) { return d.started; });
          if (running != w.window.end()) {
            FinishTask(slot, running->seq, 0);
            continue;
          }
          Start(slot, w.window.front().seq, /*report=*/true);
        }
        if (w.state == SimWorker::State::kLeft) {
          Rejoin(slot);
          continue;
        }
        if (w.state != SimWorker::State::kUp || failed()) continue;
        DrainResults(w);
        Arrive(w);
      }
      if (failed() || inputs_ != before) continue;
      const absl::Time wake = d_->NextWakeup();
      if (wake == absl::InfiniteFuture()) {
        Fail("liveness",
             absl::StrCat("drain stuck: ", spool_.size(),
                          " task(s) held, nothing to do and no wakeup"));
        return;
      }
      Advance(wake - now_, /*extend=*/true);
      Tick();
    }
    if (!failed() && !spool_.empty()) {
      Fail("liveness", absl::StrCat(spool_.size(), " task(s) still held after ",
                                    kMaxDrainRounds, " drain rounds"));
    }
  }

  const SimOptions options_;
  const Config cfg_;
  NodeId producer_;       // the spool's producer id (task ids)
  NodeId producer_node_;  // the producer process's node (new per restart)
  absl::Time now_;
  int incarnation_ = 0;
  std::unique_ptr<wq::Dispatcher> d_;
  std::vector<SimWorker> workers_;
  std::map<NodeId, std::string> names_;
  uint64_t ids_ = 0;
  uint64_t next_seq_ = 1;  // generator only

  // The spool model and what happened to tasks (all producer processes).
  std::set<uint64_t> spool_;               // not yet acked or dead
  std::map<uint64_t, SpoolTask> catalog_;  // every task pushed
  std::set<uint64_t> pushed_;
  std::map<uint64_t, Completion::Kind> completed_;
  std::map<uint64_t, int> runs_;  // handler runs per task
  std::set<uint64_t> rejected_;   // a handler rejected it
  // A worker died while the dispatcher counted the task as started there
  // but no handler of it ran (see CrashWorker).
  std::set<uint64_t> crashed_not_running_;

  // The oracle (this producer process).
  std::map<uint64_t, Expect> tasks_;
  std::map<NodeId, Link> links_;
  std::map<uint64_t, Predicted> predicted_;
  uint64_t started_ = 0, acked_ = 0, dead_ = 0, dispatched_ = 0;

  // Facts of the whole run.
  uint64_t handler_failures_ = 0;
  uint64_t started_crashes_ = 0;
  uint64_t started_lease_expiries_ = 0;
  uint64_t lease_expiries_ = 0;
  uint64_t worker_crashes_ = 0;
  uint64_t send_failures_ = 0;
  uint64_t duplicates_ = 0;
  uint64_t total_acked_ = 0, total_dead_ = 0;
  uint64_t inputs_ = 0;

  size_t step_ = 0;
  std::string invariant_;
  std::string detail_;
};

SimResult Execute(const SimOptions& options, const std::vector<Event>* given) {
  std::mt19937_64 rng(options.seed);
  Config cfg = DrawConfig(rng);
  SimResult result;
  result.seed = options.seed;
  result.profile = cfg.profile;
  result.config = cfg.ToString();
  Sim sim(options, std::move(cfg));
  if (given != nullptr) {
    result.events = *given;
    sim.RunEvents(result.events);
  } else {
    sim.RunGenerated(rng, result.events);
  }
  sim.Finish(result.events.size());
  sim.Fill(result);
  return result;
}

// Delta debugging: drop chunks of events while the replay still fails the
// same invariant.
std::vector<Event> Shrink(const SimOptions& options, const SimResult& failed) {
  std::vector<Event> cur = failed.events;
  if (failed.step < cur.size()) cur.resize(failed.step + 1);
  SimOptions o = options;
  o.shrink = false;
  int replays = 0;
  auto fails = [&](const std::vector<Event>& events) {
    replays++;
    SimResult r = Execute(o, &events);
    return !r.ok && r.invariant == failed.invariant;
  };
  for (size_t chunk = std::max<size_t>(cur.size() / 2, 1); chunk >= 1;) {
    bool progress = false;
    for (size_t start = 0; start < cur.size() && replays < kMaxShrinkReplays;) {
      std::vector<Event> candidate;
      candidate.reserve(cur.size());
      for (size_t i = 0; i < cur.size(); ++i) {
        if (i < start || i >= start + chunk) candidate.push_back(cur[i]);
      }
      if (fails(candidate)) {
        cur = std::move(candidate);
        progress = true;
      } else {
        start += chunk;
      }
    }
    if (replays >= kMaxShrinkReplays) break;
    if (!progress) {
      if (chunk == 1) break;
      chunk /= 2;
    }
  }
  return cur;
}

}  // namespace

const char* ProfileName(Profile p) {
  switch (p) {
    case Profile::kClean:
      return "clean";
    case Profile::kFailures:
      return "failures";
    case Profile::kChaos:
      return "chaos";
  }
  return "?";
}

std::string Event::ToString() const {
  const std::string w = absl::StrCat("w", worker, " ");
  switch (kind) {
    case Kind::kPush: {
      std::vector<std::string> parts;
      for (size_t i = 0; i < behaviours.size(); ++i) {
        std::string b = BehaviourName(behaviours[i]);
        if (behaviours[i] == Behaviour::kRetryThenAck && i < retries.size()) {
          absl::StrAppend(&b, "x", retries[i]);
        }
        parts.push_back(absl::StrCat("s", seq + i, ":", b));
      }
      return absl::StrCat("push ", absl::StrJoin(parts, " "));
    }
    case Kind::kGrant:
      return absl::StrCat(w, "engine tick: grant, send");
    case Kind::kStart:
      return absl::StrCat(w, "start s", seq, flag ? "" : " (unreported)");
    case Kind::kFinish:
      return absl::StrCat(
          w, "finish s", seq,
          n > 0 ? absl::StrCat(" (retry delay ", n, "ms)") : "");
    case Kind::kFlush:
      return absl::StrCat(w, "engine drains results, sends");
    case Kind::kDupResults:
      return absl::StrCat(w, "duplicate last results");
    case Kind::kExtend:
      return absl::StrCat(w, "extend s", seq, " by ", n, "ms");
    case Kind::kCrash:
      return absl::StrCat(w, "crash");
    case Kind::kRestart:
      return absl::StrCat(w, "restart");
    case Kind::kLeave:
      return absl::StrCat(w, "leave");
    case Kind::kRejoin:
      return absl::StrCat(w, "rejoin");
    case Kind::kExit:
      return absl::StrCat(w, "exit");
    case Kind::kFailSends:
      return flag ? absl::StrCat(w, "fails its next ", n, " send(s)")
                  : absl::StrCat(w, "fail next ", n, " frame(s) to it");
    case Kind::kAdvance:
      return absl::StrCat("advance ", n, "ms",
                          flag ? " (running handlers extend)" : "");
    case Kind::kTick:
      return "tick";
    case Kind::kTickAtWakeup:
      return absl::StrCat("tick at next wakeup",
                          flag ? " (running handlers extend)" : "");
    case Kind::kProducerRestart:
      return "producer crash + restart from spool";
  }
  return "?";
}

SimResult RunSeed(const SimOptions& options) {
  SimResult r = Execute(options, nullptr);
  if (!r.ok && options.shrink) {
    r.shrunk = Shrink(options, r);
    const SimResult again = Execute(options, &r.shrunk);
    r.shrunk_step = again.step;
    r.shrunk_detail = again.detail;
  }
  return r;
}

SimResult Replay(const SimOptions& options, const std::vector<Event>& events) {
  return Execute(options, &events);
}

std::string FormatTrace(const std::vector<Event>& events) {
  std::string out;
  for (size_t i = 0; i < events.size(); ++i) {
    absl::StrAppend(&out, "  ", i, ": ", events[i].ToString(), "\n");
  }
  absl::StrAppend(&out, "  then: heal and drain, Close\n");
  return out;
}

std::string FormatFailure(const SimResult& r, bool full_trace) {
  std::string out =
      absl::StrCat("work_queue_sim FAILED seed=", r.seed, " step=", r.step,
                   r.step >= r.events.size() ? " (drain/close)" : "",
                   " invariant=", r.invariant, "\n  ", r.detail,
                   "\n  options: ", r.config, "\n");
  if (full_trace || r.shrunk.empty()) {
    absl::StrAppend(&out, "schedule (", r.events.size(), " events):\n",
                    FormatTrace(r.events));
  }
  if (!r.shrunk.empty()) {
    absl::StrAppend(&out, "shrunk schedule (", r.shrunk.size(),
                    " events; fails at step ", r.shrunk_step,
                    r.shrunk_step >= r.shrunk.size() ? " (drain/close)" : "",
                    ": ", r.shrunk_detail, "):\n", FormatTrace(r.shrunk));
  }
  return out;
}

}  // namespace fabric::wq_sim
