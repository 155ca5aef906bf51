// SPDX-License-Identifier: Apache-2.0
#include "fabric/base/thread_name.h"

#include <pthread.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace fabric {

void SetCurrentThreadName(absl::string_view name) {
  // pthread_setname_np fails with ERANGE beyond 15 bytes: cut first.
  const std::string cut(name.substr(0, kMaxThreadNameBytes));
  (void)pthread_setname_np(pthread_self(), cut.c_str());
}

void SetCurrentThreadName(absl::string_view prefix, int index) {
  const std::string number = absl::StrCat(index);
  const size_t room = number.size() >= kMaxThreadNameBytes
                          ? 0
                          : kMaxThreadNameBytes - number.size();
  SetCurrentThreadName(absl::StrCat(prefix.substr(0, room), number));
}

}  // namespace fabric
