// SPDX-License-Identifier: Apache-2.0
#include "fabric/base/log.h"

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

#include "absl/base/optimization.h"
#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace fabric {
namespace {

// The level, and an invalid FABRIC_LOG_LEVEL still to be reported. Leaked on
// purpose: threads may log while statics are destroyed at exit.
struct LevelState {
  std::atomic<LogLevel> level{LogLevel::kWarning};
  std::atomic<bool> invalid_pending{false};
  std::string invalid_env;  // written once, before the state is published
};

LevelState& Levels() {
  static LevelState* const state = [] {
    auto* s = new LevelState;
    const char* env = std::getenv("FABRIC_LOG_LEVEL");
    if (env != nullptr) {
      absl::StatusOr<LogLevel> level = ParseLogLevel(env);
      if (level.ok()) {
        s->level.store(*level, std::memory_order_relaxed);
      } else {
        s->invalid_env = env;
        s->invalid_pending.store(true, std::memory_order_relaxed);
      }
    }
    return s;
  }();
  return *state;
}

// One installed sink and the number of calls of it in flight. SetLogSink
// unpublishes it, then waits for `in_flight` to reach zero before deleting
// it. Readers hold `mu` only to pick the sink and to count, never while the
// sink runs, so a waiting SetLogSink never blocks a logging thread.
//
// std::mutex rather than absl::Mutex: Debian's Abseil is not built for
// ThreadSanitizer, which then cannot see absl::Mutex synchronize, and the
// sink swap must be checkable under TSan (log_test). Without capability
// annotations on std::mutex, "guarded by mu" is stated in comments.
struct InstalledSink {
  explicit InstalledSink(LogSink f) : fn(std::move(f)) {}
  const LogSink fn;
  int in_flight = 0;  // guarded by SinkState::mu
};

struct SinkState {
  std::mutex mu;
  std::condition_variable idle;      // some in_flight dropped to zero
  InstalledSink* current = nullptr;  // guarded by mu; null: stderr
};

SinkState& Sinks() {
  static SinkState* const state = new SinkState;  // leaked, see Levels()
  return *state;
}

// The name ParseLogLevel takes for `level`.
absl::string_view ParseableName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
    default:
      return "off";
  }
}

// True while this thread runs the installed sink (re-entrancy guard).
thread_local bool in_sink = false;

}  // namespace

void SetLogLevel(LogLevel level) {
  // Relaxed ordering: the level is an independent flag; a thread that sees
  // the old value for a moment just logs one line more or less.
  Levels().level.store(level, std::memory_order_relaxed);
}

LogLevel GetLogLevel() {
  LevelState& s = Levels();
  if (ABSL_PREDICT_FALSE(s.invalid_pending.load(std::memory_order_relaxed)) &&
      s.invalid_pending.exchange(false, std::memory_order_relaxed)) {
    const LogLevel used = s.level.load(std::memory_order_relaxed);
    if (LogLevel::kWarning >= used) {
      LogLine(LogLevel::kWarning, log_component::kLog,
              absl::StrCat("FAB-LOG-LEVEL-INVALID FABRIC_LOG_LEVEL='",
                           s.invalid_env,
                           "' is not a log level (use debug, info, warning, "
                           "error or off); using ",
                           ParseableName(used)));
    }
  }
  return s.level.load(std::memory_order_relaxed);
}

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

absl::string_view LogLevelName(LogLevel level) {
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

void StderrLogSink(LogLevel level, absl::string_view component,
                   absl::string_view message) {
  std::string line = absl::StrCat(
      LogLevelName(level), " ",
      absl::FormatTime("%H:%M:%E3S", absl::Now(), absl::LocalTimeZone()), " [",
      component, "] ", message, "\n");
  // One write per line; a short write to stderr is not worth retrying.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

void SetLogSink(LogSink sink) {
  if (in_sink) {
    StderrLogSink(LogLevel::kError, log_component::kLog,
                  "FAB-LOG-SINK-REENTRANT SetLogSink called from inside the "
                  "log sink; ignored");
    return;
  }
  std::unique_ptr<InstalledSink> next;
  if (sink) next = std::make_unique<InstalledSink>(std::move(sink));
  std::unique_ptr<InstalledSink> previous;
  SinkState& s = Sinks();
  {
    std::unique_lock<std::mutex> lock(s.mu);
    previous.reset(s.current);
    s.current = next.release();
    if (previous != nullptr) {
      InstalledSink* old = previous.get();
      s.idle.wait(lock, [old] { return old->in_flight == 0; });
    }
  }
  // `previous` is destroyed here, outside the lock: its captures may log.
}

void LogLine(LogLevel level, absl::string_view component,
             absl::string_view message) {
  if (in_sink) {  // the sink logged through fabric: do not recurse
    StderrLogSink(level, component, message);
    return;
  }
  SinkState& s = Sinks();
  InstalledSink* sink;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    sink = s.current;
    if (sink != nullptr) ++sink->in_flight;
  }
  if (sink == nullptr) {
    StderrLogSink(level, component, message);
    return;
  }
  bool threw = false;
  in_sink = true;
  try {
    sink->fn(level, component, message);
  } catch (...) {
    threw = true;
  }
  in_sink = false;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    // Only a replaced sink has a waiter; notify under the lock, as the
    // waiter deletes `sink` once it sees zero.
    if (--sink->in_flight == 0 && sink != s.current) s.idle.notify_all();
  }
  if (threw) {
    StderrLogSink(level, component, message);
    StderrLogSink(LogLevel::kError, log_component::kLog,
                  "FAB-LOG-SINK-THREW the log sink threw; the line above "
                  "went to stderr instead");
  }
}

}  // namespace fabric
