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
#include <cmath>
#include <cstdio>
#include <functional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "fabric/base/status_macros.h"
#include "fabric/base/thread_name.h"
#include "fabric/limits.h"
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
  InputFlags input;  // with --size parsed
  InputMode mode = InputMode::kNone;
  size_t max_body = kDefaultMaxMessageBytes;
  int64_t expected = 0;  // messages to push when known, else -1

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
  if (f.allow_shared_files && f.spool.empty()) {
    return absl::InvalidArgumentError("--allow-shared-files needs --spool DIR");
  }
  o->allow_shared_files = f.allow_shared_files;
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
  if (!f.max_bytes.empty()) {
    FABRIC_ASSIGN_OR_RETURN(const int64_t max_bytes,
                            ParseByteSize("--max-bytes", f.max_bytes));
    if (max_bytes <= 0) {
      return absl::InvalidArgumentError("--max-bytes must be positive");
    }
    o->max_bytes = static_cast<uint64_t>(max_bytes);
  }
  FABRIC_RETURN_IF_ERROR(SetDuration("--lease", f.lease, &o->lease));
  FABRIC_RETURN_IF_ERROR(
      SetDuration("--retry-backoff", f.retry_backoff, &o->retry_backoff));
  FABRIC_RETURN_IF_ERROR(
      SetDuration("--push-timeout", f.push_timeout, &o->push_timeout));
  return absl::OkStatus();
}

absl::StatusOr<PushPlan> ParsePushFlags(const PushFlags& f,
                                        const NodeOptions& node) {
  PushPlan plan;
  if (f.queue.empty()) return absl::InvalidArgumentError("QUEUE is required");
  FABRIC_RETURN_IF_ERROR(ParseProducerFlags(f, &plan.producer));
  FABRIC_RETURN_IF_ERROR(ParseHeaders(f.headers, &plan.headers));
  // The body alone; headers count against the same limit when pushed.
  plan.max_body = std::min(kMaxTaskBytes, node.max_message_bytes);
  FABRIC_ASSIGN_OR_RETURN(
      plan.mode,
      ResolveInput(f.input, f.size, plan.max_body, "task", &plan.input));
  if (plan.mode == InputMode::kNone && f.spool.empty()) {
    return absl::InvalidArgumentError(
        "nothing to push: give MSG..., --count N, --file PATH, --stdin-raw "
        "or lines on stdin (or --spool DIR to deliver what a spool holds)");
  }
  plan.expected = ExpectedBodies(plan.input, plan.mode);
  // Memory-only tasks die with this process, so wait until they completed.
  plan.wait_acked = f.wait_acked || f.spool.empty();
  absl::Duration timeout = absl::ZeroDuration();
  FABRIC_RETURN_IF_ERROR(SetDuration("--timeout", f.timeout, &timeout));
  if (timeout > absl::ZeroDuration()) {
    plan.deadline = absl::Now() + timeout;
  }
  if (f.progress.empty()) {
    plan.progress = kDefaultProgress;
    plan.auto_progress = true;
  } else {
    FABRIC_RETURN_IF_ERROR(
        SetDuration("--progress", f.progress, &plan.progress));
  }
  return plan;
}

// Turns successive producer counters into progress lines: totals, the rate
// of confirmations and acks since the last line (smoothed), and an ETA for
// what the run waits for (acks with --wait-acked, else confirmations).
// Thread safety: thread-compatible.
class ProgressMeter {
 public:
  ProgressMeter(int64_t expected, bool wait_acked, absl::Time start)
      : expected_(expected), wait_acked_(wait_acked), last_time_(start) {}

  std::string Update(const ProducerStats& s, absl::Time now) {
    const double seconds =
        std::max(absl::ToDoubleSeconds(now - last_time_), 1e-3);
    auto smooth = [&](double* rate, uint64_t now_count, uint64_t last_count) {
      const double sample =
          static_cast<double>(now_count - std::min(now_count, last_count)) /
          seconds;
      *rate = first_ ? sample : 0.5 * *rate + 0.5 * sample;
    };
    smooth(&confirm_rate_, s.confirmed, last_.confirmed);
    smooth(&ack_rate_, s.acked + s.dead_lettered,
           last_.acked + last_.dead_lettered);
    first_ = false;
    last_ = s;
    last_time_ = now;
    // The tasks of this run, plus, when acks are awaited, what the spool
    // held at start (owed acks, but not confirmed again).
    const int64_t total =
        expected_ < 0
            ? -1
            : expected_ + (wait_acked_ ? static_cast<int64_t>(s.recovered) : 0);
    std::string line = absl::StrCat("progress: pushed=", s.pushed);
    if (total >= 0) absl::StrAppend(&line, " total=", total);
    absl::StrAppend(&line, " confirmed=", s.confirmed,
                    absl::StrFormat(" confirm_rate=%.0f/s", confirm_rate_),
                    " acked=", s.acked,
                    absl::StrFormat(" ack_rate=%.0f/s", ack_rate_),
                    " dead=", s.dead_lettered);
    const uint64_t done = wait_acked_ ? s.acked + s.dead_lettered : s.confirmed;
    const double rate = wait_acked_ ? ack_rate_ : confirm_rate_;
    if (total >= 0 && static_cast<uint64_t>(total) > done && rate > 0) {
      const double eta =
          static_cast<double>(static_cast<uint64_t>(total) - done) / rate;
      absl::StrAppend(
          &line, " eta=", absl::FormatDuration(absl::Seconds(std::ceil(eta))));
    } else if (total < 0 || static_cast<uint64_t>(total) > done) {
      absl::StrAppend(&line, " eta=?");
    }
    line.push_back('\n');
    return line;
  }

