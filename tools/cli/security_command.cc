// SPDX-License-Identifier: Apache-2.0
// `fabric security check`: every start-up check of secure mode, run
// without joining a cluster (docs/cli.md "security check"): CURVE in
// libzmq, the key file, the roster and this node's key in it, the beacon
// secret, each seed's key, and the ZAP self-test on a throwaway mailbox
// (ROUTER) and publisher (XPUB) bound on 127.0.0.1, each in its own context
// with its own handler, as a node and its publishers run them. One line per
// check on stdout; nothing printed is secret.
#include <zmq.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "discovery/beacon_auth.h"
#include "fabric/base/status_macros.h"
#include "fabric/log.h"
#include "fabric/security/keys.h"
#include "fabric/security/node_security.h"
#include "fabric/security/zap.h"
#include "tools/cli/commands.h"

namespace fabric::cli {
namespace {

using security::CurveKeypair;
using security::NodeSecurity;

// As the node's own self-test (fabric/internal/engine.cc).
constexpr absl::Duration kSelfTestTimeout = absl::Seconds(3);

// Prints one line per check as it completes and counts the failures.
// Thread safety: thread-compatible.
class Report {
 public:
  void Ok(absl::string_view check, absl::string_view detail) {
    ++checks_;
    Line("ok", check, detail);
  }
  void Fail(absl::string_view check, absl::string_view detail) {
    ++checks_;
    ++failed_;
    Line("FAIL", check, detail);
  }
  // A finding that does not stop a node from starting (a roster warning).
  void Warn(absl::string_view check, absl::string_view detail) {
    Line("warn", check, detail);
  }
  // A check that could not run because an earlier one failed.
  void Skip(absl::string_view check, absl::string_view detail) {
    Line("skip", check, detail);
  }
  int failed() const { return failed_; }
  int checks() const { return checks_; }  // passed or failed

 private:
  void Line(absl::string_view verdict, absl::string_view check,
            absl::string_view detail) {
    const std::string line = absl::StrCat(verdict, " ", check, " ", detail);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }

