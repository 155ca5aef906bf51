// SPDX-License-Identifier: Apache-2.0
// `fabric::Spool`: option checks, locking the directory, recovery, and the
// forwarding to `Spool::Impl` (fabric/spool/internal/spool_impl.h).
#include "fabric/spool/spool.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "fabric/base/status_macros.h"
#include "fabric/spool/internal/file_util.h"
#include "fabric/spool/internal/recovery.h"
#include "fabric/spool/internal/spool_impl.h"

namespace fabric {
namespace {

using spool_internal::File;
using spool_internal::Recovered;
using spool_internal::RecoveryMode;

constexpr uint64_t kMinSegmentBytes = 4096;
constexpr uint64_t kMaxSegmentBytes = uint64_t{4} << 30;

absl::Status ValidateOptions(const SpoolOptions& options) {
  if (options.dir.empty()) {
    return absl::InvalidArgumentError("spool dir must not be empty");
  }
  if (options.queue.empty()) {
    return absl::InvalidArgumentError("spool queue must not be empty");
  }
  if (options.max_bytes == 0) {
    return absl::InvalidArgumentError("spool max_bytes must be positive");
  }
  if (options.segment_bytes < kMinSegmentBytes ||
      options.segment_bytes > kMaxSegmentBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("spool segment_bytes must be in [", kMinSegmentBytes, ", ",
                     kMaxSegmentBytes, "], got ", options.segment_bytes));
  }
  if (options.fsync == FsyncPolicy::kInterval &&
      (options.fsync_interval <= absl::ZeroDuration() ||
       options.fsync_interval == absl::InfiniteDuration())) {
    return absl::InvalidArgumentError(
        "spool fsync_interval must be positive and finite");
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view FsyncPolicyName(FsyncPolicy policy) {
  switch (policy) {
    case FsyncPolicy::kAlways:
      return "always";
    case FsyncPolicy::kBatch:
      return "batch";
    case FsyncPolicy::kInterval:
      return "interval";
    case FsyncPolicy::kNone:
      return "none";
    default:
      return "unknown";
  }
}

std::string EscapeDirName(absl::string_view name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    if (absl::ascii_isalnum(c) || c == '_' || c == '-' || (c == '.' && i > 0)) {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

absl::StatusOr<FsyncPolicy> ParseFsyncPolicy(absl::string_view name) {
  for (FsyncPolicy policy : {FsyncPolicy::kAlways, FsyncPolicy::kBatch,
                             FsyncPolicy::kInterval, FsyncPolicy::kNone}) {
    if (name == FsyncPolicyName(policy)) return policy;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown fsync policy '", name,
                   "' (want always, batch, interval or none)"));
}

absl::StatusOr<std::unique_ptr<Spool>> Spool::Open(SpoolOptions options) {
  FABRIC_RETURN_IF_ERROR(ValidateOptions(options));
  if (options.shared_files == SharedFiles::kRefuse) {
    FABRIC_RETURN_IF_ERROR(
        spool_internal::CheckOwnerOnlyTree(options.dir, "spool"));
  }
  FABRIC_RETURN_IF_ERROR(spool_internal::MakeDirs(options.dir));
  FABRIC_ASSIGN_OR_RETURN(File lock,
                          spool_internal::LockDirectory(options.dir, "spool"));
  FABRIC_ASSIGN_OR_RETURN(
      Recovered recovered,
      spool_internal::Recover(options.dir, RecoveryMode::kOpen, options.queue));
  const uint64_t active_number = recovered.last_segment + 1;
  FABRIC_ASSIGN_OR_RETURN(
      File active,
      spool_internal::CreateActiveSegment(
          options.dir, recovered.meta.producer_id, recovered.last_segment,
          recovered.next_seq, recovered.next_lsn));
  auto impl = std::make_unique<Impl>(std::move(options), std::move(lock),
                                     std::move(recovered), std::move(active),
                                     active_number);
  impl->Start();
  return std::unique_ptr<Spool>(new Spool(std::move(impl)));
}

absl::StatusOr<SpoolReport> Spool::Scan(absl::string_view dir) {
  FABRIC_ASSIGN_OR_RETURN(
      Recovered recovered,
      spool_internal::Recover(std::string(dir), RecoveryMode::kScan, ""));
  return std::move(recovered.report);
}

absl::StatusOr<std::vector<DeadLetter>> Spool::ScanDead(absl::string_view dir) {
  FABRIC_ASSIGN_OR_RETURN(
      Recovered recovered,
      spool_internal::Recover(std::string(dir), RecoveryMode::kScan, ""));
  std::vector<DeadLetter> letters;
  letters.reserve(recovered.dead.size());
  for (auto& [seq, dead] : recovered.dead) letters.push_back(std::move(dead));
  return letters;
}

Spool::Spool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Spool::~Spool() = default;

const NodeId& Spool::producer_id() const { return impl_->producer_id(); }
const SpoolReport& Spool::recovery() const { return impl_->recovery(); }
std::vector<SpooledTask> Spool::TakePending() { return impl_->TakePending(); }
std::vector<DeadLetter> Spool::DeadLetters() const {
  return impl_->DeadLetters();
}
absl::StatusOr<uint64_t> Spool::Append(const Headers& headers,
                                       absl::string_view body) {
  return impl_->Append(headers, body);
}
void Spool::Ack(uint64_t seq) { impl_->Ack(seq); }
absl::Status Spool::AddDead(const DeadLetter& dead) {
  return impl_->AddDead(dead);
}
absl::StatusOr<std::vector<SpooledTask>> Spool::ReplayDead(
    const std::vector<uint64_t>& seqs) {
  return impl_->ReplayDead(seqs);
}
absl::StatusOr<size_t> Spool::PurgeDead(const std::vector<uint64_t>& seqs) {
  return impl_->PurgeDead(seqs);
}
absl::Status Spool::Flush(absl::Duration timeout) {
  return impl_->Flush(timeout);
}
uint64_t Spool::live_bytes() const { return impl_->live_bytes(); }
uint64_t Spool::max_bytes() const { return impl_->max_bytes(); }
bool Spool::WaitForRoom(absl::Time deadline) {
  return impl_->WaitForRoom(deadline);
}
absl::Status Spool::health() const { return impl_->health(); }

}  // namespace fabric
