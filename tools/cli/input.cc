// SPDX-License-Identifier: Apache-2.0
#include "tools/cli/input.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace fabric::cli {
namespace {

constexpr absl::Duration kSlice = absl::Milliseconds(100);
constexpr int64_t kMaxByteSize = int64_t{1} << 62;

struct Unit {
  const char* name;
  int64_t factor;
};
constexpr Unit kUnits[] = {
    {"", 1},
    {"b", 1},
    {"k", int64_t{1} << 10},
    {"kib", int64_t{1} << 10},
    {"m", int64_t{1} << 20},
    {"mib", int64_t{1} << 20},
    {"g", int64_t{1} << 30},
    {"gib", int64_t{1} << 30},
    {"t", int64_t{1} << 40},
    {"tib", int64_t{1} << 40},
    {"kb", 1000},
    {"mb", 1000 * 1000},
    {"gb", 1000 * 1000 * 1000},
    {"tb", int64_t{1000} * 1000 * 1000 * 1000},
};

// A --file must be a regular file of at most `max_body` bytes.
absl::Status CheckBodyFileStat(const std::string& path, const struct stat& st,
                               size_t max_body) {
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--file ", path, ": not a regular file"));
  }
  if (static_cast<uint64_t>(st.st_size) > max_body) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--file ", path, ": ", st.st_size,
        " bytes is more than one message may carry (", max_body, ")"));
  }
  return absl::OkStatus();
}

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

absl::StatusOr<int64_t> ParseByteSize(absl::string_view flag,
                                      absl::string_view text) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  size_t digits = 0;
  while (digits < trimmed.size() &&
         (absl::ascii_isdigit(static_cast<unsigned char>(trimmed[digits])) ||
          trimmed[digits] == '.')) {
    ++digits;
  }
  const absl::string_view number = trimmed.substr(0, digits);
  const std::string unit =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(trimmed.substr(digits)));
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": '", text,
                     "' is not a size (bytes, or with a unit: 64k, 512KiB, "
                     "16MiB, 1GiB, 10MB)"));
  };
  if (number.empty()) return bad();
  const Unit* found = nullptr;
  for (const Unit& u : kUnits) {
    if (unit == u.name) found = &u;
  }
  if (found == nullptr) return bad();
  // Whole and fraction digits as integers: exact for decimal units.
  const size_t dot = number.find('.');
  const absl::string_view whole_digits = number.substr(0, dot);
  const absl::string_view fraction_digits = dot == absl::string_view::npos
                                                ? absl::string_view()
                                                : number.substr(dot + 1);
  if (whole_digits.empty() && fraction_digits.empty()) return bad();
  if (fraction_digits.find('.') != absl::string_view::npos) return bad();
  if (dot != absl::string_view::npos &&
      (found->factor == 1 || fraction_digits.empty() ||
       fraction_digits.size() > 18)) {
    return bad();
  }
  int64_t whole = 0;
  if (!whole_digits.empty() && !absl::SimpleAtoi(whole_digits, &whole)) {
    return bad();
  }
  if (whole > kMaxByteSize / found->factor) return bad();
  int64_t result = whole * found->factor;
  if (!fraction_digits.empty()) {
    int64_t fraction = 0;
    if (!absl::SimpleAtoi(fraction_digits, &fraction)) return bad();
    __int128 scale = 1;
    for (size_t i = 0; i < fraction_digits.size(); ++i) scale *= 10;
    result += static_cast<int64_t>(static_cast<__int128>(fraction) *
                                   found->factor / scale);
    if (result > kMaxByteSize) return bad();
  }
  return result;
}

bool StdinIsData() {
  struct stat st;
  if (fstat(STDIN_FILENO, &st) != 0) return false;
  return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISREG(st.st_mode);
}

absl::StatusOr<InputMode> ChooseInput(const InputFlags& f, bool stdin_is_data) {
  const int named = (f.messages.empty() ? 0 : 1) + (f.count >= 0 ? 1 : 0) +
                    (f.files.empty() ? 0 : 1) + (f.stdin_raw ? 1 : 0);
  if (named > 1) {
    return absl::InvalidArgumentError(
        "give one of MSG..., --count, --file and --stdin-raw");
  }
  if (f.size >= 0 && f.count < 0) {
    return absl::InvalidArgumentError("--size needs --count");
  }
  if (f.count < -1) {
    return absl::InvalidArgumentError("--count must not be negative");
  }
  if (f.stdin_raw && f.no_stdin) {
    return absl::InvalidArgumentError("--stdin-raw and --no-stdin conflict");
  }
  if (!f.messages.empty()) return InputMode::kArgs;
  if (f.count >= 0) return InputMode::kCount;
  if (!f.files.empty()) return InputMode::kFiles;
  if (f.stdin_raw) return InputMode::kStdinRaw;
  if (!f.no_stdin && stdin_is_data) return InputMode::kStdinLines;
  return InputMode::kNone;
}

absl::StatusOr<InputMode> ResolveInput(const InputFlags& in,
                                       const std::string& size_text,
                                       size_t max_body, absl::string_view per,
                                       InputFlags* out) {
  *out = in;
  if (!size_text.empty()) {
    absl::StatusOr<int64_t> size = ParseByteSize("--size", size_text);
    if (!size.ok()) return size.status();
    out->size = *size;
  }
  absl::StatusOr<InputMode> mode = ChooseInput(*out, StdinIsData());
  if (!mode.ok()) return mode;
  if (out->size > static_cast<int64_t>(max_body)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--size: at most ", max_body, " bytes per ", per));
  }
  return mode;
}

