// SPDX-License-Identifier: Apache-2.0
#include "fabric/spool/internal/meta.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <msgpack.hpp>

#include "absl/strings/str_cat.h"
#include "fabric/spool/internal/record.h"
#include "fabric/spool/internal/spool_format.h"

namespace fabric::spool_internal {
namespace {

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

bool KeepReferences(msgpack::type::object_type, std::size_t, void*) {
  return true;
}

absl::Status DecodeBody(absl::string_view body, Meta* meta) {
  const msgpack::unpack_limit limit(16, 16, body.size(), body.size(), 0, 2);
  std::size_t offset = 0;
  msgpack::object_handle handle;
  try {
    handle = msgpack::unpack(body.data(), body.size(), offset, KeepReferences,
                             nullptr, limit);
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat("malformed META body: ", e.what()));
  }
  const msgpack::object& root = handle.get();
  if (root.type != msgpack::type::MAP) {
    return absl::DataLossError("META body is not a map");
  }
  bool have_id = false;
  for (uint32_t i = 0; i < root.via.map.size; ++i) {
    const msgpack::object& key = root.via.map.ptr[i].key;
    const msgpack::object& val = root.via.map.ptr[i].val;
    if (key.type != msgpack::type::STR) continue;
    absl::string_view name(key.via.str.ptr, key.via.str.size);
    if (name == "producer_id" && val.type == msgpack::type::BIN) {
      absl::StatusOr<NodeId> id = NodeId::FromBytes(
          absl::string_view(val.via.bin.ptr, val.via.bin.size));
      if (!id.ok()) return absl::DataLossError("META producer_id is invalid");
      meta->producer_id = *id;
      have_id = true;
    } else if (name == "queue" && val.type == msgpack::type::STR) {
      meta->queue.assign(val.via.str.ptr, val.via.str.size);
    } else if (name == "created" &&
               val.type == msgpack::type::NEGATIVE_INTEGER) {
      meta->created = absl::FromUnixMicros(val.via.i64);
    } else if (name == "created" &&
               val.type == msgpack::type::POSITIVE_INTEGER) {
      meta->created = absl::FromUnixMicros(
          static_cast<int64_t>(std::min<uint64_t>(val.via.u64, INT64_MAX)));
    }
  }
  if (!have_id) return absl::DataLossError("META lacks producer_id");
  return absl::OkStatus();
}

}  // namespace

std::string EncodeMeta(const Meta& meta) {
  msgpack::sbuffer body;
  msgpack::packer<msgpack::sbuffer> pk(body);
  pk.pack_map(3);
  pk.pack_str(11);
  pk.pack_str_body("producer_id", 11);
  pk.pack_bin(NodeId::kSize);
  pk.pack_bin_body(meta.producer_id.bytes().data(), NodeId::kSize);
  pk.pack_str(5);
  pk.pack_str_body("queue", 5);
  pk.pack_str(static_cast<uint32_t>(meta.queue.size()));
  pk.pack_str_body(meta.queue.data(), meta.queue.size());
  pk.pack_str(7);
  pk.pack_str_body("created", 7);
  pk.pack_int64(absl::ToUnixMicros(meta.created));

  std::string out(kMetaMagic, sizeof(kMetaMagic));
  PutU32(&out, meta.version);
  PutU32(&out, static_cast<uint32_t>(body.size()));
  out.append(body.data(), body.size());
  PutU32(&out, Checksum(out));
  return out;
}

absl::StatusOr<Meta> DecodeMeta(absl::string_view data) {
  if (data.size() < kMetaFixedSize ||
      std::memcmp(data.data(), kMetaMagic, sizeof(kMetaMagic)) != 0) {
    return absl::DataLossError("META has no valid magic");
  }
  const uint32_t body_len = GetU32(data.data() + 12);
  if (body_len > kMaxMetaBodyBytes ||
      data.size() != kMetaFixedSize + body_len) {
    return absl::DataLossError("META has a bad length");
  }
  const size_t checked = data.size() - 4;
  if (GetU32(data.data() + checked) != Checksum(data.substr(0, checked))) {
    return absl::DataLossError("META checksum mismatch");
  }
  Meta meta;
  meta.version = GetU32(data.data() + 8);
  if (meta.version > kFormatVersion) {
    return absl::UnimplementedError(absl::StrCat(
        "spool format version ", meta.version,
        " is newer than this build supports (", kFormatVersion, ")"));
  }
  absl::Status status = DecodeBody(data.substr(16, body_len), &meta);
  if (!status.ok()) return status;
  return meta;
}

}  // namespace fabric::spool_internal
