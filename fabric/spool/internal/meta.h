// SPDX-License-Identifier: Apache-2.0
// The META file: the spool's identity (producer id, queue, format version),
// written once at creation through tmp -> fdatasync -> rename -> fsync(dir).
#ifndef FABRIC_SPOOL_INTERNAL_META_H_
#define FABRIC_SPOOL_INTERNAL_META_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fabric/base/node_id.h"

namespace fabric::spool_internal {

struct Meta {
  NodeId producer_id;
  std::string queue;
  uint32_t version = 0;
  absl::Time created;
};

std::string EncodeMeta(const Meta& meta);
// Returns kDataLoss naming the problem for a damaged file and kUnimplemented
// for a newer format version.
absl::StatusOr<Meta> DecodeMeta(absl::string_view data);

}  // namespace fabric::spool_internal

#endif  // FABRIC_SPOOL_INTERNAL_META_H_