  int failed_ = 0;
  int checks_ = 0;
};

std::optional<CurveKeypair> CheckKey(const SecurityOptions& o, Report& r) {
  if (o.key_file.empty()) {
    r.Fail("key",
           "FAB-SEC-KEY-MISSING no key file (--key or FABRIC_KEY_FILE; make "
           "one with `fabric keygen NAME`)");
    return std::nullopt;
  }
  absl::StatusOr<CurveKeypair> keypair = security::LoadKeyFile(o.key_file);
  if (!keypair.ok()) {
    r.Fail("key", keypair.status().message());
    return std::nullopt;
  }
  r.Ok("key",
       absl::StrCat(o.key_file, ": name '", keypair->name, "', fingerprint ",
                    security::KeyFingerprint(keypair->public_key)));
  return *std::move(keypair);
}

std::optional<security::Roster> CheckRoster(const SecurityOptions& o,
                                            const CurveKeypair* keypair,
                                            Report& r) {
  if (o.roster_dir.empty()) {
    r.Fail("roster",
           "FAB-SEC-ROSTER-MISSING no roster directory (--roster or "
           "FABRIC_ROSTER) of the *.pub keys allowed to join");
    return std::nullopt;
  }
  std::vector<std::string> warnings;
  absl::StatusOr<security::Roster> roster =
      security::LoadRoster(o.roster_dir, &warnings);
  if (!roster.ok()) {
    r.Fail("roster", roster.status().message());
    return std::nullopt;
  }
  r.Ok("roster", absl::StrCat(o.roster_dir, ": ", roster->size(), " key",
                              roster->size() == 1 ? "" : "s"));
  for (const std::string& w : warnings) r.Warn("roster", w);
  if (keypair == nullptr) {
    r.Skip("self", "needs the key file");
  } else if (const security::RosterEntry* self =
                 roster->Find(keypair->public_key);
             self == nullptr) {
    r.Fail("self",
           absl::StrCat("FAB-SEC-ROSTER-SELF the roster ", o.roster_dir,
                        " lacks this node's own key (fingerprint ",
                        security::KeyFingerprint(keypair->public_key), " from ",
                        o.key_file, "): copy its .pub file there"));
  } else {
    r.Ok("self", absl::StrCat("the roster holds this node's key as '",
                              self->name, "' (", self->file, ")"));
  }
  return *std::move(roster);
}

void CheckBeaconSecret(const NodeOptions& options, Report& r) {
  const SecurityOptions& o = options.security;
  if (o.beacon_secret_file.empty()) {
    if (options.discovery == DiscoveryMode::kSeeds) {
      r.Ok("beacon-secret", "none: seeds discovery sends no beacons");
    } else {
      r.Fail("beacon-secret",
             absl::StrCat("FAB-SEC-BEACON-MISSING ",
                          DiscoveryModeName(options.discovery),
                          " discovery needs a beacon secret (--beacon-secret "
                          "or FABRIC_BEACON_SECRET_FILE; make one with "
                          "`fabric keygen --beacon-secret FILE`)"));
    }
    return;
  }
  absl::StatusOr<security::BeaconSecrets> secrets =
      security::LoadBeaconSecrets(o.beacon_secret_file);
  if (!secrets.ok()) {
    r.Fail("beacon-secret", secrets.status().message());
    return;
  }
  // What the node does with it next: derive the cluster's beacon keys.
  absl::StatusOr<discovery::BeaconAuthenticator> auth =
      discovery::BeaconAuthenticator::Create(secrets->secrets, secrets->primary,
                                             options.cluster);
  if (!auth.ok()) {
    r.Fail("beacon-secret",
           absl::StrCat("FAB-SEC-BEACON-FORMAT ", o.beacon_secret_file, ": ",
                        auth.status().message()));
    return;
  }
  r.Ok("beacon-secret",
       absl::StrCat(o.beacon_secret_file, ": key ids ",
                    absl::StrJoin(auth->key_ids(), " ",
                                  [](std::string* out, uint8_t id) {
                                    absl::StrAppend(out, id);
                                  }),
                    ", primary ", auth->primary_key_id(), ", cluster '",
                    options.cluster, "'"));
}

// Each seed's server key, resolved as LoadNodeSecurity resolves it.
void CheckSeeds(const NodeOptions& options, const security::Roster* roster,
                Report& r) {
  for (const std::string& seed : options.seeds) {
    if (roster == nullptr) {
      r.Skip("seed", absl::StrCat(seed, ": needs the roster"));
      continue;
    }
    const absl::string_view endpoint = security::SeedEndpoint(seed);
    const security::RosterEntry* entry = nullptr;
    if (endpoint.size() != seed.size()) {
      const absl::string_view name =
          absl::string_view(seed).substr(endpoint.size() + 1);
      entry = roster->FindByName(name);
      if (entry == nullptr) {
        r.Fail("seed",
               absl::StrCat("FAB-SEC-SEED-KEY seed ", seed, ": the roster ",
                            options.security.roster_dir,
                            " has no entry named '", name, "'"));
        continue;
      }
    } else {
      entry = roster->FindByEndpoint(endpoint);
      if (entry == nullptr) {
        r.Fail("seed", absl::StrCat("FAB-SEC-SEED-KEY seed ", seed,
                                    ": no roster entry has this endpoint; "
                                    "write it as ",
                                    seed, "#NAME for the roster entry NAME"));
        continue;
      }
    }
    r.Ok("seed",
         absl::StrCat(seed, ": roster entry '", entry->name, "', fingerprint ",
                      security::KeyFingerprint(entry->public_key)));
  }
}

// Binds a CURVE server of `server_type` on 127.0.0.1 in a context of its
// own with its own ZAP handler, and runs the node's self-test against it.
// Returns the endpoint it tested.
absl::StatusOr<std::string> SelfTestOn(const NodeSecurity& secure,
                                       zmq::socket_type server_type,
                                       zmq::socket_type client_type) {
  // Member order is the lifetime order security/zap.h asks for: the
  // handler starts before the server binds and stops after it closes.
  zmq::context_t ctx(1);
  absl::StatusOr<std::unique_ptr<security::ZapHandler>> zap =
      security::ZapHandler::Start(ctx, secure.roster, "security check");
  if (!zap.ok()) return zap.status();
  std::string endpoint;
  try {
    zmq::socket_t server(ctx, server_type);
    server.set(zmq::sockopt::linger, 0);
    FABRIC_RETURN_IF_ERROR(security::ApplyCurveServer(server, secure.keypair));
    server.bind("tcp://127.0.0.1:*");
    endpoint = server.get(zmq::sockopt::last_endpoint);
    FABRIC_RETURN_IF_ERROR(
        security::SelfTest(**zap, endpoint, secure.keypair.public_key,
                           secure.keypair, client_type, kSelfTestTimeout));
  } catch (const zmq::error_t& e) {
    return absl::FailedPreconditionError(absl::StrCat(
        "FAB-SEC-SOCKET a throwaway server on 127.0.0.1: ", e.what(),
        " (errno ", e.num(), ")"));
  }
  return endpoint;
}

void CheckZap(const NodeOptions& options, Report& r) {
  // The node's own loader, as the authority: the checks above mirror it one
  // by one, and the self-test runs on what it loaded.
  // Its roster warnings were printed above as "warn roster" lines; keep
  // them off stderr the second time.
  const LogLevel level = GetLogLevel();
  if (level < LogLevel::kError) SetLogLevel(LogLevel::kError);
  absl::StatusOr<std::shared_ptr<NodeSecurity>> secure =
      security::LoadNodeSecurity(options);
  SetLogLevel(level);
  if (!secure.ok()) {
    r.Fail("load", secure.status().message());
    return;
  }
  struct Server {
    const char* what;
    zmq::socket_type server;
    zmq::socket_type client;
  };
  for (const Server& s :
       {Server{"mailbox", zmq::socket_type::router, zmq::socket_type::dealer},
        Server{"publisher", zmq::socket_type::xpub, zmq::socket_type::sub}}) {
    const std::string check = absl::StrCat("zap-", s.what);
    absl::StatusOr<std::string> tested =
        SelfTestOn(**secure, s.server, s.client);
    if (tested.ok()) {
      r.Ok(check, absl::StrCat(*tested,
                               ": a random key refused, this node's key "
                               "admitted"));
    } else {
      r.Fail(check, tested.status().message());
    }
  }
}

}  // namespace

absl::Status RunSecurityCheck(const CommonFlags& common) {
  FABRIC_ASSIGN_OR_RETURN(NodeOptions options, BuildNodeOptions(common));
  // The check is of secure mode whatever turned it on, or nothing did.
  options.security.mode = SecurityMode::kCurve;
  Report r;
  if (zmq_has("curve") == 1) {
    int major = 0, minor = 0, patch = 0;
    zmq_version(&major, &minor, &patch);
    r.Ok("curve",
         absl::StrCat("libzmq ", major, ".", minor, ".", patch, " has CURVE"));
  } else {
    r.Fail("curve", "FAB-SEC-NO-CURVE this libzmq was built without CURVE");
  }
  const SecurityOptions& o = options.security;
  const std::optional<CurveKeypair> keypair = CheckKey(o, r);
  const std::optional<security::Roster> roster =
      CheckRoster(o, keypair ? &*keypair : nullptr, r);
  CheckBeaconSecret(options, r);
  CheckSeeds(options, roster ? &*roster : nullptr, r);
  if (r.failed() == 0) {
    CheckZap(options, r);
  } else {
    r.Skip("zap", "the self-test needs every check above to pass");
  }
  if (r.failed() > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("security check: ", r.failed(), " of ", r.checks(),
                     " checks failed; a node would refuse to start"));
  }
  return absl::OkStatus();
}

}  // namespace fabric::cli
