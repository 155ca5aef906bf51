// SPDX-License-Identifier: Apache-2.0
// The pub/sub wire format (docs/protocol.md section 12): the frames a
// publisher's XPUB sends (each one or more messages of a stream), the
// subscriber presence prefix, the replay request and reply carried in node
// envelopes, and the offers a publisher advertises. Decoders take untrusted
// bytes, enforce limits and never throw.
#ifndef PATTERNS_PUBSUB_INTERNAL_WIRE_H_
#define PATTERNS_PUBSUB_INTERNAL_WIRE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fabric/codec/control.h"

namespace fabric::ps {

// Message kinds owned by the pub/sub plugin (mailbox traffic).
inline constexpr uint16_t kReplayRequest = 120;  // subscriber -> publisher
inline constexpr uint16_t kReplayData = 121;     // publisher -> subscriber

// Offer kinds: "pub" names an XPUB endpoint; "stream" names a durable stream
// as "<16 hex digits> <topic>".
inline constexpr absl::string_view kPubOffer = "pub";
inline constexpr absl::string_view kStreamOffer = "stream";

inline constexpr uint8_t kFrameVersion = 2;
inline constexpr uint8_t kFlagDurable = 1;  // the stream is kept in a log
inline constexpr uint8_t kFlagBeat = 2;  // no messages: seq is the newest sent
inline constexpr size_t kMaxTopicBytes = 1024;
// Fixed part after "topic\0": version, flags, stream, seq, count.
inline constexpr size_t kFrameFixedBytes = 1 + 1 + 8 + 8 + 4;
// Fixed part of each message in a frame: published, headers_len, body_len.
inline constexpr size_t kEntryFixedBytes = 8 + 4 + 4;
inline constexpr size_t kMaxFrameHeaders = 1024;
// A frame carries consecutive messages of one stream: at most
// kMaxBatchCount of them and kMaxBatchBytes in all, except that a single
// larger message goes alone in its own frame.
inline constexpr size_t kMaxBatchBytes = size_t{64} << 10;
inline constexpr uint32_t kMaxBatchCount = 1024;

// A subscriber also subscribes to this prefix followed by its own id, so the
// publisher's XPUB sees each subscriber arrive and leave. No topic can start
// with a NUL byte, so nothing published ever matches it.
inline constexpr absl::string_view kPresencePrefix{"\0fabric-sub:", 12};

// Topics are 1..1024 bytes without NUL. kInvalidArgument otherwise.
absl::Status ValidateTopic(absl::string_view topic);

// One decoded frame; views reference the frame.
struct FrameView {
  absl::string_view topic;
  uint8_t flags = 0;
  uint64_t stream = 0;
  uint64_t seq = 0;    // of the first message; for a beat, the newest sent
  uint32_t count = 0;  // messages in `entries`; 0 for a beat
  absl::string_view entries;  // read them with NextEntry
};

// One message of a frame.
struct EntryView {
  absl::Time published;
  absl::string_view headers;  // msgpack map, empty when none
  absl::string_view body;
};

// Bytes of a frame's header (topic, NUL, fixed part).
inline size_t FrameHeaderSize(absl::string_view topic) {
  return topic.size() + 1 + kFrameFixedBytes;
}
// Bytes one message takes in a frame.
inline size_t EntrySize(absl::string_view headers, absl::string_view body) {
  return kEntryFixedBytes + headers.size() + body.size();
}
// Bytes of a frame holding just this message (what max_message_bytes
// limits).
inline size_t MessageSize(absl::string_view topic, absl::string_view headers,
                          absl::string_view body) {
  return FrameHeaderSize(topic) + EntrySize(headers, body);
}
// Writes a frame header into `out` (exactly FrameHeaderSize bytes); the
// frame's `count` entries follow it.
void EncodeFrameHeader(absl::string_view topic, uint8_t flags, uint64_t stream,
                       uint64_t seq, uint32_t count, char* out);
// Rewrites the count of a frame whose header starts at `frame`.
void SetFrameCount(absl::string_view topic, uint32_t count, char* frame);
// Writes one message into `out` (exactly EntrySize bytes).
void EncodeEntry(absl::Time published, absl::string_view headers,
                 absl::string_view body, char* out);
// Decodes the header and checks that exactly `count` well-formed entries
// fill the rest of the frame.
absl::StatusOr<FrameView> DecodeFrame(absl::string_view frame);
// Takes the next entry off the front of `entries` (from a FrameView that
// DecodeFrame accepted, so it cannot overrun).
EntryView NextEntry(absl::string_view* entries);

// Headers as the msgpack map carried in frames ("" for none).
std::string EncodeHeaders(const Headers& headers);
absl::StatusOr<Headers> DecodeHeaders(absl::string_view data);

// Where a replay starts.
enum class ReplayFrom : uint8_t {
  kSeq = 0,       // at `seq` (or the oldest kept, if later)
  kTime = 1,      // at the first message published at or after `time`
  kEarliest = 2,  // at the oldest kept
};

struct ReplayRequest {
  uint32_t subscriber = 0;  // the requester's id on its node
  uint64_t request = 0;     // echoed in the reply
  uint64_t stream = 0;
  ReplayFrom from = ReplayFrom::kSeq;
  uint64_t seq = 0;
  absl::Time time;
  uint32_t max_entries = 0;
  uint32_t max_bytes = 0;
};

enum class ReplayStatus : uint8_t {
  kOk = 0,
  kUnknownStream = 1,  // the node keeps no log with that id
  kError = 2,          // reading the log failed
};

struct ReplayData {
  uint32_t subscriber = 0;
  uint64_t request = 0;
  uint64_t stream = 0;
  ReplayStatus status = ReplayStatus::kOk;
  uint64_t start = 0;        // the seq the replay started at
  uint64_t first_seq = 0;    // oldest message kept
  uint64_t durable_seq = 0;  // newest message readable
  uint64_t next = 0;         // the seq to ask for next
  // Topic log entries (fabric::TopicLog::DecodeEntry), ascending seq.
  std::vector<std::string> entries;
};

std::string EncodeReplayRequest(const ReplayRequest& r);
absl::StatusOr<ReplayRequest> DecodeReplayRequest(absl::string_view body);
std::string EncodeReplayData(const ReplayData& d);
absl::StatusOr<ReplayData> DecodeReplayData(absl::string_view body);

// "<16 hex digits> <topic>" and back.
std::string StreamOfferName(uint64_t stream, absl::string_view topic);
struct StreamOffer {
  uint64_t stream = 0;
  std::string topic;
};
std::optional<StreamOffer> ParseStreamOffer(absl::string_view name);
std::string StreamHex(uint64_t stream);

}  // namespace fabric::ps

#endif  // PATTERNS_PUBSUB_INTERNAL_WIRE_H_
