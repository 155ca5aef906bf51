// SPDX-License-Identifier: Apache-2.0
// The plugin's routing half: message kinds, the service directory, local
// servers and the local loop. The caller half is in caller.cc.
#include "patterns/reqrep/internal/rpc_plugin.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "fabric/base/log.h"
#include "fabric/base/status_macros.h"

namespace fabric::rr {

absl::StatusOr<std::shared_ptr<RpcPlugin>> RpcPlugin::Get(Node& node) {
  Node* n = &node;
  FABRIC_ASSIGN_OR_RETURN(std::shared_ptr<Plugin> plugin,
                          node.FindOrAttachPlugin(kRequests, [n] {
                            return std::static_pointer_cast<Plugin>(
                                std::make_shared<RpcPlugin>(*n));
                          }));
  auto rpc = std::dynamic_pointer_cast<RpcPlugin>(plugin);
  if (rpc == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "message kind ", kRequests, " belongs to another plugin on this node"));
  }
  return rpc;
}

std::vector<uint16_t> RpcPlugin::kinds() const {
  return {kRequests, kReplies, kCancel};
}

void RpcPlugin::OnAttach(NodeContext& ctx) {
  engine_thread_.store(std::this_thread::get_id(), std::memory_order_release);
  for (const PeerInfo& peer : ctx.Peers()) UpdateDirectory(peer, false);
  PublishDirect(ctx, ctx.Now());
}

void RpcPlugin::UpdateDirectory(const PeerInfo& peer, bool gone) {
  // Drop the peer everywhere, then add it back under what it offers now.
  for (auto it = directory_.begin(); it != directory_.end();) {
    std::vector<NodeId>& list = it->second;
    list.erase(std::remove(list.begin(), list.end(), peer.id), list.end());
    if (list.empty() && !servers_.contains(it->first)) {
      directory_.erase(it++);
    } else {
      ++it;
    }
  }
  if (gone) {
    server_state_.erase(peer.id);
    return;
  }
  auto offers = peer.offers.find(std::string(kServiceOffer));
  if (offers == peer.offers.end()) return;
  for (const std::string& service : offers->second) {
    directory_[service].push_back(peer.id);
  }
  ServerState& state = server_state_[peer.id];
  state.suspect = peer.state == PeerState::kSuspect;
}

void RpcPlugin::OnPeerEvent(NodeContext& ctx, const PeerEvent& event) {
  const PeerInfo& peer = event.peer;
  const absl::Time now = ctx.Now();
  AdoptDirect(ctx);
  switch (event.type) {
    case PeerEventType::kJoined:
    case PeerEventType::kUpdated:
    case PeerEventType::kBack:
      UpdateDirectory(peer, false);
      if (!parked_.empty()) Place(ctx, std::exchange(parked_, {}), now);
      break;
    case PeerEventType::kSuspect: {
      auto it = server_state_.find(peer.id);
      if (it != server_state_.end()) it->second.suspect = true;
      OnServerGone(ctx, peer.id,
                   absl::StrCat("is suspect (", event.reason, ")"),
                   /*left=*/false);
      break;
    }
    case PeerEventType::kLeft:
      UpdateDirectory(peer, true);
      OnServerGone(ctx, peer.id, absl::StrCat("left (", event.reason, ")"),
                   /*left=*/true);
      for (auto& [service, server] : servers_) server->OnPeerLeft(ctx, peer.id);
      break;
  }
  PublishDirect(ctx, now);
  FlushCancels(ctx);
  RunLocal(ctx);
}

void RpcPlugin::OnMessage(NodeContext& ctx, const PeerInfo& from, uint16_t kind,
                          absl::string_view body) {
  AdoptDirect(ctx);  // a reply may be to a call sent directly
  in_message_ = true;
  Route(ctx, from.id, kind, body);
  in_message_ = false;
  FlushCancels(ctx);
  RunLocal(ctx);
}

void RpcPlugin::OnMailboxDrained(NodeContext& ctx) {
  if (!drain_here_) return;
  // Callbacks made new calls while replies came in: send them now, in one
  // batch per server however many frames the replies took.
  drain_here_ = false;
  DrainInbox(ctx);
}

void RpcPlugin::Malformed(uint16_t kind, const NodeId& from,
                          const absl::Status& s) {
  malformed_.fetch_add(1, std::memory_order_relaxed);
  FABRIC_LOG(kWarning, kReqRep, "FAB-RR-MALFORMED kind ", kind, " from ",
             from.ShortHex(), ": ", s.message());
}

void RpcPlugin::Route(NodeContext& ctx, const NodeId& from, uint16_t kind,
                      absl::string_view body) {
  switch (kind) {
    case kRequests:
      return RouteRequests(ctx, from, body);
    case kReplies:
      return OnReplies(ctx, from, body);
    case kCancel: {
      absl::StatusOr<std::vector<uint64_t>> ids = DecodeCancel(body);
      if (!ids.ok()) return Malformed(kind, from, ids.status());
      for (auto& [service, server] : servers_) {
        for (uint64_t id : *ids) server->OnCancel(ctx, from, id);
      }
      return;
    }
    default:
      return Malformed(
          kind, from, absl::InvalidArgumentError("unknown request/reply kind"));
  }
}

