// SPDX-License-Identifier: Apache-2.0
#include "fabric/base/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace fabric {
namespace {

LogLevel InitialLevel() {
  const char* env = std::getenv("FABRIC_LOG_LEVEL");
  if (env != nullptr) {
    absl::StatusOr<LogLevel> level = ParseLogLevel(env);
    if (level.ok()) return *level;
  }
  return LogLevel::kWarning;
}

// Relaxed ordering: the level is an independent flag; a thread that sees the
// old value for a moment just logs one line more or less.
std::atomic<LogLevel>& Level() {
  static std::atomic<LogLevel> level{InitialLevel()};
  return level;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
    default:
      return "OFF";
  }
}

}  // namespace

void SetLogLevel(LogLevel level) {
  Level().store(level, std::memory_order_relaxed);
}

LogLevel GetLogLevel() { return Level().load(std::memory_order_relaxed); }

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "debug") return LogLevel::kDebug;
  if (lower == "info") return LogLevel::kInfo;
  if (lower == "warning" || lower == "warn") return LogLevel::kWarning;
  if (lower == "error") return LogLevel::kError;
  if (lower == "off") return LogLevel::kOff;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown log level '", text, "' (use debug, info, warning, error, off)"));
}

void LogLine(LogLevel level, absl::string_view message) {
  std::string line = absl::StrCat(
      LevelName(level), " ",
      absl::FormatTime("%H:%M:%E3S", absl::Now(), absl::LocalTimeZone()), " ",
      message, "\n");
  // One write per line; a short write to stderr is not worth retrying.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace fabric
