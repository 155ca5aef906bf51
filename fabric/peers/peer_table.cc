// SPDX-License-Identifier: Apache-2.0
#include "fabric/peers/peer_table.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fabric {

bool PeerInfo::HasOffer(absl::string_view kind, absl::string_view name) const {
  auto it = offers.find(std::string(kind));
  return it != offers.end() && it->second.count(std::string(name)) > 0;
}

absl::string_view PeerStateName(PeerState state) {
  switch (state) {
    case PeerState::kAlive:
      return "alive";
    case PeerState::kSuspect:
      return "suspect";
    default:
      return "dead";
  }
}

absl::string_view PeerEventTypeName(PeerEventType type) {
  switch (type) {
    case PeerEventType::kJoined:
      return "joined";
    case PeerEventType::kSuspect:
      return "suspect";
    case PeerEventType::kBack:
      return "back";
    case PeerEventType::kLeft:
      return "left";
    default:
      return "updated";
  }
}

PeerEvent PeerTable::MakeEvent(PeerEventType type, const Record& record,
                               std::string reason, absl::Time now) const {
  return PeerEvent{type, record.info, std::move(reason), now};
}

PeerEvent PeerTable::Kill(const NodeId& id, std::string reason,
                          absl::Time now) {
  auto it = peers_.find(id);
  it->second.info.state = PeerState::kDead;
  PeerEvent event =
      MakeEvent(PeerEventType::kLeft, it->second, std::move(reason), now);
  peers_.erase(it);
  tombstones_[id] = now + options_.tombstone_ttl;
  return event;
}

std::vector<PeerEvent> PeerTable::OnHello(const Hello& hello, absl::Time now,
                                          absl::string_view public_key) {
  std::vector<PeerEvent> events;
  tombstones_.erase(hello.id);  // direct evidence of life beats a tombstone
  auto it = peers_.find(hello.id);
  if (it == peers_.end()) {
    // A new incarnation on an endpoint we know means the old one is gone
    // (ephemeral port reuse, or a restart that got the same port).
    std::vector<NodeId> replaced;
    for (const auto& [id, record] : peers_) {
      if (record.info.mailbox_endpoint == hello.mailbox_endpoint) {
        replaced.push_back(id);
      }
    }
    for (const NodeId& old : replaced) {
      events.push_back(
          Kill(old, absl::StrCat("replaced by ", hello.id.ShortHex()), now));
    }
    Record record;
    record.info.id = hello.id;
    record.info.joined_at = now;
    it = peers_.emplace(hello.id, std::move(record)).first;
    PeerInfo& info = it->second.info;
    info.name = hello.name;
    info.public_key = std::string(public_key);
    info.mailbox_endpoint = hello.mailbox_endpoint;
    info.publish_endpoint = hello.publish_endpoint;
    info.state_version = hello.state_version;
    info.discovery = hello.discovery;
    info.headers = hello.headers;
    info.offers = hello.offers;
    info.last_seen = now;
    info.messages_in = 1;  // this HELLO
    events.push_back(
        MakeEvent(PeerEventType::kJoined, it->second, "hello", now));
    return events;
  }
  Record& record = it->second;
  PeerInfo& info = record.info;
  const bool changed = hello.mailbox_endpoint != info.mailbox_endpoint ||
                       hello.state_version != info.state_version ||
                       hello.offers != info.offers ||
                       hello.headers != info.headers ||
                       hello.name != info.name ||
                       hello.publish_endpoint != info.publish_endpoint;
  info.name = hello.name;
  info.mailbox_endpoint = hello.mailbox_endpoint;
  info.publish_endpoint = hello.publish_endpoint;
  info.state_version = hello.state_version;
  info.discovery = hello.discovery;
  info.headers = hello.headers;
  info.offers = hello.offers;
  std::vector<PeerEvent> back = OnTraffic(hello.id, now);
  events.insert(events.end(), back.begin(), back.end());
  if (changed) {
    events.push_back(MakeEvent(PeerEventType::kUpdated, record, "hello", now));
  }
  return events;
}

std::vector<PeerEvent> PeerTable::OnTraffic(const NodeId& id, absl::Time now) {
  auto it = peers_.find(id);
  if (it == peers_.end()) return {};
  Record& record = it->second;
  record.info.last_seen = now;
  ++record.info.messages_in;
  record.link_down = false;
  if (record.info.state == PeerState::kSuspect) {
    record.info.state = PeerState::kAlive;
    return {MakeEvent(PeerEventType::kBack, record, "heard from again", now)};
  }
  return {};
}

