// SPDX-License-Identifier: Apache-2.0
// The summary a long-running verb (work, serve) prints as it exits: one
// human line on stderr, and with --json also one JSON object on stdout, the
// last line of the stream.
#ifndef FABRIC_TOOLS_CLI_SUMMARY_H_
#define FABRIC_TOOLS_CLI_SUMMARY_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace fabric::cli {

// Named counters in print order.
using Counters = std::vector<std::pair<std::string, uint64_t>>;

// "work: 12 handled in 3.2s (acked 10, retried 1, ...)" with the first
// counter as the headline and the rest in brackets.
std::string SummaryText(absl::string_view verb, const Counters& counters,
                        absl::Duration elapsed);

// {"event":"summary","verb":"work","seconds":3.2,"handled":12,...}.
std::string SummaryJson(absl::string_view verb, const Counters& counters,
                        absl::Duration elapsed);

// Writes the text form to stderr and, with `json`, the JSON form to stdout,
// each as one line with a single write, then flushes.
void PrintSummary(absl::string_view verb, const Counters& counters,
                  absl::Duration elapsed, bool json);

}  // namespace fabric::cli

#endif  // FABRIC_TOOLS_CLI_SUMMARY_H_
