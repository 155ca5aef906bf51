// SPDX-License-Identifier: Apache-2.0
// Servers and clients on several nodes of one process, over real loopback
// sockets. Multi-process scenarios (SIGKILL, SIGSTOP) are in
// tests/integration/reqrep_cli_test.cc.
#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "patterns/reqrep/client.h"
#include "patterns/reqrep/server.h"
#include "tests/testing/node_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_util.h"

namespace fabric {
namespace {

using ::fabric::testing::IsOk;
using ::fabric::testing::StatusIs;
using ::fabric::testing::WaitUntil;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(30);

static_assert(!std::is_copy_constructible_v<Responder>);
static_assert(std::is_nothrow_move_constructible_v<Responder>);
static_assert(!std::is_copy_constructible_v<Client>);
static_assert(!std::is_copy_constructible_v<Server>);

Handler Echo() {
  return SyncHandler(
      [](const Request& r) -> absl::StatusOr<std::string> { return r.body; });
}

// Responders parked by a handler that answers later (or never).
class Parked {
 public:
  void Add(Responder r) {
    absl::MutexLock lock(&mu_);
    parked_.push_back(std::move(r));
  }
  size_t size() {
    absl::MutexLock lock(&mu_);
    return parked_.size();
  }
  void ReplyAll(const std::string& body) {
    absl::MutexLock lock(&mu_);
    for (Responder& r : parked_) (void)r.Reply(body);
    parked_.clear();
  }

 private:
  absl::Mutex mu_;
  std::vector<Responder> parked_ ABSL_GUARDED_BY(mu_);
};

class ReqRepTest : public ::testing::Test {
 protected:
  std::unique_ptr<Node> StartNode(const std::string& name) {
    return ::fabric::testing::StartLoopbackNode(name, cluster_, port_);
  }
  std::unique_ptr<Server> StartServer(Node& node, ServerOptions o) {
    absl::StatusOr<std::unique_ptr<Server>> s =
        Server::Create(node, std::move(o));
    EXPECT_THAT(s, IsOk());
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::unique_ptr<Server> StartServer(Node& node, Handler handler,
                                      const std::string& service = "svc",
                                      int threads = 2) {
    ServerOptions o;
    o.service = service;
    o.handler = std::move(handler);
    o.threads = threads;
    return StartServer(node, std::move(o));
  }
  std::unique_ptr<Client> StartClient(Node& node, ClientOptions o = {}) {
    absl::StatusOr<std::unique_ptr<Client>> c = Client::Create(node, o);
    EXPECT_THAT(c, IsOk());
    return c.ok() ? std::move(*c) : nullptr;
  }
  // Waits until `client` knows `n` servers of `service`.
  static bool WaitServers(Client& client, size_t n,
                          const std::string& service = "svc") {
    return WaitUntil(
        [&] {
          absl::StatusOr<std::vector<NodeId>> s = client.Servers(service);
          return s.ok() && s->size() >= n;
        },
        kWait);
  }
  // Waits until `n` echo servers have each answered a call: their links
  // are up (a link may connect a little after discovery).
  static bool WarmUp(Client& client, size_t n) {
    std::set<NodeId> answered;
    CallOptions call;
    call.timeout = absl::Seconds(5);
    return WaitServers(client, n) && WaitUntil(
                                         [&] {
                                           absl::StatusOr<Reply> r =
                                               client.Call("svc", "warm", call);
                                           if (r.ok())
                                             answered.insert(r->server);
                                           return answered.size() >= n;
                                         },
                                         kWait);
  }

  const std::string cluster_ = ::fabric::testing::UniqueClusterName("rr");
  const uint16_t port_ = ::fabric::testing::FreeUdpPort();
};

TEST_F(ReqRepTest, BlockingAsyncAndFutureCallsGetReplies) {
  auto sn = StartNode("server");
  auto cn = StartNode("client");
  auto server = StartServer(*sn, Echo());
  auto client = StartClient(*cn);
  ASSERT_TRUE(WaitServers(*client, 1));
  CallOptions call;
  call.timeout = absl::Seconds(10);
  absl::StatusOr<Reply> r = client->Call("svc", "hello", call);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->body, "hello");
  EXPECT_EQ(r->server, sn->id());
  EXPECT_GE(r->attempts, 1u);