 private:
  const int64_t expected_;
  const bool wait_acked_;
  ProducerStats last_;
  absl::Time last_time_;
  bool first_ = true;
  double confirm_rate_ = 0;
  double ack_rate_ = 0;
};

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
      const std::string line = meter_.Update(stats, now);
      if (!plan_.auto_progress || big) {
        std::fwrite(line.data(), 1, line.size(), stderr);
        std::fflush(stderr);
      }
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

  Producer& producer_;
  const PushPlan& plan_;
  ProgressMeter meter_{plan_.expected, plan_.wait_acked, absl::Now()};
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
absl::Status PushAll(Producer& producer, const PushPlan& plan,
                     const std::atomic<bool>& stop, uint64_t* last_seq) {
  BodySource source(
      plan.input, plan.mode, [&stop] { return stop.load(); }, plan.deadline,
      plan.max_body);
  std::string body;
  int64_t index = 0;
  while (!stop.load() && source.Next(&body)) {
    ++index;
    // Waiting for room under --max-bytes is bounded by the time left too.
    const absl::Duration left = plan.deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("--timeout passed while pushing");
    }
    const absl::Duration room_wait = std::min(plan.producer.push_timeout, left);
    absl::StatusOr<TaskId> id = producer.PushAsyncWithin(
        body, plan.headers, room_wait, /*last_try=*/true);
    if (!id.ok()) {
      if (stop.load()) return absl::CancelledError("interrupted while pushing");
      if (id.status().code() == absl::StatusCode::kInvalidArgument) {
        // The command line was fine; this body is too big to send.
        return absl::FailedPreconditionError(
            absl::StrCat("message ", index, ": ", id.status().message()));
      }
      if (id.status().code() == absl::StatusCode::kResourceExhausted &&
          absl::StartsWith(id.status().message(), "spool disk full")) {
        return absl::ResourceExhaustedError(
            absl::StrCat("message ", index, ": ", id.status().message()));
      }
      if (id.status().code() == absl::StatusCode::kResourceExhausted) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "message ", index, ": the limit of ", plan.producer.max_bytes,
            " bytes held (--max-bytes) stayed reached for ",
            absl::FormatDuration(room_wait),
            room_wait < plan.producer.push_timeout ? " (--timeout)"
                                                   : " (--push-timeout)",
            ": ", id.status().message()));
      }
      return Annotate(id.status(), absl::StrCat("pushing message ", index));
    }
    *last_seq = id->seq;
  }
  if (stop.load()) return absl::CancelledError("interrupted while pushing");
  return source.status();
}

// Pushes, then waits as the plan says. Returns the first failure; `stats`
// gets the final counters either way.
absl::Status PushAndWait(Producer& producer, const PushPlan& plan,
                         ProducerStats* stats) {
  absl::Status status;
  {
    Monitor monitor(producer, plan);
    const std::atomic<bool>& stop = monitor.interrupted();
    uint64_t last_seq = 0;
    status = PushAll(producer, plan, stop, &last_seq);
    if (last_seq > 0 && (status.ok() || !stop.load())) {
      // Even after a failed push, confirm what was accepted.
      absl::Status confirmed = WaitSliced(
          [&](absl::Duration d) { return producer.WaitConfirmed(last_seq, d); },
          plan.deadline, stop, "waiting for confirmation");
      // A task refused for a full disk before the last one fails the push
      // too, even though the last one was confirmed.
      const uint64_t refused = producer.Stats().refused;
      if (confirmed.ok() && refused > 0) {
        confirmed = absl::ResourceExhaustedError(
            absl::StrCat(refused, " task(s) refused: spool disk full in ",
                         plan.producer.spool_dir));
      }
      if (status.ok()) status = confirmed;
    }
    if (status.ok() && plan.wait_acked) {
      status = WaitSliced(
          [&](absl::Duration d) { return producer.WaitCompleted(d); },
          plan.deadline, stop, "waiting for acks");
    }
  }
  producer.Close();
  // After Close: acks that came in while it drained are counted too.
  *stats = producer.Stats();
  return status;
}

void PrintLine(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

absl::Status PushOnNode(Node& node, const PushPlan& plan) {
  ProducerOptions options = plan.producer;
  options.on_completed = [](const Completion& c) {
    if (c.kind != Completion::Kind::kDeadLettered) return;
    const std::string line =
        absl::StrCat("dead ", c.id.ToString(), " attempts=", c.attempts,
                     " reason=", QuotedText(c.reason), "\n");
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
  absl::Status status = PushAndWait(**producer, plan, &stats);
  producer->reset();  // closes the spool: a scan now sees its final state
  PrintLine(absl::StrCat(
      "pushed ", stats.pushed, " confirmed ", stats.confirmed, " acked ",
      stats.acked, " dead ", stats.dead_lettered, " recovered ",
      stats.recovered,
      stats.refused > 0 ? absl::StrCat(" refused ", stats.refused) : ""));
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
  FABRIC_ASSIGN_OR_RETURN(NodeOptions options, BuildNodeOptions(common));
  FABRIC_ASSIGN_OR_RETURN(PushPlan plan, ParsePushFlags(flags, options));
  FABRIC_RETURN_IF_ERROR(CheckFiles(plan.input.files, plan.max_body));
  options.headers.emplace("fabric.role", "cli");
  BlockTerminationSignals();
  FABRIC_ASSIGN_OR_RETURN(std::unique_ptr<Node> node,
                          Node::Start(std::move(options)));
  const ReloadOnHangup hangup(node.get());  // secure mode: SIGHUP reloads
  absl::Status status = ApplyOffers(*node, common.offers);
  if (status.ok()) status = PushOnNode(*node, plan);
  node->Close();
  node->Join();
  return status;
}

}  // namespace fabric::cli
