// SPDX-License-Identifier: Apache-2.0
#include "fabric/internal/socket_profile.h"

#include "absl/strings/str_cat.h"
#include "fabric/base/errno_status.h"
#include "fabric/security/zap.h"
#include "fabric/sockets.h"

namespace fabric::node_internal {
namespace {

// Every HWM is explicit. The mailbox receives all peers' traffic; it sends
// only HELLO_REQUESTs. Links carry traffic out and HELLO_REQUESTs back.
constexpr int kMailboxRcvHwm = 100000;
constexpr int kMailboxSndHwm = 1000;
constexpr int kLinkSndHwm = 100000;
constexpr int kLinkRcvHwm = 1000;
constexpr absl::Duration kHandshakeInterval = absl::Seconds(5);

int Millis(absl::Duration d) {
  return static_cast<int>(absl::ToInt64Milliseconds(d));
}

}  // namespace

void ApplyCommon(zmq::socket_t& s, const SocketProfile& p) {
  s.set(zmq::sockopt::linger, Millis(p.linger));
  s.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(p.max_message_bytes));
  s.set(zmq::sockopt::handshake_ivl, Millis(kHandshakeInterval));
  s.set(zmq::sockopt::tcp_keepalive, 1);
}

// ZMTP PINGs catch half-open TCP connections. Only the connecting side
// pings, so each connection carries one PING stream, not two. The TTL it
// announces (how long the mailbox side waits for any traffic) is twice the
// PING interval: equal values dropped quiet, healthy links at the boundary.
void ApplyZmtpHeartbeat(zmq::socket_t& s, const SocketProfile& p) {
  s.set(zmq::sockopt::heartbeat_ivl, Millis(p.zmtp_heartbeat));
  s.set(zmq::sockopt::heartbeat_timeout, Millis(p.zmtp_timeout));
  s.set(zmq::sockopt::heartbeat_ttl, Millis(2 * p.zmtp_heartbeat));
  if (p.tcp_maxrt > absl::ZeroDuration()) {
    s.set(zmq::sockopt::tcp_maxrt, Millis(p.tcp_maxrt));
  }
}

absl::StatusOr<zmq::socket_t> MakeMailbox(zmq::context_t& ctx,
                                          const SocketProfile& profile,
                                          const std::string& endpoint,
                                          const security::CurveKeypair* curve) {
  try {
    zmq::socket_t s(ctx, zmq::socket_type::router);
    ApplyCommon(s, profile);
    s.set(zmq::sockopt::router_mandatory, 1);
    s.set(zmq::sockopt::rcvhwm, kMailboxRcvHwm);
    s.set(zmq::sockopt::sndhwm, kMailboxSndHwm);
    if (curve != nullptr) {
      absl::Status secured = security::ApplyCurveServer(s, *curve);
      if (!secured.ok()) return secured;
    }
    s.bind(endpoint);
    return s;
  } catch (const zmq::error_t& e) {
    return ZmqErrnoToStatus(e.num(), absl::StrCat("bind mailbox ", endpoint));
  }
}

absl::StatusOr<zmq::socket_t> MakeLink(zmq::context_t& ctx,
                                       const SocketProfile& profile,
                                       const std::string& endpoint,
                                       const std::string& monitor_endpoint,
                                       const security::CurveKeypair* curve,
                                       absl::string_view server_key) {
  try {
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    if (curve != nullptr) {
      absl::Status secured = security::ApplyCurveClient(s, *curve, server_key);
      if (!secured.ok()) return secured;
    }
    ApplyCommon(s, profile);
    // IMMEDIATE: queue only to a completed connection, so a send to a peer
    // whose link is down fails at once instead of piling up.
    s.set(zmq::sockopt::immediate, 1);
    ApplyZmtpHeartbeat(s, profile);
    s.set(zmq::sockopt::sndhwm, kLinkSndHwm);
    s.set(zmq::sockopt::rcvhwm, kLinkRcvHwm);
    s.set(zmq::sockopt::reconnect_ivl, 100);
    s.set(zmq::sockopt::reconnect_ivl_max, 1000);
    if (zmq_socket_monitor(s.handle(), monitor_endpoint.c_str(),
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                               ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0) {
      return ZmqErrnoToStatus(zmq_errno(), "zmq_socket_monitor");
    }
    s.connect(endpoint);
    return s;
  } catch (const zmq::error_t& e) {
    return ZmqErrnoToStatus(e.num(), absl::StrCat("connect ", endpoint));
  }
}

}  // namespace fabric::node_internal

namespace fabric {
namespace {

// Pub/sub links are watched by discovery (a publisher that leaves is
// disconnected); ZMTP heartbeats only catch half-open TCP connections.
constexpr absl::Duration kStreamHeartbeat = absl::Seconds(2);
constexpr absl::Duration kStreamTimeout = absl::Seconds(10);

node_internal::SocketProfile StreamProfile(const StreamSocketOptions& o) {
  return {o.max_message_bytes, o.linger, kStreamHeartbeat, kStreamTimeout};
}

}  // namespace

absl::StatusOr<zmq::socket_t> MakeXpubSocket(zmq::context_t& ctx,
                                             const StreamSocketOptions& options,
                                             const std::string& endpoint) {
  try {
    zmq::socket_t s(ctx, zmq::socket_type::xpub);
    node_internal::ApplyCommon(s, StreamProfile(options));
    s.set(zmq::sockopt::sndhwm, options.hwm);
    s.set(zmq::sockopt::rcvhwm, 10000);  // subscription messages only
    if (options.curve != nullptr) {
      absl::Status secured = security::ApplyCurveServer(s, *options.curve);
      if (!secured.ok()) return secured;
    }
    s.bind(endpoint);
    return s;
  } catch (const zmq::error_t& e) {
    return ZmqErrnoToStatus(e.num(), absl::StrCat("bind publisher ", endpoint));
  }
}

absl::StatusOr<zmq::socket_t> MakeSubSocket(
    zmq::context_t& ctx, const StreamSocketOptions& options) {
  try {
    zmq::socket_t s(ctx, zmq::socket_type::sub);
    const node_internal::SocketProfile profile = StreamProfile(options);
    node_internal::ApplyCommon(s, profile);
    node_internal::ApplyZmtpHeartbeat(s, profile);
    s.set(zmq::sockopt::rcvhwm, options.hwm);
    s.set(zmq::sockopt::reconnect_ivl, 100);
    s.set(zmq::sockopt::reconnect_ivl_max, 1000);
    return s;
  } catch (const zmq::error_t& e) {
    return ZmqErrnoToStatus(e.num(), "make subscriber socket");
  }
}

}  // namespace fabric

namespace fabric {

absl::Status SetCurveServerKey(zmq::socket_t& sub,
                               const StreamSocketOptions& options,
                               const std::string& server_key) {
  if (options.curve == nullptr) {
    return absl::FailedPreconditionError("the socket is not in secure mode");
  }
  return security::ApplyCurveClient(sub, *options.curve, server_key);
}

}  // namespace fabric