  absl::Notification done;
  absl::StatusOr<Reply> async_result = absl::UnknownError("");
  client->CallAsync("svc", "async", call, [&](absl::StatusOr<Reply> r) {
    async_result = std::move(r);
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  ASSERT_THAT(async_result, IsOk());
  EXPECT_EQ(async_result->body, "async");

  std::future<absl::StatusOr<Reply>> f = client->CallFuture("svc", "fut", call);
  ASSERT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  absl::StatusOr<Reply> fr = f.get();
  ASSERT_THAT(fr, IsOk());
  EXPECT_EQ(fr->body, "fut");
  EXPECT_EQ(client->Stats().ok, 3u);
  EXPECT_EQ(client->Stats().in_flight, 0u);
}

TEST_F(ReqRepTest, NoServerFailsUnavailableAtOnce) {
  auto cn = StartNode("client");
  auto client = StartClient(*cn);
  CallOptions call;
  call.timeout = absl::Seconds(20);
  const absl::Time start = absl::Now();
  absl::StatusOr<Reply> r = client->Call("nobody", "x", call);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(r.status().message(), HasSubstr("no server of service nobody"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(client->Stats().unavailable, 1u);
}

TEST_F(ReqRepTest, WaitForServerWaitsUntilOneAppears) {
  auto cn = StartNode("client");
  auto client = StartClient(*cn);
  CallOptions call;
  call.timeout = absl::Seconds(30);
  call.wait_for_server = true;
  std::future<absl::StatusOr<Reply>> f = client->CallFuture("svc", "x", call);
  auto sn = StartNode("server");
  auto server = StartServer(*sn, Echo());
  ASSERT_EQ(f.wait_for(std::chrono::seconds(40)), std::future_status::ready);
  EXPECT_THAT(f.get(), IsOk());
}

TEST_F(ReqRepTest, CallsSpreadOverEveryServer) {
  std::vector<std::unique_ptr<Node>> nodes;
  std::vector<std::unique_ptr<Server>> servers;
  for (int i = 0; i < 3; ++i) {
    nodes.push_back(StartNode(absl::StrCat("s", i)));
    servers.push_back(StartServer(*nodes.back(), Echo()));
  }
  auto cn = StartNode("client");
  auto client = StartClient(*cn);
  ASSERT_TRUE(WarmUp(*client, 3));
  absl::Mutex mu;
  std::map<NodeId, int> by_server;
  std::atomic<int> ok{0}, done{0};
  constexpr int kCalls = 90;
  CallOptions call;
  call.timeout = absl::Seconds(20);
  for (int i = 0; i < kCalls; ++i) {
    client->CallAsync("svc", absl::StrCat("m", i), call,
                      [&, i](absl::StatusOr<Reply> r) {
                        if (r.ok() && r->body == absl::StrCat("m", i)) {
                          ok++;
                          absl::MutexLock lock(&mu);
                          by_server[r->server]++;
                        }
                        done++;
                      });
  }
  // Not ASSERT: the callbacks use this frame until all have run.
  EXPECT_TRUE(WaitUntil([&] { return done.load() == kCalls; }, kWait));
  client->Close();  // ends any call still out before the frame goes
  cn->Close();
  cn->Join();
  EXPECT_EQ(ok.load(), kCalls);
  absl::MutexLock lock(&mu);
  EXPECT_EQ(by_server.size(), 3u);
}

TEST_F(ReqRepTest, HandlerErrorsReachTheCallerWithCodeAndMessage) {
  auto sn = StartNode("server");
  auto cn = StartNode("client");
  auto server = StartServer(
      *sn, SyncHandler([](const Request& r) -> absl::StatusOr<std::string> {
        if (r.body == "throw") throw std::runtime_error("boom");
        return absl::NotFoundError(absl::StrCat("no such key ", r.body));
      }));
  auto client = StartClient(*cn);
  ASSERT_TRUE(WaitServers(*client, 1));
  CallOptions call;
  call.timeout = absl::Seconds(10);
  absl::StatusOr<Reply> r = client->Call("svc", "k1", call);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(r.status().message(), "no such key k1");
  r = client->Call("svc", "throw", call);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(r.status().message(), HasSubstr("boom"));
  EXPECT_EQ(server->Stats().failed, 2u);
}

TEST_F(ReqRepTest, HandlerMayReplyLaterFromAnotherThread) {
  auto sn = StartNode("server");
  auto cn = StartNode("client");
  Parked parked;
  auto server = StartServer(*sn, [&](Request, Responder responder) {
    parked.Add(std::move(responder));
  });
  auto client = StartClient(*cn);
  ASSERT_TRUE(WaitServers(*client, 1));
  CallOptions call;
  call.timeout = absl::Seconds(20);
  call.max_attempts = 1;
  std::future<absl::StatusOr<Reply>> f = client->CallFuture("svc", "x", call);
  ASSERT_TRUE(WaitUntil([&] { return parked.size() == 1; }, kWait));
  std::thread replier([&] { parked.ReplyAll("later"); });
  replier.join();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  absl::StatusOr<Reply> r = f.get();
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->body, "later");
}

// Six 3.5 MiB replies answered at once: together they exceed the 16 MiB
// message limit, so they must travel in several frames.
TEST_F(ReqRepTest, LargeRepliesAnsweredTogetherAllArrive) {
  auto sn = StartNode("server");
  auto cn = StartNode("client");
  Parked parked;
  auto server = StartServer(*sn, [&](Request, Responder responder) {
    parked.Add(std::move(responder));
  });
  auto client = StartClient(*cn);
  ASSERT_TRUE(WaitServers(*client, 1));
  CallOptions call;
  call.timeout = absl::Seconds(20);
  call.max_attempts = 1;
  std::vector<std::future<absl::StatusOr<Reply>>> calls;
  for (int i = 0; i < 6; ++i) {
    calls.push_back(client->CallFuture("svc", absl::StrCat(i), call));
  }
  ASSERT_TRUE(WaitUntil([&] { return parked.size() == 6; }, kWait));
  const std::string big(3'500'000, 'r');
  parked.ReplyAll(big);
  for (auto& f : calls) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready);
    absl::StatusOr<Reply> r = f.get();
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->body.size(), big.size());
  }
}

TEST_F(ReqRepTest, SilentHandlerTimesOutAndDroppedResponderFailsFast) {
  auto sn = StartNode("server");
  auto cn = StartNode("client");
  Parked parked;
  auto server = StartServer(*sn, [&](Request r, Responder responder) {
    if (r.body == "hold") parked.Add(std::move(responder));
    // Otherwise the responder is dropped here without a reply.
  });
  auto client = StartClient(*cn);
  ASSERT_TRUE(WaitServers(*client, 1));
  CallOptions call;
  call.timeout = absl::Milliseconds(500);
  const absl::Time start = absl::Now();
  absl::StatusOr<Reply> r = client->Call("svc", "hold", call);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  call.timeout = absl::Seconds(20);
  r = client->Call("svc", "drop", call);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(r.status().message(), HasSubstr("without replying"));
  parked.ReplyAll("too late");  // dropped cleanly, nobody waits
}

// A blocking call asks its poll while it waits and is given up, kCancelled,
// as soon as the poll says so (the Python binding's Ctrl-C).
TEST_F(ReqRepTest, PolledCallIsGivenUpWhenThePollSaysSo) {
  auto sn = StartNode("server");
  auto cn = StartNode("client");
  Parked parked;
  auto server = StartServer(*sn, [&](Request, Responder responder) {
    parked.Add(std::move(responder));
  });
  auto client = StartClient(*cn);
  ASSERT_TRUE(WaitServers(*client, 1));
  CallOptions call;
  call.timeout = absl::Seconds(60);
  int polls = 0;
  absl::StatusOr<Reply> r = client->Call(
      "svc", "hold", call, absl::Milliseconds(10), [&] { return ++polls < 5; });
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(polls, 5);
  EXPECT_EQ(client->Stats().failed, 1u);
  EXPECT_EQ(client->Stats().in_flight, 0u);
  // A poll that keeps waiting gets the reply.
  parked.ReplyAll("late");  // to the given-up call: dropped
  auto echo = StartServer(*sn, Echo(), "echo");
  ASSERT_TRUE(WaitServers(*client, 1, "echo"));
  r = client->Call("echo", "hi", call, absl::Milliseconds(10),
                   [] { return true; });
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->body, "hi");
}

TEST_F(ReqRepTest, StalledServerAttemptsMoveToAnotherServer) {
  auto stuck_node = StartNode("stuck");
  auto good_node = StartNode("good");
  auto cn = StartNode("client");
  Parked parked;
  auto stuck = StartServer(
      *stuck_node, [&](Request, Responder r) { parked.Add(std::move(r)); });
  auto good = StartServer(*good_node, Echo());
  auto client = StartClient(*cn);
  ASSERT_TRUE(WaitServers(*client, 2));
  CallOptions call;
  call.timeout = absl::Seconds(20);
  call.attempt_timeout = absl::Milliseconds(200);
  // Until the stuck server has held a call (its link may come up a little
  // after discovery: bounded by time, not by a count of calls, which a fast
  // machine makes before the link is up), and for 20 calls more (it is then
  // avoided for a while), every call must be answered by the good one.
  int more = 20;
  const absl::Time deadline = absl::Now() + kWait;
  for (int i = 0; more > 0 && absl::Now() < deadline; ++i) {
    if (parked.size() >= 1) --more;
    absl::StatusOr<Reply> r = client->Call("svc", absl::StrCat("m", i), call);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->server, good_node->id());
    EXPECT_EQ(r->body, absl::StrCat("m", i));
  }
  EXPECT_GE(parked.size(), 1u);
  EXPECT_GE(client->Stats().retries, 1u);
  parked.ReplyAll("late");
}

