// SPDX-License-Identifier: Apache-2.0
#include "patterns/reqrep/internal/server_core.h"

#include <cxxabi.h>

#include <algorithm>
#include <exception>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "fabric/base/log.h"
#include "fabric/base/status_macros.h"
#include "fabric/base/thread_name.h"
#include "fabric/codec/wire_format.h"

namespace fabric::rr {
namespace {

// Most bytes a request or reply may have: one frame with room to spare.
constexpr size_t kMaxBodyLimit = size_t{15} << 20;
// A reply frame the link refused (not yet connected, queue full) is retried
// every tick for this long.
constexpr absl::Duration kUnsentTtl = absl::Seconds(5);
// A request whose caller's deadline passed this long ago is given up even
// if its handler still holds the responder.
constexpr absl::Duration kPendingGrace = absl::Seconds(1);
// Replies to one client share a frame up to about this size (a single
// larger reply gets a frame of its own), as requests do in caller.cc.
constexpr size_t kMaxReplyFrameBytes = size_t{1} << 20;
// A handler thread holds the replies of handlers quicker than this to send
// them in one frame with the rest of its batch.
constexpr int64_t kQuickHandlerNs = 20'000;
// The longest a held reply waits for a slow handler: past it the engine's
// next tick sends it.
constexpr absl::Duration kMaxHold = absl::Milliseconds(1);

size_t RequestBytes(const WireRequest& r) {
  size_t n = r.body.size();
  for (const auto& [k, v] : r.headers) n += k.size() + v.size();
  return n;
}

}  // namespace

absl::Status ServerCore::Init() {
  const ServerOptions& o = options_;
  if (o.service.empty() || o.service.size() > kMaxServiceName) {
    return absl::InvalidArgumentError("service name must be 1..256 bytes");
  }
  if (!o.handler) return absl::InvalidArgumentError("no handler");
  if (o.threads < 0 || o.threads > 1024) {
    return absl::InvalidArgumentError("threads must be 0..1024");
  }
  if (o.max_pending < 1) {
    return absl::InvalidArgumentError("max_pending must be at least 1");
  }
  if (o.max_request_bytes > kMaxBodyLimit ||
      o.max_reply_bytes > kMaxBodyLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_request_bytes and max_reply_bytes must be at most ",
                     kMaxBodyLimit));
  }
  if (o.dedup_window < absl::ZeroDuration() ||
      o.drain_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("durations must not be negative");
  }
  self_id_ = node_.id();
  FABRIC_ASSIGN_OR_RETURN(plugin_, RpcPlugin::Get(node_));
  std::shared_ptr<ServerCore> self = shared_from_this();
  FABRIC_RETURN_IF_ERROR(node_.Call([self](NodeContext& ctx) {
    return self->plugin_->AddServer(ctx, self);
  }));
  for (int i = 0; i < o.threads; ++i) {
    threads_.emplace_back([self, i] {
      SetCurrentThreadName("fab-serve-", i);
      self->HandlerLoop();
    });
  }
  return absl::OkStatus();
}

// ------------------------------------------------------------- engine side

void ServerCore::OnRequest(NodeContext& ctx, const NodeId& from, WireRequest& r,
                           absl::Time now) {
  counters_.received++;
  if (draining_ || engine_detached_) {
    counters_.rejected_draining++;
    return Refuse(from, r, absl::StatusCode::kUnavailable,
                  "server is draining");
  }
  if (RequestBytes(r) > options_.max_request_bytes) {
    counters_.rejected_too_large++;
    // Final: no other server will take it either.
    return Answer(Caller{from, r.id, r.attempt},
                  absl::StatusCode::kInvalidArgument, 0,
                  absl::StrCat("request of ", RequestBytes(r),
                               " bytes exceeds the server's limit of ",
                               options_.max_request_bytes),
                  "");
  }
  const CallKey call{from, r.id};
  if (by_call_.contains(call)) {
    // Another attempt of a call we hold: its one reply answers both.
    counters_.joined++;
    return;
  }
  const Caller caller{from, r.id, r.attempt};
  const absl::Time deadline = now + absl::Milliseconds(r.timeout_ms);
  std::string key(r.key);
  if (!key.empty()) {
    auto cached = cache_.find(key);
    if (cached != cache_.end()) {
      counters_.cache_hits++;
      return Answer(caller, cached->second.code, kFlagFromCache,
                    cached->second.message, cached->second.body);
    }
    auto running = running_keys_.find(key);
    if (running != running_keys_.end()) {
      counters_.joined++;
      Pending& p = pending_[running->second];
      p.joined.push_back(caller);
      p.deadline = std::max(p.deadline, deadline);
      by_call_[call] = running->second;
      return;
    }
  }
  if (pending_.size() >= options_.max_pending &&
      unsettled_.load(std::memory_order_acquire) > 0) {
    // Some of them may be answered already by handler threads.
    SettleDone(ctx);
  }
  if (pending_.size() >= options_.max_pending) {
    counters_.rejected_busy++;
    return Refuse(
        from, r, absl::StatusCode::kResourceExhausted,
        absl::StrCat("server busy: ", pending_.size(), " requests pending"));
  }
  const uint64_t token = ++next_token_;
  if (!key.empty()) running_keys_[key] = token;
  by_call_[call] = token;
  pending_[token] = Pending{caller, {}, deadline, key, false};
  incoming_.push_back(
      Work{Request{options_.service, std::string(r.body), std::move(r.headers),
                   std::move(key), from, r.id, r.attempt, deadline},
           token});
}

