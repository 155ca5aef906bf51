// SPDX-License-Identifier: Apache-2.0
#include "patterns/work_queue/internal/worker_ledger.h"

#include <algorithm>
#include <utility>

namespace fabric::wq {

WorkerLedger::WorkerLedger(WorkerLedgerOptions options)
    : options_(std::move(options)),
      acked_(options_.dedup_window, options_.dedup_max) {}

void WorkerLedger::Demand(absl::Time now, const NodeId& from,
                          const wq::Demand& m) {
  Link& link = links_[ProducerKey{from, m.queue}];
  link.gone = false;
  if (m.backlog > 0) {
    link.wants = true;
    if (m.credit_held == 0 && link.outstanding > 0 &&
        now - link.last_grant > options_.lost_grant) {
      outstanding_total_ -= link.outstanding;
      link.outstanding = 0;
    }
  } else {
    link.wants = false;
    const uint64_t back = std::min(m.credit_held, link.outstanding);
    link.outstanding -= back;
    outstanding_total_ -= back;
  }
}

std::vector<size_t> WorkerLedger::Tasks(const NodeId& from,
                                        const wq::Tasks& m) {
  const ProducerKey key{from, m.queue};
  Link& link = links_[key];
  link.gone = false;
  const uint64_t used = std::min<uint64_t>(m.tasks.size(), link.outstanding);
  link.outstanding -= used;
  outstanding_total_ -= used;
  std::vector<size_t> run;
  run.reserve(m.tasks.size());
  SeenTasks& seen = SeenFor(m.producer);
  const SeqRanges* done = acked_.Find(m.producer);  // no Add in this loop
  for (size_t i = 0; i < m.tasks.size(); ++i) {
    const wq::WireTask& t = m.tasks[i];
    if (done != nullptr && done->Contains(t.seq)) {
      // Completed within the dedup window: ack again, do not run.
      duplicates_++;
      link.acked.push_back(t.seq);
      continue;
    }
    if (!seen.in_progress.insert(t.seq).second) {
      // Already here: its result answers both deliveries. If its handler
      // runs already, this delivery started too: say so at once, or a run
      // longer than the lease would be redelivered here, unstarted, forever.
      duplicates_++;
      seen.owed[t.seq].push_back(Owed{key, t.attempt, t.delivery});
      if (seen.running.contains(t.seq)) {
        link.started.push_back(wq::StartedTask{t.seq, t.delivery});
      }
      continue;
    }
    link.held++;
    held_total_++;
    run.push_back(i);
  }
  return run;
}

void WorkerLedger::Started(const ProducerKey& key, const TaskId& id,
                           uint32_t delivery) {
  auto it = links_.find(key);
  if (it != links_.end() && !it->second.gone) {
    it->second.started.push_back(wq::StartedTask{id.seq, delivery});
  }
  // (The engine may report the start of a run that just ended: then the
  // task is no longer in progress and nothing is remembered.)
  SeenTasks& seen_here = SeenFor(id.producer);
  if (seen_here.in_progress.contains(id.seq)) seen_here.running.insert(id.seq);
  // Deliveries of the same task waiting for this run (a restarted producer
  // sent it again) started too.
  auto seen = seen_.find(id.producer);
  if (seen == seen_.end()) return;
  auto owed = seen->second.owed.find(id.seq);
  if (owed == seen->second.owed.end()) return;
  for (const Owed& o : owed->second) {
    auto link = links_.find(o.key);
    if (link != links_.end() && !link->second.gone) {
      link->second.started.push_back(wq::StartedTask{id.seq, o.delivery});
    }
  }
}

void WorkerLedger::Resolve(absl::Time wall_now, const ProducerKey& key,
                           const TaskId& id, uint32_t attempt,
                           uint32_t delivery, wq::Verdict verdict,
                           uint64_t delay_ms, const std::string& reason) {
  SeenTasks& seen = SeenFor(id.producer);
  seen.in_progress.erase(id.seq);
  seen.running.erase(id.seq);
  if (verdict == wq::Verdict::kAck) acked_.Add(wall_now, id.producer, id.seq);
  auto owed = seen.owed.find(id.seq);
  if (owed != seen.owed.end()) {
    for (const Owed& o : owed->second) {
      auto link = links_.find(o.key);
      if (link == links_.end() || link->second.gone) continue;
      if (verdict == wq::Verdict::kAck) {
        link->second.acked.push_back(id.seq);
      } else {
        link->second.others.push_back(wq::OtherResult{
            id.seq, o.attempt, verdict, delay_ms, reason, o.delivery});
      }
    }
    seen.owed.erase(owed);
  }
  auto it = links_.find(key);
  if (it == links_.end()) return;
  Link& link = it->second;
  if (link.held > 0) {
    link.held--;
    held_total_--;
  }
  if (link.gone) {
    if (link.held == 0) links_.erase(it);
    return;
  }
  if (verdict == wq::Verdict::kAck) {
    link.acked.push_back(id.seq);
  } else {
    link.others.push_back(
        wq::OtherResult{id.seq, attempt, verdict, delay_ms, reason, delivery});
  }
}

void WorkerLedger::ProducerGone(const NodeId& node, const std::string& queue) {
  for (auto it = links_.begin(); it != links_.end();) {
    Link& link = it->second;
    if (it->first.node != node ||
        (!queue.empty() && it->first.queue != queue)) {
      ++it;
      continue;
    }
    outstanding_total_ -= link.outstanding;
    link.outstanding = 0;
    link.wants = false;
    link.gone = true;
    link.acked.clear();
    link.others.clear();
    link.started.clear();
    if (link.held == 0) {
      it = links_.erase(it);
    } else {
      ++it;
    }
  }
}

WorkerLedger::SeenTasks& WorkerLedger::SeenFor(const NodeId& producer) {
  if (seen_cache_ != nullptr && *seen_cache_key_ == producer) {
    return *seen_cache_;
  }
  // node_hash_map keeps elements in place, so the cached pointers stay
  // valid until that element is erased (Prune resets the cache).
  auto [it, inserted] = seen_.try_emplace(producer);
  seen_cache_key_ = &it->first;
  seen_cache_ = &it->second;
  return it->second;
}

void WorkerLedger::Prune(absl::Time wall_now) {
  // A producer of which no id is remembered and nothing is in progress
  // here is forgotten altogether.
  for (const NodeId& producer : acked_.Prune(wall_now)) {
    auto it = seen_.find(producer);
    if (it == seen_.end() || !it->second.in_progress.empty()) continue;
    seen_cache_key_ = nullptr;
    seen_cache_ = nullptr;
    seen_.erase(it);
  }
}

void WorkerLedger::Grant() {
  // A closing worker takes no more tasks: credit for the ones it hands back
  // would only bring them straight back.
  if (!granting_) return;
  const uint64_t prefetch = options_.prefetch;
  if (held_total_ + outstanding_total_ >= prefetch) return;
  uint64_t free = prefetch - held_total_ - outstanding_total_;
  std::vector<Link*> wanting;
  for (auto& [key, link] : links_) {
    if (link.wants && !link.gone) wanting.push_back(&link);
  }
  if (wanting.empty()) return;
  const uint64_t share = std::max<uint64_t>(1, prefetch / wanting.size());
  const size_t n = wanting.size();
  const size_t start = round_robin_++ % n;
  for (size_t i = 0; i < n && free > 0; ++i) {
    Link& link = *wanting[(start + i) % n];
    const uint64_t has = link.held + link.outstanding;
    if (has >= share) continue;
    const uint64_t g = std::min(free, share - has);
    link.grant += g;
    link.outstanding += g;
    outstanding_total_ += g;
    free -= g;
  }
}

std::vector<LedgerMessage> WorkerLedger::TakeMessages(absl::Time now) {
  std::vector<LedgerMessage> out;
  for (auto& [key, link] : links_) {
    if (link.grant == 0 && link.acked.empty() && link.others.empty() &&
        link.started.empty()) {
      continue;
    }
    LedgerMessage m;
    m.to = key;
    m.grant = link.grant;
    if (link.acked.empty() && link.others.empty() && link.started.empty()) {
      m.kind = wq::kCredit;
      m.body = wq::EncodeCredit(wq::Credit{key.queue, link.grant});
    } else {
      m.kind = wq::kResults;
      m.body = wq::EncodeResults(
          wq::Results{key.queue, link.grant, std::move(link.acked),
                      std::move(link.others), std::move(link.started)});
    }
    if (link.grant > 0) link.last_grant = now;
    link.grant = 0;
    link.acked.clear();
    link.others.clear();
    link.started.clear();
    out.push_back(std::move(m));
  }
  return out;
}

void WorkerLedger::SendFailed(const LedgerMessage& m) {
  auto it = links_.find(m.to);
  if (it == links_.end()) return;
  const uint64_t back = std::min(it->second.outstanding, m.grant);
  it->second.outstanding -= back;
  outstanding_total_ -= back;
}

std::vector<NodeId> WorkerLedger::OwedTo(const TaskId& id,
                                         const NodeId& except) const {
  std::vector<NodeId> out;
  auto seen = seen_.find(id.producer);  // gone once pruned
  if (seen == seen_.end()) return out;
  auto owed = seen->second.owed.find(id.seq);
  if (owed == seen->second.owed.end()) return out;
  for (const Owed& o : owed->second) {
    if (o.key.node != except) out.push_back(o.key.node);
  }
  return out;
}

}  // namespace fabric::wq
