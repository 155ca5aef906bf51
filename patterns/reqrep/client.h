// SPDX-License-Identifier: Apache-2.0
// `fabric::Client`: calls named services. It finds every live server of a
// service through discovery, sends each call to the one with the fewest
// calls outstanding, and retries on another server when an attempt times
// out, its server dies or refuses it unrun, within the call's deadline and
// attempt budget. A call ends with the first reply from any attempt, or
// with kDeadlineExceeded, kUnavailable (no server) or the handler's error.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<fabric::Client> client,
//                    fabric::Client::Create(*node));
//   fabric::CallOptions call;
//   call.timeout = absl::Seconds(2);
//   absl::StatusOr<fabric::Reply> reply = client->Call("resize", image, call);
//
//   client->CallAsync("resize", image, call,
//                     [](absl::StatusOr<fabric::Reply> r) { ... });
//   std::future<absl::StatusOr<fabric::Reply>> f =
//       client->CallFuture("resize", image, call);
#ifndef PATTERNS_REQREP_CLIENT_H_
#define PATTERNS_REQREP_CLIENT_H_

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fabric/base/node_id.h"
#include "fabric/node.h"
#include "fabric/types.h"

namespace fabric {

namespace rr {
class RpcPlugin;
struct CallState;
struct ClientShared;
}  // namespace rr

// A successful call's result. Thread safety: thread-compatible value type.
struct Reply {
  std::string body;
  NodeId server;          // the node whose handler answered
  uint32_t attempts = 0;  // attempts sent for the call (1: no retry)
};

// Per-call settings; zero values take the client's defaults.
struct CallOptions {
  // The call's deadline, from the moment it is made. Zero:
  // `ClientOptions::timeout`.
  absl::Duration timeout = absl::ZeroDuration();
  // How long one attempt may go unanswered before the call is also sent to
  // another server. The earlier attempt is not withdrawn: whichever reply
  // comes first ends the call. Zero: `ClientOptions::attempt_timeout`, and
  // when that is zero too, timeout / max_attempts.
  absl::Duration attempt_timeout = absl::ZeroDuration();
  // Attempts at most, the first included (1: never retry). Zero:
  // `ClientOptions::max_attempts`.
  int max_attempts = 0;
  // Carried to the server: servers run a key once within their dedup
  // window (a repeat joins the running request or gets its reply). Use a
  // unique value per operation, e.g. a UUID. At most 1024 bytes.
  std::string idempotency_key;
  Headers headers;  // carried to the handler
  // When no server of the service is known: false (default) fails the
  // call with kUnavailable at once; true waits for one until the deadline.
  bool wait_for_server = false;
};

struct ClientOptions {
  absl::Duration timeout = absl::Seconds(5);
  absl::Duration attempt_timeout = absl::ZeroDuration();
  int max_attempts = 3;  // 1..100
  // Largest request body plus headers; larger calls fail with
  // kInvalidArgument before anything is sent. Default 4 MiB, at most 15 MiB.
  size_t max_request_bytes = size_t{4} << 20;
  // A blocking Call first busy-waits for its reply, up to twice the
  // recent round-trip time of this client's blocking calls and at most
  // `spin_wait`, before it sleeps: a fast reply then costs no wake-up of
  // the caller (on virtual machines waking an idle CPU costs tens of
  // microseconds, and a CPU kept busy makes the whole exchange faster; see
  // bench/README.md). Calls slower than `spin_wait` stop the spinning.
  // At most one caller per two CPUs spins at a time. Zero never spins.
  // Default 1 ms, at most 10 ms.
  absl::Duration spin_wait = absl::Milliseconds(1);
};

// Counters of one client (monotonic since Create, except in_flight).
struct ClientStats {
  uint64_t calls = 0;
  uint64_t ok = 0;
  uint64_t failed = 0;             // every call that ended without a reply
  uint64_t deadline_exceeded = 0;  // of which: deadline
  uint64_t unavailable = 0;        // of which: no server
  uint64_t attempts = 0;           // attempts sent (first ones included)
  uint64_t retries = 0;            // attempts after the first
  uint64_t late_replies = 0;       // node-wide: replies to calls already over
  uint64_t in_flight = 0;          // gauge
};

// Thread safety: thread-safe. Calls may be made from many threads at once.
class Client {
 public:
  using Callback = std::function<void(absl::StatusOr<Reply>)>;

  // Attaches to `node`, which must outlive the client. Returns
  // kInvalidArgument for bad options.
  static absl::StatusOr<std::unique_ptr<Client>> Create(
      Node& node, ClientOptions options = {});

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  // Calls Close.
  ~Client();

  // Calls `service` and blocks until the reply or the deadline. Returns the
  // handler's error status as sent, kDeadlineExceeded when the deadline
  // passes, kUnavailable when no server exists (or all left), kInvalidArgument
  // for a bad request (empty service, too large) and kCancelled once closed.
  // REQUIRES: not called from a Callback (it runs on the engine thread).
  absl::StatusOr<Reply> Call(absl::string_view service, absl::string_view body,
                             const CallOptions& options = {});
  // Like Call, but while it waits it asks `keep_waiting` (on this thread,
  // no lock held; it should not throw) every `poll_interval`; when that
  // returns false the call is given up: it returns kCancelled at once,
  // counted as failed, and a reply arriving later is dropped. For callers
  // that must react to something else meanwhile (the Python binding checks
  // for Ctrl-C).
  absl::StatusOr<Reply> Call(absl::string_view service, absl::string_view body,
                             const CallOptions& options,
                             absl::Duration poll_interval,
                             const std::function<bool()>& keep_waiting);
  // Like Call, but returns at once; `done` runs exactly once with the
  // result, on the node's engine thread (or on this thread if the call
  // fails before it is sent). `done` must not block; it may make new
  // asynchronous calls. Deadlines are checked every 50 ms, so an async
  // call may end up to that much after its deadline.
  void CallAsync(absl::string_view service, absl::string_view body,
                 const CallOptions& options, Callback done);
  // Like CallAsync, with a future for the result.
  std::future<absl::StatusOr<Reply>> CallFuture(
      absl::string_view service, absl::string_view body,
      const CallOptions& options = {});

  // Returns the nodes serving `service` that this node knows now (this
  // node itself included when it serves it).
  absl::StatusOr<std::vector<NodeId>> Servers(absl::string_view service);
  // Blocks until at least one server of `service` is known. Returns
  // kDeadlineExceeded after `timeout`, kCancelled once closed.
  absl::Status WaitForServer(absl::string_view service, absl::Duration timeout);

  ClientStats Stats() const;
  // Fails every call of this client still running with kCancelled; later
  // calls fail with kCancelled too. Idempotent.
  void Close();

 private:
  Client(Node& node, std::shared_ptr<rr::RpcPlugin> plugin,
         std::shared_ptr<rr::ClientShared> shared);
  // Takes one of the spinner slots and returns how long to spin (see
  // ClientOptions::spin_wait), or returns 0 and takes none.
  int64_t ReserveSpin() const;
  // Busy-waits up to `spin_ns` for `call` to end, then frees the slot.
  static void SpinForReply(const rr::CallState& call, int64_t spin_ns);
  Node& node_;
  std::shared_ptr<rr::RpcPlugin> plugin_;
  std::shared_ptr<rr::ClientShared> shared_;
};

}  // namespace fabric

#endif  // PATTERNS_REQREP_CLIENT_H_
