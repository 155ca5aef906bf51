// SPDX-License-Identifier: Apache-2.0
// `fabric::Spool`: a producer's local disk log of outgoing tasks for one
// queue. A directory of append-only segment files whose records are framed
// and checksummed (docs/spool.md). The spool
//   - appends ENQ records and reports them durable under an fsync policy,
//   - records ACKs and DEAD letters,
//   - recovers on open: keeps every intact record, truncates a torn tail,
//     reports (never crashes on) corruption in the middle, resumes sequence
//     numbers and hands back every task not yet acked or dead,
//   - deletes fully resolved segments and compacts sparse ones,
//   - enforces a size limit on live bytes (kResourceExhausted).
//
//   fabric::SpoolOptions options;
//   options.dir = "/var/lib/app/spool/images";
//   options.queue = "images";
//   ASSIGN_OR_RETURN(std::unique_ptr<fabric::Spool> spool,
//                    fabric::Spool::Open(options));
//   ASSIGN_OR_RETURN(uint64_t seq, spool->Append(headers, body));
//   ... on_durable(seq) fires on the writer thread ...
//   spool->Ack(seq);
#ifndef FABRIC_SPOOL_SPOOL_H_
#define FABRIC_SPOOL_SPOOL_H_

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
#include "fabric/types.h"

