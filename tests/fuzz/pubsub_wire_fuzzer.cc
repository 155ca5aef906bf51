// SPDX-License-Identifier: Apache-2.0
// libFuzzer target over the pub/sub wire format
// (patterns/pubsub/internal/wire.h): XPUB frames and their entries, the
// msgpack headers an entry carries, the replay request and reply, and the
// stream offer names. Each input is decoded as every one of them; a frame
// that decodes must re-encode to exactly its bytes, the rest to the same
// values. The input is also read as the fields of a frame, a replay request
// and a reply, which must survive encode-then-decode unchanged. Build and
// run: tests/fuzz/README.md.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "patterns/pubsub/internal/wire.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace ps = ::fabric::ps;
using ::fabric_fuzz::FieldReader;

struct Entry {
  absl::Time published;
  std::string headers;
  std::string body;
};

bool SameRequest(const ps::ReplayRequest& a, const ps::ReplayRequest& b) {
  return a.subscriber == b.subscriber && a.request == b.request &&
         a.stream == b.stream && a.from == b.from && a.seq == b.seq &&
         a.time == b.time && a.max_entries == b.max_entries &&
         a.max_bytes == b.max_bytes;
}

bool SameData(const ps::ReplayData& a, const ps::ReplayData& b) {
  return a.subscriber == b.subscriber && a.request == b.request &&
         a.stream == b.stream && a.status == b.status && a.start == b.start &&
         a.first_seq == b.first_seq && a.durable_seq == b.durable_seq &&
         a.next == b.next && a.entries == b.entries;
}

void RequireRefusal(const absl::Status& status) {
  FABRIC_FUZZ_REQUIRE(status.code() == absl::StatusCode::kInvalidArgument);
}

// Encodes a frame the way a publisher does: the header with a count of 0,
// the entries, then the count set in place.
std::string EncodeFrame(absl::string_view topic, uint8_t flags, uint64_t stream,
                        uint64_t seq, const std::vector<Entry>& entries) {
  size_t size = ps::FrameHeaderSize(topic);
  for (const Entry& e : entries) size += ps::EntrySize(e.headers, e.body);
  std::string frame(size, '\0');
  ps::EncodeFrameHeader(topic, flags, stream, seq, 0, frame.data());
  size_t at = ps::FrameHeaderSize(topic);
  for (const Entry& e : entries) {
    ps::EncodeEntry(e.published, e.headers, e.body, frame.data() + at);
    at += ps::EntrySize(e.headers, e.body);
  }
  ps::SetFrameCount(topic, static_cast<uint32_t>(entries.size()), frame.data());
  return frame;
}

// Decoded headers encode and decode back to themselves.
void CheckHeaders(absl::string_view data) {
  absl::StatusOr<fabric::Headers> headers = ps::DecodeHeaders(data);
  if (!headers.ok()) return RequireRefusal(headers.status());
  FABRIC_FUZZ_REQUIRE(headers->size() <= ps::kMaxFrameHeaders);
  const std::string encoded = ps::EncodeHeaders(*headers);
  FABRIC_FUZZ_REQUIRE(encoded.empty() == headers->empty());
  absl::StatusOr<fabric::Headers> again = ps::DecodeHeaders(encoded);
  FABRIC_FUZZ_REQUIRE(again.ok() && *again == *headers);
}

// A frame that decodes has a valid topic, exactly `count` entries filling
// it, and re-encodes to exactly its own bytes.
void CheckFrame(absl::string_view input) {
  absl::StatusOr<ps::FrameView> frame = ps::DecodeFrame(input);
  if (!frame.ok()) {
    FABRIC_FUZZ_REQUIRE(
        frame.status().code() == absl::StatusCode::kInvalidArgument ||
        frame.status().code() == absl::StatusCode::kUnimplemented);
    return;
  }
  FABRIC_FUZZ_REQUIRE(ps::ValidateTopic(frame->topic).ok());
  FABRIC_FUZZ_REQUIRE(frame->stream != 0 && frame->seq != 0);
  FABRIC_FUZZ_REQUIRE(((frame->flags & ps::kFlagBeat) != 0) ==
                      (frame->count == 0));
  std::vector<Entry> entries;
  absl::string_view rest = frame->entries;
  for (uint32_t i = 0; i < frame->count; ++i) {
    const ps::EntryView e = ps::NextEntry(&rest);
    CheckHeaders(e.headers);
    entries.push_back(
        {e.published, std::string(e.headers), std::string(e.body)});
  }
  FABRIC_FUZZ_REQUIRE(rest.empty());
  FABRIC_FUZZ_REQUIRE(EncodeFrame(frame->topic, frame->flags, frame->stream,
                                  frame->seq, entries) == input);
}

void CheckReplayRequest(absl::string_view body) {
  absl::StatusOr<ps::ReplayRequest> r = ps::DecodeReplayRequest(body);
  if (!r.ok()) return RequireRefusal(r.status());
  FABRIC_FUZZ_REQUIRE(r->from <= ps::ReplayFrom::kEarliest);
  absl::StatusOr<ps::ReplayRequest> again =
      ps::DecodeReplayRequest(ps::EncodeReplayRequest(*r));
  FABRIC_FUZZ_REQUIRE(again.ok() && SameRequest(*r, *again));
}

