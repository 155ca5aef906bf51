// SPDX-License-Identifier: Apache-2.0
// Public logging API: the level filter and the sink that receives fabric's
// log lines, so an application can route them to its own logger.
//
// Self-contained: depends only on Abseil and the standard library.
//
// Every line has a level, a component (one of the stable lowercase names in
// `log_component` below) and a message. Operational messages begin with a
// stable id such as `FAB-PEER-DEAD` or `FAB-SPOOL-CORRUPT` so they can be
// grepped and alerted on. By default lines go to stderr as
//
//   WARN 12:00:00.123 [spool] FAB-SPOOL-CORRUPT ...
//
// (level, local time of day, component, message), one write(2) per line.
#ifndef FABRIC_LOG_H_
#define FABRIC_LOG_H_

#include <functional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fabric {

enum class LogLevel {
  kDebug = 0,
  kInfo = 1,
  kWarning = 2,
  kError = 3,
  kOff = 4
};

// Sets the process-wide minimum level. The default is kWarning, or the value
// of the FABRIC_LOG_LEVEL environment variable when it parses. An invalid
// FABRIC_LOG_LEVEL is not fatal: the level stays kWarning and one line
// `FAB-LOG-LEVEL-INVALID` (level kWarning, component "log") is logged through
// the sink the first time the level is consulted (the first GetLogLevel()
// call, which the first attempt to log makes). Thread-safe.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();

// Parses "debug", "info", "warning" (or "warn"), "error" or "off", in any
// case. Returns kInvalidArgument for anything else.
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view text);

// "DEBUG", "INFO", "WARN", "ERROR" or "OFF", as the stderr sink writes them.
absl::string_view LogLevelName(LogLevel level);

// The components fabric logs under. Stable: alert rules may match on them.
namespace log_component {
inline constexpr absl::string_view kNode = "node";            // engine, links
inline constexpr absl::string_view kDiscovery = "discovery";  // beacons
inline constexpr absl::string_view kSpool = "spool";         // work queue spool
inline constexpr absl::string_view kTopicLog = "topic_log";  // pubsub log
inline constexpr absl::string_view kWorkQueue = "work_queue";
inline constexpr absl::string_view kPubSub = "pubsub";
inline constexpr absl::string_view kReqRep = "reqrep";
inline constexpr absl::string_view kRelay = "relay";        // fabric-relay
inline constexpr absl::string_view kSecurity = "security";  // keys, ZAP
inline constexpr absl::string_view kLog = "log";            // logging itself
}  // namespace log_component

// Receives each line that passes the level filter. `component` and
// `message` are only valid during the call: copy them to keep them.
using LogSink = std::function<void(LogLevel level, absl::string_view component,
                                   absl::string_view message)>;

// Installs `sink` for the whole process; an empty sink (nullptr) restores
// the default, StderrLogSink.
//
// Thread safety and guarantees:
// - The sink is called on the fabric thread that logs (engine, spool writer,
//   handler threads, ...) and on application threads inside fabric calls,
//   possibly from several threads at once: it must be thread-safe. Calls
//   are not serialized.
// - When SetLogSink returns, no call of the previous sink is still running
//   and it is never called again (SetLogSink waits for calls in flight).
//   The previous sink is destroyed before SetLogSink returns.
// - The sink must not block on anything that a thread calling SetLogSink, or
//   a thread waiting for fabric (e.g. in Node::Stop or a destructor), may
//   hold: that thread waits for the sink, so the two would deadlock.
// - The sink must not call SetLogSink. If it does, that call does nothing
//   (the sink stays installed) and a `FAB-LOG-SINK-REENTRANT` line goes to
//   stderr.
// - Re-entrancy: a line logged by fabric while the same thread is inside the
//   sink (the sink called into fabric and fabric logged) does not reach the
//   sink again; it goes to StderrLogSink, so nothing recurses or is lost.
// - An exception thrown by the sink is caught; the line then goes to
//   StderrLogSink, followed by a `FAB-LOG-SINK-THREW` line.
void SetLogSink(LogSink sink);

// The default sink: one line "LEVEL HH:MM:SS.mmm [component] message" on
// stderr with a single write(2), so lines from threads never interleave.
// Thread-safe. An application sink may call it, e.g. to tee.
void StderrLogSink(LogLevel level, absl::string_view component,
                   absl::string_view message);

}  // namespace fabric

#endif  // FABRIC_LOG_H_
