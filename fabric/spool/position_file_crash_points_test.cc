// SPDX-License-Identifier: Apache-2.0
// Crash-point exploration of subscriber position files (position
// checkpoints, issue 19; docs/spool.md section 13) on the in-memory file
// system, under the models the spool's exploration uses
// (fabric/spool/internal/crash_models.h). A workload opens a position file
// as a durable subscriber does, creates slots and commits increasing seqs
// with a Sync every few commits, closes, and does it again with one more
// stream. For every N up to the number of file operations it makes, the run
// is repeated with a crash at operation N (the workload goes on like a
// subscriber that does not know, but its later stores are never seen), then
// a power loss under each model, then the file is reopened and checked:
//   - it opens (damage is counted, never fatal), and without damage unless
//     the model tore a write;
//   - no stream's position is ahead of the last seq committed before the
//     crash (that would skip messages never delivered);
//   - after a process crash every commit is there (the page cache has it);
//   - unless the model tore a write, every position is at least what the
//     last successful Sync covered, and every slot a successful Sync
//     covered is found;
//   - a second open finds the same positions.
// Torn writes split or overwrite the file in place (a byte-granular tear
// can split an 8-byte seq, which a real sector write cannot), so for them
// only the upper bound and the open are checked.
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fabric/spool/internal/crash_models.h"
#include "fabric/spool/internal/file_system.h"
#include "fabric/spool/internal/mem_file_system.h"
#include "fabric/spool/position_file.h"
#include "gtest/gtest.h"

namespace fabric {
namespace {

using spool_internal::DataLoss;
using spool_internal::MemFileSystem;
using spool_internal::ScopedFileSystem;
using spool_internal::testing::Model;
using spool_internal::testing::Models;

constexpr char kPath[] = "/state/subs/billing.pos";
// Streams 1 and 2 from the first session on, 3 from the second; 4 never.
constexpr uint64_t kStreams[] = {1, 2, 3, 4};

// What the workload did before the crash, as the checks need it. The crash
// is the first failed call: nothing else fails in this exploration.
struct Oracle {
  bool dead = false;
  std::map<uint64_t, uint64_t> committed;  // last seq committed per stream
  std::map<uint64_t, uint64_t> synced;     // `committed` at the last good Sync
  std::set<uint64_t> slots;                // streams given a slot
  std::set<uint64_t> slots_synced;         // `slots` at the last good Sync
};

// One subscriber run: opens, gives `streams` a slot each, commits
// `commits` times round-robin (seqs step by 37 from where the stream was,
// so bytes carry), syncs every third commit and at the end, closes.
void Session(Oracle& o, const std::vector<uint64_t>& streams, int commits) {
  absl::StatusOr<std::unique_ptr<PositionFile>> opened =
      PositionFile::Open(kPath);
  if (!opened.ok()) {
    o.dead = true;
    return;
  }
  PositionFile& file = **opened;
  auto sync = [&] {
    if (!file.Sync().ok()) {
      o.dead = true;
    } else if (!o.dead) {
      o.synced = o.committed;
      o.slots_synced = o.slots;
    }
  };
  std::map<uint64_t, int> slot;
  std::map<uint64_t, uint64_t> seq;
  for (uint64_t stream : streams) {
    absl::StatusOr<int> index = file.Slot(stream, absl::StrCat("t", stream));
    ASSERT_TRUE(index.ok()) << index.status();  // no I/O: cannot fail here
    slot[stream] = *index;
    seq[stream] = file.Find(stream).value_or(200);
    if (!o.dead) o.slots.insert(stream);
  }
  for (int i = 0; i < commits; ++i) {
    const uint64_t stream = streams[i % streams.size()];
    seq[stream] += 37;
    file.Commit(slot[stream], seq[stream]);
    if (!o.dead) o.committed[stream] = seq[stream];
    if (i % 3 == 2) sync();
  }
  sync();  // as Subscriber::Close; the destructor syncs once more
}

void Workload(Oracle& o) {
  Session(o, {1, 2}, 12);
  Session(o, {1, 2, 3}, 9);
}

struct Found {
  std::map<uint64_t, std::optional<uint64_t>> positions;
  std::set<uint64_t> slots;
  uint64_t damaged = 0;
};

bool Reopen(Found* found, std::string* error) {
  absl::StatusOr<std::unique_ptr<PositionFile>> file =
      PositionFile::Open(kPath);
  if (!file.ok()) {
    *error = file.status().ToString();
    return false;
  }
  for (uint64_t stream : kStreams) {
    found->positions[stream] = (*file)->Find(stream);
    if ((*file)->HasSlot(stream)) found->slots.insert(stream);
  }
  found->damaged = (*file)->damaged();
  return true;
}

void Check(const Model& model, const Oracle& o) {
  Found found;
  std::string error;
  ASSERT_TRUE(Reopen(&found, &error)) << error;
  const bool torn = model.loss.data == DataLoss::kTearLast;
  if (!torn) {
    EXPECT_EQ(found.damaged, 0u);
  }
  for (uint64_t stream : kStreams) {
    SCOPED_TRACE(absl::StrCat("stream ", stream));
    const uint64_t position = found.positions[stream].value_or(0);
    const auto committed = o.committed.find(stream);
    const uint64_t last =
        committed == o.committed.end() ? 0 : committed->second;
    EXPECT_LE(position, last) << "ahead of what was delivered";
    if (model.process_crash_only) {
      EXPECT_EQ(position, last) << "a process crash lost a commit";
    }
    if (torn) continue;
    const auto synced = o.synced.find(stream);
    if (synced != o.synced.end()) {
      EXPECT_GE(position, synced->second) << "a synced position was lost";
    }
    if (o.slots_synced.contains(stream)) {
      EXPECT_TRUE(found.slots.contains(stream)) << "a synced slot was lost";
    }
  }
  Found again;
  ASSERT_TRUE(Reopen(&again, &error)) << error;
  EXPECT_EQ(again.positions, found.positions);
  EXPECT_EQ(again.slots, found.slots);
}

// The state directory, durable, as the subscriber's MakeDirs leaves it
// (not counted).
void MakeStateDir(MemFileSystem& fs) {
  fs.WriteForTest("/state/subs/other.pos", "");
}

uint64_t CountOps() {
  MemFileSystem fs;
  ScopedFileSystem use(&fs);
  MakeStateDir(fs);
  Oracle oracle;
  Workload(oracle);
  EXPECT_FALSE(oracle.dead);
  return fs.ops();
}

TEST(PositionCrashPoints, EveryCrashPointRecovers) {
  const uint64_t total = CountOps();
  ASSERT_GT(total, 10u);
  std::fprintf(stderr, "positions workload: %llu file operations\n",
               static_cast<unsigned long long>(total));
  // The workload runs on one thread: every round would number its
  // operations the same, so one round is enough even for the full pass.
  for (uint64_t n = 1; n <= total + 1; ++n) {
    for (const Model& model : Models(n)) {
      SCOPED_TRACE(
          absl::StrCat("crash at op ", n, " of ", total, ", ", model.name));
      MemFileSystem fs;
      ScopedFileSystem use(&fs);
      MakeStateDir(fs);
      fs.CrashAtOp(n);
      Oracle oracle;
      Workload(oracle);
      fs.PowerLoss(model.loss);
      Check(model, oracle);
      if (::testing::Test::HasFailure()) return;  // one report is enough
    }
  }
}

}  // namespace
}  // namespace fabric
