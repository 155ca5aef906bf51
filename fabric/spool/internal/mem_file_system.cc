// SPDX-License-Identifier: Apache-2.0
// `MemFileSystem` (mem_file_system.h): a tree of directories and inodes that
// keeps, beside what readers see, what a power loss would leave. One mutex
// guards everything. Handles share ownership of the state (`Impl`) and of
// their inode and remember the power-loss epoch they were opened in, so a
// handle from before a power loss, or outliving its file system, fails every
// call with EIO instead of dangling.
#include "fabric/spool/internal/mem_file_system.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "fabric/base/status_macros.h"
#include "fabric/spool/internal/file_util.h"

namespace fabric::spool_internal {
namespace {

constexpr uint64_t kRootDir = 1;
constexpr uint64_t kUnlimited = std::numeric_limits<uint64_t>::max();
// Larger offsets fail with EFBIG: keeps `offset + size` from overflowing and
// a stray offset from allocating the machine's memory.
constexpr uint64_t kMaxFileSize = uint64_t{1} << 32;
// A mapping reaches its file in pages of this size (mem_file_system.h).
constexpr size_t kPageBytes = 4096;

// Writes `bytes` at `offset` of `data`, zero-filling any hole. An empty write
// changes nothing, even past the end.
void WriteAt(std::string* data, uint64_t offset, absl::string_view bytes) {
  if (bytes.empty()) return;
  if (data->size() < offset + bytes.size()) {
    data->resize(offset + bytes.size(), '\0');
  }
  data->replace(offset, bytes.size(), bytes.data(), bytes.size());
}

// `n` pseudo-random bytes, the same for the same `seed` (splitmix64).
std::string Garbage(uint64_t seed, size_t n) {
  std::string out(n, '\0');
  uint64_t z = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i % 8 == 0) {
      z = (seed += 0x9e3779b97f4a7c15ULL);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      z ^= z >> 31;
    }
    out[i] = static_cast<char>(z >> (8 * (i % 8)));
  }
  return out;
}

// Splits an absolute path into its names ("/a//b/" -> {a, b}); false if it
// is relative or has "." or "..".
bool ParsePath(const std::string& path, std::vector<std::string>* parts) {
  if (path.empty() || path[0] != '/') return false;
  *parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  return std::none_of(parts->begin(), parts->end(), [](const std::string& p) {
    return p == "." || p == "..";
  });
}

}  // namespace

