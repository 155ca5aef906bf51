// SPDX-License-Identifier: Apache-2.0
#include "fabric/node_options.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace fabric {
namespace {

absl::Status Bad(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("option ", field, ": ", why));
}

bool InRange(absl::Duration d, absl::Duration lo, absl::Duration hi) {
  return d >= lo && d <= hi;
}

}  // namespace

absl::string_view DiscoveryModeName(DiscoveryMode mode) {
  switch (mode) {
    case DiscoveryMode::kLoopback:
      return "loopback";
    case DiscoveryMode::kLan:
      return "lan";
    default:
      return "seeds";
  }
}

absl::StatusOr<DiscoveryMode> ParseDiscoveryMode(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "loopback") return DiscoveryMode::kLoopback;
  if (lower == "lan") return DiscoveryMode::kLan;
  if (lower == "seeds") return DiscoveryMode::kSeeds;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown discovery mode '", text, "' (use loopback, lan or seeds)"));
}

absl::string_view SecurityModeName(SecurityMode mode) {
  return mode == SecurityMode::kCurve ? "curve" : "off";
}

absl::StatusOr<SecurityMode> ParseSecurityMode(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "off") return SecurityMode::kOff;
  if (lower == "curve") return SecurityMode::kCurve;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown security mode '", text, "' (use off or curve)"));
}

bool SecurityOptions::enabled() const {
  return mode == SecurityMode::kCurve || !key_file.empty() ||
         !roster_dir.empty() || !beacon_secret_file.empty();
}

absl::Status ValidateNodeOptions(const NodeOptions& o) {
  if (o.cluster.empty() || o.cluster.size() > 255) {
    return Bad("cluster", "must be 1..255 bytes");
  }
  if (o.name.size() > 255) return Bad("name", "must be at most 255 bytes");
  if (o.headers.size() > kMaxHeaders) {
    return Bad("headers", absl::StrCat("at most ", kMaxHeaders, " headers"));
  }
  for (const auto& [key, value] : o.headers) {
    if (key.empty() || key.size() > kMaxStringBytes ||
        value.size() > kMaxStringBytes) {
      return Bad("headers", absl::StrCat("'", key.substr(0, 32),
                                         "' is empty or over-long"));
    }
  }
  if (o.discovery == DiscoveryMode::kLan && o.interface.empty()) {
    return Bad("interface", "LAN discovery needs an interface name");
  }
  if (o.discovery != DiscoveryMode::kSeeds && o.beacon_port == 0) {
    return Bad("beacon_port", "must be 1..65535");
  }
  if (o.discovery == DiscoveryMode::kSeeds && o.seeds.empty() &&
      o.mailbox_port == 0) {
    return Bad("seeds",
               "seeds discovery needs a seed endpoint (or a fixed mailbox "
               "port, so that this node can be the seed of others)");
  }
  for (const std::string& seed : o.seeds) {
    if (!absl::StartsWith(seed, "tcp://") || seed.rfind(':') <= 6) {
      return Bad("seeds", absl::StrCat("'", seed, "' is not tcp://HOST:PORT"));
    }
    if (seed.find('#') != std::string::npos && !o.security.enabled()) {
      return Bad("seeds", absl::StrCat("'", seed,
                                       "' names a roster key (#NAME), which "
                                       "only secure mode uses"));
    }
  }
  const absl::Duration ms10 = absl::Milliseconds(10);
  const absl::Duration min60 = absl::Seconds(60);
  if (!InRange(o.beacon_interval, ms10, min60)) {
    return Bad("beacon_interval", "must be 10ms..60s");
  }
  if (!InRange(o.heartbeat_interval, ms10, min60)) {
    return Bad("heartbeat_interval", "must be 10ms..60s");
  }
  if (o.suspect_timeout <= o.heartbeat_interval) {
    return Bad("suspect_timeout", "must exceed heartbeat_interval");
  }
  if (o.dead_timeout <= o.suspect_timeout) {
    return Bad("dead_timeout", "must exceed suspect_timeout");
  }
  if (o.dead_timeout > absl::Minutes(5)) {  // ZMTP TTL (2x) caps at 6553 s
    return Bad("dead_timeout", "must be at most 5m");
  }
  if (!InRange(o.disconnect_grace, absl::ZeroDuration(), o.dead_timeout)) {
    return Bad("disconnect_grace", "must be 0..dead_timeout");
  }
  if (o.max_message_bytes < 1024 || o.max_message_bytes > (1u << 30)) {
    return Bad("max_message_bytes", "must be 1KiB..1GiB");
  }
  if (!InRange(o.linger, absl::ZeroDuration(), absl::Seconds(10))) {
    return Bad("linger", "must be 0..10s");
  }
  if (o.security.enabled()) {
    if (o.discovery != DiscoveryMode::kSeeds &&
        o.beacon_interval < absl::Milliseconds(200)) {
      return Bad("beacon_interval", "must be at least 200ms in secure mode");
    }
    if (!InRange(o.security.beacon_max_skew, absl::Seconds(1),
                 absl::Hours(1))) {
      return Bad("security.beacon_max_skew", "must be 1s..1h");
    }
    if (!InRange(o.security.roster_check_interval, absl::Milliseconds(100),
                 absl::Minutes(1))) {
      return Bad("security.roster_check_interval", "must be 100ms..1m");
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyEnvironment(NodeOptions* o) {
  if (const char* v = std::getenv("FABRIC_CLUSTER"); v && *v) o->cluster = v;
  if (const char* v = std::getenv("FABRIC_DISCOVERY"); v && *v) {
    absl::StatusOr<DiscoveryMode> mode = ParseDiscoveryMode(v);
    if (!mode.ok()) return Bad("FABRIC_DISCOVERY", mode.status().message());
    o->discovery = *mode;
  }
  if (const char* v = std::getenv("FABRIC_INTERFACE"); v && *v) {
    o->interface = v;
  }
  if (const char* v = std::getenv("FABRIC_BEACON_PORT"); v && *v) {
    uint32_t port = 0;
    if (!absl::SimpleAtoi(v, &port) || port == 0 || port > 65535) {
      return Bad("FABRIC_BEACON_PORT",
                 absl::StrCat("'", v, "' is not 1..65535"));
    }
    o->beacon_port = static_cast<uint16_t>(port);
  }
  if (const char* v = std::getenv("FABRIC_SEEDS"); v && *v) {
    o->seeds = absl::StrSplit(v, ',', absl::SkipWhitespace());
  }
  if (const char* v = std::getenv("FABRIC_SECURITY"); v && *v) {
    absl::StatusOr<SecurityMode> mode = ParseSecurityMode(v);
    if (!mode.ok()) return Bad("FABRIC_SECURITY", mode.status().message());
    o->security.mode = *mode;
  }
  if (const char* v = std::getenv("FABRIC_KEY_FILE"); v && *v) {
    o->security.key_file = v;
  }
  if (const char* v = std::getenv("FABRIC_ROSTER"); v && *v) {
    o->security.roster_dir = v;
  }
  if (const char* v = std::getenv("FABRIC_BEACON_SECRET_FILE"); v && *v) {
    o->security.beacon_secret_file = v;
  }
  return absl::OkStatus();
}

}  // namespace fabric