absl::StatusOr<std::string> ReadBodyFile(const std::string& path,
                                         size_t max_body) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("--file ", path));
  std::string body;
  absl::Status status;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    status = absl::ErrnoToStatus(errno, absl::StrCat("--file ", path));
  } else if (status = CheckBodyFileStat(path, st, max_body); status.ok()) {
    body.resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < body.size()) {
      const ssize_t n = read(fd, body.data() + done, body.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        status = absl::ErrnoToStatus(errno, absl::StrCat("--file ", path));
        break;
      }
      if (n == 0) {
        body.resize(done);  // the file shrank while we read it
        break;
      }
      done += static_cast<size_t>(n);
    }
  }
  close(fd);
  if (!status.ok()) return status;
  return body;
}

absl::Status CheckFiles(const std::vector<std::string>& files,
                        size_t max_body) {
  for (const std::string& path : files) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("--file ", path));
    }
    if (absl::Status s = CheckBodyFileStat(path, st, max_body); !s.ok()) {
      return s;
    }
    if (access(path.c_str(), R_OK) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("--file ", path));
    }
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

bool StdinReader::Fill() {
  for (;;) {
    if (eof_ || stop_()) return false;
    const absl::Duration left = deadline_ - absl::Now();
    if (left <= absl::ZeroDuration()) {
      status_ = absl::DeadlineExceededError(
          "--timeout passed while waiting for input on stdin");
      return false;
    }
    pollfd pfd = {fd_, POLLIN, 0};
    const int wait_ms =
        static_cast<int>(absl::ToInt64Milliseconds(std::min(kSlice, left)) + 1);
    const int ready = poll(&pfd, 1, wait_ms);
    if (ready < 0 && errno != EINTR) {
      status_ = absl::ErrnoToStatus(errno, "waiting for stdin");
      return false;
    }
    if (ready <= 0) continue;
    char chunk[65536];
    const ssize_t n = read(fd_, chunk, sizeof(chunk));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) {
      status_ = absl::ErrnoToStatus(errno, "reading stdin");
      return false;
    }
    if (n == 0) {
      eof_ = true;
      return false;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }
}

bool StdinReader::NextLine(size_t max_line, std::string* line) {
  size_t searched = 0;
  for (;;) {
    const size_t nl = buffer_.find('\n', searched);
    const size_t length = nl == std::string::npos ? buffer_.size() : nl;
    if (length > max_line) {
      status_ = absl::ResourceExhaustedError(absl::StrCat(
          "stdin line ", lines_ + 1, " is longer than one message may carry (",
          max_line, " bytes)"));
      return false;
    }
    if (nl != std::string::npos) {
      line->assign(buffer_, 0, nl);
      buffer_.erase(0, nl + 1);
      ++lines_;
      return true;
    }
    searched = buffer_.size();
    if (!Fill()) {
      if (!eof_ || buffer_.empty()) return false;
      line->swap(buffer_);
      buffer_.clear();
      ++lines_;
      return true;
    }
  }
}

bool StdinReader::ReadAll(size_t max_body, std::string* body) {
  while (Fill()) {
    if (buffer_.size() > max_body) {
      status_ = absl::ResourceExhaustedError(
          absl::StrCat("stdin holds more than one message may carry (",
                       max_body, " bytes)"));
      return false;
    }
  }
  if (!eof_) return false;  // stopped, deadline or error
  body->swap(buffer_);
  buffer_.clear();
  return true;
}

bool BodySource::Next(std::string* body) {
  if (!status_.ok()) return false;
  switch (mode_) {
    case InputMode::kArgs:
      if (index_ >= static_cast<int64_t>(flags_.messages.size())) return false;
      *body = flags_.messages[static_cast<size_t>(index_)];
      break;
    case InputMode::kCount:
      if (index_ >= flags_.count) return false;
      *body = GeneratedBody(index_ + 1, flags_.size);
      break;
    case InputMode::kFiles: {
      if (index_ >= static_cast<int64_t>(flags_.files.size())) return false;
      absl::StatusOr<std::string> read =
          ReadBodyFile(flags_.files[static_cast<size_t>(index_)], max_body_);
      if (!read.ok()) {
        status_ = read.status();
        return false;
      }
      *body = *std::move(read);
      break;
    }
    case InputMode::kStdinLines:
      if (!stdin_.NextLine(max_body_, body)) {
        status_ = stdin_.status();
        return false;
      }
      break;
    case InputMode::kStdinRaw:
      if (index_ > 0) return false;
      if (!stdin_.ReadAll(max_body_, body)) {
        status_ = stdin_.status();
        return false;
      }
      break;
    case InputMode::kNone:
      return false;
  }
  ++index_;
  return true;
}

int64_t ExpectedBodies(const InputFlags& flags, InputMode mode) {
  switch (mode) {
    case InputMode::kArgs:
      return static_cast<int64_t>(flags.messages.size());
    case InputMode::kCount:
      return flags.count;
    case InputMode::kFiles:
      return static_cast<int64_t>(flags.files.size());
    case InputMode::kStdinRaw:
      return 1;
    case InputMode::kNone:
      return 0;
    case InputMode::kStdinLines:
      break;
  }
  return -1;
}

}  // namespace fabric::cli
