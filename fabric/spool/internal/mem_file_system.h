// SPDX-License-Identifier: Apache-2.0
// `MemFileSystem`: an in-memory `FileSystem` for crash-consistency tests. It
// keeps, for every file, what a reader sees now and what is durable (as of
// its last successful fdatasync), and for every directory which entries are
// durable (as of its last fsync), then simulates a power loss with one of
// several models, fails chosen calls with an errno, runs out of space, and
// "crashes" at the N-th operation. Test-only.
//
//   MemFileSystem fs;
//   ScopedFileSystem use(&fs);
//   fs.CrashAtOp(17);            // op 17 and every later one fail (EIO)
//   ... run the workload, destroy the spool ...
//   fs.PowerLoss({.data = DataLoss::kDropUnsynced});
//   ... reopen and check ...
#ifndef FABRIC_SPOOL_INTERNAL_MEM_FILE_SYSTEM_H_
#define FABRIC_SPOOL_INTERNAL_MEM_FILE_SYSTEM_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "fabric/spool/internal/file_system.h"

namespace fabric::spool_internal {

// The operations `MemFileSystem` counts (reads are not counted).
enum class MemOp {
  kCreate,    // Open with O_CREAT of a file that did not exist, or O_TRUNC
  kWrite,     // PWrite
  kSync,      // DataSync, SyncMap
  kTruncate,  // Truncate
  kRename,
  kRemove,
  kMakeDir,
  kSyncDir,
};
const char* MemOpName(MemOp op);

// What happens to file data written but not fdatasynced at a power loss.
enum class DataLoss {
  kKeepAll,       // nothing is lost (a process crash: the page cache lives)
  kDropUnsynced,  // every file is as of its last fdatasync
  kTearLast,      // every unsynced write survives except each file's last
                  // one, of which only `tear_keep` bytes land; the rest of
                  // its extent is absent, zeros or garbage (`fill`)
};
enum class TornFill { kAbsent, kZeros, kGarbage };

struct PowerLossModel {
  DataLoss data = DataLoss::kDropUnsynced;
  // Directory entries created, renamed or removed since the directory's last
  // fsync are undone (a file never made durable in its directory vanishes;
  // a removed one comes back with its durable data).
  bool drop_unsynced_entries = true;
  uint64_t tear_keep = 0;  // kTearLast: bytes of the last write that land
  TornFill fill = TornFill::kAbsent;
  uint64_t garbage_seed = 1;
};

// Counting: every MakeDir, Remove, Rename, SyncDir, PWrite, DataSync and
// Truncate is counted, whether or not it then fails (ENOENT...); Open only
// when it creates the file or has O_TRUNC, Lock only when it creates the
// file. The crash point and the fault function apply to counted calls only,
// before anything changes; once crashed, and on a handle from before a power
// loss, calls are no longer counted.
//
// Paths are absolute; empty components and a trailing '/' are ignored, "."
// and ".." are refused (EINVAL). Remove of a directory fails with EISDIR
// (unlink(2)); Open of a directory with EISDIR. Locks are per file, like
// flock(2). The mode a file or directory is created with (by Open, MakeDir,
// or 0600 by Lock, as the POSIX one) is kept and reported by Stat; there is
// no umask.
//
// Handles share ownership of the state: one outliving its `MemFileSystem`,
// or opened before a `PowerLoss`, fails every call with EIO, and its
// destruction is harmless.
//
// Mappings (`FileHandle::Map`, not counted) are a buffer the handle owns,
// 8-byte aligned, filled from the file's current data. Stores into it are
// not seen by the file until one of these copies the pages the mapping
// changed (4096-byte pages, each one write, in page order, never past the
// file's current end) into the file's current data, what readers see:
//   - `SyncMap`, a counted kSync op, which, when it succeeds, also makes
//     the whole file durable (as `DataSync`); failing on a fault it copies
//     nothing and makes nothing durable (the crash point, if it triggers
//     there, copies as below but makes nothing durable either);
//   - the handle's destruction (munmap: the page cache keeps the stores, as
//     unsynced writes a power loss applies its model to);
//   - the instant the crash point triggers: every live mapping is copied
//     then, so a store made after the simulated process death is never
//     seen (nothing is copied again after a crash, at destruction either).
// A mapping of a handle from before a power loss is never copied again.
// The copies load the buffer 8 bytes at a time with relaxed atomics, so
// stores made with 8-byte atomics (from any thread) do not race with them.
// Mappings are not coherent with `PWrite`/`Truncate` or with each other:
// a page the mapping changed overwrites what another handle wrote there.
//
// Thread safety: thread-safe (one mutex).
class MemFileSystem : public FileSystem {
 public:
  // The errno to fail an operation with, or 0 to let it run. Called with
  // the operation, the path and the operation's index (1-based, counting
  // every counted operation so far, including this one). `path` is the
  // normalized path; for kRename the destination, for handle operations the
  // path the file was opened as. Runs with the file system's mutex held: it
  // must not call the `MemFileSystem`.
  using FaultFn =
      std::function<int(MemOp op, const std::string& path, uint64_t index)>;

