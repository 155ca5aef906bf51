// SPDX-License-Identifier: Apache-2.0
// A tiny logging facade until our Abseil has absl/log. Lines go to stderr as
// "LEVEL time [name] message"; operational events carry a stable id such as
// `FAB-PEER-DEAD` so they can be grepped and alerted on.
#ifndef FABRIC_BASE_LOG_H_
#define FABRIC_BASE_LOG_H_

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace fabric {

enum class LogLevel {
  kDebug = 0,
  kInfo = 1,
  kWarning = 2,
  kError = 3,
  kOff = 4
};

// Sets the process-wide minimum level (default kWarning, or the value of the
// FABRIC_LOG_LEVEL environment variable when set). Thread-safe.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();

// Parses "debug", "info", "warning", "error" or "off".
// Returns kInvalidArgument for anything else.
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view text);

// Writes one line if `level` is enabled. Thread-safe: each line is written
// with a single write(2), so lines from threads never interleave.
void LogLine(LogLevel level, absl::string_view message);

}  // namespace fabric

// FABRIC_LOG(kInfo, "FAB-PEER-JOINED peer ", id, " joined"): the arguments
// are only evaluated when the level is enabled.
#define FABRIC_LOG(level, ...)                                  \
  do {                                                          \
    if (::fabric::LogLevel::level >= ::fabric::GetLogLevel()) { \
      ::fabric::LogLine(::fabric::LogLevel::level,              \
                        ::absl::StrCat(__VA_ARGS__));           \
    }                                                           \
  } while (0)

#endif  // FABRIC_BASE_LOG_H_
