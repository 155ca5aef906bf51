// SPDX-License-Identifier: Apache-2.0
// `fabric::TopicLog`: recovery, the append path, reads and retention, on the
// append log it shares with the spool (`LogCore`: the writer thread, group
// commit, rolls, reservations). The on-disk pieces (META, segment header,
// record framing, ENQ payloads, file helpers) are the spool's too.
#include "fabric/spool/topic_log.h"

#include <fcntl.h>

#include <algorithm>
#include <map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "fabric/base/log.h"
#include "fabric/base/status_macros.h"
#include "fabric/spool/internal/file_util.h"
#include "fabric/spool/internal/log_core.h"
#include "fabric/spool/internal/log_recovery.h"
#include "fabric/spool/internal/payload.h"
#include "fabric/spool/internal/record.h"
#include "fabric/spool/internal/spool_format.h"

namespace fabric {
namespace {

using spool_internal::File;
using spool_internal::JoinPath;
using spool_internal::RecordType;
using spool_internal::RecordView;

constexpr uint64_t kMinSegmentBytes = 4096;
constexpr uint64_t kMaxSegmentBytes = uint64_t{1} << 30;
constexpr uint64_t kMaxBodyBytes = uint64_t{64} << 20;
// One sparse index entry per this many bytes of a segment: a read seeks to
// the entry at or before its seq and skips at most this much.
constexpr uint64_t kSparseStride = 64 * 1024;
// Bytes read from disk per read of a `Read`.
constexpr size_t kReadBlock = 1 << 20;
constexpr absl::Duration kRetentionCheck = absl::Seconds(1);

// META's queue field names what the directory holds; a work-queue spool
// never has this prefix, so neither kind can open the other.
std::string MetaQueue(absl::string_view topic) {
  return absl::StrCat("topic:", topic);
}

absl::Status ValidateOptions(const TopicLogOptions& o) {
  if (o.dir.empty()) {
    return absl::InvalidArgumentError("topic log dir must not be empty");
  }
  if (o.topic.empty()) {
    return absl::InvalidArgumentError("topic log topic must not be empty");
  }
  if (o.retention_bytes == 0) {
    return absl::InvalidArgumentError(
        "topic log retention_bytes must be positive");
  }
  if (o.retention_age <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "topic log retention_age must be positive");
  }
  if (o.segment_bytes < kMinSegmentBytes ||
      o.segment_bytes > kMaxSegmentBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("topic log segment_bytes must be in [", kMinSegmentBytes,
                     ", ", kMaxSegmentBytes, "], got ", o.segment_bytes));
  }
  if (o.fsync == FsyncPolicy::kInterval &&
      (o.fsync_interval <= absl::ZeroDuration() ||
       o.fsync_interval == absl::InfiniteDuration())) {
    return absl::InvalidArgumentError(
        "topic log fsync_interval must be positive and finite");
  }
  return absl::OkStatus();
}

spool_internal::LogCoreOptions CoreOptions(const TopicLogOptions& o,
                                           const NodeId& id) {
  spool_internal::LogCoreOptions core;
  core.dir = o.dir;
  core.fsync = o.fsync;
  core.fsync_interval = o.fsync_interval;
  core.segment_bytes = o.segment_bytes;
  core.id = id;
  core.thread_name = "fab-topiclog";
  core.log_component = log_component::kTopicLog;
  core.what = "topic log";
  core.failed_event = "FAB-TOPIC-LOG-FAILED";
  core.maintain_every = kRetentionCheck;  // retention by age
  return core;
}

}  // namespace

namespace topic_log_internal {

// What the log knows of one segment file: its messages' range and time, and
// a sparse index from seq to file offset for reads.
struct Segment {
  uint64_t number = 0;
  uint64_t first_seq = 0;  // 0 while empty
  uint64_t last_seq = 0;
  absl::Time last_time = absl::InfinitePast();
  uint64_t planned_bytes = 0;  // header + every record appended
  uint64_t written_bytes = 0;  // readable prefix of the file
  // (seq, offset) of the first record at or after every kSparseStride.
  std::vector<std::pair<uint64_t, uint64_t>> sparse;
};

}  // namespace topic_log_internal

// Thread safety: see topic_log.h. Lock order: `mu_` (the log core's) only;
// callbacks run on the writer thread with no lock held.
class TopicLog::Impl : public spool_internal::LogCore {
 public:
  using Segment = topic_log_internal::Segment;

