// SPDX-License-Identifier: Apache-2.0
#include "fabric/security/zap.h"

#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "fabric/base/errno_status.h"
#include "fabric/base/log.h"
#include "fabric/base/status_macros.h"
#include "fabric/base/thread_name.h"

namespace fabric::security {
namespace {

constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";
// Denied keys remembered for log suppression; beyond it every denial logs
// at debug level only.
constexpr size_t kMaxLoggedDenials = 1024;

absl::Status SocketError(absl::string_view what, const zmq::error_t& e) {
  return absl::FailedPreconditionError(
      absl::StrCat("FAB-SEC-SOCKET ", what, ": ", e.what()));
}

}  // namespace

RosterHolder::RosterHolder(std::shared_ptr<const Roster> roster)
    : roster_(std::move(roster)) {}

std::shared_ptr<const Roster> RosterHolder::Get() const {
  absl::MutexLock lock(&mu_);
  return roster_;
}

void RosterHolder::Set(std::shared_ptr<const Roster> roster) {
  absl::MutexLock lock(&mu_);
  roster_ = std::move(roster);
}

absl::StatusOr<ZapRequest> ParseZapRequest(
    const std::vector<std::string>& frames) {
  if (frames.size() < 6) {
    return absl::InvalidArgumentError(
        absl::StrCat("ZAP request of ", frames.size(), " frames"));
  }
  ZapRequest r;
  r.version = frames[0];
  r.request_id = frames[1];
  r.domain = frames[2];
  r.address = frames[3];
  r.identity = frames[4];
  r.mechanism = frames[5];
  if (r.version != "1.0") {
    return absl::InvalidArgumentError("ZAP request version is not 1.0");
  }
  if (r.mechanism == "CURVE") {
    if (frames.size() != 7 || frames[6].size() != kCurveKeyBytes) {
      return absl::InvalidArgumentError(
          "CURVE ZAP request without one 32-byte key");
    }
    r.client_key = frames[6];
  } else if (r.mechanism == "NULL") {
    if (frames.size() != 6) {
      return absl::InvalidArgumentError("NULL ZAP request with credentials");
    }
  } else if (r.mechanism != "PLAIN" && r.mechanism != "GSSAPI") {
    return absl::InvalidArgumentError("ZAP request of an unknown mechanism");
  }
  return r;
}

ZapVerdict Decide(const ZapRequest& request, const Roster& roster) {
  if (request.domain != kZapDomain) return ZapVerdict::kWrongDomain;
  if (request.mechanism != "CURVE") return ZapVerdict::kWrongMechanism;
  return roster.Contains(request.client_key) ? ZapVerdict::kAllowed
                                             : ZapVerdict::kUnknownKey;
}

ZapHandler::ZapHandler(std::shared_ptr<RosterHolder> roster, std::string owner)
    : roster_(std::move(roster)), owner_(std::move(owner)) {}

absl::StatusOr<std::unique_ptr<ZapHandler>> ZapHandler::Start(
    zmq::context_t& ctx, std::shared_ptr<RosterHolder> roster,
    std::string owner) {
  std::unique_ptr<ZapHandler> h(
      new ZapHandler(std::move(roster), std::move(owner)));
  try {
    h->socket_ = zmq::socket_t(ctx, zmq::socket_type::rep);
    h->socket_.set(zmq::sockopt::linger, 0);
    h->socket_.bind(kZapEndpoint);
  } catch (const zmq::error_t& e) {
    return absl::FailedPreconditionError(
        absl::StrCat("FAB-SEC-ZAP-BIND ", h->owner_,
                     ": cannot bind the ZAP handler: ", e.what()));
  }
  h->stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (h->stop_fd_ < 0) return ZmqErrnoToStatus(errno, "eventfd");
  h->running_.store(true, std::memory_order_release);
  h->thread_ = std::thread([raw = h.get()] { raw->Run(); });
  return h;
}

ZapHandler::~ZapHandler() {
  StopForTesting();
  if (stop_fd_ >= 0) close(stop_fd_);
}

void ZapHandler::StopForTesting() {
  if (!thread_.joinable()) return;
  const uint64_t one = 1;
  ssize_t n = write(stop_fd_, &one, sizeof(one));
  (void)n;
  thread_.join();
}

void ZapHandler::NoteSelfTestKey(absl::string_view public_key) {
  absl::MutexLock lock(&mu_);
  // One per self-test of this context; keep the last few.
  if (self_test_keys_.size() >= 16)
    self_test_keys_.erase(self_test_keys_.begin());
  self_test_keys_.emplace_back(public_key);
}

ZapStats ZapHandler::Stats() const {
  ZapStats s;
  s.allowed = allowed_.load(std::memory_order_relaxed);
  s.denied_unknown_key = denied_unknown_key_.load(std::memory_order_relaxed);
  s.denied_mechanism = denied_mechanism_.load(std::memory_order_relaxed);
  s.denied_domain = denied_domain_.load(std::memory_order_relaxed);
  s.malformed = malformed_.load(std::memory_order_relaxed);
  return s;
}

void ZapHandler::Run() {
  SetCurrentThreadName("fab-zap");
  try {
    Serve();
  } catch (const zmq::error_t& e) {
    FABRIC_LOG(kError, kSecurity, "FAB-SEC-ZAP-STOPPED ", owner_, ": ",
               e.what(), "; new connections are refused from now on");
  }
  try {
    socket_.close();
  } catch (const zmq::error_t&) {
  }
  running_.store(false, std::memory_order_release);
}

void ZapHandler::Serve() {
  while (true) {
    zmq::pollitem_t items[2] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                                {nullptr, stop_fd_, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(-1));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      throw;
    }
    if (items[1].revents & ZMQ_POLLIN) return;
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    std::vector<std::string> frames;
    zmq::message_t frame;
    do {
      (void)socket_.recv(frame, zmq::recv_flags::none);
      if (frames.size() < 16) frames.emplace_back(frame.to_string());
    } while (frame.more());
    absl::StatusOr<ZapRequest> request = ParseZapRequest(frames);
    std::string status = "400";
    std::string text = "refused";
    std::string user_id;
    if (!request.ok()) {
      malformed_.fetch_add(1, std::memory_order_relaxed);
      FABRIC_LOG(kWarning, kSecurity, "FAB-SEC-ZAP-MALFORMED ", owner_, ": ",
                 request.status().message());
    } else {
      const std::shared_ptr<const Roster> roster = roster_->Get();
      const ZapVerdict verdict =
          roster ? Decide(*request, *roster) : ZapVerdict::kUnknownKey;
      bool self_test = false;
      {
        absl::MutexLock lock(&mu_);
        self_test = std::find(self_test_keys_.begin(), self_test_keys_.end(),
                              request->client_key) != self_test_keys_.end();
      }
      switch (verdict) {
        case ZapVerdict::kAllowed:
          allowed_.fetch_add(1, std::memory_order_relaxed);
          status = "200";
          text = "OK";
          user_id = Z85Key(request->client_key);
          break;
        case ZapVerdict::kUnknownKey:
          if (!self_test) {
            denied_unknown_key_.fetch_add(1, std::memory_order_relaxed);
          }
          text = "key not in roster";
          break;
        case ZapVerdict::kWrongMechanism:
          denied_mechanism_.fetch_add(1, std::memory_order_relaxed);
          text = "CURVE required";
          break;
        case ZapVerdict::kWrongDomain:
          denied_domain_.fetch_add(1, std::memory_order_relaxed);
          text = "wrong ZAP domain";
          break;
      }
      if (verdict != ZapVerdict::kAllowed && !self_test) {
        const std::string who =
            request->client_key.empty()
                ? request->mechanism
                : absl::StrCat("key ", KeyFingerprint(request->client_key));
        const bool first =
            std::find(logged_denials_.begin(), logged_denials_.end(), who) ==
            logged_denials_.end();
        if (first && logged_denials_.size() < kMaxLoggedDenials) {
          logged_denials_.push_back(who);
          FABRIC_LOG(kWarning, kSecurity, "FAB-SEC-ZAP-DENIED ", owner_,
                     " refused ", who, " from ", request->address, ": ", text);
        } else {
          FABRIC_LOG(kDebug, kSecurity, "FAB-SEC-ZAP-DENIED ", owner_,
                     " refused ", who, " from ", request->address, ": ", text);
        }
      }
    }
    const std::string id = request.ok()        ? request->request_id
                           : frames.size() > 1 ? frames[1]
                                               : std::string("1");
    socket_.send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(id), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(status), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(text), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(user_id), zmq::send_flags::sndmore);
    socket_.send(zmq::const_buffer(nullptr, 0), zmq::send_flags::none);
  }
}

