// SPDX-License-Identifier: Apache-2.0
// The internal side of logging: the FABRIC_LOG macro every module uses.
// The level, the components and the sink are public, in fabric/log.h.
#ifndef FABRIC_BASE_LOG_H_
#define FABRIC_BASE_LOG_H_

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "fabric/log.h"

namespace fabric {

// Hands one line to the installed sink (see SetLogSink for the guarantees).
// Does not check the level: FABRIC_LOG does. Thread-safe, never throws.
void LogLine(LogLevel level, absl::string_view component,
             absl::string_view message);

// `LogLine` if `level` is enabled: for a component chosen at run time
// (FABRIC_LOG takes a constant one).
inline void LogIfEnabled(LogLevel level, absl::string_view component,
                         absl::string_view message) {
  if (level >= GetLogLevel()) LogLine(level, component, message);
}

}  // namespace fabric

// FABRIC_LOG(kInfo, kNode, "FAB-PEER-JOINED peer ", id, " joined"): `level`
// names a LogLevel enumerator and `component` a constant of
// fabric::log_component. The message arguments (absl::StrCat) are only
// evaluated when the level is enabled.
#define FABRIC_LOG(level, component, ...)                       \
  do {                                                          \
    if (::fabric::LogLevel::level >= ::fabric::GetLogLevel()) { \
      ::fabric::LogLine(::fabric::LogLevel::level,              \
                        ::fabric::log_component::component,     \
                        ::absl::StrCat(__VA_ARGS__));           \
    }                                                           \
  } while (0)

#endif  // FABRIC_BASE_LOG_H_
