// SPDX-License-Identifier: Apache-2.0
// The one request/reply plugin of a node, shared by its servers and
// clients. It owns the request/reply message kinds and keeps the directory
// of services (which peers offer which service). Its caller half (caller.cc)
// runs every call of every client on this node: picks a server, batches
// requests per server, tracks attempts, retries and deadlines, and
// completes calls from the engine thread. A blocking call's first attempt
// may instead be sent by its caller's thread (SendDirect) and adopted by
// the engine afterwards. Requests are handed to the
// servers of this node by service name; a client and a server on the same
// node reach each other through a local loop.
#ifndef PATTERNS_REQREP_INTERNAL_RPC_PLUGIN_H_
#define PATTERNS_REQREP_INTERNAL_RPC_PLUGIN_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "fabric/local_loop.h"
#include "fabric/node.h"
#include "fabric/plugin.h"
#include "patterns/reqrep/client.h"
#include "patterns/reqrep/internal/wire.h"

namespace fabric::rr {

// The engine-thread side of a server. Every method runs on the engine thread.
class ServerEndpoint {
 public:
  virtual ~ServerEndpoint() = default;
  virtual const std::string& service() const = 0;
  // One request of a frame; `EndOfFrame` follows the last one.
  virtual void OnRequest(NodeContext& ctx, const NodeId& from,
                         WireRequest& request, absl::Time now) = 0;
  virtual void EndOfFrame(NodeContext& ctx) = 0;
  virtual void OnCancel(NodeContext& ctx, const NodeId& from, uint64_t id) = 0;
  virtual void OnPeerLeft(NodeContext& ctx, const NodeId& peer) = 0;
  virtual void OnTick(NodeContext& ctx, absl::Time now) = 0;
  virtual void OnDetach(NodeContext& ctx) = 0;
};

// What one Client shares with its calls. Thread safety: thread-safe.
struct ClientShared {
  explicit ClientShared(ClientOptions o) : options(std::move(o)) {}
  const ClientOptions options;
  std::atomic<bool> closed{false};
  // Relaxed counters: independent statistics.
  std::atomic<uint64_t> calls{0}, ok{0}, failed{0}, deadline_exceeded{0},
      unavailable{0}, attempts{0}, retries{0}, in_flight{0};
  // Moving average of blocking calls' round trips in ns (relaxed: a hint
  // for how long Call spins).
  std::atomic<int64_t> recent_rtt_ns{0};
};

// One call from submission to completion.
// Thread safety: the completion fields are guarded by `mu`; the engine
// fields are engine-thread only; the rest is immutable once submitted.
struct CallState {
  enum class Mode : uint8_t { kBlocking, kCallback, kFuture };

  // Immutable once submitted.
  uint64_t id = 0;
  std::string service;
  std::string body;
  std::string key;
  Headers headers;
  absl::Time deadline;
  absl::Duration attempt_timeout;
  uint32_t max_attempts = 1;
  bool wait_for_server = false;
  Mode mode = Mode::kBlocking;
  std::shared_ptr<ClientShared> client;
  Client::Callback callback;
  // Only for kFuture (a promise allocates its state when constructed).
  std::optional<std::promise<absl::StatusOr<Reply>>> promise;

  // Completion. `done` mirrors `finished` for cheap checks on the engine
  // (release when set, acquire when read).
  absl::Mutex mu;
  bool finished ABSL_GUARDED_BY(mu) = false;
  absl::StatusOr<Reply> result ABSL_GUARDED_BY(mu) = absl::UnknownError("");
  std::atomic<bool> done{false};

