// SPDX-License-Identifier: Apache-2.0
#include "discovery/beacon_replay_filter.h"

#include <algorithm>

namespace fabric::discovery {

BeaconReplayFilter::BeaconReplayFilter(size_t capacity)
    : capacity_(std::max<size_t>(capacity, 1)) {}

bool BeaconReplayFilter::Accept(const NodeId& id, uint64_t seq) {
  auto it = index_.find(id);
  if (it != index_.end()) {
    if (seq <= it->second->second) return false;
    it->second->second = seq;
    order_.splice(order_.begin(), order_, it->second);
    return true;
  }
  if (seq == 0) return false;
  if (index_.size() >= capacity_) {
    index_.erase(order_.back().first);
    order_.pop_back();
  }
  order_.emplace_front(id, seq);
  index_.emplace(id, order_.begin());
  return true;
}

uint64_t BeaconReplayFilter::LastAccepted(const NodeId& id) const {
  auto it = index_.find(id);
  return it == index_.end() ? 0 : it->second->second;
}

}  // namespace fabric::discovery