TEST_F(ReqRepTest, IdempotencyKeyRunsTheHandlerOnce) {
  auto sn = StartNode("server");
  auto cn = StartNode("client");
  std::atomic<int> runs{0};
  absl::Notification release;
  auto server = StartServer(
      *sn, SyncHandler([&](const Request& r) -> absl::StatusOr<std::string> {
        runs++;
        release.WaitForNotificationWithTimeout(kWait);
        return absl::StrCat("result-", r.body);
      }));
  auto client = StartClient(*cn);
  ASSERT_TRUE(WaitServers(*client, 1));
  CallOptions call;
  call.timeout = absl::Seconds(20);
  call.idempotency_key = "op-1";
  auto f1 = client->CallFuture("svc", "a", call);
  auto f2 = client->CallFuture("svc", "b", call);  // same key, joins
  ASSERT_TRUE(WaitUntil([&] { return server->Stats().joined >= 1; }, kWait));
  release.Notify();
  absl::StatusOr<Reply> r1 = f1.get(), r2 = f2.get();
  ASSERT_THAT(r1, IsOk());
  ASSERT_THAT(r2, IsOk());
  EXPECT_EQ(r1->body, "result-a");
  EXPECT_EQ(r2->body, "result-a");
  absl::StatusOr<Reply> r3 = client->Call("svc", "c", call);  // cached
  ASSERT_THAT(r3, IsOk());
  EXPECT_EQ(r3->body, "result-a");
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(server->Stats().cache_hits, 1u);
  call.idempotency_key = "op-2";
  r3 = client->Call("svc", "d", call);
  ASSERT_THAT(r3, IsOk());
  EXPECT_EQ(r3->body, "result-d");
  EXPECT_EQ(runs.load(), 2);
}

