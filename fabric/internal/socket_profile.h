// SPDX-License-Identifier: Apache-2.0
// The one place that makes ZeroMQ sockets, applying one hardening profile
// (DESIGN.md, "Security"): a maximum message size, a short handshake, ZMTP
// heartbeats, ROUTER_MANDATORY, IMMEDIATE on outgoing links, explicit HWMs
// and a bounded linger.
#ifndef FABRIC_INTERNAL_SOCKET_PROFILE_H_
#define FABRIC_INTERNAL_SOCKET_PROFILE_H_

#include <cstddef>
#include <string>
#include <zmq.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fabric/security/keys.h"

namespace fabric::node_internal {

struct SocketProfile {
  size_t max_message_bytes;
  absl::Duration linger;
  absl::Duration zmtp_heartbeat;  // ZMTP PING interval on TCP links
  absl::Duration zmtp_timeout;    // connection dropped after this silence
  // If set, a connection whose sent data stays unacknowledged this long is
  // dropped by the kernel (ZMQ_TCP_MAXRT, TCP_USER_TIMEOUT on Linux): a
  // half-open link is found without waking anyone.
  absl::Duration tcp_maxrt = absl::ZeroDuration();
};

// Options every socket gets: linger, maximum message size, handshake
// interval, TCP keepalive.
void ApplyCommon(zmq::socket_t& s, const SocketProfile& profile);
// ZMTP heartbeats, for the connecting side of a TCP link.
void ApplyZmtpHeartbeat(zmq::socket_t& s, const SocketProfile& profile);

// Makes the mailbox ROUTER bound to `endpoint` ("tcp://127.0.0.1:0" style).
// Returns the socket; its bound endpoint is read with ZMQ_LAST_ENDPOINT.
// With `curve` (secure mode) it is a fail-closed CURVE server
// (security::ApplyCurveServer): the context must run a ZAP handler.
absl::StatusOr<zmq::socket_t> MakeMailbox(zmq::context_t& ctx,
                                          const SocketProfile& profile,
                                          const std::string& endpoint,
                                          const security::CurveKeypair* curve);

// Makes a DEALER link to a peer's mailbox, monitored on `monitor_endpoint`
// (an inproc address) for handshake (success and every failure) and
// disconnect events, then connected to `endpoint`. The monitor starts before
// the connect so no event is lost. With `curve` it is a CURVE client that
// accepts only a server proving `server_key`.
absl::StatusOr<zmq::socket_t> MakeLink(zmq::context_t& ctx,
                                       const SocketProfile& profile,
                                       const std::string& endpoint,
                                       const std::string& monitor_endpoint,
                                       const security::CurveKeypair* curve,
                                       absl::string_view server_key);

}  // namespace fabric::node_internal

#endif  // FABRIC_INTERNAL_SOCKET_PROFILE_H_
