// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the fuzz harnesses: an invariant check that aborts (so
// libFuzzer, or the replay driver, reports the input) and a reader that
// turns fuzzer bytes into the fields of a message to encode, for the
// encode-then-decode round trips.
#ifndef TESTS_FUZZ_FUZZ_UTIL_H_
#define TESTS_FUZZ_FUZZ_UTIL_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "fabric/base/node_id.h"

namespace fabric_fuzz {

// Aborts, naming the broken invariant, unless `condition` holds.
#define FABRIC_FUZZ_REQUIRE(condition)                                \
  do {                                                                \
    if (!(condition)) {                                               \
      std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, \
                   __LINE__, #condition);                             \
      std::abort();                                                   \
    }                                                                 \
  } while (false)

// Reads fields off the front of fuzzer bytes. Past the end every read
// returns zeros or empty strings, so any input gives a message.
// Thread safety: thread-compatible.
class FieldReader {
 public:
  explicit FieldReader(absl::string_view data) : data_(data) {}

  uint8_t U8() { return static_cast<uint8_t>(Uint(1)); }
  uint32_t U32() { return static_cast<uint32_t>(Uint(4)); }
  uint64_t U64() { return Uint(8); }
  bool Bool() { return (U8() & 1) != 0; }

  // A string of at most `max` bytes; its length is the next byte.
  std::string String(size_t max = 255) {
    const size_t n = std::min<size_t>({U8(), max, data_.size()});
    std::string s(data_.substr(0, n));
    data_.remove_prefix(n);
    return s;
  }

  // A node id: 16 bytes, the last set to 1 so that it is never zero.
  fabric::NodeId Id() {
    std::string raw(fabric::NodeId::kSize, '\0');
    for (size_t i = 0; i + 1 < raw.size(); ++i)
      raw[i] = static_cast<char>(U8());
    raw.back() = 1;
    return *fabric::NodeId::FromBytes(raw);
  }

  bool empty() const { return data_.empty(); }

 private:
  uint64_t Uint(size_t bytes) {
    uint64_t v = 0;
    for (size_t i = 0; i < bytes && !data_.empty(); ++i) {
      v = (v << 8) | static_cast<uint8_t>(data_[0]);
      data_.remove_prefix(1);
    }
    return v;
  }

  absl::string_view data_;
};

}  // namespace fabric_fuzz

#endif  // TESTS_FUZZ_FUZZ_UTIL_H_
