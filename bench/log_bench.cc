// SPDX-License-Identifier: Apache-2.0
// log_bench: raw append throughput of the append log under the spool and
// the topic log (docs/spool.md section 6), next to what the disk under
// /tmp does on its own in the same run:
//   - fdatasync/s: 128-byte pwrite + fdatasync, one after the other;
//   - sequential 128-byte writes/s: pwrite one record after the other, no
//     sync (the most a log that writes every record on its own could do);
//   - spool and topic log appends/s at 100-byte bodies under each fsync
//     policy: one thread appends, the run ends when `on_durable` has
//     confirmed the last one.
//
//   log_bench [--count 500000] [--size 100] [--seconds 2]
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "fabric/spool/spool.h"
#include "fabric/spool/topic_log.h"

namespace fabric::bench {
namespace {

struct Flags {
  int count = 500000;
  int size = 100;
  double seconds = 2;
};

std::string TempDir() {
  char tmpl[] = "/tmp/fabric-logbench-XXXXXX";
  const char* dir = mkdtemp(tmpl);
  if (dir == nullptr) {
    std::perror("mkdtemp");
    std::exit(1);
  }
  return dir;
}

void RemoveDir(const std::string& dir) {
  const std::string rm = absl::StrCat("rm -rf '", dir, "'");
  if (std::system(rm.c_str()) != 0) {
    std::fprintf(stderr, "log_bench: could not remove %s\n", dir.c_str());
  }
}

// Operations per second of `op` run back to back for `seconds`.
template <typename Op>
double Rate(double seconds, Op op) {
  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Seconds(seconds);
  uint64_t n = 0;
  while (true) {
    for (int i = 0; i < 64; ++i) {
      if (!op(n)) return 0;
      ++n;
    }
    if (absl::Now() >= end) break;
  }
  return static_cast<double>(n) / absl::ToDoubleSeconds(absl::Now() - start);
}

// The disk alone: 128-byte records with and without an fdatasync each.
void DiskLimits(const Flags& f, double* syncs, double* writes) {
  const std::string dir = TempDir();
  const std::string path = dir + "/raw";
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    std::perror("open");
    std::exit(1);
  }
  const std::string record(128, 'r');
  *syncs = Rate(f.seconds, [&](uint64_t i) {
    return pwrite(fd, record.data(), record.size(),
                  static_cast<off_t>(i * record.size())) ==
               static_cast<ssize_t>(record.size()) &&
           fdatasync(fd) == 0;
  });
  if (ftruncate(fd, 0) != 0) std::perror("ftruncate");
  *writes = Rate(f.seconds, [&](uint64_t i) {
    return pwrite(fd, record.data(), record.size(),
                  static_cast<off_t>(i * record.size())) ==
           static_cast<ssize_t>(record.size());
  });
  close(fd);
  RemoveDir(dir);
}

// Waits until `durable` reaches `target` (or the log failed).
class Confirmed {
 public:
  void Set(uint64_t seq) {
    absl::MutexLock l(&mu_);
    if (seq > seq_) seq_ = seq;
  }
  void Fail() {
    absl::MutexLock l(&mu_);
    failed_ = true;
  }
  bool WaitFor(uint64_t target) {
    absl::MutexLock l(&mu_);
    auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return seq_ >= target || failed_;
    };
    mu_.Await(absl::Condition(&done));
    return !failed_;
  }

 private:
  absl::Mutex mu_;
  uint64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
};

// Appends `count` bodies through `append` and waits until `confirmed`
// covers the last; appends per second, 0 if the log failed.
double TimedAppends(int count, Confirmed& confirmed,
                    const std::function<absl::StatusOr<uint64_t>()>& append) {
  const absl::Time start = absl::Now();
  uint64_t last = 0;
  for (int i = 0; i < count; ++i) {
    absl::StatusOr<uint64_t> seq = append();
    if (!seq.ok()) {
      std::fprintf(stderr, "log_bench: %s\n", seq.status().ToString().c_str());
      std::exit(1);
    }
    last = *seq;
  }
  const bool ok = confirmed.WaitFor(last);
  const double rate = count / absl::ToDoubleSeconds(absl::Now() - start);
  return ok ? rate : 0;
}

