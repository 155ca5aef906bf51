// SPDX-License-Identifier: Apache-2.0
// Delivers peer events to the application's callback on a thread of its own,
// so a slow callback never stalls the engine (and its heartbeats).
#ifndef FABRIC_INTERNAL_EVENT_DISPATCHER_H_
#define FABRIC_INTERNAL_EVENT_DISPATCHER_H_

#include <deque>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "fabric/peers/peer_info.h"

namespace fabric::node_internal {

// Thread safety: thread-safe. `callback` runs on the dispatcher's thread,
// one event at a time, in the order `Push` was called.
class EventDispatcher {
 public:
  explicit EventDispatcher(std::function<void(const PeerEvent&)> callback);
  // Delivers what is queued, then joins the thread.
  ~EventDispatcher();

  void Push(PeerEvent event);

 private:
  void Run();

  const std::function<void(const PeerEvent&)> callback_;
  absl::Mutex mu_;
  std::deque<PeerEvent> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace fabric::node_internal

#endif  // FABRIC_INTERNAL_EVENT_DISPATCHER_H_
