// SPDX-License-Identifier: Apache-2.0
// Publishers and subscribers on several nodes of one process, over real
// loopback sockets and real topic logs. Multi-process scenarios (SIGKILL,
// SIGSTOP) are in tests/integration/pubsub_cli_test.cc.
#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "fabric/spool/internal/file_system.h"
#include "fabric/spool/internal/mem_file_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "patterns/pubsub/publisher.h"
#include "patterns/pubsub/subscriber.h"
#include "tests/testing/node_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::testing::IsOk;
using ::fabric::testing::StatusIs;
using ::fabric::testing::WaitUntil;

constexpr absl::Duration kWait = absl::Seconds(30);

// What a handler saw, per stream. Thread-safe.
class Seen {
 public:
  void Add(const Message& m) {
    absl::MutexLock lock(&mu_);
    seqs_[m.topic].push_back(m.seq);
    bodies_[m.topic].push_back(m.body);
    if (m.replayed) ++replayed_;
  }
  std::vector<uint64_t> Seqs(const std::string& topic) {
    absl::MutexLock lock(&mu_);
    return seqs_[topic];
  }
  std::vector<std::string> Bodies(const std::string& topic) {
    absl::MutexLock lock(&mu_);
    return bodies_[topic];
  }
  size_t Count(const std::string& topic) { return Seqs(topic).size(); }
  uint64_t replayed() {
    absl::MutexLock lock(&mu_);
    return replayed_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, std::vector<uint64_t>> seqs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<std::string>> bodies_ ABSL_GUARDED_BY(mu_);
  uint64_t replayed_ ABSL_GUARDED_BY(mu_) = 0;
};

// 1..n with no gap and no duplicate.
bool Contiguous(const std::vector<uint64_t>& seqs, uint64_t first,
                uint64_t last) {
  if (seqs.size() != last - first + 1) return false;
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (seqs[i] != first + i) return false;
  }
  return true;
}

SubscriberOptions Prefixes(std::vector<std::string> prefixes) {
  SubscriberOptions o;
  o.prefixes = std::move(prefixes);
  return o;
}

class PubSubTest : public ::testing::Test {
 protected:
  std::unique_ptr<Node> StartNode(const std::string& name) {
    return ::fabric::testing::StartLoopbackNode(name, cluster_, port_);
  }
  std::unique_ptr<Publisher> StartPublisher(Node& node,
                                            PublisherOptions o = {}) {
    o.beat_interval = absl::Milliseconds(100);
    absl::StatusOr<std::unique_ptr<Publisher>> p =
        Publisher::Create(node, std::move(o));
    EXPECT_THAT(p, IsOk());
    return p.ok() ? std::move(*p) : nullptr;
  }
  std::unique_ptr<Subscriber> StartSubscriber(Node& node, Seen* seen,
                                              SubscriberOptions o) {
    o.handler = [seen](const Message& m) { seen->Add(m); };
    o.on_gap = [this](const GapEvent& e) { gap_events_ += e.count(); };
    absl::StatusOr<std::unique_ptr<Subscriber>> s =
        Subscriber::Create(node, std::move(o));
    EXPECT_THAT(s, IsOk());
    return s.ok() ? std::move(*s) : nullptr;
  }

  const std::string cluster_ = ::fabric::testing::UniqueClusterName("ps");
  const uint16_t port_ = ::fabric::testing::FreeUdpPort();
  std::atomic<uint64_t> gap_events_{0};
  absl::Mutex headers_mu_;
};

