// SPDX-License-Identifier: Apache-2.0
#include "fabric/internal/event_dispatcher.h"

#include "fabric/base/thread_name.h"

namespace fabric::node_internal {

EventDispatcher::EventDispatcher(std::function<void(const PeerEvent&)> callback)
    : callback_(std::move(callback)), thread_([this] { Run(); }) {}

EventDispatcher::~EventDispatcher() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void EventDispatcher::Push(PeerEvent event) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(event));
}

void EventDispatcher::Run() {
  SetCurrentThreadName("fab-events");
  for (;;) {
    PeerEvent event;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || !queue_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stop_ and nothing left to deliver
      event = std::move(queue_.front());
      queue_.pop_front();
    }
    callback_(event);
  }
}

}  // namespace fabric::node_internal
