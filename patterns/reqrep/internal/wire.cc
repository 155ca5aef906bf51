// SPDX-License-Identifier: Apache-2.0
#include "patterns/reqrep/internal/wire.h"

#include <msgpack.hpp>

#include "absl/strings/str_cat.h"
#include "fabric/base/status_macros.h"
#include "fabric/codec/msgpack_bounded.h"
#include "fabric/codec/wire_format.h"

namespace fabric::rr {
namespace {

using msgpack_bounded::AsArray;
using msgpack_bounded::AsBytes;
using msgpack_bounded::AsUint;
using msgpack_bounded::UnpackBounded;

using msgpack_bounded::AsStringMap;
using msgpack_bounded::AsU32;
using msgpack_bounded::Fields;
using msgpack_bounded::PackBin;
using msgpack_bounded::Packer;
using msgpack_bounded::PackString;
using msgpack_bounded::PackStringMap;
using msgpack_bounded::StringSink;

// An array32 header: 0xdd and a big-endian count. Kept at the front of every
// frame so the count can be filled in last.
constexpr size_t kArrayHeader = 5;

// A string field that may also be nil (read as empty).
absl::StatusOr<absl::string_view> OptionalBytes(const msgpack::object& o,
                                                absl::string_view what,
                                                size_t max) {
  if (o.type == msgpack::type::NIL) return absl::string_view();
  FABRIC_ASSIGN_OR_RETURN(absl::string_view s, AsBytes(o, what));
  if (s.size() > max) {
    return absl::InvalidArgumentError(absl::StrCat(what, " too long"));
  }
  return s;
}

absl::StatusOr<const msgpack::object_array*> Frame(
    const msgpack::object_handle& h, absl::string_view what) {
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* list,
                          AsArray(h.get(), what));
  if (list->size == 0)
    return absl::InvalidArgumentError(absl::StrCat("empty ", what, " frame"));
  return list;
}

constexpr size_t kMaxDepth = 4;

}  // namespace

FrameEncoder::FrameEncoder() { out_.assign(kArrayHeader, '\0'); }

void FrameEncoder::AddRequest(uint64_t id, uint32_t attempt,
                              absl::string_view service, uint64_t timeout_ms,
                              absl::string_view key, const Headers& headers,
                              absl::string_view body) {
  StringSink sink{&out_};
  Packer pk(sink);
  pk.pack_array(7);
  pk.pack(id);
  pk.pack(attempt);
  PackString(pk, service);
  pk.pack(timeout_ms);
  if (key.empty()) {
    pk.pack_nil();
  } else {
    PackString(pk, key);
  }
  if (headers.empty()) {
    pk.pack_nil();
  } else {
    PackStringMap(pk, headers);
  }
  PackBin(pk, body);
  ++count_;
}

void FrameEncoder::AddReply(uint64_t id, uint32_t attempt, uint32_t code,
                            uint32_t flags, absl::string_view message,
                            absl::string_view body) {
  StringSink sink{&out_};
  Packer pk(sink);
  pk.pack_array(6);
  pk.pack(id);
  pk.pack(attempt);
  pk.pack(code);
  pk.pack(flags);
  PackString(pk, message.substr(0, kMaxStringBytes));
  PackBin(pk, body);
  ++count_;
}

std::string FrameEncoder::Finish() {
  out_[0] = static_cast<char>(0xdd);
  out_[1] = static_cast<char>((count_ >> 24) & 0xff);
  out_[2] = static_cast<char>((count_ >> 16) & 0xff);
  out_[3] = static_cast<char>((count_ >> 8) & 0xff);
  out_[4] = static_cast<char>(count_ & 0xff);
  std::string frame;
  frame.swap(out_);
  out_.assign(kArrayHeader, '\0');
  count_ = 0;
  return frame;
}

