// SPDX-License-Identifier: Apache-2.0
#include "fabric/base/thread_name.h"

#include <pthread.h>

#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace fabric {
namespace {

// Runs `name_it` on a new thread and returns the name the kernel then holds.
template <typename F>
std::string NameAfter(F name_it) {
  std::string name;
  std::thread t([&] {
    name_it();
    char buf[64] = {};
    if (pthread_getname_np(pthread_self(), buf, sizeof(buf)) == 0) name = buf;
  });
  t.join();
  return name;
}

TEST(ThreadNameTest, SetsTheName) {
  EXPECT_EQ(NameAfter([] { SetCurrentThreadName("fab-engine"); }),
            "fab-engine");
}

TEST(ThreadNameTest, CutsLongNamesTo15Bytes) {
  EXPECT_EQ(NameAfter([] { SetCurrentThreadName("fab-a-very-long-name"); }),
            "fab-a-very-long");
}

TEST(ThreadNameTest, AppendsTheIndex) {
  EXPECT_EQ(NameAfter([] { SetCurrentThreadName("fab-work-", 3); }),
            "fab-work-3");
  EXPECT_EQ(NameAfter([] { SetCurrentThreadName("fab-serve-", 12); }),
            "fab-serve-12");
}

TEST(ThreadNameTest, KeepsTheIndexOfALongPrefix) {
  EXPECT_EQ(NameAfter([] { SetCurrentThreadName("fab-long-prefix-", 1234); }),
            "fab-long-pr1234");
}

}  // namespace
}  // namespace fabric
