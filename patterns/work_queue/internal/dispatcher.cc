// SPDX-License-Identifier: Apache-2.0
#include "patterns/work_queue/internal/dispatcher.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fabric::wq {
size_t TaskBytes(const Headers& headers, absl::string_view body) {
  size_t n = body.size();
  for (const auto& [k, v] : headers) n += k.size() + v.size();
  return n;
}

namespace {

// Encoding overhead of one task in a frame (seq, attempt, flag, arrays).
constexpr size_t kTaskOverhead = 24;

}  // namespace

void Effects::Clear() {
  frames.clear();
  demands.clear();
  acked.clear();
  dead.clear();
  completions.clear();
  freed_bytes = 0;
  notes.clear();
}

Dispatcher::Dispatcher(DispatcherOptions options)
    : options_(std::move(options)), rng_(options_.seed) {}

TaskView Dispatcher::ViewOf(const TaskState& t) {
  return TaskView{&t.headers, &t.body, t.started ? t.attempts : t.attempts + 1,
                  t.recovered || t.deliveries > 1, t.deliveries};
}

std::optional<TaskView> Dispatcher::Find(uint64_t seq) const {
  auto it = tasks_.find(seq);
  if (it == tasks_.end()) return std::nullopt;
  return ViewOf(it->second);
}

uint64_t Dispatcher::CreditOf(const NodeId& worker) const {
  auto it = workers_.find(worker);
  return it == workers_.end() ? 0 : it->second.credit;
}

absl::Time Dispatcher::NextWakeup() const {
  absl::Time next = next_lease_check_;
  if (!retries_.empty()) next = std::min(next, retries_.top().at);
  for (const auto& [id, link] : workers_) {
    if (ready_count_ == 0 && link.credit > 0) {
      next = std::min(next, link.last_use + options_.idle_credit_return);
    } else if (ready_count_ > 0 && link.offering && link.credit == 0) {
      next = std::min(next, std::max(link.last_demand, link.last_credit) +
                                options_.demand_resend);
    }
  }
  return next;
}

// ---------------------------------------------------------------- places

void Dispatcher::Leave(uint64_t seq, TaskState& t) {
  switch (t.state) {
    case State::kReady:
      ready_count_--;  // its entry in ready_ is skipped from now on
      break;
    case State::kInFlight: {
      in_flight_.erase(seq);
      t.started = false;  // `attempts` now counts that delivery if it did
      if (t.suspect) {
        t.suspect = false;
        auto w = workers_.find(t.worker);  // gone if it died
        if (w != workers_.end()) w->second.suspects--;
      }
      break;
    }
    case State::kRetryWait:
      break;  // its heap entry is skipped from now on
  }
  // Parked in a state that no container holds until the caller places it.
  t.state = State::kRetryWait;
  t.retry_due = absl::InfinitePast();
}

void Dispatcher::MakeReady(uint64_t seq, TaskState& t, bool front) {
  t.state = State::kReady;
  ready_count_++;
  if (front) {
    ready_.push_front(seq);
  } else {
    ready_.push_back(seq);
  }
}

void Dispatcher::MarkStarted(absl::Time now, TaskState& t) {
  if (t.started) return;
  t.started = true;
  t.attempts++;
  stats_.started++;
  // The lease covers the run, not the wait in the worker's window.
  t.lease_deadline = std::max(t.lease_deadline, now + options_.lease);
}

void Dispatcher::ReturnUnstarted(uint64_t seq, TaskState& t) {
  Leave(seq, t);
  stats_.returned++;
  MakeReady(seq, t, /*front=*/true);
}

// ---------------------------------------------------------------- inputs

void Dispatcher::AddTasks(absl::Time now, std::vector<NewTask> tasks,
                          Effects& out) {
  for (NewTask& n : tasks) {
    auto [it, inserted] = tasks_.try_emplace(n.seq);
    if (!inserted) continue;
    TaskState& t = it->second;
    t.bytes = TaskBytes(n.headers, n.body);
    t.headers = std::move(n.headers);
    t.body = std::move(n.body);
    t.enqueued = n.enqueued;
    t.recovered = n.recovered;
    MakeReady(n.seq, t, /*front=*/false);
  }
  Dispatch(now, out);
}