void ServerCore::EndOfFrame(NodeContext& ctx) {
  // The engine is awake anyway: settle what handler threads sent meanwhile.
  if (unsettled_.load(std::memory_order_acquire) > 0) SettleDone(ctx);
  UpdateGauge();
  if (options_.threads == 0) {
    // Inline: handlers run here, on the engine thread, and what they
    // answered at once goes out with this frame's other replies.
    std::vector<Work> work;
    work.swap(incoming_);
    for (Work& w : work) RunHandler(w);
    inline_done_ = false;
    DrainDone(ctx);
    return;
  }
  if (!incoming_.empty()) {
    absl::MutexLock lock(&mu_);
    for (Work& w : incoming_) queue_.push_back(std::move(w));
  }
  incoming_.clear();
  FlushOut(ctx, ctx.Now());
}

void ServerCore::Refuse(const NodeId& from, const WireRequest& r,
                        absl::StatusCode code, absl::string_view message) {
  Answer(Caller{from, r.id, r.attempt}, code, kFlagNotExecuted, message, "");
}

void ServerCore::Answer(const Caller& c, absl::StatusCode code, uint32_t flags,
                        absl::string_view message, absl::string_view body) {
  std::vector<FrameEncoder>& frames = out_[c.client];
  if (frames.empty() || (frames.back().count() > 0 &&
                         frames.back().bytes() + message.size() + body.size() >
                             kMaxReplyFrameBytes)) {
    frames.emplace_back();
  }
  frames.back().AddReply(c.id, c.attempt, static_cast<uint32_t>(code), flags,
                         message, body);
}

void ServerCore::FlushOut(NodeContext& ctx, absl::Time now) {
  if (out_.empty()) return;
  for (auto& [client, frames] : out_) {
    for (FrameEncoder& frame : frames) {
      std::string body = frame.Finish();
      absl::Status sent = plugin_->Send(ctx, client, kReplies, body);
      if (!sent.ok() && !absl::IsNotFound(sent)) {
        // Our link to a new client may not be up yet: try again each tick.
        unsent_.push_back(Unsent{client, now + kUnsentTtl, std::move(body)});
      }
    }
  }
  out_.clear();
  plugin_->RunLocal(ctx);
}

void ServerCore::OnCancel(NodeContext& ctx, const NodeId& from, uint64_t id) {
  (void)ctx;
  auto it = by_call_.find(CallKey{from, id});
  if (it == by_call_.end()) return;
  Pending& p = pending_[it->second];
  if (!p.joined.empty() || p.cancelled) return;  // others still wait for it
  p.cancelled = true;
  absl::MutexLock lock(&mu_);
  cancelled_.insert(it->second);
}

void ServerCore::OnPeerLeft(NodeContext& ctx, const NodeId& peer) {
  unsent_.erase(
      std::remove_if(unsent_.begin(), unsent_.end(),
                     [&](const Unsent& u) { return u.client == peer; }),
      unsent_.end());
  std::vector<uint64_t> ids;
  for (const auto& [key, token] : by_call_) {
    if (key.client == peer) ids.push_back(key.id);
  }
  for (uint64_t id : ids) OnCancel(ctx, peer, id);
}

