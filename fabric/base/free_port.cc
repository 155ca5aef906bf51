// SPDX-License-Identifier: Apache-2.0
#include "fabric/base/free_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace fabric {

absl::StatusOr<uint16_t> FreeLoopbackPort(PortKind kind) {
  const int fd =
      socket(AF_INET, kind == PortKind::kTcp ? SOCK_STREAM : SOCK_DGRAM, 0);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  absl::StatusOr<uint16_t> port;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    port = absl::UnavailableError(
        absl::StrCat("bind 127.0.0.1:0: ", std::strerror(errno)));
  } else if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    port = absl::InternalError(
        absl::StrCat("getsockname: ", std::strerror(errno)));
  } else {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace fabric
