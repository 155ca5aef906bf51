// SPDX-License-Identifier: Apache-2.0
// `fabric push QUEUE [MSG...]`: a work-queue producer on the command line.
// Messages come from the arguments, from --count (generated), or from stdin
// lines; with --spool and none of those it only delivers what the spool
// holds. A monitor thread turns SIGINT/SIGTERM into Producer::Close and
// prints progress lines on stderr.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "fabric/base/status_macros.h"
#include "fabric/base/thread_name.h"
#include "patterns/work_queue/producer.h"
#include "tools/cli/commands.h"
#include "tools/cli/input.h"
#include "tools/cli/output.h"

namespace fabric::cli {
namespace {

// Blocking waits are cut into slices so an interrupt is seen promptly.
constexpr absl::Duration kSlice = absl::Milliseconds(100);
// Above this many messages progress lines are on by default.
constexpr int64_t kAutoProgressAbove = 1000;
constexpr absl::Duration kDefaultProgress = absl::Seconds(1);

// What the flags asked for, parsed and checked.
struct PushPlan {
  ProducerOptions producer;
  Headers headers;
  bool wait_acked = false;
  absl::Time deadline = absl::InfiniteFuture();
  // Where messages come from: the arguments, --count or stdin (at most one).
  enum class Source { kNone, kArgs, kCount, kStdin } source = Source::kNone;
  int64_t expected = 0;  // messages to push when known, else 0
  absl::Duration progress = absl::ZeroDuration();  // zero: off
  bool auto_progress = false;  // on once more than kAutoProgressAbove
};

absl::Status SetDuration(absl::string_view flag, const std::string& text,
                         absl::Duration* out) {
  if (text.empty()) return absl::OkStatus();
  FABRIC_ASSIGN_OR_RETURN(*out, ParseDurationFlag(flag, text));
  return absl::OkStatus();
}

absl::Status ParseProducerFlags(const PushFlags& f, ProducerOptions* o) {
  o->queue = f.queue;
  o->spool_dir = f.spool;
  if (!f.fsync.empty()) {
    if (f.spool.empty()) {
      return absl::InvalidArgumentError("--fsync needs --spool DIR");
    }
    absl::StatusOr<FsyncPolicy> policy = ParseFsyncPolicy(f.fsync);
    if (!policy.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--fsync: unknown policy '", f.fsync,
                       "' (want always, batch, interval or none)"));
    }
    o->fsync = *policy;
  }
  if (f.max_attempts < 0 || f.max_attempts > UINT32_MAX) {
    return absl::InvalidArgumentError("--max-attempts must be at least 1");
  }
  if (f.max_attempts > 0)
    o->max_attempts = static_cast<uint32_t>(f.max_attempts);
  if (f.max_worker_crashes < 0 || f.max_worker_crashes > UINT32_MAX) {
    return absl::InvalidArgumentError(
        "--max-worker-crashes must be at least 1");
  }
  if (f.max_worker_crashes > 0) {
    o->max_worker_crashes = static_cast<uint32_t>(f.max_worker_crashes);
  }
  if (f.max_bytes > 0) o->max_bytes = f.max_bytes;
  FABRIC_RETURN_IF_ERROR(SetDuration("--lease", f.lease, &o->lease));
  FABRIC_RETURN_IF_ERROR(
      SetDuration("--retry-backoff", f.retry_backoff, &o->retry_backoff));
  FABRIC_RETURN_IF_ERROR(
      SetDuration("--push-timeout", f.push_timeout, &o->push_timeout));
  return absl::OkStatus();
}

absl::StatusOr<PushPlan> ParsePushFlags(const PushFlags& f) {
  PushPlan plan;
  if (f.queue.empty()) return absl::InvalidArgumentError("QUEUE is required");
  FABRIC_RETURN_IF_ERROR(ParseProducerFlags(f, &plan.producer));
  FABRIC_RETURN_IF_ERROR(ParseHeaders(f.headers, &plan.headers));
  FABRIC_RETURN_IF_ERROR(
      CheckMessageSource(f.messages.size(), f.count, f.size));
  if (!f.messages.empty()) {
    plan.source = PushPlan::Source::kArgs;
    plan.expected = static_cast<int64_t>(f.messages.size());
  } else if (f.count >= 0) {
    plan.source = PushPlan::Source::kCount;
    plan.expected = f.count;
  } else if (!f.no_stdin && !isatty(STDIN_FILENO)) {
    plan.source = PushPlan::Source::kStdin;
  } else if (f.spool.empty()) {
    return absl::InvalidArgumentError(
        "nothing to push: give MSG..., --count N or lines on stdin (or "
        "--spool DIR to deliver what a spool holds)");
  }
  // Memory-only tasks die with this process, so wait until they completed.
  plan.wait_acked = f.wait_acked || f.spool.empty();
  absl::Duration timeout = absl::ZeroDuration();
  FABRIC_RETURN_IF_ERROR(SetDuration("--timeout", f.timeout, &timeout));
  if (timeout > absl::ZeroDuration()) plan.deadline = absl::Now() + timeout;
  if (f.progress.empty()) {
    plan.progress = kDefaultProgress;
    plan.auto_progress = true;
  } else {
    FABRIC_RETURN_IF_ERROR(
        SetDuration("--progress", f.progress, &plan.progress));
  }
  return plan;
}

