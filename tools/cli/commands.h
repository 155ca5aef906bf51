// SPDX-License-Identifier: Apache-2.0
// The verbs of the `fabric` command. Each returns a Status; cli.cc turns it
// into an exit code.
#ifndef FABRIC_TOOLS_CLI_COMMANDS_H_
#define FABRIC_TOOLS_CLI_COMMANDS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fabric/node.h"
#include "tools/cli/common_flags.h"
#include "tools/cli/input.h"

namespace fabric::cli {

struct PeersFlags {
  bool watch = false;
  bool json = false;
  std::string wait;   // how long to listen before printing; default 1.5s
  int min_peers = 0;  // print as soon as this many peers are alive
};

struct NodeFlags {
  bool json = false;
};

// `fabric push QUEUE [MSG...]`. Durations are unparsed flag text; empty
// means the default.
struct PushFlags {
  std::string queue;
  InputFlags input;   // MSG..., --count, --file, --stdin-raw, --no-stdin
  std::string size;   // --size with units; empty: not given
  std::string spool;  // empty: memory only (implies wait_acked)
  std::string fsync;  // always|batch|interval|none; empty: batch
  bool allow_shared_files = false;   // secure mode: use a group/world spool
  std::vector<std::string> headers;  // task headers KEY=VALUE
  bool wait_acked = false;
  std::string timeout;             // overall bound; empty or 0: none
  int64_t max_attempts = 0;        // 0: the producer's default
  int64_t max_worker_crashes = 0;  // 0: the producer's default
  std::string lease;
  std::string retry_backoff;
  std::string max_bytes;  // with units; empty: the producer's default
  std::string push_timeout;
  std::string progress;  // empty: 1s above 1000 messages, else off
};

// `fabric work QUEUE [QUEUE...]`.
struct WorkFlags {
  std::vector<std::string> queues;
  bool json = false;
  std::string out_dir;   // each body also written to DIR/<producer>-<seq>
  std::string exec;      // empty: print and ack
  bool discard = false;  // ack without printing or running anything
  int reject_exit = -1;  // -1: none
  int concurrency = 1;
  int prefetch = 0;          // 0: the worker's default
  int64_t count = 0;         // 0: serve until interrupted
  std::string lease_extend;  // empty: never extend
};

// `fabric pub TOPIC [MSG...]`. Durations are unparsed flag text.
struct PubFlags {
  std::string topic;
  InputFlags input;  // MSG..., --count, --file, --stdin-raw, --no-stdin
  std::string size;  // --size with units; empty: not given
  std::vector<std::string> headers;
  bool durable = false;
  std::string spool;  // with --durable; empty: ./fabric-topics
  std::string fsync;
  bool allow_shared_files = false;  // secure mode: use a group/world log
  std::string retention_bytes;      // with units; empty: default
  std::string retention_age;
  int wait_subscribers = 0;
  std::string wait_timeout;       // default 30s
  double rate = 0;                // messages per second; 0: as fast as possible
  std::string timeout;            // overall bound, stdin included; empty: none
  std::string max_message_bytes;  // with units; empty: the publisher's
  bool stay = false;              // serve replays and beats until interrupted
  int hwm = 0;                    // 0: the publisher's default
};

// `fabric sub PREFIX...`.
struct SubFlags {
  std::vector<std::string> prefixes;
  std::string durable;              // durable subscriber name
  std::string state_dir;            // empty: ./fabric-subs
  bool allow_shared_files = false;  // secure mode: use group/world positions
  std::string from;                 // latest|earliest|SEQ|TIME
  bool json = false;
  std::string out_dir;  // each body also written to DIR/<stream>-<seq>
  int64_t count = 0;    // 0: until interrupted
  int hwm = 0;          // 0: the subscriber's default
};

// `fabric req SERVICE [MSG]`. Durations are unparsed flag text; empty means
// the default.
struct ReqFlags {
  std::string service;
  std::string message;
  bool has_message = false;
  std::string file;                  // --file: the body from a file
  bool stdin_raw = false;            // --stdin-raw: all of stdin (the default)
  bool raw = false;                  // --raw: the reply exactly, no newline
  std::string timeout;               // plain number: milliseconds
  std::string attempt_timeout;       // plain number: milliseconds
  int max_attempts = 0;              // 0: the client's default
  std::string key;                   // idempotency key
  std::vector<std::string> headers;  // KEY=VALUE
  std::string wait;                  // discovery wait; plain number: ms
  bool json = false;
};

// `fabric stats NODE`.
struct StatsFlags {
  std::string node;
  std::string timeout;  // plain number: milliseconds; default 5000
};

// `fabric serve SERVICE (--exec CMD | --echo)`.
struct ServeFlags {
  std::string service;
  std::string exec;
  bool echo = false;
  bool json = false;
  std::string out_dir;  // each request body written to DIR/<client>-<id>-<n>
  int concurrency = 4;
  int64_t count = 0;    // 0: serve until interrupted
  int max_pending = 0;  // 0: the server's default
  std::string drain_timeout;
};

// `fabric spool inspect|verify DIR`.
struct SpoolFlags {
  std::string dir;
  bool json = false;
};

// `fabric dlq list|replay|purge DIR [--seq N ...]`.
struct DlqFlags {
  std::string dir;
  bool json = false;
  std::vector<uint64_t> seqs;  // empty: all
};

// `fabric keygen NAME [--dir D] [--force]` and `fabric keygen
// --beacon-secret FILE [--add | --primary ID | --remove ID]`.
struct KeygenFlags {
  std::string name;  // the keypair's name; empty with --beacon-secret
  std::string dir;   // where NAME.key and NAME.pub go; empty: "."
  bool force = false;
  std::string beacon_secret;  // the keyring file
  bool add = false;
  int primary = 0;  // with has_primary
  bool has_primary = false;
  int remove = 0;  // with has_remove
  bool has_remove = false;
};

// `fabric peers`: joins the cluster, waits, prints the peers it sees; with
// --watch keeps printing events until SIGINT/SIGTERM.
absl::Status RunPeers(const CommonFlags& common, const PeersFlags& flags);

// `fabric node`: runs a plain node until SIGINT/SIGTERM, printing
// "READY <mailbox> <id> <name>" and then one line per peer event.
absl::Status RunNode(const CommonFlags& common, const NodeFlags& flags);

// `fabric push`: pushes messages onto a work queue (or, with --spool and no
// new messages, delivers what the spool holds), waits until they are
// confirmed (or with --wait-acked, completed), prints a summary line.
// Returns kInvalidArgument for bad flags, kResourceExhausted when the limit
// stays reached, kAborted when tasks were dead-lettered under --wait-acked,
// kDeadlineExceeded past --timeout and kCancelled on SIGINT/SIGTERM.
absl::Status RunPush(const CommonFlags& common, const PushFlags& flags);

// `fabric work`: serves queues until SIGINT/SIGTERM (or --count tasks),
// printing "READY ..." and then one line per task.
absl::Status RunWork(const CommonFlags& common, const WorkFlags& flags);
absl::Status RunPub(const CommonFlags& common, const PubFlags& flags);
absl::Status RunSub(const CommonFlags& common, const SubFlags& flags);

// `fabric req`: calls a service once and prints the reply body to stdout.
// Returns kInvalidArgument for bad flags; a failed call as kUnknown whose
// message starts with the call's status code name (exit 1).
absl::Status RunReq(const CommonFlags& common, const ReqFlags& flags);

// `fabric stats NODE`: asks the node's stats service (relays serve one,
// "fabric.stats/<name>") for its counters and prints them (Prometheus
// text). Fails like `fabric req`, UNAVAILABLE when no such node serves stats.
absl::Status RunStats(const CommonFlags& common, const StatsFlags& flags);

// `fabric serve`: serves a service until SIGINT/SIGTERM (or --count
// requests), printing "READY ..." and then one line per request; on a
// signal it drains (finishes accepted requests) before exiting.
absl::Status RunServe(const CommonFlags& common, const ServeFlags& flags);

// `fabric spool inspect DIR`: prints what a read-only scan finds.
absl::Status RunSpoolInspect(const CommonFlags& common,
                             const SpoolFlags& flags);
// `fabric spool verify DIR`: prints "ok ..." or each problem; returns
// kDataLoss when a record is corrupt or the tail is torn.
absl::Status RunSpoolVerify(const CommonFlags& common, const SpoolFlags& flags);

// `fabric dlq list DIR`: one line per dead letter (read-only).
absl::Status RunDlqList(const CommonFlags& common, const DlqFlags& flags);
// `fabric dlq replay DIR`: re-enqueues dead letters as new spooled tasks.
absl::Status RunDlqReplay(const CommonFlags& common, const DlqFlags& flags);
// `fabric dlq purge DIR`: deletes dead letters.
absl::Status RunDlqPurge(const CommonFlags& common, const DlqFlags& flags);

// `fabric keygen NAME`: writes a CURVE keypair (security/keys.h) to
// DIR/NAME.key and DIR/NAME.pub, creating DIR (0700) if missing, and prints
// the public key and its fingerprint, never the secret. kAlreadyExists when
// either file exists and `force` is not set. With --beacon-secret: creates
// the keyring FILE (key id 1, primary; kAlreadyExists if FILE exists), or
// adds a key under the next free id, switches the primary, or removes an id:
// kNotFound for an id it does not hold, kFailedPrecondition for removing
// the primary, kResourceExhausted when all 255 ids are taken. Returns
// kInvalidArgument for flags that do not fit together.
absl::Status RunKeygen(const CommonFlags& common, const KeygenFlags& flags);

// `fabric security check`: runs every start-up check of secure mode
// without joining (CURVE, the key file, the roster and this node's key in
// it, the beacon secret, each seed's key, then the ZAP self-test on a
// throwaway mailbox and publisher bound on 127.0.0.1) and prints one line
// per check, "ok CHECK ..." or "FAIL CHECK FAB-SEC-...". The files come from
// the common flags and FABRIC_* variables. Returns kFailedPrecondition when
// any check failed, kInvalidArgument for bad flags.
absl::Status RunSecurityCheck(const CommonFlags& common);

// A started node whose peer events are printed to stdout (when `print`),
// and counted. Shared by `node` and `peers --watch`.
struct PrintingNode {
  std::unique_ptr<Node> node;
  std::shared_ptr<std::atomic<bool>> print;
  std::shared_ptr<std::atomic<int>> alive;  // peers joined minus left
  // Secure mode: SIGHUP reloads the node's roster (after `node`, so it is
  // destroyed first).
  std::unique_ptr<ReloadOnHangup> hangup;
};
absl::StatusOr<PrintingNode> StartPrintingNode(NodeOptions options, bool json,
                                               bool print);

// Advertises each KIND=NAME of `offers` on `node`.
absl::Status ApplyOffers(Node& node, const std::vector<std::string>& offers);

}  // namespace fabric::cli

#endif  // FABRIC_TOOLS_CLI_COMMANDS_H_