const char* MemOpName(MemOp op) {
  static constexpr const char* kNames[] = {"create",   "write",  "sync",
                                           "truncate", "rename", "remove",
                                           "mkdir",    "syncdir"};
  const auto i = static_cast<size_t>(op);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

// One file. Guarded by `Impl::mu`.
struct MemFileSystem::Inode {
  // A write (`bytes` at `offset`) or a truncate (to `offset` bytes).
  struct Change {
    bool write = false;
    uint64_t offset = 0;
    std::string bytes;
  };
  uint64_t id = 0;               // for per-file garbage
  uint32_t mode = 0644;          // as created (no umask)
  std::string data;              // what reads see
  std::string durable;           // as of the last successful DataSync
  std::vector<Change> unsynced;  // since then, in order
};

struct MemFileSystem::Impl {
  // A directory entry: a file, or (`dir` != 0) the directory with that id.
  struct Entry {
    std::shared_ptr<Inode> file;
    uint64_t dir = 0;
  };
  struct Dir {
    uint32_t mode = 0755;  // as created (no umask)
    std::map<std::string, Entry> live;
    std::map<std::string, Entry> durable;  // as of the last SyncDir
  };
  // Where a path leads in the live tree (see `Find`).
  struct Loc {
    std::string path;  // normalized when the path parses
    std::vector<std::string> parts;
    Dir* parent = nullptr;   // nullptr for "/"
    Entry* entry = nullptr;  // nullptr when missing (and for "/")
    bool root() const { return parts.empty(); }
    const std::string& name() const { return parts.back(); }
  };

  absl::Mutex mu;
  // Directories by id, so entries name them without owning them (the durable
  // entries may form cycles after unsynced directory renames). Directories
  // no longer reachable are dropped at the next power loss.
  std::map<uint64_t, Dir> dirs ABSL_GUARDED_BY(mu);
  uint64_t next_dir ABSL_GUARDED_BY(mu) = kRootDir + 1;
  uint64_t next_inode ABSL_GUARDED_BY(mu) = 1;
  uint64_t next_token ABSL_GUARDED_BY(mu) = 1;
  // Bumped by each power loss and by ~MemFileSystem: handles of an older
  // epoch are dead.
  uint64_t epoch ABSL_GUARDED_BY(mu) = 0;
  uint64_t ops ABSL_GUARDED_BY(mu) = 0;
  uint64_t crash_at ABSL_GUARDED_BY(mu) = 0;
  bool crashed ABSL_GUARDED_BY(mu) = false;
  FaultFn fault ABSL_GUARDED_BY(mu);
  uint64_t capacity ABSL_GUARDED_BY(mu) = kUnlimited;
  // Live handles (of this epoch) per inode, and each locked inode's holder.
  std::map<Inode*, int> open ABSL_GUARDED_BY(mu);
  std::map<Inode*, uint64_t> locks ABSL_GUARDED_BY(mu);

  // A handle's mapping (`Handle::Map`). The handle owns it and keeps the
  // inode alive; `mappings` lists those of live handles of this epoch.
  struct Mapping {
    Inode* inode = nullptr;
    uint64_t size = 0;
    // The memory handed out: 8-byte words, so it is aligned and can be
    // copied with 8-byte atomic loads.
    std::unique_ptr<uint64_t[]> words;
    std::string base;  // as of the mapping or its last copy into the file
    char* data() { return reinterpret_cast<char*>(words.get()); }
  };
  std::set<Mapping*> mappings ABSL_GUARDED_BY(mu);

  // Copies the pages `m` changed since its last copy into its file's current
  // data, each as one unsynced write, up to the file's current end.
  static void WriteBack(Mapping& m) {
    std::string now(m.size, '\0');
    for (uint64_t i = 0; i < m.size; i += 8) {
      // Relaxed: the writer's atomic stores need no ordering with this copy,
      // only to not be torn or reported as a race.
      const uint64_t word = __atomic_load_n(&m.words[i / 8], __ATOMIC_RELAXED);
      std::memcpy(now.data() + i, &word, std::min<uint64_t>(8, m.size - i));
    }
    Inode& inode = *m.inode;
    const uint64_t end = std::min<uint64_t>(m.size, inode.data.size());
    for (uint64_t page = 0; page < end; page += kPageBytes) {
      const uint64_t n = std::min<uint64_t>(kPageBytes, end - page);
      if (now.compare(page, n, m.base, page, n) == 0) continue;
      const absl::string_view bytes(now.data() + page, n);
      WriteAt(&inode.data, page, bytes);
      inode.unsynced.push_back({true, page, std::string(bytes)});
    }
    m.base = std::move(now);
  }

  // Fails (EIO) once the process has crashed.
  absl::Status Running(absl::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return crashed ? ErrnoStatus(EIO, what) : absl::OkStatus();
  }

  // Counts one operation and applies the crash point and the fault function.
  // An error ("`what`: strerror") fails the operation, which must then
  // change nothing.
  absl::Status Admit(MemOp op, const std::string& path, absl::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    FABRIC_RETURN_IF_ERROR(Running(what));  // a dead process: not counted
    const uint64_t index = ++ops;
    if (crash_at != 0 && index >= crash_at) {
      // The process dies here: what it stored into mappings so far reaches
      // the page cache, nothing it stores from now on does.
      crashed = true;
      for (Mapping* m : mappings) WriteBack(*m);
    }
    const int err = crashed ? EIO : fault ? fault(op, path, index) : 0;
    return err == 0 ? absl::OkStatus() : ErrnoStatus(err, what);
  }

  // Resolves `path` in the live tree, changing nothing: EINVAL (not
  // absolute, "." or ".."), ENOENT or ENOTDIR for a bad parent, else OK with
  // `loc` filled in (`loc->entry` null if the last name is free).
  absl::Status Find(const std::string& path, absl::string_view what, Loc* loc)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    loc->path = path;
    if (!ParsePath(path, &loc->parts)) return ErrnoStatus(EINVAL, what);
    loc->path = absl::StrCat("/", absl::StrJoin(loc->parts, "/"));
    if (loc->root()) return absl::OkStatus();
    Dir* dir = &dirs.at(kRootDir);
    for (size_t i = 0; i + 1 < loc->parts.size(); ++i) {
      auto it = dir->live.find(loc->parts[i]);
      if (it == dir->live.end()) return ErrnoStatus(ENOENT, what);
      if (it->second.dir == 0) return ErrnoStatus(ENOTDIR, what);
      dir = &dirs.at(it->second.dir);
    }
    loc->parent = dir;
    auto it = dir->live.find(loc->name());
    if (it != dir->live.end()) loc->entry = &it->second;
    return absl::OkStatus();
  }

  // The directory `loc` names, or nullptr (missing or a file).
  Dir* AsDir(const Loc& loc) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (loc.root()) return &dirs.at(kRootDir);
    if (loc.entry == nullptr || loc.entry->dir == 0) return nullptr;
    return &dirs.at(loc.entry->dir);
  }

  // Adds an empty file at `loc` (whose name is free) to the live entries.
  std::shared_ptr<Inode> NewFile(const Loc& loc, int mode)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto inode = std::make_shared<Inode>();
    inode->id = next_inode++;
    inode->mode = static_cast<uint32_t>(mode & 07777);
    loc.parent->live[loc.name()] = Entry{inode, 0};
    return inode;
  }

  // Adds every inode in the live tree under directory `id` to `out`.
  void CollectFiles(uint64_t id, std::set<Inode*>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (const auto& [name, entry] : dirs.at(id).live) {
      if (entry.dir != 0) {
        CollectFiles(entry.dir, out);
      } else {
        out->insert(entry.file.get());
      }
    }
  }

  // Bytes held: by files in the live tree and by files open through live
  // handles (removed but open, as in POSIX), each counted once.
  uint64_t Used() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::set<Inode*> held;
    CollectFiles(kRootDir, &held);
    for (const auto& [inode, count] : open) held.insert(inode);
    uint64_t used = 0;
    for (const Inode* inode : held) used += inode->data.size();
    return used;
  }

  // Fails with ENOSPC (or EFBIG) if `inode` may not grow to `size` bytes.
  absl::Status CheckGrowth(const Inode& inode, uint64_t size,
                           absl::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (size > kMaxFileSize) return ErrnoStatus(EFBIG, what);
    if (size <= inode.data.size() || capacity == kUnlimited) {
      return absl::OkStatus();
    }
    const uint64_t growth = size - inode.data.size();
    if (growth > capacity || Used() > capacity - growth) {
      return ErrnoStatus(ENOSPC, what);
    }
    return absl::OkStatus();
  }

  // Power loss, namespace part: makes the entries of directory `id` (and,
  // recursively, of those it holds) the ones that survive, its durable ones
  // when `drop` and its live ones otherwise, and makes them durable. A
  // directory reached a second time (possible only through unsynced
  // directory renames) keeps its first name in depth-first name order.
  void Settle(uint64_t id, bool drop, std::set<uint64_t>* reached)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    reached->insert(id);
    Dir& dir = dirs.at(id);
    if (drop) dir.live = dir.durable;
    for (auto it = dir.live.begin(); it != dir.live.end();) {
      const uint64_t sub = it->second.dir;
      if (sub != 0 && reached->count(sub) != 0) {
        it = dir.live.erase(it);
        continue;
      }
      if (sub != 0) Settle(sub, drop, reached);
      ++it;
    }
    dir.durable = dir.live;
  }

  // Releases what a live handle held: its open count and its lock, if it
  // still holds it.
  void Close(Inode* inode, uint64_t lock_token)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto it = open.find(inode);
    if (it != open.end() && --it->second == 0) open.erase(it);
    auto lock = locks.find(inode);
    if (lock_token != 0 && lock != locks.end() && lock->second == lock_token) {
      locks.erase(lock);
    }
  }

  std::unique_ptr<FileHandle> NewHandle(std::shared_ptr<Impl> self,
                                        std::shared_ptr<Inode> inode,
                                        const std::string& path, int flags,
                                        uint64_t lock_token)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Power loss, data part: what `inode` holds afterwards under `model`.
  static std::string Recover(const Inode& inode, const PowerLossModel& model);
};