void ServerCore::OnTick(NodeContext& ctx, absl::Time now) {
  // Replies held behind a handler that turned slow.
  for (const std::shared_ptr<Held>& h : AllHeld()) {
    FlushHeld(*h, absl::Now() - kMaxHold);
  }
  if (inline_done_ || unsettled_.load(std::memory_order_acquire) > 0) {
    inline_done_ = false;
    DrainDone(ctx);
  }
  for (auto it = unsent_.begin(); it != unsent_.end();) {
    if (now > it->until ||
        plugin_->Send(ctx, it->client, kReplies, it->frame).ok()) {
      it = unsent_.erase(it);
    } else {
      ++it;
    }
  }
  // Give up requests whose handler never answered, so they stop counting
  // against max_pending. A later reply is dropped (late_replies), unless a
  // handler thread had sent it already (SettleDone counts it replied).
  std::vector<uint64_t> stale;
  for (const auto& [token, p] : pending_) {
    if (now > p.deadline + kPendingGrace) stale.push_back(token);
  }
  for (uint64_t token : stale) {
    counters_.expired++;
    auto it = pending_.find(token);
    Pending p = std::move(it->second);
    pending_.erase(it);
    Forget(token, p);
  }
  if (!stale.empty()) UpdateGauge();
  PruneCache(now);
}

void ServerCore::OnDetach(NodeContext& ctx) {
  (void)ctx;
  engine_detached_ = true;
  pending_.clear();
  by_call_.clear();
  running_keys_.clear();
  out_.clear();
  unsent_.clear();
  UpdateGauge();
}

void ServerCore::Forget(uint64_t token, const Pending& p) {
  by_call_.erase(CallKey{p.first.client, p.first.id});
  for (const Caller& c : p.joined) by_call_.erase(CallKey{c.client, c.id});
  if (!p.key.empty()) {
    auto it = running_keys_.find(p.key);
    if (it != running_keys_.end() && it->second == token) {
      running_keys_.erase(it);
    }
  }
  if (p.cancelled) {
    absl::MutexLock lock(&mu_);
    cancelled_.erase(token);
  }
}

void ServerCore::DrainDone(NodeContext& ctx) {
  SettleDone(ctx);  // updates the gauge
  FlushOut(ctx, ctx.Now());
}

void ServerCore::SettleDone(NodeContext& ctx) {
  std::vector<Done> done;
  {
    absl::MutexLock lock(&done_mu_);
    done.swap(done_);
    done_posted_ = false;
  }
  uint64_t sent = 0;
  for (const Done& d : done) sent += d.sent ? 1 : 0;
  if (engine_detached_) {
    unsettled_.fetch_sub(sent, std::memory_order_release);
    return;
  }
  const absl::Time now = ctx.Now();
  for (Done& d : done) {
    auto it = pending_.find(d.token);
    if (it == pending_.end()) {
      if (d.sent) {
        // A handler thread sent it just before OnTick gave the request up
        // (nothing else drops a request while direct sends are on): the
        // client got its answer, so it is replied, not expired, not late.
        counters_.expired--;
      } else {
        counters_.late_replies++;
      }
      continue;
    }
    Pending p = std::move(it->second);
    pending_.erase(it);
    Forget(d.token, p);
    if (d.sent) continue;  // counted when sent; no key, so nothing to keep
    if (d.code == absl::StatusCode::kOk) {
      counters_.replied++;
    } else if ((d.flags & kFlagNotExecuted) == 0) {
      counters_.failed++;
    }
    if (!p.key.empty() && (d.flags & kFlagNotExecuted) == 0) {
      Remember(p.key, d, now);
    }
    if (d.silent || p.cancelled) continue;
    Answer(p.first, d.code, d.flags, d.message, d.body);
    for (const Caller& c : p.joined) {
      Answer(c, d.code, d.flags, d.message, d.body);
    }
  }
  UpdateGauge();
  unsettled_.fetch_sub(sent, std::memory_order_release);
}

void ServerCore::Remember(const std::string& key, const Done& d,
                          absl::Time now) {
  if (options_.dedup_window <= absl::ZeroDuration()) return;
  const size_t bytes = key.size() + d.message.size() + d.body.size();
  if (bytes > options_.dedup_max_bytes) return;
  auto [it, inserted] =
      cache_.try_emplace(key, Cached{d.code, d.message, d.body});
  if (!inserted) return;
  cache_order_.emplace_back(now, key);
  cache_bytes_ += bytes;
  PruneCache(now);
}