TEST_F(PubSubTest, SubscribersOfAPrefixGetEveryMessageInOrder) {
  auto pn = StartNode("pub");
  auto sn1 = StartNode("sub1");
  auto sn2 = StartNode("sub2");
  Seen all, orders;
  // Subscribing before any publisher exists works.
  auto s1 = StartSubscriber(*sn1, &all, Prefixes({""}));
  auto s2 = StartSubscriber(*sn2, &orders, Prefixes({"orders."}));
  auto pub = StartPublisher(*pn);
  ASSERT_THAT(pub->WaitForSubscribers(2, kWait), IsOk());
  for (int i = 1; i <= 1000; ++i) {
    ASSERT_THAT(pub->Publish("orders.eu", absl::StrCat("o", i)), IsOk());
    ASSERT_THAT(
        pub->Publish("prices", absl::StrCat("p", i), {{"k", absl::StrCat(i)}}),
        IsOk());
  }
  ASSERT_TRUE(WaitUntil(
      [&] {
        return all.Count("prices") == 1000 && all.Count("orders.eu") == 1000 &&
               orders.Count("orders.eu") == 1000;
      },
      kWait));
  EXPECT_TRUE(Contiguous(all.Seqs("prices"), 1, 1000));
  EXPECT_TRUE(Contiguous(orders.Seqs("orders.eu"), 1, 1000));
  EXPECT_EQ(orders.Count("prices"), 0u);
  EXPECT_EQ(orders.Bodies("orders.eu").back(), "o1000");
  EXPECT_EQ(s1->Stats().lost, 0u);
  EXPECT_EQ(pub->Stats().subscribers, 2u);
}

TEST_F(PubSubTest, BurstsShareFramesAndKeepEveryMessage) {
  auto pn = StartNode("pub");
  auto sn = StartNode("sub");
  Seen seen;
  std::vector<Headers> headers;
  SubscriberOptions o = Prefixes({"burst."});
  o.handler = [&](const Message& m) {
    seen.Add(m);
    if (!m.headers.empty()) {
      absl::MutexLock lock(&headers_mu_);
      headers.push_back(m.headers);
    }
  };
  absl::StatusOr<std::unique_ptr<Subscriber>> sub = Subscriber::Create(*sn, o);
  ASSERT_THAT(sub, IsOk());
  auto pub = StartPublisher(*pn);
  ASSERT_THAT(pub->WaitForSubscribers(1, kWait), IsOk());
  // Two topics interleaved, bodies from empty to beyond a batch (which goes
  // in a frame of its own), some with headers.
  const int n = 20000;
  std::vector<std::string> bodies_a, bodies_b;
  for (int i = 0; i < n; ++i) {
    const bool a = i % 3 != 0;
    std::string body = absl::StrCat(i, ":", std::string(i % 200, 'b'));
    if (i == n / 2) body = std::string(100 << 10, 'L');
    Headers h;
    if (i % 1000 == 0) h["i"] = absl::StrCat(i);
    ASSERT_THAT(pub->Publish(a ? "burst.a" : "burst.b", body, h), IsOk());
    (a ? bodies_a : bodies_b).push_back(std::move(body));
  }
  ASSERT_TRUE(WaitUntil(
      [&] {
        return seen.Count("burst.a") + seen.Count("burst.b") ==
               static_cast<size_t>(n);
      },
      kWait));
  EXPECT_EQ(seen.Bodies("burst.a"), bodies_a);
  EXPECT_EQ(seen.Bodies("burst.b"), bodies_b);
  EXPECT_TRUE(Contiguous(seen.Seqs("burst.a"), 1, bodies_a.size()));
  EXPECT_TRUE(Contiguous(seen.Seqs("burst.b"), 1, bodies_b.size()));
  {
    absl::MutexLock lock(&headers_mu_);
    EXPECT_EQ(headers.size(), static_cast<size_t>(n / 1000));
  }
  const PublisherStats ps = pub->Stats();
  EXPECT_EQ(ps.sent, static_cast<uint64_t>(n));
  // A burst shares frames: far fewer frames than messages.
  EXPECT_LT(ps.frames, ps.sent) << ps.frames;
  EXPECT_EQ((*sub)->Stats().lost, 0u);
  EXPECT_EQ((*sub)->Stats().malformed, 0u);
}

