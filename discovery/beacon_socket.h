// SPDX-License-Identifier: Apache-2.0
// The UDP sockets that send and receive beacons, in loopback or LAN mode.
//
// Loopback mode sends to 127.255.255.255, the broadcast address of `lo`:
// every process on the host that bound that address and port hears it, and
// it never leaves the host. LAN mode sends to the directed broadcast address
// of one named interface. Unicast is not used because SO_REUSEADDR hands a
// unicast datagram to only one of the sockets sharing a port.
#ifndef FABRIC_DISCOVERY_BEACON_SOCKET_H_
#define FABRIC_DISCOVERY_BEACON_SOCKET_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fabric::discovery {

struct BeaconSocketOptions {
  // True: loopback broadcast. False: broadcast on `interface`.
  bool loopback = true;
  // Interface name for LAN mode (required there), e.g. "eth0".
  std::string interface;
  // UDP port shared by every node of the cluster. 1..65535.
  uint16_t port = 0;
};

struct Datagram {
  std::string payload;
  std::string source_address;  // dotted quad of the sender
};

// Owns the two UDP sockets. Move-only.
// Thread safety: loop-thread only (used by one node's engine thread).
class BeaconSocket {
 public:
  // Opens and binds the sockets. Returns kInvalidArgument for port 0,
  // kNotFound / kFailedPrecondition for an unusable interface, and the
  // errno-mapped status when a socket call fails.
  static absl::StatusOr<std::unique_ptr<BeaconSocket>> Open(
      const BeaconSocketOptions& options);

  BeaconSocket(const BeaconSocket&) = delete;
  BeaconSocket& operator=(const BeaconSocket&) = delete;
  ~BeaconSocket();

  // The receive socket's fd, for poll(2).
  int fd() const { return recv_fd_; }
  // The address peers should use to reach this host ("127.0.0.1" or the
  // interface address).
  const std::string& local_address() const { return local_address_; }

  // Broadcasts one datagram. Returns kUnavailable when the send fails (for
  // example the interface went down); the caller retries next interval.
  absl::Status Send(absl::string_view datagram);

  // Reads one pending datagram without blocking; std::nullopt when none.
  absl::StatusOr<std::optional<Datagram>> Receive();

 private:
  BeaconSocket(int recv_fd, int send_fd, std::string local_address,
               std::string broadcast_address, uint16_t port);

  const int recv_fd_;
  const int send_fd_;
  const std::string local_address_;
  const std::string broadcast_address_;
  const uint16_t port_;
};

}  // namespace fabric::discovery

#endif  // FABRIC_DISCOVERY_BEACON_SOCKET_H_
