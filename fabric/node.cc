// SPDX-License-Identifier: Apache-2.0
#include "fabric/node.h"

#include "absl/synchronization/notification.h"
#include "fabric/base/status_macros.h"
#include "fabric/internal/engine.h"

namespace fabric {

using node_internal::Engine;

absl::StatusOr<std::unique_ptr<Node>> Node::Start(NodeOptions options) {
  FABRIC_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine,
                          Engine::Create(std::move(options)));
  engine->Start();
  return std::unique_ptr<Node>(new Node(std::move(engine)));
}

Node::Node(std::unique_ptr<Engine> engine) : engine_(std::move(engine)) {}

Node::~Node() = default;  // ~Engine closes and joins

void Node::Close() noexcept { engine_->Close(); }
void Node::Join() { engine_->Join(); }

const NodeId& Node::id() const { return engine_->self_id(); }
const std::string& Node::name() const { return engine_->name(); }
const std::string& Node::cluster() const { return engine_->cluster(); }
const std::string& Node::mailbox_endpoint() const {
  return engine_->mailbox_endpoint();
}

absl::StatusOr<std::vector<PeerInfo>> Node::Peers() const {
  if (engine_->OnEngineThread()) return engine_->Peers();
  // The snapshot is shared so a timed-out wait cannot leave the engine
  // writing into a dead stack frame.
  struct Result {
    absl::Notification done;
    std::vector<PeerInfo> peers;
  };
  auto result = std::make_shared<Result>();
  FABRIC_RETURN_IF_ERROR(engine_->Post([result](NodeContext& ctx) {
    result->peers = ctx.Peers();
    result->done.Notify();
  }));
  if (!result->done.WaitForNotificationWithTimeout(absl::Seconds(10))) {
    return absl::DeadlineExceededError("node engine did not answer in 10s");
  }
  return std::move(result->peers);
}

absl::Status Node::SetOffer(absl::string_view kind, absl::string_view name,
                            bool offered) {
  Engine* engine = engine_.get();
  return CallOnEngine([engine, k = std::string(kind), n = std::string(name),
                       offered] { return engine->SetOffer(k, n, offered); });
}

absl::Status Node::SetHeader(absl::string_view key, absl::string_view value) {
  Engine* engine = engine_.get();
  return CallOnEngine([engine, k = std::string(key), v = std::string(value)] {
    return engine->SetHeader(k, v);
  });
}

absl::Status Node::AttachPlugin(std::shared_ptr<Plugin> plugin) {
  if (plugin == nullptr) return absl::InvalidArgumentError("null plugin");
  Engine* engine = engine_.get();
  return CallOnEngine([engine, plugin] { return engine->Attach(plugin); });
}

absl::StatusOr<std::shared_ptr<Plugin>> Node::FindOrAttachPlugin(
    uint16_t kind, std::function<std::shared_ptr<Plugin>()> make) {
  Engine* engine = engine_.get();
  auto found = std::make_shared<std::shared_ptr<Plugin>>();
  FABRIC_RETURN_IF_ERROR(
      CallOnEngine([engine, kind, make = std::move(make), found] {
        *found = engine->PluginOwning(kind);
        if (*found != nullptr) return absl::OkStatus();
        std::shared_ptr<Plugin> plugin = make();
        if (plugin == nullptr) return absl::InvalidArgumentError("null plugin");
        FABRIC_RETURN_IF_ERROR(engine->Attach(plugin));
        *found = std::move(plugin);
        return absl::OkStatus();
      }));
  return *found;
}

absl::Status Node::Call(std::function<absl::Status(NodeContext&)> fn) {
  Engine* engine = engine_.get();
  return CallOnEngine([engine, fn = std::move(fn)] { return fn(*engine); });
}

absl::Status Node::CallOnEngine(std::function<absl::Status()> fn) {
  if (engine_->OnEngineThread()) return fn();
  // Shared so that a timed-out wait cannot leave the engine writing into a
  // dead stack frame.
  struct Result {
    absl::Notification done;
    absl::Status status;
  };
  auto result = std::make_shared<Result>();
  FABRIC_RETURN_IF_ERROR(
      engine_->Post([result, fn = std::move(fn)](NodeContext&) {
        result->status = fn();
        result->done.Notify();
      }));
  if (!result->done.WaitForNotificationWithTimeout(absl::Seconds(10))) {
    return absl::DeadlineExceededError("node engine did not answer in 10s");
  }
  return result->status;
}

absl::Status Node::Post(std::function<void(NodeContext&)> fn) {
  return engine_->Post(std::move(fn));
}

absl::Status Node::SendDirect(const NodeId& peer, uint16_t kind,
                              absl::string_view body) {
  return engine_->SendDirect(peer, kind, body);
}

NodeStats Node::Stats() const { return engine_->Stats(); }

absl::Status Node::ReloadRoster() {
  node_internal::Engine* engine = engine_.get();
  return CallOnEngine([engine] { return engine->ReloadRoster(); });
}

std::shared_ptr<const security::NodeSecurity> Node::security() const {
  return engine_->security();
}

}  // namespace fabric
