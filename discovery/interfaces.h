// SPDX-License-Identifier: Apache-2.0
// Looks up a network interface's IPv4 address and broadcast address, for LAN
// discovery on a named interface.
#ifndef FABRIC_DISCOVERY_INTERFACES_H_
#define FABRIC_DISCOVERY_INTERFACES_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fabric::discovery {

struct InterfaceAddress {
  std::string name;
  std::string address;    // dotted quad, e.g. "10.77.0.2"
  std::string broadcast;  // dotted quad, e.g. "10.77.0.255"
};

// Returns the first IPv4 address of interface `name` that is up and can
// broadcast. Returns kNotFound when no such interface exists and
// kFailedPrecondition when it exists but is down, has no IPv4 address or
// cannot broadcast.
absl::StatusOr<InterfaceAddress> LookupInterface(absl::string_view name);

}  // namespace fabric::discovery

#endif  // FABRIC_DISCOVERY_INTERFACES_H_
