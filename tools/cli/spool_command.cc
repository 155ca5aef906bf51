// SPDX-License-Identifier: Apache-2.0
// `fabric spool inspect|verify DIR` (read-only scans) and `fabric dlq
// list|replay|purge DIR` (dead letters of a producer's spool). List and the
// scans never change the spool; replay and purge open it, so they fail
// while a producer holds it.
#include <sys/stat.h>

#include <cstdio>
#include <set>

#include "absl/strings/str_cat.h"
#include "fabric/base/log.h"
#include "fabric/base/status_macros.h"
#include "fabric/spool/spool.h"
#include "tools/cli/commands.h"
#include "tools/cli/output.h"

namespace fabric::cli {
namespace {

constexpr absl::Duration kFlushTimeout = absl::Seconds(30);

void Print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// A spool verb's DIR must exist: opening a missing one would create it.
absl::Status CheckSpoolDir(const std::string& dir) {
  struct stat st;
  if (dir.empty() || stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    // Not a usage error: the command line is fine, the directory is not.
    return absl::NotFoundError(
        absl::StrCat("no spool at '", dir, "': not a directory"));
  }
  return absl::OkStatus();
}

absl::StatusOr<SpoolReport> ScanDir(const CommonFlags& common,
                                    const std::string& dir) {
  FABRIC_RETURN_IF_ERROR(ApplyLogLevel(common));
  FABRIC_RETURN_IF_ERROR(CheckSpoolDir(dir));
  absl::StatusOr<SpoolReport> report = Spool::Scan(dir);
  if (!report.ok()) {
    return Annotate(report.status(), absl::StrCat("scanning spool ", dir));
  }
  return report;
}

// Opens the spool at `dir` for writing (its queue is read from a scan).
absl::StatusOr<std::unique_ptr<Spool>> OpenForWrite(const CommonFlags& common,
                                                    const std::string& dir) {
  FABRIC_ASSIGN_OR_RETURN(SpoolReport report, ScanDir(common, dir));
  SpoolOptions options;
  options.dir = dir;
  options.queue = report.queue;
  absl::StatusOr<std::unique_ptr<Spool>> spool = Spool::Open(options);
  if (!spool.ok()) {
    if (spool.status().code() == absl::StatusCode::kFailedPrecondition) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot open spool ", dir,
          " (is a producer running on it?): ", spool.status().message()));
    }
    return Annotate(spool.status(), absl::StrCat("opening spool ", dir));
  }
  return spool;
}

// Returns kNotFound naming the first of `seqs` that is no dead letter.
absl::Status CheckDeadSeqs(const Spool& spool, const std::string& dir,
                           const std::vector<uint64_t>& seqs) {
  std::set<uint64_t> dead;
  for (const DeadLetter& d : spool.DeadLetters()) dead.insert(d.task.seq);
  for (uint64_t seq : seqs) {
    if (dead.count(seq) == 0) {
      return absl::NotFoundError(
          absl::StrCat("spool ", dir, " has no dead letter with seq ", seq));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunSpoolInspect(const CommonFlags& common,
                             const SpoolFlags& flags) {
  FABRIC_ASSIGN_OR_RETURN(SpoolReport report, ScanDir(common, flags.dir));
  Print(FormatSpoolReport(flags.dir, report, flags.json));
  return absl::OkStatus();
}

absl::Status RunSpoolVerify(const CommonFlags& common,
                            const SpoolFlags& flags) {
  FABRIC_ASSIGN_OR_RETURN(SpoolReport report, ScanDir(common, flags.dir));
  Print(FormatSpoolVerify(flags.dir, report, flags.json));
  if (report.corrupt.empty() && report.torn_tail_bytes == 0) {
    return absl::OkStatus();
  }
  const size_t problems =
      report.corrupt.size() + (report.torn_tail_bytes > 0 ? 1 : 0);
  return absl::DataLossError(absl::StrCat("spool ", flags.dir, " has ",
                                          problems, " problem",
                                          problems == 1 ? "" : "s"));
}

absl::Status RunDlqList(const CommonFlags& common, const DlqFlags& flags) {
  FABRIC_RETURN_IF_ERROR(ApplyLogLevel(common));
  FABRIC_RETURN_IF_ERROR(CheckSpoolDir(flags.dir));
  absl::StatusOr<std::vector<DeadLetter>> dead = Spool::ScanDead(flags.dir);
  if (!dead.ok()) {
    return Annotate(dead.status(),
                    absl::StrCat("reading dead letters of ", flags.dir));
  }
  const std::set<uint64_t> wanted(flags.seqs.begin(), flags.seqs.end());
  std::string out;
  for (const DeadLetter& d : *dead) {
    if (!wanted.empty() && wanted.count(d.task.seq) == 0) continue;
    absl::StrAppend(&out, FormatDeadLetter(d, flags.json), "\n");
  }
  Print(out);
  return absl::OkStatus();
}

absl::Status RunDlqReplay(const CommonFlags& common, const DlqFlags& flags) {
  FABRIC_ASSIGN_OR_RETURN(std::unique_ptr<Spool> spool,
                          OpenForWrite(common, flags.dir));
  FABRIC_RETURN_IF_ERROR(CheckDeadSeqs(*spool, flags.dir, flags.seqs));
  absl::StatusOr<std::vector<SpooledTask>> tasks =
      spool->ReplayDead(flags.seqs);
  if (!tasks.ok()) {
    return Annotate(tasks.status(),
                    absl::StrCat("replaying dead letters of ", flags.dir));
  }
  FABRIC_RETURN_IF_ERROR(Annotate(spool->Flush(kFlushTimeout),
                                  absl::StrCat("syncing spool ", flags.dir)));
  const std::string queue = spool->recovery().queue;
  spool.reset();
  Print(absl::StrCat("replayed ", tasks->size(), " dead letters into ",
                     flags.dir, "; deliver them with: fabric push ", queue,
                     " --spool ", flags.dir, " --wait-acked\n"));
  return absl::OkStatus();
}

absl::Status RunDlqPurge(const CommonFlags& common, const DlqFlags& flags) {
  FABRIC_ASSIGN_OR_RETURN(std::unique_ptr<Spool> spool,
                          OpenForWrite(common, flags.dir));
  FABRIC_RETURN_IF_ERROR(CheckDeadSeqs(*spool, flags.dir, flags.seqs));
  absl::StatusOr<size_t> purged = spool->PurgeDead(flags.seqs);
  if (!purged.ok()) {
    return Annotate(purged.status(),
                    absl::StrCat("purging dead letters of ", flags.dir));
  }
  FABRIC_RETURN_IF_ERROR(Annotate(spool->Flush(kFlushTimeout),
                                  absl::StrCat("syncing spool ", flags.dir)));
  spool.reset();
  Print(
      absl::StrCat("purged ", *purged, " dead letters from ", flags.dir, "\n"));
  return absl::OkStatus();
}

}  // namespace fabric::cli
