// SPDX-License-Identifier: Apache-2.0
// The hardened ZeroMQ sockets patterns may own outside the engine (pub/sub's
// XPUB and SUB). They are made by the same code as the node's own sockets
// (fabric/internal/socket_profile.cc), so one hardening profile covers
// every socket: a maximum message size, a short handshake, explicit HWMs,
// a bounded linger, TCP keepalive and, on connecting sockets, ZMTP
// heartbeats.
#ifndef FABRIC_SOCKETS_H_
#define FABRIC_SOCKETS_H_

#include <cstddef>
#include <string>
#include <zmq.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace fabric {

namespace security {
struct CurveKeypair;
}

struct StreamSocketOptions {
  size_t max_message_bytes = 16 * 1024 * 1024;
  // Messages queued per connection before the socket drops (XPUB) or stops
  // reading (SUB).
  int hwm = 100000;
  absl::Duration linger = absl::Seconds(1);
  // Secure mode: the node's keypair (not owned). The XPUB becomes a
  // fail-closed CURVE server, whose context must run a ZAP handler; a SUB
  // takes each publisher's key before connecting (SetCurveServerKey).
  const security::CurveKeypair* curve = nullptr;
};

// An XPUB bound to `endpoint` ("tcp://127.0.0.1:*"); read the bound address
// with ZMQ_LAST_ENDPOINT. Drops for a subscriber whose queue is full (never
// blocks). Thread safety: the socket, like any, is used by one thread at a
// time. Returns the bind error as a Status.
absl::StatusOr<zmq::socket_t> MakeXpubSocket(zmq::context_t& ctx,
                                             const StreamSocketOptions& options,
                                             const std::string& endpoint);
// An unconnected SUB with ZMTP heartbeats and a quick reconnect.
absl::StatusOr<zmq::socket_t> MakeSubSocket(zmq::context_t& ctx,
                                            const StreamSocketOptions& options);
// Secure mode: the key (32 raw bytes) the next connect of `sub` must meet,
// with `options.curve` as the client's own keypair.
absl::Status SetCurveServerKey(zmq::socket_t& sub,
                               const StreamSocketOptions& options,
                               const std::string& server_key);

}  // namespace fabric

#endif  // FABRIC_SOCKETS_H_