void Dispatcher::CountWorkers() {
  uint64_t offering = 0;
  for (const auto& [id, link] : workers_) offering += link.offering ? 1 : 0;
  stats_.workers = offering;
}

void Dispatcher::WorkerUp(absl::Time now, const NodeId& worker, Effects& out) {
  auto [it, inserted] = workers_.try_emplace(worker);
  if (!inserted && it->second.offering) return;
  it->second.offering = true;
  it->second.wants_sent = false;
  CountWorkers();
  out.notes.push_back(absl::StrCat("FAB-WQ-WORKER-UP ", options_.queue, " ",
                                   worker.ShortHex()));
  MaybeDemand(now, out);
}

void Dispatcher::WorkerRefused(absl::Time now, const NodeId& worker,
                               Effects& out) {
  // Hand back credit it granted us, or it stays reserved there for good.
  auto it = workers_.find(worker);
  if (it != workers_.end() && it->second.credit > 0) {
    Demand(now, worker, it->second, 0, it->second.credit, out);
  }
  WorkerDown(now, worker, /*lost=*/false, out);
}

void Dispatcher::WorkerDown(absl::Time now, const NodeId& worker, bool lost,
                            Effects& out) {
  auto it = workers_.find(worker);
  if (it == workers_.end()) return;
  if (!lost) {
    // It stopped offering the queue: no more dispatch; what it holds may
    // still complete (or come back released), or its leases run out.
    it->second.offering = false;
    it->second.credit = 0;
    CountWorkers();
    return;
  }
  std::vector<uint64_t> held;
  for (uint64_t seq : in_flight_) {
    auto t = tasks_.find(seq);
    if (t != tasks_.end() && t->second.worker == worker) held.push_back(seq);
  }
  workers_.erase(it);
  CountWorkers();
  // Highest first, so that pushing to the front restores seq order.
  std::sort(held.rbegin(), held.rend());
  uint64_t started = 0;
  for (uint64_t seq : held) {
    TaskState& t = tasks_.find(seq)->second;
    stats_.worker_lost++;
    if (!t.started) {
      ReturnUnstarted(seq, t);
      continue;
    }
    started++;
    stats_.worker_crashes++;
    t.crashes++;
    if (t.crashes >= options_.max_worker_crashes) {
      Kill(now, seq, t,
           absl::StrCat("max_worker_crashes: ", t.crashes,
                        " workers died in a row while running it"),
           out);
      continue;
    }
    Leave(seq, t);
    MakeReady(seq, t, /*front=*/true);
  }
  if (!held.empty()) {
    out.notes.push_back(absl::StrCat(
        "FAB-WQ-WORKER-LOST ", options_.queue, " ", worker.ShortHex(), ": ",
        held.size(), " delivery(ies) back, ", started, " of them started"));
  }
  Dispatch(now, out);
}

void Dispatcher::Credit(absl::Time now, const NodeId& worker, uint64_t grant,
                        Effects& out, bool reports_starts) {
  auto it = workers_.find(worker);
  if (it == workers_.end()) return;
  it->second.reports_starts = reports_starts;
  if (!it->second.offering) {
    // Not a worker we dispatch to (any more): give the grant back.
    if (grant > 0) Demand(now, worker, it->second, 0, grant, out);
    return;
  }
  it->second.credit += grant;
  it->second.last_credit = now;
  it->second.last_use = now;
  Dispatch(now, out);
}

