// SPDX-License-Identifier: Apache-2.0
// `fabric::Publisher`: publishes messages on topics to every subscriber of
// the cluster, through its own XPUB socket (ZeroMQ does the prefix filtering
// and the fan-out). Each topic is a stream numbered from 1, so subscribers
// detect gaps. Topics named in `durable_topics` are also kept in a topic log
// on disk (retention by size and age); subscribers that missed messages of
// those ask for them and get them replayed over the mailbox.
//
//   fabric::PublisherOptions options;
//   options.spool_dir = "/var/lib/app/topics";  // only for durable topics
//   options.durable_topics = {"orders"};
//   ASSIGN_OR_RETURN(std::unique_ptr<fabric::Publisher> pub,
//                    fabric::Publisher::Create(*node, options));
//   ASSIGN_OR_RETURN(uint64_t seq, pub->Publish("orders", body));
//
// Batching: an idle publisher (nothing queued, previous publish at least
// 20 us back) sends a message from the publishing thread at once. Otherwise
// Publish queues it, and the publisher's sender thread hands what queued
// meanwhile to the XPUB as soon as it is free, consecutive messages of a
// topic in one frame (up to 1024 messages or 64 KiB), so under load the
// per-message cost of ZeroMQ and the kernel is paid once per frame.
// Durable messages are sent in batches too, once they are on disk.
//
// High-water mark: each subscriber connection queues at most `send_hwm`
// frames at the publisher (plus its own `receive_hwm` and the TCP buffers).
// Beyond that the publisher drops for that subscriber only and never
// blocks; the subscriber sees the jump in seq (or in the next beat) and
// counts a gap, or, for a durable topic, replays what it missed.
#ifndef PATTERNS_PUBSUB_PUBLISHER_H_
#define PATTERNS_PUBSUB_PUBLISHER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fabric/node.h"
#include "fabric/spool/spool.h"

namespace fabric {

struct PublisherOptions {
  // Topics kept in a log, each in `spool_dir`/<topic, escaped>. Exact names,
  // not prefixes. Requires `spool_dir`.
  std::vector<std::string> durable_topics;
  std::string spool_dir;
  // Secure mode refuses an existing topic log directory that group or
  // others may access, or one holding such a file (mode & 077 != 0, e.g.
  // 0755/0644 from an earlier release): Create fails with
  // kFailedPrecondition (FAB-SEC-FILE-PERMS) naming the path, its mode and
  // the fix. True uses it as it is. Plaintext mode never checks. Default
  // false.
  bool allow_shared_files = false;
  // A durable message is sent to live subscribers once it is durable under
  // this policy, so no subscriber ever sees a message its publisher could
  // forget in a crash.
  FsyncPolicy fsync = FsyncPolicy::kBatch;
  absl::Duration fsync_interval = absl::Milliseconds(100);
  uint64_t retention_bytes = uint64_t{1} << 30;  // per durable topic
  absl::Duration retention_age = absl::InfiniteDuration();
  uint64_t segment_bytes = uint64_t{16} << 20;
  // Frames queued per subscriber before drops (ZMQ_SNDHWM); 0 never drops
  // and lets the queue of a stalled subscriber grow without bound. A frame
  // holds one message, or up to 1024 small ones (at most 64 KiB) under load.
  int send_hwm = 10000;
  // Largest message (topic + headers + body + 39 bytes) accepted by
  // Publish; at most 15 MiB.
  size_t max_message_bytes = 1 << 20;
  // Every interval, each stream published to since the last beat sends a
  // beat carrying its newest seq, so a subscriber notices lost messages at
  // the tail of a burst. Beats stop 10 intervals after the last message.
  absl::Duration beat_interval = absl::Seconds(1);
  // Host to bind the XPUB on; empty: the host of the node's mailbox.
  std::string bind_host;
};

struct PublisherStats {
  uint64_t published = 0;  // messages accepted by Publish
  uint64_t sent = 0;       // messages handed to the XPUB (not beats)
  uint64_t frames = 0;     // frames they went in
  uint64_t dropped = 0;    // not sent: the publisher outran its sender thread
  uint64_t beats = 0;
  uint64_t rejected = 0;  // bad topic, too large, log failure
  uint64_t replay_requests = 0;
  uint64_t replayed = 0;  // messages sent in replays
  uint64_t replay_errors = 0;
  uint64_t subscribers = 0;      // gauge: subscriber connections present
  uint64_t durable_pending = 0;  // gauge: durable ones published, not sent
};

// Thread safety: thread-safe. `Publish` may be called from any thread; the
// order of one thread's publishes on a topic is kept.
class Publisher {
 public:
  // Binds the XPUB, opens the durable topics' logs and advertises the
  // publisher to the cluster. Returns kInvalidArgument for bad options, and
  // the error of a log that cannot be opened (e.g. kFailedPrecondition when
  // another process holds it).
  static absl::StatusOr<std::unique_ptr<Publisher>> Create(
      Node& node, PublisherOptions options);
  ~Publisher();  // Close()
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Publishes and returns the message's seq in its topic stream. Never
  // blocks on the network or the disk. Returns kInvalidArgument for a bad
  // topic (empty, over 1 KiB, with a NUL) or an oversized message, the
  // log's error for a durable topic whose log failed, kResourceExhausted
  // for a durable topic while its disk is full (docs/pubsub.md section 3),
  // kCancelled once closed.
  absl::StatusOr<uint64_t> Publish(absl::string_view topic,
                                   absl::string_view body,
                                   const Headers& headers = {});

  // Waits until at least `n` subscribers are connected. kDeadlineExceeded
  // when `timeout` passes first.
  absl::Status WaitForSubscribers(size_t n, absl::Duration timeout);
  // Waits until every durable message published so far is on disk (per
  // the policy, and fdatasynced) and handed to the XPUB. kDeadlineExceeded
  // when `timeout` passes first; a durable topic's disk-full error at once
  // while its log holds messages the disk did not take.
  absl::Status Flush(absl::Duration timeout);

  // Stops advertising, flushes the logs and sends what is queued (within
  // the socket linger of 1 s). Idempotent.
  void Close();

  const std::string& endpoint() const;
  PublisherStats Stats() const;

  class Impl;

 private:
  explicit Publisher(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace fabric

#endif  // PATTERNS_PUBSUB_PUBLISHER_H_
