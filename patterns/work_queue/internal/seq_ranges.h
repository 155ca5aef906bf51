// SPDX-License-Identifier: Apache-2.0
// `SeqRanges`: a set of task sequence numbers stored as disjoint ranges, so
// that a run of consecutive seqs costs one entry however long it is. The
// worker's dedup memory (`AckedIds`) keeps one per producer. Also
// `CountingAllocator`, which adds what a container allocates to a counter,
// so the dedup memory can report its heap bytes exactly.
#ifndef PATTERNS_WORK_QUEUE_INTERNAL_SEQ_RANGES_H_
#define PATTERNS_WORK_QUEUE_INTERNAL_SEQ_RANGES_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

#include "absl/container/btree_map.h"

namespace fabric::wq {

// An allocator that adds the bytes it hands out to `*bytes` and takes them
// off again when they are freed (malloc's own overhead is not counted).
// `bytes` must outlive every container using it.
// Thread safety: as the counter: the containers sharing one must be used
// from one thread at a time.
template <typename T>
class CountingAllocator {
 public:
  using value_type = T;

  explicit CountingAllocator(size_t* bytes) : bytes_(bytes) {}
  template <typename U>
  CountingAllocator(const CountingAllocator<U>& other)  // NOLINT: rebinding
      : bytes_(other.counter()) {}

  T* allocate(size_t n) {
    T* p = std::allocator<T>().allocate(n);
    *bytes_ += n * sizeof(T);
    return p;
  }
  void deallocate(T* p, size_t n) {
    *bytes_ -= n * sizeof(T);
    std::allocator<T>().deallocate(p, n);
  }
  size_t* counter() const { return bytes_; }

  template <typename U>
  bool operator==(const CountingAllocator<U>& other) const {
    return bytes_ == other.counter();
  }
  template <typename U>
  bool operator!=(const CountingAllocator<U>& other) const {
    return bytes_ != other.counter();
  }

 private:
  size_t* bytes_;
};

// A set of uint64 seqs as sorted, disjoint, non-adjacent ranges: inserting
// the seq next to a range extends it, filling the gap between two ranges
// joins them. Every operation is O(log ranges).
// Thread safety: thread-compatible.
class SeqRanges {
 public:
  // Adds its heap allocations to `*heap_bytes`, which must outlive it.
  explicit SeqRanges(size_t* heap_bytes);

  SeqRanges(const SeqRanges&) = delete;
  SeqRanges& operator=(const SeqRanges&) = delete;

  bool Contains(uint64_t seq) const;
  // Adds `seq`. Returns false (and changes nothing) if it was there.
  bool Insert(uint64_t seq);
  // Removes the seqs of [`first`, `first` + `count`) that are here (the
  // range stops at the largest uint64). Returns how many it removed.
  uint64_t Erase(uint64_t first, uint64_t count);

  uint64_t size() const { return size_; }  // seqs
  bool empty() const { return size_ == 0; }
  size_t ranges() const { return ranges_.size(); }

 private:
  using Alloc = CountingAllocator<std::pair<const uint64_t, uint64_t>>;
  // First seq -> last seq (inclusive, so the largest uint64 fits).
  absl::btree_map<uint64_t, uint64_t, std::less<uint64_t>, Alloc> ranges_;
  uint64_t size_ = 0;
};

}  // namespace fabric::wq

#endif  // PATTERNS_WORK_QUEUE_INTERNAL_SEQ_RANGES_H_