TEST_F(PubSubTest, PullModeAndAPublisherThatStartsLaterAndLeaves) {
  auto sn = StartNode("sub");
  absl::StatusOr<std::unique_ptr<Subscriber>> sub =
      Subscriber::Create(*sn, Prefixes({"t"}));
  ASSERT_THAT(sub, IsOk());
  EXPECT_THAT((*sub)->Next(absl::Milliseconds(10)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  {
    auto pn = StartNode("late");
    auto pub = StartPublisher(*pn);
    ASSERT_THAT(pub->WaitForSubscribers(1, kWait), IsOk());
    ASSERT_THAT(pub->Publish("t1", "hello", {{"a", "b"}}), IsOk());
    absl::StatusOr<Message> m = (*sub)->Next(kWait);
    ASSERT_THAT(m, IsOk());
    EXPECT_EQ(m->topic, "t1");
    EXPECT_EQ(m->body, "hello");
    EXPECT_EQ(m->headers.at("a"), "b");
    EXPECT_EQ(m->seq, 1u);
    EXPECT_FALSE(m->durable);
    EXPECT_EQ((*sub)->Stats().publishers, 1u);
  }
  // The publisher's node left: its endpoint is dropped.
  EXPECT_TRUE(
      WaitUntil([&] { return (*sub)->Stats().publishers == 0; }, kWait));
}

// The subscriber's node already knows the publisher when the subscriber
// (the node's first pub/sub object) is created: no joined event will come.
TEST_F(PubSubTest, SubscriberCreatedAfterDiscoveryFindsKnownPublishers) {
  auto pn = StartNode("pub");
  auto pub = StartPublisher(*pn);
  auto sn = StartNode("sub");
  ASSERT_TRUE(WaitUntil(
      [&] {
        absl::StatusOr<std::vector<PeerInfo>> peers = sn->Peers();
        return peers.ok() && peers->size() == 1 &&
               peers->front().offers.contains("pub");
      },
      kWait));
  Seen seen;
  auto sub = StartSubscriber(*sn, &seen, Prefixes({"t"}));
  ASSERT_THAT(sub->WaitForPublishers(1, kWait), IsOk());
  ASSERT_THAT(pub->WaitForSubscribers(1, kWait), IsOk());
  ASSERT_THAT(pub->Publish("t1", "hello"), IsOk());
  EXPECT_TRUE(WaitUntil([&] { return seen.Count("t1") == 1; }, kWait));
}

TEST_F(PubSubTest, RejectsBadTopicsAndOversizedMessages) {
  auto pn = StartNode("pub");
  PublisherOptions o;
  o.max_message_bytes = 1000;
  auto pub = StartPublisher(*pn, o);
  EXPECT_THAT(pub->Publish("", "x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(pub->Publish(std::string("a\0b", 3), "x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(pub->Publish("t", std::string(2000, 'x')),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(pub->Stats().rejected, 3u);
  PublisherOptions durable;
  durable.durable_topics = {"d"};
  EXPECT_THAT(Publisher::Create(*pn, durable),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Subscriber::Create(*pn, Prefixes({})),
              StatusIs(absl::StatusCode::kInvalidArgument));
  SubscriberOptions bad_name = Prefixes({"x"});
  bad_name.durable_name = "../etc";
  bad_name.state_dir = "/tmp";
  EXPECT_THAT(Subscriber::Create(*pn, bad_name),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(PubSubTest, AStalledSubscriberCountsItsGap) {
  auto pn = StartNode("pub");
  auto sn = StartNode("sub");
  Seen seen;
  std::atomic<bool> stall{true};
  SubscriberOptions o;
  o.prefixes = {"fast"};
  o.receive_hwm = 100;
  o.handler = [&](const Message& m) {
    // The first message blocks the subscriber thread until released.
    while (stall.load()) absl::SleepFor(absl::Milliseconds(5));
    seen.Add(m);
  };
  o.on_gap = [&](const GapEvent& e) { gap_events_ += e.count(); };
  absl::StatusOr<std::unique_ptr<Subscriber>> sub = Subscriber::Create(*sn, o);
  ASSERT_THAT(sub, IsOk());
  PublisherOptions po;
  po.send_hwm = 100;
  auto pub = StartPublisher(*pn, po);
  ASSERT_THAT(pub->WaitForSubscribers(1, kWait), IsOk());
  const std::string body(1000, 'x');
  const int total = 50000;
  for (int i = 0; i < total; ++i)
    ASSERT_THAT(pub->Publish("fast", body), IsOk());
  stall = false;
  // Everything is accounted for: delivered, or counted lost (the tail is
  // reported by the publisher's beats).
  ASSERT_TRUE(WaitUntil(
      [&] { return seen.Count("fast") + (*sub)->Stats().lost == total; },
      kWait));
  EXPECT_GT((*sub)->Stats().lost, 0u);
  EXPECT_GT((*sub)->Stats().gaps, 0u);
  EXPECT_EQ(gap_events_.load(), (*sub)->Stats().lost);
  // In order, with jumps only where gaps were reported.
  std::vector<uint64_t> seqs = seen.Seqs("fast");
  for (size_t i = 1; i < seqs.size(); ++i) ASSERT_GT(seqs[i], seqs[i - 1]);
}

TEST_F(PubSubTest, DurableTopicReplaysToLateJoinerAndRestartedSubscriber) {
  const std::string dir = ::fabric::testing::MakeTempDir("pubsub");
  auto pn = StartNode("pub");
  PublisherOptions po;
  po.durable_topics = {"audit"};
  po.spool_dir = dir + "/spool";
  po.fsync = FsyncPolicy::kNone;
  auto pub = StartPublisher(*pn, po);
  for (int i = 1; i <= 3000; ++i) {
    ASSERT_THAT(pub->Publish("audit", absl::StrCat("a", i)), IsOk());
  }
  ASSERT_THAT(pub->Flush(kWait), IsOk());

  // A late joiner from earliest gets everything, replayed.
  auto sn = StartNode("sub");
  Seen early;
  SubscriberOptions eo;
  eo.prefixes = {"audit"};
  eo.start.kind = StartPosition::Kind::kEarliest;
  auto s1 = StartSubscriber(*sn, &early, eo);
  ASSERT_TRUE(WaitUntil([&] { return early.Count("audit") == 3000; }, kWait));
  EXPECT_TRUE(Contiguous(early.Seqs("audit"), 1, 3000));
  EXPECT_EQ(early.replayed(), 3000u);

  // A durable subscriber from seq 2001, then closed and reopened while the
  // publisher goes on: it resumes exactly where it was.
  SubscriberOptions d;
  d.prefixes = {"audit"};
  d.durable_name = "billing";
  d.state_dir = dir;
  d.start.kind = StartPosition::Kind::kSeq;
  d.start.seq = 2001;
  Seen first_run;
  auto s2 = StartSubscriber(*sn, &first_run, d);
  ASSERT_TRUE(
      WaitUntil([&] { return first_run.Count("audit") == 1000; }, kWait));
  EXPECT_TRUE(Contiguous(first_run.Seqs("audit"), 2001, 3000));
  s2.reset();
  for (int i = 3001; i <= 4000; ++i) {
    ASSERT_THAT(pub->Publish("audit", absl::StrCat("a", i)), IsOk());
  }
  Seen second_run;
  auto s3 = StartSubscriber(*sn, &second_run, d);
  for (int i = 4001; i <= 5000; ++i) {
    ASSERT_THAT(pub->Publish("audit", absl::StrCat("a", i)), IsOk());
  }
  ASSERT_TRUE(
      WaitUntil([&] { return second_run.Count("audit") == 2000; }, kWait));
  EXPECT_TRUE(Contiguous(second_run.Seqs("audit"), 3001, 5000));
  EXPECT_EQ(second_run.Bodies("audit").front(), "a3001");
  EXPECT_EQ(s3->Stats().lost, 0u);
  // The late joiner kept up live after its replay.
  ASSERT_TRUE(WaitUntil([&] { return early.Count("audit") == 5000; }, kWait));
  EXPECT_TRUE(Contiguous(early.Seqs("audit"), 1, 5000));
  // One subscriber per durable name at a time...
  EXPECT_THAT(Subscriber::Create(*sn, d),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // ...and closing one releases the name at once, to the same process too.
  s3->Close();
  absl::StatusOr<std::unique_ptr<Subscriber>> heir = Subscriber::Create(*sn, d);
  EXPECT_THAT(heir, IsOk());
}

// A durable topic whose disk fills up (docs/pubsub.md section 3): publishes
// fail at once with kResourceExhausted while the log holds what did not
// fit, nothing unwritten reaches a subscriber, and once there is room the
// held messages go out and publishing resumes with the next seq: the
// subscriber sees every accepted message once, in order, with no gap. The
// log lives on the in-memory file system, whose capacity the test sets.
TEST_F(PubSubTest, ADurableTopicOnAFullDiskRefusesPublishesWithoutAGap) {
  spool_internal::MemFileSystem fs;
  spool_internal::ScopedFileSystem use(&fs);
  fs.SetCapacity(64 * 1024);
  auto pn = StartNode("pub");
  auto sn = StartNode("sub");
  PublisherOptions po;
  po.durable_topics = {"d"};
  po.spool_dir = "/disk/spool";
  auto pub = StartPublisher(*pn, po);
  Seen seen;
  SubscriberOptions so = Prefixes({"d"});
  so.start.kind = StartPosition::Kind::kEarliest;
  auto sub = StartSubscriber(*sn, &seen, so);
  ASSERT_THAT(pub->WaitForSubscribers(1, kWait), IsOk());

  std::vector<std::string> accepted;
  absl::Status refused;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  for (int i = 1; absl::Now() < deadline; ++i) {
    std::string body = absl::StrCat("m", i, "-");
    body.resize(300, 'x');
    absl::StatusOr<uint64_t> seq = pub->Publish("d", body);
    if (!seq.ok()) {
      refused = seq.status();
      break;
    }
    ASSERT_EQ(*seq, static_cast<uint64_t>(i));
    accepted.push_back(body);
    if (i % 20 == 0) absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_FALSE(refused.ok()) << "the disk never filled up";
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_GE(pub->Stats().rejected, 1u);
  // Still full: still refused, and what the disk did not take is not sent.
  absl::SleepFor(absl::Milliseconds(1200));
  EXPECT_THAT(pub->Publish("d", "again").status(),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_LT(seen.Count("d"), accepted.size());
  EXPECT_THAT(pub->Flush(absl::Seconds(60)),
              StatusIs(absl::StatusCode::kResourceExhausted));

  fs.SetCapacity(uint64_t{1} << 30);
  absl::StatusOr<uint64_t> resumed;
  ASSERT_TRUE(WaitUntil(
      [&] {
        resumed = pub->Publish("d", "after");
        return resumed.ok();
      },
      kWait));
  EXPECT_EQ(*resumed, accepted.size() + 1);
  accepted.push_back("after");
  ASSERT_THAT(pub->Flush(kWait), IsOk());
  ASSERT_TRUE(
      WaitUntil([&] { return seen.Count("d") >= accepted.size(); }, kWait));
  EXPECT_TRUE(Contiguous(seen.Seqs("d"), 1, accepted.size()));
  EXPECT_EQ(seen.Bodies("d"), accepted);
  EXPECT_EQ(gap_events_.load(), 0u);
  EXPECT_EQ(sub->Stats().lost, 0u);
  sub.reset();
  pub.reset();  // closes the log while the MemFS is alive
}

TEST_F(PubSubTest, CatchUpWhileLiveMessagesArriveHasNoGapAndNoGarbage) {
  const std::string dir = ::fabric::testing::MakeTempDir("pubsub");
  auto pn = StartNode("pub");
  PublisherOptions po;
  po.durable_topics = {"feed"};
  po.spool_dir = dir + "/spool";
  po.fsync = FsyncPolicy::kNone;
  auto pub = StartPublisher(*pn, po);
  for (int i = 1; i <= 3000; ++i) {
    ASSERT_THAT(pub->Publish("feed", absl::StrCat("f", i)), IsOk());
  }
  ASSERT_THAT(pub->Flush(kWait), IsOk());
  // Small replay chunks while the publisher goes on: live messages are held
  // during the catch-up and delivered between chunks, so the chunk asked for
  // ahead of time can start below where delivery got to.
  auto sn = StartNode("sub");
  Seen seen;
  SubscriberOptions o = Prefixes({"feed"});
  o.start.kind = StartPosition::Kind::kEarliest;
  o.replay_batch = 50;
  auto sub = StartSubscriber(*sn, &seen, o);
  for (int i = 3001; i <= 6000; ++i) {
    ASSERT_THAT(pub->Publish("feed", absl::StrCat("f", i)), IsOk());
    if (i % 100 == 0) absl::SleepFor(absl::Milliseconds(2));
  }
  ASSERT_TRUE(WaitUntil([&] { return seen.Count("feed") == 6000; }, kWait))
      << seen.Count("feed");
  EXPECT_TRUE(Contiguous(seen.Seqs("feed"), 1, 6000));
  const SubscriberStats st = sub->Stats();
  EXPECT_EQ(st.lost, 0u);
  EXPECT_EQ(st.malformed, 0u);
  EXPECT_EQ(st.duplicates, 0u);
}

TEST_F(PubSubTest, DurableStreamSurvivesPublisherRestartAndStartsFromTime) {
  const std::string dir = ::fabric::testing::MakeTempDir("pubsub");
  auto sn = StartNode("sub");
  PublisherOptions po;
  po.durable_topics = {"log"};
  po.spool_dir = dir;
  absl::Time middle;
  {
    auto pn = StartNode("pub1");
    auto pub = StartPublisher(*pn, po);
    for (int i = 1; i <= 100; ++i) {
      ASSERT_THAT(pub->Publish("log", absl::StrCat(i)), IsOk());
      if (i == 50) {
        ASSERT_THAT(pub->Flush(kWait), IsOk());
        absl::SleepFor(absl::Milliseconds(20));
        middle = absl::Now();
        absl::SleepFor(absl::Milliseconds(20));
      }
    }
    ASSERT_THAT(pub->Flush(kWait), IsOk());
  }
  // A new process (node) opens the same log: same stream, seqs go on.
  auto pn = StartNode("pub2");
  auto pub = StartPublisher(*pn, po);
  absl::StatusOr<uint64_t> seq = pub->Publish("log", "101");
  ASSERT_THAT(seq, IsOk());
  EXPECT_EQ(*seq, 101u);
  Seen seen;
  SubscriberOptions o;
  o.prefixes = {"log"};
  o.start.kind = StartPosition::Kind::kTime;
  o.start.time = middle;
  auto sub = StartSubscriber(*sn, &seen, o);
  ASSERT_TRUE(WaitUntil([&] { return seen.Count("log") == 51; }, kWait));
  EXPECT_TRUE(Contiguous(seen.Seqs("log"), 51, 101));
}

TEST(StartPositionTest, Parses) {
  EXPECT_EQ(StartPosition::Parse("latest")->kind, StartPosition::Kind::kLatest);
  EXPECT_EQ(StartPosition::Parse("earliest")->kind,
            StartPosition::Kind::kEarliest);
  EXPECT_EQ(StartPosition::Parse("42")->seq, 42u);
  EXPECT_EQ(StartPosition::Parse("-5m")->kind, StartPosition::Kind::kTime);
  EXPECT_EQ(StartPosition::Parse("2026-11-21T10:00:00Z")->time,
            absl::FromUnixSeconds(1795255200));
  EXPECT_THAT(StartPosition::Parse("soon"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(StartPosition::Parse("0"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace fabric