class MemFileSystem::Handle final : public FileHandle {
 public:
  // REQUIRES: `impl->mu` held (the caller counted this handle as open).
  Handle(std::shared_ptr<Impl> impl, std::shared_ptr<Inode> inode,
         std::string path, int flags, uint64_t lock_token, uint64_t epoch)
      : impl_(std::move(impl)),
        inode_(std::move(inode)),
        path_(std::move(path)),
        readable_((flags & O_ACCMODE) != O_WRONLY),
        writable_((flags & O_ACCMODE) != O_RDONLY),
        lock_token_(lock_token),
        epoch_(epoch) {}

  ~Handle() override {
    absl::MutexLock lock(&impl_->mu);
    // A dead handle holds nothing: the power loss dropped its count and lock
    // (which may belong to a new holder by now).
    if (epoch_ != impl_->epoch) return;
    if (mapping_ != nullptr) {
      // munmap: the stores stay in the page cache, unless the process died
      // (the crash already copied what it had stored by then).
      impl_->mappings.erase(mapping_.get());
      if (!impl_->crashed) Impl::WriteBack(*mapping_);
    }
    impl_->Close(inode_.get(), lock_token_);
  }

  absl::Status PWrite(absl::string_view data, uint64_t offset,
                      absl::string_view path) override {
    absl::MutexLock lock(&impl_->mu);
    FABRIC_RETURN_IF_ERROR(Usable(path));
    FABRIC_RETURN_IF_ERROR(impl_->Admit(MemOp::kWrite, path_, path));
    if (!writable_) return ErrnoStatus(EBADF, path);
    if (data.empty()) return absl::OkStatus();  // even past the end
    if (offset > kMaxFileSize) return ErrnoStatus(EFBIG, path);
    FABRIC_RETURN_IF_ERROR(
        impl_->CheckGrowth(*inode_, offset + data.size(), path));
    WriteAt(&inode_->data, offset, data);
    inode_->unsynced.push_back({true, offset, std::string(data)});
    return absl::OkStatus();
  }