absl::StatusOr<std::vector<WireRequest>> DecodeRequests(
    absl::string_view body) {
  FABRIC_ASSIGN_OR_RETURN(msgpack::object_handle h,
                          UnpackBounded(body, kMaxEntriesPerFrame, kMaxDepth));
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* list,
                          Frame(h, "requests"));
  std::vector<WireRequest> out;
  out.reserve(list->size);
  for (uint32_t i = 0; i < list->size; ++i) {
    FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* f,
                            Fields(list->ptr[i], 7, "request"));
    WireRequest r;
    FABRIC_ASSIGN_OR_RETURN(r.id, AsUint(f->ptr[0], "request id"));
    FABRIC_ASSIGN_OR_RETURN(r.attempt, AsU32(f->ptr[1], "attempt"));
    FABRIC_ASSIGN_OR_RETURN(r.service, AsBytes(f->ptr[2], "service"));
    if (r.service.empty() || r.service.size() > kMaxServiceName) {
      return absl::InvalidArgumentError("bad service name length");
    }
    FABRIC_ASSIGN_OR_RETURN(r.timeout_ms, AsUint(f->ptr[3], "timeout"));
    FABRIC_ASSIGN_OR_RETURN(
        r.key, OptionalBytes(f->ptr[4], "idempotency key", kMaxIdempotencyKey));
    FABRIC_ASSIGN_OR_RETURN(r.headers,
                            AsStringMap(f->ptr[5], "headers", kMaxHeaders));
    FABRIC_ASSIGN_OR_RETURN(r.body, AsBytes(f->ptr[6], "body"));
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<std::vector<WireReply>> DecodeReplies(absl::string_view body) {
  FABRIC_ASSIGN_OR_RETURN(msgpack::object_handle h,
                          UnpackBounded(body, kMaxEntriesPerFrame, kMaxDepth));
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* list,
                          Frame(h, "replies"));
  std::vector<WireReply> out;
  out.reserve(list->size);
  for (uint32_t i = 0; i < list->size; ++i) {
    FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* f,
                            Fields(list->ptr[i], 6, "reply"));
    WireReply r;
    FABRIC_ASSIGN_OR_RETURN(r.id, AsUint(f->ptr[0], "request id"));
    FABRIC_ASSIGN_OR_RETURN(r.attempt, AsU32(f->ptr[1], "attempt"));
    FABRIC_ASSIGN_OR_RETURN(r.code, AsU32(f->ptr[2], "code"));
    if (r.code > static_cast<uint32_t>(absl::StatusCode::kUnauthenticated)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown code ", r.code));
    }
    FABRIC_ASSIGN_OR_RETURN(r.flags, AsU32(f->ptr[3], "flags"));
    FABRIC_ASSIGN_OR_RETURN(
        r.message, OptionalBytes(f->ptr[4], "message", kMaxStringBytes));
    FABRIC_ASSIGN_OR_RETURN(r.body, AsBytes(f->ptr[5], "body"));
    out.push_back(r);
  }
  return out;
}

std::string EncodeCancel(const std::vector<uint64_t>& ids) {
  std::string out;
  StringSink sink{&out};
  Packer pk(sink);
  pk.pack_array(static_cast<uint32_t>(ids.size()));
  for (uint64_t id : ids) pk.pack(id);
  return out;
}

absl::StatusOr<std::vector<uint64_t>> DecodeCancel(absl::string_view body) {
  FABRIC_ASSIGN_OR_RETURN(msgpack::object_handle h,
                          UnpackBounded(body, kMaxEntriesPerFrame, kMaxDepth));
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* list,
                          Frame(h, "cancel"));
  std::vector<uint64_t> ids;
  ids.reserve(list->size);
  for (uint32_t i = 0; i < list->size; ++i) {
    FABRIC_ASSIGN_OR_RETURN(uint64_t id, AsUint(list->ptr[i], "request id"));
    ids.push_back(id);
  }
  return ids;
}

}  // namespace fabric::rr