// Watches for SIGINT/SIGTERM (closing the producer, which cancels blocked
// pushes and waits) and prints progress lines. Runs its own thread from
// construction to destruction.
class Monitor {
 public:
  Monitor(Producer& producer, const PushPlan& plan)
      : producer_(producer), plan_(plan), thread_([this] {
          SetCurrentThreadName("fab-push-mon");
          Loop();
        }) {}
  ~Monitor() {
    done_.Notify();
    thread_.join();
  }

  const std::atomic<bool>& interrupted() const { return interrupted_; }

 private:
  void Loop() {
    const bool progress = plan_.progress > absl::ZeroDuration();
    absl::Time next_progress = absl::Now() + plan_.progress;
    ProducerStats last;
    absl::Time last_time = absl::Now();
    while (!done_.HasBeenNotified()) {
      const absl::Duration wait = progress
                                      ? std::clamp(next_progress - absl::Now(),
                                                   absl::ZeroDuration(), kSlice)
                                      : kSlice;
      if (interrupted_.load()) {
        done_.WaitForNotificationWithTimeout(wait);
      } else if (WaitForSignal(wait)) {
        Interrupt();
      }
      const absl::Time now = absl::Now();
      if (!progress || now < next_progress) continue;
      next_progress = now + plan_.progress;
      const ProducerStats stats = producer_.Stats();
      const bool big = plan_.expected > kAutoProgressAbove ||
                       static_cast<int64_t>(stats.pushed + stats.recovered) >
                           kAutoProgressAbove;
      if (!plan_.auto_progress || big) {
        PrintProgress(stats, last, now - last_time);
      }
      last = stats;
      last_time = now;
    }
  }

  void Interrupt() {
    interrupted_.store(true);
    std::fputs(plan_.producer.spool_dir.empty()
                   ? "fabric: interrupted; unacked tasks are lost\n"
                   : "fabric: interrupted; the spool keeps what is unacked\n",
               stderr);
    producer_.Close();  // cancels blocked pushes and waits
  }

  static void PrintProgress(const ProducerStats& s, const ProducerStats& last,
                            absl::Duration elapsed) {
    const double seconds = std::max(absl::ToDoubleSeconds(elapsed), 1e-3);
    const std::string line = absl::StrFormat(
        "progress: pushed=%d confirmed=%d acked=%d dead=%d rate=%.0f/s\n",
        s.pushed, s.confirmed, s.acked, s.dead_lettered,
        static_cast<double>(s.pushed - last.pushed) / seconds);
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  }

  Producer& producer_;
  const PushPlan& plan_;
  std::atomic<bool> interrupted_{false};
  absl::Notification done_;
  std::thread thread_;  // last: started once the rest is constructed
};

// Calls `wait(slice)` until it returns anything but kDeadlineExceeded, the
// overall `deadline` passes or `interrupted` is set.
absl::Status WaitSliced(const std::function<absl::Status(absl::Duration)>& wait,
                        absl::Time deadline,
                        const std::atomic<bool>& interrupted,
                        absl::string_view what) {
  for (;;) {
    if (interrupted.load()) {
      return absl::CancelledError(absl::StrCat("interrupted while ", what));
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrCat("--timeout passed while ", what));
    }
    absl::Status s = wait(std::min(kSlice, left));
    if (s.code() != absl::StatusCode::kDeadlineExceeded) {
      if (!s.ok() && interrupted.load()) {
        return absl::CancelledError(absl::StrCat("interrupted while ", what));
      }
      return s;
    }
  }
}

