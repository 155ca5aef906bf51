// SPDX-License-Identifier: Apache-2.0
// `fabric::TopicLog`: a publisher's local disk log of one durable topic
// stream. It is the spool's append log (one writer: group commit, fsync
// policies, segment rolls, seq reservations; the same directory layout,
// segment header, record framing and checksums: docs/spool.md) with its own
// records and state instead of the spool's index: a topic log is never
// acked. Records are only ever appended, read back by
// sequence number (replay to late or restarted subscribers), and dropped a
// whole segment at a time, oldest first, once the log is over its retention
// size or age (docs/pubsub.md section 4).
//
//   fabric::TopicLogOptions options;
//   options.dir = "/var/lib/app/topics/prices";
//   options.topic = "prices";
//   ASSIGN_OR_RETURN(std::unique_ptr<fabric::TopicLog> log,
//                    fabric::TopicLog::Open(options));
//   ASSIGN_OR_RETURN(uint64_t seq, log->Append(absl::Now(), {}, body));
//   ... on_durable(seq) fires on the writer thread ...
//   fabric::TopicLogRead chunk;
//   RETURN_IF_ERROR(log->Read(/*from=*/1, 1000, 1 << 20, &chunk));
#ifndef FABRIC_SPOOL_TOPIC_LOG_H_
#define FABRIC_SPOOL_TOPIC_LOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fabric/base/node_id.h"
#include "fabric/codec/control.h"
#include "fabric/spool/spool.h"

namespace fabric {

struct TopicLogOptions {
  std::string dir;    // created (with parents, 0700) if missing; required
  std::string topic;  // recorded at creation; a mismatch on reopen fails
  // An existing `dir`, or anything in it, open to group or others (see
  // SharedFiles in spool.h).
  SharedFiles shared_files = SharedFiles::kAllow;
  // When an appended message counts as durable (see FsyncPolicy). Readers
  // never see a message before it is durable.
  FsyncPolicy fsync = FsyncPolicy::kBatch;
  absl::Duration fsync_interval = absl::Milliseconds(100);  // kInterval only
  // Retention: once the log holds more than `retention_bytes` on disk, or
  // its oldest segment's newest message is older than `retention_age`, the
  // oldest segment is deleted. The segment being written is never deleted,
  // so the log may exceed the size limit by up to one segment.
  uint64_t retention_bytes = uint64_t{1} << 30;
  absl::Duration retention_age = absl::InfiniteDuration();
  // Roll to a new segment once one would grow past this. [4 KiB, 1 GiB].
  uint64_t segment_bytes = uint64_t{16} << 20;
  // Called on the writer thread, no lock held, in order, each time more
  // messages are durable: every seq <= `durable_seq` is. Must not block for
  // long and must not call `Flush`.
  std::function<void(uint64_t durable_seq)> on_durable;
  // Called once, on the writer thread, when the log fails (an I/O error;
  // a full disk only when closing with messages it could not write).
  // `Append` fails from then on; reopen to recover. A full disk otherwise
  // does not fail the log: see `Append`.
  std::function<void(const absl::Status&)> on_error;
};

// What `Open` found.
struct TopicLogReport {
  NodeId stream_id;  // persistent identity of this log (from META)
  std::string topic;
  uint64_t first_seq = 1;  // oldest message kept (== next_seq when empty)
  uint64_t next_seq = 1;
  uint64_t messages = 0;
  uint64_t segments = 0;
  uint64_t disk_bytes = 0;
  uint64_t torn_tail_bytes = 0;  // cut off the newest segment
  // Seqs above every message found that are never handed out: after an
  // unclean stop under kInterval/kNone, messages with these seqs may have
  // been sent to subscribers and then lost (docs/spool.md section 6.1).
  uint64_t seqs_skipped = 0;
  std::vector<SpoolProblem> corrupt;  // damaged records skipped
};

// One `Read`: encoded entries (decode with `TopicLog::DecodeEntry`).
struct TopicLogRead {
  uint64_t first_seq = 0;    // oldest message kept when the read ran
  uint64_t durable_seq = 0;  // newest message readable when the read ran
  // Entries in ascending seq order, starting at max(from, first_seq). A seq
  // may be missing where a damaged record was skipped.
  std::vector<std::string> entries;
  uint64_t next = 0;  // the seq to read from next
};

// Thread safety: thread-safe. `Append` and `Read` may be called from any
// thread at once; one internal writer thread does the writes. Only one
// process may open a directory at a time (a LOCK file).
class TopicLog {
 public:
  // Opens (creating if needed) and recovers the log: a torn tail is cut off,
  // damaged records are skipped and reported, never fatal. Returns
  // kInvalidArgument for bad options, kFailedPrecondition when the
  // directory is in use or belongs to another topic or to a work-queue
  // spool, kUnimplemented for a newer format and the I/O error otherwise.
  static absl::StatusOr<std::unique_ptr<TopicLog>> Open(
      TopicLogOptions options);
  // Decodes one entry of `TopicLogRead::entries`. kDataLoss if malformed.
  static absl::StatusOr<SpooledTask> DecodeEntry(absl::string_view entry);

  TopicLog(const TopicLog&) = delete;
  TopicLog& operator=(const TopicLog&) = delete;
  // Writes and syncs what is pending (unless kNone), then closes.
  ~TopicLog();

  const NodeId& stream_id() const;
  const TopicLogReport& recovery() const;

  // Appends a message and returns its seq (one more than the last). Never
  // blocks on I/O. Returns kInvalidArgument for a body over 64 MiB and the
  // log's error once it has failed. When the disk is full, the messages
  // that did not fit are held (not durable, not readable) and retried
  // every second, and `Append` fails at once with kResourceExhausted ("spool
  // disk full: ...") until they are written: seqs stay gap-free, nothing is
  // confirmed that is not on disk, and appends resume once there is room.
  absl::StatusOr<uint64_t> Append(absl::Time published, const Headers& headers,
                                  absl::string_view body);
  // Reads durable messages from `from` on: at most `max_entries`, and stops
  // before exceeding `max_bytes` (one entry is always returned if any is
  // available). Blocks on disk reads only.
  absl::Status Read(uint64_t from, size_t max_entries, size_t max_bytes,
                    TopicLogRead* out) const;
  // The seq of the first kept message published at or after `t` (by the
  // publisher's wall clock), or `next_seq()` when there is none.
  absl::StatusOr<uint64_t> SeqAtTime(absl::Time t) const;

  uint64_t first_seq() const;
  uint64_t next_seq() const;
  uint64_t durable_seq() const;
  uint64_t disk_bytes() const;
  uint64_t segments_deleted() const;  // by retention, since Open
  // Waits until every message appended so far is written and fdatasynced
  // (whatever the policy). kDeadlineExceeded when `timeout` passes first;
  // the disk-full error at once while messages are held (see `Append`).
  absl::Status Flush(absl::Duration timeout);
  absl::Status health() const;

 private:
  class Impl;
  explicit TopicLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fabric

#endif  // FABRIC_SPOOL_TOPIC_LOG_H_