  // `active` is the freshly created segment `active_segment`, empty but for
  // its header.
  Impl(TopicLogOptions options, File lock, TopicLogReport report,
       std::map<uint64_t, Segment> segments, File active,
       uint64_t active_segment, uint64_t next_seq, uint64_t next_lsn)
      : LogCore(CoreOptions(options, report.stream_id), std::move(active),
                active_segment, next_seq, next_lsn),
        options_(std::move(options)),
        lock_(std::move(lock)),
        report_(std::move(report)) {
    absl::MutexLock l(&mu_);
    segments_ = std::move(segments);
    durable_seq_ = next_seq - 1;
    Segment seg;
    seg.number = active_segment;
    seg.planned_bytes = seg.written_bytes = spool_internal::kSegmentHeaderSize;
    segments_.emplace(active_segment, std::move(seg));
  }

  ~Impl() override { StopWriter(); }

  void Start() { StartWriter(); }

  absl::StatusOr<uint64_t> Append(absl::Time published, const Headers& headers,
                                  absl::string_view body) {
    if (body.size() > kMaxBodyBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "message body of ", body.size(), " bytes is over the 64 MiB limit"));
    }
    absl::MutexLock l(&mu_);
    FABRIC_RETURN_IF_ERROR(CheckUsableLocked());
    FABRIC_RETURN_IF_ERROR(CheckDiskLocked());
    const uint64_t seq = next_seq_;
    spool_internal::EncodeEnqPayload(seq, published, headers, body, &scratch_);
    PrepareSpaceLocked(spool_internal::FramedSize(scratch_.size()));
    ReserveLocked(seq);
    const Placed placed = AppendRecordLocked(RecordType::kEnq, scratch_, seq,
                                             /*needs_sync=*/true);
    Segment& seg = segments_.at(placed.segment);
    if (seg.first_seq == 0) seg.first_seq = seq;
    if (seg.sparse.empty() ||
        placed.offset - seg.sparse.back().second >= kSparseStride) {
      seg.sparse.emplace_back(seq, placed.offset);
    }
    seg.last_seq = seq;
    seg.last_time = published;
    seg.planned_bytes = placed.offset + placed.size;
    ++next_seq_;
    return seq;
  }

  absl::Status Read(uint64_t from, size_t max_entries, size_t max_bytes,
                    TopicLogRead* out) const {
    out->entries.clear();
    std::string path;
    uint64_t number = 0, offset = 0, end = 0;
    {
      absl::MutexLock l(&mu_);
      out->first_seq = FirstSeqLocked();
      out->durable_seq = durable_seq_;
      from = std::max(from, out->first_seq);
      out->next = from;
      if (from > durable_seq_ || max_entries == 0) return absl::OkStatus();
      const Segment* seg = nullptr;
      for (const auto& [n, s] : segments_) {
        if (s.first_seq != 0 && s.last_seq >= from) {
          seg = &s;
          break;
        }
      }
      if (seg == nullptr) return absl::OkStatus();
      number = seg->number;
      end = seg->written_bytes;
      auto it = std::upper_bound(
          seg->sparse.begin(), seg->sparse.end(), from,
          [](uint64_t seq, const auto& entry) { return seq < entry.first; });
      offset = it == seg->sparse.begin() ? seg->sparse.front().second
                                         : std::prev(it)->second;
      path = JoinPath(options_.dir, spool_internal::SegmentFileName(number));
    }
    absl::StatusOr<File> file = spool_internal::OpenFile(path, O_RDONLY, 0);
    if (!file.ok()) {
      // Retention deleted the segment since we looked: the caller asks again
      // and gets the new first_seq.
      if (absl::IsNotFound(file.status())) {
        return absl::UnavailableError("segment deleted while reading");
      }
      return file.status();
    }
    std::string block;
    size_t bytes = 0;
    while (offset < end && out->entries.size() < max_entries) {
      const size_t want =
          static_cast<size_t>(std::min<uint64_t>(end - offset, kReadBlock));
      FABRIC_RETURN_IF_ERROR(
          spool_internal::PRead(*file, offset, want, &block, path));
      if (block.empty()) break;
      // Records in `block`; a record cut by the block's end is read again
      // at the start of the next block.
      uint64_t pos = 0;
      bool progressed = false;
      while (pos < block.size() && out->entries.size() < max_entries) {
        RecordView record;
        std::string why;
        if (!spool_internal::ParseRecordAt(block, pos, number, 0, &record,
                                           &why)) {
          break;
        }
        progressed = true;
        pos += record.size;
        uint64_t seq = 0;
        absl::Time t;
        // Below `out->next`: a seq that does not ascend, which recovery
        // reported and did not count as a message; never return it twice.
        if (record.type != static_cast<uint8_t>(RecordType::kEnq) ||
            !spool_internal::PeekEnqPayload(record.payload, &seq, &t) ||
            seq < out->next) {
          continue;
        }
        if (seq > out->durable_seq) return absl::OkStatus();
        if (!out->entries.empty() &&
            bytes + record.payload.size() > max_bytes) {
          return absl::OkStatus();
        }
        bytes += record.payload.size();
        out->entries.emplace_back(record.payload);
        out->next = seq + 1;
      }
      if (!progressed) {
        // A record larger than the block, or damage (recovery reported it):
        // the slow path reads the rest of the segment whole and walks it
        // like recovery does, stepping over damage to the next intact
        // record.
        if (!out->entries.empty()) break;
        absl::StatusOr<std::string> image = spool_internal::ReadFile(path);
        if (!image.ok()) return image.status();
        if (image->size() > end) image->resize(end);
        size_t bytes_seen = 0;
        bool full = false;
        spool_internal::WalkSegment(
            *image, number, offset, [&](const RecordView& record) {
              uint64_t seq = 0;
              absl::Time when;
              if (full ||
                  record.type != static_cast<uint8_t>(RecordType::kEnq) ||
                  !spool_internal::PeekEnqPayload(record.payload, &seq,
                                                  &when) ||
                  seq < out->next || seq > out->durable_seq) {
                return;
              }
              if (out->entries.size() >= max_entries ||
                  (!out->entries.empty() &&
                   bytes_seen + record.payload.size() > max_bytes)) {
                full = true;
                return;
              }
              bytes_seen += record.payload.size();
              out->entries.emplace_back(record.payload);
              out->next = seq + 1;
            });
        break;
      }
      offset += pos;
    }
    if (out->entries.empty()) {
      // Nothing readable at `from` in that segment (damage): skip to the
      // next segment's first message.
      absl::MutexLock l(&mu_);
      auto it = segments_.upper_bound(number);
      while (it != segments_.end() && it->second.first_seq == 0) ++it;
      if (it != segments_.end() && it->second.first_seq > from) {
        out->next = it->second.first_seq;
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<uint64_t> SeqAtTime(absl::Time t) const {
    uint64_t number = 0, end = 0;
    {
      absl::MutexLock l(&mu_);
      for (const auto& [n, s] : segments_) {
        if (s.first_seq != 0 && s.last_time >= t &&
            s.last_seq <= durable_seq_) {
          number = n;
          end = s.written_bytes;
          break;
        }
      }
      if (number == 0) return durable_seq_ + 1;
    }
    const std::string path =
        JoinPath(options_.dir, spool_internal::SegmentFileName(number));
    FABRIC_ASSIGN_OR_RETURN(std::string image, spool_internal::ReadFile(path));
    if (image.size() > end) image.resize(end);
    uint64_t found = 0;
    spool_internal::WalkSegment(
        image, number, spool_internal::kSegmentHeaderSize,
        [&](const RecordView& record) {
          uint64_t seq = 0;
          absl::Time when;
          if (found == 0 &&
              record.type == static_cast<uint8_t>(RecordType::kEnq) &&
              spool_internal::PeekEnqPayload(record.payload, &seq, &when) &&
              when >= t) {
            found = seq;
          }
        });
    absl::MutexLock l(&mu_);
    // A message not yet durable is not readable either: start after the
    // durable end, where it will be.
    if (found != 0 && found <= durable_seq_) return found;
    return durable_seq_ + 1;
  }

  uint64_t first_seq() const {
    absl::MutexLock l(&mu_);
    return FirstSeqLocked();
  }
  uint64_t next_seq() const {
    absl::MutexLock l(&mu_);
    return next_seq_;
  }
  uint64_t durable_seq() const {
    absl::MutexLock l(&mu_);
    return durable_seq_;
  }
  uint64_t disk_bytes() const {
    absl::MutexLock l(&mu_);
    uint64_t total = 0;
    for (const auto& [n, s] : segments_) total += s.written_bytes;
    return total;
  }
  uint64_t segments_deleted() const {
    absl::MutexLock l(&mu_);
    return segments_deleted_;
  }
  const NodeId& stream_id() const { return report_.stream_id; }
  const TopicLogReport& recovery() const { return report_; }

 private:
  uint64_t FirstSeqLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const auto& [n, s] : segments_) {
      if (s.first_seq != 0) return s.first_seq;
    }
    return next_seq_;
  }

  // LogCore hooks.
  void AfterRollLocked(uint64_t segment, uint64_t /*base_seq*/,
                       uint64_t /*base_lsn*/) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Segment next;
    next.number = segment;
    next.planned_bytes = spool_internal::kSegmentHeaderSize;
    // written_bytes stays 0 until the writer created the file.
    segments_.emplace(segment, std::move(next));
  }
  void OnWritten(uint64_t segment, uint64_t end) override {
    absl::MutexLock l(&mu_);
    auto it = segments_.find(segment);
    if (it != segments_.end()) {
      it->second.written_bytes = std::max(it->second.written_bytes, end);
    }
  }
  void OnConfirmed(uint64_t seq) override {
    {
      absl::MutexLock l(&mu_);
      durable_seq_ = std::max(durable_seq_, seq);
    }
    if (options_.on_durable) options_.on_durable(seq);
  }
  // A full disk holds the messages that did not fit (they are assigned
  // seqs that subscribers must see in order, so none is refused) and
  // refuses new ones until they are written.
  DiskFullAction OnDiskFull() const override { return DiskFullAction::kHold; }

  void OnFailed(const absl::Status& status) override {
    if (options_.on_error) options_.on_error(status);
  }
  void Maintain() override { ApplyRetention(); }

  // Deletes the oldest segments while the log is over its size or age.
  void ApplyRetention() {
    std::vector<uint64_t> doomed;
    {
      absl::MutexLock l(&mu_);
      uint64_t total = 0;
      for (const auto& [n, s] : segments_) total += s.written_bytes;
      const absl::Time horizon = absl::Now() - options_.retention_age;
      while (segments_.size() > 1) {
        auto oldest = segments_.begin();
        if (oldest->first == segment_ || oldest->first == writer_segment_) {
          break;
        }
        const Segment& s = oldest->second;
        const bool too_big = total > options_.retention_bytes;
        const bool too_old =
            options_.retention_age != absl::InfiniteDuration() &&
            s.last_time < horizon;
        if (!too_big && !too_old && s.first_seq != 0) break;
        // Messages still being written can't be in an older segment.
        total -= s.written_bytes;
        doomed.push_back(oldest->first);
        segments_.erase(oldest);
        ++segments_deleted_;
      }
    }
    for (uint64_t number : doomed) {
      absl::Status status = spool_internal::RemoveFile(SegmentPath(number));
      if (!status.ok() && !absl::IsNotFound(status)) {
        FABRIC_LOG(kWarning, kTopicLog, "FAB-TOPIC-LOG-RETENTION ",
                   status.ToString());
      }
    }
    if (!doomed.empty()) (void)spool_internal::SyncDir(options_.dir);
  }

  const TopicLogOptions options_;
  File lock_;
  const TopicLogReport report_;

  std::map<uint64_t, Segment> segments_ ABSL_GUARDED_BY(mu_);
  std::string scratch_ ABSL_GUARDED_BY(mu_);
  uint64_t durable_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t segments_deleted_ ABSL_GUARDED_BY(mu_) = 0;

  friend class TopicLog;
};