TEST_F(ReqRepTest, BusyServerRefusesAndTheCallGoesElsewhere) {
  auto busy_node = StartNode("busy");
  auto free_node = StartNode("free");
  auto cn = StartNode("client");
  Parked parked;
  ServerOptions o;
  o.service = "svc";
  o.max_pending = 1;
  o.handler = [&](Request, Responder r) { parked.Add(std::move(r)); };
  auto busy = StartServer(*busy_node, std::move(o));
  ASSERT_NE(busy, nullptr);
  auto client = StartClient(*cn);
  ASSERT_TRUE(WaitServers(*client, 1));
  CallOptions call;
  call.timeout = absl::Seconds(20);
  call.attempt_timeout = absl::Seconds(20);  // only refusals move calls
  auto held = client->CallFuture("svc", "first", call);  // fills it
  ASSERT_TRUE(WaitUntil([&] { return parked.size() == 1; }, kWait));
  auto free_server = StartServer(*free_node, Echo());
  ASSERT_TRUE(WaitServers(*client, 2));
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<Reply> r = client->Call("svc", "x", call);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->server, free_node->id());
  }
  parked.ReplyAll("done");
  EXPECT_THAT(held.get(), IsOk());
}

TEST_F(ReqRepTest, RepliesSentByHandlerThreadsFreeTheirPendingSlot) {
  // Handler threads send replies themselves and the engine settles them
  // later. A request arriving meanwhile must still find its slot free:
  // with max_pending 1, not one of these sequential calls is refused.
  auto sn = StartNode("server");
  auto cn = StartNode("client");
  ServerOptions o;
  o.service = "svc";
  o.max_pending = 1;
  o.threads = 1;
  o.handler = Echo();
  auto server = StartServer(*sn, std::move(o));
  ASSERT_NE(server, nullptr);
  auto client = StartClient(*cn);
  ASSERT_TRUE(WarmUp(*client, 1));
  const ServerStats before = server->Stats();
  CallOptions call;
  call.timeout = absl::Seconds(10);
  constexpr int kCalls = 200;
  for (int i = 0; i < kCalls; ++i) {
    absl::StatusOr<Reply> r = client->Call("svc", absl::StrCat("m", i), call);
    ASSERT_THAT(r, IsOk());
    ASSERT_EQ(r->body, absl::StrCat("m", i));
    ASSERT_EQ(r->attempts, 1u);
  }
  const ServerStats after = server->Stats();
  EXPECT_EQ(after.rejected_busy, 0u);
  // Counted when sent, not when settled.
  EXPECT_EQ(after.replied - before.replied, static_cast<uint64_t>(kCalls));
  EXPECT_EQ(after.pending, 0u);
  EXPECT_EQ(after.late_replies, 0u);
  EXPECT_EQ(client->Stats().retries, 0u);
}

