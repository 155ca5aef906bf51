// SPDX-License-Identifier: Apache-2.0
#include "patterns/work_queue/internal/seq_ranges.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <optional>

namespace fabric::wq {

SeqRanges::SeqRanges(size_t* heap_bytes)
    : ranges_(std::less<uint64_t>(), Alloc(heap_bytes)) {}

bool SeqRanges::Contains(uint64_t seq) const {
  auto it = ranges_.upper_bound(seq);  // first range starting after seq
  if (it == ranges_.begin()) return false;
  return std::prev(it)->second >= seq;
}

bool SeqRanges::Insert(uint64_t seq) {
  auto next = ranges_.upper_bound(seq);
  auto prev = next == ranges_.begin() ? ranges_.end() : std::prev(next);
  if (prev != ranges_.end() && prev->second >= seq) return false;
  // prev ends below seq and next starts above it, so neither +1 overflows.
  const bool joins_prev = prev != ranges_.end() && prev->second + 1 == seq;
  const bool joins_next = next != ranges_.end() && seq + 1 == next->first;
  if (joins_prev && joins_next) {
    prev->second = next->second;
    ranges_.erase(next);
  } else if (joins_prev) {
    prev->second = seq;
  } else if (joins_next) {
    const uint64_t last = next->second;
    ranges_.insert(ranges_.erase(next), {seq, last});
  } else {
    ranges_.insert(next, {seq, seq});
  }
  size_++;
  return true;
}

uint64_t SeqRanges::Erase(uint64_t first, uint64_t count) {
  if (count == 0) return 0;
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  const uint64_t last = count - 1 > max - first ? max : first + (count - 1);
  auto it = ranges_.upper_bound(first);
  if (it != ranges_.begin() && std::prev(it)->second >= first) --it;
  // Ranges cut in two keep their outer parts: only the first range can
  // start before `first`, only the last can end after `last`.
  std::optional<std::pair<uint64_t, uint64_t>> head, tail;
  uint64_t removed = 0;
  while (it != ranges_.end() && it->first <= last) {
    const uint64_t lo = it->first, hi = it->second;
    it = ranges_.erase(it);
    removed += std::min(hi, last) - std::max(lo, first) + 1;
    if (lo < first) head.emplace(lo, first - 1);
    if (hi > last) tail.emplace(last + 1, hi);
  }
  if (head.has_value()) ranges_.insert(*head);
  if (tail.has_value()) ranges_.insert(*tail);
  size_ -= removed;
  return removed;
}

}  // namespace fabric::wq
