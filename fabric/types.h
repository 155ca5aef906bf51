// SPDX-License-Identifier: Apache-2.0
// Value types shared by the public API: the key/value headers a node, task or
// message carries, and what a node offers to its peers. The wire codecs
// (fabric/codec/, internal) include this header; users never need those.
#ifndef FABRIC_TYPES_H_
#define FABRIC_TYPES_H_

#include <map>
#include <set>
#include <string>

namespace fabric {

// What a node offers, by kind: {"queue": {"images"}, "service": {"echo"}}.
// The core treats kinds and names as opaque strings; patterns define them.
using Offers = std::map<std::string, std::set<std::string>>;
// Key/value strings: a node's HELLO headers, or those of one task, request
// or message. At most kMaxHeaders entries of kMaxStringBytes each
// (fabric/limits.h).
using Headers = std::map<std::string, std::string>;

}  // namespace fabric

#endif  // FABRIC_TYPES_H_