TEST_F(ReqRepTest, ConcurrentBlockingCallersEachGetTheirOwnReplyOnce) {
  // Blocking calls leave from their callers' threads and the engine adopts
  // them later; fast inline servers make replies race that adoption. None
  // may be dropped as late (it would cost a retry) or go to another call.
  auto s1 = StartNode("s1");
  auto s2 = StartNode("s2");
  auto cn = StartNode("client");
  auto a = StartServer(*s1, Echo(), "svc", /*threads=*/0);
  auto b = StartServer(*s2, Echo(), "svc", /*threads=*/1);
  ClientOptions o;
  o.spin_wait = absl::ZeroDuration();  // callers that sleep send directly
  auto client = StartClient(*cn, o);
  ASSERT_TRUE(WarmUp(*client, 2));
  const ClientStats before = client->Stats();
  constexpr int kThreads = 4;
  constexpr int kEach = 300;
  std::atomic<int> ok{0};
  std::atomic<int> retried{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      CallOptions call;
      call.timeout = absl::Seconds(20);
      call.attempt_timeout = absl::Seconds(2);
      for (int i = 0; i < kEach; ++i) {
        const std::string body = absl::StrCat(t, "/", i);
        absl::StatusOr<Reply> r = client->Call("svc", body, call);
        if (r.ok() && r->body == body) ok++;
        if (r.ok() && r->attempts != 1) retried++;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kEach);
  EXPECT_EQ(retried.load(), 0);
  const ClientStats after = client->Stats();
  EXPECT_EQ(after.late_replies, before.late_replies);
  EXPECT_EQ(after.retries, before.retries);
  EXPECT_EQ(after.in_flight, 0u);
  // Both servers got work (least outstanding first).
  EXPECT_GT(a->Stats().replied, 0u);
  EXPECT_GT(b->Stats().replied, 0u);
}

TEST_F(ReqRepTest, HandlerThatTurnsSlowDoesNotHoldRepliesAlreadyMade) {
  // One handler thread with quick handlers holds a batch's replies to send
  // them together. When a handler of that batch then blocks, the replies
  // made before it must still reach their callers.
  auto sn = StartNode("server");
  auto cn = StartNode("client");
  absl::Notification release;
  auto server = StartServer(
      *sn,
      [&](Request r, Responder responder) {
        if (r.body == "block") {
          release.WaitForNotificationWithTimeout(kWait);
        }
        (void)responder.Reply(std::move(r.body));
      },
      "svc", /*threads=*/1);
  auto client = StartClient(*cn);
  ASSERT_TRUE(WarmUp(*client, 1));
  CallOptions call;
  call.timeout = absl::Seconds(60);
  call.attempt_timeout = absl::Seconds(60);
  for (int i = 0; i < 50; ++i) {  // keeps the handler average quick
    ASSERT_THAT(client->Call("svc", "quick", call), IsOk());
  }
  constexpr int kQuick = 8;
  std::atomic<int> quick_done{0};
  absl::Notification blocked_done;
  // Submitted back to back, so they travel and queue together: the
  // handler thread takes them as one batch, the blocking one last.
  for (int i = 0; i < kQuick; ++i) {
    client->CallAsync("svc", absl::StrCat("q", i), call,
                      [&](absl::StatusOr<Reply> r) {
                        if (r.ok()) quick_done++;
                      });
  }
  client->CallAsync("svc", "block", call,
                    [&](absl::StatusOr<Reply>) { blocked_done.Notify(); });
  EXPECT_TRUE(WaitUntil([&] { return quick_done.load() == kQuick; },
                        absl::Seconds(20)));
  release.Notify();
  EXPECT_TRUE(blocked_done.WaitForNotificationWithTimeout(kWait));
}

TEST_F(ReqRepTest, CloseDrainsAcceptedRequestsAndStopsAdvertising) {
  auto a_node = StartNode("a");
  auto b_node = StartNode("b");
  auto cn = StartNode("client");
  std::atomic<int> started{0};
  auto slow = SyncHandler([&](const Request& r) -> absl::StatusOr<std::string> {
    started++;
    absl::SleepFor(absl::Milliseconds(300));
    return r.body;
  });
  auto a = StartServer(*a_node, slow, "svc", 4);
  auto client = StartClient(*cn);
  ASSERT_TRUE(WaitServers(*client, 1));
  CallOptions call;
  call.timeout = absl::Seconds(20);
  call.attempt_timeout = absl::Seconds(20);
  std::vector<std::future<absl::StatusOr<Reply>>> calls;
  for (int i = 0; i < 4; ++i) {
    calls.push_back(client->CallFuture("svc", absl::StrCat("m", i), call));
  }
  ASSERT_TRUE(WaitUntil([&] { return started.load() >= 1; }, kWait));
  auto b = StartServer(*b_node, Echo());
  ASSERT_TRUE(WaitServers(*client, 2));
  a->Close();  // blocks until the accepted calls are answered
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<Reply> r = calls[i].get();
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->body, absl::StrCat("m", i));
  }
  ASSERT_TRUE(WaitUntil(
      [&] {
        absl::StatusOr<std::vector<NodeId>> s = client->Servers("svc");
        return s.ok() && s->size() == 1;
      },
      kWait));
  absl::StatusOr<Reply> r = client->Call("svc", "after", call);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->server, b_node->id());
}

