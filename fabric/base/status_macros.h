// SPDX-License-Identifier: Apache-2.0
// Status propagation macros and `Annotate()`. They mirror ABSL_RETURN_IF_ERROR
// and ABSL_ASSIGN_OR_RETURN from newer Abseil releases, which Debian 12's
// Abseil 20220623 lacks; they become aliases once we upgrade.
#ifndef FABRIC_BASE_STATUS_MACROS_H_
#define FABRIC_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace fabric {

// Returns `status` with `context` prepended to its message ("context: msg"),
// keeping the code. An OK status is returned unchanged.
inline absl::Status Annotate(const absl::Status& status,
                             absl::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat(context, ": ", status.message()));
}

}  // namespace fabric

#define FABRIC_STATUS_MACROS_CONCAT_INNER_(x, y) x##y
#define FABRIC_STATUS_MACROS_CONCAT_(x, y) \
  FABRIC_STATUS_MACROS_CONCAT_INNER_(x, y)

// Evaluates `expr` (an absl::Status) and returns it from the enclosing
// function when it is not OK.
#define FABRIC_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    const ::absl::Status fabric_status_ = (expr);    \
    if (!fabric_status_.ok()) return fabric_status_; \
  } while (0)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, else
// moves the value into `lhs` (which may be a declaration: `auto x`).
#define FABRIC_ASSIGN_OR_RETURN(lhs, rexpr) \
  FABRIC_ASSIGN_OR_RETURN_IMPL_(            \
      FABRIC_STATUS_MACROS_CONCAT_(fabric_statusor_, __LINE__), lhs, rexpr)

#define FABRIC_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                  \
  if (!statusor.ok()) return std::move(statusor).status();  \
  lhs = std::move(statusor).value()

#endif  // FABRIC_BASE_STATUS_MACROS_H_
