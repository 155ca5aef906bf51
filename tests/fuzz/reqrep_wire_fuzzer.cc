// SPDX-License-Identifier: Apache-2.0
// libFuzzer target over the request/reply wire bodies
// (patterns/reqrep/internal/wire.h): REQUESTS, REPLIES and CANCEL frames.
// Each input is decoded as every one of them; whatever decodes must encode
// (through `FrameEncoder`, as clients and servers do) and decode back to the
// same values. The input is also read as the fields of one frame of each
// kind, which must survive encode-then-decode unchanged. Build and run:
// tests/fuzz/README.md.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fabric/limits.h"
#include "patterns/reqrep/internal/wire.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace rr = ::fabric::rr;
using ::fabric_fuzz::FieldReader;

bool SameRequest(const rr::WireRequest& a, const rr::WireRequest& b) {
  return a.id == b.id && a.attempt == b.attempt && a.service == b.service &&
         a.timeout_ms == b.timeout_ms && a.key == b.key &&
         a.headers == b.headers && a.body == b.body;
}

bool SameReply(const rr::WireReply& a, const rr::WireReply& b) {
  return a.id == b.id && a.attempt == b.attempt && a.code == b.code &&
         a.flags == b.flags && a.message == b.message && a.body == b.body;
}

bool SameRequests(const std::vector<rr::WireRequest>& a,
                  const std::vector<rr::WireRequest>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), SameRequest);
}

bool SameReplies(const std::vector<rr::WireReply>& a,
                 const std::vector<rr::WireReply>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), SameReply);
}

void RequireRefusal(const absl::Status& status) {
  FABRIC_FUZZ_REQUIRE(status.code() == absl::StatusCode::kInvalidArgument);
}

std::string EncodeRequests(const std::vector<rr::WireRequest>& requests) {
  rr::FrameEncoder encoder;
  for (const rr::WireRequest& r : requests) {
    encoder.AddRequest(r.id, r.attempt, r.service, r.timeout_ms, r.key,
                       r.headers, r.body);
  }
  FABRIC_FUZZ_REQUIRE(encoder.count() == requests.size());
  return encoder.Finish();
}

std::string EncodeReplies(const std::vector<rr::WireReply>& replies) {
  rr::FrameEncoder encoder;
  for (const rr::WireReply& r : replies) {
    encoder.AddReply(r.id, r.attempt, r.code, r.flags, r.message, r.body);
  }
  std::string frame = encoder.Finish();
  // Finish leaves the encoder empty for the next frame.
  FABRIC_FUZZ_REQUIRE(encoder.count() == 0);
  return frame;
}

void CheckRequests(absl::string_view body) {
  absl::StatusOr<std::vector<rr::WireRequest>> got = rr::DecodeRequests(body);
  if (!got.ok()) return RequireRefusal(got.status());
  FABRIC_FUZZ_REQUIRE(!got->empty() && got->size() <= rr::kMaxEntriesPerFrame);
  for (const rr::WireRequest& r : *got) {
    FABRIC_FUZZ_REQUIRE(!r.service.empty() &&
                        r.service.size() <= rr::kMaxServiceName);
    FABRIC_FUZZ_REQUIRE(r.key.size() <= rr::kMaxIdempotencyKey);
    FABRIC_FUZZ_REQUIRE(r.headers.size() <= fabric::kMaxHeaders);
  }
  const std::string wire = EncodeRequests(*got);
  absl::StatusOr<std::vector<rr::WireRequest>> again = rr::DecodeRequests(wire);
  FABRIC_FUZZ_REQUIRE(again.ok() && SameRequests(*got, *again));
}

void CheckReplies(absl::string_view body) {
  absl::StatusOr<std::vector<rr::WireReply>> got = rr::DecodeReplies(body);
  if (!got.ok()) return RequireRefusal(got.status());
  FABRIC_FUZZ_REQUIRE(!got->empty());
  for (const rr::WireReply& r : *got) {
    FABRIC_FUZZ_REQUIRE(
        r.code <= static_cast<uint32_t>(absl::StatusCode::kUnauthenticated));
    FABRIC_FUZZ_REQUIRE(r.message.size() <= fabric::kMaxStringBytes);
  }
  const std::string wire = EncodeReplies(*got);
  absl::StatusOr<std::vector<rr::WireReply>> again = rr::DecodeReplies(wire);
  FABRIC_FUZZ_REQUIRE(again.ok() && SameReplies(*got, *again));
}

void CheckCancel(absl::string_view body) {
  absl::StatusOr<std::vector<uint64_t>> got = rr::DecodeCancel(body);
  if (!got.ok()) return RequireRefusal(got.status());
  FABRIC_FUZZ_REQUIRE(!got->empty());
  absl::StatusOr<std::vector<uint64_t>> again =
      rr::DecodeCancel(rr::EncodeCancel(*got));
  FABRIC_FUZZ_REQUIRE(again.ok() && *again == *got);
}

// Builds one frame of each kind (one to three entries) from the input's
// bytes and checks that each survives encode-then-decode.
void CheckEncoders(absl::string_view input) {
  FieldReader in(input);
  std::deque<std::string> strings;  // what the views below point at
  const auto keep = [&](std::string s) -> absl::string_view {
    strings.push_back(std::move(s));
    return strings.back();
  };
  const int n = 1 + in.U8() % 3;
  std::vector<rr::WireRequest> requests(n);
  for (rr::WireRequest& r : requests) {
    r.id = in.U64();
    r.attempt = in.U32();
    std::string service = in.String();
    // push_back: g++ 12 at -O2 warns falsely (-Wrestrict) on = "s".
    if (service.empty()) service.push_back('s');
    r.service = keep(std::move(service));
    r.timeout_ms = in.U64();
    r.key = keep(in.String());
    for (int h = in.U8() % 3; h > 0; --h) r.headers[in.String()] = in.String();
    r.body = keep(in.String());
  }
  // Decoded views point into the frame: keep it.
  const std::string requests_wire = EncodeRequests(requests);
  absl::StatusOr<std::vector<rr::WireRequest>> got =
      rr::DecodeRequests(requests_wire);
  FABRIC_FUZZ_REQUIRE(got.ok() && SameRequests(requests, *got));

  std::vector<rr::WireReply> replies(n);
  for (rr::WireReply& r : replies) {
    r.id = in.U64();
    r.attempt = in.U32();
    r.code = in.U8() % 17;  // kOk .. kUnauthenticated
    r.flags = in.U32();
    r.message = keep(in.String());
    r.body = keep(in.String());
  }
  const std::string replies_wire = EncodeReplies(replies);
  absl::StatusOr<std::vector<rr::WireReply>> back =
      rr::DecodeReplies(replies_wire);
  FABRIC_FUZZ_REQUIRE(back.ok() && SameReplies(replies, *back));

  std::vector<uint64_t> ids(n);
  for (uint64_t& id : ids) id = in.U64();
  absl::StatusOr<std::vector<uint64_t>> cancel =
      rr::DecodeCancel(rr::EncodeCancel(ids));
  FABRIC_FUZZ_REQUIRE(cancel.ok() && *cancel == ids);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  CheckRequests(input);
  CheckReplies(input);
  CheckCancel(input);
  CheckEncoders(input);
  return 0;
}
