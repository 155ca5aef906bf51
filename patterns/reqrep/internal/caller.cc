// SPDX-License-Identifier: Apache-2.0
// The plugin's caller half: every call of every client on this node, on
// the engine thread. A call is placed on the server of its service with the
// fewest attempts outstanding (preferring live, unpenalized, untried ones),
// batched with other calls to that server into one REQUESTS frame, and
// retried when an attempt times out, its server is suspect or leaves, or
// the server refuses it unrun. A blocking call's first attempt may be sent
// by the caller's own thread to a server the engine published, and is
// adopted by the engine afterwards. docs/reqrep.md describes the rules.
#include <algorithm>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fabric/base/log.h"
#include "patterns/reqrep/internal/rpc_plugin.h"

namespace fabric::rr {
namespace {

// A REQUESTS frame stops growing at this size unless one request is larger.
constexpr size_t kMaxFrameBytes = 1 << 20;
// A server whose attempt timed out is avoided for this long while others
// are available (outlier ejection).
constexpr absl::Duration kPenalty = absl::Seconds(2);

template <typename C>
bool Contains(const C& c, const NodeId& id) {
  return std::find(c.begin(), c.end(), id) != c.end();
}

// The element of `items` with the lowest `score` (a std::optional; nullopt
// skips the element), scanning from `rotation % size` so that equals take
// turns. Null if `items` is empty or every element was skipped.
template <typename T, typename ScoreFn>
const T* LowestRotating(const std::vector<T>& items, uint64_t rotation,
                        ScoreFn score) {
  const size_t n = items.size();
  if (n == 0) return nullptr;
  const size_t start = rotation % n;
  const T* best = nullptr;
  typename std::invoke_result_t<ScoreFn, const T&>::value_type best_score{};
  for (size_t i = 0; i < n; ++i) {
    const T& item = items[(start + i) % n];
    auto s = score(item);
    if (s.has_value() && (best == nullptr || *s < best_score)) {
      best = &item;
      best_score = *s;
    }
  }
  return best;
}

void CountResult(ClientShared& client, const absl::Status& status) {
  client.in_flight.fetch_sub(1, std::memory_order_relaxed);
  if (status.ok()) {
    client.ok.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  client.failed.fetch_add(1, std::memory_order_relaxed);
  if (absl::IsDeadlineExceeded(status)) {
    client.deadline_exceeded.fetch_add(1, std::memory_order_relaxed);
  } else if (absl::IsUnavailable(status)) {
    client.unavailable.fetch_add(1, std::memory_order_relaxed);
  }
}

std::string Describe(const CallState& c) {
  std::string s =
      absl::StrCat(c.attempts, c.attempts == 1 ? " attempt" : " attempts");
  if (!c.last_error.ok())
    absl::StrAppend(&s, "; last: ", c.last_error.message());
  return s;
}

absl::Status DeadlineError(const CallState& c) {
  return absl::DeadlineExceededError(
      absl::StrCat("service ", c.service, ": no reply before the deadline (",
                   Describe(c), ")"));
}

}  // namespace

bool FinishCall(CallState& call, absl::StatusOr<Reply> result) {
  {
    absl::MutexLock lock(&call.mu);
    if (call.finished) return false;
    // Counted before `finished` is seen, so a caller that wakes sees it.
    CountResult(*call.client, result.status());
    call.finished = true;
    call.done.store(true, std::memory_order_release);
    if (call.mode == CallState::Mode::kBlocking) {
      call.result = std::move(result);
    }
  }
  switch (call.mode) {
    case CallState::Mode::kBlocking:
      break;  // the waiter woke when `finished` turned true
    case CallState::Mode::kCallback: {
      Client::Callback done = std::move(call.callback);
      done(std::move(result));
      break;
    }
    case CallState::Mode::kFuture:
      call.promise->set_value(std::move(result));
      break;
  }
  return true;
}

void RpcPlugin::Submit(std::shared_ptr<CallState> call) {
  bool post = false;
  {
    absl::MutexLock lock(&inbox_mu_);
    if (!detached_.load()) {
      inbox_.push_back(std::move(call));
      post = !drain_posted_;
      drain_posted_ = true;
    }
  }
  if (call != nullptr) {  // not moved: the node is closed
    FinishCall(*call, absl::CancelledError("the node is closed"));
    return;
  }
  if (!post) return;
  if (OnEngineThread() && in_message_) {
    // A callback calling again: OnMessage drains when it returns, which
    // saves a wake-up of the engine per batch.
    drain_here_ = true;
    return;
  }
  std::shared_ptr<RpcPlugin> self = shared_from_this();
  absl::Status posted =
      node_.Post([self](NodeContext& ctx) { self->DrainInbox(ctx); });
  if (posted.ok()) return;
  Calls failed;
  {
    absl::MutexLock lock(&inbox_mu_);
    failed.swap(inbox_);
    drain_posted_ = false;
  }
  for (auto& c : failed)
    FinishCall(*c, absl::CancelledError("the node is closed"));
}

void RpcPlugin::CancelClient(std::shared_ptr<ClientShared> client) {
  std::shared_ptr<RpcPlugin> self = shared_from_this();
  (void)node_.Post([self, client](NodeContext& ctx) {
    self->FailAll(ctx, absl::CancelledError("the client was closed"),
                  client.get());
    self->FlushCancels(ctx);
    self->RunLocal(ctx);
  });
}

bool RpcPlugin::SendDirect(const std::shared_ptr<CallState>& call) {
  const int64_t left_ms = std::max<int64_t>(
      1, absl::ToInt64Milliseconds(call->deadline - absl::Now()));
  FrameEncoder frame;
  frame.AddRequest(call->id, 1, call->service, static_cast<uint64_t>(left_ms),
                   call->key, call->headers, call->body);
  const std::string body = frame.Finish();
  absl::MutexLock lock(&direct_mu_);
  auto it = direct_dir_.find(call->service);
  if (it == direct_dir_.end() || it->second.empty()) return false;
  // Least outstanding first, rotating among equals, as Pick does.
  const DirectTarget* best = LowestRotating(
      it->second, direct_round_robin_++, [](const DirectTarget& t) {
        return std::optional<uint64_t>(
            t.outstanding->load(std::memory_order_relaxed));
      });
  if (best == nullptr) return false;
  // Queued for adoption before the send: the engine may hold the reply
  // before this thread runs again, and it must find the call then. It
  // cannot take the queue until this thread lets go of the lock.
  best->outstanding->fetch_add(1, std::memory_order_relaxed);
  adopt_.push_back(Adopt{call, best->id});
  adopt_waiting_.store(true, std::memory_order_release);
  if (!node_.SendDirect(best->id, kRequests, body).ok()) {
    adopt_.pop_back();
    best->outstanding->fetch_sub(1, std::memory_order_relaxed);
    return false;  // link not up or full: the engine's path decides
  }
  return true;
}

void RpcPlugin::AdoptDirect(NodeContext& ctx) {
  if (!adopt_waiting_.load(std::memory_order_acquire)) return;
  std::vector<Adopt> adopted;
  {
    absl::MutexLock lock(&direct_mu_);
    adopted.swap(adopt_);
    adopt_waiting_.store(false, std::memory_order_relaxed);
  }
  const absl::Time now = ctx.Now();
  for (Adopt& a : adopted) {
    std::shared_ptr<CallState>& call = a.call;
    StartAttempt(*call, a.server, now, /*counted=*/true);
    calls_.try_emplace(call->id, call);
    if (call->done.load(std::memory_order_acquire)) {
      End(call, absl::CancelledError(""));  // its waiter gave up
    } else if (call->client->closed.load()) {
      End(call, absl::CancelledError("the client was closed"));
    } else if (!server_state_.contains(a.server)) {
      // It left after the caller read the published list: no event will
      // come for it now, so go elsewhere at once.
      ReleaseLive(*call, a.server);
      call->last_error = absl::UnavailableError(
          absl::StrCat("server node ", a.server.ShortHex(), " left"));
      Retry(ctx, call, now, /*may_wait=*/false);
    } else if (server_state_[a.server].suspect) {
      // It turned suspect meanwhile: as OnServerGone does, keep the
      // attempt (its reply still counts) and try elsewhere too.
      call->last_error = absl::UnavailableError(
          absl::StrCat("server node ", a.server.ShortHex(), " is suspect"));
      Retry(ctx, call, now, /*may_wait=*/false);
    }
  }
}

void RpcPlugin::PublishDirect(NodeContext& ctx, absl::Time now) {
  absl::flat_hash_map<std::string, std::vector<DirectTarget>> dir;
  for (const auto& [service, servers] : directory_) {
    std::vector<DirectTarget> targets;
    for (const NodeId& s : servers) {
      // A server on this node is reached through the local loop only.
      if (s == ctx.self_id()) continue;
      auto st = server_state_.find(s);
      if (st == server_state_.end() || st->second.suspect ||
          st->second.penalized_until > now) {
        continue;
      }
      targets.push_back(DirectTarget{s, st->second.outstanding});
    }
    if (!targets.empty()) dir.emplace(service, std::move(targets));
  }
  absl::MutexLock lock(&direct_mu_);
  direct_dir_.swap(dir);
}

void RpcPlugin::DrainInbox(NodeContext& ctx) {
  Calls calls;
  {
    absl::MutexLock lock(&inbox_mu_);
    calls.swap(inbox_);
    drain_posted_ = false;
  }
  Place(ctx, std::move(calls), ctx.Now());
  FlushCancels(ctx);
  RunLocal(ctx);
}

void RpcPlugin::Place(NodeContext& ctx, Calls calls, absl::Time now) {
  Down down;
  Calls again;
  auto flush = [&](Batch& b) {
    absl::Status sent = Send(ctx, b.server, kRequests, b.frame.Finish());
    if (sent.ok()) {
      for (auto& c : b.calls) {
        StartAttempt(*c, b.server, now);
        calls_.try_emplace(c->id, c);
      }
    } else {
      // Not connected yet, or its queue is full: try the others first.
      down.push_back(b.server);
      for (auto& c : b.calls) again.push_back(std::move(c));
    }
    b.calls.clear();
  };
  while (!calls.empty()) {
    Batches batches;
    for (auto& c : calls) {
      if (c->done.load(std::memory_order_acquire)) {
        End(c, absl::CancelledError(""));  // its waiter gave up: forget it
        continue;
      }
      if (c->client->closed.load()) {
        End(c, absl::CancelledError("the client was closed"));
        continue;
      }
      if (now >= c->deadline) {
        End(c, DeadlineError(*c));
        continue;
      }
      const NodeId* picked = Pick(*c, batches, down, now);
      if (picked == nullptr) {
        auto it = directory_.find(c->service);
        const bool known = it != directory_.end() && !it->second.empty();
        if (!known && !c->wait_for_server && c->live.empty()) {
          End(c, absl::UnavailableError(
                     c->attempts == 0
                         ? absl::StrCat("no server of service ", c->service,
                                        " is known")
                         : absl::StrCat("no server of service ", c->service,
                                        " is left (", Describe(*c), ")")));
        } else {
          parked_.push_back(std::move(c));  // next tick or peer event
        }
        continue;
      }
      const NodeId server = *picked;
      if (Contains(c->refused, server) && !down.empty()) {
        // Only a server that refused it is reachable now: wait a tick for
        // the others' links rather than spend an attempt there.
        parked_.push_back(std::move(c));
        continue;
      }
      auto b = std::find_if(batches.begin(), batches.end(),
                            [&](const Batch& x) { return x.server == server; });
      if (b == batches.end()) {
        batches.push_back(Batch{server, FrameEncoder(), {}, 0});
        b = batches.end() - 1;
      }
      if (b->frame.count() > 0 &&
          b->frame.bytes() + c->body.size() > kMaxFrameBytes) {
        flush(*b);
      }
      const int64_t left_ms =
          std::max<int64_t>(1, absl::ToInt64Milliseconds(c->deadline - now));
      b->frame.AddRequest(c->id, c->attempts + 1, c->service,
                          static_cast<uint64_t>(left_ms), c->key, c->headers,
                          c->body);
      b->calls.push_back(std::move(c));
      b->planned++;
    }
    for (Batch& b : batches) {
      if (b.frame.count() > 0) flush(b);
    }
    calls.swap(again);
    again.clear();
  }
}

const NodeId* RpcPlugin::Pick(const CallState& call, const Batches& batches,
                              const Down& down, absl::Time now) {
  auto it = directory_.find(call.service);
  if (it == directory_.end() || it->second.empty()) return nullptr;
  // Lexicographic: suspect, refused this call, penalized, already tried,
  // outstanding (sent plus batched now).
  using Score = std::tuple<bool, bool, bool, bool, uint64_t>;
  return LowestRotating(
      it->second, round_robin_++, [&](const NodeId& s) -> std::optional<Score> {
        if (Contains(down, s)) return std::nullopt;
        const ServerState& st = server_state_[s];
        uint64_t load = st.outstanding->load(std::memory_order_relaxed);
        for (const Batch& b : batches) {
          if (b.server == s) load += b.planned;
        }
        return Score{st.suspect, Contains(call.refused, s),
                     st.penalized_until > now, Contains(call.tried, s), load};
      });
}

void RpcPlugin::StartAttempt(CallState& call, const NodeId& server,
                             absl::Time now, bool counted) {
  call.attempts++;
  call.client->attempts.fetch_add(1, std::memory_order_relaxed);
  if (call.attempts > 1) {
    call.client->retries.fetch_add(1, std::memory_order_relaxed);
  }
  if (!Contains(call.tried, server)) call.tried.push_back(server);
  if (!Contains(call.live, server)) {
    call.live.push_back(server);
    if (!counted) {
      server_state_[server].outstanding->fetch_add(1,
                                                   std::memory_order_relaxed);
    }
  }
  call.attempt_deadline = std::min(now + call.attempt_timeout, call.deadline);
  Schedule(call, call.attempt_deadline);
}

void RpcPlugin::Schedule(CallState& call, absl::Time at) {
  call.timer_seq++;
  timers_.push(Timer{at, call.id, call.timer_seq});
}

void RpcPlugin::Retry(NodeContext& ctx, const std::shared_ptr<CallState>& call,
                      absl::Time now, bool may_wait) {
  if (call->done.load(std::memory_order_acquire)) {
    End(call, absl::CancelledError(""));
    return;
  }
  if (now >= call->deadline) {
    End(call, DeadlineError(*call));
    return;
  }
  if (call->attempts >= call->max_attempts) {
    if (!call->live.empty()) {
      // The budget is spent but an attempt still runs: wait for it.
      call->attempt_deadline = call->deadline;
      Schedule(*call, call->deadline);
      return;
    }
    absl::Status last = call->last_error.ok()
                            ? absl::UnavailableError("no attempt succeeded")
                            : call->last_error;
    End(call,
        absl::Status(last.code(), absl::StrCat("service ", call->service, ": ",
                                               Describe(*call), " failed")));
    return;
  }
  if (may_wait) {
    // Refused unrun: go elsewhere now, or back off for a tick when every
    // server was tried already.
    auto it = directory_.find(call->service);
    bool untried = false;
    if (it != directory_.end()) {
      for (const NodeId& s : it->second) untried |= !Contains(call->tried, s);
    }
    if (!untried) {
      parked_.push_back(call);
      return;
    }
  }
  Place(ctx, Calls{call}, now);
}

void RpcPlugin::OnReplies(NodeContext& ctx, const NodeId& from,
                          absl::string_view body) {
  absl::StatusOr<std::vector<WireReply>> replies = DecodeReplies(body);
  if (!replies.ok()) return Malformed(kReplies, from, replies.status());
  const absl::Time now = ctx.Now();
  for (const WireReply& r : *replies) {
    auto it = calls_.find(r.id);
    if (it == calls_.end()) {
      late_replies_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    std::shared_ptr<CallState> call = it->second;
    ReleaseLive(*call, from);
    const auto code = static_cast<absl::StatusCode>(r.code);
    if (code != absl::StatusCode::kOk &&
        (r.flags & (kFlagNotExecuted | kFlagAborted)) != 0) {
      call->last_error = absl::Status(
          code, absl::StrCat("node ", from.ShortHex(), ": ", r.message));
      if ((r.flags & kFlagNotExecuted) != 0 && !Contains(call->refused, from)) {
        call->refused.push_back(from);
      }
      if (!call->live.empty()) continue;  // another attempt may answer
      Retry(ctx, call, now, (r.flags & kFlagNotExecuted) != 0);
      continue;
    }
    if (code == absl::StatusCode::kOk) {
      End(call, Reply{std::string(r.body), from, call->attempts});
    } else {
      End(call, absl::Status(code, r.message));
    }
  }
}

void RpcPlugin::OnServerGone(NodeContext& ctx, const NodeId& server,
                             absl::string_view reason, bool left) {
  Calls affected;
  for (auto& [id, call] : calls_) {
    if (Contains(call->live, server)) affected.push_back(call);
  }
  const absl::Time now = ctx.Now();
  for (auto& call : affected) {
    if (left) ReleaseLive(*call, server);
    // A suspect server keeps its attempt (its reply still counts); the call
    // also goes elsewhere unless it already has an attempt there.
    if (!left && call->live.size() > 1) continue;
    call->last_error = absl::UnavailableError(
        absl::StrCat("server node ", server.ShortHex(), " ", reason));
    if (left && !call->live.empty()) continue;
    Retry(ctx, call, now, /*may_wait=*/false);
  }
}

void RpcPlugin::CheckTimers(NodeContext& ctx, absl::Time now) {
  while (!timers_.empty() && timers_.top().at <= now) {
    const Timer t = timers_.top();
    timers_.pop();
    auto it = calls_.find(t.id);
    if (it == calls_.end() || it->second->timer_seq != t.seq) continue;
    std::shared_ptr<CallState> call = it->second;
    if (now >= call->deadline || call->done.load(std::memory_order_acquire)) {
      End(call, DeadlineError(*call));
      continue;
    }
    // The attempt timed out: avoid its server for a while and go elsewhere.
    if (!call->live.empty()) {
      const NodeId& slow = call->live.back();
      server_state_[slow].penalized_until = now + kPenalty;
      call->last_error = absl::DeadlineExceededError(
          absl::StrCat("attempt ", call->attempts, " at node ", slow.ShortHex(),
                       " got no reply within ",
                       absl::FormatDuration(call->attempt_timeout)));
    }
    Retry(ctx, call, now, /*may_wait=*/false);
  }
}

void RpcPlugin::ReleaseLive(CallState& call, const NodeId& server) {
  auto it = std::find(call.live.begin(), call.live.end(), server);
  if (it == call.live.end()) return;
  call.live.erase(it);
  Unload(server);
}

void RpcPlugin::Unload(const NodeId& server) {
  auto st = server_state_.find(server);
  // Callers only add (or take back their own add at once, under
  // direct_mu_), so this check cannot race to below zero.
  if (st != server_state_.end() &&
      st->second.outstanding->load(std::memory_order_relaxed) > 0) {
    st->second.outstanding->fetch_sub(1, std::memory_order_relaxed);
  }
}

void RpcPlugin::End(const std::shared_ptr<CallState>& call,
                    absl::StatusOr<Reply> result) {
  FinishCall(*call, std::move(result));
  // Attempts still out are withdrawn: their servers skip them if not
  // started, and their late replies are dropped here.
  for (const NodeId& server : call->live) {
    Unload(server);
    cancels_[server].push_back(call->id);
  }
  call->live.clear();
  call->timer_seq++;
  calls_.erase(call->id);
}

void RpcPlugin::FlushCancels(NodeContext& ctx) {
  if (cancels_.empty()) return;
  auto cancels = std::exchange(cancels_, {});
  for (auto& [server, ids] : cancels) {
    // Best effort: a lost cancel only costs the server some work.
    (void)Send(ctx, server, kCancel, EncodeCancel(ids));
  }
}

void RpcPlugin::FailAll(NodeContext& ctx, const absl::Status& status,
                        const ClientShared* only) {
  AdoptDirect(ctx);
  auto mine = [only](const std::shared_ptr<CallState>& c) {
    return only == nullptr || c->client.get() == only;
  };
  Calls victims;
  for (auto& [id, call] : calls_) {
    if (mine(call)) victims.push_back(call);
  }
  Calls keep;
  for (auto& call : parked_) (mine(call) ? victims : keep).push_back(call);
  parked_.swap(keep);
  {
    absl::MutexLock lock(&inbox_mu_);
    Calls inbox_keep;
    for (auto& call : inbox_)
      (mine(call) ? victims : inbox_keep).push_back(call);
    inbox_.swap(inbox_keep);
  }
  for (auto& call : victims) {
    if (!call->done.load(std::memory_order_acquire)) End(call, status);
  }
}

}  // namespace fabric::rr
