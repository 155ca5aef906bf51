// SPDX-License-Identifier: Apache-2.0
// `fabric work QUEUE [QUEUE...]`: a work-queue worker on the command line.
// Prints one line per task and acks it, or with --exec runs a shell command
// per task (body on stdin) and turns its exit status into the verdict, or
// with --discard only acks (a no-op handler, to benchmark the CLI).
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "fabric/base/status_macros.h"
#include "patterns/work_queue/worker.h"
#include "tools/cli/body_dir.h"
#include "tools/cli/child.h"
#include "tools/cli/commands.h"
#include "tools/cli/fd_io.h"
#include "tools/cli/output.h"
#include "tools/cli/summary.h"

namespace fabric::cli {
namespace {

// How long running handlers may finish after SIGINT/SIGTERM (their commands
// get SIGTERM first) or after --count was reached.
constexpr absl::Duration kDrainTimeout = absl::Seconds(5);
// Delay before a task caught by shutdown before it ran is offered again.
constexpr absl::Duration kShutdownRetryDelay = absl::Milliseconds(1);

// The exit status of one --exec run, and what it means.
struct ExecResult {
  Outcome outcome = Outcome::Ack();
  std::string verdict;  // "ack", "retry" or "reject"
  std::string detail;   // "exit=N", "signal=N" or an error
};

// The inherited environment (less the secret-file variables) with the
// FABRIC_TASK_* variables of `task` set.
std::vector<std::string> TaskEnvironment(const Task& task) {
  static constexpr absl::string_view kOurs[] = {
      "FABRIC_TASK_ID=", "FABRIC_QUEUE=", "FABRIC_ATTEMPT="};
  std::vector<std::string> env = ChildEnvironment(kOurs);
  env.push_back(absl::StrCat("FABRIC_TASK_ID=", task.id.ToString()));
  env.push_back(absl::StrCat("FABRIC_QUEUE=", task.queue));
  env.push_back(absl::StrCat("FABRIC_ATTEMPT=", task.attempt));
  return env;
}

// Everything the handler threads share. Thread safety: thread-safe.
class WorkState {
 public:
  WorkState(const WorkFlags& flags, absl::Duration lease_extend,
            std::optional<BodyDir> out_dir)
      : flags_(flags),
        lease_extend_(lease_extend),
        out_dir_(std::move(out_dir)) {}

  // The task handler (runs on the worker's handler threads).
  Outcome Handle(const Task& task, TaskContext& ctx) {
    ready_.WaitForNotification();  // READY is the first line
    if (shutting_down_.load()) {
      return Outcome::RetryAfter(kShutdownRetryDelay, "worker shutting down");
    }
    if (flags_.discard) {
      handled_.fetch_add(1);
      return Outcome::Ack();
    }
    if (out_dir_.has_value()) {
      absl::StatusOr<std::string> path = out_dir_->Write(
          absl::StrCat(task.id.producer.ToHex(), "-", task.id.seq), task.body);
      if (!path.ok()) {
        // Not ours to lose: the task goes back and is offered again.
        const std::string error(path.status().message());
        PrintError(absl::StrCat("fabric: ", error));
        return Outcome::RetryAfter(absl::Seconds(1), error);
      }
    }
    Print(FormatTaskLine(task, flags_.json));
    if (flags_.exec.empty()) {
      handled_.fetch_add(1);
      return Outcome::Ack();
    }
    ExecResult result = Exec(task, ctx);
    Print(
        FormatVerdictLine(task.id, result.verdict, result.detail, flags_.json));
    handled_.fetch_add(1);
    return result.outcome;
  }

  // Prints `line` and a newline to stdout at once, then flushes.
  void Print(const std::string& line) ABSL_LOCKS_EXCLUDED(out_mu_) {
    absl::MutexLock lock(&out_mu_);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }

  void PrintError(const std::string& line) ABSL_LOCKS_EXCLUDED(out_mu_) {
    absl::MutexLock lock(&out_mu_);
    std::fprintf(stderr, "%s\n", line.c_str());
  }

  void MarkReady() { ready_.Notify(); }
  int64_t handled() const { return handled_.load(); }

  // Stops starting commands; with `kill_children`, sends SIGTERM to the
  // process group of every command still running.
  void BeginShutdown(bool kill_children) ABSL_LOCKS_EXCLUDED(children_mu_) {
    shutting_down_.store(true);
    if (!kill_children) return;
    absl::MutexLock lock(&children_mu_);
    kill_children_ = true;
    for (pid_t pid : children_) kill(-pid, SIGTERM);
  }

