// SPDX-License-Identifier: Apache-2.0
// `AckedIds`: the worker's dedup memory, the ids of the tasks it acked
// recently, so that a redelivery is acked again without running. Part of
// `WorkerLedger`. Ids are kept per producer as ranges of seqs (`SeqRanges`)
// and, for expiry, as a log in ack order: chunks of acks (of up to 8
// producers), each ack stored as its distance from the producer's one
// before (a byte for a task finished a few places out of order) and a run
// of consecutive seqs as one count. So a worker acking in order keeps a
// few bytes however many it acks, and one with several handler threads
// about a byte per ack (issue 23: the hash set and per-id log this
// replaces took ~61 bytes per id).
//
// Expiry, at each `Prune(now)`:
// - By count: at most `max` ids are kept; the oldest acks go first, in
//   exactly the order they were added.
// - By age: an id goes once `window` has passed since its ack. A chunk
//   carries one date, that of its first ack, and takes further acks only
//   within `window / 256` of it; so an id is never forgotten before
//   `window` has passed, and forgotten at most `window / 256` later (1.2 s
//   at the default 5 min).
// So an id added within `window` of `now` and among the last `max` added
// is still here after `Prune(now)`.
//
// Thread safety: thread-compatible.
#ifndef PATTERNS_WORK_QUEUE_INTERNAL_ACKED_IDS_H_
#define PATTERNS_WORK_QUEUE_INTERNAL_ACKED_IDS_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <utility>
#include <vector>

#include "absl/container/node_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/time/time.h"
#include "fabric/base/node_id.h"
#include "patterns/work_queue/internal/seq_ranges.h"

namespace fabric::wq {

class AckedIds {
 public:
  // `max` may be 0 (then `Prune` forgets everything).
  AckedIds(absl::Duration window, size_t max);

  // Not movable either: the containers point at `heap_bytes_`.
  AckedIds(const AckedIds&) = delete;
  AckedIds& operator=(const AckedIds&) = delete;

  // Remembers `producer`:`seq`, acked at `at`. Returns false (and changes
  // nothing) if it is remembered already: its first ack dates it.
  bool Add(absl::Time at, const NodeId& producer, uint64_t seq);
  bool Contains(const NodeId& producer, uint64_t seq) const;
  // The seqs remembered for `producer`, or null if none. Valid until the
  // next `Add` or `Prune`.
  const SeqRanges* Find(const NodeId& producer) const;
  // Forgets ids by count and by age (see the file comment). Returns the
  // producers of which nothing is remembered any more.
  std::vector<NodeId> Prune(absl::Time now);

  uint64_t size() const { return size_; }  // ids remembered
  // The heap bytes held (containers' allocations, not malloc's overhead).
  size_t heap_bytes() const { return heap_bytes_; }
  size_t chunks() const { return log_.size(); }

 private:
  using Producers = absl::node_hash_map<
      NodeId, SeqRanges, absl::Hash<NodeId>, std::equal_to<NodeId>,
      CountingAllocator<std::pair<const NodeId, SeqRanges>>>;
  using Bytes = std::vector<uint8_t, CountingAllocator<uint8_t>>;
  // A producer of a chunk, and the seq its next delta starts from when
  // writing and when reading.
  struct Slot {
    Producers::value_type* producer;  // node_hash_map: stable until erased
    uint64_t last_added;
    uint64_t last_forgotten;
  };
  // Producers per chunk at most: finding a slot is a linear search.
  static constexpr size_t kMaxSlots = 8;
  // Acks, the first at `at_unix_ns` and the others within `slack_` of it,
  // as ops in `ops` (see acked_ids.cc) written at the back and read
  // (forgotten) from the front.
  struct Chunk {
    Chunk(int64_t at, size_t* bytes)
        : at_unix_ns(at),
          slots(CountingAllocator<Slot>(bytes)),
          ops(CountingAllocator<uint8_t>(bytes)) {}

    int64_t at_unix_ns;  // 8 bytes where an absl::Time takes 16
    uint64_t count = 0;  // ids added, not yet forgotten
    std::vector<Slot, CountingAllocator<Slot>> slots;
    Bytes ops;
  };

  // Appends `seq` for the current slot of the back chunk.
  void Append(Chunk& c, uint64_t seq);
  // Writes the back chunk's open run into its ops.
  void CloseRun(Chunk& c);
  // Drops the `n` oldest ids of the front chunk (n <= its count), adding
  // to `gone` the producers of which nothing is left.
  void ForgetFront(uint64_t n, std::vector<NodeId>& gone);

  const absl::Duration window_;
  const absl::Duration slack_;  // window_ / 256
  const size_t max_;
  size_t heap_bytes_ = 0;  // declared before the containers that count it
  Producers producers_;
  std::deque<Chunk, CountingAllocator<Chunk>> log_;  // oldest first
  uint64_t size_ = 0;
  // Writing the back chunk: its current slot, and consecutive seqs added
  // to it that are not yet in `ops`.
  size_t back_slot_ = 0;
  uint64_t open_run_ = 0;
  // Reading the front chunk: its current slot, the next op, and what is
  // left of the run op being forgotten.
  size_t front_slot_ = 0;
  size_t front_read_ = 0;
  uint64_t run_left_ = 0;
};

}  // namespace fabric::wq

#endif  // PATTERNS_WORK_QUEUE_INTERNAL_ACKED_IDS_H_
