// SPDX-License-Identifier: Apache-2.0
// The log sink (fabric/log.h) and the FABRIC_LOG macro (fabric/base/log.h).
#include "fabric/log.h"

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "fabric/base/log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fabric {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;

struct Entry {
  LogLevel level;
  std::string component;
  std::string message;
  bool operator==(const Entry&) const = default;
};

void PrintTo(const Entry& e, std::ostream* os) {
  *os << "{" << LogLevelName(e.level) << " [" << e.component << "] "
      << e.message << "}";
}

// Records what a sink receives. Thread-safe.
class Recorder {
 public:
  LogSink Sink() {
    return [this](LogLevel level, absl::string_view component,
                  absl::string_view message) {
      absl::MutexLock lock(&mu_);
      entries_.push_back(
          Entry{level, std::string(component), std::string(message)});
    };
  }
  std::vector<Entry> entries() {
    absl::MutexLock lock(&mu_);
    return entries_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
};

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override { SetLogLevel(LogLevel::kDebug); }
  void TearDown() override {
    SetLogSink(nullptr);
    SetLogLevel(LogLevel::kWarning);
  }
};

TEST(LogLevelTest, ParsesAndNames) {
  EXPECT_EQ(*ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_EQ(*ParseLogLevel("INFO"), LogLevel::kInfo);
  EXPECT_EQ(*ParseLogLevel("warn"), LogLevel::kWarning);
  EXPECT_EQ(*ParseLogLevel("warning"), LogLevel::kWarning);
  EXPECT_EQ(*ParseLogLevel("error"), LogLevel::kError);
  EXPECT_EQ(*ParseLogLevel("off"), LogLevel::kOff);
  absl::StatusOr<LogLevel> bad = ParseLogLevel("bogus");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("bogus"));
  EXPECT_EQ(LogLevelName(LogLevel::kWarning), "WARN");
  EXPECT_EQ(LogLevelName(LogLevel::kError), "ERROR");
}

TEST_F(LogTest, SinkReceivesLevelComponentAndMessage) {
  Recorder recorder;
  SetLogSink(recorder.Sink());
  FABRIC_LOG(kWarning, kSpool, "FAB-TEST-ONE ", 42, " x");
  FABRIC_LOG(kDebug, kWorkQueue, "FAB-TEST-TWO");
  EXPECT_THAT(
      recorder.entries(),
      ElementsAre(Entry{LogLevel::kWarning, "spool", "FAB-TEST-ONE 42 x"},
                  Entry{LogLevel::kDebug, "work_queue", "FAB-TEST-TWO"}));
}

TEST_F(LogTest, LevelFilterApplies) {
  Recorder recorder;
  SetLogSink(recorder.Sink());
  SetLogLevel(LogLevel::kError);
  int evaluated = 0;
  auto count = [&] { return ++evaluated; };
  FABRIC_LOG(kWarning, kNode, "FAB-TEST-DROPPED ", count());
  FABRIC_LOG(kError, kNode, "FAB-TEST-KEPT ", count());
  SetLogLevel(LogLevel::kOff);
  FABRIC_LOG(kError, kNode, "FAB-TEST-OFF ", count());
  EXPECT_EQ(evaluated, 1);  // arguments of disabled lines are not evaluated
  EXPECT_THAT(recorder.entries(),
              ElementsAre(Entry{LogLevel::kError, "node", "FAB-TEST-KEPT 1"}));
}

TEST_F(LogTest, ReplacingAndResettingTheSink) {
  Recorder first;
  Recorder second;
  SetLogSink(first.Sink());
  FABRIC_LOG(kInfo, kPubSub, "FAB-TEST-A");
  SetLogSink(second.Sink());
  FABRIC_LOG(kInfo, kPubSub, "FAB-TEST-B");
  SetLogSink(nullptr);
  ::testing::internal::CaptureStderr();
  FABRIC_LOG(kWarning, kTopicLog, "FAB-TEST-C on stderr");
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(first.entries(),
              ElementsAre(Entry{LogLevel::kInfo, "pubsub", "FAB-TEST-A"}));
  EXPECT_THAT(second.entries(),
              ElementsAre(Entry{LogLevel::kInfo, "pubsub", "FAB-TEST-B"}));
  EXPECT_THAT(err, MatchesRegex("WARN [0-9][0-9]:[0-9][0-9]:[0-9][0-9]\\."
                                "[0-9][0-9][0-9] \\[topic_log\\] "
                                "FAB-TEST-C on stderr\n"));
}

TEST_F(LogTest, OldSinkIsDestroyedWhenReplaced) {
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  SetLogSink([token](LogLevel, absl::string_view, absl::string_view) {});
  token.reset();
  EXPECT_FALSE(watch.expired());
  SetLogSink(nullptr);
  EXPECT_TRUE(watch.expired());
}

