// SPDX-License-Identifier: Apache-2.0
// libFuzzer target over every decoder of untrusted input: the envelope, the
// control message bodies and the beacon. Build with clang:
//   CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DFABRIC_BUILD_BENCH=OFF
//   ninja -C build-fuzz decoders_fuzzer
//   build-fuzz/tests/decoders_fuzzer -max_total_time=60
#include <cstddef>
#include <cstdint>

#include "discovery/beacon.h"
#include "fabric/codec/control.h"
#include "fabric/codec/envelope.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<fabric::EnvelopeView> env =
      fabric::DecodeEnvelope(input, 1 << 20);
  if (env.ok()) {
    // Bodies are decoded the way the engine would.
    fabric::DecodeHello(env->body).IgnoreError();
    fabric::DecodePing(env->body).IgnoreError();
    fabric::DecodeGossip(env->body).IgnoreError();
  }
  fabric::DecodeHello(input).IgnoreError();
  fabric::DecodeGossip(input).IgnoreError();
  fabric::discovery::DecodeBeacon(input).IgnoreError();
  return 0;
}