  absl::Status PRead(uint64_t offset, size_t n, std::string* out,
                     absl::string_view path) const override {
    absl::MutexLock lock(&impl_->mu);
    const std::string what = absl::StrCat("cannot read ", path);
    FABRIC_RETURN_IF_ERROR(Usable(what));
    if (!readable_) return ErrnoStatus(EBADF, what);
    const std::string& data = inode_->data;
    out->assign(offset < data.size() ? data.substr(offset, n) : "");
    return absl::OkStatus();
  }

  absl::Status DataSync(absl::string_view path) override {
    absl::MutexLock lock(&impl_->mu);
    const std::string what = absl::StrCat("fdatasync ", path);
    FABRIC_RETURN_IF_ERROR(Usable(what));
    FABRIC_RETURN_IF_ERROR(impl_->Admit(MemOp::kSync, path_, what));
    inode_->durable = inode_->data;
    inode_->unsynced.clear();
    return absl::OkStatus();
  }

  absl::Status Truncate(uint64_t size, absl::string_view path) override {
    absl::MutexLock lock(&impl_->mu);
    const std::string what = absl::StrCat("ftruncate ", path);
    FABRIC_RETURN_IF_ERROR(Usable(what));
    FABRIC_RETURN_IF_ERROR(impl_->Admit(MemOp::kTruncate, path_, what));
    if (!writable_) return ErrnoStatus(EINVAL, what);  // as Linux
    FABRIC_RETURN_IF_ERROR(impl_->CheckGrowth(*inode_, size, what));
    inode_->data.resize(size, '\0');
    inode_->unsynced.push_back({false, size, ""});
    return absl::OkStatus();
  }

  absl::StatusOr<uint64_t> Size(absl::string_view path) const override {
    absl::MutexLock lock(&impl_->mu);
    FABRIC_RETURN_IF_ERROR(Usable(path));
    return inode_->data.size();
  }

