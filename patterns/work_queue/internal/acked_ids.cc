// SPDX-License-Identifier: Apache-2.0
#include "patterns/work_queue/internal/acked_ids.h"

#include <algorithm>
#include <limits>

namespace fabric::wq {
namespace {

// A chunk's ops, each a varint (7 bits a byte, low first):
//   v != 0      one id, at distance unzigzag(v) from the one before
//               (modulo 2^64: a task finished out of order goes back)
//   0, n - 2    a run of n >= 2 ids, each the seq after the one before
// "The one before" is the previous id of the chunk in ack order; for the
// first, the chunk starts from its first seq - 1. A distance is never 0
// (a remembered id is not added again), which frees 0 to mark runs.

void PutVarint(std::vector<uint8_t, CountingAllocator<uint8_t>>& out,
               uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

uint64_t GetVarint(const std::vector<uint8_t, CountingAllocator<uint8_t>>& in,
                   size_t& pos) {
  uint64_t v = 0;
  for (int shift = 0; pos < in.size() && shift < 64; shift += 7) {
    const uint8_t b = in[pos++];
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) break;
  }
  return v;
}

uint64_t ZigZag(uint64_t delta) {
  const auto d = static_cast<int64_t>(delta);
  return (static_cast<uint64_t>(d) << 1) ^ static_cast<uint64_t>(d >> 63);
}

uint64_t UnZigZag(uint64_t v) { return (v >> 1) ^ (~(v & 1) + 1); }

}  // namespace

AckedIds::AckedIds(absl::Duration window, size_t max)
    : window_(window),
      slack_(window / 256),
      max_(max),
      producers_(0, absl::Hash<NodeId>(), std::equal_to<NodeId>(),
                 Producers::allocator_type(&heap_bytes_)),
      log_(CountingAllocator<Chunk>(&heap_bytes_)) {}

bool AckedIds::Add(absl::Time at, const NodeId& producer, uint64_t seq) {
  auto [it, inserted] = producers_.try_emplace(producer, &heap_bytes_);
  if (!it->second.Insert(seq)) return false;
  size_++;
  const int64_t at_ns = absl::ToUnixNanos(at);
  if (!log_.empty()) {
    Chunk& back = log_.back();
    const absl::Time dated = absl::FromUnixNanos(back.at_unix_ns);
    if (back.producer == &*it && seq != back.last_added && at >= dated &&
        at - dated <= slack_) {
      Append(back, seq);
      return true;
    }
  }
  log_.emplace_back(&*it, seq, at_ns, &heap_bytes_);
  Append(log_.back(), seq);
  return true;
}

void AckedIds::Append(Chunk& c, uint64_t seq) {
  // A run never passes the largest seq: 0 after it is a distance of 1.
  if (c.last_added != std::numeric_limits<uint64_t>::max() &&
      seq == c.last_added + 1) {
    c.open_run++;
  } else {
    CloseRun(c);
    PutVarint(c.ops, ZigZag(seq - c.last_added));
  }
  c.last_added = seq;
  c.count++;
}

void AckedIds::CloseRun(Chunk& c) {
  if (c.open_run == 1) {
    PutVarint(c.ops, ZigZag(1));
  } else if (c.open_run > 1) {
    PutVarint(c.ops, 0);
    PutVarint(c.ops, c.open_run - 2);
  }
  c.open_run = 0;
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
  Chunk& c = log_.front();
  // Every id of a chunk is in its producer's set: added there when the
  // chunk took it, removed only here.
  SeqRanges& seqs = c.producer->second;
  while (n > 0) {
    if (c.run_left > 0) {
      const uint64_t k = std::min(n, c.run_left);
      seqs.Erase(c.last_forgotten + 1, k);
      c.last_forgotten += k;
      c.run_left -= k;
      c.count -= k;
      size_ -= k;
      n -= k;
      continue;
    }
    if (c.read == c.ops.size()) {
      CloseRun(c);                   // what is left is the run still open
      if (c.read == c.ops.size()) {  // count says otherwise: a bug; stop
        size_ -= c.count;
        c.count = 0;
        return;
      }
    }
    const uint64_t v = GetVarint(c.ops, c.read);
    if (v == 0) {
      c.run_left = GetVarint(c.ops, c.read) + 2;
      continue;
    }
    const uint64_t seq = c.last_forgotten + UnZigZag(v);
    seqs.Erase(seq, 1);
    c.last_forgotten = seq;
    c.count--;
    size_--;
    n--;
  }
}

std::vector<NodeId> AckedIds::Prune(absl::Time now) {
  std::vector<NodeId> gone;
  const bool had_chunks = !log_.empty();
  while (!log_.empty()) {
    Chunk& front = log_.front();
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
    if (front.count == 0) log_.pop_front();
    if (producer->second.empty()) {
      gone.push_back(producer->first);
      producers_.erase(producer->first);
    }
  }
  // A deque keeps the block map it grew to; a worker gone idle gives it
  // back (once: not at every tick).
  if (had_chunks && log_.empty()) {
    std::deque<Chunk, CountingAllocator<Chunk>>(log_.get_allocator())
        .swap(log_);
  }
  return gone;
}

}  // namespace fabric::wq