void Dispatcher::Results(absl::Time now, const NodeId& worker,
                         const wq::Results& m, Effects& out) {
  for (const wq::StartedTask& s : m.started) {
    auto it = tasks_.find(s.seq);
    if (it == tasks_.end()) continue;
    TaskState& t = it->second;
    if (t.state == State::kInFlight && t.worker == worker &&
        (s.delivery == 0 || s.delivery == t.deliveries)) {
      MarkStarted(now, t);
    }
  }
  auto sender = workers_.find(worker);
  if (sender != workers_.end())
    sender->second.reports_starts = m.reports_starts;
  for (uint64_t seq : m.acked) Ack(now, seq, worker, out);
  for (const wq::OtherResult& r : m.others) {
    auto it = tasks_.find(r.seq);
    if (it == tasks_.end()) continue;
    TaskState& t = it->second;
    // Only the current delivery may fail or release a task.
    const uint32_t attempt = t.started ? t.attempts : t.attempts + 1;
    if (t.state != State::kInFlight || t.worker != worker ||
        (r.delivery != 0 ? r.delivery != t.deliveries : r.attempt != attempt)) {
      continue;
    }
    switch (r.verdict) {
      case wq::Verdict::kAck:
        Ack(now, r.seq, worker, out);
        break;
      case wq::Verdict::kRetry: {
        MarkStarted(now, t);  // a result implies a start
        stats_.retries++;
        t.crashes = 0;
        const absl::Duration delay = r.delay_ms > 0
                                         ? absl::Milliseconds(r.delay_ms)
                                         : Backoff(t.attempts);
        Fail(now, r.seq, t, r.reason.empty() ? "retry" : r.reason, delay, out);
        break;
      }
      case wq::Verdict::kReject:
        MarkStarted(now, t);
        Kill(now, r.seq, t, absl::StrCat("rejected: ", r.reason), out);
        break;
      case wq::Verdict::kRelease:
        // Handed back unrun (the worker is closing).
        ReturnUnstarted(r.seq, t);
        break;
    }
  }
  auto w = workers_.find(worker);
  if (w != workers_.end() && m.grant > 0) {
    if (w->second.offering) {
      w->second.credit += m.grant;
      w->second.last_credit = now;
      w->second.last_use = now;
    } else {
      Demand(now, worker, w->second, 0, m.grant, out);
    }
  }
  Dispatch(now, out);
}

void Dispatcher::Extend(absl::Time now, const NodeId& worker,
                        const wq::Extend& m) {
  const absl::Time deadline = now + absl::Milliseconds(m.extend_ms);
  for (uint64_t seq : m.seqs) {
    auto it = tasks_.find(seq);
    if (it == tasks_.end()) continue;
    TaskState& t = it->second;
    if (t.state == State::kInFlight && t.worker == worker) {
      t.lease_deadline = std::max(t.lease_deadline, deadline);
    }
  }
}

void Dispatcher::SendFailed(absl::Time now, const NodeId& worker,
                            const std::vector<uint64_t>& seqs, Effects& out) {
  // Never reached the worker: undo the deliveries, in order at the front.
  for (auto it = seqs.rbegin(); it != seqs.rend(); ++it) {
    auto t = tasks_.find(*it);
    if (t == tasks_.end()) continue;
    TaskState& s = t->second;
    if (s.state != State::kInFlight || s.worker != worker) continue;
    if (s.started) {
      // Only a worker that reports no starts has them counted at dispatch
      // (nothing of this delivery reached the worker).
      s.started = false;
      s.attempts--;
      stats_.started--;
    }
    stats_.dispatched--;
    if (s.deliveries > 1) stats_.redelivered--;
    s.deliveries--;
    Leave(*it, s);
    MakeReady(*it, s, /*front=*/true);
  }
  auto w = workers_.find(worker);
  if (w != workers_.end()) {
    w->second.credit = 0;
    w->second.wants_sent = false;
  }
  Dispatch(now, out);
}

void Dispatcher::ExpireLeases(absl::Time now, Effects& out) {
  if (now < next_lease_check_) return;
  absl::Time earliest = absl::InfiniteFuture();
  std::vector<uint64_t> expired;
  for (uint64_t seq : in_flight_) {
    const TaskState& t = tasks_.find(seq)->second;
    if (t.lease_deadline <= now) {
      expired.push_back(seq);
    } else {
      earliest = std::min(earliest, t.lease_deadline);
    }
  }
  next_lease_check_ = earliest;
  std::sort(expired.rbegin(), expired.rend());
  for (uint64_t seq : expired) {
    TaskState& t = tasks_.find(seq)->second;
    stats_.lease_expired++;
    out.notes.push_back(absl::StrCat(
        "FAB-WQ-LEASE-EXPIRED ", options_.queue, " ",
        TaskId{options_.producer, seq}.ToString(), " at ", t.worker.ShortHex(),
        t.started ? " (running)" : " (not started)"));
    if (!t.started) {
      ReturnUnstarted(seq, t);
      continue;
    }
    t.crashes = 0;
    Fail(now, seq, t, "lease expired", absl::ZeroDuration(), out);
  }
}