  absl::StatusOr<char*> Map(uint64_t size, absl::string_view path) override {
    absl::MutexLock lock(&impl_->mu);
    const std::string what = absl::StrCat("map ", path);
    FABRIC_RETURN_IF_ERROR(Usable(what));
    if (size == 0) return absl::InvalidArgumentError(what + ": empty mapping");
    if (mapping_ != nullptr) {
      return absl::FailedPreconditionError(what + ": already mapped");
    }
    if (!readable_ || !writable_) return ErrnoStatus(EACCES, what);  // mmap
    if (inode_->data.size() < size) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": the file has ", inode_->data.size(), " of ",
                       size, " bytes"));
    }
    auto m = std::make_unique<Impl::Mapping>();
    m->inode = inode_.get();
    m->size = size;
    m->words = std::make_unique<uint64_t[]>((size + 7) / 8);  // zeroed
    m->base = inode_->data.substr(0, size);
    std::memcpy(m->data(), m->base.data(), size);
    impl_->mappings.insert(m.get());
    mapping_ = std::move(m);
    return mapping_->data();
  }

  absl::Status SyncMap(absl::string_view path) override {
    absl::MutexLock lock(&impl_->mu);
    const std::string what = absl::StrCat("msync ", path);
    FABRIC_RETURN_IF_ERROR(Usable(what));
    if (mapping_ == nullptr) {
      return absl::FailedPreconditionError(what + ": not mapped");
    }
    FABRIC_RETURN_IF_ERROR(impl_->Admit(MemOp::kSync, path_, what));
    Impl::WriteBack(*mapping_);
    inode_->durable = inode_->data;
    inode_->unsynced.clear();
    return absl::OkStatus();
  }

 private:
  // Fails (EIO) if this handle is from before a power loss (or its file
  // system is gone) or the process has crashed.
  absl::Status Usable(absl::string_view what) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl_->mu) {
    if (epoch_ != impl_->epoch) return ErrnoStatus(EIO, what);
    return impl_->Running(what);
  }

  const std::shared_ptr<Impl> impl_;
  const std::shared_ptr<Inode> inode_;
  const std::string path_;  // as opened, normalized: for the fault function
  const bool readable_;
  const bool writable_;
  const uint64_t lock_token_;  // 0: not a lock handle
  const uint64_t epoch_;
  std::unique_ptr<Impl::Mapping> mapping_ ABSL_GUARDED_BY(impl_->mu);
};

std::unique_ptr<FileHandle> MemFileSystem::Impl::NewHandle(
    std::shared_ptr<Impl> self, std::shared_ptr<Inode> inode,
    const std::string& path, int flags, uint64_t lock_token) {
  ++open[inode.get()];
  return std::make_unique<Handle>(std::move(self), std::move(inode), path,
                                  flags, lock_token, epoch);
}

std::string MemFileSystem::Impl::Recover(const Inode& inode,
                                         const PowerLossModel& model) {
  switch (model.data) {
    case DataLoss::kKeepAll:
      return inode.data;
    case DataLoss::kDropUnsynced:
      return inode.durable;
    case DataLoss::kTearLast:
      break;
  }
  size_t last = inode.unsynced.size();  // the last write, if any
  for (size_t i = 0; i < inode.unsynced.size(); ++i) {
    if (inode.unsynced[i].write) last = i;
  }
  std::string data = inode.durable;
  for (size_t i = 0; i < inode.unsynced.size(); ++i) {
    const Inode::Change& change = inode.unsynced[i];
    if (!change.write) {
      data.resize(change.offset, '\0');
      continue;
    }
    if (i != last) {
      WriteAt(&data, change.offset, change.bytes);
      continue;
    }
    const size_t keep = static_cast<size_t>(
        std::min<uint64_t>(model.tear_keep, change.bytes.size()));
    WriteAt(&data, change.offset,
            absl::string_view(change.bytes).substr(0, keep));
    const size_t rest = change.bytes.size() - keep;
    if (model.fill == TornFill::kZeros) {
      WriteAt(&data, change.offset + keep, std::string(rest, '\0'));
    } else if (model.fill == TornFill::kGarbage) {
      // Per file, so two torn files do not hold the same bytes.
      const uint64_t seed =
          model.garbage_seed ^ (inode.id * 0x2545f4914f6cdd1dULL);
      WriteAt(&data, change.offset + keep, Garbage(seed, rest));
    }
  }
  return data;
}

MemFileSystem::MemFileSystem() : impl_(std::make_shared<Impl>()) {
  absl::MutexLock lock(&impl_->mu);
  impl_->dirs[kRootDir];
}