void ServerCore::PruneCache(absl::Time now) {
  while (!cache_order_.empty() &&
         (cache_.size() > options_.dedup_max_entries ||
          cache_bytes_ > options_.dedup_max_bytes ||
          now - cache_order_.front().first > options_.dedup_window)) {
    auto it = cache_.find(cache_order_.front().second);
    if (it != cache_.end()) {
      cache_bytes_ -=
          std::min(cache_bytes_, it->first.size() + it->second.message.size() +
                                     it->second.body.size());
      cache_.erase(it);
    }
    cache_order_.pop_front();
  }
}

void ServerCore::AbortPending(NodeContext& ctx) {
  for (auto& [token, p] : pending_) {
    Forget(token, p);
    if (p.cancelled) continue;
    const absl::string_view why = "server closed before the handler replied";
    Answer(p.first, absl::StatusCode::kUnavailable, kFlagAborted, why, "");
    for (const Caller& c : p.joined) {
      Answer(c, absl::StatusCode::kUnavailable, kFlagAborted, why, "");
    }
  }
  pending_.clear();
  UpdateGauge();
  FlushOut(ctx, ctx.Now());
}

// ------------------------------------------------------------ handler side

thread_local ServerCore::ReplyBatch ServerCore::batch_;

std::vector<std::shared_ptr<ServerCore::Held>> ServerCore::AllHeld() {
  absl::MutexLock lock(&held_mu_);
  return held_;
}

void ServerCore::FlushHeld(Held& h, absl::Time cutoff) {
  std::vector<Outgoing> items;
  {
    absl::MutexLock lock(&h.mu);
    if (h.items.empty() || h.since > cutoff) return;
    items.swap(h.items);
  }
  SendDirect(items);
}

void ServerCore::HandlerLoop() {
  std::vector<Work> batch;
  std::vector<bool> skip;
  int64_t handler_ns = 0;  // moving average of this thread's handler runs
  auto held = std::make_shared<Held>();
  {
    absl::MutexLock lock(&held_mu_);
    held_.push_back(held);
  }
  for (;;) {
    batch.clear();
    skip.clear();
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      // Take a share of what waits, so idle threads find work too.
      const size_t take = std::clamp<size_t>(
          queue_.size() / static_cast<size_t>(options_.threads), 1, 64);
      for (size_t i = 0; i < take && !queue_.empty(); ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
        skip.push_back(cancelled_.contains(batch.back().token));
      }
      running_ += static_cast<int>(batch.size());
    }
    // While this thread's handlers are quick (a moving average under
    // kQuickHandlerNs), the replies of a batch leave together, one frame
    // per client. What is held leaves before a handler when they are not,
    // after any handler that took longer, and, should a handler turn slow
    // while replies wait, at the engine's next tick once held kMaxHold.
    if (batch.size() > 1) batch_ = ReplyBatch{this, held.get()};
    for (size_t i = 0; i < batch.size(); ++i) {
      Work& w = batch[i];
      if (handler_ns > kQuickHandlerNs) {
        FlushHeld(*held, absl::InfiniteFuture());
      }
      const int64_t start_ns = absl::GetCurrentTimeNanos();
      if (skip[i]) {
        counters_.cancelled++;
        PostDone(Done{w.token, absl::StatusCode::kCancelled, kFlagNotExecuted,
                      "", "", /*silent=*/true});
      } else if (absl::Now() >= w.request.deadline) {
        counters_.expired++;
        PostDone(Done{w.token, absl::StatusCode::kDeadlineExceeded,
                      kFlagNotExecuted, "the deadline passed before it started",
                      "",
                      /*silent=*/false});
      } else {
        RunHandler(w);
      }
      const int64_t took_ns = absl::GetCurrentTimeNanos() - start_ns;
      handler_ns += (took_ns - handler_ns) / 8;
      if (took_ns > kQuickHandlerNs) FlushHeld(*held, absl::InfiniteFuture());
    }
    batch_ = ReplyBatch{};
    FlushHeld(*held, absl::InfiniteFuture());
    absl::MutexLock lock(&mu_);
    running_ -= static_cast<int>(batch.size());
  }
}

void ServerCore::RunHandler(Work& w) {
  const uint64_t token = w.token;
  const ReplyRoute route{w.request.client, w.request.id, w.request.attempt,
                         w.request.deadline, w.request.idempotency_key.empty()};
  try {
    options_.handler(std::move(w.request),
                     Responder(shared_from_this(), token, route));
  } catch (abi::__forced_unwind&) {
    throw;  // the thread is being ended: see Worker's RunHandler
  } catch (const std::exception& e) {
    // The responder, destroyed while unwinding, sent kInternal already.
    FABRIC_LOG(kWarning, kReqRep, "FAB-RR-HANDLER-THREW ", options_.service,
               ": ", e.what());
  } catch (...) {
    FABRIC_LOG(kWarning, kReqRep, "FAB-RR-HANDLER-THREW ", options_.service);
  }
}

