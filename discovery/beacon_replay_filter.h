// SPDX-License-Identifier: Apache-2.0
// The replay check of signed beacons (docs/protocol.md, "Beacon v2 (secure
// mode)", step 7): remembers the last sequence number accepted from each
// of the most recently heard node ids, and refuses anything not newer.
#ifndef FABRIC_DISCOVERY_BEACON_REPLAY_FILTER_H_
#define FABRIC_DISCOVERY_BEACON_REPLAY_FILTER_H_

#include <cstddef>
#include <cstdint>
#include <list>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "fabric/base/node_id.h"

namespace fabric::discovery {

// A bounded LRU map of node id -> last accepted beacon seq. A sender counts
// its seq 1, 2, 3 ... per node id, and the id is new for every process
// start, so nothing needs to persist. When full, the id accepted longest
// ago is forgotten; a replay of that id's old beacons then passes this
// filter, which is why the receiver also checks the send time
// (`BeaconFresh`): an id must stay silent for a while to be evicted, and by
// then its captured beacons are stale. Filling the filter with fresh ids
// takes beacons that verified, so the beacon secret.
//
// Feed it only beacons that passed every cheaper check (the tag, the source
// address and the send time), or forgeries would evict real peers.
//
// Thread safety: thread-compatible (`Accept` mutates; the engine calls it
// from its loop thread only).
class BeaconReplayFilter {
 public:
  // The default bound: the number of node ids remembered.
  static constexpr size_t kDefaultCapacity = 4096;

  // Remembers up to `capacity` ids; a `capacity` of 0 is taken as 1.
  explicit BeaconReplayFilter(size_t capacity = kDefaultCapacity);

  BeaconReplayFilter(const BeaconReplayFilter&) = delete;
  BeaconReplayFilter& operator=(const BeaconReplayFilter&) = delete;

  // Returns true, and records `seq` as the last accepted for `id` and `id`
  // as the most recently accepted, when `seq` is greater than the last seq
  // accepted for `id` (0 for an id not remembered, so seq 0 is never
  // accepted). Returns false otherwise and changes nothing. Evicts the id
  // accepted longest ago when a new id would exceed the capacity.
  bool Accept(const NodeId& id, uint64_t seq);

  // Returns the last seq accepted for `id`, or 0 if it is not remembered.
  uint64_t LastAccepted(const NodeId& id) const;

  size_t size() const { return index_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  using Entry = std::pair<NodeId, uint64_t>;

  const size_t capacity_;
  // Most recently accepted first.
  std::list<Entry> order_;
  absl::flat_hash_map<NodeId, std::list<Entry>::iterator> index_;
};

}  // namespace fabric::discovery

#endif  // FABRIC_DISCOVERY_BEACON_REPLAY_FILTER_H_