  // "/" exists and is durable.
  MemFileSystem();
  ~MemFileSystem() override;
  MemFileSystem(const MemFileSystem&) = delete;
  MemFileSystem& operator=(const MemFileSystem&) = delete;

  // FileSystem.
  absl::StatusOr<std::unique_ptr<FileHandle>> Open(const std::string& path,
                                                   int flags,
                                                   int mode) override;
  absl::Status MakeDir(const std::string& path, int mode) override;
  absl::StatusOr<FileStat> Stat(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) override;
  absl::Status Remove(const std::string& path) override;
  absl::Status Rename(const std::string& from, const std::string& to) override;
  absl::Status SyncDir(const std::string& dir) override;
  absl::StatusOr<std::unique_ptr<FileHandle>> Lock(
      const std::string& path) override;

  // Counted operations so far (since construction; PowerLoss keeps it).
  uint64_t ops() const;
  // From the operation with index `n` on, every call (reads included)
  // fails with EIO and changes nothing: the process is dead. 0 disarms
  // (a crash that happened lasts until `PowerLoss`). If `n <= ops()` the
  // next counted operation crashes.
  void CrashAtOp(uint64_t n);
  bool crashed() const;
  void SetFault(FaultFn fn);
  // Total bytes of file data (sum of file sizes) the device holds; a write
  // or truncate that would grow past it fails with ENOSPC and changes
  // nothing. Default: unlimited. Space is held by every file that has a
  // name or a live handle (`used_bytes()`).
  void SetCapacity(uint64_t bytes);
  uint64_t used_bytes() const;

  // The power goes out: applies `model` to every file and directory, drops
  // every lock, and clears the crash point (open handles from before must
  // not be used again: every call on them fails with EIO). Afterwards
  // everything that exists is durable. Not counted.
  void PowerLoss(const PowerLossModel& model);

  // Test access, not counted and not subject to faults or the crash point.
  // Current contents of a file (what a reader sees) into `out`, or false
  // if there is no such file. Works while crashed.
  bool ReadForTest(const std::string& path, std::string* out) const;
  // Replaces a file's contents, durably (creating it, its entry and missing
  // parent directories, and making their entries durable). Aborts if a
  // file is in the way of a directory or a directory at `path`.
  void WriteForTest(const std::string& path, const std::string& data);
  // Every file path (not directories) that exists now, sorted.
  std::vector<std::string> FilesForTest() const;

 private:
  struct Inode;
  class Handle;
  friend class Handle;
  struct Impl;
  // Shared with every handle (see above). Never null.
  const std::shared_ptr<Impl> impl_;
};

}  // namespace fabric::spool_internal

#endif  // FABRIC_SPOOL_INTERNAL_MEM_FILE_SYSTEM_H_