absl::Status ServerCore::Complete(uint64_t token, const ReplyRoute& route,
                                  absl::Status status, std::string body) {
  absl::Status result = absl::OkStatus();
  if (status.ok() && body.size() > options_.max_reply_bytes) {
    status = absl::ResourceExhaustedError(
        absl::StrCat("reply of ", body.size(),
                     " bytes exceeds the server's max_reply_bytes of ",
                     options_.max_reply_bytes));
    body.clear();
    result = status;
  }
  Done d{token, status.code(), 0, std::string(status.message()),
         std::move(body)};
  if (!route.direct || plugin_->OnEngineThread()) {
    PostDone(std::move(d));
  } else if (batch_.core == this) {
    absl::MutexLock lock(&batch_.held->mu);
    if (batch_.held->items.empty()) batch_.held->since = absl::Now();
    batch_.held->items.push_back(Outgoing{route, std::move(d)});
  } else {
    std::vector<Outgoing> one;
    one.push_back(Outgoing{route, std::move(d)});
    SendDirect(one);
  }
  return result;
}

void ServerCore::SendDirect(std::vector<Outgoing>& items) {
  std::vector<Done> engine;  // to settle and send through the engine
  // One frame per client; few clients per batch, so a linear search.
  struct Frame {
    NodeId client;
    FrameEncoder encoder;
    std::vector<Outgoing*> items;
  };
  absl::InlinedVector<Frame, 2> frames;
  const absl::Time now = absl::Now();
  const NodeId& self = self_id_;  // node_ may be gone (node_released_)
  for (Outgoing& o : items) {
    // A request the engine gave up on, or its caller withdrew, is settled
    // by the engine (late or silent). A client on this node is reached
    // through the engine's local loop only.
    if (o.route.client == self || now > o.route.deadline + kPendingGrace ||
        IsCancelled(o.done.token)) {
      engine.push_back(std::move(o.done));
      continue;
    }
    // The client's newest frame, or a new one when it has none or it is
    // full (a single larger reply gets a frame of its own).
    auto f = std::find_if(frames.rbegin(), frames.rend(), [&](const Frame& x) {
      return x.client == o.route.client;
    });
    if (f == frames.rend() ||
        (f->encoder.count() > 0 &&
         f->encoder.bytes() + o.done.message.size() + o.done.body.size() >
             kMaxReplyFrameBytes)) {
      frames.push_back(Frame{o.route.client, FrameEncoder(), {}});
      f = frames.rbegin();
    }
    f->encoder.AddReply(o.route.id, o.route.attempt,
                        static_cast<uint32_t>(o.done.code), o.done.flags,
                        o.done.message, o.done.body);
    f->items.push_back(&o);
  }
  for (Frame& f : frames) {
    if (f.items.empty()) continue;
    const std::string body = f.encoder.Finish();
    bool sent = false;
    {
      absl::MutexLock lock(&done_mu_);
      if (!node_released_ && !direct_closed_) {
        // Notes and counts go first: the client may see the reply and act
        // (call again, read Stats) before this thread runs again. The
        // engine, seeing notes counted, waits for this lock to settle them.
        uint64_t ok = 0;
        for (Outgoing* o : f.items) {
          const Done& d = o->done;
          ok += d.code == absl::StatusCode::kOk ? 1 : 0;
          done_.push_back(Done{d.token, d.code, d.flags, "", "", false, true});
        }
        const uint64_t n = f.items.size();
        counters_.replied += ok;
        counters_.failed += n - ok;
        unsettled_.fetch_add(n, std::memory_order_release);
        sent = node_.SendDirect(f.client, kReplies, body).ok();
        if (!sent) {
          done_.resize(done_.size() - n);
          counters_.replied -= ok;
          counters_.failed -= n - ok;
          unsettled_.fetch_sub(n, std::memory_order_release);
        }
      }
    }
    if (!sent) {
      for (Outgoing* o : f.items) engine.push_back(std::move(o->done));
    }
  }
  items.clear();
  for (Done& d : engine) PostDone(std::move(d));
}

