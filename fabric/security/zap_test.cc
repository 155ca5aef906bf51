// SPDX-License-Identifier: Apache-2.0
// The fail-closed CURVE pieces on real sockets: the ZAP handler admits only
// roster keys, the self-test catches each fail-open set-up libzmq 4.3.4
// allows (security-anchors.md 2.3), and a stopped handler keeps new clients
// out (plan S1, S2, S11).
#include "fabric/security/zap.h"

#include <zmq.h>

#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "fabric/security/keys.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace fabric::security {
namespace {

using ::fabric::testing::StatusIs;
using ::testing::HasSubstr;

CurveKeypair Keys(const std::string& name) {
  absl::StatusOr<CurveKeypair> k = GenerateKeypair(name);
  EXPECT_TRUE(k.ok()) << k.status();
  return *k;
}

std::shared_ptr<RosterHolder> RosterOf(
    const std::vector<const CurveKeypair*>& keys) {
  std::vector<RosterEntry> entries;
  for (const CurveKeypair* k : keys) {
    entries.push_back(RosterEntry{k->name, k->public_key, "", ""});
  }
  return std::make_shared<RosterHolder>(
      std::make_shared<const Roster>(std::move(entries)));
}

// A ROUTER server of its own context, bound on a free loopback port.
struct Server {
  zmq::context_t ctx{1};
  std::unique_ptr<ZapHandler> zap;
  zmq::socket_t router;
  std::string endpoint;