namespace {

// Rebuilds the read index of the log's segments from their records.
class TopicVisitor : public spool_internal::LogVisitor {
 public:
  void BeginSegment(uint64_t number, const spool_internal::SegmentHeader*,
                    uint64_t) override {
    current_ = topic_log_internal::Segment();
    current_.number = number;
    last_sparse_ = 0;
  }

  void Record(absl::string_view file, uint64_t number, const RecordView& r,
              spool_internal::LogRecovery* out) override {
    uint64_t seq = 0;
    absl::Time when;
    if (r.type != static_cast<uint8_t>(RecordType::kEnq) ||
        !spool_internal::PeekEnqPayload(r.payload, &seq, &when) ||
        seq <= max_seq_) {
      out->AddProblem(file, r.offset, "unexpected record in a topic log");
      return;
    }
    (void)number;
    if (current_.first_seq == 0) current_.first_seq = seq;
    if (current_.sparse.empty() || r.offset - last_sparse_ >= kSparseStride) {
      current_.sparse.emplace_back(seq, r.offset);
      last_sparse_ = r.offset;
    }
    current_.last_seq = seq;
    current_.last_time = when;
    max_seq_ = seq;
    ++messages_;
  }

  void EndSegment(uint64_t number, uint64_t file_bytes) override {
    if (current_.first_seq == 0) {
      // Nothing to keep. Removed once the new active segment exists, whose
      // header then carries next_seq: until then this file may be the only
      // record of it.
      empty_.push_back(number);
      return;
    }
    current_.planned_bytes = current_.written_bytes = file_bytes;
    disk_bytes_ += file_bytes;
    segments_.emplace(number, std::move(current_));
  }

