// SPDX-License-Identifier: Apache-2.0
// The power-loss models the crash-point explorations apply after each crash
// point (fabric/spool/crash_points_test.cc for the logs,
// fabric/spool/position_file_crash_points_test.cc for subscriber
// positions; docs/spool.md section 13), and the quick/full switch
// (FABRIC_CRASH_POINTS=full). Test-only; header-only.
#ifndef FABRIC_SPOOL_INTERNAL_CRASH_MODELS_H_
#define FABRIC_SPOOL_INTERNAL_CRASH_MODELS_H_

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "fabric/spool/internal/mem_file_system.h"

namespace fabric::spool_internal::testing {

// Whether FABRIC_CRASH_POINTS=full (`tools/dev crash-points`) asks for the
// full exploration rather than the quick one CI runs.
inline bool FullPass() {
  const char* v = std::getenv("FABRIC_CRASH_POINTS");
  return v != nullptr && absl::string_view(v) == "full";
}

// How many times each exploration runs (a writer thread batches, and so
// numbers its operations, a little differently each time).
inline uint64_t Rounds() { return FullPass() ? 5 : 1; }

struct Model {
  std::string name;
  PowerLossModel loss;
  bool process_crash_only = false;  // nothing unsynced is lost
};

// The models for crash point `n` (the torn byte varies with n): a process
// crash; every unsynced write dropped, with and without the unsynced
// directory entries; the last write torn at a byte, its rest absent, zeros
// or garbage.
inline std::vector<Model> Models(uint64_t n) {
  std::vector<Model> models;
  PowerLossModel keep;
  keep.data = DataLoss::kKeepAll;
  keep.drop_unsynced_entries = false;
  models.push_back({"process-crash", keep, true});
  PowerLossModel drop;
  drop.data = DataLoss::kDropUnsynced;
  models.push_back({"power-loss", drop, false});
  PowerLossModel data_only = drop;
  data_only.drop_unsynced_entries = false;
  models.push_back({"power-loss-data-only", data_only, false});
  const TornFill fills[] = {TornFill::kAbsent, TornFill::kZeros,
                            TornFill::kGarbage};
  // The quick pass tears at one byte that varies with n; the full pass at
  // each of these too: inside and at the edges of a record header (28
  // bytes), a RESERVE record (40), a segment header (80) and a task.
  std::vector<uint64_t> keeps = {(n * 37) % 230};
  if (FullPass()) {
    for (uint64_t k : {0, 1, 27, 28, 29, 39, 40, 41, 79, 80, 81, 150, 229}) {
      keeps.push_back(k);
    }
  }
  for (uint64_t keep : keeps) {
    for (TornFill fill : fills) {
      PowerLossModel torn;
      torn.data = DataLoss::kTearLast;
      torn.tear_keep = keep;
      torn.fill = fill;
      torn.garbage_seed = n * 1000 + keep;
      models.push_back(
          {absl::StrCat("torn-", static_cast<int>(fill), "-at-", keep), torn,
           false});
    }
  }
  return models;
}

}  // namespace fabric::spool_internal::testing

#endif  // FABRIC_SPOOL_INTERNAL_CRASH_MODELS_H_