  ~Server() {
    router.close();
    zap.reset();
  }
  void Bind() {
    router.set(zmq::sockopt::linger, 0);
    router.set(zmq::sockopt::rcvtimeo, 200);
    router.bind("tcp://127.0.0.1:*");
    endpoint = router.get(zmq::sockopt::last_endpoint);
  }
  // Messages received within `wait`.
  int Drain(absl::Duration wait, std::string* user_id = nullptr) {
    int n = 0;
    const absl::Time end = absl::Now() + wait;
    while (absl::Now() < end) {
      zmq::message_t id;
      zmq::message_t body;
      if (!router.recv(id)) continue;
      (void)router.recv(body);
      const char* uid = zmq_msg_gets(body.handle(), "User-Id");
      if (user_id != nullptr && uid != nullptr) *user_id = uid;
      ++n;
    }
    return n;
  }
};

// Sends `count` messages from a CURVE DEALER with `key`; IMMEDIATE makes a
// refused connection drop them instead of queueing.
void SendFrom(zmq::context_t& ctx, const std::string& endpoint,
              const CurveKeypair& key, const std::string& server_key,
              int count) {
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.set(zmq::sockopt::immediate, 1);
  ASSERT_TRUE(ApplyCurveClient(dealer, key, server_key).ok());
  dealer.connect(endpoint);
  const absl::Time end = absl::Now() + absl::Seconds(1);
  int sent = 0;
  while (sent < count && absl::Now() < end) {
    if (dealer.send(zmq::str_buffer("hello"), zmq::send_flags::dontwait)) {
      ++sent;
    } else {
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  absl::SleepFor(absl::Milliseconds(100));  // let the last ones flush
}

TEST(ZapRequest, ParsesCurveAndRejectsGarbage) {
  const std::string key(32, 'k');
  absl::StatusOr<ZapRequest> r =
      ParseZapRequest({"1.0", "1", "fabric", "127.0.0.1", "", "CURVE", key});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->client_key, key);
  EXPECT_EQ(r->address, "127.0.0.1");
  EXPECT_THAT(ParseZapRequest({"1.0", "1", "fabric"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseZapRequest({"2.0", "1", "fabric", "a", "", "CURVE", key}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      ParseZapRequest({"1.0", "1", "fabric", "a", "", "CURVE", "short"}),
      StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseZapRequest({"1.0", "1", "fabric", "a", "", "NULL", "x"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseZapRequest({"1.0", "1", "fabric", "a", "", "XYZ"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ZapRequest, DecidesOnDomainMechanismAndRoster) {
  const CurveKeypair a = Keys("a");
  const CurveKeypair b = Keys("b");
  const Roster roster({RosterEntry{"a", a.public_key, "", ""}});
  ZapRequest r{"1.0", "1", "fabric", "127.0.0.1", "", "CURVE", a.public_key};
  EXPECT_EQ(Decide(r, roster), ZapVerdict::kAllowed);
  r.client_key = b.public_key;
  EXPECT_EQ(Decide(r, roster), ZapVerdict::kUnknownKey);
  r.client_key = a.public_key;
  r.domain = "";
  EXPECT_EQ(Decide(r, roster), ZapVerdict::kWrongDomain);
  r.domain = "fabric";
  r.mechanism = "NULL";
  r.client_key.clear();
  EXPECT_EQ(Decide(r, roster), ZapVerdict::kWrongMechanism);
}

TEST(Zap, AdmitsRosterKeysWithUserIdAndRefusesOthers) {
  const CurveKeypair server_key = Keys("server");
  const CurveKeypair member = Keys("member");
  const CurveKeypair stranger = Keys("stranger");
  Server s;
  auto roster = RosterOf({&server_key, &member});
  absl::StatusOr<std::unique_ptr<ZapHandler>> zap =
      ZapHandler::Start(s.ctx, roster, "test");
  ASSERT_TRUE(zap.ok()) << zap.status();
  s.zap = std::move(*zap);
  s.router = zmq::socket_t(s.ctx, zmq::socket_type::router);
  ASSERT_TRUE(ApplyCurveServer(s.router, server_key).ok());
  s.Bind();

  zmq::context_t client_ctx(1);
  SendFrom(client_ctx, s.endpoint, stranger, server_key.public_key, 20);
  EXPECT_EQ(s.Drain(absl::Milliseconds(300)), 0);
  EXPECT_GE(s.zap->Stats().denied_unknown_key, 1u);

  SendFrom(client_ctx, s.endpoint, member, server_key.public_key, 20);
  std::string user_id;
  EXPECT_EQ(s.Drain(absl::Milliseconds(500), &user_id), 20);
  EXPECT_EQ(user_id, Z85Key(member.public_key));
  EXPECT_GE(s.zap->Stats().allowed, 1u);

  // The self-test passes on this socket, and its throwaway key is not
  // counted as a denial.
  const uint64_t denied = s.zap->Stats().denied_unknown_key;
  EXPECT_TRUE(SelfTest(*s.zap, s.endpoint, server_key.public_key, server_key,
                       zmq::socket_type::dealer, absl::Seconds(3))
                  .ok());
  EXPECT_EQ(s.zap->Stats().denied_unknown_key, denied);
}

TEST(Zap, RosterChangesApplyToTheNextHandshake) {
  const CurveKeypair server_key = Keys("server");
  const CurveKeypair member = Keys("member");
  Server s;
  auto roster = RosterOf({&server_key});
  s.zap = *ZapHandler::Start(s.ctx, roster, "test");
  s.router = zmq::socket_t(s.ctx, zmq::socket_type::router);
  ASSERT_TRUE(ApplyCurveServer(s.router, server_key).ok());
  s.Bind();
  zmq::context_t client_ctx(1);
  SendFrom(client_ctx, s.endpoint, member, server_key.public_key, 5);
  EXPECT_EQ(s.Drain(absl::Milliseconds(300)), 0);
  roster->Set(RosterOf({&server_key, &member})->Get());
  SendFrom(client_ctx, s.endpoint, member, server_key.public_key, 5);
  EXPECT_EQ(s.Drain(absl::Milliseconds(500)), 5);
}

TEST(Zap, SecondHandlerInOneContextIsRefused) {
  zmq::context_t ctx(1);
  auto roster = RosterOf({});
  absl::StatusOr<std::unique_ptr<ZapHandler>> first =
      ZapHandler::Start(ctx, roster, "one");
  ASSERT_TRUE(first.ok());
  EXPECT_THAT(ZapHandler::Start(ctx, roster, "two"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("FAB-SEC-ZAP-BIND")));
}

// S1: each fail-open set-up admits a stranger or never refuses it, and the
// self-test says so instead of passing.
TEST(SelfTest, CatchesNoHandlerInTheContext) {
  const CurveKeypair server_key = Keys("server");
  Server s;
  s.router = zmq::socket_t(s.ctx, zmq::socket_type::router);
  ASSERT_TRUE(ApplyCurveServer(s.router, server_key).ok());
  s.Bind();
  // A handler exists, but in another context: invisible to this socket.
  zmq::context_t other(1);
  auto roster = RosterOf({&server_key});
  std::unique_ptr<ZapHandler> elsewhere =
      *ZapHandler::Start(other, roster, "x");
  EXPECT_THAT(SelfTest(*elsewhere, s.endpoint, server_key.public_key,
                       server_key, zmq::socket_type::dealer, absl::Seconds(1)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("did not refuse a random key")));
}

TEST(SelfTest, CatchesEnforceDomainWithEmptyDomain) {
  const CurveKeypair server_key = Keys("server");
  Server s;
  auto roster = RosterOf({&server_key});
  s.zap = *ZapHandler::Start(s.ctx, roster, "test");
  s.router = zmq::socket_t(s.ctx, zmq::socket_type::router);
  // What ApplyCurveServer never does: option 93 without a domain, which
  // skips ZAP altogether.
  s.router.set(zmq::sockopt::curve_server, 1);
  s.router.set(zmq::sockopt::curve_secretkey,
               zmq::const_buffer(server_key.secret_key.data(), 32));
  const int one = 1;
  ASSERT_EQ(zmq_setsockopt(s.router.handle(), kZapEnforceDomainOption, &one,
                           sizeof(one)),
            0);
  s.Bind();
  EXPECT_THAT(SelfTest(*s.zap, s.endpoint, server_key.public_key, server_key,
                       zmq::socket_type::dealer, absl::Seconds(2)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("admitted a random key")));
}

TEST(SelfTest, CatchesOwnKeyMissingFromTheRoster) {
  const CurveKeypair server_key = Keys("server");
  Server s;
  auto roster = RosterOf({});
  s.zap = *ZapHandler::Start(s.ctx, roster, "test");
  s.router = zmq::socket_t(s.ctx, zmq::socket_type::router);
  ASSERT_TRUE(ApplyCurveServer(s.router, server_key).ok());
  s.Bind();
  EXPECT_THAT(
      SelfTest(*s.zap, s.endpoint, server_key.public_key, server_key,
               zmq::socket_type::dealer, absl::Seconds(2)),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("own key")));
}

// S11: the handler dies while the server lives; option 93 with our domain
// keeps even a roster key out, where libzmq alone would fall back to
// admitting anyone.
TEST(Zap, StoppedHandlerFailsClosed) {
  const CurveKeypair server_key = Keys("server");
  const CurveKeypair member = Keys("member");
  Server s;
  auto roster = RosterOf({&server_key, &member});
  s.zap = *ZapHandler::Start(s.ctx, roster, "test");
  s.router = zmq::socket_t(s.ctx, zmq::socket_type::router);
  ASSERT_TRUE(ApplyCurveServer(s.router, server_key).ok());
  s.Bind();
  s.zap->StopForTesting();
  EXPECT_FALSE(s.zap->running());
  zmq::context_t client_ctx(1);
  const CurveKeypair stranger = Keys("stranger");
  SendFrom(client_ctx, s.endpoint, stranger, server_key.public_key, 10);
  SendFrom(client_ctx, s.endpoint, member, server_key.public_key, 10);
  EXPECT_EQ(s.Drain(absl::Milliseconds(500)), 0);
}

TEST(CurveOptions, ServerOptionsReadBack) {
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::router);
  const CurveKeypair k = Keys("k");
  ASSERT_TRUE(ApplyCurveServer(s, k).ok());
  EXPECT_EQ(s.get(zmq::sockopt::zap_domain), kZapDomain);
  int enforce = 0;
  size_t size = sizeof(enforce);
  ASSERT_EQ(
      zmq_getsockopt(s.handle(), kZapEnforceDomainOption, &enforce, &size), 0);
  EXPECT_EQ(enforce, 1);
  zmq::socket_t c(ctx, zmq::socket_type::dealer);
  EXPECT_THAT(ApplyCurveClient(c, k, "short"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace fabric::security