TEST_F(ReqRepTest, SizeLimitsFailWithClearErrors) {
  auto sn = StartNode("server");
  auto cn = StartNode("client");
  ServerOptions o;
  o.service = "svc";
  o.max_request_bytes = 1000;
  o.max_reply_bytes = 1000;
  o.handler = SyncHandler([](const Request& r) -> absl::StatusOr<std::string> {
    return std::string(r.body.size() * 2, 'y');
  });
  auto server = StartServer(*sn, std::move(o));
  ASSERT_NE(server, nullptr);
  ClientOptions co;
  co.max_request_bytes = 4000;
  auto client = StartClient(*cn, co);
  ASSERT_TRUE(WaitServers(*client, 1));
  CallOptions call;
  call.timeout = absl::Seconds(10);
  EXPECT_THAT(client->Call("svc", std::string(5000, 'x'), call),
              StatusIs(absl::StatusCode::kInvalidArgument));
  absl::StatusOr<Reply> r = client->Call("svc", std::string(2000, 'x'), call);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(r.status().message(), HasSubstr("exceeds the server's limit"));
  r = client->Call("svc", std::string(600, 'x'), call);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(r.status().message(), HasSubstr("max_reply_bytes"));
  EXPECT_THAT(client->Call("svc", std::string(400, 'x'), call), IsOk());
}