void Dispatcher::Tick(absl::Time now, Effects& out) {
  ExpireLeases(now, out);
  std::vector<uint64_t> due;
  while (!retries_.empty() && retries_.top().at <= now) {
    const RetryEntry e = retries_.top();
    retries_.pop();
    auto it = tasks_.find(e.seq);
    if (it != tasks_.end() && it->second.state == State::kRetryWait &&
        it->second.retry_due == e.at) {
      due.push_back(e.seq);
    }
  }
  std::sort(due.rbegin(), due.rend());
  for (uint64_t seq : due) {
    TaskState& t = tasks_.find(seq)->second;
    Leave(seq, t);
    MakeReady(seq, t, /*front=*/true);
  }
  // Hand idle credit back so other producers of those workers get it.
  if (ready_count_ == 0) {
    for (auto& [id, link] : workers_) {
      if (link.credit > 0 &&
          now - link.last_use >= options_.idle_credit_return) {
        const uint64_t credit = link.credit;
        link.credit = 0;
        Demand(now, id, link, 0, credit, out);
      }
    }
  }
  Dispatch(now, out);
}

void Dispatcher::Close(absl::Time now, Effects& out) {
  // Workers stop counting this producer as wanting work and get their
  // unused credit back.
  for (auto& [id, link] : workers_) {
    const uint64_t credit = link.credit;
    link.credit = 0;
    Demand(now, id, link, 0, credit, out);
  }
  Gauges();
}

// ---------------------------------------------------------------- outcomes

void Dispatcher::Ack(absl::Time now, uint64_t seq, const NodeId& from,
                     Effects& out) {
  auto it = tasks_.find(seq);
  if (it == tasks_.end()) return;  // already resolved
  TaskState& t = it->second;
  const bool current = t.state == State::kInFlight && t.worker == from;
  if (current) {
    MarkStarted(now, t);
  } else {
    stats_.late_acks++;
  }
  Leave(seq, t);
  out.acked.push_back(seq);
  out.freed_bytes += t.bytes;
  stats_.acked++;
  out.completions.push_back(Completion{TaskId{options_.producer, seq},
                                       Completion::Kind::kAcked, t.attempts, "",
                                       from});
  tasks_.erase(it);
}

absl::Duration Dispatcher::Backoff(uint32_t attempts) {
  absl::Duration d = options_.retry_backoff;
  for (uint32_t i = 1; i < attempts && d < options_.max_retry_backoff; ++i) {
    d *= 2;
  }
  // Jitter first, then the cap: max_retry_backoff is a true maximum.
  d *= std::uniform_real_distribution<double>(0.9, 1.1)(rng_);
  return std::min(d, options_.max_retry_backoff);
}

void Dispatcher::Fail(absl::Time now, uint64_t seq, TaskState& t,
                      absl::string_view why, absl::Duration delay,
                      Effects& out) {
  if (t.attempts >= options_.max_attempts) {
    Kill(now, seq, t,
         absl::StrCat("max_attempts: ", t.attempts, " deliveries, last: ", why),
         out);
    return;
  }
  Leave(seq, t);
  if (delay > absl::ZeroDuration()) {
    t.state = State::kRetryWait;
    t.retry_due = now + delay;
    retries_.push(RetryEntry{t.retry_due, seq});
  } else {
    MakeReady(seq, t, /*front=*/true);
  }
}

void Dispatcher::Kill(absl::Time now, uint64_t seq, TaskState& t,
                      std::string reason, Effects& out) {
  Leave(seq, t);
  DeadLetter dead;
  dead.task.seq = seq;
  dead.task.enqueued = t.enqueued;
  dead.task.headers = std::move(t.headers);
  dead.task.body = std::move(t.body);
  dead.attempts = t.attempts;
  dead.reason = reason;
  dead.died = now;
  out.notes.push_back(absl::StrCat("FAB-WQ-DEAD ", options_.queue, " ",
                                   TaskId{options_.producer, seq}.ToString(),
                                   ": ", reason));
  out.dead.push_back(std::move(dead));
  out.freed_bytes += t.bytes;
  stats_.dead_lettered++;
  out.completions.push_back(Completion{
      TaskId{options_.producer, seq}, Completion::Kind::kDeadLettered,
      t.attempts, std::move(reason), t.worker});
  tasks_.erase(seq);
}

// ---------------------------------------------------------------- dispatch

