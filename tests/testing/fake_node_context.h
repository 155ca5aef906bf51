// SPDX-License-Identifier: Apache-2.0
// A `NodeContext` with no node behind it, so a pattern plugin runs in a unit
// test: time comes from a `FakeClock`, sends are recorded (or fail on
// demand), offers and wake-up requests are kept, and the test sets the
// peers. Test-only; header-only.
#ifndef FABRIC_TESTS_TESTING_FAKE_NODE_CONTEXT_H_
#define FABRIC_TESTS_TESTING_FAKE_NODE_CONTEXT_H_

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "fabric/base/clock.h"
#include "fabric/codec/wire_format.h"
#include "fabric/plugin.h"

namespace fabric::testing {

// Thread safety: thread-compatible, like the engine thread it stands for.
class FakeNodeContext : public NodeContext {
 public:
  struct Sent {
    NodeId to;
    uint16_t kind;
    std::string body;
  };

  explicit FakeNodeContext(FakeClock* clock, NodeId self = NodeId::Random())
      : clock_(clock), self_(self) {}

  // NodeContext.
  const NodeId& self_id() const override { return self_; }
  absl::Time Now() const override { return clock_->Now(); }
  absl::Status Send(const NodeId& peer, uint16_t kind,
                    absl::string_view body) override {
    if (kind < kFirstPatternKind) {
      return absl::InvalidArgumentError("core message kind");
    }
    if (!peers_.contains(peer)) {
      return absl::NotFoundError(absl::StrCat("no peer ", peer.ShortHex()));
    }
    if (!send_status_.ok()) return send_status_;
    sent_.push_back(Sent{peer, kind, std::string(body)});
    return absl::OkStatus();
  }
  absl::Status SetOffer(absl::string_view kind, absl::string_view name,
                        bool offered) override {
    const std::string key = absl::StrCat(kind, "=", name);
    if (offered) {
      offers_.insert(key);
    } else {
      offers_.erase(key);
    }
    return absl::OkStatus();
  }
  const PeerInfo* FindPeer(const NodeId& id) const override {
    auto it = peers_.find(id);
    return it == peers_.end() ? nullptr : &it->second;
  }
  std::vector<PeerInfo> Peers() const override {
    std::vector<PeerInfo> out;
    for (const auto& [id, peer] : peers_) out.push_back(peer);
    return out;
  }
  void WakeAt(absl::Time at) override { wake_at_ = std::min(wake_at_, at); }

  // Test controls.
  void AddPeer(PeerInfo peer) { peers_[peer.id] = std::move(peer); }
  void RemovePeer(const NodeId& id) { peers_.erase(id); }
  // Every later Send fails with `status` (OkStatus: sends work again).
  void FailSends(absl::Status status) { send_status_ = std::move(status); }
  // The messages sent since the last call.
  std::vector<Sent> TakeSent() { return std::exchange(sent_, {}); }
  bool Offers(absl::string_view kind, absl::string_view name) const {
    return offers_.count(absl::StrCat(kind, "=", name)) > 0;
  }
  // The earliest wake-up asked for since the last call.
  absl::Time TakeWakeAt() {
    return std::exchange(wake_at_, absl::InfiniteFuture());
  }

 private:
  FakeClock* const clock_;
  const NodeId self_;
  absl::flat_hash_map<NodeId, PeerInfo> peers_;
  std::set<std::string> offers_;
  std::vector<Sent> sent_;
  absl::Status send_status_;
  absl::Time wake_at_ = absl::InfiniteFuture();
};

}  // namespace fabric::testing

#endif  // FABRIC_TESTS_TESTING_FAKE_NODE_CONTEXT_H_