MemFileSystem::~MemFileSystem() {
  absl::MutexLock lock(&impl_->mu);
  ++impl_->epoch;  // handles outliving us fail with EIO
  impl_->mappings.clear();
  impl_->open.clear();
  impl_->locks.clear();
}

absl::StatusOr<std::unique_ptr<FileHandle>> MemFileSystem::Open(
    const std::string& path, int flags, int mode) {
  Impl& s = *impl_;
  absl::MutexLock lock(&s.mu);
  const std::string what = absl::StrCat("cannot open ", path);
  FABRIC_RETURN_IF_ERROR(s.Running(what));
  Impl::Loc loc;
  FABRIC_RETURN_IF_ERROR(s.Find(path, what, &loc));
  if (s.AsDir(loc) != nullptr) return ErrnoStatus(EISDIR, what);
  const bool create = loc.entry == nullptr;
  if (create && (flags & O_CREAT) == 0) return ErrnoStatus(ENOENT, what);
  const bool truncate = (flags & O_TRUNC) != 0;
  if (create || truncate) {
    FABRIC_RETURN_IF_ERROR(s.Admit(MemOp::kCreate, loc.path, what));
  }
  std::shared_ptr<Inode> inode =
      create ? s.NewFile(loc, mode) : loc.entry->file;
  if (!create && truncate) {  // an unsynced truncate, even if already empty
    inode->data.clear();
    inode->unsynced.push_back({false, 0, ""});
  }
  return s.NewHandle(impl_, std::move(inode), loc.path, flags, 0);
}

// The namespace operations below are counted before they are checked, like
// a system call that fails: `Find` first (it changes nothing) to give
// `Admit` the normalized path, then its error.

absl::Status MemFileSystem::MakeDir(const std::string& path, int mode) {
  Impl& s = *impl_;
  absl::MutexLock lock(&s.mu);
  const std::string what = absl::StrCat("cannot create ", path);
  Impl::Loc loc;
  const absl::Status found = s.Find(path, what, &loc);
  FABRIC_RETURN_IF_ERROR(s.Admit(MemOp::kMakeDir, loc.path, what));
  FABRIC_RETURN_IF_ERROR(found);
  if (loc.root() || loc.entry != nullptr) {
    return absl::AlreadyExistsError(absl::StrCat(path, " exists"));
  }
  const uint64_t id = s.next_dir++;
  s.dirs[id].mode = static_cast<uint32_t>(mode & 07777);
  loc.parent->live[loc.name()] = Impl::Entry{nullptr, id};
  return absl::OkStatus();
}

absl::StatusOr<FileStat> MemFileSystem::Stat(const std::string& path) {
  Impl& s = *impl_;
  absl::MutexLock lock(&s.mu);
  FABRIC_RETURN_IF_ERROR(s.Running(path));
  Impl::Loc loc;
  FABRIC_RETURN_IF_ERROR(s.Find(path, path, &loc));
  if (const Impl::Dir* d = s.AsDir(loc)) return FileStat{true, 0, d->mode};
  if (loc.entry == nullptr) return ErrnoStatus(ENOENT, path);
  return FileStat{false, loc.entry->file->data.size(), loc.entry->file->mode};
}

absl::StatusOr<std::vector<std::string>> MemFileSystem::ListDir(
    const std::string& dir) {
  Impl& s = *impl_;
  absl::MutexLock lock(&s.mu);
  const std::string what = absl::StrCat("cannot list ", dir);
  FABRIC_RETURN_IF_ERROR(s.Running(what));
  Impl::Loc loc;
  FABRIC_RETURN_IF_ERROR(s.Find(dir, what, &loc));
  const Impl::Dir* d = s.AsDir(loc);
  if (d == nullptr) {
    return ErrnoStatus(loc.entry == nullptr ? ENOENT : ENOTDIR, what);
  }
  std::vector<std::string> names;
  for (const auto& [name, entry] : d->live) names.push_back(name);
  return names;
}

