// SPDX-License-Identifier: Apache-2.0
#include "fabric/spool/internal/index.h"

#include <algorithm>

#include "fabric/spool/internal/spool_format.h"

namespace fabric::spool_internal {

void SpoolIndex::AddSegment(uint64_t number, uint64_t base_seq,
                            uint64_t base_lsn, uint64_t file_bytes) {
  SegmentInfo& info = segments_[number];
  info.number = number;
  info.base_seq = base_seq;
  info.base_lsn = base_lsn;
  info.file_bytes = file_bytes;
}

void SpoolIndex::AddFileBytes(uint64_t number, uint64_t bytes) {
  auto it = segments_.find(number);
  if (it != segments_.end()) it->second.file_bytes += bytes;
}

void SpoolIndex::SetFileBytes(uint64_t number, uint64_t bytes) {
  auto it = segments_.find(number);
  if (it != segments_.end()) it->second.file_bytes = bytes;
}

const SegmentInfo* SpoolIndex::FindSegment(uint64_t number) const {
  auto it = segments_.find(number);
  return it == segments_.end() ? nullptr : &it->second;
}

bool SpoolIndex::AddEnq(uint64_t seq, uint64_t segment, uint64_t bytes) {
  auto it = segments_.find(segment);
  if (it == segments_.end()) return false;
  if (!enq_.try_emplace(seq, Loc{segment, bytes}).second) return false;
  it->second.live_bytes += bytes;
  ++it->second.live_records;
  live_bytes_ += bytes;
  return true;
}

bool SpoolIndex::AddDead(uint64_t seq, uint64_t segment, uint64_t bytes) {
  auto it = segments_.find(segment);
  if (it == segments_.end()) return false;
  if (!dead_.try_emplace(seq, Loc{segment, bytes}).second) return false;
  it->second.live_bytes += bytes;
  ++it->second.live_records;
  live_bytes_ += bytes;
  return true;
}

void SpoolIndex::Release(const Loc& loc, uint64_t resolver) {
  live_bytes_ -= loc.bytes;
  auto it = segments_.find(loc.segment);
  if (it == segments_.end()) return;
  it->second.live_bytes -= loc.bytes;
  --it->second.live_records;
  if (loc.segment >= resolver) return;
  auto res = segments_.find(resolver);
  if (res == segments_.end()) return;
  uint64_t& generation = res->second.depends_on[loc.segment];
  generation = std::max(generation, it->second.generation);
}

bool SpoolIndex::ResolveEnq(uint64_t seq, uint64_t resolver) {
  auto it = enq_.find(seq);
  if (it == enq_.end()) return false;
  const Loc loc = it->second;
  enq_.erase(it);
  Release(loc, resolver);
  return true;
}

bool SpoolIndex::RemoveDead(uint64_t seq, uint64_t resolver) {
  auto it = dead_.find(seq);
  if (it == dead_.end()) return false;
  const Loc loc = it->second;
  dead_.erase(it);
  Release(loc, resolver);
  return true;
}

std::vector<uint64_t> SpoolIndex::LiveEnqInRange(uint64_t lo,
                                                 uint64_t hi) const {
  std::vector<uint64_t> seqs;
  if (hi - lo < enq_.size()) {
    for (uint64_t seq = lo;; ++seq) {
      if (enq_.contains(seq)) seqs.push_back(seq);
      if (seq == hi) break;
    }
    return seqs;
  }
  for (const auto& [seq, loc] : enq_) {
    if (seq >= lo && seq <= hi) seqs.push_back(seq);
  }
  std::sort(seqs.begin(), seqs.end());
  return seqs;
}

uint64_t SpoolIndex::disk_bytes() const {
  uint64_t total = 0;
  for (const auto& [number, info] : segments_) total += info.file_bytes;
  return total;
}

std::vector<uint64_t> SpoolIndex::Deletable(uint64_t limit) const {
  std::vector<uint64_t> numbers;
  for (const auto& [number, info] : segments_) {
    if (number >= limit) break;
    if (info.live_records == 0 && info.depends_on.empty()) {
      numbers.push_back(number);
    }
  }
  return numbers;
}

std::optional<uint64_t> SpoolIndex::CompactionCandidate(uint64_t limit) const {
  for (const auto& [number, info] : segments_) {
    if (number >= limit) break;
    if (info.live_bytes * 4 >= info.file_bytes) continue;
    const uint64_t kept = kSegmentHeaderSize + info.live_bytes + info.overhead;
    if (info.file_bytes <= kept) continue;
    const uint64_t reclaim = info.file_bytes - kept;
    if (reclaim >= 1024 && reclaim * 2 >= info.file_bytes) return number;
  }
  return std::nullopt;
}

void SpoolIndex::DropSegment(uint64_t number) {
  segments_.erase(number);
  for (auto& [other, info] : segments_) info.depends_on.erase(number);
}

CompactionSnapshot SpoolIndex::BeginCompaction(uint64_t number) {
  CompactionSnapshot snapshot;
  snapshot.segment = number;
  auto it = segments_.find(number);
  if (it == segments_.end()) return snapshot;
  SegmentInfo& info = it->second;
  snapshot.generation = ++info.generation;
  snapshot.live_bytes = info.live_bytes;
  snapshot.keep_resolutions = !info.depends_on.empty();
  snapshot.base_seq = info.base_seq;
  snapshot.base_lsn = info.base_lsn;
  for (const auto& [seq, loc] : enq_) {
    if (loc.segment == number) snapshot.enq.insert(seq);
  }
  for (const auto& [seq, loc] : dead_) {
    if (loc.segment == number) snapshot.dead.insert(seq);
  }
  return snapshot;
}

void SpoolIndex::FinishCompaction(const CompactionSnapshot& snapshot,
                                  uint64_t new_size) {
  auto it = segments_.find(snapshot.segment);
  if (it == segments_.end()) return;
  it->second.file_bytes = new_size;
  const uint64_t kept = kSegmentHeaderSize + snapshot.live_bytes;
  it->second.overhead = new_size > kept ? new_size - kept : 0;
  // Records resolved before the snapshot were left out of the rewrite, so
  // the records resolving them are no longer needed.
  for (auto& [other, info] : segments_) {
    auto dep = info.depends_on.find(snapshot.segment);
    if (dep != info.depends_on.end() && dep->second < snapshot.generation) {
      info.depends_on.erase(dep);
    }
  }
}

}  // namespace fabric::spool_internal
