// SPDX-License-Identifier: Apache-2.0
// A plain driver for the fuzz harnesses where libFuzzer is not linked (g++
// builds): runs `LLVMFuzzerTestOneInput` once over every file named on the
// command line, or in a directory named there, in name order. A broken
// invariant aborts, as under libFuzzer; ctest runs it over each target's
// corpus and regression inputs (tests/fuzz/README.md).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

// Returns the regular files `arg` names: itself, or a directory's files.
std::vector<fs::path> Inputs(const fs::path& arg) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (!fs::is_directory(arg, ec)) {
    files.push_back(arg);
    return files;
  }
  for (const fs::directory_entry& e : fs::directory_iterator(arg, ec)) {
    if (e.is_regular_file(ec)) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

int main(int argc, char** argv) {
  size_t runs = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.empty() || arg[0] == '-') continue;  // libFuzzer flags
    for (const fs::path& file : Inputs(arg)) {
      std::ifstream in(file, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "cannot read %s\n", file.c_str());
        return 1;
      }
      const std::string data((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
      std::fprintf(stderr, "running %s (%zu bytes)\n", file.c_str(),
                   data.size());
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()),
                             data.size());
      ++runs;
    }
  }
  std::fprintf(stderr, "ran %zu inputs\n", runs);
  return 0;
}
