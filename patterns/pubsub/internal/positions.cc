// SPDX-License-Identifier: Apache-2.0
#include "patterns/pubsub/internal/positions.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "fabric/base/errno_status.h"

namespace fabric::ps {
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

}  // namespace

absl::StatusOr<std::unique_ptr<PositionFile>> PositionFile::Open(
    const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return ZmqErrnoToStatus(errno, absl::StrCat("open positions ", path));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    close(fd);
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "durable subscriber ", path, " is in use by another process"));
    }
    return ZmqErrnoToStatus(err, absl::StrCat("lock ", path));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 ||
      (static_cast<size_t>(st.st_size) != kFileBytes &&
       ftruncate(fd, static_cast<off_t>(kFileBytes)) != 0)) {
    const int err = errno;
    close(fd);
    return ZmqErrnoToStatus(err, absl::StrCat("size ", path));
  }
  void* map =
      mmap(nullptr, kFileBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    const int err = errno;
    close(fd);
    return ZmqErrnoToStatus(err, absl::StrCat("map ", path));
  }
  auto file = std::unique_ptr<PositionFile>(
      new PositionFile(fd, static_cast<char*>(map)));
  char* m = file->map_;
  if (std::memcmp(m, kMagic, 8) != 0 || Load32(m + 8) != kVersion) {
    // New (all zeros) or unreadable: start empty.
    if (st.st_size != 0 && Load64(m) != 0) file->damaged_ = 1;
    std::memset(m, 0, kFileBytes);
    std::memcpy(m, kMagic, 8);
    const uint32_t version = kVersion;
    std::memcpy(m + 8, &version, 4);
    return file;
  }
  for (size_t i = 0; i < kMaxStreams; ++i) {
    const char* slot = m + kHeader + i * kSlot;
    const uint32_t magic = Load32(slot);
    if (magic == 0) break;  // slots are used in order
    file->slots_used_ = static_cast<int>(i + 1);
    if (magic != kSlotMagic || Load32(slot + 4) != SlotChecksum(slot)) {
      ++file->damaged_;
      continue;
    }
    file->by_stream_[Load64(slot + 8)] = static_cast<int>(i);
  }
  return file;
}

PositionFile::PositionFile(int fd, char* map) : fd_(fd), map_(map) {}

PositionFile::~PositionFile() {
  Sync();
  munmap(map_, kFileBytes);
  close(fd_);
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

void PositionFile::Sync() { (void)msync(map_, kFileBytes, MS_SYNC); }

}  // namespace fabric::ps
