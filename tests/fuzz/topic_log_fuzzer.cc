// SPDX-License-Identifier: Apache-2.0
// libFuzzer target over the topic log's readers (fabric/spool/topic_log.h):
// recovery of a log directory (META, segments, records; docs/spool.md
// section 7) and reads by seq and by time. The input drives a builder that
// writes META and one to three segments of framed ENQ records into an
// in-memory file system (spool/internal/mem_file_system.h), damaged where
// the input says; the log is then opened and read from the start in small
// chunks, as a replaying subscriber does. Every message recovery counted
// must be read exactly once, in seq order, and decode; an append after
// recovery gets the next seq and reads back. Build and run:
// tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "fabric/log.h"
#include "fabric/spool/internal/file_util.h"
#include "fabric/spool/internal/mem_file_system.h"
#include "fabric/spool/internal/meta.h"
#include "fabric/spool/internal/payload.h"
#include "fabric/spool/internal/spool_format.h"
#include "fabric/spool/topic_log.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/segment_builder.h"

namespace {

namespace si = ::fabric::spool_internal;
using ::fabric_fuzz::FieldReader;

constexpr char kDir[] = "/log";
constexpr char kTopic[] = "fuzz";

// Writes META as the input says: the log's own, another topic's, a newer
// format's, raw bytes, or none.
void WriteMeta(FieldReader& in, si::MemFileSystem& fs) {
  si::Meta meta;
  meta.producer_id = in.Id();
  meta.queue = absl::StrCat("topic:", kTopic);
  meta.version = si::kFormatVersion;
  meta.created = absl::FromUnixMicros(in.U32());
  const std::string path = si::JoinPath(kDir, si::kMetaFileName);
  switch (in.U8() % 8) {
    case 0:
      return;  // rebuilt from the segments
    case 1:
      meta.queue = "topic:other";
      break;
    case 2:
      meta.version = si::kFormatVersion + 1;
      break;
    case 3:
      fs.WriteForTest(path, in.String());
      return;
    default:
      break;
  }
  fs.WriteForTest(path, si::EncodeMeta(meta));
}

// Reads the whole log from its first seq in chunks the input sizes, and
// returns how many messages it read.
uint64_t ReadAll(FieldReader& in, const fabric::TopicLog& log) {
  const size_t max_entries = 1 + in.U8() % 4;
  const size_t max_bytes = 1 + in.U8();
  uint64_t from = 1;
  uint64_t last = 0;
  uint64_t read = 0;
  for (;;) {
    fabric::TopicLogRead chunk;
    const absl::Status status = log.Read(from, max_entries, max_bytes, &chunk);
    FABRIC_FUZZ_REQUIRE(status.ok());
    FABRIC_FUZZ_REQUIRE(chunk.entries.size() <= max_entries);
    for (const std::string& entry : chunk.entries) {
      absl::StatusOr<fabric::SpooledTask> task =
          fabric::TopicLog::DecodeEntry(entry);
      FABRIC_FUZZ_REQUIRE(task.ok());
      FABRIC_FUZZ_REQUIRE(task->seq > last && task->seq >= from &&
                          task->seq <= chunk.durable_seq);
      last = task->seq;
      ++read;
    }
    FABRIC_FUZZ_REQUIRE(chunk.next >= from);
    if (!chunk.entries.empty()) FABRIC_FUZZ_REQUIRE(chunk.next == last + 1);
    // Nothing from `from` on, and no later seq to go on at: a replaying
    // subscriber takes everything up to the durable end as lost, so no
    // message recovery counted may lie there (the caller checks the count).
    if (from > chunk.durable_seq ||
        (chunk.entries.empty() && chunk.next == from)) {
      break;
    }
    from = chunk.next;
  }
  return read;
}

void FuzzTopicLog(absl::string_view input) {
  FieldReader in(input);
  si::MemFileSystem fs;
  si::ScopedFileSystem use(&fs);
  WriteMeta(in, fs);
  uint64_t number = 1 + in.U8() % 4;
  uint64_t lsn = 1;
  uint64_t seq = 1;
  for (int n = 1 + in.U8() % 3; n > 0; --n) {
    const fabric_fuzz::BuiltSegment seg = fabric_fuzz::BuildSegment(
        in, number, &lsn, &seq, /*enq_only=*/true, /*max_records=*/12);
    fs.WriteForTest(si::JoinPath(kDir, si::SegmentFileName(number)), seg.image);
    number += 1 + in.U8() % 2;
  }

  fabric::TopicLogOptions options;
  options.dir = kDir;
  options.topic = kTopic;
  options.segment_bytes = 4096;
  absl::StatusOr<std::unique_ptr<fabric::TopicLog>> opened =
      fabric::TopicLog::Open(options);
  if (!opened.ok()) {
    // Another topic's directory, or a newer format: nothing else refuses.
    FABRIC_FUZZ_REQUIRE(absl::IsFailedPrecondition(opened.status()) ||
                        absl::IsUnimplemented(opened.status()));
    return;
  }
  fabric::TopicLog& log = **opened;
  const fabric::TopicLogReport& report = log.recovery();
  FABRIC_FUZZ_REQUIRE(report.first_seq <= report.next_seq);
  FABRIC_FUZZ_REQUIRE(log.next_seq() == report.next_seq);
  FABRIC_FUZZ_REQUIRE(log.durable_seq() + 1 == report.next_seq);
  FABRIC_FUZZ_REQUIRE(ReadAll(in, log) == report.messages);

  absl::StatusOr<uint64_t> at =
      log.SeqAtTime(absl::FromUnixMicros(static_cast<int64_t>(in.U64())));
  FABRIC_FUZZ_REQUIRE(at.ok() && *at >= log.first_seq() &&
                      *at <= log.durable_seq() + 1);

  const std::string body = in.String();
  absl::StatusOr<uint64_t> appended =
      log.Append(absl::FromUnixMicros(1), {}, body);
  FABRIC_FUZZ_REQUIRE(appended.ok() && *appended == report.next_seq);
  FABRIC_FUZZ_REQUIRE(log.Flush(absl::Seconds(30)).ok());
  fabric::TopicLogRead chunk;
  FABRIC_FUZZ_REQUIRE(log.Read(*appended, 1, 1, &chunk).ok());
  FABRIC_FUZZ_REQUIRE(chunk.entries.size() == 1);
  absl::StatusOr<fabric::SpooledTask> task =
      fabric::TopicLog::DecodeEntry(chunk.entries[0]);
  FABRIC_FUZZ_REQUIRE(task.ok() && task->seq == *appended &&
                      task->body == body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Recovery reports damage as warnings: expected here, and slow to print.
  static const bool quiet = [] {
    fabric::SetLogLevel(fabric::LogLevel::kOff);
    return true;
  }();
  (void)quiet;
  FuzzTopicLog(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
