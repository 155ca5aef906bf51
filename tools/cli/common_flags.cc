// SPDX-License-Identifier: Apache-2.0
#include "tools/cli/common_flags.h"

#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "fabric/base/log.h"
#include "fabric/base/status_macros.h"

namespace fabric::cli {
namespace {

absl::StatusOr<std::pair<std::string, std::string>> SplitPair(
    absl::string_view flag, const std::string& text) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " wants KEY=VALUE, got '", text, "'"));
  }
  return std::make_pair(text.substr(0, eq), text.substr(eq + 1));
}

absl::Status SetDuration(absl::string_view flag, const std::string& text,
                         absl::Duration* out) {
  if (text.empty()) return absl::OkStatus();
  FABRIC_ASSIGN_OR_RETURN(*out, ParseDurationFlag(flag, text));
  return absl::OkStatus();
}

}  // namespace

void AddSecurityFlags(CLI::App& app, CommonFlags& f,
                      const std::string& prefix) {
  const std::string p = "--" + prefix;
  // fabric-relay's per-side flags ("a-", "b-") name the side; the
  // environment variables apply to both sides there.
  const std::string whose =
      prefix.empty()
          ? "this node's"
          : absl::StrCat("side ", prefix.substr(0, prefix.size() - 1), "'s");
  const std::string env = prefix.empty() ? "env " : "env, both sides: ";
  app.add_option(p + "security", f.security,
                 absl::StrCat("off (default) or curve for ", whose,
                              " node; any of the next three implies curve (",
                              env, "FABRIC_SECURITY)"));
  app.add_option(p + "key", f.key_file,
                 absl::StrCat(whose, " key file, owner-only (fabric keygen; ",
                              env, "FABRIC_KEY_FILE)"));
  app.add_option(
      p + "roster", f.roster,
      absl::StrCat("directory of the *.pub keys allowed to join ",
                   prefix.empty() ? std::string() : whose + " node ",
                   "(reloaded on change and SIGHUP; ", env, "FABRIC_ROSTER)"));
  app.add_option(p + "beacon-secret", f.beacon_secret,
                 absl::StrCat(prefix.empty() ? "the cluster's" : whose,
                              " beacon secret file, owner-only (fabric keygen "
                              "--beacon-secret; ",
                              env, "FABRIC_BEACON_SECRET_FILE)"));
}

void AddCommonFlags(CLI::App& app, CommonFlags& f) {
  app.add_option("--cluster", f.cluster,
                 "cluster name; nodes only see their own cluster "
                 "(default 'default', env FABRIC_CLUSTER)");
  app.add_option("--name", f.name, "this node's name (default node-<id>)");
  app.add_option("--discovery", f.discovery,
                 "loopback (default), lan or seeds (env FABRIC_DISCOVERY)");
  app.add_option("--interface", f.interface,
                 "network interface for lan discovery (env FABRIC_INTERFACE)");
  app.add_option("--beacon-port", f.beacon_port,
                 "UDP beacon port (default 47470, env FABRIC_BEACON_PORT)")
      ->check(CLI::Range(1, 65535));
  app.add_option("--port", f.port,
                 "TCP port of this node's mailbox (default: any free port)")
      ->check(CLI::Range(1, 65535));
  app.add_option("--seed", f.seeds,
                 "seed mailbox endpoint tcp://HOST:PORT (repeatable; env "
                 "FABRIC_SEEDS, comma-separated)");
  app.add_option("--header", f.headers, "HELLO header KEY=VALUE (repeatable)");
  app.add_option(
      "--offer", f.offers,
      "advertise an offer KIND=NAME, e.g. queue=images (repeatable)");
  AddSecurityFlags(app, f);
  AddTimingFlags(app, f);
}

void AddTimingFlags(CLI::App& app, CommonFlags& f) {
  app.add_option("--log-level", f.log_level,
                 "debug, info, warning (default) or error");
  app.add_option("--beacon-interval", f.beacon_interval,
                 "time between beacons (default 1s)");
  app.add_option("--heartbeat-interval", f.heartbeat_interval,
                 "heartbeat to quiet peers (default 1s; peers that hear our "
                 "beacons need none)");
  app.add_option("--suspect-timeout", f.suspect_timeout,
                 "silence before a peer is suspect (default 2s)");
  app.add_option("--dead-timeout", f.dead_timeout,
                 "silence before a peer is dead (default 3s)");
}

absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view flag,
                                                 absl::string_view text) {
  absl::Duration d;
  double seconds = 0;
  if (absl::SimpleAtod(text, &seconds)) {
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &d)) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": '", text, "' is not a duration (like 1.5s, 200ms, 2m)"));
  }
  if (d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": duration must not be negative"));
  }
  return d;
}

absl::Status ApplyLogLevel(const CommonFlags& f) {
  if (!f.log_level.empty()) {
    FABRIC_ASSIGN_OR_RETURN(LogLevel level, ParseLogLevel(f.log_level));
    SetLogLevel(level);
  } else if (const char* env = std::getenv("FABRIC_LOG_LEVEL");
             env != nullptr && *env != '\0') {
    // The library alone falls back to its default on a bad value; the CLI
    // refuses it, as it refuses a bad --log-level.
    absl::StatusOr<LogLevel> level = ParseLogLevel(env);
    if (!level.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("FABRIC_LOG_LEVEL: ", level.status().message()));
    }
    SetLogLevel(*level);
  }
  return absl::OkStatus();
}

