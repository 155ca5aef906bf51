// SPDX-License-Identifier: Apache-2.0
// `PositionFile`: where a named durable subscriber is in each durable
// stream, on its own disk (docs/pubsub.md section 5). A small file mapped
// into memory: committing a position is one aligned 8-byte store, which a
// process crash cannot tear or lose (the page cache keeps it); `Sync`
// (msync) makes it survive power loss and runs every 200 ms and at close.
// Every file operation goes through the file layer
// (fabric/spool/internal/file_system.h), so the crash-point tests run it on
// the in-memory file system (position_file_crash_points_test.cc). Part of
// the spool module, which owns local durable state; used by
// patterns/pubsub's Subscriber; not installed.
//
// Layout: a 64-byte header ("FABSUBP1", u32 version 1, u32 slot count)
// then fixed 64-byte slots: u32 magic, u32 checksum of bytes [8, 16) and
// [24, 64), u64 stream, u64 seq (last delivered; not in the checksum),
// u64 reserved, 32 bytes of topic (display only, NUL padded).
#ifndef FABRIC_SPOOL_POSITION_FILE_H_
#define FABRIC_SPOOL_POSITION_FILE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fabric/spool/spool.h"

namespace fabric {

namespace spool_internal {
class FileHandle;
}  // namespace spool_internal

// Thread safety: `Commit` may be called from any thread for a slot that
// exists; `Find`, `HasSlot`, `Slot`, `Sync` from one thread at a time.
class PositionFile {
 public:
  static constexpr size_t kMaxStreams = 4096;

  // Opens or creates `path` (mode 0600; missing parent directories too, 0700,
  // each made durable) through `CurrentFileSystem()` and locks it: one
  // subscriber per name. When the file is not at its full size (new, or its
  // creator died before sizing it), fsyncs its directory before sizing it, so a
  // synced position cannot vanish with the file's directory entry in a power
  // loss. Damaged slots are skipped (their stream starts over as new) and
  // counted in `damaged()`. kFailedPrecondition when another process holds it;
  // other errors as the file layer reports them. With SharedFiles::kRefuse
  // (spool.h), kFailedPrecondition (FAB-SEC-FILE-PERMS) when `path` or its
  // directory exists and is open to group or others (mode & 077).
  static absl::StatusOr<std::unique_ptr<PositionFile>> Open(
      const std::string& path, SharedFiles shared_files = SharedFiles::kAllow);
  // Syncs (a failure only counts: call `Sync` first to see it), unmaps and
  // unlocks.
  ~PositionFile();
  PositionFile(const PositionFile&) = delete;
  PositionFile& operator=(const PositionFile&) = delete;

  // The last delivered seq of `stream`, if recorded.
  std::optional<uint64_t> Find(uint64_t stream) const;
  // Whether `stream` has a slot (even one with no seq committed yet).
  bool HasSlot(uint64_t stream) const { return by_stream_.contains(stream); }
  // The slot of `stream`, created (seq 0) if needed. kResourceExhausted
  // beyond kMaxStreams.
  absl::StatusOr<int> Slot(uint64_t stream, absl::string_view topic);
  // Records that every message of the slot's stream up to `seq` was
  // delivered: one store, no system call.
  void Commit(int slot, uint64_t seq);
  // Makes every commit and slot so far survive power loss (msync MS_SYNC;
  // blocks on the disk). A failure is returned and counted in
  // `sync_failures()`; the commits stay in the page cache, but what it
  // covered may be lost in a power loss even if a later `Sync` succeeds
  // (Linux may forget that pages failed to write).
  absl::Status Sync();
  uint64_t damaged() const { return damaged_; }
  uint64_t sync_failures() const { return sync_failures_; }

 private:
  PositionFile(std::string path,
               std::unique_ptr<spool_internal::FileHandle> file, char* map);

  const std::string path_;
  const std::unique_ptr<spool_internal::FileHandle> file_;
  char* const map_;  // the whole file, mapped through `file_`
  int slots_used_ = 0;
  uint64_t damaged_ = 0;
  uint64_t sync_failures_ = 0;
  absl::flat_hash_map<uint64_t, int> by_stream_;
};

}  // namespace fabric

#endif  // FABRIC_SPOOL_POSITION_FILE_H_