TEST_F(ReqRepTest, ClientAndServerOnTheSameNode) {
  auto node = StartNode("both");
  auto server = StartServer(*node, Echo());
  auto client = StartClient(*node);
  CallOptions call;
  call.timeout = absl::Seconds(10);
  absl::StatusOr<Reply> r = client->Call("svc", "local", call);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->body, "local");
  EXPECT_EQ(r->server, node->id());
}

TEST_F(ReqRepTest, ClosingTheClientCancelsItsCalls) {
  auto sn = StartNode("server");
  auto cn = StartNode("client");
  Parked parked;
  auto server =
      StartServer(*sn, [&](Request, Responder r) { parked.Add(std::move(r)); });
  auto client = StartClient(*cn);
  ASSERT_TRUE(WaitServers(*client, 1));
  CallOptions call;
  call.timeout = absl::Seconds(30);
  auto f = client->CallFuture("svc", "x", call);
  ASSERT_TRUE(WaitUntil([&] { return parked.size() == 1; }, kWait));
  client->Close();
  EXPECT_THAT(f.get(), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT(client->Call("svc", "y", call),
              StatusIs(absl::StatusCode::kCancelled));
  parked.ReplyAll("late");
}

TEST_F(ReqRepTest, BadOptionsAreRejected) {
  auto node = StartNode("n");
  ServerOptions o;
  o.service = "";
  o.handler = Echo();
  EXPECT_THAT(Server::Create(*node, o),
              StatusIs(absl::StatusCode::kInvalidArgument));
  o.service = "svc";
  o.threads = -1;
  EXPECT_THAT(Server::Create(*node, o),
              StatusIs(absl::StatusCode::kInvalidArgument));
  o.threads = 1;
  auto first = Server::Create(*node, o);
  ASSERT_THAT(first, IsOk());
  EXPECT_THAT(Server::Create(*node, o),
              StatusIs(absl::StatusCode::kAlreadyExists));
  ClientOptions co;
  co.max_attempts = 0;
  EXPECT_THAT(Client::Create(*node, co),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto client = StartClient(*node);
  EXPECT_THAT(client->Call("", "x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  CallOptions call;
  call.idempotency_key = std::string(2000, 'k');
  EXPECT_THAT(client->Call("svc", "x", call),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace fabric