absl::StatusOr<NodeOptions> BuildNodeOptions(const CommonFlags& f) {
  FABRIC_RETURN_IF_ERROR(ApplyLogLevel(f));
  NodeOptions o;
  FABRIC_RETURN_IF_ERROR(ApplyEnvironment(&o));
  if (!f.cluster.empty()) o.cluster = f.cluster;
  if (!f.name.empty()) o.name = f.name;
  if (!f.discovery.empty()) {
    FABRIC_ASSIGN_OR_RETURN(o.discovery, ParseDiscoveryMode(f.discovery));
  }
  if (!f.interface.empty()) o.interface = f.interface;
  if (f.beacon_port != 0) o.beacon_port = static_cast<uint16_t>(f.beacon_port);
  if (f.port != 0) o.mailbox_port = static_cast<uint16_t>(f.port);
  if (!f.seeds.empty()) o.seeds = f.seeds;
  if (!o.seeds.empty() && f.discovery.empty() &&
      std::getenv("FABRIC_DISCOVERY") == nullptr) {
    o.discovery = DiscoveryMode::kSeeds;  // --seed alone means seeds mode
  }
  for (const std::string& h : f.headers) {
    FABRIC_ASSIGN_OR_RETURN(auto kv, SplitPair("--header", h));
    o.headers[kv.first] = kv.second;
  }
  FABRIC_RETURN_IF_ERROR(
      SetDuration("--beacon-interval", f.beacon_interval, &o.beacon_interval));
  FABRIC_RETURN_IF_ERROR(SetDuration(
      "--heartbeat-interval", f.heartbeat_interval, &o.heartbeat_interval));
  FABRIC_RETURN_IF_ERROR(
      SetDuration("--suspect-timeout", f.suspect_timeout, &o.suspect_timeout));
  FABRIC_RETURN_IF_ERROR(
      SetDuration("--dead-timeout", f.dead_timeout, &o.dead_timeout));
  if (!f.security.empty()) {
    absl::StatusOr<SecurityMode> mode = ParseSecurityMode(f.security);
    if (!mode.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--security: ", mode.status().message()));
    }
    if (*mode == SecurityMode::kOff) {
      if (!f.key_file.empty() || !f.roster.empty() ||
          !f.beacon_secret.empty()) {
        return absl::InvalidArgumentError(
            "--security off contradicts --key, --roster and --beacon-secret");
      }
      // A flag beats the environment: an explicit off is plaintext even
      // where FABRIC_KEY_FILE and the like name files (fabric-relay's
      // plaintext side under an environment meant for its secure one).
      o.security = SecurityOptions();
    }
    o.security.mode = *mode;
  }
  if (!f.key_file.empty()) o.security.key_file = f.key_file;
  if (!f.roster.empty()) o.security.roster_dir = f.roster;
  if (!f.beacon_secret.empty()) {
    o.security.beacon_secret_file = f.beacon_secret;
  }
  if (o.discovery == DiscoveryMode::kLan && o.interface.empty()) {
    return absl::InvalidArgumentError(
        "--discovery lan needs --interface IF (or FABRIC_INTERFACE)");
  }
  FABRIC_RETURN_IF_ERROR(ValidateNodeOptions(o));
  return o;
}

namespace {

absl::Mutex hangup_mu(absl::kConstInit);
std::vector<Node*>& HangupNodes() ABSL_EXCLUSIVE_LOCKS_REQUIRED(hangup_mu) {
  static auto* nodes = new std::vector<Node*>();
  return *nodes;
}

void ReloadRegisteredRosters() {
  absl::MutexLock lock(&hangup_mu);
  for (Node* node : HangupNodes()) {
    if (node->security() == nullptr) continue;
    absl::Status reloaded = node->ReloadRoster();
    if (reloaded.ok()) {
      FABRIC_LOG(kInfo, kSecurity, "FAB-SEC-SIGHUP ", node->name(),
                 ": roster reloaded");
    } else {
      FABRIC_LOG(kError, kSecurity, "FAB-SEC-SIGHUP ", node->name(), ": ",
                 reloaded.message());
    }
  }
}

}  // namespace

ReloadOnHangup::ReloadOnHangup(Node* node) : node_(node) {
  absl::MutexLock lock(&hangup_mu);
  HangupNodes().push_back(node_);
}

ReloadOnHangup::~ReloadOnHangup() {
  absl::MutexLock lock(&hangup_mu);
  std::vector<Node*>& nodes = HangupNodes();
  nodes.erase(std::find(nodes.begin(), nodes.end(), node_));
}

void BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

bool WaitForSignal(absl::Duration timeout) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const timespec ts = absl::ToTimespec(
        std::max(deadline - absl::Now(), absl::ZeroDuration()));
    const int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig != SIGHUP) return sig > 0;
    ReloadRegisteredRosters();
  }
}

}  // namespace fabric::cli
