// SPDX-License-Identifier: Apache-2.0
// gMock matchers for absl::Status / StatusOr, which Abseil 20220623 lacks:
// IsOk(), StatusIs(code), IsOkAndHolds(m), FABRIC_ASSERT_OK(expr) and
// FABRIC_ASSERT_OK_AND_ASSIGN(lhs, expr). There is deliberately no "not OK"
// matcher: failures assert a specific code.
#ifndef FABRIC_TESTS_TESTING_STATUS_MATCHERS_H_
#define FABRIC_TESTS_TESTING_STATUS_MATCHERS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fabric::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = GetStatus(arg);
  if (!s.ok()) *result_listener << "status is " << s.ToString();
  return s.ok();
}

MATCHER_P(StatusIs, code,
          "has code " + std::string(absl::StatusCodeToString(code))) {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s.ToString();
  return s.code() == code;
}

// StatusIs(code, message_matcher): the code, and a message that matches
// (e.g. HasSubstr("FAB-SEC-KEY-PERMS")).
MATCHER_P2(StatusIs, code, message_matcher,
           "has code " + std::string(absl::StatusCodeToString(code)) +
               " and a matching message") {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s.ToString();
  return s.code() == code &&
         ::testing::ExplainMatchResult(
             message_matcher, std::string(s.message()), result_listener);
}

MATCHER_P(IsOkAndHolds, matcher, "is OK and holds a matching value") {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status().ToString();
    return false;
  }
  return ::testing::ExplainMatchResult(matcher, *arg, result_listener);
}

}  // namespace fabric::testing

#define FABRIC_ASSERT_OK(expr) ASSERT_THAT((expr), ::fabric::testing::IsOk())
#define FABRIC_EXPECT_OK(expr) EXPECT_THAT((expr), ::fabric::testing::IsOk())

#define FABRIC_TESTING_CONCAT_INNER_(x, y) x##y
#define FABRIC_TESTING_CONCAT_(x, y) FABRIC_TESTING_CONCAT_INNER_(x, y)
#define FABRIC_ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  FABRIC_ASSERT_OK_AND_ASSIGN_IMPL_(            \
      FABRIC_TESTING_CONCAT_(fabric_statusor_, __LINE__), lhs, rexpr)
#define FABRIC_ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                      \
  ASSERT_THAT(statusor, ::fabric::testing::IsOk());             \
  lhs = std::move(statusor).value()

#endif  // FABRIC_TESTS_TESTING_STATUS_MATCHERS_H_