absl::Status ApplyCurveServer(zmq::socket_t& s, const CurveKeypair& key) {
  try {
    s.set(zmq::sockopt::curve_server, 1);
    s.set(zmq::sockopt::curve_secretkey,
          zmq::const_buffer(key.secret_key.data(), key.secret_key.size()));
    s.set(zmq::sockopt::zap_domain, std::string(kZapDomain));
  } catch (const zmq::error_t& e) {
    return SocketError("CURVE server options", e);
  }
  const int one = 1;
  if (zmq_setsockopt(s.handle(), kZapEnforceDomainOption, &one, sizeof(one)) !=
      0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "FAB-SEC-SOCKET this libzmq refuses option ", kZapEnforceDomainOption,
        " (ZAP_ENFORCE_DOMAIN): ", zmq_strerror(zmq_errno()),
        "; secure mode cannot fail closed with it"));
  }
  int enforce = 0;
  size_t size = sizeof(enforce);
  if (zmq_getsockopt(s.handle(), kZapEnforceDomainOption, &enforce, &size) !=
          0 ||
      enforce != 1) {
    return absl::FailedPreconditionError(
        "FAB-SEC-SOCKET ZAP_ENFORCE_DOMAIN does not read back as 1");
  }
  try {
    if (s.get(zmq::sockopt::zap_domain) != kZapDomain ||
        s.get(zmq::sockopt::curve_server) != 1) {
      return absl::FailedPreconditionError(
          "FAB-SEC-SOCKET the CURVE server options do not read back");
    }
  } catch (const zmq::error_t& e) {
    return SocketError("read back CURVE server options", e);
  }
  return absl::OkStatus();
}

