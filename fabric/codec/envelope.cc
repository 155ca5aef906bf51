// SPDX-License-Identifier: Apache-2.0
#include "fabric/codec/envelope.h"

#include <msgpack.hpp>

#include "absl/strings/str_cat.h"
#include "fabric/base/status_macros.h"
#include "fabric/codec/msgpack_bounded.h"

namespace fabric {

using msgpack_bounded::AsArray;
using msgpack_bounded::AsBytes;
using msgpack_bounded::AsUint;

std::string EncodeEnvelope(uint16_t kind, const NodeId& sender,
                           absl::string_view body) {
  msgpack::sbuffer buffer(body.size() + 32);
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  pk.pack_array(4);
  pk.pack_uint32(kEnvelopeVersion);
  pk.pack_uint16(kind);
  pk.pack_bin(NodeId::kSize);
  pk.pack_bin_body(sender.bytes().data(), NodeId::kSize);
  pk.pack_bin(static_cast<uint32_t>(body.size()));
  pk.pack_bin_body(body.data(), body.size());
  return std::string(buffer.data(), buffer.size());
}

absl::StatusOr<EnvelopeView> DecodeEnvelope(absl::string_view wire,
                                            size_t max_bytes) {
  if (wire.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("envelope of ", wire.size(),
                     " bytes exceeds the limit of ", max_bytes));
  }
  FABRIC_ASSIGN_OR_RETURN(msgpack::object_handle handle,
                          msgpack_bounded::UnpackBounded(wire, 16, 1));
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* fields,
                          AsArray(handle.get(), "envelope"));
  if (fields->size < 1) {
    return absl::InvalidArgumentError("envelope is an empty array");
  }
  FABRIC_ASSIGN_OR_RETURN(uint64_t version,
                          AsUint(fields->ptr[0], "envelope version"));
  if (version != kEnvelopeVersion) {
    return absl::UnimplementedError(absl::StrCat("envelope version ", version,
                                                 " is not supported (this "
                                                 "node speaks ",
                                                 kEnvelopeVersion, ")"));
  }
  if (fields->size != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("envelope has ", fields->size, " fields, want 4"));
  }
  EnvelopeView view;
  FABRIC_ASSIGN_OR_RETURN(uint64_t kind, AsUint(fields->ptr[1], "kind"));
  if (kind == 0 || kind > UINT16_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("bad message kind ", kind));
  }
  view.kind = static_cast<uint16_t>(kind);
  FABRIC_ASSIGN_OR_RETURN(absl::string_view sender,
                          AsBytes(fields->ptr[2], "sender"));
  FABRIC_ASSIGN_OR_RETURN(view.sender, NodeId::FromBytes(sender));
  FABRIC_ASSIGN_OR_RETURN(view.body, AsBytes(fields->ptr[3], "body"));
  return view;
}

}  // namespace fabric
