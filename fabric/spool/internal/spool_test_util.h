// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the spool tests: options for a temp directory, file
// surgery (read, write, truncate, flip bytes) and record offsets in a
// segment image. Test-only; header-only.
#ifndef FABRIC_SPOOL_INTERNAL_SPOOL_TEST_UTIL_H_
#define FABRIC_SPOOL_INTERNAL_SPOOL_TEST_UTIL_H_

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fabric/spool/internal/file_util.h"
#include "fabric/spool/internal/record.h"
#include "fabric/spool/internal/spool_format.h"
#include "fabric/spool/spool.h"
#include "tests/testing/test_util.h"

namespace fabric::spool_internal::testing {

inline SpoolOptions TestOptions(const std::string& dir,
                                FsyncPolicy policy = FsyncPolicy::kNone) {
  SpoolOptions options;
  options.dir = dir;
  options.queue = std::string("q");
  options.fsync = policy;
  return options;
}

// A body that names its task, padded to `size` bytes.
inline std::string Body(uint64_t i, size_t size = 100) {
  std::string body = absl::StrCat("task-", i, "-");
  body.resize(std::max(size, body.size()), static_cast<char>('a' + i % 26));
  return body;
}

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

inline uint64_t SizeOf(const std::string& path) {
  absl::StatusOr<FileStat> st = CurrentFileSystem()->Stat(path);
  return st.ok() ? st->size : 0;
}

// Paths of the segment files in `dir`, oldest first.
inline std::vector<std::string> SegmentPaths(const std::string& dir) {
  std::vector<std::string> paths;
  absl::StatusOr<std::vector<std::string>> names = ListDir(dir);
  if (!names.ok()) return paths;
  std::sort(names->begin(), names->end());
  for (const std::string& name : *names) {
    if (ParseSegmentFileName(name).has_value()) {
      paths.push_back(JoinPath(dir, name));
    }
  }
  return paths;
}

inline uint64_t SegmentBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const std::string& path : SegmentPaths(dir)) total += SizeOf(path);
  return total;
}

// [start, end) of each intact record in a segment image.
inline std::vector<std::pair<uint64_t, uint64_t>> RecordBounds(
    const std::string& image, uint64_t segment) {
  std::vector<std::pair<uint64_t, uint64_t>> bounds;
  WalkSegment(image, segment, kSegmentHeaderSize, [&](const RecordView& r) {
    bounds.emplace_back(r.offset, r.offset + r.size);
  });
  return bounds;
}

inline void RemoveTree(const std::string& path) {
  absl::StatusOr<std::vector<std::string>> names = ListDir(path);
  if (names.ok()) {
    for (const std::string& name : *names) RemoveTree(JoinPath(path, name));
    rmdir(path.c_str());
  } else {
    unlink(path.c_str());
  }
}

inline void CopyDir(const std::string& from, const std::string& to) {
  absl::StatusOr<std::vector<std::string>> names = ListDir(from);
  if (!names.ok()) return;
  for (const std::string& name : *names) {
    if (name == kQuarantineDirName) continue;
    WriteAll(JoinPath(to, name), ReadAll(JoinPath(from, name)));
  }
}

// A fresh directory under $TEST_TMPDIR or /tmp, removed with its contents
// at the end of the scope.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix)
      : path_(::fabric::testing::MakeTempDir(prefix)) {}
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    if (!path_.empty()) RemoveTree(path_);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace fabric::spool_internal::testing

#endif  // FABRIC_SPOOL_INTERNAL_SPOOL_TEST_UTIL_H_