[[noreturn]] void Die(const absl::Status& status) {
  std::fprintf(stderr, "log_bench: %s\n", status.ToString().c_str());
  std::exit(1);
}

// kAlways is bound by fdatasync: fewer appends.
int Count(const Flags& f, FsyncPolicy policy) {
  return policy == FsyncPolicy::kAlways ? f.count / 50 : f.count;
}

double SpoolAppends(const Flags& f, FsyncPolicy policy) {
  const std::string dir = TempDir();
  Confirmed confirmed;
  SpoolOptions o;
  o.dir = dir;
  o.queue = "bench";
  o.fsync = policy;
  o.max_bytes = uint64_t{64} << 30;
  o.on_durable = [&](uint64_t seq) { confirmed.Set(seq); };
  o.on_error = [&](const absl::Status&) { confirmed.Fail(); };
  absl::StatusOr<std::unique_ptr<Spool>> spool = Spool::Open(o);
  if (!spool.ok()) Die(spool.status());
  const std::string body(static_cast<size_t>(f.size), 'b');
  const double rate = TimedAppends(Count(f, policy), confirmed,
                                   [&] { return (*spool)->Append({}, body); });
  spool->reset();
  RemoveDir(dir);
  return rate;
}

double TopicAppends(const Flags& f, FsyncPolicy policy) {
  const std::string dir = TempDir();
  Confirmed confirmed;
  TopicLogOptions o;
  o.dir = dir;
  o.topic = "bench";
  o.fsync = policy;
  o.retention_bytes = uint64_t{64} << 30;
  o.on_durable = [&](uint64_t seq) { confirmed.Set(seq); };
  o.on_error = [&](const absl::Status&) { confirmed.Fail(); };
  absl::StatusOr<std::unique_ptr<TopicLog>> log = TopicLog::Open(o);
  if (!log.ok()) Die(log.status());
  const std::string body(static_cast<size_t>(f.size), 'b');
  const double rate = TimedAppends(Count(f, policy), confirmed, [&] {
    return (*log)->Append(absl::Now(), {}, body);
  });
  log->reset();
  RemoveDir(dir);
  return rate;
}

}  // namespace
}  // namespace fabric::bench

int main(int argc, char** argv) {
  using namespace fabric;
  using namespace fabric::bench;
  InitBenchProcess();
  CLI::App app("Append throughput of the spool and topic log vs the disk");
  Flags f;
  app.add_option("--count", f.count, "appends per run")
      ->check(CLI::Range(1000, kMaxFlag));
  app.add_option("--size", f.size, "body bytes")->check(CLI::Range(1, 1 << 20));
  app.add_option("--seconds", f.seconds, "seconds per disk measurement")
      ->check(CLI::Range(0.1, 60.0));
  if (int code = ParseBenchFlags(app, argc, argv); code >= 0) return code;

  double syncs = 0, writes = 0;
  DiskLimits(f, &syncs, &writes);
  std::printf("%-44s %12s\n", "what", "per second");
  std::printf("%-44s %12.0f\n", "disk: 128 B pwrite + fdatasync", syncs);
  std::printf("%-44s %12.0f\n", "disk: sequential 128 B pwrite", writes);
  for (FsyncPolicy p : {FsyncPolicy::kBatch, FsyncPolicy::kInterval,
                        FsyncPolicy::kNone, FsyncPolicy::kAlways}) {
    const double spool = SpoolAppends(f, p);
    std::printf("%-44s %12.0f  (%.0f%% of sequential writes)\n",
                absl::StrCat("spool appends, fsync=", FsyncPolicyName(p), ", ",
                             f.size, " B")
                    .c_str(),
                spool, 100 * spool / writes);
  }
  for (FsyncPolicy p : {FsyncPolicy::kBatch, FsyncPolicy::kNone}) {
    const double topic = TopicAppends(f, p);
    std::printf("%-44s %12.0f  (%.0f%% of sequential writes)\n",
                absl::StrCat("topic log appends, fsync=", FsyncPolicyName(p),
                             ", ", f.size, " B")
                    .c_str(),
                topic, 100 * topic / writes);
  }
  return 0;
}
