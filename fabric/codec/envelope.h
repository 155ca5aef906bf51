// SPDX-License-Identifier: Apache-2.0
// The envelope that wraps every mailbox message: version, kind, sender id and
// an opaque body. Encoded as a msgpack array (docs/protocol.md, "Envelope").
//
//   std::string wire = EncodeEnvelope(MessageKind::kPing, self, body);
//   absl::StatusOr<EnvelopeView> env = DecodeEnvelope(wire, max_bytes);
#ifndef FABRIC_CODEC_ENVELOPE_H_
#define FABRIC_CODEC_ENVELOPE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fabric/base/node_id.h"
#include "fabric/codec/wire_format.h"

namespace fabric {

// A decoded envelope. `body` points into the buffer given to
// `DecodeEnvelope`, which must outlive the view.
struct EnvelopeView {
  uint16_t kind = 0;
  NodeId sender;
  absl::string_view body;
};

// Returns the wire bytes of an envelope. Never fails.
std::string EncodeEnvelope(uint16_t kind, const NodeId& sender,
                           absl::string_view body);
inline std::string EncodeEnvelope(MessageKind kind, const NodeId& sender,
                                  absl::string_view body) {
  return EncodeEnvelope(static_cast<uint16_t>(kind), sender, body);
}

// Decodes `wire`. Returns kInvalidArgument for anything malformed (truncated,
// wrong types, trailing bytes, larger than `max_bytes`) and kUnimplemented for
// an envelope of another version. Never throws, for any input.
absl::StatusOr<EnvelopeView> DecodeEnvelope(absl::string_view wire,
                                            size_t max_bytes);

}  // namespace fabric

#endif  // FABRIC_CODEC_ENVELOPE_H_