void CheckReplayData(absl::string_view body) {
  absl::StatusOr<ps::ReplayData> d = ps::DecodeReplayData(body);
  if (!d.ok()) return RequireRefusal(d.status());
  FABRIC_FUZZ_REQUIRE(d->status <= ps::ReplayStatus::kError);
  absl::StatusOr<ps::ReplayData> again =
      ps::DecodeReplayData(ps::EncodeReplayData(*d));
  FABRIC_FUZZ_REQUIRE(again.ok() && SameData(*d, *again));
}

// An offer name that parses names a valid topic and a non-zero stream, and
// the canonical name of what it parsed to parses to the same.
void CheckStreamOffer(absl::string_view name) {
  std::optional<ps::StreamOffer> offer = ps::ParseStreamOffer(name);
  if (!offer.has_value()) return;
  FABRIC_FUZZ_REQUIRE(offer->stream != 0);
  FABRIC_FUZZ_REQUIRE(ps::ValidateTopic(offer->topic).ok());
  std::optional<ps::StreamOffer> again =
      ps::ParseStreamOffer(ps::StreamOfferName(offer->stream, offer->topic));
  FABRIC_FUZZ_REQUIRE(again.has_value() && again->stream == offer->stream &&
                      again->topic == offer->topic);
}

// A topic of 1..255 bytes without NUL.
std::string Topic(FieldReader& in) {
  std::string topic = in.String();
  for (char& c : topic) {
    if (c == '\0') c = '.';
  }
  // push_back: g++ 12 at -O2 warns falsely (-Wrestrict) on = "t".
  if (topic.empty()) topic.push_back('t');
  return topic;
}

// Builds a frame, a replay request and a reply from the input's bytes and
// checks that each survives encode-then-decode.
void CheckEncoders(absl::string_view input) {
  FieldReader in(input);
  const std::string topic = Topic(in);
  std::vector<Entry> entries(in.U8() % 4);
  uint8_t flags = in.U8() & ps::kFlagDurable;
  if (entries.empty()) flags |= ps::kFlagBeat;
  const uint64_t stream = in.U64() | 1;
  const uint64_t seq = std::max<uint64_t>(1, in.U64() >> 8);
  for (Entry& e : entries) {
    e.published = absl::FromUnixMicros(static_cast<int64_t>(in.U64()));
    fabric::Headers headers;
    for (int n = in.U8() % 3; n > 0; --n) headers[in.String()] = in.String();
    e.headers = ps::EncodeHeaders(headers);
    e.body = in.String();
  }
  const std::string wire = EncodeFrame(topic, flags, stream, seq, entries);
  absl::StatusOr<ps::FrameView> frame = ps::DecodeFrame(wire);
  FABRIC_FUZZ_REQUIRE(frame.ok() && frame->topic == topic &&
                      frame->flags == flags && frame->stream == stream &&
                      frame->seq == seq && frame->count == entries.size());
  absl::string_view rest = frame->entries;
  for (const Entry& want : entries) {
    const ps::EntryView got = ps::NextEntry(&rest);
    FABRIC_FUZZ_REQUIRE(got.published == want.published &&
                        got.headers == want.headers && got.body == want.body);
  }
  FABRIC_FUZZ_REQUIRE(rest.empty());

  ps::ReplayRequest request;
  request.subscriber = in.U32();
  request.request = in.U64();
  request.stream = in.U64();
  request.from = static_cast<ps::ReplayFrom>(in.U8() % 3);
  request.seq = in.U64();
  request.time = absl::FromUnixMicros(static_cast<int64_t>(in.U64()));
  request.max_entries = in.U32();
  request.max_bytes = in.U32();
  absl::StatusOr<ps::ReplayRequest> r =
      ps::DecodeReplayRequest(ps::EncodeReplayRequest(request));
  FABRIC_FUZZ_REQUIRE(r.ok() && SameRequest(request, *r));

  ps::ReplayData data;
  data.subscriber = in.U32();
  data.request = in.U64();
  data.stream = in.U64();
  data.status = static_cast<ps::ReplayStatus>(in.U8() % 3);
  data.start = in.U64();
  data.first_seq = in.U64();
  data.durable_seq = in.U64();
  data.next = in.U64();
  for (int n = in.U8() % 4; n > 0; --n) data.entries.push_back(in.String());
  absl::StatusOr<ps::ReplayData> d =
      ps::DecodeReplayData(ps::EncodeReplayData(data));
  FABRIC_FUZZ_REQUIRE(d.ok() && SameData(data, *d));

  std::optional<ps::StreamOffer> offer =
      ps::ParseStreamOffer(ps::StreamOfferName(stream, topic));
  FABRIC_FUZZ_REQUIRE(offer.has_value() && offer->stream == stream &&
                      offer->topic == topic);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  CheckFrame(input);
  CheckHeaders(input);
  CheckReplayRequest(input);
  CheckReplayData(input);
  CheckStreamOffer(input);
  CheckEncoders(input);
  return 0;
}
