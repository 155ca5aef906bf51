// SPDX-License-Identifier: Apache-2.0
// Fail-closed CURVE for every ZeroMQ server socket (docs/security.md).
//
// libzmq 4.3.4 lets any client in when a CURVE server's own context has no
// ZAP handler, when the handler stops, or when option 93 (enforce domain)
// is set with an empty domain (security-anchors.md section 2.3). So every
// context with a CURVE server socket runs a `ZapHandler` started before the
// socket binds and stopped after it closes; every server socket gets a
// non-empty ZAP domain and option 93, read back; and `SelfTest` proves, on
// the bound socket, that a stranger's key is refused and our own admitted.
#ifndef FABRIC_SECURITY_ZAP_H_
#define FABRIC_SECURITY_ZAP_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fabric/security/keys.h"

namespace fabric::security {

// The ZAP domain of every fabric server socket. Never empty (see above).
inline constexpr absl::string_view kZapDomain = "fabric";
// libzmq's ZMQ_ZAP_ENFORCE_DOMAIN: a DRAFT constant that Debian's stable
// build honours (security-anchors.md section 2.6). Set by number, read back.
inline constexpr int kZapEnforceDomainOption = 93;

// The current roster, replaced as a whole on reload. Thread safety: all
// methods are thread-safe; a snapshot, once taken, never changes.
class RosterHolder {
 public:
  explicit RosterHolder(std::shared_ptr<const Roster> roster);
  std::shared_ptr<const Roster> Get() const;
  void Set(std::shared_ptr<const Roster> roster);

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const Roster> roster_ ABSL_GUARDED_BY(mu_);
};

// One ZAP request (RFC 27) as libzmq sends it for CURVE: seven frames.
struct ZapRequest {
  std::string version;     // "1.0"
  std::string request_id;  // echoed in the reply
  std::string domain;
  std::string address;   // the client's IP
  std::string identity;  // the server socket's routing id
  std::string mechanism;
  std::string client_key;  // 32 raw bytes for CURVE
};

// Parses the frames of a request (a REP socket strips the envelope).
// kInvalidArgument for a wrong frame count, version or mechanism layout;
// pure, so it can be fuzzed.
absl::StatusOr<ZapRequest> ParseZapRequest(
    const std::vector<std::string>& frames);

enum class ZapVerdict {
  kAllowed,
  kUnknownKey,      // CURVE with a key not in the roster
  kWrongMechanism,  // NULL or PLAIN
  kWrongDomain,
};
// Decides one request against `roster`. Pure.
ZapVerdict Decide(const ZapRequest& request, const Roster& roster);

struct ZapStats {
  uint64_t allowed = 0;
  uint64_t denied_unknown_key = 0;
  uint64_t denied_mechanism = 0;
  uint64_t denied_domain = 0;
  uint64_t malformed = 0;  // requests that did not parse (answered 400)
};

// A ZAP handler bound on inproc://zeromq.zap.01 of one context, answering on
// its own thread: 200 with User-Id = the Z85 client key for a CURVE client
// in the roster, 400 otherwise (never 300: clients would retry forever).
// Denials are logged once per key (FAB-SEC-ZAP-DENIED, with the client's IP
// and the key's fingerprint). Thread safety: Stats and running are
// thread-safe. Destroy it after every server socket of the context closed
// and before the context closes.
class ZapHandler {
 public:
  // `owner` names the node or publisher in logs.
  static absl::StatusOr<std::unique_ptr<ZapHandler>> Start(
      zmq::context_t& ctx, std::shared_ptr<RosterHolder> roster,
      std::string owner);
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  ZapStats Stats() const;
  // False once the thread has stopped, by the destructor or by a failure
  // (logged as FAB-SEC-ZAP-STOPPED). Option 93 keeps the server sockets
  // closed to new clients then.
  bool running() const { return running_.load(std::memory_order_acquire); }
  // Test hook: stops the thread as a failure would, keeping the object.
  void StopForTesting();
  // `SelfTest` announces its throwaway key here, so that refusing it is
  // neither logged nor counted as a denial.
  void NoteSelfTestKey(absl::string_view public_key);

 private:
  ZapHandler(std::shared_ptr<RosterHolder> roster, std::string owner);
  void Run();
  void Serve();

  const std::shared_ptr<RosterHolder> roster_;
  const std::string owner_;
  zmq::socket_t socket_;
  int stop_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> allowed_{0}, denied_unknown_key_{0},
      denied_mechanism_{0}, denied_domain_{0}, malformed_{0};
  mutable absl::Mutex mu_;
  std::vector<std::string> self_test_keys_ ABSL_GUARDED_BY(mu_);
  // Handler thread only: keys whose denial was logged already.
  std::vector<std::string> logged_denials_;
};

// Makes `s` a CURVE server under `key`, with the ZAP domain and option 93
// set and read back. Call before bind. kFailedPrecondition
// (FAB-SEC-SOCKET) when libzmq refuses or reads back another value.
absl::Status ApplyCurveServer(zmq::socket_t& s, const CurveKeypair& key);
// Makes `s` a CURVE client of the server whose public key is `server_key`
// (32 raw bytes). Call before connect.
absl::Status ApplyCurveClient(zmq::socket_t& s, const CurveKeypair& key,
                              absl::string_view server_key);

// Proves fail-closed on a bound CURVE server: from a throwaway context, a
// client of type `client_type` with a fresh random key must see
// HANDSHAKE_FAILED_AUTH and one with `own` HANDSHAKE_SUCCEEDED, each within
// `timeout`. `server_key` is the server's public key. kFailedPrecondition
// (FAB-SEC-SELFTEST-FAILED) naming what happened otherwise.
// `handler` is the ZAP handler of the server's context (told the throwaway
// key).
absl::Status SelfTest(ZapHandler& handler, const std::string& endpoint,
                      absl::string_view server_key, const CurveKeypair& own,
                      zmq::socket_type client_type, absl::Duration timeout);

}  // namespace fabric::security

#endif  // FABRIC_SECURITY_ZAP_H_