  uint64_t max_seq() const override { return max_seq_; }

  std::map<uint64_t, topic_log_internal::Segment> segments_;
  std::vector<uint64_t> empty_;
  uint64_t messages_ = 0;
  uint64_t disk_bytes_ = 0;

 private:
  topic_log_internal::Segment current_;
  uint64_t last_sparse_ = 0;
  uint64_t max_seq_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<TopicLog>> TopicLog::Open(
    TopicLogOptions options) {
  FABRIC_RETURN_IF_ERROR(ValidateOptions(options));
  if (options.shared_files == SharedFiles::kRefuse) {
    FABRIC_RETURN_IF_ERROR(
        spool_internal::CheckOwnerOnlyTree(options.dir, "topic log"));
  }
  FABRIC_RETURN_IF_ERROR(spool_internal::MakeDirs(options.dir));
  FABRIC_ASSIGN_OR_RETURN(
      File lock, spool_internal::LockDirectory(options.dir, "topic log"));
  TopicVisitor visitor;
  spool_internal::LogRecoveryOptions recovery;
  recovery.mode = spool_internal::RecoveryMode::kOpen;
  recovery.queue = MetaQueue(options.topic);
  recovery.what = "topic log";
  recovery.log_component = log_component::kTopicLog;
  FABRIC_ASSIGN_OR_RETURN(
      spool_internal::LogRecovery found,
      spool_internal::RecoverLog(options.dir, recovery, &visitor));

  TopicLogReport report;
  report.topic = options.topic;
  report.stream_id = found.meta.producer_id;
  report.next_seq = found.next_seq;
  report.first_seq = visitor.segments_.empty()
                         ? found.next_seq
                         : visitor.segments_.begin()->second.first_seq;
  report.messages = visitor.messages_;
  report.segments = visitor.segments_.size();
  report.disk_bytes = visitor.disk_bytes_;
  report.torn_tail_bytes = found.torn_tail_bytes;
  report.seqs_skipped = found.seqs_skipped;
  report.corrupt = std::move(found.problems);
  FABRIC_ASSIGN_OR_RETURN(
      File active, spool_internal::CreateActiveSegment(
                       options.dir, found.meta.producer_id, found.last_segment,
                       found.next_seq, found.next_lsn));
  const std::string dir = options.dir;
  auto impl = std::make_unique<Impl>(
      std::move(options), std::move(lock), std::move(report),
      std::move(visitor.segments_), std::move(active), found.last_segment + 1,
      found.next_seq, found.next_lsn);
  impl->Start();
  // Now that the new segment's header holds next_seq, the empty ones can go.
  for (uint64_t number : visitor.empty_) {
    (void)spool_internal::RemoveFile(
        JoinPath(dir, spool_internal::SegmentFileName(number)));
  }
  return std::unique_ptr<TopicLog>(new TopicLog(std::move(impl)));
}

absl::StatusOr<SpooledTask> TopicLog::DecodeEntry(absl::string_view entry) {
  return spool_internal::DecodeEnqPayload(entry);
}

TopicLog::TopicLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TopicLog::~TopicLog() = default;

const NodeId& TopicLog::stream_id() const { return impl_->stream_id(); }
const TopicLogReport& TopicLog::recovery() const { return impl_->recovery(); }
absl::StatusOr<uint64_t> TopicLog::Append(absl::Time published,
                                          const Headers& headers,
                                          absl::string_view body) {
  return impl_->Append(published, headers, body);
}
absl::Status TopicLog::Read(uint64_t from, size_t max_entries, size_t max_bytes,
                            TopicLogRead* out) const {
  return impl_->Read(from, max_entries, max_bytes, out);
}
absl::StatusOr<uint64_t> TopicLog::SeqAtTime(absl::Time t) const {
  return impl_->SeqAtTime(t);
}
uint64_t TopicLog::first_seq() const { return impl_->first_seq(); }
uint64_t TopicLog::next_seq() const { return impl_->next_seq(); }
uint64_t TopicLog::durable_seq() const { return impl_->durable_seq(); }
uint64_t TopicLog::disk_bytes() const { return impl_->disk_bytes(); }
uint64_t TopicLog::segments_deleted() const {
  return impl_->segments_deleted();
}
absl::Status TopicLog::Flush(absl::Duration timeout) {
  return impl_->Flush(timeout);
}
absl::Status TopicLog::health() const { return impl_->health(); }

}  // namespace fabric
