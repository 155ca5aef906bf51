// SPDX-License-Identifier: Apache-2.0
// Message input shared by the verbs that send (push, pub): stdin lines that
// never block out a signal, generated bodies and --header pairs.
#ifndef FABRIC_TOOLS_CLI_INPUT_H_
#define FABRIC_TOOLS_CLI_INPUT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "fabric/codec/control.h"

namespace fabric::cli {

// Parses KEY=VALUE pairs (from --header) into `out`.
absl::Status ParseHeaders(const std::vector<std::string>& pairs, Headers* out);

// Checks that MSG arguments (`messages` of them), --count (-1: not given)
// and --size (-1: not given) make sense together.
absl::Status CheckMessageSource(size_t messages, int64_t count, int64_t size);

// "msg-<i>" padded with '.' to `size` bytes (never cut).
std::string GeneratedBody(int64_t i, int64_t size);

// Reads stdin line by line, polling so that `stop` is checked at least
// every 100 ms. Thread safety: thread-compatible.
class LineReader {
 public:
  explicit LineReader(const std::atomic<bool>& stop) : stop_(stop) {}

  // Sets `*line` to the next line without its '\n'. Returns false at end of
  // input (a last line without '\n' still counts), on a read error or once
  // `stop` is set.
  bool Next(std::string* line);

 private:
  const std::atomic<bool>& stop_;
  std::string buffer_;
  bool eof_ = false;
};

}  // namespace fabric::cli

#endif  // FABRIC_TOOLS_CLI_INPUT_H_
