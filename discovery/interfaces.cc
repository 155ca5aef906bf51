// SPDX-License-Identifier: Apache-2.0
#include "discovery/interfaces.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace fabric::discovery {
namespace {

std::string Dotted(const sockaddr* addr) {
  char text[INET_ADDRSTRLEN] = {0};
  const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
  inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
  return text;
}

}  // namespace

absl::StatusOr<InterfaceAddress> LookupInterface(absl::string_view name) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) {
    return absl::InternalError(
        absl::StrCat("getifaddrs: ", std::strerror(errno)));
  }
  bool seen = false;
  std::string problem;
  absl::StatusOr<InterfaceAddress> result = absl::NotFoundError(
      absl::StrCat("no network interface named '", name, "'"));
  for (ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
    if (ifa->ifa_name == nullptr || name != ifa->ifa_name) continue;
    seen = true;
    if (ifa->ifa_addr == nullptr || ifa->ifa_addr->sa_family != AF_INET) {
      continue;
    }
    if ((ifa->ifa_flags & IFF_UP) == 0) {
      problem = "is down";
      continue;
    }
    if ((ifa->ifa_flags & IFF_BROADCAST) == 0) {
      problem = "cannot broadcast";
      continue;
    }
    // An address added without "brd" has broadcast 0.0.0.0: derive it from
    // the netmask rather than beacon to 0.0.0.0 (which only reaches us).
    const auto* addr = reinterpret_cast<const sockaddr_in*>(ifa->ifa_addr);
    in_addr_t broadcast = INADDR_ANY;
    if (ifa->ifa_broadaddr != nullptr) {
      broadcast = reinterpret_cast<const sockaddr_in*>(ifa->ifa_broadaddr)
                      ->sin_addr.s_addr;
    }
    if (broadcast == INADDR_ANY && ifa->ifa_netmask != nullptr) {
      const in_addr_t mask =
          reinterpret_cast<const sockaddr_in*>(ifa->ifa_netmask)
              ->sin_addr.s_addr;
      if (mask != INADDR_BROADCAST) broadcast = addr->sin_addr.s_addr | ~mask;
    }
    if (broadcast == INADDR_ANY) {
      problem = "has no broadcast address";
      continue;
    }
    sockaddr_in bcast{};
    bcast.sin_family = AF_INET;
    bcast.sin_addr.s_addr = broadcast;
    result = InterfaceAddress{std::string(name), Dotted(ifa->ifa_addr),
                              Dotted(reinterpret_cast<sockaddr*>(&bcast))};
    break;
  }
  freeifaddrs(list);
  if (!result.ok() && seen) {
    return absl::FailedPreconditionError(
        absl::StrCat("interface '", name, "' ",
                     problem.empty() ? "has no IPv4 address" : problem));
  }
  return result;
}

}  // namespace fabric::discovery
