// SPDX-License-Identifier: Apache-2.0
// `SpoolIndex`: the in-memory view of which records are live (tasks neither
// acked nor dead, dead letters not yet replayed or purged), where they are,
// and what each segment still holds. Recovery builds it; the spool then
// keeps it current and asks it which segments can be deleted or compacted
// (docs/spool.md section 8).
#ifndef FABRIC_SPOOL_INTERNAL_INDEX_H_
#define FABRIC_SPOOL_INTERNAL_INDEX_H_

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"

namespace fabric::spool_internal {

struct SegmentInfo {
  uint64_t number = 0;
  uint64_t base_seq = 0;
  uint64_t base_lsn = 0;
  uint64_t file_bytes = 0;    // bytes given to the file (its size once written)
  uint64_t live_bytes = 0;    // framed bytes of the live records in it
  uint64_t live_records = 0;  // live ENQ and DEAD records in it
  uint64_t overhead = 0;      // non-live bytes its last compaction kept
  uint64_t generation = 0;    // bumped by each compaction snapshot
  // Older segments holding records that records of this one resolve (an ACK
  // of an ENQ there, ...), with that segment's generation at the time. While
  // such a record may still be on disk this segment must not disappear, or
  // the record would come back to life at the next recovery.
  absl::flat_hash_map<uint64_t, uint64_t> depends_on;
};

// What a compaction of one segment keeps.
struct CompactionSnapshot {
  uint64_t segment = 0;
  uint64_t generation = 0;  // the segment's generation from the snapshot on
  absl::flat_hash_set<uint64_t> enq;   // seqs of live ENQ records in it
  absl::flat_hash_set<uint64_t> dead;  // seqs of live DEAD records in it
  uint64_t live_bytes = 0;
  // True when other segments' records may still need this one's ACK, DEAD
  // and DEAD_REMOVED records: they are kept as summary records.
  bool keep_resolutions = false;
  uint64_t base_seq = 0;
  uint64_t base_lsn = 0;
};

// Thread safety: thread-compatible (the spool guards it with its mutex).
class SpoolIndex {
 public:
  void AddSegment(uint64_t number, uint64_t base_seq, uint64_t base_lsn,
                  uint64_t file_bytes);
  void AddFileBytes(uint64_t number, uint64_t bytes);
  void SetFileBytes(uint64_t number, uint64_t bytes);
  const SegmentInfo* FindSegment(uint64_t number) const;
  const std::map<uint64_t, SegmentInfo>& segments() const { return segments_; }

  // Each returns false (and changes nothing) when the record is a duplicate
  // or the seq is not live. `resolver` is the segment holding the resolving
  // record.
  bool AddEnq(uint64_t seq, uint64_t segment, uint64_t bytes);
  bool ResolveEnq(uint64_t seq, uint64_t resolver);
  bool AddDead(uint64_t seq, uint64_t segment, uint64_t bytes);
  bool RemoveDead(uint64_t seq, uint64_t resolver);
  bool IsLiveEnq(uint64_t seq) const { return enq_.contains(seq); }
  bool IsDead(uint64_t seq) const { return dead_.contains(seq); }
  // Live ENQ seqs in [lo, hi], ascending; costs min(hi - lo, live count).
  std::vector<uint64_t> LiveEnqInRange(uint64_t lo, uint64_t hi) const;

  uint64_t live_bytes() const { return live_bytes_; }
  size_t live_enq_count() const { return enq_.size(); }
  size_t dead_count() const { return dead_.size(); }
  uint64_t disk_bytes() const;

  // Segments below `limit` with no live record that no other record still
  // needs, oldest first.
  std::vector<uint64_t> Deletable(uint64_t limit) const;
  // The oldest segment below `limit` whose live bytes are under a quarter of
  // its size and whose compaction would reclaim at least half of it.
  std::optional<uint64_t> CompactionCandidate(uint64_t limit) const;
  // Forgets a deleted segment and every dependency on it.
  void DropSegment(uint64_t number);
  CompactionSnapshot BeginCompaction(uint64_t number);
  // Records the rewritten size and drops the dependencies the compaction
  // made moot (those older than the snapshot).
  void FinishCompaction(const CompactionSnapshot& snapshot, uint64_t new_size);

 private:
  struct Loc {
    uint64_t segment;
    uint64_t bytes;
  };
  void Release(const Loc& loc, uint64_t resolver);

  absl::flat_hash_map<uint64_t, Loc> enq_;
  absl::flat_hash_map<uint64_t, Loc> dead_;
  std::map<uint64_t, SegmentInfo> segments_;
  uint64_t live_bytes_ = 0;
};

}  // namespace fabric::spool_internal

#endif  // FABRIC_SPOOL_INTERNAL_INDEX_H_
