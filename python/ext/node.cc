// SPDX-License-Identifier: Apache-2.0
// Binding of `fabric::Node`: options, peers, peer events and counters.
#include "python/ext/node.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "fabric/base/status_macros.h"
#include "fabric/node_options.h"
#include "fabric/peers/peer_info.h"
#include "fabric/security/keys.h"

namespace fabricmq {
namespace {

// Applies the FABRIC_* variables the CLI honours: those of
// `fabric::ApplyEnvironment`, and seeds alone meaning seeds mode.
absl::Status ApplyCliEnvironment(fabric::NodeOptions* o) {
  FABRIC_RETURN_IF_ERROR(fabric::ApplyEnvironment(o));
  if (!o->seeds.empty() && std::getenv("FABRIC_DISCOVERY") == nullptr) {
    o->discovery = fabric::DiscoveryMode::kSeeds;
  }
  return absl::OkStatus();
}

// Calls the Python `on_peer_event` for one event on the node's event
// thread. A raise is reported (sys.unraisablehook) and the next event still
// comes.
void DeliverPeerEvent(const SharedPy& callback, const void* owner,
                      const fabric::PeerEvent& event) {
  Gate::Entry entry;
  if (!entry.ok()) return;
  CallbackScope scope(owner);
  try {
    callback->get()(py::cast(event));
  } catch (py::error_already_set& e) {
    e.discard_as_unraisable("fabricmq on_peer_event callback");
  }
}

py::dict OffersToDict(const fabric::Offers& offers) {
  py::dict d;
  for (const auto& [kind, names] : offers) {
    py::list l;
    for (const std::string& n : names) l.append(ToStr(n));
    d[ToStr(kind)] = l;
  }
  return d;
}

}  // namespace

std::shared_ptr<PyNode> PyNode::Start(py::dict dict) {
  Options options(std::move(dict));
  fabric::NodeOptions o;
  if (options.Bool("from_env", false)) {
    absl::Status env = ApplyCliEnvironment(&o);
    if (!env.ok()) ThrowStatus(env);
  }
  o.name = options.String("name", o.name);
  o.cluster = options.String("cluster", o.cluster);
  if (options.Has("discovery")) {
    absl::StatusOr<fabric::DiscoveryMode> mode =
        fabric::ParseDiscoveryMode(options.String("discovery", ""));
    if (!mode.ok()) ThrowStatus(mode.status());
    o.discovery = *mode;
  } else {
    (void)options.String("discovery", "");
  }
  o.interface = options.String("interface", o.interface);
  options.Read("beacon_port", &o.beacon_port, 1);
  if (options.Has("seeds")) {
    o.seeds = options.Strings("seeds");
    if (!o.seeds.empty() && !options.Has("discovery") &&
        std::getenv("FABRIC_DISCOVERY") == nullptr) {
      o.discovery = fabric::DiscoveryMode::kSeeds;  // as the CLI's --seed
    }
  } else {
    (void)options.Strings("seeds");
  }
  options.Read("mailbox_port", &o.mailbox_port, 0);
  if (options.Has("headers")) {
    o.headers = options.HeaderMap("headers");
  } else {
    (void)options.HeaderMap("headers");
  }
  o.beacon_interval = options.Duration("beacon_interval", o.beacon_interval);
  o.heartbeat_interval =
      options.Duration("heartbeat_interval", o.heartbeat_interval);
  o.suspect_timeout = options.Duration("suspect_timeout", o.suspect_timeout);
  o.dead_timeout = options.Duration("dead_timeout", o.dead_timeout);
  o.disconnect_grace = options.Duration("disconnect_grace", o.disconnect_grace);
  options.Read("max_message_bytes", &o.max_message_bytes, 0, int64_t{1} << 40);
  o.linger = options.Duration("linger", o.linger);
  if (options.Has("security")) {
    absl::StatusOr<fabric::SecurityMode> mode =
        fabric::ParseSecurityMode(options.String("security", ""));
    if (!mode.ok()) ThrowStatus(mode.status());
    o.security.mode = *mode;
  } else {
    (void)options.String("security", "");
  }
  o.security.key_file = options.String("key_file", o.security.key_file);
  o.security.roster_dir = options.String("roster", o.security.roster_dir);
  o.security.beacon_secret_file =
      options.String("beacon_secret_file", o.security.beacon_secret_file);
  py::object on_peer_event = options.Object("on_peer_event");
  options.Finish();

  std::shared_ptr<PyNode> self(new PyNode());
  if (!on_peer_event.is_none()) {
    if (!PyCallable_Check(on_peer_event.ptr())) {
      ThrowType("on_peer_event must be callable");
    }
    SharedPy callback = Share(on_peer_event);
    const void* owner = self.get();
    o.on_peer_event = [callback, owner](const fabric::PeerEvent& e) {
      DeliverPeerEvent(callback, owner, e);
    };
  }
  absl::StatusOr<std::unique_ptr<fabric::Node>> node;
  {
    ReleaseGil nogil;
    SignalsBlocked blocked;
    node = fabric::Node::Start(std::move(o));
  }
  if (!node.ok()) ThrowStatus(node.status());
  self->node_ = std::move(*node);
  Closable::Register(self);
  return self;
}

PyNode::~PyNode() {
  if (node_ == nullptr) return;
  if (inherited()) {
    (void)node_.release();  // its threads live in the parent only
    return;
  }
  if (CallbackScope::Inside(this)) {
    // The last reference died in our own on_peer_event: joining here would
    // wait for this very thread.
    fabric::Node* node = node_.release();
    Bridge::PostWithoutGil([node] { delete node; });
    return;
  }
  WithoutGil([this] { node_.reset(); });
}

void PyNode::CheckNotInOwnCallback(const char* what) {
  if (CallbackScope::Inside(this)) {
    ThrowUsage(absl::StrCat(
        what,
        " called from this node's own on_peer_event callback: it would "
        "wait for itself"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::weak_ptr<Closable>& w : children_) {
    std::shared_ptr<Closable> child = w.lock();
    if (child != nullptr && CallbackScope::Inside(child.get())) {
      ThrowUsage(absl::StrCat(what,
                              " called from a callback of an object on this "
                              "node: it would wait for itself"));
    }
  }
}

void PyNode::Close() {
  CheckNotForked("this Node");
  CheckNotInOwnCallback("Node.close()");
  ReleaseGil nogil;
  CloseNoGil();
}

void PyNode::CloseNoGil() {
  std::vector<std::shared_ptr<Closable>> children;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = children_.rbegin(); it != children_.rend(); ++it) {
      if (std::shared_ptr<Closable> c = it->lock()) children.push_back(c);
    }
    children_.clear();
  }
  for (const std::shared_ptr<Closable>& c : children) c->CloseNoGil();
  children.clear();
  // Two closers (the program and the exit hook, say): the second waits
  // here until the node is down, and Notify runs once.
  std::lock_guard<std::mutex> lock(close_mu_);
  if (node_ != nullptr && !done_.HasBeenNotified()) {
    node_->Close();
    node_->Join();
    done_.Notify();
  }
}

bool PyNode::Wait(py::handle timeout) {
  CheckNotForked("this Node");
  const absl::Duration t =
      ToDuration(timeout, "timeout", absl::InfiniteDuration());
  return WaitInSlices(t, [this](absl::Duration slice) {
    return done_.WaitForNotificationWithTimeout(slice);
  });
}

fabric::Node& PyNode::Use(const char* what) {
  CheckNotForked(what);
  if (done_.HasBeenNotified()) {
    ThrowStatus(absl::CancelledError(
        absl::StrCat("node ", node_->name(), " is closed")));
  }
  return *node_;
}

void PyNode::Adopt(const std::shared_ptr<Closable>& child) {
  std::lock_guard<std::mutex> lock(mu_);
  children_.erase(std::remove_if(children_.begin(), children_.end(),
                                 [](const std::weak_ptr<Closable>& w) {
                                   return w.expired();
                                 }),
                  children_.end());
  children_.push_back(child);
}

void DestroyPatternObject(const Closable& self, const void* owner,
                          std::function<void()> destroy) {
  if (self.inherited()) {
    new std::function<void()>(std::move(destroy));  // leaked: see header
    return;
  }
  if (CallbackScope::Inside(owner)) {
    Bridge::PostWithoutGil(std::move(destroy));
    return;
  }
  WithoutGil(destroy);
}

void BindNode(py::module_& m) {
  py::class_<fabric::NodeStats>(m, "NodeStats")
      .def_readonly("beacons_sent", &fabric::NodeStats::beacons_sent)
      .def_readonly("beacon_bytes_sent", &fabric::NodeStats::beacon_bytes_sent)
      .def_readonly("beacons_received", &fabric::NodeStats::beacons_received)
      .def_readonly("beacons_malformed", &fabric::NodeStats::beacons_malformed)
      .def_readonly("beacons_wrong_version",
                    &fabric::NodeStats::beacons_wrong_version)
      .def_readonly("beacons_other_cluster",
                    &fabric::NodeStats::beacons_other_cluster)
      .def_readonly("messages_received", &fabric::NodeStats::messages_received)
      .def_readonly("messages_sent", &fabric::NodeStats::messages_sent)
      .def_readonly("messages_malformed",
                    &fabric::NodeStats::messages_malformed)
      .def_readonly("messages_wrong_version",
                    &fabric::NodeStats::messages_wrong_version)
      .def_readonly("messages_other_cluster",
                    &fabric::NodeStats::messages_other_cluster)
      .def_readonly("messages_unknown_sender",
                    &fabric::NodeStats::messages_unknown_sender)
      .def_readonly("messages_unknown_kind",
                    &fabric::NodeStats::messages_unknown_kind)
      .def_readonly("heartbeats_sent", &fabric::NodeStats::heartbeats_sent)
      .def_readonly("peers_joined", &fabric::NodeStats::peers_joined)
      .def_readonly("peers_left", &fabric::NodeStats::peers_left)
      .def_readonly("local_stalls", &fabric::NodeStats::local_stalls)
      .def_readonly("loop_wakeups", &fabric::NodeStats::loop_wakeups)
      .def_readonly("beacons_unauthenticated",
                    &fabric::NodeStats::beacons_unauthenticated)
      .def_readonly("beacons_unknown_key_id",
                    &fabric::NodeStats::beacons_unknown_key_id)
      .def_readonly("beacons_bad_mac", &fabric::NodeStats::beacons_bad_mac)
      .def_readonly("beacons_addr_mismatch",
                    &fabric::NodeStats::beacons_addr_mismatch)
      .def_readonly("beacons_stale", &fabric::NodeStats::beacons_stale)
      .def_readonly("beacons_replayed", &fabric::NodeStats::beacons_replayed)
      .def_readonly("beacons_unknown_node_key",
                    &fabric::NodeStats::beacons_unknown_node_key)
      .def_readonly("messages_unauthenticated",
                    &fabric::NodeStats::messages_unauthenticated)
      .def_readonly("messages_key_mismatch",
                    &fabric::NodeStats::messages_key_mismatch)
      .def_readonly("messages_revoked_key",
                    &fabric::NodeStats::messages_revoked_key)
      .def_readonly("gossip_unkeyed", &fabric::NodeStats::gossip_unkeyed)
      .def_readonly("handshakes_failed_auth",
                    &fabric::NodeStats::handshakes_failed_auth)
      .def_readonly("handshakes_failed_protocol",
                    &fabric::NodeStats::handshakes_failed_protocol)
      .def_readonly("handshakes_failed_other",
                    &fabric::NodeStats::handshakes_failed_other)
      .def_readonly("roster_reloads", &fabric::NodeStats::roster_reloads)
      .def_readonly("roster_reload_errors",
                    &fabric::NodeStats::roster_reload_errors)
      .def_readonly("keys_revoked", &fabric::NodeStats::keys_revoked)
      .def_readonly("zap_allowed", &fabric::NodeStats::zap_allowed)
      .def_readonly("zap_denied", &fabric::NodeStats::zap_denied)
      .def_readonly("zap_running", &fabric::NodeStats::zap_running);

  py::class_<fabric::PeerInfo>(m, "PeerInfo")
      .def_property_readonly(
          "id", [](const fabric::PeerInfo& p) { return p.id.ToHex(); })
      .def_property_readonly(
          "name", [](const fabric::PeerInfo& p) { return ToStr(p.name); })
      .def_readonly("mailbox_endpoint", &fabric::PeerInfo::mailbox_endpoint)
      .def_readonly("publish_endpoint", &fabric::PeerInfo::publish_endpoint)
      .def_readonly("discovery", &fabric::PeerInfo::discovery)
      .def_property_readonly(
          "key",
          [](const fabric::PeerInfo& p) -> py::object {
            if (p.public_key.empty()) return py::none();
            return py::str(fabric::security::KeyFingerprint(p.public_key));
          })
      .def_readonly("beacon_key_id", &fabric::PeerInfo::beacon_key_id)
      .def_property_readonly(
          "state",
          [](const fabric::PeerInfo& p) {
            return std::string(fabric::PeerStateName(p.state));
          })
      .def_property_readonly(
          "headers",
          [](const fabric::PeerInfo& p) { return FromHeaders(p.headers); })
      .def_property_readonly(
          "offers",
          [](const fabric::PeerInfo& p) { return OffersToDict(p.offers); })
      .def_property_readonly(
          "joined_at",
          [](const fabric::PeerInfo& p) { return ToDatetime(p.joined_at); })
      .def_property_readonly(
          "last_seen",
          [](const fabric::PeerInfo& p) { return ToDatetime(p.last_seen); })
      .def_readonly("messages_in", &fabric::PeerInfo::messages_in)
      .def_readonly("messages_out", &fabric::PeerInfo::messages_out)
      .def(
          "has_offer",
          [](const fabric::PeerInfo& p, const std::string& kind,
             const std::string& name) { return p.HasOffer(kind, name); },
          py::arg("kind"), py::arg("name"))
      .def("__repr__", [](const fabric::PeerInfo& p) {
        return absl::StrCat("<PeerInfo ", p.name, " ", p.id.ShortHex(), " ",
                            fabric::PeerStateName(p.state), " ",
                            p.mailbox_endpoint, ">");
      });

  py::class_<fabric::PeerEvent>(m, "PeerEvent")
      .def_property_readonly(
          "type",
          [](const fabric::PeerEvent& e) {
            return std::string(fabric::PeerEventTypeName(e.type));
          })
      .def_readonly("peer", &fabric::PeerEvent::peer)
      .def_readonly("reason", &fabric::PeerEvent::reason)
      .def_property_readonly(
          "time", [](const fabric::PeerEvent& e) { return ToDatetime(e.time); })
      .def("__repr__", [](const fabric::PeerEvent& e) {
        return absl::StrCat("<PeerEvent ", fabric::PeerEventTypeName(e.type),
                            " ", e.peer.name, " (", e.reason, ")>");
      });

  py::class_<PyNode, std::shared_ptr<PyNode>>(m, "Node")
      .def(py::init(&PyNode::Start), py::arg("options"))
      .def("close", &PyNode::Close)
      .def("wait", &PyNode::Wait, py::arg("timeout") = py::none())
      .def_property_readonly("closed", &PyNode::closed)
      .def_property_readonly("id",
                             [](PyNode& n) {
                               n.CheckNotForked("this Node");
                               return n.node().id().ToHex();
                             })
      .def_property_readonly("name",
                             [](PyNode& n) {
                               n.CheckNotForked("this Node");
                               return ToStr(n.node().name());
                             })
      .def_property_readonly("cluster",
                             [](PyNode& n) {
                               n.CheckNotForked("this Node");
                               return ToStr(n.node().cluster());
                             })
      .def_property_readonly("mailbox_endpoint",
                             [](PyNode& n) {
                               n.CheckNotForked("this Node");
                               return n.node().mailbox_endpoint();
                             })
      .def("peers",
           [](PyNode& n) {
             fabric::Node& node = n.Use("this Node");
             absl::StatusOr<std::vector<fabric::PeerInfo>> peers;
             {
               ReleaseGil nogil;
               peers = node.Peers();
             }
             if (!peers.ok()) ThrowStatus(peers.status());
             return std::move(*peers);
           })
      .def(
          "set_offer",
          [](PyNode& n, const std::string& kind, const std::string& name,
             bool offered) {
            fabric::Node& node = n.Use("this Node");
            absl::Status s;
            {
              ReleaseGil nogil;
              s = node.SetOffer(kind, name, offered);
            }
            if (!s.ok()) ThrowStatus(s);
          },
          py::arg("kind"), py::arg("name"), py::arg("offered") = true)
      .def(
          "set_header",
          [](PyNode& n, const std::string& key, const std::string& value) {
            fabric::Node& node = n.Use("this Node");
            absl::Status s;
            {
              ReleaseGil nogil;
              s = node.SetHeader(key, value);
            }
            if (!s.ok()) ThrowStatus(s);
          },
          py::arg("key"), py::arg("value"))
      .def("stats",
           [](PyNode& n) {
             n.CheckNotForked("this Node");
             return n.node().Stats();
           })
      .def("reload_roster", [](PyNode& n) {
        n.CheckNotForked("this Node");
        absl::Status s;
        {
          ReleaseGil nogil;
          s = n.node().ReloadRoster();
        }
        if (!s.ok()) ThrowStatus(s);
      });
}

}  // namespace fabricmq
