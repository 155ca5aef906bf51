// SPDX-License-Identifier: Apache-2.0
// The public face of calls: validates a call, fills in the defaults and
// hands it to the node's RpcPlugin, which runs it on the engine thread
// (internal/caller.cc). A blocking call either spins briefly for its reply
// or sends its first attempt itself (RpcPlugin::SendDirect), then sleeps on
// its own mutex until the engine completes it.
#include "patterns/reqrep/client.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "fabric/base/status_macros.h"
#include "patterns/reqrep/internal/rpc_plugin.h"

namespace fabric {
namespace {

// How long a blocking caller waits past its deadline for the engine to end
// the call (with the detailed error) before it ends the call itself. The
// engine checks deadlines every 50 ms.
constexpr absl::Duration kEngineGrace = absl::Milliseconds(250);
constexpr size_t kMaxRequestLimit = size_t{15} << 20;
// Blocking callers busy-waiting for their reply, at most one per two CPUs:
// more would starve the threads that produce the replies.
const int kMaxSpinners =
    std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / 2);
std::atomic<int> spinners{0};

absl::Status ValidateOptions(const ClientOptions& o) {
  if (o.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout must be positive");
  }
  if (o.attempt_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("attempt_timeout must not be negative");
  }
  if (o.max_attempts < 1 || o.max_attempts > 100) {
    return absl::InvalidArgumentError("max_attempts must be 1..100");
  }
  if (o.spin_wait < absl::ZeroDuration() ||
      o.spin_wait > absl::Milliseconds(10)) {
    return absl::InvalidArgumentError("spin_wait must be 0..10ms");
  }
  if (o.max_request_bytes < 1 || o.max_request_bytes > kMaxRequestLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_request_bytes must be 1..", kMaxRequestLimit));
  }
  return absl::OkStatus();
}

// Builds the call, or returns why it cannot be made.
absl::StatusOr<std::shared_ptr<rr::CallState>> MakeCall(
    rr::RpcPlugin& plugin, const std::shared_ptr<rr::ClientShared>& shared,
    absl::string_view service, absl::string_view body,
    const CallOptions& options, rr::CallState::Mode mode) {
  const ClientOptions& defaults = shared->options;
  if (shared->closed.load()) {
    return absl::CancelledError("the client is closed");
  }
  if (service.empty() || service.size() > rr::kMaxServiceName) {
    return absl::InvalidArgumentError("service name must be 1..256 bytes");
  }
  if (options.idempotency_key.size() > rr::kMaxIdempotencyKey) {
    return absl::InvalidArgumentError(
        "idempotency key must be at most 1024 bytes");
  }
  if (options.timeout < absl::ZeroDuration() ||
      options.attempt_timeout < absl::ZeroDuration() ||
      options.max_attempts < 0 || options.max_attempts > 100) {
    return absl::InvalidArgumentError(
        "timeouts must not be negative and max_attempts must be 0..100");
  }
  size_t bytes = body.size();
  for (const auto& [k, v] : options.headers) bytes += k.size() + v.size();
  if (bytes > defaults.max_request_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("request of ", bytes, " bytes exceeds the limit of ",
                     defaults.max_request_bytes, " (max_request_bytes)"));
  }
  auto call = std::make_shared<rr::CallState>();
  call->id = plugin.NextCallId();
  call->service = std::string(service);
  call->body = std::string(body);
  call->key = options.idempotency_key;
  call->headers = options.headers;
  const absl::Duration timeout = options.timeout > absl::ZeroDuration()
                                     ? options.timeout
                                     : defaults.timeout;
  call->deadline = absl::Now() + timeout;
  call->max_attempts = static_cast<uint32_t>(
      options.max_attempts > 0 ? options.max_attempts : defaults.max_attempts);
  absl::Duration attempt = options.attempt_timeout;
  if (attempt == absl::ZeroDuration()) attempt = defaults.attempt_timeout;
  if (attempt == absl::ZeroDuration()) attempt = timeout / call->max_attempts;
  call->attempt_timeout = attempt;
  call->wait_for_server = options.wait_for_server;
  call->mode = mode;
  call->client = shared;
  shared->calls.fetch_add(1, std::memory_order_relaxed);
  shared->in_flight.fetch_add(1, std::memory_order_relaxed);
  return call;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Create(Node& node,
                                                       ClientOptions options) {
  FABRIC_RETURN_IF_ERROR(ValidateOptions(options));
  FABRIC_ASSIGN_OR_RETURN(std::shared_ptr<rr::RpcPlugin> plugin,
                          rr::RpcPlugin::Get(node));
  auto shared = std::make_shared<rr::ClientShared>(std::move(options));
  return std::unique_ptr<Client>(
      new Client(node, std::move(plugin), std::move(shared)));
}

Client::Client(Node& node, std::shared_ptr<rr::RpcPlugin> plugin,
               std::shared_ptr<rr::ClientShared> shared)
    : node_(node), plugin_(std::move(plugin)), shared_(std::move(shared)) {}

Client::~Client() { Close(); }

absl::StatusOr<Reply> Client::Call(absl::string_view service,
                                   absl::string_view body,
                                   const CallOptions& options) {
  return Call(service, body, options, absl::InfiniteDuration(), nullptr);
}

absl::StatusOr<Reply> Client::Call(absl::string_view service,
                                   absl::string_view body,
                                   const CallOptions& options,
                                   absl::Duration poll_interval,
                                   const std::function<bool()>& keep_waiting) {
  if (plugin_->OnEngineThread()) {
    return absl::FailedPreconditionError(
        "blocking Call on the engine thread (from a callback) would deadlock; "
        "use CallAsync");
  }
  FABRIC_ASSIGN_OR_RETURN(std::shared_ptr<rr::CallState> call,
                          MakeCall(*plugin_, shared_, service, body, options,
                                   rr::CallState::Mode::kBlocking));
  const int64_t start_ns = absl::GetCurrentTimeNanos();
  // A caller that will sleep sends its first attempt itself: one wake-up
  // (of the engine) fewer. A spinning caller hands it to the engine, which
  // measured 10-15 us faster on the 2-core VM: the request then leaves
  // from the engine's CPU while this one keeps spinning.
  const int64_t spin_ns = ReserveSpin();
  if (spin_ns > 0 || !plugin_->SendDirect(call)) plugin_->Submit(call);
  if (spin_ns > 0) SpinForReply(*call, spin_ns);
  const absl::Time end = call->deadline + kEngineGrace;
  bool given_up = false;
  absl::MutexLock lock(&call->mu);
  for (;;) {
    const absl::Time until =
        keep_waiting ? std::min(end, absl::Now() + poll_interval) : end;
    call->mu.AwaitWithDeadline(absl::Condition(&call->finished), until);
    if (call->finished || absl::Now() >= end) break;
    // Asked outside the lock: the answer may take a while (the Python
    // binding takes the GIL), and the engine finishes calls under it. The
    // lock is taken back even if the poll unwinds.
    call->mu.Unlock();
    struct Relock {
      absl::Mutex& mu;
      ~Relock() { mu.Lock(); }
    };
    bool keep;
    {
      Relock relock{call->mu};
      keep = keep_waiting();
    }
    if (!keep && !call->finished) {
      given_up = true;
      break;
    }
  }
  if (!call->finished) {
    // The caller gave up, or the engine did not end it in time (stalled or
    // stopping). A reply arriving later is dropped.
    call->finished = true;
    call->done.store(true, std::memory_order_release);
    shared_->in_flight.fetch_sub(1, std::memory_order_relaxed);
    shared_->failed.fetch_add(1, std::memory_order_relaxed);
    if (given_up) {
      return absl::CancelledError(
          absl::StrCat("service ", service, ": the caller gave up the call"));
    }
    shared_->deadline_exceeded.fetch_add(1, std::memory_order_relaxed);
    return absl::DeadlineExceededError(
        absl::StrCat("service ", service, ": no reply before the deadline"));
  }
  // EWMA with weight 1/8 (a race between callers only blurs the hint).
  const int64_t rtt = absl::GetCurrentTimeNanos() - start_ns;
  const int64_t old_rtt =
      shared_->recent_rtt_ns.load(std::memory_order_relaxed);
  shared_->recent_rtt_ns.store(
      old_rtt == 0 ? rtt : old_rtt + (rtt - old_rtt) / 8,
      std::memory_order_relaxed);
  return std::move(call->result);
}

int64_t Client::ReserveSpin() const {
  const int64_t max_ns = absl::ToInt64Nanoseconds(shared_->options.spin_wait);
  const int64_t recent = shared_->recent_rtt_ns.load(std::memory_order_relaxed);
  // Spin for about twice the recent round trip; not at all when calls are
  // slower than the budget (a sleeping wake-up is cheap next to them).
  if (max_ns <= 0 || recent > max_ns) return 0;
  if (spinners.fetch_add(1, std::memory_order_relaxed) >= kMaxSpinners) {
    spinners.fetch_sub(1, std::memory_order_relaxed);
    return 0;
  }
  return recent == 0 ? max_ns : std::min(max_ns, 2 * recent);
}

void Client::SpinForReply(const rr::CallState& call, int64_t spin_ns) {
  const int64_t until = absl::GetCurrentTimeNanos() + spin_ns;
  while (!call.done.load(std::memory_order_acquire) &&
         absl::GetCurrentTimeNanos() < until) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  spinners.fetch_sub(1, std::memory_order_relaxed);
}

void Client::CallAsync(absl::string_view service, absl::string_view body,
                       const CallOptions& options, Callback done) {
  absl::StatusOr<std::shared_ptr<rr::CallState>> call =
      MakeCall(*plugin_, shared_, service, body, options,
               rr::CallState::Mode::kCallback);
  if (!call.ok()) {
    done(call.status());
    return;
  }
  (*call)->callback = std::move(done);
  plugin_->Submit(std::move(*call));
}

std::future<absl::StatusOr<Reply>> Client::CallFuture(
    absl::string_view service, absl::string_view body,
    const CallOptions& options) {
  absl::StatusOr<std::shared_ptr<rr::CallState>> call = MakeCall(
      *plugin_, shared_, service, body, options, rr::CallState::Mode::kFuture);
  if (!call.ok()) {
    std::promise<absl::StatusOr<Reply>> failed;
    failed.set_value(call.status());
    return failed.get_future();
  }
  (*call)->promise.emplace();
  std::future<absl::StatusOr<Reply>> future = (*call)->promise->get_future();
  plugin_->Submit(std::move(*call));
  return future;
}

absl::StatusOr<std::vector<NodeId>> Client::Servers(absl::string_view service) {
  auto out = std::make_shared<std::vector<NodeId>>();
  std::shared_ptr<rr::RpcPlugin> plugin = plugin_;
  std::string name(service);
  FABRIC_RETURN_IF_ERROR(node_.Call([plugin, name, out](NodeContext&) {
    *out = plugin->ServersOf(name);
    return absl::OkStatus();
  }));
  return std::move(*out);
}

absl::Status Client::WaitForServer(absl::string_view service,
                                   absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (shared_->closed.load()) return absl::CancelledError("client closed");
    FABRIC_ASSIGN_OR_RETURN(std::vector<NodeId> servers, Servers(service));
    if (!servers.empty()) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("no server of service ", service, " appeared within ",
                       absl::FormatDuration(timeout)));
    }
    absl::SleepFor(std::min(absl::Milliseconds(20), deadline - absl::Now()));
  }
}

ClientStats Client::Stats() const {
  const rr::ClientShared& c = *shared_;
  ClientStats s;
  s.calls = c.calls.load();
  s.ok = c.ok.load();
  s.failed = c.failed.load();
  s.deadline_exceeded = c.deadline_exceeded.load();
  s.unavailable = c.unavailable.load();
  s.attempts = c.attempts.load();
  s.retries = c.retries.load();
  s.late_replies = plugin_->late_replies();
  s.in_flight = c.in_flight.load();
  return s;
}

void Client::Close() {
  if (shared_->closed.exchange(true)) return;
  plugin_->CancelClient(shared_);
}

}  // namespace fabric
