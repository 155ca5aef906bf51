// SPDX-License-Identifier: Apache-2.0
// `fabric serve SERVICE (--exec CMD | --echo)`: a request/reply server on
// the command line. --echo replies with the request body; --exec runs
// `/bin/sh -c CMD` per request with the body on stdin: its stdout is the
// reply, a non-zero exit an error status (with the tail of its stderr).
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "fabric/base/status_macros.h"
#include "patterns/reqrep/server.h"
#include "tools/cli/body_dir.h"
#include "tools/cli/child.h"
#include "tools/cli/commands.h"
#include "tools/cli/fd_io.h"
#include "tools/cli/json.h"
#include "tools/cli/output.h"
#include "tools/cli/summary.h"

namespace fabric::cli {
namespace {

constexpr absl::Duration kDefaultDrain = absl::Seconds(5);
// Bytes of a failed command's stderr quoted in the error status.
constexpr size_t kStderrTail = 512;

// An anonymous in-memory file: the command's stdin, stdout or stderr. A
// file never blocks the writer the way a full pipe would, so neither side
// can deadlock the other. Closes on destruction.
class MemFile {
 public:
  static absl::StatusOr<MemFile> Create(absl::string_view contents) {
    FABRIC_ASSIGN_OR_RETURN(const int fd,
                            MemFileWith("fabric-serve", contents));
    return MemFile(fd);
  }
  MemFile(MemFile&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  MemFile& operator=(MemFile&&) = delete;
  ~MemFile() {
    if (fd_ >= 0) close(fd_);
  }
  int fd() const { return fd_; }
  // Everything written to it so far.
  std::string Contents() const {
    std::string out;
    char chunk[65536];
    off_t offset = 0;
    for (;;) {
      const ssize_t n = pread(fd_, chunk, sizeof(chunk), offset);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return out;
      out.append(chunk, static_cast<size_t>(n));
      offset += n;
    }
  }

 private:
  explicit MemFile(int fd) : fd_(fd) {}
  int fd_;
};

// The inherited environment (less the secret-file variables) plus what the
// command learns of the request.
std::vector<std::string> RequestEnvironment(const Request& r) {
  static constexpr absl::string_view kOurs[] = {
      "FABRIC_SERVICE=", "FABRIC_REQUEST_ID=", "FABRIC_ATTEMPT=",
      "FABRIC_IDEMPOTENCY_KEY=", "FABRIC_DEADLINE_MS="};
  std::vector<std::string> env = ChildEnvironment(kOurs);
  env.push_back(absl::StrCat("FABRIC_SERVICE=", r.service));
  env.push_back(
      absl::StrCat("FABRIC_REQUEST_ID=", r.client.ShortHex(), ":", r.id));
  env.push_back(absl::StrCat("FABRIC_ATTEMPT=", r.attempt));
  env.push_back(absl::StrCat("FABRIC_IDEMPOTENCY_KEY=", r.idempotency_key));
  env.push_back(absl::StrCat(
      "FABRIC_DEADLINE_MS=",
      std::max<int64_t>(0,
                        absl::ToInt64Milliseconds(r.deadline - absl::Now()))));
  return env;
}

// What one request came to: the reply (or error) and a detail for the log.
struct Handled {
  absl::StatusOr<std::string> reply;
  std::string detail;  // "exit=0", "signal=9", "killed at deadline", ...
};

// Everything the handler threads share. Thread safety: thread-safe.
class ServeState {
 public:
  ServeState(const ServeFlags& flags, std::optional<BodyDir> out_dir)
      : flags_(flags), out_dir_(std::move(out_dir)) {}

  void Handle(Request request, Responder responder) {
    ready_.WaitForNotification();  // READY is the first line
    Handled h;
    absl::Status saved;
    if (out_dir_.has_value()) {
      saved = out_dir_
                  ->Write(absl::StrCat(request.client.ToHex(), "-", request.id,
                                       "-", request.attempt),
                          request.body)
                  .status();
    }
    if (!saved.ok()) {
      h = {absl::InternalError(saved.message()), "not saved"};
    } else {
      h = flags_.echo ? Handled{request.body, ""} : Exec(request);
    }
    const absl::Status status = h.reply.status();
    const size_t bytes = h.reply.ok() ? h.reply->size() : 0;
    absl::Status sent = h.reply.ok() ? responder.Reply(std::move(*h.reply))
                                     : responder.Fail(status);
    Print(Line(request, sent.ok() ? status : sent, bytes, h.detail));
    handled_.fetch_add(1);
  }

