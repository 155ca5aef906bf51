// SPDX-License-Identifier: Apache-2.0
// `PositionFile`: where a named durable subscriber is in each durable
// stream, on its own disk (docs/pubsub.md section 5). A small file mapped
// into memory: committing a position is one aligned 8-byte store, which a
// process crash cannot tear or lose (the page cache keeps it); `Sync`
// (msync) makes it survive power loss and runs every 200 ms and at close.
//
// Layout: a 64-byte header ("FABSUBP1", u32 version 1, u32 slot count)
// then fixed 64-byte slots: u32 magic, u32 checksum of bytes [8, 16) and
// [24, 64), u64 stream, u64 seq (last delivered; not in the checksum),
// u64 reserved, 32 bytes of topic (display only, NUL padded).
#ifndef PATTERNS_PUBSUB_INTERNAL_POSITIONS_H_
#define PATTERNS_PUBSUB_INTERNAL_POSITIONS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fabric::ps {

// Thread safety: `Commit` may be called from any thread for a slot that
// exists; `Find`, `Slot`, `Sync` from one thread at a time.
class PositionFile {
 public:
  static constexpr size_t kMaxStreams = 4096;

  // Opens or creates `path` and locks it (flock): one subscriber per name.
  // Damaged slots are skipped (their stream starts over as new) and counted
  // in `damaged()`. kFailedPrecondition when another process holds it.
  static absl::StatusOr<std::unique_ptr<PositionFile>> Open(
      const std::string& path);
  ~PositionFile();
  PositionFile(const PositionFile&) = delete;
  PositionFile& operator=(const PositionFile&) = delete;

  // The last delivered seq of `stream`, if recorded.
  std::optional<uint64_t> Find(uint64_t stream) const;
  // The slot of `stream`, created (seq 0) if needed. kResourceExhausted
  // beyond kMaxStreams.
  absl::StatusOr<int> Slot(uint64_t stream, absl::string_view topic);
  // Records that every message of the slot's stream up to `seq` was
  // delivered.
  void Commit(int slot, uint64_t seq);
  void Sync();
  uint64_t damaged() const { return damaged_; }

 private:
  PositionFile(int fd, char* map);
  int fd_;
  char* map_;
  int slots_used_ = 0;
  uint64_t damaged_ = 0;
  absl::flat_hash_map<uint64_t, int> by_stream_;
};

}  // namespace fabric::ps

#endif  // PATTERNS_PUBSUB_INTERNAL_POSITIONS_H_
