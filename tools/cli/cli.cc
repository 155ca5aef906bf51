// SPDX-License-Identifier: Apache-2.0
#include "tools/cli/cli.h"

#include <sys/resource.h>
#include <zmq.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "fabric/version.h"
#include "tools/cli/commands.h"

namespace fabric::cli {
namespace {

// A node holds a few descriptors per peer; raise the soft limit to the hard
// one so hundreds of peers fit.
void RaiseFileLimit() {
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 &&
      limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

// Registers `fabric push` on `app`.
// Registers the body sources of a sending verb (push, pub): MSG...,
// --count, --size, --file, --stdin-raw and --no-stdin.
void AddInputFlags(CLI::App* cmd, InputFlags& in, std::string& size,
                   absl::string_view what) {
  cmd->add_option("messages", in.messages,
                  absl::StrCat(what,
                               " bodies (use -- before ones that start "
                               "with '-')"));
  cmd->add_option("--count", in.count, "send N generated bodies msg-1 .. msg-N")
      ->type_name("N");
  cmd->add_option("--size", size,
                  "with --count: pad each body with '.' to SIZE (bytes or "
                  "with a unit: 64k, 1MiB)")
      ->type_name("SIZE");
  cmd->add_option("--file", in.files,
                  absl::StrCat("send the bytes of PATH, unchanged, as one ",
                               what, " (repeatable: one per file)"))
      ->type_name("PATH");
  cmd->add_flag("--stdin-raw", in.stdin_raw,
                absl::StrCat("send all of stdin, unchanged, as one ", what));
  cmd->add_flag("--no-stdin", in.no_stdin,
                absl::StrCat("never read ", what,
                             "s from stdin (implied when stdin is a terminal, "
                             "/dev/null or closed)"));
}

// Registers `fabric push` on `app`.
CLI::App* AddPush(CLI::App& app, PushFlags& f) {
  CLI::App* cmd = app.add_subcommand(
      "push",
      "push tasks onto a work queue: MSG arguments, --count generated "
      "bodies, --file contents, all of stdin (--stdin-raw), or one task per "
      "stdin line (read when none is given and stdin is a pipe or file). "
      "Exits 0 once every task is confirmed "
      "(durable); without --spool tasks live in memory only and are lost at "
      "exit, so it then waits as with --wait-acked. With --spool and no new "
      "messages it delivers what the spool holds");
  cmd->add_option("queue", f.queue, "the queue")->required();
  AddInputFlags(cmd, f.input, f.size, "task");
  cmd->add_option("--spool", f.spool,
                  "durable spool directory (created if missing); without "
                  "it tasks live in memory only")
      ->type_name("DIR");
  cmd->add_option("--fsync", f.fsync,
                  "with --spool: always, batch (default), interval or none")
      ->type_name("POLICY");
  cmd->add_flag("--allow-shared-files", f.allow_shared_files,
                "with --spool, in secure mode: use an existing spool that "
                "group or others may access (refused otherwise: "
                "FAB-SEC-FILE-PERMS)");
  cmd->add_option("--header", f.headers,
                  "task header KEY=VALUE (repeatable; HELLO headers go "
                  "before the verb)")
      ->type_name("K=V");
  cmd->add_flag("--wait-acked", f.wait_acked,
                "wait until every task is acked or dead-lettered; exit 1 if "
                "any was dead-lettered");
  cmd->add_option("--timeout", f.timeout,
                  "bound on the whole run, reading stdin included; exit 1 "
                  "when it passes (default 0: none)")
      ->type_name("DURATION");
  cmd->add_option("--max-attempts", f.max_attempts,
                  "handler runs (started deliveries) before a failing task "
                  "is dead-lettered (default 5)")
      ->type_name("N");
  cmd->add_option("--max-worker-crashes", f.max_worker_crashes,
                  "workers dying in a row while running a task before it is "
                  "dead-lettered (default 5)")
      ->type_name("N");
  cmd->add_option("--lease", f.lease,
                  "redeliver a task not acked within this (default 30s)")
      ->type_name("DURATION");
  cmd->add_option("--retry-backoff", f.retry_backoff,
                  "first retry delay, doubling per attempt (default 1s)")
      ->type_name("DURATION");
  cmd->add_option("--max-bytes", f.max_bytes,
                  "limit on bytes of unacked tasks held (default 1GiB; "
                  "units as --size)")
      ->type_name("SIZE");
  cmd->add_option("--push-timeout", f.push_timeout,
                  "how long a push waits for room under --max-bytes before "
                  "failing (default 30s)")
      ->type_name("DURATION");
  cmd->add_option("--progress", f.progress,
                  "a progress line on stderr every DURATION (default 1s "
                  "above 1000 tasks, else off; 0: off)")
      ->type_name("DURATION");
  return cmd;
}

// Registers `fabric work` on `app`.
CLI::App* AddWork(CLI::App& app, WorkFlags& f) {
  CLI::App* cmd = app.add_subcommand(
      "work",
      "serve work queues until interrupted: prints READY, then one line per "
      "task ('task ID queue=Q attempt=N [redelivered] BODY') and acks it");
  cmd->add_option("queues", f.queues, "the queues to serve")->required();
  cmd->add_flag("--json", f.json, "print tasks as JSON lines");
  cmd->add_option("--out-dir", f.out_dir,
                  "also write each task's body, unchanged, to "
                  "DIR/<producer id>-<seq> (created 0700 if missing)")
      ->type_name("DIR");
  cmd->add_option("--exec", f.exec,
                  "run CMD with /bin/sh -c per task, body on stdin, env "
                  "FABRIC_TASK_ID, FABRIC_QUEUE, FABRIC_ATTEMPT; its output "
                  "goes to stderr. Exit 0 acks, anything else retries")
      ->type_name("CMD");
  cmd->add_flag("--discard", f.discard,
                "ack each task without printing it or running anything (for "
                "benchmarks); not with --exec or --out-dir");
  cmd->add_option("--reject-exit", f.reject_exit,
                  "with --exec: this exit code dead-letters the task at once")
      ->type_name("CODE");
  cmd->add_option("--concurrency", f.concurrency,
                  "tasks handled at once (default 1)")
      ->type_name("N");
  cmd->add_option("--prefetch", f.prefetch,
                  "tasks held at once, running plus waiting (default 256)")
      ->type_name("N");
  cmd->add_option("--count", f.count,
                  "exit after N tasks were handled (running ones finish)")
      ->type_name("N");
  cmd->add_option("--lease-extend", f.lease_extend,
                  "with --exec: while the command runs, extend the lease by "
                  "DURATION every DURATION/2")
      ->type_name("DURATION");
  return cmd;
}

// Registers `fabric pub` on `app`.
CLI::App* AddPub(CLI::App& app, PubFlags& f) {
  CLI::App* cmd = app.add_subcommand(
      "pub",
      "publish on a topic: MSG arguments, --count generated bodies, --file "
      "contents, all of stdin (--stdin-raw), or one message per stdin line "
      "(read when none is given and stdin is a pipe or file). Prints READY, "
      "publishes, and exits once every message is "
      "sent (and, with --durable, on disk)");
  cmd->add_option("topic", f.topic, "the topic")->required();
  AddInputFlags(cmd, f.input, f.size, "message");
  cmd->add_option("--header", f.headers,
                  "message header KEY=VALUE (repeatable)")
      ->type_name("K=V");
  cmd->add_flag("--durable", f.durable,
                "keep the topic stream in a log so subscribers can replay it");
  cmd->add_option("--spool", f.spool,
                  "with --durable: directory of the topic logs (default "
                  "./fabric-topics)")
      ->type_name("DIR");
  cmd->add_option("--fsync", f.fsync,
                  "with --durable: always, batch (default), interval or none")
      ->type_name("POLICY");
  cmd->add_flag("--allow-shared-files", f.allow_shared_files,
                "with --durable, in secure mode: use an existing topic log "
                "that group or others may access (refused otherwise: "
                "FAB-SEC-FILE-PERMS)");
  cmd->add_option("--retention-bytes", f.retention_bytes,
                  "with --durable: keep about this much (default 1GiB; "
                  "units as --size)")
      ->type_name("SIZE");
  cmd->add_option("--retention-age", f.retention_age,
                  "with --durable: drop messages older than this (default: "
                  "never)")
      ->type_name("DURATION");
  cmd->add_option("--wait-subscribers", f.wait_subscribers,
                  "wait until N subscribers are connected before publishing")
      ->type_name("N");
  cmd->add_option("--wait-timeout", f.wait_timeout,
                  "how long --wait-subscribers waits (default 30s)")
      ->type_name("DURATION");
  cmd->add_option("--rate", f.rate, "publish at most N messages per second")
      ->type_name("N");
  cmd->add_option("--max-message-bytes", f.max_message_bytes,
                  "largest message accepted: topic, headers and body (default "
                  "1MiB, at most 15MiB; units as --size)")
      ->type_name("SIZE");
  cmd->add_option("--timeout", f.timeout,
                  "bound on publishing, reading stdin and waiting for "
                  "subscribers included; exit 1 when it passes (default: "
                  "none)")
      ->type_name("DURATION");
  cmd->add_flag("--stay", f.stay,
                "after publishing, keep serving replays until interrupted");
  cmd->add_option("--hwm", f.hwm,
                  "frames queued per subscriber before they are dropped "
                  "(default 10000; a frame holds up to 1024 messages)")
      ->type_name("N");
  return cmd;
}

// Registers `fabric sub` on `app`.
CLI::App* AddSub(CLI::App& app, SubFlags& f) {
  CLI::App* cmd = app.add_subcommand(
      "sub",
      "subscribe to topic prefixes until interrupted: prints READY, then "
      "'TOPIC SEQ BODY' per message (in order per publisher stream) and a "
      "'gap ...' line on stderr for messages that will never arrive");
  cmd->add_option("prefixes", f.prefixes, "topic prefixes ('' for all)")
      ->required();
  cmd->add_option("--durable", f.durable,
                  "durable subscriber NAME: its position in each durable "
                  "stream is kept on disk and resumed after a restart")
      ->type_name("NAME");
  cmd->add_option("--state-dir", f.state_dir,
                  "with --durable: where positions are kept (default "
                  "./fabric-subs)")
      ->type_name("DIR");
  cmd->add_flag("--allow-shared-files", f.allow_shared_files,
                "with --durable, in secure mode: use an existing state "
                "directory or position file that group or others may access "
                "(refused otherwise: FAB-SEC-FILE-PERMS)");
  cmd->add_option("--from", f.from,
                  "where a durable stream with no saved position starts: "
                  "latest (default), earliest, a SEQ, an RFC 3339 time or "
                  "-DURATION")
      ->type_name("WHERE");
  cmd->add_flag("--json", f.json, "print messages and gaps as JSON lines");
  cmd->add_option("--out-dir", f.out_dir,
                  "also write each message's body, unchanged, to "
                  "DIR/<stream>-<seq> (created 0700 if missing)")
      ->type_name("DIR");
  cmd->add_option("--count", f.count, "exit after N messages")->type_name("N");
  cmd->add_option("--hwm", f.hwm,
                  "frames queued per publisher before it drops for us "
                  "(default 10000; a frame holds up to 1024 messages)")
      ->type_name("N");
  return cmd;
}

// Registers `fabric req` on `app`.
CLI::App* AddReq(CLI::App& app, ReqFlags& f) {
  CLI::App* cmd = app.add_subcommand(
      "req",
      "call a service once: the body is MSG, --file PATH or, without them, "
      "all of stdin; prints the reply body to stdout (with a newline added "
      "unless it ends in one or --raw is given) and exits 0, or prints the "
      "failed "
      "call's status (e.g. DEADLINE_EXCEEDED, UNAVAILABLE) to stderr and "
      "exits 1");
  cmd->add_option("service", f.service, "the service")->required();
  cmd->add_option("message", f.message, "the request body")
      ->each([&f](const std::string&) { f.has_message = true; });
  cmd->add_option("--file", f.file,
                  "the request body: the bytes of PATH, unchanged")
      ->type_name("PATH");
  cmd->add_flag("--stdin-raw", f.stdin_raw,
                "the request body: all of stdin, unchanged (the default "
                "without MSG or --file)");
  cmd->add_flag("--raw", f.raw,
                "print the reply body exactly as received, without adding "
                "a final newline");
  cmd->add_option("--timeout", f.timeout,
                  "deadline of the whole run, reading stdin included, in "
                  "ms or a duration like 2s (default 5000)")
      ->type_name("MS");
  cmd->add_option("--attempt-timeout", f.attempt_timeout,
                  "retry on another server after this long without a reply "
                  "(ms or duration; default timeout / max-attempts)")
      ->type_name("MS");
  cmd->add_option("--max-attempts", f.max_attempts,
                  "attempts at most, the first included (default 3)")
      ->type_name("N");
  cmd->add_option("--key", f.key,
                  "idempotency key: servers run each key once within their "
                  "dedup window (the secure-mode --key FILE goes before "
                  "`req`)")
      ->type_name("KEY");
  cmd->add_option("--header", f.headers,
                  "request header KEY=VALUE (repeatable; HELLO headers go "
                  "before the verb)")
      ->type_name("K=V");
  cmd->add_option("--wait", f.wait,
                  "how long to look for a server before failing with "
                  "UNAVAILABLE (ms or duration; default 1500 or the timeout "
                  "if shorter)")
      ->type_name("MS");
  cmd->add_flag("--json", f.json,
                "print {\"ok\":...,\"body\"|\"code\",...} on stdout");
  return cmd;
}

// Registers `fabric stats` on `app`.
CLI::App* AddStats(CLI::App& app, StatsFlags& f) {
  CLI::App* cmd = app.add_subcommand(
      "stats",
      "print the counters of a node that serves stats (a relay: per queue, "
      "topic and peer) in Prometheus text format");
  cmd->add_option("node", f.node, "the node's name")->required();
  cmd->add_option("--timeout", f.timeout,
                  "deadline in ms, or a duration like 2s (default 5000)")
      ->type_name("MS");
  return cmd;
}

// Registers `fabric serve` on `app`.
CLI::App* AddServe(CLI::App& app, ServeFlags& f) {
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "serve a service until interrupted: prints READY, then one line per "
      "request ('handled CLIENT:ID attempt=N status=CODE bytes=B ... BODY'). "
      "On SIGINT/SIGTERM it stops advertising, answers what it accepted and "
      "exits");
  cmd->add_option("service", f.service, "the service")->required();
  cmd->add_option("--exec", f.exec,
                  "run CMD with /bin/sh -c per request, body on stdin, env "
                  "FABRIC_SERVICE, FABRIC_REQUEST_ID, FABRIC_ATTEMPT, "
                  "FABRIC_IDEMPOTENCY_KEY, FABRIC_DEADLINE_MS; its stdout is "
                  "the reply; a non-zero exit fails the call (UNKNOWN, with "
                  "the tail of its stderr); killed at the caller's deadline")
      ->type_name("CMD");
  cmd->add_flag("--echo", f.echo, "reply with the request body");
  cmd->add_flag("--json", f.json, "print requests as JSON lines");
  cmd->add_option("--out-dir", f.out_dir,
                  "also write each request's body, unchanged, to "
                  "DIR/<client id>-<call id>-<attempt> (created 0700 if "
                  "missing)")
      ->type_name("DIR");
  cmd->add_option("--concurrency", f.concurrency,
                  "requests handled at once (default 4)")
      ->type_name("N");
  cmd->add_option("--max-pending", f.max_pending,
                  "requests held at once, beyond which they are refused as "
                  "busy and go to other servers (default 1024)")
      ->type_name("N");
  cmd->add_option("--count", f.count,
                  "exit after N requests were handled (others are drained)")
      ->type_name("N");
  cmd->add_option("--drain-timeout", f.drain_timeout,
                  "on exit, how long accepted requests may take (default 5s)")
      ->type_name("DURATION");
  return cmd;
}

// Registers `fabric keygen` on `app`.
CLI::App* AddKeygen(CLI::App& app, KeygenFlags& f) {
  CLI::App* cmd = app.add_subcommand(
      "keygen",
      "make key material for secure mode. NAME: a CURVE keypair, "
      "DIR/NAME.key (secret, 0600) and DIR/NAME.pub (0644, the node's roster "
      "entry); prints the public key and its fingerprint. --beacon-secret "
      "FILE: create the cluster's beacon keyring (0600; key id 1, primary), "
      "or change it with --add, --primary ID or --remove ID");
  cmd->add_option("name", f.name,
                  "the keypair's name: 1 to 64 of A-Z a-z 0-9 . _ -");
  cmd->add_option("--dir", f.dir,
                  "with NAME: where to write the pair (default: the current "
                  "directory; created 0700 if missing)")
      ->type_name("DIR");
  cmd->add_flag("--force", f.force,
                "with NAME: replace an existing NAME.key and NAME.pub");
  cmd->add_option("--beacon-secret", f.beacon_secret,
                  "the beacon keyring: created unless --add, --primary or "
                  "--remove is given")
      ->type_name("FILE");
  cmd->add_flag("--add", f.add,
                "add a fresh secret under the next free key id; the primary "
                "stays");
  cmd->add_option("--primary", f.primary,
                  "send beacons under key id ID from now on")
      ->type_name("ID")
      ->each([&f](const std::string&) { f.has_primary = true; });
  cmd->add_option("--remove", f.remove, "drop key id ID (never the primary)")
      ->type_name("ID")
      ->each([&f](const std::string&) { f.has_remove = true; });
  return cmd;
}

// Registers `fabric security check` on `app`; returns `check`.
CLI::App* AddSecurity(CLI::App& app) {
  CLI::App* security =
      app.add_subcommand("security", "secure mode set-up (docs/security.md)");
  security->require_subcommand(1);
  return security->add_subcommand(
      "check",
      "run every start-up check of secure mode without joining: CURVE, the "
      "key file (--key), the roster (--roster) and this node's key in it, "
      "the beacon secret (--beacon-secret), each --seed's key, and the ZAP "
      "self-test on a throwaway mailbox and publisher on 127.0.0.1. Prints "
      "one line per check (ok / FAIL) and exits 0 or 1");
}

struct SpoolVerbs {
  CLI::App* inspect;
  CLI::App* verify;
};

// Registers `fabric spool inspect|verify` on `app`.
SpoolVerbs AddSpool(CLI::App& app, SpoolFlags& f) {
  CLI::App* spool =
      app.add_subcommand("spool", "look into a producer's spool directory");
  spool->require_subcommand(1);
  SpoolVerbs verbs;
  verbs.inspect = spool->add_subcommand(
      "inspect", "summarize a spool (read-only; works while a producer runs)");
  verbs.verify = spool->add_subcommand(
      "verify",
      "check every record (read-only): prints ok and exits 0, or lists each "
      "problem and exits 1");
  for (CLI::App* cmd : {verbs.inspect, verbs.verify}) {
    cmd->add_option("dir", f.dir, "the spool directory")->required();
    cmd->add_flag("--json", f.json, "print JSON");
  }
  return verbs;
}

struct DlqVerbs {
  CLI::App* list;
  CLI::App* replay;
  CLI::App* purge;
};

// Registers `fabric dlq list|replay|purge` on `app`.
DlqVerbs AddDlq(CLI::App& app, DlqFlags& f) {
  CLI::App* dlq =
      app.add_subcommand("dlq", "dead letters of a producer's spool directory");
  dlq->require_subcommand(1);
  DlqVerbs verbs;
  verbs.list = dlq->add_subcommand(
      "list", "one line per dead letter: seq, attempts, died, reason, body");
  verbs.replay = dlq->add_subcommand(
      "replay",
      "re-enqueue dead letters as new tasks in the spool; the next producer "
      "on it delivers them, e.g. 'fabric push QUEUE --spool DIR "
      "--wait-acked'. Fails while a producer holds the spool");
  verbs.purge = dlq->add_subcommand(
      "purge", "delete dead letters. Fails while a producer holds the spool");
  for (CLI::App* cmd : {verbs.list, verbs.replay, verbs.purge}) {
    cmd->add_option("dir", f.dir, "the spool directory")->required();
    cmd->add_option("--seq", f.seqs,
                    "only this dead letter (repeatable; default all)")
        ->type_name("N");
  }
  verbs.list->add_flag("--json", f.json, "print JSON lines");
  return verbs;
}

}  // namespace

int ExitCode(const absl::Status& status) {
  if (status.ok()) return 0;
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

std::string VersionText(absl::string_view program) {
  int major = 0, minor = 0, patch = 0;
  zmq_version(&major, &minor, &patch);
  return absl::StrCat(program, " ", FABRIC_VERSION_STRING, " (git ",
                      VersionDescription(), ")\nlibzmq ", major, ".", minor,
                      ".", patch);
}

int Run(int argc, char** argv) {
  CLI::App app{
      "fabric: brokerless messaging over ZeroMQ.\n"
      "Common flags go before or after the verb.",
      "fabric"};
  app.set_version_flag("--version", VersionText("fabric"),
                       "print the version (and git describe, libzmq's "
                       "version) and exit");
  app.require_subcommand(1);
  app.fallthrough();
  CommonFlags common;
  AddCommonFlags(app, common);

  PeersFlags peers;
  CLI::App* peers_cmd =
      app.add_subcommand("peers", "join the cluster and list the peers seen");
  peers_cmd->add_flag("--watch", peers.watch,
                      "after the list, print peer events until interrupted");
  peers_cmd->add_flag("--json", peers.json, "print JSON");
  peers_cmd->add_option("--wait", peers.wait,
                        "how long to listen before printing (default 1.5s: "
                        "one beacon interval plus handshakes)");
  peers_cmd->add_option("--min-peers", peers.min_peers,
                        "print as soon as N peers are seen; exit 1 if fewer "
                        "are seen within --wait");

  PushFlags push;
  CLI::App* push_cmd = AddPush(app, push);
  WorkFlags work;
  CLI::App* work_cmd = AddWork(app, work);
  ReqFlags req;
  CLI::App* req_cmd = AddReq(app, req);
  StatsFlags stats;
  CLI::App* stats_cmd = AddStats(app, stats);
  ServeFlags serve;
  CLI::App* serve_cmd = AddServe(app, serve);

  PubFlags pub;
  CLI::App* pub_cmd = AddPub(app, pub);
  SubFlags sub;
  CLI::App* sub_cmd = AddSub(app, sub);

  SpoolFlags spool;
  const SpoolVerbs spool_cmds = AddSpool(app, spool);
  DlqFlags dlq;
  const DlqVerbs dlq_cmds = AddDlq(app, dlq);

  KeygenFlags keygen;
  CLI::App* keygen_cmd = AddKeygen(app, keygen);
  CLI::App* security_check_cmd = AddSecurity(app);

  NodeFlags node;
  CLI::App* node_cmd = app.add_subcommand(
      "node", "run a plain node until interrupted, printing peer events");
  node_cmd->add_flag("--json", node.json, "print events as JSON lines");

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // With no verb parsed, the first word left over is a misspelled or
    // unknown verb: name it rather than "A subcommand is required".
    const std::vector<std::string> rest = app.remaining();
    if (e.get_name() == "RequiredError" && app.get_subcommands().empty()) {
      std::string verbs;
      for (const CLI::App* sub : app.get_subcommands({})) {
        absl::StrAppend(&verbs, verbs.empty() ? "" : ", ", sub->get_name());
      }
      const std::string what =
          rest.empty() ? std::string("a verb is required")
          : rest.front().rfind('-', 0) == 0
              ? absl::StrCat("unknown flag '", rest.front(), "'")
              : absl::StrCat("unknown verb '", rest.front(), "'");
      std::fprintf(stderr,
                   "fabric: %s (verbs: %s)\nRun 'fabric --help' for "
                   "usage.\n",
                   what.c_str(), verbs.c_str());
      return 2;
    }
    std::fprintf(stderr, "fabric: %s\nRun 'fabric --help' for usage.\n",
                 e.what());
    return 2;
  }
  RaiseFileLimit();
  absl::Status status;
  if (peers_cmd->parsed()) {
    status = RunPeers(common, peers);
  } else if (node_cmd->parsed()) {
    status = RunNode(common, node);
  } else if (push_cmd->parsed()) {
    status = RunPush(common, push);
  } else if (work_cmd->parsed()) {
    status = RunWork(common, work);
  } else if (req_cmd->parsed()) {
    status = RunReq(common, req);
  } else if (stats_cmd->parsed()) {
    status = RunStats(common, stats);
  } else if (serve_cmd->parsed()) {
    status = RunServe(common, serve);
  } else if (pub_cmd->parsed()) {
    status = RunPub(common, pub);
  } else if (sub_cmd->parsed()) {
    status = RunSub(common, sub);
  } else if (spool_cmds.inspect->parsed()) {
    status = RunSpoolInspect(common, spool);
  } else if (spool_cmds.verify->parsed()) {
    status = RunSpoolVerify(common, spool);
  } else if (dlq_cmds.list->parsed()) {
    status = RunDlqList(common, dlq);
  } else if (dlq_cmds.replay->parsed()) {
    status = RunDlqReplay(common, dlq);
  } else if (dlq_cmds.purge->parsed()) {
    status = RunDlqPurge(common, dlq);
  } else if (keygen_cmd->parsed()) {
    status = RunKeygen(common, keygen);
  } else if (security_check_cmd->parsed()) {
    status = RunSecurityCheck(common);
  }
  if (!status.ok()) {
    std::fprintf(stderr, "fabric: %s\n", std::string(status.message()).c_str());
  }
  return ExitCode(status);
}

}  // namespace fabric::cli
