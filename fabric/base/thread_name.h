// SPDX-License-Identifier: Apache-2.0
// Names the calling thread so that top -H, gdb, perf and /proc show its role
// (`fab-engine`, `fab-spool`, `fab-work-3`, ...). The names are listed in
// docs/threading.md.
#ifndef FABRIC_BASE_THREAD_NAME_H_
#define FABRIC_BASE_THREAD_NAME_H_

#include <cstddef>

#include "absl/strings/string_view.h"

namespace fabric {

// Linux keeps at most 15 bytes of a thread name (16 with the NUL).
inline constexpr size_t kMaxThreadNameBytes = 15;

// Sets the name of the calling thread, cut to kMaxThreadNameBytes. Call it
// first thing in the thread's body. Best effort: a failure is ignored.
void SetCurrentThreadName(absl::string_view name);

// `prefix` followed by `index` ("fab-work-" and 3 give "fab-work-3"), cut to
// kMaxThreadNameBytes by dropping the end of the prefix, so the index of a
// long prefix stays visible.
void SetCurrentThreadName(absl::string_view prefix, int index);

}  // namespace fabric

#endif  // FABRIC_BASE_THREAD_NAME_H_
