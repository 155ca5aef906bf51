// SPDX-License-Identifier: Apache-2.0
// `LocalLoop`: messages a plugin sends to its own node. Queued instead of
// handled at once, so a hook never re-enters the plugin; the plugin drains
// the loop at the end of each entry point.
#ifndef FABRIC_LOCAL_LOOP_H_
#define FABRIC_LOCAL_LOOP_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace fabric {

// Thread safety: thread-compatible (a plugin uses it on its engine thread).
class LocalLoop {
 public:
  void Push(uint16_t kind, std::string body) {
    queue_.push_back(Message{kind, std::move(body)});
  }
  void Clear() { queue_.clear(); }

  // Calls `route(kind, body)` for every queued message, including those
  // queued meanwhile, and `after_batch()` after each batch. A call from
  // inside `route` returns at once: the outer call drains.
  template <typename Route, typename AfterBatch>
  void Drain(Route&& route, AfterBatch&& after_batch) {
    if (draining_) return;
    draining_ = true;
    while (!queue_.empty()) {
      std::vector<Message> batch;
      batch.swap(queue_);
      for (Message& m : batch) route(m.kind, absl::string_view(m.body));
      after_batch();
    }
    draining_ = false;
  }
  template <typename Route>
  void Drain(Route&& route) {
    Drain(std::forward<Route>(route), [] {});
  }

 private:
  struct Message {
    uint16_t kind;
    std::string body;
  };
  std::vector<Message> queue_;
  bool draining_ = false;
};

}  // namespace fabric

#endif  // FABRIC_LOCAL_LOOP_H_