void ServerCore::PostDone(Done d) {
  absl::MutexLock lock(&done_mu_);
  if (node_released_) {
    counters_.late_replies++;
    return;
  }
  done_.push_back(std::move(d));
  if (done_posted_) return;
  if (plugin_->OnEngineThread()) {
    // Answered on the engine thread (an inline handler, or a callback):
    // drained at the end of this frame or by the next tick, no wake-up.
    inline_done_ = true;
    return;
  }
  done_posted_ = true;
  // Posting under the lock (it never blocks) keeps Close from releasing
  // the node in between.
  std::shared_ptr<ServerCore> self = shared_from_this();
  (void)node_.Post([self](NodeContext& ctx) { self->DrainDone(ctx); });
}

bool ServerCore::IsCancelled(uint64_t token) const {
  absl::MutexLock lock(&mu_);
  return cancelled_.contains(token);
}

// ----------------------------------------------------------------- closing

void ServerCore::Close() {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
  }
  std::shared_ptr<ServerCore> self = shared_from_this();
  // Stop advertising: clients send new calls elsewhere, and what still
  // arrives is refused unrun.
  const absl::Status withdrawn = node_.Call([self](NodeContext& ctx) {
    self->draining_ = true;
    self->plugin_->WithdrawServer(ctx, self->options_.service);
    return absl::OkStatus();
  });
  const absl::Time drain_deadline = absl::Now() + options_.drain_timeout;
  if (withdrawn.ok()) {
    while (pending_gauge_.load(std::memory_order_relaxed) > 0 &&
           absl::Now() < drain_deadline) {
      // Replies sent directly count down only once the engine settles
      // them; it would at its next tick, but need not wait for it.
      if (unsettled_.load(std::memory_order_acquire) > 0) {
        (void)node_.Post([self](NodeContext& ctx) { self->DrainDone(ctx); });
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  bool idle;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    auto no_running = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return running_ == 0;
    };
    idle = mu_.AwaitWithDeadline(absl::Condition(&no_running),
                                 std::max(drain_deadline, absl::Now()));
    if (!idle) {
      FABRIC_LOG(kWarning, kReqRep, "FAB-RR-DRAIN ", options_.service, ": ",
                 running_, " handler(s) still running after ",
                 absl::FormatDuration(options_.drain_timeout));
    }
  }
  for (std::thread& t : threads_) {
    // A thread still inside a handler keeps `self` alive and ends on its own.
    if (idle && t.get_id() != std::this_thread::get_id()) {
      t.join();
    } else {
      t.detach();
    }
  }
  // Replies still held by a handler thread that outlived the drain are
  // made already: send them before the rest is aborted.
  for (const std::shared_ptr<Held>& h : AllHeld()) {
    FlushHeld(*h, absl::InfiniteFuture());
  }
  {
    // What handlers still send now passes the engine, which drops it as
    // late once AbortPending below answered its request.
    absl::MutexLock lock(&done_mu_);
    direct_closed_ = true;
  }
  if (withdrawn.ok()) {
    (void)node_.Call([self](NodeContext& ctx) {
      if (self->engine_detached_) return absl::OkStatus();
      self->DrainDone(ctx);
      self->AbortPending(ctx);
      self->plugin_->RemoveServer(ctx, self->options_.service);
      self->engine_detached_ = true;
      return absl::OkStatus();
    });
  }
  absl::MutexLock lock(&done_mu_);
  node_released_ = true;
}

ServerStats ServerCore::Stats() const {
  ServerStats s;
  const Counters& c = counters_;
  s.received = c.received.load();
  s.replied = c.replied.load();
  s.failed = c.failed.load();
  s.rejected_busy = c.rejected_busy.load();
  s.rejected_draining = c.rejected_draining.load();
  s.rejected_too_large = c.rejected_too_large.load();
  s.joined = c.joined.load();
  s.cache_hits = c.cache_hits.load();
  s.expired = c.expired.load();
  s.cancelled = c.cancelled.load();
  s.handler_errors = c.handler_errors.load();
  s.late_replies = c.late_replies.load();
  s.malformed = plugin_ != nullptr ? plugin_->malformed() : 0;
  // Replies sent but not yet settled by the engine are not pending.
  const uint64_t unsettled = unsettled_.load(std::memory_order_acquire);
  const uint64_t pending = pending_gauge_.load(std::memory_order_relaxed);
  s.pending = pending > unsettled ? pending - unsettled : 0;
  return s;
}

}  // namespace fabric::rr
