// SPDX-License-Identifier: Apache-2.0
#include "discovery/beacon_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "discovery/interfaces.h"
#include "fabric/base/errno_status.h"
#include "fabric/base/status_macros.h"

namespace fabric::discovery {
namespace {

constexpr size_t kMaxDatagram = 2048;

absl::Status SocketError(absl::string_view what) {
  return ZmqErrnoToStatus(errno, what);
}

absl::StatusOr<sockaddr_in> MakeAddress(const std::string& ip, uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("bad IPv4 address ", ip));
  }
  return addr;
}

// Opens a non-blocking, close-on-exec UDP socket bound to `ip:port`.
absl::StatusOr<int> OpenBound(const std::string& ip, uint16_t port, bool reuse,
                              bool broadcast) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return SocketError("socket(udp)");
  const int one = 1;
  if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one))) {
    absl::Status s = SocketError("setsockopt(SO_REUSEADDR)");
    close(fd);
    return s;
  }
  if (broadcast &&
      setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) != 0) {
    absl::Status s = SocketError("setsockopt(SO_BROADCAST)");
    close(fd);
    return s;
  }
  absl::StatusOr<sockaddr_in> addr = MakeAddress(ip, port);
  if (!addr.ok()) {
    close(fd);
    return addr.status();
  }
  if (bind(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    absl::Status s = SocketError(absl::StrCat("bind udp ", ip, ":", port));
    close(fd);
    return s;
  }
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BeaconSocket>> BeaconSocket::Open(
    const BeaconSocketOptions& options) {
  if (options.port == 0) {
    return absl::InvalidArgumentError("beacon port must be 1..65535");
  }
  std::string local = "127.0.0.1";
  std::string broadcast = "127.255.255.255";
  if (!options.loopback) {
    FABRIC_ASSIGN_OR_RETURN(InterfaceAddress iface,
                            LookupInterface(options.interface));
    local = iface.address;
    broadcast = iface.broadcast;
  }
  // Binding the receive socket to the broadcast address means it hears only
  // beacons sent to that address: never unicast, never another interface.
  FABRIC_ASSIGN_OR_RETURN(int recv_fd,
                          OpenBound(broadcast, options.port, /*reuse=*/true,
                                    /*broadcast=*/true));
  // The send socket is bound to the interface address so the source address
  // peers read from each beacon is one they can connect back to.
  absl::StatusOr<int> send_fd =
      OpenBound(local, 0, /*reuse=*/false, /*broadcast=*/true);
  if (!send_fd.ok()) {
    close(recv_fd);
    return send_fd.status();
  }
  return std::unique_ptr<BeaconSocket>(
      new BeaconSocket(recv_fd, *send_fd, local, broadcast, options.port));
}

BeaconSocket::BeaconSocket(int recv_fd, int send_fd, std::string local_address,
                           std::string broadcast_address, uint16_t port)
    : recv_fd_(recv_fd),
      send_fd_(send_fd),
      local_address_(std::move(local_address)),
      broadcast_address_(std::move(broadcast_address)),
      port_(port) {}

BeaconSocket::~BeaconSocket() {
  close(recv_fd_);
  close(send_fd_);
}

absl::Status BeaconSocket::Send(absl::string_view datagram) {
  FABRIC_ASSIGN_OR_RETURN(sockaddr_in to,
                          MakeAddress(broadcast_address_, port_));
  ssize_t n = sendto(send_fd_, datagram.data(), datagram.size(), MSG_DONTWAIT,
                     reinterpret_cast<const sockaddr*>(&to), sizeof(to));
  if (n < 0) {
    return absl::UnavailableError(absl::StrCat("beacon send to ",
                                               broadcast_address_, ":", port_,
                                               ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Datagram>> BeaconSocket::Receive() {
  char buffer[kMaxDatagram];
  sockaddr_in from{};
  socklen_t from_len = sizeof(from);
  ssize_t n = recvfrom(recv_fd_, buffer, sizeof(buffer), MSG_DONTWAIT,
                       reinterpret_cast<sockaddr*>(&from), &from_len);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      return std::optional<Datagram>();
    }
    return SocketError("beacon recvfrom");
  }
  char text[INET_ADDRSTRLEN] = {0};
  inet_ntop(AF_INET, &from.sin_addr, text, sizeof(text));
  return std::optional<Datagram>(
      Datagram{std::string(buffer, static_cast<size_t>(n)), text});
}

}  // namespace fabric::discovery
