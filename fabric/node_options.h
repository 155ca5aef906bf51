// SPDX-License-Identifier: Apache-2.0
// Options of a `fabric::Node`: identity, discovery and liveness timings.
// Every field documents its meaning, unit, default and range; `Node::Start`
// validates them and returns kInvalidArgument naming the bad field.
#ifndef FABRIC_NODE_OPTIONS_H_
#define FABRIC_NODE_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fabric/base/clock.h"
#include "fabric/limits.h"
#include "fabric/peers/peer_info.h"
#include "fabric/types.h"

namespace fabric {

enum class DiscoveryMode {
  // UDP broadcast on 127.255.255.255: every node on this host, nothing
  // leaves it. The default; needs no configuration.
  kLoopback,
  // UDP broadcast on the named `interface`'s subnet. Chosen explicitly.
  kLan,
  // No beacons: connect to `seeds` and learn the rest by gossip.
  kSeeds,
};

absl::string_view DiscoveryModeName(DiscoveryMode mode);  // "loopback", ...
// Parses "loopback", "lan" or "seeds"; kInvalidArgument otherwise.
absl::StatusOr<DiscoveryMode> ParseDiscoveryMode(absl::string_view text);

enum class SecurityMode {
  kOff,    // plaintext ZMTP, unauthenticated beacons (the default)
  kCurve,  // CURVE on every socket, a roster of keys, signed beacons
};

absl::string_view SecurityModeName(SecurityMode mode);  // "off", "curve"
// Parses "off" or "curve"; kInvalidArgument otherwise.
absl::StatusOr<SecurityMode> ParseSecurityMode(absl::string_view text);

// Secure mode (docs/security.md). Any field set turns it on; then a missing
// or unsafe piece makes `Node::Start` fail with kFailedPrecondition naming
// the file. Never a fallback to plaintext.
struct SecurityOptions {
  SecurityMode mode = SecurityMode::kOff;
  // This node's CURVE keypair (`fabric keygen`): owner-only, never a
  // symlink.
  std::string key_file;
  // Directory of *.pub files: the keys allowed to join, this node's own
  // included. Reloaded when it changes (checked every
  // `roster_check_interval`) and on `Node::ReloadRoster`; a key removed is
  // cut off at once.
  std::string roster_dir;
  // The cluster's beacon secrets (`fabric keygen --beacon-secret`).
  // Required with loopback and LAN discovery; unused in seeds mode.
  std::string beacon_secret_file;
  // How far a beacon's send time may be from our clock. 1 s .. 1 h;
  // default 30 s.
  absl::Duration beacon_max_skew = absl::Seconds(30);
  // How often the roster directory is checked for changes. 100 ms .. 1 min;
  // default 2 s.
  absl::Duration roster_check_interval = absl::Seconds(2);

  // True when secure mode is on, explicitly or through any path.
  bool enabled() const;
};

struct NodeOptions {
  // Human-readable name shown to peers. Default: "node-" + 8 hex of the id.
  std::string name;
  // Nodes only see peers of the same cluster. 1..255 bytes.
  std::string cluster = "default";

  DiscoveryMode discovery = DiscoveryMode::kLoopback;
  // kLan: the interface to broadcast on (required), e.g. "eth0". kSeeds:
  // optional; its address is bound and advertised (default 127.0.0.1).
  std::string interface;
  // UDP port for beacons, shared by the cluster. 1..65535. Default 47470.
  uint16_t beacon_port = 47470;
  // kSeeds: mailbox endpoints of nodes to contact first, such as
  // "tcp://127.0.0.1:7000". At least one is required in that mode.
  std::vector<std::string> seeds;
  // TCP port of this node's mailbox. 0 (default) picks a free port; seed
  // nodes set a fixed one so others can name them.
  uint16_t mailbox_port = 0;

  // Off by default. In secure mode `beacon_interval` must be >= 200 ms
  // (signed beacons stay under 1 KiB/s per node).
  SecurityOptions security;

  // Key/value strings sent to peers in HELLO.
  Headers headers;

  // How often a beacon is sent. 10 ms .. 60 s; default 1 s.
  absl::Duration beacon_interval = absl::Seconds(1);
  // A heartbeat (PING) goes to each peer not otherwise sent to for this
  // long. Peers in the same beacon mode skip PINGs when `beacon_interval`
  // <= this: the beacon is the heartbeat. 10 ms .. 60 s; default 1 s.
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // Silence before a peer is suspect. > heartbeat_interval; default 2 s.
  absl::Duration suspect_timeout = absl::Seconds(2);
  // Silence before a peer is dead. > suspect_timeout, <= 5 min; default 3 s.
  absl::Duration dead_timeout = absl::Seconds(3);
  // After its connection drops, how long a peer may take to reconnect before
  // it is dead. 0 .. dead_timeout; default 300 ms.
  absl::Duration disconnect_grace = absl::Milliseconds(300);

  // Largest message accepted on any socket, envelope included.
  // 1 KiB .. 1 GiB; default 16 MiB.
  size_t max_message_bytes = kDefaultMaxMessageBytes;
  // How long closing sockets may keep flushing (goodbyes). 0 .. 10 s;
  // default 200 ms. Bounds how long destruction can take.
  absl::Duration linger = absl::Milliseconds(200);

  // Called for each peer event on the node's event thread (never the engine
  // thread), one at a time in order. May block only itself; must not call
  // `Node::Join` or destroy the node. Optional.
  std::function<void(const PeerEvent&)> on_peer_event;

  // The engine's time source (heartbeats, timeouts, plugin ticks), for
  // tests that drive time by hand with a `FakeClock`; it must outlive the
  // node. Null (default): the process's monotonic clock.
  Clock* clock = nullptr;
};

// Returns kInvalidArgument naming the first bad field.
absl::Status ValidateNodeOptions(const NodeOptions& options);

// Overrides fields from the environment where set: FABRIC_CLUSTER,
// FABRIC_DISCOVERY, FABRIC_INTERFACE, FABRIC_BEACON_PORT, FABRIC_SEEDS
// (comma-separated), FABRIC_SECURITY (off or curve), FABRIC_KEY_FILE,
// FABRIC_ROSTER, FABRIC_BEACON_SECRET_FILE (paths, never key material).
// Returns kInvalidArgument for an unparsable value.
absl::Status ApplyEnvironment(NodeOptions* options);

}  // namespace fabric

#endif  // FABRIC_NODE_OPTIONS_H_
