// SPDX-License-Identifier: Apache-2.0
#include "fabric/spool/internal/segment_io.h"

#include <fcntl.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fabric/base/status_macros.h"
#include "fabric/spool/internal/payload.h"
#include "fabric/spool/internal/spool_format.h"

namespace fabric::spool_internal {
namespace {

SeqRanges Merge(SeqRanges ranges) {
  std::sort(ranges.begin(), ranges.end());
  SeqRanges merged;
  for (const auto& [lo, hi] : ranges) {
    if (!merged.empty() && merged.back().second != UINT64_MAX &&
        lo <= merged.back().second + 1) {
      merged.back().second = std::max(merged.back().second, hi);
    } else {
      merged.emplace_back(lo, hi);
    }
  }
  return merged;
}

// Removes the seqs in `keep` (records kept live in the rewritten segment)
// from `ranges`, so a summary never resolves a record that follows it.
SeqRanges Subtract(const SeqRanges& ranges,
                   const absl::flat_hash_set<uint64_t>& keep) {
  if (keep.empty()) return ranges;
  std::vector<uint64_t> holes(keep.begin(), keep.end());
  std::sort(holes.begin(), holes.end());
  SeqRanges out;
  auto hole = holes.begin();
  for (auto [lo, hi] : ranges) {
    hole = std::lower_bound(hole, holes.end(), lo);
    for (; hole != holes.end() && *hole <= hi; ++hole) {
      if (*hole > lo) out.emplace_back(lo, *hole - 1);
      if (*hole == hi) break;
      lo = *hole + 1;
    }
    if (hole == holes.end() || *hole > hi) out.emplace_back(lo, hi);
  }
  return out;
}

// Re-encodes `ranges` as records of `type`, reusing the lsns of the records
// they summarize (the highest ones), so lsns stay unique and increasing.
void AppendSummaries(RecordType type, const SeqRanges& ranges,
                     std::vector<uint64_t> lsns, uint64_t segment,
                     std::vector<std::pair<uint64_t, std::string>>* out) {
  if (ranges.empty() || lsns.empty()) return;
  std::sort(lsns.begin(), lsns.end());
  const size_t per_record = std::max<size_t>(
      kMaxRangesPerRecord, (ranges.size() + lsns.size() - 1) / lsns.size());
  const size_t records = (ranges.size() + per_record - 1) / per_record;
  std::string payload;
  for (size_t i = 0; i < records; ++i) {
    const size_t begin = i * per_record;
    const size_t end = std::min(ranges.size(), begin + per_record);
    EncodeSeqRanges(SeqRanges(ranges.begin() + begin, ranges.begin() + end),
                    &payload);
    const uint64_t lsn = lsns[lsns.size() - records + i];
    std::string record;
    AppendRecord(&record, type, lsn, segment, payload);
    out->emplace_back(lsn, std::move(record));
  }
}

}  // namespace

absl::StatusOr<File> CreateSegment(const std::string& dir,
                                   const SegmentHeader& header) {
  return InstallFile(dir, SegmentFileName(header.segment),
                     EncodeSegmentHeader(header));
}

absl::StatusOr<uint64_t> RewriteSegment(const std::string& dir,
                                        const NodeId& producer_id,
                                        const CompactionSnapshot& snapshot) {
  const uint64_t number = snapshot.segment;
  const std::string path = JoinPath(dir, SegmentFileName(number));
  FABRIC_ASSIGN_OR_RETURN(std::string image, ReadFile(path));
  absl::StatusOr<SegmentHeader> old = DecodeSegmentHeader(image);
  SegmentHeader header;
  if (old.ok()) {
    header = *old;
  } else {
    header.segment = number;
    header.base_seq = snapshot.base_seq;
    header.base_lsn = snapshot.base_lsn;
    header.created = absl::Now();
    header.producer_id = producer_id;
  }
  header.version = kFormatVersion;
  header.flags |= kSegmentFlagCompacted;

  std::vector<std::pair<uint64_t, absl::string_view>> kept;
  absl::flat_hash_set<uint64_t> kept_enq, kept_dead;
  SeqRanges acked, removed;
  std::vector<uint64_t> ack_lsns, removed_lsns;
  const bool keep = snapshot.keep_resolutions;
  auto add_ranges = [](absl::string_view payload, SeqRanges* to) {
    absl::StatusOr<SeqRanges> ranges = DecodeSeqRanges(payload);
    if (!ranges.ok()) return false;
    to->insert(to->end(), ranges->begin(), ranges->end());
    return true;
  };
  WalkSegment(image, number, kSegmentHeaderSize, [&](const RecordView& r) {
    const absl::string_view raw =
        absl::string_view(image).substr(r.offset, r.size);
    switch (static_cast<RecordType>(r.type)) {
      case RecordType::kEnq: {
        absl::StatusOr<SpooledTask> task = DecodeEnqPayload(r.payload);
        if (task.ok() && snapshot.enq.contains(task->seq) &&
            kept_enq.insert(task->seq).second) {
          kept.emplace_back(r.lsn, raw);
        }
        break;
      }
      case RecordType::kDead: {
        absl::StatusOr<DeadLetter> dead = DecodeDeadPayload(r.payload);
        if (!dead.ok()) break;
        const uint64_t seq = dead->task.seq;
        if (snapshot.dead.contains(seq) && kept_dead.insert(seq).second) {
          kept.emplace_back(r.lsn, raw);
        } else if (keep) {
          // A dead letter since replayed or purged still resolves its ENQ,
          // which may sit in an older segment: keep that as an ACK.
          acked.emplace_back(seq, seq);
          ack_lsns.push_back(r.lsn);
        }
        break;
      }
      case RecordType::kAck:
        if (keep && add_ranges(r.payload, &acked)) ack_lsns.push_back(r.lsn);
        break;
      case RecordType::kDeadRemoved:
        if (keep && add_ranges(r.payload, &removed)) {
          removed_lsns.push_back(r.lsn);
        }
        break;
      default:
        break;
    }
  });

  std::vector<std::pair<uint64_t, std::string>> summaries;
  AppendSummaries(RecordType::kAck,
                  Subtract(Merge(std::move(acked)), snapshot.enq), ack_lsns,
                  number, &summaries);
  AppendSummaries(RecordType::kDeadRemoved,
                  Subtract(Merge(std::move(removed)), snapshot.dead),
                  removed_lsns, number, &summaries);
  for (const auto& [lsn, record] : summaries) kept.emplace_back(lsn, record);
  std::sort(kept.begin(), kept.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });

  std::string out = EncodeSegmentHeader(header);
  for (const auto& [lsn, raw] : kept) out.append(raw.data(), raw.size());
  FABRIC_RETURN_IF_ERROR(
      InstallFile(dir, SegmentFileName(number), out).status());
  return static_cast<uint64_t>(out.size());
}

}  // namespace fabric::spool_internal
