// SPDX-License-Identifier: Apache-2.0
// What a node in secure mode holds (docs/security.md): its keypair, the
// live roster and the beacon secrets, loaded and checked before anything
// binds. Shared with the pattern objects that own sockets of their own
// (a publisher's XPUB, a subscriber's SUB).
#ifndef FABRIC_SECURITY_NODE_SECURITY_H_
#define FABRIC_SECURITY_NODE_SECURITY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fabric/node_options.h"
#include "fabric/security/keys.h"
#include "fabric/security/zap.h"

namespace fabric::security {

// Thread safety: immutable after LoadNodeSecurity except `roster`, which
// is itself thread-safe.
struct NodeSecurity {
  CurveKeypair keypair;
  std::shared_ptr<RosterHolder> roster;
  std::string roster_dir;
  // Beacon secrets; empty when none was configured (seeds mode).
  BeaconSecrets beacon;
  // Each configured seed endpoint (without its "#name") with the key its
  // server must prove, in the order of NodeOptions::seeds.
  std::vector<std::pair<std::string, std::string>> seeds;
};

// The key the server of `seed` ("tcp://H:P#NAME", or "tcp://H:P" matching a
// roster entry's endpoint) must prove, from `roster`. kFailedPrecondition
// (FAB-SEC-SEED-KEY) when the roster has no such entry.
absl::StatusOr<std::string> ResolveSeedKey(const Roster& roster,
                                           absl::string_view seed,
                                           absl::string_view roster_dir);

// Checks libzmq's CURVE and libsodium, then loads and checks the key file,
// the roster (which must hold this node's own key) and the beacon secrets
// (required unless discovery is seeds), and resolves each seed's key: a seed
// is written "tcp://H:P#NAME" for the roster entry NAME, or matches a roster
// entry's `endpoint`. kFailedPrecondition with a FAB-SEC-* line naming the
// file otherwise.
absl::StatusOr<std::shared_ptr<NodeSecurity>> LoadNodeSecurity(
    const NodeOptions& options);

// The endpoint part of a seed ("tcp://H:P#NAME" -> "tcp://H:P").
absl::string_view SeedEndpoint(absl::string_view seed);

}  // namespace fabric::security

#endif  // FABRIC_SECURITY_NODE_SECURITY_H_
