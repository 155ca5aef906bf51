// SPDX-License-Identifier: Apache-2.0
// How the CLI prints peers and peer events, work-queue tasks, dead letters
// and spool reports, as text or JSON. JSON is built with tools/cli/json.h:
// one object per line, byte strings that are not UTF-8 in "<field>_b64"
// (docs/cli.md, "JSON output").
#ifndef FABRIC_TOOLS_CLI_OUTPUT_H_
#define FABRIC_TOOLS_CLI_OUTPUT_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fabric/peers/peer_info.h"
#include "fabric/spool/spool.h"
#include "patterns/pubsub/message.h"
#include "patterns/work_queue/task.h"

namespace fabric::cli {

// Returns `s` in double quotes for a human-readable line, escaping quotes,
// backslashes and control characters (other bytes pass through: not JSON).
std::string QuotedText(absl::string_view s);

// "READY <endpoint> <id> <name>", or with `json` the object
// {"event":"ready","endpoint":...,"id":...,"name":...}; no newline.
std::string FormatReadyLine(absl::string_view endpoint, absl::string_view id,
                            absl::string_view name, bool json);

// "queue:images,queue:thumbs service:echo" (empty as "-").
std::string FormatOffers(const Offers& offers);

// A table with a header row: NAME ID ADDRESS STATE LAST-SEEN OFFERS, and
// KEY (each peer's key fingerprint) when some peer has a key (secure mode).
std::string FormatPeerTable(const std::vector<PeerInfo>& peers, absl::Time now);
// A JSON array with one object per peer, on one line. Secure mode adds
// "key" (the fingerprint of the peer's public key) and "beacon_key_id"
// (when not 0); both are omitted in plaintext.
std::string FormatPeerJson(const std::vector<PeerInfo>& peers, absl::Time now);

// One line per event: "joined web-1 1a2b3c4d tcp://127.0.0.1:4000 peers=3
// (hello)" or the same as a JSON object.
std::string FormatEvent(const PeerEvent& event, size_t peer_count, bool json);

// Returns `body` unchanged when every byte is printable ASCII (space to
// '~'), else C-escaped ("a\\nb", "\\377"), so one task stays one line.
std::string PrintableBody(absl::string_view body);

// "task 0bd6ffb8:42 queue=images attempt=2 redelivered <body>", or a JSON
// object with the full producer id, seq, headers and the raw body.
// A pub/sub message: "TOPIC SEQ BODY" (body as with PrintableBody; a
// replayed message is marked "TOPIC SEQ (replay) BODY"), or a JSON object.
std::string FormatMessageLine(const Message& m, bool json);
// A gap: "gap TOPIC stream S seqs A..B lost N (REASON)", or JSON with
// "event":"gap".
std::string FormatGapLine(const GapEvent& e, bool json);

std::string FormatTaskLine(const Task& task, bool json);

// The outcome of a `--exec` run: "ack 0bd6ffb8:42 exit=0",
// "retry 0bd6ffb8:42 exit=3", "reject ... exit=4", "retry ... signal=9",
// or a JSON object. `detail` is "exit=N", "signal=N" or an error text.
std::string FormatVerdictLine(const TaskId& id, absl::string_view verdict,
                              absl::string_view detail, bool json);

// One dead letter: `seq=12 attempts=3 died=2024-05-01T10:00:00.000Z
// reason="max_attempts: exit 3" body="msg-12"` (the body cut to 60 bytes),
// or a JSON object with the whole body.
std::string FormatDeadLetter(const DeadLetter& dead, bool json);

// `spool verify`: "ok records=N pending=P acked=A dead=D", or one line per
// problem (and one for a torn tail); or one JSON object with "ok", the
// counts, "torn_tail_bytes" and "corrupt". Ends with a newline.
std::string FormatSpoolVerify(absl::string_view dir, const SpoolReport& report,
                              bool json);

// A spool scan as "key value" lines (each corrupt record indented below
// `corrupt`), or one JSON object.
std::string FormatSpoolReport(absl::string_view dir, const SpoolReport& report,
                              bool json);

// "corrupt 000001.seg offset 4096: checksum mismatch".
std::string FormatSpoolProblem(const SpoolProblem& problem);

}  // namespace fabric::cli

#endif  // FABRIC_TOOLS_CLI_OUTPUT_H_
