// SPDX-License-Identifier: Apache-2.0
// `fabric::Subscriber`: receives the messages of one or more topic prefixes
// from every publisher of the cluster. It connects to each publisher that
// discovery reports (including ones that start later) and drops those that
// leave. Per stream (one topic of one publisher) it delivers in seq order,
// drops duplicates and counts every message it will never get as a gap.
// For durable streams it asks the publisher to replay what it missed, from
// where it starts or from its saved position when it has a `durable_name`,
// then continues live with no gap and no duplicate.
//
//   fabric::SubscriberOptions options;
//   options.prefixes = {"orders."};
//   options.durable_name = "billing";          // optional
//   options.state_dir = "/var/lib/app/subs";   // with durable_name
//   options.handler = [](const fabric::Message& m) { ... };
//   ASSIGN_OR_RETURN(std::unique_ptr<fabric::Subscriber> sub,
//                    fabric::Subscriber::Create(*node, options));
#ifndef PATTERNS_PUBSUB_SUBSCRIBER_H_
#define PATTERNS_PUBSUB_SUBSCRIBER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fabric/node.h"
#include "fabric/pubsub/message.h"

namespace fabric {

// Where a durable stream with no saved position starts. Live (non-durable)
// streams always start at the first message received.
struct StartPosition {
  enum class Kind { kLatest, kEarliest, kSeq, kTime };
  Kind kind = Kind::kLatest;
  uint64_t seq = 0;  // kSeq
  absl::Time time;   // kTime
  // "latest", "earliest", a seq ("1000") or a time: RFC 3339
  // ("2026-11-21T10:00:00Z") or relative ("-5m", "-1h30m").
  static absl::StatusOr<StartPosition> Parse(absl::string_view text);
};

struct SubscriberOptions {
  // Topic prefixes; "" receives everything. At least one.
  std::vector<std::string> prefixes;
  // A name makes the subscriber durable: its position in each durable
  // stream is kept in `state_dir`/<name>.pos (the directory is created if
  // missing) and survives restarts. One
  // process at a time may use a name.
  std::string durable_name;
  std::string state_dir;
  // Secure mode refuses an existing `state_dir` or <name>.pos that group or
  // others may access (mode & 077 != 0, e.g. 0755/0644 from an earlier
  // release): Create fails with kFailedPrecondition (FAB-SEC-FILE-PERMS)
  // naming the path, its mode and the fix. True uses them as they are.
  // Plaintext mode never checks. Default false.
  bool allow_shared_files = false;
  StartPosition start;
  // Called for each message, on the subscriber's thread, in order per
  // stream. A durable subscriber commits its position after the handler
  // returns. Without a handler, messages are taken with `Next`.
  std::function<void(const Message&)> handler;
  // Called for each gap, on the subscriber's thread.
  std::function<void(const GapEvent&)> on_gap;
  // Frames queued per publisher connection (ZMQ_RCVHWM); 0: unbounded. A
  // frame holds one message, or up to 1024 small ones (at most 64 KiB).
  int receive_hwm = 10000;
  // Pull mode: messages waiting for `Next`; when full the subscriber stops
  // reading and the publishers' high-water marks take over.
  size_t max_pending = 10000;
  // Live messages held while a replay fills the gap before them.
  size_t max_held = 100000;
  // Replay chunk size, and how long to wait for a chunk before asking again.
  uint32_t replay_batch = 8192;
  uint32_t replay_bytes = 2 << 20;
  absl::Duration replay_timeout = absl::Seconds(5);
  // Largest frame taken from a publisher (ZMQ_MAXMSGSIZE, plus 1 KiB); a
  // larger one drops that connection. Values below 64 KiB act as 64 KiB, so
  // that a full batch of small messages always fits.
  size_t max_message_bytes = 1 << 20;
};

struct SubscriberStats {
  uint64_t received = 0;    // live messages and beats
  uint64_t delivered = 0;   // to the handler or Next, live or replayed
  uint64_t replayed = 0;    // delivered from a replay
  uint64_t duplicates = 0;  // dropped: already delivered
  uint64_t gaps = 0;        // gap events
  uint64_t lost = 0;        // messages in gaps
  uint64_t malformed = 0;   // undecodable frames or replies
  uint64_t replay_requests = 0;
  uint64_t publishers = 0;  // gauge: publisher endpoints connected
  uint64_t streams = 0;     // gauge: streams seen
  uint64_t held = 0;        // gauge: live messages waiting for a replay
};

// Thread safety: thread-safe. `Next` may be called from several threads.
class Subscriber {
 public:
  // Returns kInvalidArgument for bad options and kFailedPrecondition when
  // another process uses the durable name.
  static absl::StatusOr<std::unique_ptr<Subscriber>> Create(
      Node& node, SubscriberOptions options);
  ~Subscriber();  // Close()
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  // Pull mode: the next message. kDeadlineExceeded after `timeout`,
  // kFailedPrecondition with a handler, kCancelled once closed. A durable
  // subscriber commits a message's position when Next returns it.
  absl::StatusOr<Message> Next(absl::Duration timeout);

  // Waits until at least `n` publisher endpoints are connected.
  absl::Status WaitForPublishers(size_t n, absl::Duration timeout);

  // Stops receiving, saves positions and releases the durable name (a new
  // subscriber of that name may start at once; messages not yet taken by
  // Next are dropped here and replayed to it). Idempotent. Not from the
  // handler (it joins the thread running it).
  void Close();

  SubscriberStats Stats() const;

  class Impl;

 private:
  explicit Subscriber(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace fabric

#endif  // PATTERNS_PUBSUB_SUBSCRIBER_H_