namespace fabric {

// When an appended task counts as durable (and its push is confirmed).
enum class FsyncPolicy {
  kAlways,    // fdatasync after every record; confirm after it
  kBatch,     // group commit (default): one fdatasync covers every record
              // waiting at that moment; confirm after it
  kInterval,  // confirm once written; fdatasync every `fsync_interval`
  kNone,      // confirm once written; no fdatasync of records (page cache
              // only) except at a segment roll, on `Flush` and for a seq
              // reservation (one per 16384 seqs, docs/spool.md 6.1)
};
// "Confirmed" means: kAlways/kBatch survive power loss; kInterval and kNone
// survive a process crash only (kInterval loses at most `fsync_interval`
// on power loss). docs/spool.md section 6 has the details.

// "always", "batch", "interval", "none".
absl::string_view FsyncPolicyName(FsyncPolicy policy);
absl::StatusOr<FsyncPolicy> ParseFsyncPolicy(absl::string_view name);

// A queue or topic name as one directory name: [A-Za-z0-9._-] kept, every
// other byte %XX, and a leading '.' escaped so no name maps to "." or "..".
// Publishers name topic logs this way; the relay names its spools so.
std::string EscapeDirName(absl::string_view name);

// What `Open` does with durable state that already exists and that group or
// others may access (mode & 077 != 0), such as a spool an earlier release
// made 0755/0644. What it creates is owner-only either way (docs/spool.md,
// "Files and modes").
enum class SharedFiles {
  kAllow,   // use it as it is (the default; plaintext mode)
  kRefuse,  // kFailedPrecondition "FAB-SEC-FILE-PERMS PATH has mode ...",
            // naming the fix; before anything is created or locked. Patterns
            // ask for it in secure mode unless `allow_shared_files` is set
            // (docs/security.md section 3)
};

struct SpoolOptions {
  std::string dir;  // created (with parents, 0700) if missing; required
  // An existing `dir`, or anything in it, open to group or others.
  SharedFiles shared_files = SharedFiles::kAllow;
  std::string queue;  // recorded at creation; a mismatch on reopen fails;
                      // required
  FsyncPolicy fsync = FsyncPolicy::kBatch;
  // kInterval only: positive and finite.
  absl::Duration fsync_interval = absl::Milliseconds(100);
  // Limit on live bytes (framed records of tasks neither acked nor dead,
  // plus dead letters). `Append` beyond it returns kResourceExhausted.
  // Must be positive.
  uint64_t max_bytes = uint64_t{1} << 30;
  // Roll to a new segment file once one would grow past this many bytes
  // (one larger record still gets a segment of its own). [4 KiB, 4 GiB].
  uint64_t segment_bytes = uint64_t{64} << 20;
  // Called on the writer thread, no lock held, in order, each time more
  // records are confirmed: every task with seq <= `durable_seq` is. Must not
  // block for long (it delays the next group commit) and must not call
  // `Flush` or `WaitForRoom`; `Ack`, `Append` and the rest are fine.
  std::function<void(uint64_t durable_seq)> on_durable;
  // Called once, on the writer thread, no lock held, when the spool fails
  // (fdatasync error: kDataLoss or kInternal; disk full without
  // `on_refused`: kResourceExhausted; other I/O errors): every task appended
  // after the last `on_durable` is not durable. The spool stays failed;
  // reopen it to recover. Same rules as `on_durable`.
  std::function<void(const absl::Status&)> on_error;
  // When set, a full disk does not fail the spool: the tasks whose records
  // could not be written (ENOSPC, EDQUOT, EFBIG) are refused instead. Called
  // on the writer thread, no lock held, with their seqs (ascending) and the
  // kResourceExhausted error, before any later `on_durable`; those seqs are
  // never confirmed, although a later `on_durable(s)` may cover larger
  // ones, and never come back at recovery (after a restart their seqs may
  // be handed out again: nobody ever saw them). For a short back-off (1 s
  // after each refusal) `Append`, `ReplayDead` and `PurgeDead` then fail at
  // once with kResourceExhausted; after it appends are written again, so
  // pushes resume once space is free. Acks, dead letters and purges of the
  // refused batch are kept and written then; a replay's removals after its
  // refused ENQs fail the spool instead (their dead letters would be lost).
  // Same rules as `on_durable`.
  std::function<void(const std::vector<uint64_t>& seqs,
                     const absl::Status& status)>
      on_refused;
};

// One task as stored in an ENQ record.
struct SpooledTask {
  uint64_t seq = 0;
  absl::Time enqueued;  // wall clock, for display
  Headers headers;
  std::string body;
};

// One dead letter as stored in a DEAD record (a full copy of the task).
struct DeadLetter {
  SpooledTask task;
  uint32_t attempts = 0;
  std::string reason;  // "max_attempts", "rejected: <worker's reason>", ...
  absl::Time died;
};

// What a scan or recovery found.
struct SpoolProblem {
  std::string segment;  // file name: a segment, or "META"
  uint64_t offset = 0;
  std::string what;
};
struct SpoolReport {
  NodeId producer_id;  // persistent id of this spool (task ids use it)
  std::string queue;
  uint64_t next_seq = 1;  // the seq `Append` hands out next
  uint64_t segments = 0;  // segment files read (not counting the one Open
                          // then creates)
  uint64_t disk_bytes = 0;
  uint64_t live_bytes = 0;
  uint64_t records = 0;          // intact records read
  uint64_t enqueued = 0;         // ENQ records
  uint64_t acked = 0;            // tasks acked
  uint64_t pending = 0;          // tasks neither acked nor dead
  uint64_t dead = 0;             // dead letters not yet replayed or purged
  uint64_t torn_tail_bytes = 0;  // cut off (Open) or that would be (Scan)
  // Seqs above every record found that recovery will never hand out: after
  // an unclean stop under kInterval/kNone, tasks with these seqs may have
  // been confirmed and then lost (docs/spool.md section 6.1). 0 after a
  // clean close.
  uint64_t seqs_skipped = 0;
  std::vector<SpoolProblem> corrupt;  // corrupt records skipped
};

// Thread safety: thread-safe. `Append`, `Ack`, `AddDead` and the rest may be
// called from any thread; one internal writer thread does the I/O. Only one
// process may open a directory at a time (a LOCK file).
class Spool {
 public:
  // Opens (creating if needed) and recovers the spool. Damage is repaired
  // or reported in `recovery()`, never fatal. Returns kFailedPrecondition
  // when another process (or another `Spool` in this one) holds it or it
  // belongs to another queue, kDataLoss only when nothing can be read at
  // all (e.g. an unreadable directory), kUnimplemented for a newer format,
  // kInvalidArgument for bad options, and the I/O error of a failed repair
  // (kResourceExhausted, kPermissionDenied, kInternal).
  static absl::StatusOr<std::unique_ptr<Spool>> Open(SpoolOptions options);
  // Reads a spool without changing it (no lock, no truncation, no
  // deletion) and reports what `Open` would find: `torn_tail_bytes` counts
  // what Open would cut off. Works on a spool open in another process.
  // Returns kNotFound when `dir` holds no spool. For
  // `fabric spool inspect|verify`.
  static absl::StatusOr<SpoolReport> Scan(absl::string_view dir);
  // Reads the dead letters without changing anything.
  static absl::StatusOr<std::vector<DeadLetter>> ScanDead(
      absl::string_view dir);

  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;
  // Writes what is pending, fdatasyncs it (unless kNone), reports it
  // through `on_durable` and closes. Blocks until done.
  ~Spool();

