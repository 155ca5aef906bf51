// SPDX-License-Identifier: Apache-2.0
#include "tools/cli/summary.h"

#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/cli/json.h"

namespace fabric::cli {

std::string SummaryText(absl::string_view verb, const Counters& counters,
                        absl::Duration elapsed) {
  std::string line = absl::StrCat(verb, ":");
  for (size_t i = 0; i < counters.size(); ++i) {
    const auto& [name, value] = counters[i];
    if (i == 0) {
      absl::StrAppend(&line, " ", value, " ", name, " in ",
                      absl::StrFormat("%.1fs", absl::ToDoubleSeconds(elapsed)));
      if (counters.size() > 1) line += " (";
    } else {
      absl::StrAppend(&line, i == 1 ? "" : ", ", name, " ", value);
    }
  }
  if (counters.size() > 1) line += ")";
  return line;
}

std::string SummaryJson(absl::string_view verb, const Counters& counters,
                        absl::Duration elapsed) {
  Json j;
  j["event"] = "summary";
  SetBytesField(j, "verb", verb);
  // Milliseconds' precision, as a number of seconds.
  j["seconds"] = std::round(absl::ToDoubleSeconds(elapsed) * 1000.0) / 1000.0;
  for (const auto& [name, value] : counters) j[name] = value;
  return JsonDump(j);
}

void PrintSummary(absl::string_view verb, const Counters& counters,
                  absl::Duration elapsed, bool json) {
  const std::string text = SummaryText(verb, counters, elapsed) + "\n";
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
  if (!json) return;
  const std::string line = SummaryJson(verb, counters, elapsed) + "\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

}  // namespace fabric::cli