  void Print(const std::string& line) ABSL_LOCKS_EXCLUDED(out_mu_) {
    absl::MutexLock lock(&out_mu_);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  void MarkReady() { ready_.Notify(); }
  int64_t handled() const { return handled_.load(); }

 private:
  std::string Line(const Request& r, const absl::Status& status, size_t bytes,
                   const std::string& detail) const {
    const std::string id = absl::StrCat(r.client.ShortHex(), ":", r.id);
    const std::string code(absl::StatusCodeToString(status.code()));
    if (flags_.json) {
      Json o = Json::object();
      o["request"] = id;
      o["attempt"] = r.attempt;
      o["status"] = code;
      SetBytesField(o, "message", status.message());
      o["bytes"] = bytes;
      SetBytesField(o, "detail", detail);
      SetBytesField(o, "body", r.body);
      return JsonDump(o);
    }
    std::string body = PrintableBody(r.body);
    if (body.size() > 80) body = body.substr(0, 77) + "...";
    return absl::StrCat("handled ", id, " attempt=", r.attempt,
                        " status=", code, " bytes=", bytes,
                        detail.empty() ? "" : " ", detail, " ", body);
  }

  Handled Exec(const Request& r) {
    absl::StatusOr<MemFile> in = MemFile::Create(r.body);
    absl::StatusOr<MemFile> out = MemFile::Create("");
    absl::StatusOr<MemFile> err = MemFile::Create("");
    if (!in.ok() || !out.ok() || !err.ok()) {
      return {absl::InternalError("cannot create the command's files"), ""};
    }
    std::vector<std::string> env = RequestEnvironment(r);
    std::vector<char*> cenv;
    for (std::string& e : env) cenv.push_back(e.data());
    cenv.push_back(nullptr);
    std::string sh = "/bin/sh", dash_c = "-c", cmd = flags_.exec;
    char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid == 0) {
      ExecInChild(parent, in->fd(), out->fd(), err->fd(), argv, cenv.data());
    }
    if (pid < 0) {
      return {absl::InternalError(absl::StrCat("fork: ", strerror(errno))), ""};
    }
    setpgid(pid, pid);
    int status = 0;
    const bool killed = !WaitUntil(pid, r.deadline, &status);
    const std::string errors = err->Contents();
    if (!errors.empty()) std::fwrite(errors.data(), 1, errors.size(), stderr);
    if (killed) {
      return {absl::DeadlineExceededError(
                  "the command was still running at the caller's deadline; "
                  "killed"),
              "killed at deadline"};
    }
    if (WIFSIGNALED(status)) {
      return {absl::InternalError(absl::StrCat("command killed by signal ",
                                               WTERMSIG(status), Tail(errors))),
              absl::StrCat("signal=", WTERMSIG(status))};
    }
    const int code = WEXITSTATUS(status);
    if (code != 0) {
      return {absl::UnknownError(
                  absl::StrCat("command exited with ", code, Tail(errors))),
              absl::StrCat("exit=", code)};
    }
    return {out->Contents(), "exit=0"};
  }

  // ": <last bytes of stderr>" or "".
  static std::string Tail(absl::string_view errors) {
    while (!errors.empty() && (errors.back() == '\n' || errors.back() == ' ')) {
      errors.remove_suffix(1);
    }
    if (errors.empty()) return "";
    if (errors.size() > kStderrTail) {
      errors = errors.substr(errors.size() - kStderrTail);
    }
    return absl::StrCat(": ", errors);
  }

  // Waits for `pid` until `deadline`; past it kills its process group.
  // Returns false when it had to kill it.
  static bool WaitUntil(pid_t pid, absl::Time deadline, int* status) {
    const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    bool killed = false;
    for (;;) {
      const pid_t r = waitpid(pid, status, WNOHANG);
      if (r == pid || (r < 0 && errno != EINTR)) break;
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration() && !killed) {
        kill(-pid, SIGKILL);
        killed = true;
        continue;
      }
      const int ms = killed ? 100
                            : static_cast<int>(std::clamp<int64_t>(
                                  absl::ToInt64Milliseconds(left) + 1, 1, 100));
      if (pidfd >= 0) {
        pollfd p = {pidfd, POLLIN, 0};
        poll(&p, 1, ms);
      } else {
        absl::SleepFor(absl::Milliseconds(1));  // kernel without pidfd
      }
    }
    if (pidfd >= 0) close(pidfd);
    return !killed;
  }