 private:
  ExecResult Exec(const Task& task, TaskContext& ctx) {
    absl::StatusOr<pid_t> pid = Spawn(task);
    if (!pid.ok()) {
      return {Outcome::RetryAfter(absl::ZeroDuration(),
                                  std::string(pid.status().message())),
              "retry", std::string(pid.status().message())};
    }
    int status = 0;
    const absl::Status waited = WaitChild(*pid, ctx, &status);
    {
      absl::MutexLock lock(&children_mu_);
      children_.erase(*pid);
    }
    if (!waited.ok()) {
      return {Outcome::RetryAfter(absl::ZeroDuration(),
                                  std::string(waited.message())),
              "retry", std::string(waited.message())};
    }
    if (WIFSIGNALED(status)) {
      const std::string detail = absl::StrCat("signal=", WTERMSIG(status));
      return {Outcome::RetryAfter(absl::ZeroDuration(), detail), "retry",
              detail};
    }
    const int code = WEXITSTATUS(status);
    const std::string detail = absl::StrCat("exit=", code);
    if (code == 0) return {Outcome::Ack(), "ack", detail};
    if (code == flags_.reject_exit) {
      return {Outcome::Reject(absl::StrCat("exit ", code)), "reject", detail};
    }
    return {
        Outcome::RetryAfter(absl::ZeroDuration(), absl::StrCat("exit ", code)),
        "retry", detail};
  }

  // Starts `/bin/sh -c CMD` in its own process group with the body on stdin
  // and its output on our stderr (stdout carries task lines only).
  absl::StatusOr<pid_t> Spawn(const Task& task)
      ABSL_LOCKS_EXCLUDED(children_mu_) {
    FABRIC_ASSIGN_OR_RETURN(const int body_fd,
                            MemFileWith("fabric-task", task.body));
    std::vector<std::string> env = TaskEnvironment(task);
    std::vector<char*> cenv;
    for (std::string& e : env) cenv.push_back(e.data());
    cenv.push_back(nullptr);
    std::string sh = "/bin/sh", dash_c = "-c", cmd = flags_.exec;
    char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};
    absl::MutexLock lock(&children_mu_);  // a shutdown sees every child
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid == 0) {
      // Its output goes to our stderr: stdout carries task lines only.
      ExecInChild(parent, body_fd, STDERR_FILENO, STDERR_FILENO, argv,
                  cenv.data());
    }
    const int fork_errno = errno;
    close(body_fd);
    if (pid < 0) {
      return absl::InternalError(absl::StrCat("fork: ", strerror(fork_errno)));
    }
    setpgid(pid, pid);  // also here, so kill(-pid) works at once
    children_.insert(pid);
    if (kill_children_) kill(-pid, SIGTERM);
    return pid;
  }

  // Waits for `pid`; with --lease-extend, extends the lease every half
  // extension while it runs.
  absl::Status WaitChild(pid_t pid, TaskContext& ctx, int* status) {
    absl::Time next_extend = absl::Now() + lease_extend_ / 2;
    for (;;) {
      const int options = lease_extend_ > absl::ZeroDuration() ? WNOHANG : 0;
      const pid_t r = waitpid(pid, status, options);
      if (r == pid) return absl::OkStatus();
      if (r < 0 && errno != EINTR) {
        return absl::InternalError(absl::StrCat("waitpid: ", strerror(errno)));
      }
      if (r == 0) {
        if (absl::Now() >= next_extend) {
          // A failed extension only risks a redelivery, which the handler
          // cannot prevent anyway.
          ctx.ExtendLease(lease_extend_).IgnoreError();
          next_extend = absl::Now() + lease_extend_ / 2;
        }
        absl::SleepFor(absl::Milliseconds(10));
      }
    }
  }

  const WorkFlags flags_;
  const absl::Duration lease_extend_;
  const std::optional<BodyDir> out_dir_;
  absl::Notification ready_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<int64_t> handled_{0};
  absl::Mutex out_mu_;
  absl::Mutex children_mu_;
  std::set<pid_t> children_ ABSL_GUARDED_BY(children_mu_);
  bool kill_children_ ABSL_GUARDED_BY(children_mu_) = false;
};

