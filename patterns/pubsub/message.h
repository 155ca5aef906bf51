// SPDX-License-Identifier: Apache-2.0
// What pub/sub delivers: a `Message`, and a `GapEvent` when a subscriber
// finds messages of a stream it will never get.
#ifndef PATTERNS_PUBSUB_MESSAGE_H_
#define PATTERNS_PUBSUB_MESSAGE_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "fabric/types.h"

namespace fabric {

// A stream is one topic of one publisher: `stream` ids are random per
// publisher run for live topics and persistent (kept in the topic log) for
// durable ones. Seqs start at 1 and grow by one per message of a stream.
struct Message {
  std::string topic;
  Headers headers;
  std::string body;
  uint64_t stream = 0;
  uint64_t seq = 0;
  absl::Time published;   // the publisher's wall clock
  bool durable = false;   // the stream is kept in its publisher's log
  bool replayed = false;  // came from the log, not live
};

// Messages [first, last] of a stream that this subscriber will not get.
struct GapEvent {
  std::string topic;
  uint64_t stream = 0;
  uint64_t first = 0;
  uint64_t last = 0;
  // "dropped": a high-water mark overflowed (or the connection broke) and
  // the stream is not durable; "retention": the publisher's log no longer
  // holds them; "damaged": the log skipped damaged records; "unavailable":
  // the publisher no longer keeps the stream.
  std::string reason;
  uint64_t count() const { return last - first + 1; }
};

}  // namespace fabric

#endif  // PATTERNS_PUBSUB_MESSAGE_H_
