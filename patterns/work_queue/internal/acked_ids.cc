// SPDX-License-Identifier: Apache-2.0
#include "patterns/work_queue/internal/acked_ids.h"

#include <algorithm>

namespace fabric::wq {

AckedIds::AckedIds(absl::Duration window, size_t max)
    : window_(window),
      slack_(window / 256),
      max_(max),
      producers_(0, absl::Hash<NodeId>(), std::equal_to<NodeId>(),
                 Producers::allocator_type(&heap_bytes_)),
      runs_(CountingAllocator<Run>(&heap_bytes_)) {}

bool AckedIds::Add(absl::Time at, const NodeId& producer, uint64_t seq) {
  auto [it, inserted] = producers_.try_emplace(producer, &heap_bytes_);
  if (!it->second.Insert(seq)) return false;
  size_++;
  const int64_t at_ns = absl::ToUnixNanos(at);
  if (!runs_.empty()) {
    Run& last = runs_.back();
    const absl::Time dated = absl::FromUnixNanos(last.at_unix_ns);
    // `seq - first == count` rather than `first + count == seq`, which
    // would wrap past the largest seq.
    if (last.producer == &*it && seq > last.first &&
        seq - last.first == last.count && at >= dated && at - dated <= slack_) {
      last.count++;
      return true;
    }
  }
  runs_.push_back(Run{&*it, seq, 1, at_ns});
  return true;
}

bool AckedIds::Contains(const NodeId& producer, uint64_t seq) const {
  const SeqRanges* seqs = Find(producer);
  return seqs != nullptr && seqs->Contains(seq);
}

const SeqRanges* AckedIds::Find(const NodeId& producer) const {
  auto it = producers_.find(producer);
  return it == producers_.end() ? nullptr : &it->second;
}

void AckedIds::ForgetFront(uint64_t n) {
  Run& run = runs_.front();
  // Every id of a run is in its producer's set: added there when the run
  // took it, removed only here.
  run.producer->second.Erase(run.first, n);
  run.first += n;
  run.count -= n;
  size_ -= n;
}

std::vector<NodeId> AckedIds::Prune(absl::Time now) {
  std::vector<NodeId> gone;
  const bool had_runs = !runs_.empty();
  while (!runs_.empty()) {
    Run& front = runs_.front();
    // Dated by its first ack; the last came at most `slack_` later.
    const absl::Time dated = absl::FromUnixNanos(front.at_unix_ns);
    uint64_t n = 0;
    if (now - dated > window_ + slack_) {
      n = front.count;
    } else if (size_ > max_) {
      n = std::min<uint64_t>(front.count, size_ - max_);
    } else {
      break;
    }
    Producers::value_type* producer = front.producer;
    ForgetFront(n);
    if (front.count == 0) runs_.pop_front();
    if (producer->second.empty()) {
      gone.push_back(producer->first);
      producers_.erase(producer->first);
    }
  }
  // A deque keeps the block map it grew to; a worker gone idle gives it
  // back (once: not at every tick).
  if (had_runs && runs_.empty()) {
    std::deque<Run, CountingAllocator<Run>>(runs_.get_allocator()).swap(runs_);
  }
  return gone;
}

}  // namespace fabric::wq