void PeerTable::OnSent(const NodeId& id, uint64_t count) {
  auto it = peers_.find(id);
  if (it != peers_.end()) it->second.info.messages_out += count;
}

void PeerTable::NoteBeaconKeyId(const NodeId& id, uint8_t key_id) {
  auto it = peers_.find(id);
  if (it != peers_.end()) it->second.info.beacon_key_id = key_id;
}

std::vector<PeerEvent> PeerTable::OnBeacon(const NodeId& id, absl::Time now) {
  auto it = peers_.find(id);
  if (it == peers_.end()) return {};
  Record& record = it->second;
  record.info.last_seen = now;
  // A beacon proves the process runs, not that our TCP path to it works: a
  // dropped link still kills the peer after the grace (Zyre learned that
  // beacons alone kept peers with dead connections alive).
  if (record.info.state == PeerState::kSuspect && !record.link_down) {
    record.info.state = PeerState::kAlive;
    return {MakeEvent(PeerEventType::kBack, record, "beacon", now)};
  }
  return {};
}

std::vector<PeerEvent> PeerTable::OnDisconnected(const NodeId& id,
                                                 absl::Time now) {
  auto it = peers_.find(id);
  if (it == peers_.end()) return {};
  Record& record = it->second;
  if (!record.link_down) {
    record.link_down = true;
    record.link_down_at = now;
  }
  if (record.info.state == PeerState::kAlive) {
    record.info.state = PeerState::kSuspect;
    return {MakeEvent(PeerEventType::kSuspect, record, "connection lost", now)};
  }
  return {};
}

void PeerTable::OnConnected(const NodeId& id) {
  auto it = peers_.find(id);
  if (it != peers_.end()) it->second.link_down = false;
}

std::vector<PeerEvent> PeerTable::Remove(const NodeId& id,
                                         absl::string_view reason,
                                         absl::Time now) {
  if (peers_.find(id) == peers_.end()) return {};
  return {Kill(id, std::string(reason), now)};
}

std::vector<PeerEvent> PeerTable::Tick(absl::Time now) {
  std::vector<PeerEvent> events;
  std::vector<std::pair<NodeId, std::string>> dead;
  for (auto& [id, record] : peers_) {
    const absl::Duration silent = now - record.info.last_seen;
    if (record.link_down &&
        now - record.link_down_at >= options_.disconnect_grace) {
      dead.emplace_back(id, "connection lost");
    } else if (silent >= options_.dead_timeout) {
      dead.emplace_back(
          id, absl::StrFormat("silent %.1fs", absl::ToDoubleSeconds(silent)));
    } else if (silent >= options_.suspect_timeout &&
               record.info.state == PeerState::kAlive) {
      record.info.state = PeerState::kSuspect;
      events.push_back(MakeEvent(
          PeerEventType::kSuspect, record,
          absl::StrFormat("silent %.1fs", absl::ToDoubleSeconds(silent)), now));
    }
  }
  for (auto& [id, reason] : dead) {
    events.push_back(Kill(id, std::move(reason), now));
  }
  for (auto it = tombstones_.begin(); it != tombstones_.end();) {
    if (it->second <= now) {
      tombstones_.erase(it++);
    } else {
      ++it;
    }
  }
  return events;
}

absl::Time PeerTable::NextDeadline() const {
  absl::Time next = absl::InfiniteFuture();
  for (const auto& [id, record] : peers_) {
    if (record.link_down) {
      next = std::min(next, record.link_down_at + options_.disconnect_grace);
    }
    next = std::min(
        next, record.info.last_seen + (record.info.state == PeerState::kAlive
                                           ? options_.suspect_timeout
                                           : options_.dead_timeout));
  }
  return next;
}

void PeerTable::ForgiveSilence(absl::Time now) {
  for (auto& [id, record] : peers_) {
    record.info.last_seen = std::max(record.info.last_seen, now);
    if (record.link_down) record.link_down_at = now;
  }
}

bool PeerTable::IsTombstoned(const NodeId& id, absl::Time now) const {
  auto it = tombstones_.find(id);
  return it != tombstones_.end() && it->second > now;
}

const PeerInfo* PeerTable::Find(const NodeId& id) const {
  auto it = peers_.find(id);
  return it == peers_.end() ? nullptr : &it->second.info;
}

std::vector<PeerInfo> PeerTable::Snapshot() const {
  std::vector<PeerInfo> out;
  out.reserve(peers_.size());
  for (const auto& [id, record] : peers_) out.push_back(record.info);
  std::sort(out.begin(), out.end(), [](const PeerInfo& a, const PeerInfo& b) {
    return a.name != b.name ? a.name < b.name : a.id < b.id;
  });
  return out;
}

}  // namespace fabric