absl::Status MemFileSystem::Remove(const std::string& path) {
  Impl& s = *impl_;
  absl::MutexLock lock(&s.mu);
  const std::string what = absl::StrCat("cannot remove ", path);
  Impl::Loc loc;
  const absl::Status found = s.Find(path, what, &loc);
  FABRIC_RETURN_IF_ERROR(s.Admit(MemOp::kRemove, loc.path, what));
  FABRIC_RETURN_IF_ERROR(found);
  if (s.AsDir(loc) != nullptr) return ErrnoStatus(EISDIR, what);  // unlink(2)
  if (loc.entry == nullptr) return ErrnoStatus(ENOENT, what);
  loc.parent->live.erase(loc.name());
  return absl::OkStatus();
}

absl::Status MemFileSystem::Rename(const std::string& from,
                                   const std::string& to) {
  Impl& s = *impl_;
  absl::MutexLock lock(&s.mu);
  const std::string what = absl::StrCat("rename ", from, " to ", to);
  Impl::Loc src;
  Impl::Loc dst;
  const absl::Status src_found = s.Find(from, what, &src);
  const absl::Status dst_found = s.Find(to, what, &dst);
  FABRIC_RETURN_IF_ERROR(s.Admit(MemOp::kRename, dst.path, what));
  FABRIC_RETURN_IF_ERROR(src_found);
  FABRIC_RETURN_IF_ERROR(dst_found);
  if (src.root() || dst.root()) return ErrnoStatus(EBUSY, what);
  if (src.entry == nullptr) return ErrnoStatus(ENOENT, what);
  const Impl::Entry moved = *src.entry;
  if (dst.entry != nullptr && dst.entry->file == moved.file &&
      dst.entry->dir == moved.dir) {
    return absl::OkStatus();  // the same file or directory: nothing to do
  }
  if (moved.dir != 0) {
    // Not into itself; only over a missing name or an empty directory.
    if (dst.parts.size() > src.parts.size() &&
        std::equal(src.parts.begin(), src.parts.end(), dst.parts.begin())) {
      return ErrnoStatus(EINVAL, what);
    }
    const Impl::Dir* over = s.AsDir(dst);
    if (dst.entry != nullptr && over == nullptr) {
      return ErrnoStatus(ENOTDIR, what);
    }
    if (over != nullptr && !over->live.empty()) {
      return ErrnoStatus(ENOTEMPTY, what);
    }
  } else if (s.AsDir(dst) != nullptr) {
    return ErrnoStatus(EISDIR, what);
  }
  src.parent->live.erase(src.name());
  dst.parent->live[dst.name()] = moved;
  return absl::OkStatus();
}

absl::Status MemFileSystem::SyncDir(const std::string& dir) {
  Impl& s = *impl_;
  absl::MutexLock lock(&s.mu);
  const std::string what = absl::StrCat("fsync ", dir);
  Impl::Loc loc;
  const absl::Status found = s.Find(dir, what, &loc);
  FABRIC_RETURN_IF_ERROR(s.Admit(MemOp::kSyncDir, loc.path, what));
  FABRIC_RETURN_IF_ERROR(found);
  Impl::Dir* d = s.AsDir(loc);
  if (d == nullptr) {
    return ErrnoStatus(loc.entry == nullptr ? ENOENT : ENOTDIR, what);
  }
  d->durable = d->live;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<FileHandle>> MemFileSystem::Lock(
    const std::string& path) {
  Impl& s = *impl_;
  absl::MutexLock lock(&s.mu);
  const std::string what = absl::StrCat("cannot open ", path);
  FABRIC_RETURN_IF_ERROR(s.Running(what));
  Impl::Loc loc;
  FABRIC_RETURN_IF_ERROR(s.Find(path, what, &loc));
  if (s.AsDir(loc) != nullptr) return ErrnoStatus(EISDIR, what);
  std::shared_ptr<Inode> inode;
  if (loc.entry != nullptr) {
    inode = loc.entry->file;
  } else {
    FABRIC_RETURN_IF_ERROR(s.Admit(MemOp::kCreate, loc.path, what));
    inode = s.NewFile(loc, 0600);  // as the POSIX one
  }
  // Like flock(2), the lock is on the file, not on the name.
  if (s.locks.count(inode.get()) != 0) return absl::FailedPreconditionError("");
  const uint64_t token = s.next_token++;
  s.locks[inode.get()] = token;
  return s.NewHandle(impl_, std::move(inode), loc.path, O_RDWR, token);
}

uint64_t MemFileSystem::ops() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->ops;
}

