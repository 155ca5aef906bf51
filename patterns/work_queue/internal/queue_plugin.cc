// SPDX-License-Identifier: Apache-2.0
#include "patterns/work_queue/internal/queue_plugin.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "fabric/base/log.h"
#include "fabric/base/status_macros.h"

namespace fabric::wq {

absl::StatusOr<std::shared_ptr<QueuePlugin>> QueuePlugin::Get(Node& node) {
  FABRIC_ASSIGN_OR_RETURN(std::shared_ptr<Plugin> plugin,
                          node.FindOrAttachPlugin(kDemand, [] {
                            return std::static_pointer_cast<Plugin>(
                                std::make_shared<QueuePlugin>());
                          }));
  auto queue_plugin = std::dynamic_pointer_cast<QueuePlugin>(plugin);
  if (queue_plugin == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "message kind ", kDemand, " belongs to another plugin on this node"));
  }
  return queue_plugin;
}

std::vector<uint16_t> QueuePlugin::kinds() const {
  return {kDemand, kCredit, kTasks, kResults, kExtend};
}

void QueuePlugin::OnAttach(NodeContext& ctx) { (void)ctx; }

void QueuePlugin::OnPeerEvent(NodeContext& ctx, const PeerEvent& event) {
  const PeerInfo& peer = event.peer;
  switch (event.type) {
    case PeerEventType::kJoined:
    case PeerEventType::kUpdated:
    case PeerEventType::kBack:
      for (auto& [queue, producer] : producers_) {
        if (peer.HasOffer(kQueueOffer, queue)) {
          producer->OnWorkerUp(ctx, peer.id);
        } else {
          producer->OnWorkerDown(ctx, peer.id, /*lost=*/false);
        }
      }
      break;
    case PeerEventType::kLeft:
      for (auto& [queue, producer] : producers_) {
        producer->OnWorkerDown(ctx, peer.id, /*lost=*/true);
      }
      for (WorkerEndpoint* worker : DistinctWorkers()) {
        worker->OnProducerGone(ctx, peer.id, "");
      }
      break;
    case PeerEventType::kSuspect:
      break;
  }
  RunLocal(ctx);
}

void QueuePlugin::OnMessage(NodeContext& ctx, const PeerInfo& from,
                            uint16_t kind, absl::string_view body) {
  Route(ctx, from.id, kind, body);
  RunLocal(ctx);
}

void QueuePlugin::Route(NodeContext& ctx, const NodeId& from, uint16_t kind,
                        absl::string_view body) {
  auto bad = [&](const absl::Status& status) {
    malformed_.fetch_add(1, std::memory_order_relaxed);
    FABRIC_LOG(kWarning, kWorkQueue, "FAB-WQ-MALFORMED kind ", kind, " from ",
               from.ShortHex(), ": ", status.message());
  };
  // Decodes a producer-bound message and hands it to that queue's producer.
  // Credit for a producer no longer here goes straight back, so the
  // worker does not keep it reserved forever.
  auto ToProducer = [&](auto decoded, auto method) {
    if (!decoded.ok()) return bad(decoded.status());
    auto it = producers_.find(decoded->queue);
    if (it != producers_.end()) {
      ((*it->second).*method)(ctx, from, *decoded);
      return;
    }
    uint64_t grant = 0;
    if constexpr (requires { decoded->grant; }) grant = decoded->grant;
    (void)Send(ctx, from, kDemand, EncodeDemand({decoded->queue, 0, grant}));
  };
  switch (kind) {
    case kDemand: {
      absl::StatusOr<Demand> m = DecodeDemand(body);
      if (!m.ok()) return bad(m.status());
      auto it = workers_.find(m->queue);
      if (it != workers_.end()) it->second->OnDemand(ctx, from, *m);
      return;
    }
    case kTasks: {
      absl::StatusOr<Tasks> m = DecodeTasks(body);
      if (!m.ok()) return bad(m.status());
      auto it = workers_.find(m->queue);
      if (it != workers_.end()) {
        it->second->OnTasks(ctx, from, std::move(*m));
      } else {
        // Nobody here serves it (stopped meanwhile): hand every task back.
        Results back;
        back.queue = m->queue;
        for (const WireTask& t : m->tasks) {
          back.others.push_back(OtherResult{t.seq, t.attempt, Verdict::kRelease,
                                            0, "queue not served here",
                                            t.delivery});
        }
        (void)Send(ctx, from, kResults, EncodeResults(back));
      }
      return;
    }
    case kCredit:
      return ToProducer(DecodeCredit(body), &ProducerEndpoint::OnCredit);
    case kResults:
      return ToProducer(DecodeResults(body), &ProducerEndpoint::OnResults);
    case kExtend:
      return ToProducer(DecodeExtend(body), &ProducerEndpoint::OnExtend);
    default:
      return bad(absl::InvalidArgumentError("unknown work-queue kind"));
  }
}