void RpcPlugin::RouteRequests(NodeContext& ctx, const NodeId& from,
                              absl::string_view body) {
  absl::StatusOr<std::vector<WireRequest>> requests = DecodeRequests(body);
  if (!requests.ok()) return Malformed(kRequests, from, requests.status());
  const absl::Time now = ctx.Now();
  // Requests of one frame usually share a service: look it up once per run.
  ServerEndpoint* last = nullptr;
  absl::string_view last_service;
  absl::InlinedVector<ServerEndpoint*, 2> touched;
  FrameEncoder refused;
  for (WireRequest& r : *requests) {
    if (last == nullptr || r.service != last_service) {
      auto it = servers_.find(r.service);
      last = it == servers_.end() ? nullptr : it->second.get();
      last_service = r.service;
      if (last != nullptr &&
          std::find(touched.begin(), touched.end(), last) == touched.end()) {
        touched.push_back(last);
      }
    }
    if (last == nullptr) {
      // We stopped serving it (the client's directory is behind): not run,
      // so the client may send it anywhere else.
      refused.AddReply(
          r.id, r.attempt,
          static_cast<uint32_t>(absl::StatusCode::kUnavailable),
          kFlagNotExecuted,
          absl::StrCat("service ", r.service, " is not served by node ",
                       ctx.self_id().ShortHex()),
          "");
      continue;
    }
    last->OnRequest(ctx, from, r, now);
  }
  for (ServerEndpoint* s : touched) s->EndOfFrame(ctx);
  if (refused.count() > 0) {
    (void)Send(ctx, from, kReplies, refused.Finish());
  }
}

void RpcPlugin::OnTick(NodeContext& ctx, absl::Time now) {
  AdoptDirect(ctx);
  for (auto& [service, server] : servers_) server->OnTick(ctx, now);
  CheckTimers(ctx, now);
  PublishDirect(ctx, now);  // penalties given and expired
  if (!parked_.empty()) Place(ctx, std::exchange(parked_, {}), now);
  FlushCancels(ctx);
  RunLocal(ctx);
}

void RpcPlugin::OnDetach(NodeContext& ctx) {
  {
    absl::MutexLock lock(&inbox_mu_);
    detached_.store(true);
  }
  {
    absl::MutexLock lock(&direct_mu_);
    direct_dir_.clear();  // callers submit from now on, and are refused
  }
  for (auto& [service, server] : servers_) server->OnDetach(ctx);
  servers_.clear();
  FailAll(ctx, absl::CancelledError("the node closed"), nullptr);
  local_.Clear();
}

absl::Status RpcPlugin::AddServer(NodeContext& ctx,
                                  std::shared_ptr<ServerEndpoint> server) {
  const std::string service = server->service();
  if (detached_.load()) return absl::CancelledError("node is closed");
  if (servers_.contains(service)) {
    return absl::AlreadyExistsError(
        absl::StrCat("this node already serves ", service));
  }
  FABRIC_RETURN_IF_ERROR(ctx.SetOffer(kServiceOffer, service, true));
  servers_[service] = std::move(server);
  directory_[service].push_back(ctx.self_id());
  if (!parked_.empty()) Place(ctx, std::exchange(parked_, {}), ctx.Now());
  RunLocal(ctx);
  return absl::OkStatus();
}

void RpcPlugin::WithdrawServer(NodeContext& ctx, const std::string& service) {
  (void)ctx.SetOffer(kServiceOffer, service, false);
  auto it = directory_.find(service);
  if (it != directory_.end()) {
    std::vector<NodeId>& list = it->second;
    list.erase(std::remove(list.begin(), list.end(), ctx.self_id()),
               list.end());
  }
}

void RpcPlugin::RemoveServer(NodeContext& ctx, const std::string& service) {
  WithdrawServer(ctx, service);
  servers_.erase(service);
  auto it = directory_.find(service);
  if (it != directory_.end() && it->second.empty()) directory_.erase(it);
  RunLocal(ctx);
}

std::vector<NodeId> RpcPlugin::ServersOf(const std::string& service) const {
  auto it = directory_.find(service);
  if (it == directory_.end()) return {};
  return it->second;
}

absl::Status RpcPlugin::Send(NodeContext& ctx, const NodeId& to, uint16_t kind,
                             std::string body) {
  if (to == ctx.self_id()) {
    local_.Push(kind, std::move(body));
    return absl::OkStatus();
  }
  return ctx.Send(to, kind, body);
}

void RpcPlugin::RunLocal(NodeContext& ctx) {
  local_.Drain(
      [&](uint16_t kind, absl::string_view body) {
        Route(ctx, ctx.self_id(), kind, body);
      },
      [&] { FlushCancels(ctx); });
}

}  // namespace fabric::rr
