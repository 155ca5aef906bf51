// SPDX-License-Identifier: Apache-2.0
// `fabric-relay`: the relay daemon (tools/relay/relay.h). Flags or a
// TOML/INI file (--config) name the two sides and what to forward; it
// prints "READY <a mailbox> <b mailbox> <name> <relay id>" (and "METRICS
// <url>" with --metrics) and runs until SIGINT/SIGTERM; SIGHUP reloads the
// rosters of its secure sides.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fabric/base/status_macros.h"
#include "tools/cli/cli.h"
#include "tools/cli/common_flags.h"
#include "tools/relay/metrics_http.h"
#include "tools/relay/relay.h"

namespace fabric::relay {
namespace {

// The flags that differ per side; the rest of CommonFlags is shared.
struct SideFlags {
  std::string cluster;
  std::string discovery;
  std::string interface;
  int beacon_port = 0;
  int port = 0;
  std::vector<std::string> seeds;
  // --X-security, --X-key, --X-roster, --X-beacon-secret: only these four
  // fields are used. Each side is secure or plaintext on its own.
  cli::CommonFlags security;
};

struct Flags {
  cli::CommonFlags common;  // name, log level and timings: both sides
  SideFlags side[2];
  std::vector<std::string> queues;
  std::vector<std::string> topics;
  std::vector<std::string> durable_topics;
  std::string state_dir;
  std::string fsync;
  std::string bridge;
  uint64_t max_backlog = 0;
  int concurrency = 0;
  std::string lease;
  uint32_t max_attempts = 0;
  std::string worker_grace;
  std::string metrics;
};

void AddSideFlags(CLI::App& app, const std::string& side, SideFlags& f) {
  const std::string p = absl::StrCat("--", side, "-");
  app.add_option(p + "cluster", f.cluster,
                 "cluster name of side " + side + " (default 'default')");
  app.add_option(p + "discovery", f.discovery,
                 "loopback (default), lan or seeds");
  app.add_option(p + "interface", f.interface, "interface for lan discovery");
  app.add_option(p + "beacon-port", f.beacon_port, "UDP beacon port")
      ->check(CLI::Range(1, 65535));
  app.add_option(p + "port", f.port,
                 "fixed mailbox TCP port (makes the relay a seed there)")
      ->check(CLI::Range(1, 65535));
  app.add_option(p + "seed", f.seeds,
                 "seed mailbox tcp://HOST:PORT (repeatable; implies seeds)");
  cli::AddSecurityFlags(app, f.security, side + "-");
}

absl::StatusOr<NodeOptions> SideOptions(const Flags& f, int i) {
  cli::CommonFlags c = f.common;
  const SideFlags& s = f.side[i];
  c.cluster = s.cluster;
  c.discovery = s.discovery;
  c.interface = s.interface;
  c.beacon_port = s.beacon_port;
  c.port = s.port;
  c.seeds = s.seeds;
  c.security = s.security.security;
  c.key_file = s.security.key_file;
  c.roster = s.security.roster;
  c.beacon_secret = s.security.beacon_secret;
  absl::StatusOr<NodeOptions> o = cli::BuildNodeOptions(c);
  if (!o.ok()) {
    return absl::Status(
        o.status().code(),
        absl::StrCat("side ", i == 0 ? "a" : "b", ": ", o.status().message()));
  }
  return o;
}

absl::StatusOr<RelayOptions> BuildOptions(const Flags& f) {
  RelayOptions o;
  o.name = f.common.name;
  FABRIC_ASSIGN_OR_RETURN(o.a, SideOptions(f, 0));
  FABRIC_ASSIGN_OR_RETURN(o.b, SideOptions(f, 1));
  o.queues = f.queues;
  o.topics = f.topics;
  o.durable_topics = f.durable_topics;
  o.state_dir = f.state_dir;
  o.bridge = f.bridge;
  if (!f.fsync.empty()) {
    FABRIC_ASSIGN_OR_RETURN(o.fsync, ParseFsyncPolicy(f.fsync));
  }
  if (f.max_backlog > 0) o.max_backlog = f.max_backlog;
  if (f.concurrency > 0) o.queue_concurrency = f.concurrency;
  if (f.max_attempts > 0) o.max_attempts = f.max_attempts;
  if (!f.lease.empty()) {
    FABRIC_ASSIGN_OR_RETURN(o.lease,
                            cli::ParseDurationFlag("--lease", f.lease));
  }
  if (!f.worker_grace.empty()) {
    FABRIC_ASSIGN_OR_RETURN(
        o.worker_grace,
        cli::ParseDurationFlag("--worker-grace", f.worker_grace));
  }
  return o;
}

absl::Status Serve(const Flags& f) {
  FABRIC_ASSIGN_OR_RETURN(RelayOptions options, BuildOptions(f));
  cli::BlockTerminationSignals();
  // Bind the metrics port first: a bad address or a taken port fails before
  // the relay has joined either side or taken any task.
  std::atomic<Relay*> running{nullptr};
  std::unique_ptr<MetricsServer> metrics;
  if (!f.metrics.empty()) {
    FABRIC_ASSIGN_OR_RETURN(
        metrics, MetricsServer::Start(f.metrics, [&running] {
          Relay* r = running.load();
          return r == nullptr ? std::string() : FormatPrometheus(r->Stats());
        }));
  }
  FABRIC_ASSIGN_OR_RETURN(std::unique_ptr<Relay> relay,
                          Relay::Start(std::move(options)));
  running = relay.get();
  std::printf("READY %s %s %s %s\n", relay->mailbox('a').c_str(),
              relay->mailbox('b').c_str(), f.common.name.c_str(),
              relay->relay_id().c_str());
  if (metrics != nullptr) std::printf("METRICS %s\n", metrics->url().c_str());
  std::fflush(stdout);
  {
    // A SIGHUP reloads the roster of each secure side (a plaintext side
    // has none and is skipped).
    const cli::ReloadOnHangup hangup_a(&relay->node('a'));
    const cli::ReloadOnHangup hangup_b(&relay->node('b'));
    while (!cli::WaitForSignal(absl::Seconds(1))) {
    }
  }
  metrics.reset();  // no scrape can reach the relay from here on
  running = nullptr;
  relay->Close();
  std::printf("relay %s stopped\n", f.common.name.c_str());
  return absl::OkStatus();
}

int Run(int argc, char** argv) {
  CLI::App app{
      "fabric-relay: joins two discovery domains (sides a and b) and "
      "forwards the named work queues (store-and-forward through its own "
      "spool) and topic prefixes in both directions. Flags may also come "
      "from a TOML/INI file (--config), one 'flag = value' per line.",
      "fabric-relay"};
  app.set_version_flag("--version", cli::VersionText("fabric-relay"),
                       "print the version (and git describe, libzmq's "
                       "version) and exit");
  app.set_config("--config", "", "read flags from this TOML/INI file");
  // A misspelled key in the file is an error, not a silently ignored line.
  app.allow_config_extras(CLI::config_extras_mode::error);
  Flags f;
  app.add_option("--name", f.common.name, "the relay's name (required)")
      ->required();
  AddSideFlags(app, "a", f.side[0]);
  AddSideFlags(app, "b", f.side[1]);
  app.add_option("--queue", f.queues,
                 "work queue to forward both ways (repeatable)");
  app.add_option("--topic", f.topics,
                 "topic prefix to forward both ways (repeatable; '' is all)");
  app.add_option("--durable-topic", f.durable_topics,
                 "topic the relay keeps in a log where it republishes it, "
                 "for replay (repeatable)");
  app.add_option("--state-dir", f.state_dir,
                 "directory of the relay's spools, topic logs and positions "
                 "(required with --queue or --durable-topic)");
  app.add_option("--fsync", f.fsync,
                 "always, batch (default), interval or none");
  app.add_option("--bridge", f.bridge,
                 "relays of one bridge coordinate (default A-CLUSTER/"
                 "B-CLUSTER)");
  app.add_option("--max-backlog", f.max_backlog,
                 "tasks waiting at the relay, per queue and direction, before "
                 "it takes no more (default 1000)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  app.add_option("--concurrency", f.concurrency,
                 "forwarding threads per queue and direction (default 16)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--lease", f.lease, "lease of forwarded tasks (default 30s)");
  app.add_option("--max-attempts", f.max_attempts,
                 "deliveries of a forwarded task before it is dead-lettered "
                 "in the relay's spool (default 5)")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--worker-grace", f.worker_grace,
                 "stop taking a queue when the other side has had no worker "
                 "for this long (default 2s)");
  app.add_option("--metrics", f.metrics,
                 "serve Prometheus text at http://HOST:PORT/metrics");
  cli::AddTimingFlags(app, f.common);  // apply to both sides
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ConfigError& e) {
    std::fprintf(stderr,
                 "fabric-relay: --config: %s (a misspelled or unknown "
                 "key?)\nRun 'fabric-relay --help' for the keys (flag names "
                 "without '--').\n",
                 e.what());
    return 2;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr,
                 "fabric-relay: %s\nRun 'fabric-relay --help' for usage.\n",
                 e.what());
    return 2;
  }
  const absl::Status status = Serve(f);
  if (!status.ok()) {
    std::fprintf(stderr, "fabric-relay: %s\n",
                 std::string(status.message()).c_str());
  }
  return cli::ExitCode(status);
}

}  // namespace
}  // namespace fabric::relay

int main(int argc, char** argv) {
  // cpp-httplib writes with send(2) without MSG_NOSIGNAL: a metrics client
  // that disconnects mid-response must not kill the relay.
  signal(SIGPIPE, SIG_IGN);
  // As in `fabric`: Debian's Abseil has mutex deadlock detection on, which
  // costs every lock a lock-graph update.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return fabric::relay::Run(argc, argv);
}
