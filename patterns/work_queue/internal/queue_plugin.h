// SPDX-License-Identifier: Apache-2.0
// The one work-queue plugin of a node: owns the work-queue message kinds,
// decodes them and routes them by queue name to the producers and workers
// registered on this node. A producer and a worker of the same queue on the
// same node reach each other through a local loop instead of the network.
#ifndef PATTERNS_WORK_QUEUE_INTERNAL_QUEUE_PLUGIN_H_
#define PATTERNS_WORK_QUEUE_INTERNAL_QUEUE_PLUGIN_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fabric/local_loop.h"
#include "fabric/node.h"
#include "fabric/plugin.h"
#include "patterns/work_queue/internal/wire.h"

namespace fabric::wq {

class QueuePlugin;

// The engine-thread side of a producer. Every method runs on the engine
// thread.
class ProducerEndpoint {
 public:
  virtual ~ProducerEndpoint() = default;
  virtual const std::string& queue() const = 0;
  virtual void OnWorkerUp(NodeContext& ctx, const NodeId& worker) = 0;
  // `lost`: the worker died (its deliveries fail) rather than stopped
  // offering the queue (its deliveries may still complete).
  virtual void OnWorkerDown(NodeContext& ctx, const NodeId& worker,
                            bool lost) = 0;
  virtual void OnCredit(NodeContext& ctx, const NodeId& from,
                        const Credit& m) = 0;
  virtual void OnResults(NodeContext& ctx, const NodeId& from,
                         const Results& m) = 0;
  virtual void OnExtend(NodeContext& ctx, const NodeId& from,
                        const Extend& m) = 0;
  virtual void OnTick(NodeContext& ctx, absl::Time now) = 0;
};

// The engine-thread side of a worker (one object may serve several queues).
class WorkerEndpoint {
 public:
  virtual ~WorkerEndpoint() = default;
  virtual void OnDemand(NodeContext& ctx, const NodeId& from,
                        const Demand& m) = 0;
  virtual void OnTasks(NodeContext& ctx, const NodeId& from, Tasks m) = 0;
  // The producer of `queue` at `node` is gone; every producer of that node
  // when `queue` is empty (the node left).
  virtual void OnProducerGone(NodeContext& ctx, const NodeId& node,
                              const std::string& queue) = 0;
  virtual void OnTick(NodeContext& ctx, absl::Time now) = 0;
};

// Thread safety: engine thread only, except `Get`.
class QueuePlugin : public Plugin {
 public:
  // Finds or attaches the plugin of `node`.
  static absl::StatusOr<std::shared_ptr<QueuePlugin>> Get(Node& node);

  std::vector<uint16_t> kinds() const override;
  void OnAttach(NodeContext& ctx) override;
  void OnPeerEvent(NodeContext& ctx, const PeerEvent& event) override;
  void OnMessage(NodeContext& ctx, const PeerInfo& from, uint16_t kind,
                 absl::string_view body) override;
  void OnTick(NodeContext& ctx, absl::Time now) override;
  void OnDetach(NodeContext& ctx) override;

  // Registration (engine thread). kAlreadyExists for a taken queue.
  absl::Status AddProducer(NodeContext& ctx,
                           std::shared_ptr<ProducerEndpoint> producer);
  void RemoveProducer(NodeContext& ctx, const std::string& queue);
  absl::Status AddWorker(NodeContext& ctx,
                         const std::vector<std::string>& queues,
                         std::shared_ptr<WorkerEndpoint> worker);
  void RemoveWorker(NodeContext& ctx, const std::vector<std::string>& queues);

  // Sends to a peer, or to this node itself through the local loop.
  absl::Status Send(NodeContext& ctx, const NodeId& to, uint16_t kind,
                    std::string body);
  // Runs messages queued on the local loop. Called at the end of every
  // entry point that may have sent to self.
  void RunLocal(NodeContext& ctx);

  // Frames that failed to decode (also counted by the endpoints' owners).
  uint64_t malformed() const { return malformed_.load(); }
  // True once the node stopped (OnDetach ran).
  bool detached() const { return detached_.load(); }

 private:
  void Route(NodeContext& ctx, const NodeId& from, uint16_t kind,
             absl::string_view body);
  std::vector<WorkerEndpoint*> DistinctWorkers() const;

  absl::flat_hash_map<std::string, std::shared_ptr<ProducerEndpoint>>
      producers_;
  absl::flat_hash_map<std::string, std::shared_ptr<WorkerEndpoint>> workers_;
  LocalLoop local_;
  std::atomic<uint64_t> malformed_{0};
  std::atomic<bool> detached_{false};
};

}  // namespace fabric::wq

#endif  // PATTERNS_WORK_QUEUE_INTERNAL_QUEUE_PLUGIN_H_
