// SPDX-License-Identifier: Apache-2.0
// Message input shared by the verbs that send (push, pub, req): MSG
// arguments, generated bodies, files, stdin lines or all of stdin as one
// body, read so that neither a signal nor the run's --timeout is ever
// blocked out; --header pairs; size flags with units.
#ifndef FABRIC_TOOLS_CLI_INPUT_H_
#define FABRIC_TOOLS_CLI_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fabric/codec/control.h"

namespace fabric::cli {

// Parses KEY=VALUE pairs (from --header) into `out`.
absl::Status ParseHeaders(const std::vector<std::string>& pairs, Headers* out);

// Parses a size: a plain number of bytes, or a number with a unit. Binary
// units (as dd): K, k, KiB = 1024; M, MiB; G, GiB; T, TiB. Decimal: kB, KB =
// 1000; MB; GB; TB. "B" is bytes. A fraction is allowed with a unit larger
// than a byte ("1.5GiB", "1.005kB" = 1005), the result rounded down to
// whole bytes. Returns kInvalidArgument naming `flag` for anything else or
// a value above 2^62.
absl::StatusOr<int64_t> ParseByteSize(absl::string_view flag,
                                      absl::string_view text);

// Where the bodies of a sending verb come from, as its flags say.
struct InputFlags {
  std::vector<std::string> messages;  // MSG arguments
  int64_t count = -1;                 // --count; -1: not given
  int64_t size = -1;                  // --size in bytes; -1: not given
  std::vector<std::string> files;     // --file, one body per file
  bool stdin_raw = false;             // --stdin-raw: all of stdin, one body
  bool no_stdin = false;              // --no-stdin
};

enum class InputMode {
  kNone,        // nothing to send
  kArgs,        // the MSG arguments
  kCount,       // --count generated bodies
  kFiles,       // one body per --file
  kStdinLines,  // one body per stdin line
  kStdinRaw,    // all of stdin as one body
};

// True when stdin is data that can be read: a pipe, a socket or a regular
// file. A terminal, /dev/null and other devices, a directory or a closed
// descriptor are not, so reading is skipped as if --no-stdin were given.
bool StdinIsData();

// Picks the input mode, checking that the flags make sense together:
// at most one of MSG..., --count, --file and --stdin-raw; --size only with
// --count; --stdin-raw not with --no-stdin. Stdin lines are the mode when
// nothing else is named and `stdin_is_data`; otherwise kNone.
absl::StatusOr<InputMode> ChooseInput(const InputFlags& flags,
                                      bool stdin_is_data);

// The body source of a sending verb (push, pub): `in` with `size_text`
// (--size, units allowed) parsed into `out->size`, which must be at most
// `max_body` ("--size: at most N bytes per <per>"), and the mode
// ChooseInput picks for this process's stdin. kInvalidArgument for bad
// flags.
absl::StatusOr<InputMode> ResolveInput(const InputFlags& in,
                                       const std::string& size_text,
                                       size_t max_body, absl::string_view per,
                                       InputFlags* out);

// Checks that every --file is a readable regular file of at most
// `max_body` bytes, so a bad one fails the command before anything is
// sent. Returns kNotFound / kPermissionDenied / kFailedPrecondition naming
// the file.
absl::Status CheckFiles(const std::vector<std::string>& files, size_t max_body);

// How many bodies `mode` sends when known in advance (arguments, --count,
// files, raw stdin); -1 for stdin lines.
int64_t ExpectedBodies(const InputFlags& flags, InputMode mode);

// "msg-<i>" padded with '.' to `size` bytes (never cut).
std::string GeneratedBody(int64_t i, int64_t size);

// Returns true when reading must stop (an interrupt). Called at least every
// 100 ms while a reader waits.
using StopCheck = std::function<bool()>;

// Reads stdin (or `fd`) in slices of at most 100 ms, so that `stop` and
// `deadline` are checked while it waits for data. Thread safety:
// thread-compatible.
class StdinReader {
 public:
  StdinReader(StopCheck stop, absl::Time deadline, int fd = 0)
      : stop_(std::move(stop)), deadline_(deadline), fd_(fd) {}

  // Sets `*line` to the next line without its '\n'. Returns false at end of
  // input (a last line without '\n' still counts), once `stop` says so, at
  // the deadline, on a read error, or when a line is longer than
  // `max_line` bytes (kResourceExhausted): status() tells which.
  bool NextLine(size_t max_line, std::string* line);

  // Sets `*body` to all of the remaining input. Returns false when `stop`
  // is set, at the deadline, on a read error, or when the input holds more
  // than `max_body` bytes (kResourceExhausted): status() tells which.
  bool ReadAll(size_t max_body, std::string* body);

  // OK after a clean end of input or a stop; kDeadlineExceeded when the
  // deadline passed while waiting for input; the read(2) error otherwise.
  const absl::Status& status() const { return status_; }

 private:
  // Appends what one read returns. Returns false at the end of input or
  // when reading must stop.
  bool Fill();

  const StopCheck stop_;
  const absl::Time deadline_;
  const int fd_;
  std::string buffer_;
  bool eof_ = false;
  int64_t lines_ = 0;
  absl::Status status_;
};

// The bodies a sending verb sends, one at a time, from whichever source
// `mode` names. Thread safety: thread-compatible.
class BodySource {
 public:
  // `flags` must outlive the source. `max_body` bounds one body read from
  // a file, a stdin line or raw stdin.
  BodySource(const InputFlags& flags, InputMode mode, StopCheck stop,
             absl::Time deadline, size_t max_body)
      : flags_(flags),
        mode_(mode),
        max_body_(max_body),
        stdin_(std::move(stop), deadline) {}

  // Sets `*body` to the next body. Returns false when there is none left
  // or one could not be read: status() then tells which.
  bool Next(std::string* body);
  const absl::Status& status() const { return status_; }

 private:
  const InputFlags& flags_;
  const InputMode mode_;
  const size_t max_body_;
  StdinReader stdin_;
  int64_t index_ = 0;
  absl::Status status_;
};

// Reads the whole of file `path` (at most `max_body` bytes).
absl::StatusOr<std::string> ReadBodyFile(const std::string& path,
                                         size_t max_body);

}  // namespace fabric::cli

#endif  // FABRIC_TOOLS_CLI_INPUT_H_