  // Engine thread only.
  uint32_t attempts = 0;
  absl::Time attempt_deadline = absl::InfiniteFuture();
  absl::InlinedVector<NodeId, 2> live;     // servers holding an attempt
  absl::InlinedVector<NodeId, 3> tried;    // servers sent an attempt
  absl::InlinedVector<NodeId, 1> refused;  // servers that refused it unrun
  absl::Status last_error;
  uint64_t timer_seq = 0;
};

// Ends `call` with `result` unless it already ended. Returns true if this
// call ended it. Runs the callback or fulfils the future on this thread.
bool FinishCall(CallState& call, absl::StatusOr<Reply> result);

// Thread safety: engine thread only, except where noted.
class RpcPlugin : public Plugin,
                  public std::enable_shared_from_this<RpcPlugin> {
 public:
  // Finds or attaches the plugin of `node`. Thread-safe.
  static absl::StatusOr<std::shared_ptr<RpcPlugin>> Get(Node& node);
  explicit RpcPlugin(Node& node) : node_(node) {}

  std::vector<uint16_t> kinds() const override;
  void OnAttach(NodeContext& ctx) override;
  void OnPeerEvent(NodeContext& ctx, const PeerEvent& event) override;
  void OnMessage(NodeContext& ctx, const PeerInfo& from, uint16_t kind,
                 absl::string_view body) override;
  void OnMailboxDrained(NodeContext& ctx) override;
  void OnTick(NodeContext& ctx, absl::Time now) override;
  void OnDetach(NodeContext& ctx) override;

  // Servers. kAlreadyExists when the service is taken on this node.
  absl::Status AddServer(NodeContext& ctx,
                         std::shared_ptr<ServerEndpoint> server);
  // Stops advertising the service; the server still gets its cancels.
  void WithdrawServer(NodeContext& ctx, const std::string& service);
  void RemoveServer(NodeContext& ctx, const std::string& service);

  // Sends to a peer, or to this node itself through the local loop.
  absl::Status Send(NodeContext& ctx, const NodeId& to, uint16_t kind,
                    std::string body);
  // Runs messages queued on the local loop.
  void RunLocal(NodeContext& ctx);

  // Thread-safe: hands a call to the engine (or fails it with kCancelled
  // once the node stopped).
  void Submit(std::shared_ptr<CallState> call);
  // Thread-safe, not on the engine thread: sends the call's first attempt
  // from this thread to the least loaded live server of its service, then
  // leaves it for the engine to adopt. Returns false, leaving the call to
  // Submit, when no such server is published or the send was refused.
  bool SendDirect(const std::shared_ptr<CallState>& call);
  // Thread-safe: fails every call of `client` with kCancelled.
  void CancelClient(std::shared_ptr<ClientShared> client);
  // The servers of `service` known now.
  std::vector<NodeId> ServersOf(const std::string& service) const;

  // Thread-safe.
  uint64_t NextCallId() { return next_id_.fetch_add(1) + 1; }
  bool OnEngineThread() const {
    return engine_thread_.load(std::memory_order_acquire) ==
           std::this_thread::get_id();
  }
  uint64_t malformed() const { return malformed_.load(); }
  uint64_t late_replies() const { return late_replies_.load(); }
  bool detached() const { return detached_.load(); }

 private:
  using Load = std::shared_ptr<std::atomic<uint64_t>>;
  struct ServerState {
    // Attempts sent, not yet answered. Shared with callers' threads that
    // send directly: they add theirs (taking it back if the send fails);
    // only the engine takes away answered ones.
    Load outstanding = std::make_shared<std::atomic<uint64_t>>(0);
    bool suspect = false;
    absl::Time penalized_until = absl::InfinitePast();
  };
  // A server callers may send to directly, as the engine last published.
  struct DirectTarget {
    NodeId id;
    Load outstanding;
  };
  struct Adopt {
    std::shared_ptr<CallState> call;
    NodeId server;
  };
  struct Timer {
    absl::Time at;
    uint64_t id;
    uint64_t seq;
    bool operator>(const Timer& o) const { return at > o.at; }
  };
  using Calls = std::vector<std::shared_ptr<CallState>>;

  void Route(NodeContext& ctx, const NodeId& from, uint16_t kind,
             absl::string_view body);
  void RouteRequests(NodeContext& ctx, const NodeId& from,
                     absl::string_view body);
  void Malformed(uint16_t kind, const NodeId& from, const absl::Status& s);
  void UpdateDirectory(const PeerInfo& peer, bool gone);

  // caller.cc: the engine side of calls.
  void DrainInbox(NodeContext& ctx);
  void Place(NodeContext& ctx, Calls calls, absl::Time now);
  // The requests of one placement for one server. Few servers per
  // placement: linear search beats hashing here.
  struct Batch {
    NodeId server;
    FrameEncoder frame;
    Calls calls;
    uint64_t planned = 0;  // attempts batched for it in this placement
  };
  using Batches = absl::InlinedVector<Batch, 2>;
  using Down = absl::InlinedVector<NodeId, 2>;  // refused a send just now
  const NodeId* Pick(const CallState& call, const Batches& batches,
                     const Down& down, absl::Time now);
  // `counted`: the caller already added it to the server's outstanding.
  void StartAttempt(CallState& call, const NodeId& server, absl::Time now,
                    bool counted = false);
  // Takes over the calls callers sent directly. OnMessage, OnPeerEvent,
  // OnTick and FailAll run it first (a direct call never goes to this node,
  // so replies through the local loop need no adoption).
  void AdoptDirect(NodeContext& ctx);
  // Publishes direct_dir_ from the directory and the servers' state.
  void PublishDirect(NodeContext& ctx, absl::Time now);
  void Retry(NodeContext& ctx, const std::shared_ptr<CallState>& call,
             absl::Time now, bool may_wait);
  void OnReplies(NodeContext& ctx, const NodeId& from, absl::string_view body);
  void OnServerGone(NodeContext& ctx, const NodeId& server,
                    absl::string_view reason, bool left);
  void CheckTimers(NodeContext& ctx, absl::Time now);
  void Schedule(CallState& call, absl::Time at);
  void ReleaseLive(CallState& call, const NodeId& server);
  // Takes one attempt off the server's outstanding count.
  void Unload(const NodeId& server);
  void End(const std::shared_ptr<CallState>& call,
           absl::StatusOr<Reply> result);
  void FlushCancels(NodeContext& ctx);
  void FailAll(NodeContext& ctx, const absl::Status& status,
               const ClientShared* only);

  Node& node_;
  std::atomic<std::thread::id> engine_thread_{};
  std::atomic<uint64_t> next_id_{0};
  std::atomic<uint64_t> malformed_{0};
  std::atomic<uint64_t> late_replies_{0};
  std::atomic<bool> detached_{false};

  // The direct path (caller.cc). Callers hold direct_mu_ while they pick,
  // send and queue for adoption, so the engine, adopting under it, sees a
  // call before it can see its reply.
  absl::Mutex direct_mu_;
  absl::flat_hash_map<std::string, std::vector<DirectTarget>> direct_dir_
      ABSL_GUARDED_BY(direct_mu_);
  std::vector<Adopt> adopt_ ABSL_GUARDED_BY(direct_mu_);
  uint64_t direct_round_robin_ ABSL_GUARDED_BY(direct_mu_) = 0;
  std::atomic<bool> adopt_waiting_{false};

  absl::Mutex inbox_mu_;
  Calls inbox_ ABSL_GUARDED_BY(inbox_mu_);
  bool drain_posted_ ABSL_GUARDED_BY(inbox_mu_) = false;

  // Engine thread only.
  absl::flat_hash_map<std::string, std::shared_ptr<ServerEndpoint>> servers_;
  absl::flat_hash_map<std::string, std::vector<NodeId>> directory_;
  absl::flat_hash_map<NodeId, ServerState> server_state_;
  absl::flat_hash_map<uint64_t, std::shared_ptr<CallState>> calls_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  Calls parked_;  // waiting for a server or a connected link
  absl::flat_hash_map<NodeId, std::vector<uint64_t>> cancels_;
  uint64_t round_robin_ = 0;
  bool in_message_ = false;  // inside OnMessage
  // A call was submitted from inside OnMessage: OnMailboxDrained sends it.
  bool drain_here_ = false;
  LocalLoop local_;
};

}  // namespace fabric::rr

#endif  // PATTERNS_REQREP_INTERNAL_RPC_PLUGIN_H_