// Several threads log without pause while the main thread swaps sinks. Each
// sink is retired right after the SetLogSink that replaces it returns; a call
// of a retired sink, or one still running when it was retired, is counted.
TEST_F(LogTest, OldSinkIsNeverCalledAfterReplacementUnderConcurrency) {
  struct SinkState {
    std::atomic<int> calls{0};
    std::atomic<bool> retired{false};
    std::atomic<int> late{0};
  };
  constexpr int kThreads = 4;
  constexpr int kSwaps = 50;
  std::vector<std::unique_ptr<SinkState>> states;
  std::atomic<bool> stop{false};
  std::atomic<long> lines{0};
  std::vector<std::thread> loggers;
  for (int t = 0; t < kThreads; ++t) {
    loggers.emplace_back([&, t] {
      while (!stop.load()) {
        FABRIC_LOG(kInfo, kNode, "FAB-TEST-LOOP ", t);
        lines.fetch_add(1);
      }
    });
  }
  SinkState* previous = nullptr;
  for (int i = 0; i < kSwaps; ++i) {
    states.push_back(std::make_unique<SinkState>());
    SinkState* s = states.back().get();
    SetLogSink([s](LogLevel, absl::string_view, absl::string_view) {
      if (s->retired.load()) s->late.fetch_add(1);
      s->calls.fetch_add(1);
      std::this_thread::yield();  // widen the window of a call in flight
      if (s->retired.load()) s->late.fetch_add(1);
    });
    if (previous != nullptr) previous->retired.store(true);
    // Let the loggers reach this sink before the next swap (no timing:
    // they log without pause, so this ends).
    while (s->calls.load() < kThreads) std::this_thread::yield();
    previous = s;
  }
  stop.store(true);
  for (std::thread& t : loggers) t.join();
  int late = 0;
  for (const auto& s : states) {
    late += s->late.load();
    EXPECT_GE(s->calls.load(), kThreads);
  }
  EXPECT_EQ(late, 0);
  EXPECT_GT(lines.load(), kSwaps);
}

TEST_F(LogTest, LineLoggedFromInsideTheSinkGoesToStderr) {
  Recorder recorder;
  LogSink record = recorder.Sink();
  SetLogSink([record](LogLevel level, absl::string_view component,
                      absl::string_view message) {
    record(level, component, message);
    FABRIC_LOG(kWarning, kNode, "FAB-TEST-NESTED from the sink");
  });
  ::testing::internal::CaptureStderr();
  FABRIC_LOG(kInfo, kReqRep, "FAB-TEST-OUTER");
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(recorder.entries(),
              ElementsAre(Entry{LogLevel::kInfo, "reqrep", "FAB-TEST-OUTER"}));
  EXPECT_THAT(err, HasSubstr("[node] FAB-TEST-NESTED from the sink\n"));
}

TEST_F(LogTest, SetLogSinkFromInsideTheSinkIsIgnored) {
  Recorder recorder;
  Recorder other;
  LogSink record = recorder.Sink();
  LogSink replacement = other.Sink();
  SetLogSink([record, replacement](LogLevel level, absl::string_view component,
                                   absl::string_view message) {
    record(level, component, message);
    SetLogSink(replacement);
  });
  ::testing::internal::CaptureStderr();
  FABRIC_LOG(kInfo, kRelay, "FAB-TEST-1");
  FABRIC_LOG(kInfo, kRelay, "FAB-TEST-2");
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(recorder.entries(),
              ElementsAre(Entry{LogLevel::kInfo, "relay", "FAB-TEST-1"},
                          Entry{LogLevel::kInfo, "relay", "FAB-TEST-2"}));
  EXPECT_THAT(other.entries(), IsEmpty());
  EXPECT_THAT(err, HasSubstr("[log] FAB-LOG-SINK-REENTRANT"));
}

TEST_F(LogTest, ThrowingSinkFallsBackToStderr) {
  int calls = 0;
  SetLogSink([&calls](LogLevel, absl::string_view, absl::string_view) {
    ++calls;
    throw std::runtime_error("sink failure");
  });
  ::testing::internal::CaptureStderr();
  FABRIC_LOG(kError, kSpool, "FAB-TEST-THROWN");
  FABRIC_LOG(kError, kSpool, "FAB-TEST-THROWN-AGAIN");
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(calls, 2);  // the sink stays installed
  EXPECT_THAT(err, HasSubstr("ERROR "));
  EXPECT_THAT(err, HasSubstr("[spool] FAB-TEST-THROWN\n"));
  EXPECT_THAT(err, HasSubstr("[spool] FAB-TEST-THROWN-AGAIN\n"));
  EXPECT_THAT(err, HasSubstr("[log] FAB-LOG-SINK-THREW"));
}

}  // namespace
}  // namespace fabric