void QueuePlugin::OnTick(NodeContext& ctx, absl::Time now) {
  for (auto& [queue, producer] : producers_) producer->OnTick(ctx, now);
  for (WorkerEndpoint* worker : DistinctWorkers()) worker->OnTick(ctx, now);
  RunLocal(ctx);
}

void QueuePlugin::OnDetach(NodeContext& ctx) {
  (void)ctx;
  detached_.store(true);
  producers_.clear();
  workers_.clear();
  local_.Clear();
}

std::vector<WorkerEndpoint*> QueuePlugin::DistinctWorkers() const {
  // A worker serving several queues is registered once per queue.
  std::vector<WorkerEndpoint*> distinct;
  for (const auto& [queue, worker] : workers_) {
    if (std::find(distinct.begin(), distinct.end(), worker.get()) ==
        distinct.end()) {
      distinct.push_back(worker.get());
    }
  }
  return distinct;
}

absl::Status QueuePlugin::AddProducer(
    NodeContext& ctx, std::shared_ptr<ProducerEndpoint> producer) {
  const std::string queue = producer->queue();
  if (detached_.load()) return absl::CancelledError("node is closed");
  if (producers_.contains(queue)) {
    return absl::AlreadyExistsError(
        absl::StrCat("this node already has a producer for queue ", queue));
  }
  producers_[queue] = producer;
  for (const PeerInfo& peer : ctx.Peers()) {
    if (peer.HasOffer(kQueueOffer, queue)) producer->OnWorkerUp(ctx, peer.id);
  }
  if (workers_.contains(queue)) producer->OnWorkerUp(ctx, ctx.self_id());
  RunLocal(ctx);
  return absl::OkStatus();
}

void QueuePlugin::RemoveProducer(NodeContext& ctx, const std::string& queue) {
  producers_.erase(queue);
  // The local worker of that queue forgets the credit it granted to it.
  auto it = workers_.find(queue);
  if (it != workers_.end()) {
    it->second->OnProducerGone(ctx, ctx.self_id(), queue);
  }
  RunLocal(ctx);
}

absl::Status QueuePlugin::AddWorker(NodeContext& ctx,
                                    const std::vector<std::string>& queues,
                                    std::shared_ptr<WorkerEndpoint> worker) {
  if (detached_.load()) return absl::CancelledError("node is closed");
  for (const std::string& q : queues) {
    if (workers_.contains(q)) {
      return absl::AlreadyExistsError(
          absl::StrCat("this node already has a worker for queue ", q));
    }
  }
  for (const std::string& q : queues) {
    FABRIC_RETURN_IF_ERROR(ctx.SetOffer(kQueueOffer, q, true));
  }
  for (const std::string& q : queues) {
    workers_[q] = worker;
    auto it = producers_.find(q);
    if (it != producers_.end()) it->second->OnWorkerUp(ctx, ctx.self_id());
  }
  RunLocal(ctx);
  return absl::OkStatus();
}

void QueuePlugin::RemoveWorker(NodeContext& ctx,
                               const std::vector<std::string>& queues) {
  for (const std::string& q : queues) {
    (void)ctx.SetOffer(kQueueOffer, q, false);
    workers_.erase(q);
    auto it = producers_.find(q);
    if (it != producers_.end()) {
      it->second->OnWorkerDown(ctx, ctx.self_id(), /*lost=*/false);
    }
  }
  RunLocal(ctx);
}

absl::Status QueuePlugin::Send(NodeContext& ctx, const NodeId& to,
                               uint16_t kind, std::string body) {
  if (to == ctx.self_id()) {
    local_.Push(kind, std::move(body));
    return absl::OkStatus();
  }
  return ctx.Send(to, kind, body);
}

void QueuePlugin::RunLocal(NodeContext& ctx) {
  local_.Drain([&](uint16_t kind, absl::string_view body) {
    Route(ctx, ctx.self_id(), kind, body);
  });
}

}  // namespace fabric::wq