absl::Status ApplyCurveClient(zmq::socket_t& s, const CurveKeypair& key,
                              absl::string_view server_key) {
  if (server_key.size() != kCurveKeyBytes) {
    return absl::InvalidArgumentError("a CURVE server key has 32 bytes");
  }
  try {
    s.set(zmq::sockopt::curve_serverkey,
          zmq::const_buffer(server_key.data(), server_key.size()));
    s.set(zmq::sockopt::curve_publickey,
          zmq::const_buffer(key.public_key.data(), key.public_key.size()));
    s.set(zmq::sockopt::curve_secretkey,
          zmq::const_buffer(key.secret_key.data(), key.secret_key.size()));
  } catch (const zmq::error_t& e) {
    return SocketError("CURVE client options", e);
  }
  return absl::OkStatus();
}

namespace {

// Connects one client and returns the first handshake event (id, value), or
// {0, 0} when none came within `timeout`.
absl::StatusOr<std::pair<uint16_t, int32_t>> Handshake(
    zmq::context_t& ctx, const std::string& endpoint,
    absl::string_view server_key, const CurveKeypair& key,
    zmq::socket_type type, absl::Duration timeout, int n) {
  try {
    zmq::socket_t client(ctx, type);
    client.set(zmq::sockopt::linger, 0);
    FABRIC_RETURN_IF_ERROR(ApplyCurveClient(client, key, server_key));
    const std::string monitor = absl::StrCat("inproc://fabric-selftest-", n);
    if (zmq_socket_monitor(client.handle(), monitor.c_str(),
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0) {
      return ZmqErrnoToStatus(zmq_errno(), "zmq_socket_monitor");
    }
    zmq::socket_t events(ctx, zmq::socket_type::pair);
    events.set(zmq::sockopt::linger, 0);
    events.set(zmq::sockopt::rcvtimeo,
               static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    events.connect(monitor);
    client.connect(endpoint);
    std::pair<uint16_t, int32_t> result{0, 0};
    zmq::message_t event;
    zmq::message_t address;
    if (events.recv(event)) {
      if (event.more()) (void)events.recv(address);
      if (event.size() >= 6) {
        std::memcpy(&result.first, event.data(), 2);
        std::memcpy(&result.second, static_cast<char*>(event.data()) + 2, 4);
      }
    }
    zmq_socket_monitor(client.handle(), nullptr, 0);
    return result;
  } catch (const zmq::error_t& e) {
    return SocketError("self-test client", e);
  }
}

}  // namespace

absl::Status SelfTest(ZapHandler& handler, const std::string& endpoint,
                      absl::string_view server_key, const CurveKeypair& own,
                      zmq::socket_type client_type, absl::Duration timeout) {
  absl::StatusOr<CurveKeypair> stranger = GenerateKeypair("self-test");
  if (!stranger.ok()) return stranger.status();
  handler.NoteSelfTestKey(stranger->public_key);
  zmq::context_t ctx(1);
  static std::atomic<int> seq{0};
  absl::StatusOr<std::pair<uint16_t, int32_t>> refused =
      Handshake(ctx, endpoint, server_key, *stranger, client_type, timeout,
                seq.fetch_add(1));
  if (!refused.ok()) return refused.status();
  if (refused->first != ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
    return absl::FailedPreconditionError(absl::StrCat(
        "FAB-SEC-SELFTEST-FAILED ", endpoint,
        refused->first == ZMQ_EVENT_HANDSHAKE_SUCCEEDED
            ? " admitted a random key: it would let anyone in"
            : absl::StrCat(" did not refuse a random key with an "
                           "authentication failure (event ",
                           refused->first, ", value ", refused->second, ")")));
  }
  absl::StatusOr<std::pair<uint16_t, int32_t>> admitted = Handshake(
      ctx, endpoint, server_key, own, client_type, timeout, seq.fetch_add(1));
  if (!admitted.ok()) return admitted.status();
  if (admitted->first != ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "FAB-SEC-SELFTEST-FAILED ", endpoint,
        " did not admit this node's own key (event ", admitted->first,
        ", value ", admitted->second, "): is it in the roster?"));
  }
  return absl::OkStatus();
}

}  // namespace fabric::security
