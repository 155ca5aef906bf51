// SPDX-License-Identifier: Apache-2.0
// libFuzzer target over the core wire codec (fabric/codec): the envelope and
// the HELLO, PING and GOSSIP bodies. Each input is decoded as every one of
// them (an envelope's body as its kind says, as the engine does); whatever
// decodes must encode and decode back to the same value. The input is also
// read as the fields of a HELLO, a PING and a GOSSIP list, which must
// survive encode-then-decode unchanged. Build and run: tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "fabric/codec/control.h"
#include "fabric/codec/envelope.h"
#include "fabric/codec/wire_format.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using ::fabric::GossipEntry;
using ::fabric::Hello;
using ::fabric_fuzz::FieldReader;

// The limit the engine applies to a mailbox frame, scaled down: nothing
// the fuzzer sends comes near either.
constexpr size_t kMaxEnvelopeBytes = size_t{1} << 20;

bool SameHello(const Hello& a, const Hello& b) {
  return a.id == b.id && a.name == b.name && a.cluster == b.cluster &&
         a.mailbox_endpoint == b.mailbox_endpoint &&
         a.publish_endpoint == b.publish_endpoint &&
         a.state_version == b.state_version && a.discovery == b.discovery &&
         a.headers == b.headers && a.offers == b.offers;
}

bool SameGossip(const std::vector<GossipEntry>& a,
                const std::vector<GossipEntry>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].id != b[i].id || a[i].mailbox_endpoint != b[i].mailbox_endpoint ||
        a[i].public_key != b[i].public_key) {
      return false;
    }
  }
  return true;
}

// Every refusal of untrusted bytes is kInvalidArgument (STYLE.md section
// 5), except an envelope of another version: kUnimplemented.
void RequireRefusal(const absl::Status& status) {
  FABRIC_FUZZ_REQUIRE(status.code() == absl::StatusCode::kInvalidArgument);
}

void CheckHello(absl::string_view body) {
  absl::StatusOr<Hello> hello = fabric::DecodeHello(body);
  if (!hello.ok()) return RequireRefusal(hello.status());
  FABRIC_FUZZ_REQUIRE(hello->headers.size() <= fabric::kMaxHeaders);
  FABRIC_FUZZ_REQUIRE(hello->offers.size() <= fabric::kMaxOfferKinds);
  absl::StatusOr<Hello> again =
      fabric::DecodeHello(fabric::EncodeHello(*hello));
  FABRIC_FUZZ_REQUIRE(again.ok() && SameHello(*hello, *again));
}

void CheckPing(absl::string_view body) {
  absl::StatusOr<uint64_t> ping = fabric::DecodePing(body);
  if (!ping.ok()) return RequireRefusal(ping.status());
  absl::StatusOr<uint64_t> again =
      fabric::DecodePing(fabric::EncodePing(*ping));
  FABRIC_FUZZ_REQUIRE(again.ok() && *again == *ping);
}

void CheckGossip(absl::string_view body) {
  absl::StatusOr<std::vector<GossipEntry>> gossip = fabric::DecodeGossip(body);
  if (!gossip.ok()) return RequireRefusal(gossip.status());
  FABRIC_FUZZ_REQUIRE(gossip->size() <= fabric::kMaxGossipEntries);
  absl::StatusOr<std::vector<GossipEntry>> again =
      fabric::DecodeGossip(fabric::EncodeGossip(*gossip));
  FABRIC_FUZZ_REQUIRE(again.ok() && SameGossip(*gossip, *again));
}

// Decodes `input` as an envelope; one that passes re-encodes to one with
// the same fields, and its body is decoded as its kind says.
void CheckEnvelope(absl::string_view input) {
  absl::StatusOr<fabric::EnvelopeView> env =
      fabric::DecodeEnvelope(input, kMaxEnvelopeBytes);
  if (!env.ok()) {
    FABRIC_FUZZ_REQUIRE(
        env.status().code() == absl::StatusCode::kInvalidArgument ||
        env.status().code() == absl::StatusCode::kUnimplemented);
    return;
  }
  FABRIC_FUZZ_REQUIRE(env->kind != 0);
  // The body is a view into the input.
  FABRIC_FUZZ_REQUIRE(env->body.data() >= input.data() &&
                      env->body.data() + env->body.size() <=
                          input.data() + input.size());
  const std::string wire =
      fabric::EncodeEnvelope(env->kind, env->sender, env->body);
  absl::StatusOr<fabric::EnvelopeView> again =
      fabric::DecodeEnvelope(wire, kMaxEnvelopeBytes);
  FABRIC_FUZZ_REQUIRE(again.ok() && again->kind == env->kind &&
                      again->sender == env->sender && again->body == env->body);
  // A frame over the limit is refused before it is parsed.
  FABRIC_FUZZ_REQUIRE(
      fabric::DecodeEnvelope(input, input.size() - 1).status().code() ==
      absl::StatusCode::kInvalidArgument);
  switch (static_cast<fabric::MessageKind>(env->kind)) {
    case fabric::MessageKind::kHello:
      CheckHello(env->body);
      break;
    case fabric::MessageKind::kPing:
      CheckPing(env->body);
      break;
    case fabric::MessageKind::kGossip:
      CheckGossip(env->body);
      break;
    default:
      break;
  }
}

// Builds a HELLO, a PING and a GOSSIP list from the input's bytes and
// checks that each survives encode-then-decode, inside an envelope too.
void CheckEncoders(absl::string_view input) {
  FieldReader in(input);
  Hello hello;
  hello.id = in.Id();
  hello.name = in.String();
  hello.cluster = in.String();
  hello.mailbox_endpoint = in.String();
  hello.publish_endpoint = in.String();
  hello.state_version = in.U64();
  hello.discovery = in.String();
  for (int n = in.U8() % 4; n > 0; --n)
    hello.headers[in.String()] = in.String();
  for (int kinds = in.U8() % 3; kinds > 0; --kinds) {
    std::set<std::string>& names = hello.offers[in.String()];
    for (int n = in.U8() % 4; n > 0; --n) names.insert(in.String());
  }
  const std::string body = fabric::EncodeHello(hello);
  const std::string wire =
      fabric::EncodeEnvelope(fabric::MessageKind::kHello, hello.id, body);
  absl::StatusOr<fabric::EnvelopeView> env =
      fabric::DecodeEnvelope(wire, kMaxEnvelopeBytes);
  FABRIC_FUZZ_REQUIRE(env.ok() && env->body == body && env->sender == hello.id);
  absl::StatusOr<Hello> decoded = fabric::DecodeHello(env->body);
  FABRIC_FUZZ_REQUIRE(decoded.ok() && SameHello(hello, *decoded));

  const uint64_t version = in.U64();
  absl::StatusOr<uint64_t> ping =
      fabric::DecodePing(fabric::EncodePing(version));
  FABRIC_FUZZ_REQUIRE(ping.ok() && *ping == version);

  std::vector<GossipEntry> gossip(in.U8() % 4);
  for (GossipEntry& e : gossip) {
    e.id = in.Id();
    e.mailbox_endpoint = in.String();
    if (in.Bool()) {
      e.public_key = in.String(32);
      e.public_key.resize(32, 'k');  // a CURVE key is 32 bytes or absent
    }
  }
  absl::StatusOr<std::vector<GossipEntry>> got =
      fabric::DecodeGossip(fabric::EncodeGossip(gossip));
  FABRIC_FUZZ_REQUIRE(got.ok() && SameGossip(gossip, *got));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  CheckEnvelope(input);
  CheckHello(input);
  CheckPing(input);
  CheckGossip(input);
  CheckEncoders(input);
  return 0;
}
