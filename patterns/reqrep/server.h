// SPDX-License-Identifier: Apache-2.0
// `fabric::Server`: serves one named service. It advertises the service
// (offer "service"), queues the requests clients send, runs the handler on
// `threads` threads and sends each reply back. A handler may reply at once
// or later, from any thread, through the `Responder` it is given. Requests
// carrying an idempotency key run once per key within `dedup_window`: a
// repeat joins the running one or gets the remembered reply.
//
//   fabric::ServerOptions options;
//   options.service = "resize";
//   options.threads = 4;
//   options.handler = fabric::SyncHandler(
//       [](const fabric::Request& r) -> absl::StatusOr<std::string> {
//         if (r.body.empty()) return absl::InvalidArgumentError("no image");
//         return Resize(r.body);
//       });
//   ASSIGN_OR_RETURN(std::unique_ptr<fabric::Server> server,
//                    fabric::Server::Create(*node, std::move(options)));
//   ...
//   server->Close();  // stop advertising, finish what was accepted, leave
#ifndef PATTERNS_REQREP_SERVER_H_
#define PATTERNS_REQREP_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fabric/base/node_id.h"
#include "fabric/node.h"
#include "fabric/types.h"

namespace fabric {

namespace rr {
class ServerCore;
// Where a reply goes, for handler threads that send it themselves.
struct ReplyRoute {
  NodeId client;
  uint64_t id = 0;
  uint32_t attempt = 0;
  absl::Time deadline;  // the caller's
  // The request carried no idempotency key, so its reply answers it alone
  // and is remembered nowhere: a handler thread may send it directly.
  bool direct = false;
};
}  // namespace rr

// One request as the handler sees it.
// Thread safety: thread-compatible value type.
struct Request {
  std::string service;
  std::string body;
  Headers headers;
  std::string idempotency_key;  // empty: none
  NodeId client;                // the calling node
  uint64_t id = 0;              // the call's id at that node
  uint32_t attempt = 1;         // 1 for the first attempt of the call
  // When the caller stops waiting, on this host's clock (sent as a relative
  // timeout, so clocks need not agree).
  absl::Time deadline;
};

// The one reply owed to a request. Move it to another thread to reply later.
// Destroying it without replying sends kInternal ("the handler dropped the
// request"), so a forgotten request fails fast instead of timing out.
// Thread safety: thread-compatible; use it from one thread at a time.
class Responder {
 public:
  Responder(Responder&& other) noexcept;
  Responder& operator=(Responder&& other) noexcept;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder();

  // Sends `body` as the reply. Returns kFailedPrecondition if this responder
  // already replied (or was moved from) and kResourceExhausted when `body`
  // exceeds `max_reply_bytes` (the client then gets that error instead).
  // A reply the client no longer waits for is dropped there; that is OK.
  absl::Status Reply(std::string body);
  // Sends `status` (code and message) as the reply; the call fails with it.
  // Returns kInvalidArgument for an OK status, kFailedPrecondition as Reply.
  absl::Status Fail(const absl::Status& status);

  // True once the caller stopped waiting: its deadline passed, or it got a
  // reply from another attempt and cancelled this one. Long handlers may
  // poll it and give up.
  bool cancelled() const;
  absl::Time deadline() const { return route_.deadline; }

 private:
  friend class rr::ServerCore;
  Responder(std::shared_ptr<rr::ServerCore> core, uint64_t token,
            rr::ReplyRoute route);
  void Release();

  std::shared_ptr<rr::ServerCore> core_;
  uint64_t token_ = 0;
  rr::ReplyRoute route_;
};

// Called on one of the server's handler threads for each request; may block
// (it holds that thread). Must eventually reply through `responder`, from
// any thread.
using Handler = std::function<void(Request request, Responder responder)>;

// Adapts a function that returns the reply (or an error status) to a
// Handler. An exception it throws becomes a kInternal reply.
Handler SyncHandler(
    std::function<absl::StatusOr<std::string>(const Request&)> fn);

struct ServerOptions {
  // The service name, 1..256 bytes. One server per service per node.
  std::string service;
  Handler handler;  // required
  // Handler threads, 0..1024. Default 4. A handler thread sends the reply
  // to a request without an idempotency key itself. Zero runs the handler
  // inline on the node's engine thread, which saves the hop to the handler
  // thread (see docs/reqrep.md) but stalls all of the node's traffic and
  // heartbeats while it runs: only for handlers that never block and take
  // microseconds. Such a handler should reply before it returns.
  int threads = 4;
  // Requests accepted but not yet replied to (waiting plus running), at
  // most. Beyond it a request is refused as busy without running, and the
  // client retries it on another server. Default 1024.
  size_t max_pending = 1024;
  // Largest request body (plus headers) accepted and largest reply sent.
  // Larger requests fail with kInvalidArgument, larger replies with
  // kResourceExhausted. Default 4 MiB each; at most 15 MiB (one frame).
  size_t max_request_bytes = size_t{4} << 20;
  size_t max_reply_bytes = size_t{4} << 20;
  // Replies to requests with an idempotency key are remembered for this
  // long (and at most `dedup_max_entries` / `dedup_max_bytes` of them,
  // oldest forgotten first); a repeat of the key gets the same reply without
  // running the handler. Zero disables the cache (a repeat still joins a
  // running request). Default 1 min, 10000 entries, 64 MiB.
  absl::Duration dedup_window = absl::Minutes(1);
  size_t dedup_max_entries = 10000;
  size_t dedup_max_bytes = size_t{64} << 20;
  // On Close, how long accepted requests may take to be answered before
  // the server leaves anyway (their callers then retry elsewhere).
  // Default 10 s.
  absl::Duration drain_timeout = absl::Seconds(10);
};

// Counters of one server (monotonic since Create, except the gauges).
struct ServerStats {
  uint64_t received = 0;           // request attempts received
  uint64_t replied = 0;            // replies sent with OK
  uint64_t failed = 0;             // error replies from the handler
  uint64_t rejected_busy = 0;      // refused: max_pending reached
  uint64_t rejected_draining = 0;  // refused: closing
  uint64_t rejected_too_large = 0;
  uint64_t joined = 0;          // repeats that joined a running request
  uint64_t cache_hits = 0;      // answered from the idempotency cache
  uint64_t expired = 0;         // skipped: the caller's deadline passed
  uint64_t cancelled = 0;       // skipped: the caller cancelled before start
  uint64_t handler_errors = 0;  // handler threw or dropped its responder
  uint64_t late_replies = 0;    // replies dropped: the request was given up
  uint64_t malformed = 0;       // undecodable request/reply frames at node
  uint64_t pending = 0;         // gauge: accepted, not yet replied
};

// Thread safety: thread-safe.
class Server {
 public:
  // Starts the handler threads and advertises the service on `node`, which
  // must outlive the server. Returns kInvalidArgument for bad options and
  // kAlreadyExists when `node` already serves the service.
  static absl::StatusOr<std::unique_ptr<Server>> Create(Node& node,
                                                        ServerOptions options);

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // Calls Close.
  ~Server();

  ServerStats Stats() const;
  // Drains and leaves: stops advertising (clients send new calls
  // elsewhere; requests still arriving are refused as not run, so they are
  // retried elsewhere), answers every accepted request (up to
  // `drain_timeout`; the rest are told the server gave up), stops the
  // threads. Blocks until done. Idempotent.
  void Close();

 private:
  explicit Server(std::shared_ptr<rr::ServerCore> core);
  std::shared_ptr<rr::ServerCore> core_;
};

}  // namespace fabric

#endif  // PATTERNS_REQREP_SERVER_H_
