// SPDX-License-Identifier: Apache-2.0
#include "patterns/pubsub/internal/pubsub_plugin.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "fabric/base/log.h"
#include "fabric/base/status_macros.h"

namespace fabric::ps {

absl::StatusOr<std::shared_ptr<PubSubPlugin>> PubSubPlugin::Get(Node& node) {
  FABRIC_ASSIGN_OR_RETURN(std::shared_ptr<Plugin> plugin,
                          node.FindOrAttachPlugin(kReplayRequest, [] {
                            return std::static_pointer_cast<Plugin>(
                                std::make_shared<PubSubPlugin>());
                          }));
  auto pubsub = std::dynamic_pointer_cast<PubSubPlugin>(plugin);
  if (pubsub == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("message kind ", kReplayRequest,
                     " belongs to another plugin on this node"));
  }
  return pubsub;
}

std::vector<uint16_t> PubSubPlugin::kinds() const {
  return {kReplayRequest, kReplayData};
}

void PubSubPlugin::OnAttach(NodeContext& ctx) {
  for (const PeerInfo& peer : ctx.Peers()) UpdateRemote(peer);
}

void PubSubPlugin::OnPeerEvent(NodeContext& ctx, const PeerEvent& event) {
  bool changed = false;
  if (event.type == PeerEventType::kLeft) {
    changed = remote_.erase(event.peer.id) > 0;
  } else if (event.type != PeerEventType::kSuspect) {
    changed = UpdateRemote(event.peer);
  }
  if (changed) NotifySubscribers(ctx);
}

bool PubSubPlugin::UpdateRemote(const PeerInfo& peer) {
  PublisherInfo info;
  info.node = peer.id;
  info.public_key = peer.public_key;
  if (auto it = peer.offers.find(std::string(kPubOffer));
      it != peer.offers.end()) {
    for (const std::string& endpoint : it->second) {
      // Only TCP endpoints from the network: never ipc:// or inproc://.
      if (absl::StartsWith(endpoint, "tcp://")) {
        info.endpoints.push_back(endpoint);
      }
    }
  }
  if (auto it = peer.offers.find(std::string(kStreamOffer));
      it != peer.offers.end()) {
    for (const std::string& name : it->second) {
      if (std::optional<StreamOffer> s = ParseStreamOffer(name)) {
        info.streams.push_back(*std::move(s));
      }
    }
  }
  if (info.endpoints.empty() && info.streams.empty()) {
    return remote_.erase(peer.id) > 0;
  }
  remote_[peer.id] = std::move(info);
  return true;
}

void PubSubPlugin::OnMessage(NodeContext& ctx, const PeerInfo& from,
                             uint16_t kind, absl::string_view body) {
  Route(ctx, from.id, kind, body);
}

void PubSubPlugin::Route(NodeContext& ctx, const NodeId& from, uint16_t kind,
                         absl::string_view body) {
  auto bad = [&](const absl::Status& status) {
    malformed_.fetch_add(1, std::memory_order_relaxed);
    FABRIC_LOG(kWarning, kPubSub, "FAB-PUBSUB-MALFORMED kind ", kind, " from ",
               from.ShortHex(), ": ", status.message());
  };
  if (kind == kReplayRequest) {
    absl::StatusOr<ReplayRequest> request = DecodeReplayRequest(body);
    if (!request.ok()) return bad(request.status());
    for (const LocalPublisher& p : local_) {
      if (p.endpoint->Keeps(request->stream)) {
        p.endpoint->OnReplayRequest(from, *std::move(request));
        return;
      }
    }
    ReplayData reply;
    reply.subscriber = request->subscriber;
    reply.request = request->request;
    reply.stream = request->stream;
    reply.status = ReplayStatus::kUnknownStream;
    (void)Send(ctx, from, kReplayData, EncodeReplayData(reply));
    return;
  }
  if (kind == kReplayData) {
    absl::StatusOr<ReplayData> data = DecodeReplayData(body);
    if (!data.ok()) return bad(data.status());
    auto it = subscribers_.find(data->subscriber);
    if (it == subscribers_.end()) return;  // it closed: a late reply
    it->second->OnReplayData(from, *std::move(data));
  }
}

void PubSubPlugin::OnDetach(NodeContext& ctx) {
  (void)ctx;
  local_.clear();
  subscribers_.clear();
  remote_.clear();
}

absl::Status PubSubPlugin::AddPublisher(
    NodeContext& ctx, std::shared_ptr<PublisherEndpoint> publisher,
    const std::string& endpoint, const std::vector<StreamOffer>& streams) {
  FABRIC_RETURN_IF_ERROR(ctx.SetOffer(kPubOffer, endpoint, true));
  for (const StreamOffer& s : streams) {
    absl::Status status =
        ctx.SetOffer(kStreamOffer, StreamOfferName(s.stream, s.topic), true);
    if (!status.ok()) {
      for (const StreamOffer& undo : streams) {
        (void)ctx.SetOffer(kStreamOffer,
                           StreamOfferName(undo.stream, undo.topic), false);
      }
      (void)ctx.SetOffer(kPubOffer, endpoint, false);
      return status;
    }
  }
  local_.push_back({std::move(publisher), endpoint, streams});
  NotifySubscribers(ctx);
  return absl::OkStatus();
}

void PubSubPlugin::RemovePublisher(NodeContext& ctx,
                                   const PublisherEndpoint* publisher) {
  for (auto it = local_.begin(); it != local_.end(); ++it) {
    if (it->endpoint.get() != publisher) continue;
    (void)ctx.SetOffer(kPubOffer, it->xpub, false);
    for (const StreamOffer& s : it->streams) {
      (void)ctx.SetOffer(kStreamOffer, StreamOfferName(s.stream, s.topic),
                         false);
    }
    local_.erase(it);
    NotifySubscribers(ctx);
    return;
  }
}

uint32_t PubSubPlugin::AddSubscriber(
    NodeContext& ctx, std::shared_ptr<SubscriberEndpoint> subscriber) {
  const uint32_t id = next_subscriber_++;
  subscribers_.emplace(id, subscriber);
  subscriber->OnPublishers(Snapshot(ctx));
  return id;
}

void PubSubPlugin::RemoveSubscriber(uint32_t id) { subscribers_.erase(id); }

absl::Status PubSubPlugin::Send(NodeContext& ctx, const NodeId& to,
                                uint16_t kind, const std::string& body) {
  if (to == ctx.self_id()) {
    Route(ctx, to, kind, body);
    return absl::OkStatus();
  }
  return ctx.Send(to, kind, body);
}

std::vector<PublisherInfo> PubSubPlugin::Snapshot(NodeContext& ctx) const {
  std::vector<PublisherInfo> out;
  out.reserve(remote_.size() + 1);
  for (const auto& [id, info] : remote_) out.push_back(info);
  if (!local_.empty()) {
    PublisherInfo self;
    self.node = ctx.self_id();
    for (const LocalPublisher& p : local_) {
      self.endpoints.push_back(p.xpub);
      self.streams.insert(self.streams.end(), p.streams.begin(),
                          p.streams.end());
    }
    out.push_back(std::move(self));
  }
  return out;
}

void PubSubPlugin::NotifySubscribers(NodeContext& ctx) {
  if (subscribers_.empty()) return;
  std::vector<PublisherInfo> snapshot = Snapshot(ctx);
  for (auto& [id, subscriber] : subscribers_) {
    subscriber->OnPublishers(snapshot);
  }
}

}  // namespace fabric::ps
