// SPDX-License-Identifier: Apache-2.0
#include "fabric/spool/position_file.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "fabric/base/status_macros.h"
#include "fabric/spool/internal/file_util.h"

namespace fabric {
namespace {

constexpr char kMagic[8] = {'F', 'A', 'B', 'S', 'U', 'B', 'P', '1'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kSlotMagic = 0x50534246;  // "FBSP"
constexpr size_t kHeader = 64;
constexpr size_t kSlot = 64;
constexpr size_t kFileBytes = kHeader + PositionFile::kMaxStreams * kSlot;

uint32_t Load32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t Load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// FNV-1a over the slot's identity (not its seq).
uint32_t SlotChecksum(const char* slot) {
  uint32_t h = 2166136261u;
  auto mix = [&](const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      h ^= static_cast<uint8_t>(p[i]);
      h *= 16777619u;
    }
  };
  mix(slot + 8, 8);
  mix(slot + 24, 40);
  return h;
}

// The directory holding `path` ("." for a bare name).
std::string DirName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PositionFile>> PositionFile::Open(
    const std::string& path, SharedFiles shared_files) {
  if (shared_files == SharedFiles::kRefuse) {
    // The directory alone, not the tree: it may hold other subscribers'
    // files, which they check when they open them.
    FABRIC_RETURN_IF_ERROR(spool_internal::CheckOwnerOnly(
        DirName(path), "durable subscriber state directory"));
    FABRIC_RETURN_IF_ERROR(spool_internal::CheckOwnerOnly(
        path, "durable subscriber position file"));
  }
  // Through the file layer, which fsyncs the parent of each directory it
  // creates: the position file must not vanish with its directory.
  FABRIC_RETURN_IF_ERROR(spool_internal::MakeDirs(DirName(path)));
  absl::StatusOr<std::unique_ptr<spool_internal::FileHandle>> locked =
      spool_internal::CurrentFileSystem()->Lock(path);
  if (absl::IsFailedPrecondition(locked.status())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "durable subscriber ", path, " is in use by another process"));
  }
  if (!locked.ok()) return locked.status();
  std::unique_ptr<spool_internal::FileHandle> file = *std::move(locked);
  FABRIC_ASSIGN_OR_RETURN(const uint64_t size, file->Size(path));
  if (size != kFileBytes) {
    // New, or its creator died before this point: its directory entry may
    // not be durable. Fsync the directory before sizing the file, so a file
    // at full size (which the next open takes as set up) always has a
    // durable entry; a crash in between leaves it short and the next open
    // does this again.
    FABRIC_RETURN_IF_ERROR(spool_internal::SyncDir(DirName(path)));
    FABRIC_RETURN_IF_ERROR(file->Truncate(kFileBytes, path));
  }
  FABRIC_ASSIGN_OR_RETURN(char* map, file->Map(kFileBytes, path));
  auto positions = std::unique_ptr<PositionFile>(
      new PositionFile(path, std::move(file), map));
  PositionFile& p = *positions;
  if (std::memcmp(map, kMagic, 8) != 0 || Load32(map + 8) != kVersion) {
    // New (all zeros) or unreadable: start empty.
    if (size != 0 && Load64(map) != 0) p.damaged_ = 1;
    std::memset(map, 0, kFileBytes);
    std::memcpy(map, kMagic, 8);
    const uint32_t version = kVersion;
    std::memcpy(map + 8, &version, 4);
    return positions;
  }
  for (size_t i = 0; i < kMaxStreams; ++i) {
    const char* slot = map + kHeader + i * kSlot;
    const uint32_t magic = Load32(slot);
    if (magic == 0) break;  // slots are used in order
    p.slots_used_ = static_cast<int>(i + 1);
    if (magic != kSlotMagic || Load32(slot + 4) != SlotChecksum(slot)) {
      ++p.damaged_;
      continue;
    }
    p.by_stream_[Load64(slot + 8)] = static_cast<int>(i);
  }
  return positions;
}

PositionFile::PositionFile(std::string path,
                           std::unique_ptr<spool_internal::FileHandle> file,
                           char* map)
    : path_(std::move(path)), file_(std::move(file)), map_(map) {}

// `file_` then unmaps and unlocks.
PositionFile::~PositionFile() {
  // A failure is counted in `sync_failures_`; owners that care called `Sync`
  // first and saw it.
  Sync().IgnoreError();
}

std::optional<uint64_t> PositionFile::Find(uint64_t stream) const {
  auto it = by_stream_.find(stream);
  if (it == by_stream_.end()) return std::nullopt;
  const char* slot = map_ + kHeader + static_cast<size_t>(it->second) * kSlot;
  const uint64_t seq = __atomic_load_n(
      reinterpret_cast<const uint64_t*>(slot + 16), __ATOMIC_ACQUIRE);
  if (seq == 0) return std::nullopt;
  return seq;
}

absl::StatusOr<int> PositionFile::Slot(uint64_t stream,
                                       absl::string_view topic) {
  auto it = by_stream_.find(stream);
  if (it != by_stream_.end()) return it->second;
  if (slots_used_ >= static_cast<int>(kMaxStreams)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "a durable subscriber tracks at most ", kMaxStreams, " streams"));
  }
  const int index = slots_used_++;
  char* slot = map_ + kHeader + static_cast<size_t>(index) * kSlot;
  std::memset(slot, 0, kSlot);
  std::memcpy(slot + 8, &stream, 8);
  std::memcpy(slot + 32, topic.data(), std::min<size_t>(topic.size(), 32));
  const uint32_t checksum = SlotChecksum(slot);
  std::memcpy(slot + 4, &checksum, 4);
  // The magic last: a crash before it leaves an unused slot.
  __atomic_store_n(reinterpret_cast<uint32_t*>(slot), kSlotMagic,
                   __ATOMIC_RELEASE);
  by_stream_[stream] = index;
  return index;
}

void PositionFile::Commit(int slot, uint64_t seq) {
  char* p = map_ + kHeader + static_cast<size_t>(slot) * kSlot + 16;
  __atomic_store_n(reinterpret_cast<uint64_t*>(p), seq, __ATOMIC_RELEASE);
}

absl::Status PositionFile::Sync() {
  absl::Status status = file_->SyncMap(path_);
  if (!status.ok()) ++sync_failures_;
  return status;
}

}  // namespace fabric
