// SPDX-License-Identifier: Apache-2.0
// How the CLI prints peers and peer events, as text or JSON.
#ifndef FABRIC_TOOLS_CLI_OUTPUT_H_
#define FABRIC_TOOLS_CLI_OUTPUT_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fabric/peers/peer_info.h"

namespace fabric::cli {

// Returns `s` as a quoted JSON string, escaping quotes, backslashes and
// control characters.
std::string JsonString(absl::string_view s);

// "queue:images,queue:thumbs service:echo" (empty as "-").
std::string FormatOffers(const Offers& offers);

// A table with a header row: NAME ID ADDRESS STATE LAST-SEEN OFFERS.
std::string FormatPeerTable(const std::vector<PeerInfo>& peers, absl::Time now);
// A JSON array with one object per peer.
std::string FormatPeerJson(const std::vector<PeerInfo>& peers, absl::Time now);

// One line per event: "joined web-1 1a2b3c4d tcp://127.0.0.1:4000 peers=3
// (hello)" or the same as a JSON object.
std::string FormatEvent(const PeerEvent& event, size_t peer_count, bool json);

}  // namespace fabric::cli

#endif  // FABRIC_TOOLS_CLI_OUTPUT_H_
