// SPDX-License-Identifier: Apache-2.0
// The server behind `fabric::Server`: requests arrive on the engine thread
// (OnRequest) and wait in a queue for a handler thread. A handler thread
// sends the reply to a request without an idempotency key itself
// (Node::SendDirect), and leaves the engine a note to drop the request from
// `pending_` when it next wakes anyway. Every other reply (keyed, from the
// engine thread, or one the link refused) goes to an outbox the engine
// drains into REPLIES frames of about 1 MiB per client. The engine keeps
// every accepted request in `pending_` until it is answered, which is what
// idempotency keys, cancels, max_pending and the drain rely on.
#ifndef PATTERNS_REQREP_INTERNAL_SERVER_CORE_H_
#define PATTERNS_REQREP_INTERNAL_SERVER_CORE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "fabric/node.h"
#include "patterns/reqrep/internal/rpc_plugin.h"
#include "patterns/reqrep/internal/wire.h"
#include "patterns/reqrep/server.h"

namespace fabric::rr {

// Thread safety: Init, Close, Stats, Complete and IsCancelled are
// thread-safe; the ServerEndpoint methods run on the engine thread.
class ServerCore : public ServerEndpoint,
                   public std::enable_shared_from_this<ServerCore> {
 public:
  ServerCore(Node& node, ServerOptions options)
      : node_(node), options_(std::move(options)) {}

  absl::Status Init();
  void Close();
  ServerStats Stats() const;

  // From responders, on any thread.
  absl::Status Complete(uint64_t token, const ReplyRoute& route,
                        absl::Status status, std::string body);
  bool IsCancelled(uint64_t token) const;
  void CountDropped() { counters_.handler_errors++; }

  // ServerEndpoint (engine thread).
  const std::string& service() const override { return options_.service; }
  void OnRequest(NodeContext& ctx, const NodeId& from, WireRequest& r,
                 absl::Time now) override;
  void EndOfFrame(NodeContext& ctx) override;
  void OnCancel(NodeContext& ctx, const NodeId& from, uint64_t id) override;
  void OnPeerLeft(NodeContext& ctx, const NodeId& peer) override;
  void OnTick(NodeContext& ctx, absl::Time now) override;
  void OnDetach(NodeContext& ctx) override;

 private:
  struct Work {
    Request request;
    uint64_t token;
  };
  struct Done {
    uint64_t token;
    absl::StatusCode code;
    uint32_t flags;
    std::string message;
    std::string body;
    bool silent = false;  // the caller withdrew it: send nothing
    bool sent = false;    // a handler thread sent it: bookkeeping only
  };
  struct Caller {
    NodeId client;
    uint64_t id;
    uint32_t attempt;
  };
  struct Pending {
    Caller first;
    std::vector<Caller> joined;  // other calls with the same key
    absl::Time deadline;
    std::string key;
    bool cancelled = false;
  };
  struct CallKey {
    NodeId client;
    uint64_t id;
    friend bool operator==(const CallKey& a, const CallKey& b) {
      return a.id == b.id && a.client == b.client;
    }
    template <typename H>
    friend H AbslHashValue(H h, const CallKey& k) {
      return H::combine(std::move(h), k.client, k.id);
    }
  };
  struct Cached {
    absl::StatusCode code;
    std::string message;
    std::string body;
  };
  struct Unsent {
    NodeId client;
    absl::Time until;
    std::string frame;
  };

  void HandlerLoop();
  void RunHandler(Work& w);
  struct Outgoing {
    ReplyRoute route;
    Done done;
  };
  // Replies a handler thread holds to send with the rest of its batch,
  // while its handlers are quick (HandlerLoop). The engine's tick and Close
  // send what was held longer than kMaxHold, so a handler that turns slow
  // cannot keep the others' replies for its whole run.
  struct Held {
    absl::Mutex mu;
    std::vector<Outgoing> items ABSL_GUARDED_BY(mu);
    absl::Time since ABSL_GUARDED_BY(mu);  // when the first was held
  };
  struct ReplyBatch {
    const ServerCore* core = nullptr;
    Held* held = nullptr;
  };
  static thread_local ReplyBatch batch_;
  // Sends what `h` holds if it was held since `cutoff` or before.
  void FlushHeld(Held& h, absl::Time cutoff);
  std::vector<std::shared_ptr<Held>> AllHeld();

  void PostDone(Done d);
  // Sends `items` from this (handler) thread, one frame per client, and
  // leaves the engine notes; what must take the engine's path (the request
  // was given up or cancelled, the client is local, the link refused) is
  // posted instead. Empties `items`.
  void SendDirect(std::vector<Outgoing>& items);
  // Settles done_ and sends what it answered (plus the outbox).
  void DrainDone(NodeContext& ctx);
  // Settles done_ against pending_; answers go to the outbox, unsent.
  void SettleDone(NodeContext& ctx);
  void Answer(const Caller& c, absl::StatusCode code, uint32_t flags,
              absl::string_view message, absl::string_view body);
  void Refuse(const NodeId& from, const WireRequest& r, absl::StatusCode code,
              absl::string_view message);
  void FlushOut(NodeContext& ctx, absl::Time now);
  void Forget(uint64_t token, const Pending& p);
  void Remember(const std::string& key, const Done& d, absl::Time now);
  void PruneCache(absl::Time now);
  void AbortPending(NodeContext& ctx);
  void UpdateGauge() {
    pending_gauge_.store(pending_.size(), std::memory_order_relaxed);
  }

  Node& node_;
  NodeId self_id_;  // node_.id(), set by Init, readable after Close
  const ServerOptions options_;
  std::shared_ptr<RpcPlugin> plugin_;
  std::vector<std::thread> threads_;

  mutable absl::Mutex mu_;
  std::deque<Work> queue_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<uint64_t> cancelled_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex held_mu_;
  std::vector<std::shared_ptr<Held>> held_ ABSL_GUARDED_BY(held_mu_);

  absl::Mutex done_mu_;
  std::vector<Done> done_ ABSL_GUARDED_BY(done_mu_);
  bool done_posted_ ABSL_GUARDED_BY(done_mu_) = false;
  // Set when Close returns: the node may be gone, so responders still held
  // by handlers must not touch it.
  bool node_released_ ABSL_GUARDED_BY(done_mu_) = false;
  // Set before Close gives up on what is pending: from then on a reply
  // must pass the engine, which drops it as late.
  bool direct_closed_ ABSL_GUARDED_BY(done_mu_) = false;
  // Replies handler threads sent whose notes in done_ the engine has not
  // settled yet (no drain is posted for them). Stats subtracts them from
  // the pending gauge.
  std::atomic<uint64_t> unsettled_{0};

  struct Counters {
    std::atomic<uint64_t> received{0}, replied{0}, failed{0}, rejected_busy{0},
        rejected_draining{0}, rejected_too_large{0}, joined{0}, cache_hits{0},
        expired{0}, cancelled{0}, handler_errors{0}, late_replies{0};
  };
  Counters counters_;
  std::atomic<uint64_t> pending_gauge_{0};  // relaxed: a gauge

  // Engine thread only.
  bool inline_done_ = false;  // replies queued from the engine thread
  bool draining_ = false;
  bool engine_detached_ = false;
  uint64_t next_token_ = 0;
  absl::flat_hash_map<uint64_t, Pending> pending_;
  absl::flat_hash_map<CallKey, uint64_t> by_call_;
  absl::flat_hash_map<std::string, uint64_t> running_keys_;
  absl::flat_hash_map<std::string, Cached> cache_;
  std::deque<std::pair<absl::Time, std::string>> cache_order_;
  size_t cache_bytes_ = 0;
  std::vector<Work> incoming_;
  // Replies to send per client: frames of about kMaxReplyFrameBytes each
  // (the last one open), so a burst of large replies never makes a frame
  // beyond the peer's message limit.
  absl::flat_hash_map<NodeId, std::vector<FrameEncoder>> out_;
  std::vector<Unsent> unsent_;
};

}  // namespace fabric::rr

#endif  // PATTERNS_REQREP_INTERNAL_SERVER_CORE_H_