  const NodeId& producer_id() const;
  // What recovery found at Open.
  const SpoolReport& recovery() const;
  // Moves out the tasks recovery found neither acked nor dead, in seq order.
  // Call once, after Open.
  std::vector<SpooledTask> TakePending();
  std::vector<DeadLetter> DeadLetters() const;

  // Appends an ENQ record and returns its seq (one more than the last).
  // Durability is reported through `on_durable`. Never blocks on I/O.
  // Returns kResourceExhausted when live bytes would exceed `max_bytes`
  // (the message names the limit), kInvalidArgument for a task over the
  // record limit (64 MiB body), and the spool's error once it has failed.
  absl::StatusOr<uint64_t> Append(const Headers& headers,
                                  absl::string_view body);
  // Records that `seq` completed. Not waited for: a lost ACK only means a
  // redelivery, which workers deduplicate. Unknown or already resolved seqs
  // are ignored. Acks are coalesced into ranges by the writer.
  void Ack(uint64_t seq);
  // Records a dead letter (and resolves its ENQ). Durable like an ENQ: the
  // next group commit covers it (`Flush` to wait). Returns kAlreadyExists
  // when `dead.task.seq` already is a dead letter.
  absl::Status AddDead(const DeadLetter& dead);
  // Re-enqueues the dead letters with these seqs (all when empty) as new
  // tasks (new seqs, confirmed through `on_durable`) and removes them from
  // the dead letters. Returns the new tasks, or kNotFound (and changes
  // nothing) when a seq is not a dead letter. Not subject to `max_bytes`.
  absl::StatusOr<std::vector<SpooledTask>> ReplayDead(
      const std::vector<uint64_t>& seqs);
  // Removes dead letters for good (all when empty; unknown seqs are
  // skipped); returns how many.
  absl::StatusOr<size_t> PurgeDead(const std::vector<uint64_t>& seqs);

  // Waits until everything appended, acked or dead-lettered so far is
  // written and fdatasynced (whatever the policy), and `on_durable` has
  // reported every task appended before the call (except tasks reported to
  // `on_refused`, which are settled without being written). Returns
  // kDeadlineExceeded when `timeout` passes first and the spool's error once it
  // has failed.
  absl::Status Flush(absl::Duration timeout);

  uint64_t live_bytes() const;
  uint64_t max_bytes() const;
  // Blocks until live bytes drop below the limit (after an Append refused
  // for the limit: until that task would fit) or `deadline` passes. Returns
  // true if there is room, false on timeout or once the spool has failed.
  bool WaitForRoom(absl::Time deadline);
  // The status the spool failed with, OK while healthy.
  absl::Status health() const;

 private:
  class Impl;
  explicit Spool(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fabric

#endif  // FABRIC_SPOOL_SPOOL_H_
