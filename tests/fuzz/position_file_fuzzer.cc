// SPDX-License-Identifier: Apache-2.0
// libFuzzer target over the reader of a durable subscriber's position file
// (fabric/spool/position_file.h). The input, after a flags byte, is the
// file's contents, on an in-memory file system; flag bits plant a valid
// header and fix the slot checksums the fuzzer cannot forge, so both the
// damaged and the intact paths are reached. Opening must succeed whatever
// the bytes, find every intact slot with its seq and count the damaged
// ones; a new slot committed after that must read back after a reopen.
// Build and run: tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "fabric/spool/internal/mem_file_system.h"
#include "fabric/spool/position_file.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace si = ::fabric::spool_internal;
using ::fabric::PositionFile;

// The layout, as position_file.h documents it.
constexpr char kMagic[8] = {'F', 'A', 'B', 'S', 'U', 'B', 'P', '1'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kSlotMagic = 0x50534246;  // "FBSP"
constexpr size_t kHeader = 64;
constexpr size_t kSlot = 64;
constexpr size_t kFileBytes = kHeader + PositionFile::kMaxStreams * kSlot;
constexpr char kPath[] = "/state/subs/fuzz.pos";

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

// FNV-1a over bytes [8, 16) and [24, 64) of a slot.
uint32_t SlotChecksum(const char* slot) {
  uint32_t h = 2166136261u;
  for (size_t i = 8; i < kSlot; ++i) {
    if (i == 16) i = 24;
    h ^= static_cast<uint8_t>(slot[i]);
    h *= 16777619u;
  }
  return h;
}

// What Open must find in `file`: each intact slot's stream and seq (a later
// slot of the same stream wins) and the number of damaged slots.
struct Expected {
  bool valid_header = false;
  absl::flat_hash_map<uint64_t, uint64_t> seqs;
  uint64_t damaged = 0;
  size_t slots_used = 0;
};

Expected Model(const std::string& file) {
  // What the mapping shows: the file, then zeros up to its full size.
  std::string map = file;
  map.resize(kFileBytes, '\0');
  Expected e;
  e.valid_header = std::memcmp(map.data(), kMagic, 8) == 0 &&
                   Load32(map.data() + 8) == kVersion;
  if (!e.valid_header) {
    // Anything but zeros where the magic goes counts as one damage.
    e.damaged = !file.empty() && Load64(map.data()) != 0 ? 1 : 0;
    return e;
  }
  for (size_t i = 0; i < PositionFile::kMaxStreams; ++i) {
    const char* slot = map.data() + kHeader + i * kSlot;
    if (Load32(slot) == 0) break;  // slots are used in order
    e.slots_used = i + 1;
    if (Load32(slot) != kSlotMagic || Load32(slot + 4) != SlotChecksum(slot)) {
      ++e.damaged;
      continue;
    }
    e.seqs[Load64(slot + 8)] = Load64(slot + 16);
  }
  return e;
}

void FuzzPositionFile(absl::string_view input) {
  if (input.empty()) return;
  const uint8_t flags = static_cast<uint8_t>(input[0]);
  std::string file(input.substr(1, kFileBytes));
  if ((flags & 1) != 0) {
    if (file.size() < 12) file.resize(12, '\0');
    std::memcpy(file.data(), kMagic, 8);
    std::memcpy(file.data() + 8, &kVersion, 4);
  }
  if ((flags & 2) != 0) {
    // Slots that carry the magic get a correct checksum.
    for (size_t at = kHeader; at + kSlot <= file.size(); at += kSlot) {
      char* slot = file.data() + at;
      if (Load32(slot) != kSlotMagic) continue;
      const uint32_t sum = SlotChecksum(slot);
      std::memcpy(slot + 4, &sum, 4);
    }
  }
  const Expected want = Model(file);

  si::MemFileSystem fs;
  si::ScopedFileSystem use(&fs);
  fs.WriteForTest(kPath, file);
  uint64_t stream = 0;
  {
    absl::StatusOr<std::unique_ptr<PositionFile>> opened =
        PositionFile::Open(kPath);
    FABRIC_FUZZ_REQUIRE(opened.ok());
    PositionFile& positions = **opened;
    FABRIC_FUZZ_REQUIRE(positions.damaged() == want.damaged);
    for (const auto& [s, seq] : want.seqs) {
      FABRIC_FUZZ_REQUIRE(positions.HasSlot(s));
      const std::optional<uint64_t> found = positions.Find(s);
      FABRIC_FUZZ_REQUIRE(seq == 0 ? !found.has_value() : found == seq);
    }
    // A stream the file does not hold gets a new slot, unless all are used.
    while (want.seqs.contains(stream)) ++stream;
    FABRIC_FUZZ_REQUIRE(!positions.HasSlot(stream) &&
                        !positions.Find(stream).has_value());
    absl::StatusOr<int> slot = positions.Slot(stream, "topic");
    if (want.slots_used == PositionFile::kMaxStreams) {
      FABRIC_FUZZ_REQUIRE(absl::IsResourceExhausted(slot.status()));
      return;
    }
    FABRIC_FUZZ_REQUIRE(slot.ok() &&
                        static_cast<size_t>(*slot) == want.slots_used);
    positions.Commit(*slot, 42);
    FABRIC_FUZZ_REQUIRE(positions.Sync().ok());
  }
  // Reopened: the new slot and every intact one are still there.
  absl::StatusOr<std::unique_ptr<PositionFile>> again =
      PositionFile::Open(kPath);
  FABRIC_FUZZ_REQUIRE(again.ok());
  FABRIC_FUZZ_REQUIRE((*again)->Find(stream) == uint64_t{42});
  for (const auto& [s, seq] : want.seqs) {
    FABRIC_FUZZ_REQUIRE((*again)->HasSlot(s));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzPositionFile(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