void Dispatcher::Demand(absl::Time now, const NodeId& id, WorkerLink& link,
                        uint64_t backlog, uint64_t returned, Effects& out) {
  out.demands.push_back(Effects::DemandOut{id, backlog, returned});
  link.last_demand = now;
  link.wants_sent = backlog > 0;
}

void Dispatcher::MaybeDemand(absl::Time now, Effects& out) {
  if (ready_count_ == 0) return;
  for (auto& [id, link] : workers_) {
    if (!link.offering || link.credit > 0) continue;
    if (!link.wants_sent ||
        (now - link.last_demand >= options_.demand_resend &&
         now - link.last_credit >= options_.demand_resend)) {
      Demand(now, id, link, ready_count_, 0, out);
    }
  }
}

void Dispatcher::Gauges() {
  stats_.in_flight = in_flight_.size();
  stats_.backlog = ready_count_;
}

void Dispatcher::Dispatch(absl::Time now, Effects& out) {
  struct Target {
    NodeId id;
    WorkerLink* link;
    std::vector<uint64_t> seqs;
    std::vector<TaskView> tasks;
    size_t bytes = 0;
  };
  std::vector<Target> targets;
  for (auto& [id, link] : workers_) {
    if (link.offering && link.credit > 0) {
      targets.push_back(Target{id, &link, {}, {}, 0});
    }
  }
  size_t with_credit = targets.size();
  auto flush = [&](Target& target) {
    if (target.seqs.empty()) return;
    out.frames.push_back(Effects::Frame{target.id, std::move(target.seqs),
                                        std::move(target.tasks)});
    target.seqs.clear();
    target.tasks.clear();
    target.bytes = 0;
  };
  // Suspects (tasks whose workers died running them) that found no worker
  // without one: they keep their place at the front.
  std::vector<uint64_t> deferred;
  while (ready_count_ > deferred.size() && with_credit > 0 && !ready_.empty()) {
    const uint64_t seq = ready_.front();
    ready_.pop_front();
    auto it = tasks_.find(seq);
    if (it == tasks_.end() || it->second.state != State::kReady) continue;
    TaskState& t = it->second;
    // The worker with the most credit; a redelivery avoids the worker that
    // had the task last when another one has credit; a suspect goes only
    // to a worker holding no other suspect.
    const bool suspect = t.crashes > 0;
    Target* best = nullptr;
    for (Target& c : targets) {
      if (c.link->credit == 0) continue;
      if (t.deliveries > 0 && c.id == t.worker && with_credit > 1) continue;
      if (suspect && c.link->suspects > 0) continue;
      // Targets are in NodeId order: the first of equals wins.
      if (best == nullptr || c.link->credit > best->link->credit) best = &c;
    }
    if (best == nullptr) {
      if (suspect) {
        deferred.push_back(seq);
        continue;
      }
      ready_.push_front(seq);
      break;
    }
    if (suspect) {
      t.suspect = true;
      best->link->suspects++;
    }
    const bool count_now = !best->link->reports_starts;
    // Keep frames under max_frame_bytes unless one task alone is bigger.
    if (!best->seqs.empty() &&
        best->bytes + t.bytes + kTaskOverhead > options_.max_frame_bytes) {
      flush(*best);
    }
    ready_count_--;
    t.state = State::kInFlight;
    in_flight_.insert(seq);
    t.worker = best->id;
    t.started = false;
    t.deliveries++;
    t.lease_deadline = now + options_.lease;
    next_lease_check_ = std::min(next_lease_check_, t.lease_deadline);
    if (count_now) MarkStarted(now, t);
    stats_.dispatched++;
    if (t.deliveries > 1) stats_.redelivered++;
    best->seqs.push_back(seq);
    best->tasks.push_back(ViewOf(t));
    best->bytes += t.bytes + kTaskOverhead;
    if (--best->link->credit == 0) with_credit--;
    best->link->last_use = now;
    if (best->seqs.size() >= options_.max_batch ||
        best->bytes >= options_.max_frame_bytes) {
      flush(*best);
    }
  }
  for (auto it = deferred.rbegin(); it != deferred.rend(); ++it) {
    ready_.push_front(*it);
  }
  for (Target& t : targets) flush(t);
  Gauges();
  MaybeDemand(now, out);
}

}  // namespace fabric::wq