  const ServeFlags flags_;
  const std::optional<BodyDir> out_dir_;
  absl::Notification ready_;
  std::atomic<int64_t> handled_{0};
  absl::Mutex out_mu_;
};

absl::StatusOr<ServerOptions> CheckServeFlags(const ServeFlags& f) {
  if (f.service.empty())
    return absl::InvalidArgumentError("SERVICE is required");
  if (f.echo == !f.exec.empty()) {
    return absl::InvalidArgumentError(
        "give exactly one of --exec CMD or --echo");
  }
  if (f.concurrency < 1 || f.concurrency > 1024) {
    return absl::InvalidArgumentError("--concurrency wants 1..1024");
  }
  if (f.count < 0)
    return absl::InvalidArgumentError("--count must not be negative");
  if (f.max_pending < 0) {
    return absl::InvalidArgumentError("--max-pending must not be negative");
  }
  ServerOptions o;
  o.service = f.service;
  o.threads = f.concurrency;
  if (f.max_pending > 0) o.max_pending = static_cast<size_t>(f.max_pending);
  o.drain_timeout = kDefaultDrain;
  if (!f.drain_timeout.empty()) {
    FABRIC_ASSIGN_OR_RETURN(
        o.drain_timeout, ParseDurationFlag("--drain-timeout", f.drain_timeout));
  }
  return o;
}

}  // namespace

absl::Status RunServe(const CommonFlags& common, const ServeFlags& flags) {
  FABRIC_ASSIGN_OR_RETURN(ServerOptions server_options, CheckServeFlags(flags));
  FABRIC_ASSIGN_OR_RETURN(NodeOptions options, BuildNodeOptions(common));
  options.headers.emplace("fabric.role", "server");
  BlockTerminationSignals();
  FABRIC_ASSIGN_OR_RETURN(std::unique_ptr<Node> node,
                          Node::Start(std::move(options)));
  const ReloadOnHangup hangup(node.get());  // secure mode: SIGHUP reloads
  absl::Status status = ApplyOffers(*node, common.offers);
  if (status.ok()) {
    std::optional<BodyDir> out_dir;
    if (!flags.out_dir.empty()) {
      absl::StatusOr<BodyDir> opened = BodyDir::Open(flags.out_dir);
      if (!opened.ok()) {
        node->Close();
        node->Join();
        return opened.status();
      }
      out_dir = *std::move(opened);
    }
    auto state = std::make_shared<ServeState>(flags, std::move(out_dir));
    server_options.handler = [state](Request r, Responder responder) {
      state->Handle(std::move(r), std::move(responder));
    };
    absl::StatusOr<std::unique_ptr<Server>> server =
        Server::Create(*node, std::move(server_options));
    status = server.status();
    if (server.ok()) {
      state->Print(FormatReadyLine(node->mailbox_endpoint(), node->id().ToHex(),
                                   node->name(), flags.json));
      const absl::Time start = absl::Now();
      state->MarkReady();
      while (!WaitForSignal(absl::Milliseconds(50))) {
        if (flags.count > 0 && state->handled() >= flags.count) break;
      }
      (*server)->Close();  // stop advertising, answer what was accepted
      const ServerStats s = (*server)->Stats();
      PrintSummary("serve",
                   {{"handled", static_cast<uint64_t>(state->handled())},
                    {"received", s.received},
                    {"replied", s.replied},
                    {"failed", s.failed},
                    {"rejected_busy", s.rejected_busy},
                    {"rejected_draining", s.rejected_draining},
                    {"rejected_too_large", s.rejected_too_large},
                    {"joined", s.joined},
                    {"cache_hits", s.cache_hits},
                    {"expired", s.expired},
                    {"cancelled", s.cancelled},
                    {"handler_errors", s.handler_errors},
                    {"malformed", s.malformed}},
                   absl::Now() - start, flags.json);
    }
  }
  node->Close();
  node->Join();
  return status;
}

}  // namespace fabric::cli
