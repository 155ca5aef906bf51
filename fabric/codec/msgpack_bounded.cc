// SPDX-License-Identifier: Apache-2.0
#include "fabric/codec/msgpack_bounded.h"

#include <exception>

#include "absl/strings/str_cat.h"

namespace fabric::msgpack_bounded {
namespace {

// Keeps strings and binaries pointing into the caller's buffer.
bool ReferenceAll(msgpack::type::object_type, std::size_t, void*) {
  return true;
}

}  // namespace

absl::StatusOr<msgpack::object_handle> UnpackBounded(absl::string_view data,
                                                     size_t max_elements,
                                                     size_t max_depth) {
  if (data.empty()) return absl::InvalidArgumentError("empty msgpack input");
  const msgpack::unpack_limit limit(
      /*array=*/max_elements, /*map=*/max_elements,
      /*str=*/data.size(), /*bin=*/data.size(), /*ext=*/0,
      /*depth=*/max_depth);
  std::size_t offset = 0;
  try {
    msgpack::object_handle handle = msgpack::unpack(
        data.data(), data.size(), offset, ReferenceAll, nullptr, limit);
    if (offset != data.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "trailing bytes after msgpack object at offset ", offset));
    }
    return handle;
  } catch (const msgpack::unpack_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed msgpack: ", e.what()));
  } catch (const msgpack::type_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("msgpack type error: ", e.what()));
  } catch (const std::length_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("msgpack size limit: ", e.what()));
  }
}

absl::StatusOr<uint64_t> AsUint(const msgpack::object& o,
                                absl::string_view what) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not an unsigned integer"));
  }
  return o.via.u64;
}

absl::StatusOr<absl::string_view> AsBytes(const msgpack::object& o,
                                          absl::string_view what) {
  if (o.type == msgpack::type::STR) {
    return absl::string_view(o.via.str.ptr, o.via.str.size);
  }
  if (o.type == msgpack::type::BIN) {
    return absl::string_view(o.via.bin.ptr, o.via.bin.size);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, " is not a string or binary"));
}

absl::StatusOr<const msgpack::object_array*> AsArray(const msgpack::object& o,
                                                     absl::string_view what) {
  if (o.type != msgpack::type::ARRAY) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not an array"));
  }
  return &o.via.array;
}

absl::StatusOr<const msgpack::object_map*> AsMap(const msgpack::object& o,
                                                 absl::string_view what) {
  if (o.type != msgpack::type::MAP) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not a map"));
  }
  return &o.via.map;
}

absl::StatusOr<uint32_t> AsU32(const msgpack::object& o,
                               absl::string_view what) {
  absl::StatusOr<uint64_t> v = AsUint(o, what);
  if (!v.ok()) return v.status();
  if (*v > UINT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(what, " out of range"));
  }
  return static_cast<uint32_t>(*v);
}

absl::StatusOr<const msgpack::object_array*> Fields(const msgpack::object& o,
                                                    size_t min,
                                                    absl::string_view what) {
  absl::StatusOr<const msgpack::object_array*> a = AsArray(o, what);
  if (!a.ok()) return a.status();
  if ((*a)->size < min) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has ", (*a)->size, " fields, want ", min));
  }
  return a;
}

absl::StatusOr<std::map<std::string, std::string>> AsStringMap(
    const msgpack::object& o, absl::string_view what, size_t max_entries) {
  std::map<std::string, std::string> out;
  if (o.type == msgpack::type::NIL) return out;
  absl::StatusOr<const msgpack::object_map*> m = AsMap(o, what);
  if (!m.ok()) return m.status();
  if ((*m)->size > max_entries) {
    return absl::InvalidArgumentError(absl::StrCat("too many ", what));
  }
  for (uint32_t i = 0; i < (*m)->size; ++i) {
    absl::StatusOr<absl::string_view> k = AsBytes((*m)->ptr[i].key, what);
    if (!k.ok()) return k.status();
    absl::StatusOr<absl::string_view> v = AsBytes((*m)->ptr[i].val, what);
    if (!v.ok()) return v.status();
    out.emplace(std::string(*k), std::string(*v));
  }
  return out;
}

}  // namespace fabric::msgpack_bounded
