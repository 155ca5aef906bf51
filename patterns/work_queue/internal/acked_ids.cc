// SPDX-License-Identifier: Apache-2.0
#include "patterns/work_queue/internal/acked_ids.h"

#include <algorithm>
#include <limits>

namespace fabric::wq {
namespace {

// A chunk's ops, each a varint (7 bits a byte, low first):
//   v != 0      one id of the current slot's producer, at distance
//               unzigzag(v) from that producer's previous id in the chunk
//               (modulo 2^64: a task finished out of order goes back)
//   0, 2k       a run of k + 2 ids, each the seq after the one before
//   0, 2k + 1   the current slot is now slot k
// A chunk starts at slot 0; a slot's first id is its first seq's distance
// from that seq - 1. A distance is never 0 (an id is added again only
// after it was forgotten: a new chunk then), which frees 0 as a marker.

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
  Producers::value_type* p = &*it;
  if (!log_.empty()) {
    Chunk& back = log_.back();
    const absl::Time dated = absl::FromUnixNanos(back.at_unix_ns);
    if (at >= dated && at - dated <= slack_) {
      size_t slot = 0;
      while (slot < back.slots.size() && back.slots[slot].producer != p) {
        slot++;
      }
      if (slot == back.slots.size() && slot < kMaxSlots) {
        back.slots.push_back(Slot{p, seq - 1, seq - 1});
      }
      if (slot < back.slots.size() && seq != back.slots[slot].last_added) {
        if (slot != back_slot_) {
          CloseRun(back);
          PutVarint(back.ops, 0);
          PutVarint(back.ops, 2 * slot + 1);
          back_slot_ = slot;
        }
        Append(back, seq);
        return true;
      }
    }
    CloseRun(back);
  }
  log_.emplace_back(absl::ToUnixNanos(at), &heap_bytes_);
  Chunk& c = log_.back();
  // (seq - 1 wraps for seq 0, as the distances do.)
  c.slots.push_back(Slot{p, seq - 1, seq - 1});
  back_slot_ = 0;
  if (log_.size() == 1) {
    front_slot_ = 0;
    front_read_ = 0;
    run_left_ = 0;
  }
  Append(c, seq);
  return true;
}

void AckedIds::Append(Chunk& c, uint64_t seq) {
  Slot& slot = c.slots[back_slot_];
  // A run never passes the largest seq: 0 after it is a distance of 1.
  if (slot.last_added != std::numeric_limits<uint64_t>::max() &&
      seq == slot.last_added + 1) {
    open_run_++;
  } else {
    CloseRun(c);
    PutVarint(c.ops, ZigZag(seq - slot.last_added));
  }
  slot.last_added = seq;
  c.count++;
}

void AckedIds::CloseRun(Chunk& c) {
  if (open_run_ == 1) {
    PutVarint(c.ops, ZigZag(1));
  } else if (open_run_ > 1) {
    PutVarint(c.ops, 0);
    PutVarint(c.ops, 2 * (open_run_ - 2));
  }
  open_run_ = 0;
}

bool AckedIds::Contains(const NodeId& producer, uint64_t seq) const {
  const SeqRanges* seqs = Find(producer);
  return seqs != nullptr && seqs->Contains(seq);
}

const SeqRanges* AckedIds::Find(const NodeId& producer) const {
  auto it = producers_.find(producer);
  return it == producers_.end() ? nullptr : &it->second;
}

void AckedIds::ForgetFront(uint64_t n, std::vector<NodeId>& gone) {
  Chunk& c = log_.front();
  // Every id of a chunk is in its producer's set: added there when the
  // chunk took it, removed only here.
  auto forget = [&](Slot& slot, uint64_t first, uint64_t k) {
    slot.producer->second.Erase(first, k);
    c.count -= k;
    size_ -= k;
    if (slot.producer->second.empty()) {
      // Its slots are read no more: every op of theirs is read.
      gone.push_back(slot.producer->first);
      producers_.erase(slot.producer->first);
    }
  };
  while (n > 0) {
    if (run_left_ > 0) {
      Slot& slot = c.slots[front_slot_];
      const uint64_t k = std::min(n, run_left_);
      const uint64_t first = slot.last_forgotten + 1;
      slot.last_forgotten += k;
      run_left_ -= k;
      n -= k;
      forget(slot, first, k);
      continue;
    }
    if (front_read_ == c.ops.size() && &c == &log_.back()) {
      CloseRun(c);  // what is left is the run still open
    }
    if (front_read_ == c.ops.size()) {  // count says otherwise: a bug; stop
      size_ -= c.count;
      c.count = 0;
      return;
    }
    const uint64_t v = GetVarint(c.ops, front_read_);
    if (v == 0) {
      const uint64_t k = GetVarint(c.ops, front_read_);
      if (k % 2 == 0) {
        run_left_ = k / 2 + 2;
      } else if (k / 2 < c.slots.size()) {
        front_slot_ = static_cast<size_t>(k / 2);
      }
      continue;
    }
    Slot& slot = c.slots[front_slot_];
    slot.last_forgotten += UnZigZag(v);
    n--;
    forget(slot, slot.last_forgotten, 1);
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
    ForgetFront(n, gone);
    if (front.count == 0) {
      log_.pop_front();
      front_slot_ = 0;
      front_read_ = 0;
      run_left_ = 0;
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