void MemFileSystem::CrashAtOp(uint64_t n) {
  absl::MutexLock lock(&impl_->mu);
  impl_->crash_at = n;
}

bool MemFileSystem::crashed() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->crashed;
}

void MemFileSystem::SetFault(FaultFn fn) {
  absl::MutexLock lock(&impl_->mu);
  impl_->fault = std::move(fn);
}

void MemFileSystem::SetCapacity(uint64_t bytes) {
  absl::MutexLock lock(&impl_->mu);
  impl_->capacity = bytes;
}

uint64_t MemFileSystem::used_bytes() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->Used();
}

void MemFileSystem::PowerLoss(const PowerLossModel& model) {
  Impl& s = *impl_;
  absl::MutexLock lock(&s.mu);
  ++s.epoch;  // every handle from before is dead
  // The process was running (a crash already copied them): what it stored
  // into mappings is in the page cache, unsynced, for the model to judge.
  if (!s.crashed) {
    for (Impl::Mapping* m : s.mappings) Impl::WriteBack(*m);
  }
  s.mappings.clear();
  s.open.clear();
  s.locks.clear();
  s.crashed = false;
  s.crash_at = 0;
  std::set<uint64_t> reached;
  s.Settle(kRootDir, model.drop_unsynced_entries, &reached);
  for (auto it = s.dirs.begin(); it != s.dirs.end();) {
    it = reached.count(it->first) != 0 ? std::next(it) : s.dirs.erase(it);
  }
  // Per inode, once, even if it now has two names.
  std::set<Inode*> files;
  s.CollectFiles(kRootDir, &files);
  for (Inode* inode : files) {
    inode->data = Impl::Recover(*inode, model);
    inode->durable = inode->data;
    inode->unsynced.clear();
  }
}

bool MemFileSystem::ReadForTest(const std::string& path,
                                std::string* out) const {
  Impl& s = *impl_;
  absl::MutexLock lock(&s.mu);
  Impl::Loc loc;
  if (!s.Find(path, "", &loc).ok() || loc.entry == nullptr ||
      loc.entry->file == nullptr) {
    return false;
  }
  *out = loc.entry->file->data;
  return true;
}

void MemFileSystem::WriteForTest(const std::string& path,
                                 const std::string& data) {
  Impl& s = *impl_;
  absl::MutexLock lock(&s.mu);
  auto die = [&path](const char* why) {
    std::fprintf(stderr, "WriteForTest(%s): %s\n", path.c_str(), why);
    std::abort();
  };
  std::vector<std::string> parts;
  if (!ParsePath(path, &parts) || parts.empty()) die("not a file path");
  Impl::Dir* dir = &s.dirs.at(kRootDir);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    Impl::Entry& entry = dir->live[parts[i]];
    if (entry.file != nullptr) die("a file is in the way");
    if (entry.dir == 0) {
      entry.dir = s.next_dir++;
      s.dirs[entry.dir];
    }
    dir->durable[parts[i]] = entry;
    dir = &s.dirs.at(entry.dir);
  }
  Impl::Entry& entry = dir->live[parts.back()];
  if (entry.dir != 0) die("a directory is in the way");
  if (entry.file == nullptr) {
    entry.file = std::make_shared<Inode>();
    entry.file->id = s.next_inode++;
  }
  dir->durable[parts.back()] = entry;
  entry.file->data = data;
  entry.file->durable = data;
  entry.file->unsynced.clear();
}

std::vector<std::string> MemFileSystem::FilesForTest() const {
  Impl& s = *impl_;
  absl::MutexLock lock(&s.mu);
  std::vector<std::string> files;
  std::vector<std::pair<std::string, uint64_t>> todo = {{"", kRootDir}};
  while (!todo.empty()) {
    auto [prefix, id] = todo.back();
    todo.pop_back();
    for (const auto& [name, entry] : s.dirs.at(id).live) {
      std::string path = absl::StrCat(prefix, "/", name);
      if (entry.dir != 0) {
        todo.emplace_back(std::move(path), entry.dir);
      } else {
        files.push_back(std::move(path));
      }
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace fabric::spool_internal
