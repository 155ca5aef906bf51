// SPDX-License-Identifier: Apache-2.0
#include "tools/cli/input.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace fabric::cli {
namespace {

constexpr absl::Duration kSlice = absl::Milliseconds(100);

}  // namespace

absl::Status ParseHeaders(const std::vector<std::string>& pairs, Headers* out) {
  for (const std::string& kv : pairs) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--header wants KEY=VALUE, got '", kv, "'"));
    }
    (*out)[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return absl::OkStatus();
}

absl::Status CheckMessageSource(size_t messages, int64_t count, int64_t size) {
  if (messages > 0 && count >= 0) {
    return absl::InvalidArgumentError(
        "give either MSG... or --count, not both");
  }
  if (size >= 0 && count < 0) {
    return absl::InvalidArgumentError("--size needs --count");
  }
  if (count < -1) {
    return absl::InvalidArgumentError("--count must not be negative");
  }
  return absl::OkStatus();
}

std::string GeneratedBody(int64_t i, int64_t size) {
  std::string body = absl::StrCat("msg-", i);
  if (size > static_cast<int64_t>(body.size())) {
    body.resize(static_cast<size_t>(size), '.');
  }
  return body;
}

bool LineReader::Next(std::string* line) {
  for (;;) {
    const size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      line->assign(buffer_, 0, nl);
      buffer_.erase(0, nl + 1);
      return true;
    }
    if (eof_) {
      if (buffer_.empty()) return false;
      line->swap(buffer_);
      buffer_.clear();
      return true;
    }
    if (stop_.load()) return false;
    pollfd pfd = {STDIN_FILENO, POLLIN, 0};
    const int ready =
        poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(kSlice)));
    if (ready < 0 && errno != EINTR) return false;
    if (ready <= 0) continue;
    char chunk[65536];
    const ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof_ = true;
      continue;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

}  // namespace fabric::cli
