// SPDX-License-Identifier: Apache-2.0
// Bodies of the request/reply messages carried in node envelopes
// (docs/protocol.md, section 13). Several requests (or replies) travel in one
// frame when they queue up together. Decoders take untrusted bytes, enforce
// limits and never throw; decoded views reference the input.
#ifndef PATTERNS_REQREP_INTERNAL_WIRE_H_
#define PATTERNS_REQREP_INTERNAL_WIRE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fabric/codec/control.h"

namespace fabric::rr {

// Message kinds owned by the request/reply plugin (130-139 are reserved).
inline constexpr uint16_t kRequests = 130;  // client -> server
inline constexpr uint16_t kReplies = 131;   // server -> client
inline constexpr uint16_t kCancel = 132;    // client -> server

// The offer kind servers advertise, one name per service served.
inline constexpr absl::string_view kServiceOffer = "service";

inline constexpr size_t kMaxServiceName = 256;
inline constexpr size_t kMaxIdempotencyKey = 1024;
inline constexpr size_t kMaxEntriesPerFrame = 65536;

// Reply flags.
// The server did not run the handler (busy, draining, service not served
// here, deadline already passed): the client may retry anywhere.
inline constexpr uint32_t kFlagNotExecuted = 1;
// The reply came from the server's idempotency cache.
inline constexpr uint32_t kFlagFromCache = 2;
// The server gave up on the request (it closed before the handler replied):
// it may or may not have run, as when a server dies. The client may retry.
inline constexpr uint32_t kFlagAborted = 4;

struct WireRequest {
  uint64_t id = 0;  // unique per client node incarnation
  uint32_t attempt = 1;
  absl::string_view service;
  uint64_t timeout_ms = 0;  // time the caller still waits, at sending
  absl::string_view key;    // idempotency key; empty: none
  Headers headers;
  absl::string_view body;
};

struct WireReply {
  uint64_t id = 0;
  uint32_t attempt = 0;
  uint32_t code = 0;  // absl::StatusCode
  uint32_t flags = 0;
  absl::string_view message;
  absl::string_view body;
};

// Builds a REQUESTS or REPLIES frame entry by entry. The array header is
// written last into room kept at the front, so Finish copies nothing.
class FrameEncoder {
 public:
  FrameEncoder();
  void AddRequest(uint64_t id, uint32_t attempt, absl::string_view service,
                  uint64_t timeout_ms, absl::string_view key,
                  const Headers& headers, absl::string_view body);
  void AddReply(uint64_t id, uint32_t attempt, uint32_t code, uint32_t flags,
                absl::string_view message, absl::string_view body);
  size_t count() const { return count_; }
  size_t bytes() const { return out_.size(); }
  // Returns the frame and leaves the encoder empty.
  std::string Finish();

 private:
  std::string out_;
  uint32_t count_ = 0;
};

// `body` must outlive the result (strings reference it).
absl::StatusOr<std::vector<WireRequest>> DecodeRequests(absl::string_view body);
absl::StatusOr<std::vector<WireReply>> DecodeReplies(absl::string_view body);

std::string EncodeCancel(const std::vector<uint64_t>& ids);
absl::StatusOr<std::vector<uint64_t>> DecodeCancel(absl::string_view body);

}  // namespace fabric::rr

#endif  // PATTERNS_REQREP_INTERNAL_WIRE_H_