// Pushes every message of the plan's source. Returns the last seq pushed
// (0 if none) through `last_seq` and the first push failure.
absl::Status PushAll(Producer& producer, const PushFlags& flags,
                     const PushPlan& plan, const std::atomic<bool>& stop,
                     uint64_t* last_seq) {
  LineReader stdin_lines(stop);
  int64_t index = 0;
  std::string body;
  auto next = [&]() -> bool {
    switch (plan.source) {
      case PushPlan::Source::kArgs:
        if (index >= static_cast<int64_t>(flags.messages.size())) return false;
        body = flags.messages[static_cast<size_t>(index)];
        break;
      case PushPlan::Source::kCount:
        if (index >= flags.count) return false;
        body = GeneratedBody(index + 1, flags.size);
        break;
      case PushPlan::Source::kStdin:
        if (!stdin_lines.Next(&body)) return false;
        break;
      default:
        return false;
    }
    ++index;
    return true;
  };
  while (!stop.load() && next()) {
    absl::StatusOr<TaskId> id = producer.PushAsync(body, plan.headers);
    if (!id.ok()) {
      if (stop.load()) return absl::CancelledError("interrupted while pushing");
      if (id.status().code() == absl::StatusCode::kResourceExhausted) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "message ", index, ": the limit of ", plan.producer.max_bytes,
            " bytes held (--max-bytes) stayed reached for the push timeout ",
            absl::FormatDuration(plan.producer.push_timeout), ": ",
            id.status().message()));
      }
      return Annotate(id.status(), absl::StrCat("pushing message ", index));
    }
    *last_seq = id->seq;
    if ((index & 255) == 0 && absl::Now() > plan.deadline) {
      return absl::DeadlineExceededError("--timeout passed while pushing");
    }
  }
  if (stop.load()) return absl::CancelledError("interrupted while pushing");
  return absl::OkStatus();
}

// Pushes, then waits as the plan says. Returns the first failure; `stats`
// gets the final counters either way.
absl::Status PushAndWait(Producer& producer, const PushFlags& flags,
                         const PushPlan& plan, ProducerStats* stats) {
  absl::Status status;
  {
    Monitor monitor(producer, plan);
    const std::atomic<bool>& stop = monitor.interrupted();
    uint64_t last_seq = 0;
    status = PushAll(producer, flags, plan, stop, &last_seq);
    if (last_seq > 0 && (status.ok() || !stop.load())) {
      // Even after a failed push, confirm what was accepted.
      absl::Status confirmed = WaitSliced(
          [&](absl::Duration d) { return producer.WaitConfirmed(last_seq, d); },
          plan.deadline, stop, "waiting for confirmation");
      if (status.ok()) status = confirmed;
    }
    if (status.ok() && plan.wait_acked) {
      status = WaitSliced(
          [&](absl::Duration d) { return producer.WaitCompleted(d); },
          plan.deadline, stop, "waiting for acks");
    }
    *stats = producer.Stats();
  }
  producer.Close();
  return status;
}

void PrintLine(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

absl::Status PushOnNode(Node& node, const PushFlags& flags,
                        const PushPlan& plan) {
  ProducerOptions options = plan.producer;
  options.on_completed = [](const Completion& c) {
    if (c.kind != Completion::Kind::kDeadLettered) return;
    const std::string line =
        absl::StrCat("dead ", c.id.ToString(), " attempts=", c.attempts,
                     " reason=", JsonString(c.reason), "\n");
    std::fwrite(line.data(), 1, line.size(), stderr);
  };
  absl::StatusOr<std::unique_ptr<Producer>> producer =
      Producer::Create(node, std::move(options));
  if (!producer.ok()) {
    return Annotate(
        producer.status(),
        plan.producer.spool_dir.empty()
            ? "starting the producer"
            : absl::StrCat("opening spool ", plan.producer.spool_dir));
  }
  ProducerStats stats;
  absl::Status status = PushAndWait(**producer, flags, plan, &stats);
  producer->reset();  // closes the spool: a scan now sees its final state
  PrintLine(absl::StrCat("pushed ", stats.pushed, " confirmed ",
                         stats.confirmed, " acked ", stats.acked, " dead ",
                         stats.dead_lettered, " recovered ", stats.recovered));
  const std::string& dir = plan.producer.spool_dir;
  if (!dir.empty() && !(status.ok() && plan.wait_acked)) {
    absl::StatusOr<SpoolReport> report = Spool::Scan(dir);
    if (report.ok()) {
      PrintLine(
          absl::StrCat("spool ", dir, " holds ", report->pending, " unacked"));
    }
  }
  if (status.ok() && plan.wait_acked && stats.dead_lettered > 0) {
    return absl::AbortedError(absl::StrCat(
        stats.dead_lettered, " tasks were dead-lettered",
        dir.empty() ? "" : absl::StrCat(" (see: fabric dlq list ", dir, ")")));
  }
  return status;
}

}  // namespace

absl::Status RunPush(const CommonFlags& common, const PushFlags& flags) {
  FABRIC_ASSIGN_OR_RETURN(PushPlan plan, ParsePushFlags(flags));
  FABRIC_ASSIGN_OR_RETURN(NodeOptions options, BuildNodeOptions(common));
  options.headers.emplace("fabric.role", "cli");
  BlockTerminationSignals();
  FABRIC_ASSIGN_OR_RETURN(std::unique_ptr<Node> node,
                          Node::Start(std::move(options)));
  absl::Status status = ApplyOffers(*node, common.offers);
  if (status.ok()) status = PushOnNode(*node, flags, plan);
  node->Close();
  node->Join();
  return status;
}

}  // namespace fabric::cli