absl::StatusOr<absl::Duration> CheckWorkFlags(const WorkFlags& f) {
  if (f.queues.empty()) {
    return absl::InvalidArgumentError("QUEUE is required");
  }
  for (const std::string& q : f.queues) {
    if (q.empty()) return absl::InvalidArgumentError("empty QUEUE name");
  }
  // --discard is the handler: nothing else may handle or keep the task.
  if (f.discard && !f.exec.empty()) {
    return absl::InvalidArgumentError(
        "--discard and --exec exclude each other");
  }
  if (f.discard && !f.out_dir.empty()) {
    return absl::InvalidArgumentError(
        "--discard and --out-dir exclude each other");
  }
  if (f.exec.empty() && f.reject_exit != -1) {
    return absl::InvalidArgumentError("--reject-exit needs --exec");
  }
  if (f.reject_exit != -1 && (f.reject_exit < 1 || f.reject_exit > 255)) {
    return absl::InvalidArgumentError("--reject-exit wants 1..255");
  }
  if (f.concurrency < 1) {
    return absl::InvalidArgumentError("--concurrency must be at least 1");
  }
  if (f.prefetch < 0) {
    return absl::InvalidArgumentError("--prefetch must not be negative");
  }
  if (f.count < 0) {
    return absl::InvalidArgumentError("--count must not be negative");
  }
  absl::Duration lease_extend = absl::ZeroDuration();
  if (!f.lease_extend.empty()) {
    if (f.exec.empty()) {
      return absl::InvalidArgumentError("--lease-extend needs --exec");
    }
    FABRIC_ASSIGN_OR_RETURN(
        lease_extend, ParseDurationFlag("--lease-extend", f.lease_extend));
    if (lease_extend <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError("--lease-extend must be positive");
    }
  }
  return lease_extend;
}

// Serves until a signal (returns true) or until --count tasks are handled.
bool ServeUntilDone(const WorkState& state, int64_t count) {
  for (;;) {
    if (WaitForSignal(absl::Milliseconds(50))) return true;
    if (count > 0 && state.handled() >= count) return false;
  }
}

absl::Status WorkOnNode(Node& node, const WorkFlags& flags,
                        absl::Duration lease_extend) {
  std::optional<BodyDir> out_dir;
  if (!flags.out_dir.empty()) {
    FABRIC_ASSIGN_OR_RETURN(out_dir, BodyDir::Open(flags.out_dir));
  }
  auto state =
      std::make_shared<WorkState>(flags, lease_extend, std::move(out_dir));
  WorkerOptions options;
  options.queues = flags.queues;
  options.handler = [state](const Task& task, TaskContext& ctx) {
    return state->Handle(task, ctx);
  };
  options.concurrency = flags.concurrency;
  if (flags.prefetch > 0) options.prefetch = flags.prefetch;
  options.drain_timeout = kDrainTimeout;
  FABRIC_ASSIGN_OR_RETURN(std::unique_ptr<Worker> worker,
                          Worker::Create(node, std::move(options)));
  state->Print(FormatReadyLine(node.mailbox_endpoint(), node.id().ToHex(),
                               node.name(), flags.json));
  const absl::Time start = absl::Now();
  state->MarkReady();
  const bool signaled = ServeUntilDone(*state, flags.count);
  state->BeginShutdown(/*kill_children=*/signaled);
  worker->Close();  // hands waiting tasks back, drains running ones
  const WorkerStats s = worker->Stats();
  PrintSummary("work",
               {{"handled", static_cast<uint64_t>(state->handled())},
                {"received", s.received},
                {"acked", s.acked},
                {"retried", s.retried},
                {"rejected", s.rejected},
                {"released", s.released},
                {"duplicates", s.duplicates},
                {"handler_errors", s.handler_errors},
                {"malformed", s.malformed}},
               absl::Now() - start, flags.json);
  return absl::OkStatus();
}

}  // namespace

absl::Status RunWork(const CommonFlags& common, const WorkFlags& flags) {
  FABRIC_ASSIGN_OR_RETURN(const absl::Duration lease_extend,
                          CheckWorkFlags(flags));
  FABRIC_ASSIGN_OR_RETURN(NodeOptions options, BuildNodeOptions(common));
  options.headers.emplace("fabric.role", "worker");
  BlockTerminationSignals();
  FABRIC_ASSIGN_OR_RETURN(PrintingNode pn,
                          StartPrintingNode(std::move(options), /*json=*/false,
                                            /*print=*/false));
  absl::Status status = ApplyOffers(*pn.node, common.offers);
  if (status.ok()) status = WorkOnNode(*pn.node, flags, lease_extend);
  pn.node->Close();
  pn.node->Join();
  return status;
}

}  // namespace fabric::cli
