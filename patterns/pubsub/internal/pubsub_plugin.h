// SPDX-License-Identifier: Apache-2.0
// The one pub/sub plugin of a node. It watches peers' "pub" and "stream"
// offers and tells the node's subscribers which publishers exist, and it
// carries replay requests and replies over the mailbox, routing them to the
// publisher that keeps a stream and to the subscriber that asked. Publishers
// and subscribers on the same node reach each other without the network.
#ifndef PATTERNS_PUBSUB_INTERNAL_PUBSUB_PLUGIN_H_
#define PATTERNS_PUBSUB_INTERNAL_PUBSUB_PLUGIN_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "fabric/node.h"
#include "fabric/plugin.h"
#include "patterns/pubsub/internal/wire.h"

namespace fabric::ps {

// What one node publishes.
struct PublisherInfo {
  NodeId node;
  std::vector<std::string> endpoints;  // XPUB endpoints ("pub" offers)
  std::vector<StreamOffer> streams;    // durable streams it keeps
  // Secure mode: the node's CURVE key, which its XPUB must prove (empty for
  // this node's own publishers and in plaintext mode).
  std::string public_key;
};

// The engine-thread side of a publisher. Called on the engine thread; must
// not block.
class PublisherEndpoint {
 public:
  virtual ~PublisherEndpoint() = default;
  virtual bool Keeps(uint64_t stream) const = 0;
  virtual void OnReplayRequest(const NodeId& from, ReplayRequest request) = 0;
};

// The engine-thread side of a subscriber. Called on the engine thread; must
// not block.
class SubscriberEndpoint {
 public:
  virtual ~SubscriberEndpoint() = default;
  // Every node publishing now (this one included), replacing the last list.
  virtual void OnPublishers(std::vector<PublisherInfo> publishers) = 0;
  virtual void OnReplayData(const NodeId& from, ReplayData data) = 0;
};

// Thread safety: engine thread only, except `Get` and `malformed`.
class PubSubPlugin : public Plugin {
 public:
  static absl::StatusOr<std::shared_ptr<PubSubPlugin>> Get(Node& node);

  std::vector<uint16_t> kinds() const override;
  // Learns the publishers the node already knows: a plugin attached after
  // discovery ran sees no joined events for them.
  void OnAttach(NodeContext& ctx) override;
  void OnPeerEvent(NodeContext& ctx, const PeerEvent& event) override;
  void OnMessage(NodeContext& ctx, const PeerInfo& from, uint16_t kind,
                 absl::string_view body) override;
  void OnDetach(NodeContext& ctx) override;

  // Registers a publisher: advertises `endpoint` and its durable streams.
  absl::Status AddPublisher(NodeContext& ctx,
                            std::shared_ptr<PublisherEndpoint> publisher,
                            const std::string& endpoint,
                            const std::vector<StreamOffer>& streams);
  void RemovePublisher(NodeContext& ctx, const PublisherEndpoint* publisher);
  // Registers a subscriber and returns its id on this node; it hears the
  // current publishers at once.
  uint32_t AddSubscriber(NodeContext& ctx,
                         std::shared_ptr<SubscriberEndpoint> subscriber);
  void RemoveSubscriber(uint32_t id);

  // Sends a pub/sub message to a peer, or hands it over directly when `to`
  // is this node.
  absl::Status Send(NodeContext& ctx, const NodeId& to, uint16_t kind,
                    const std::string& body);

  uint64_t malformed() const { return malformed_.load(); }

 private:
  struct LocalPublisher {
    std::shared_ptr<PublisherEndpoint> endpoint;
    std::string xpub;
    std::vector<StreamOffer> streams;
  };

  void Route(NodeContext& ctx, const NodeId& from, uint16_t kind,
             absl::string_view body);
  std::vector<PublisherInfo> Snapshot(NodeContext& ctx) const;
  // Records what `peer` publishes (nothing: forgets it). Returns true when
  // that changed the table.
  bool UpdateRemote(const PeerInfo& peer);
  void NotifySubscribers(NodeContext& ctx);

  absl::flat_hash_map<NodeId, PublisherInfo> remote_;
  std::vector<LocalPublisher> local_;
  absl::flat_hash_map<uint32_t, std::shared_ptr<SubscriberEndpoint>>
      subscribers_;
  uint32_t next_subscriber_ = 1;
  std::atomic<uint64_t> malformed_{0};
};

}  // namespace fabric::ps

#endif  // PATTERNS_PUBSUB_INTERNAL_PUBSUB_PLUGIN_H_
