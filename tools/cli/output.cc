// SPDX-License-Identifier: Apache-2.0
#include "tools/cli/output.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "fabric/security/keys.h"
#include "tools/cli/json.h"

namespace fabric::cli {
namespace {

std::string Ago(absl::Time then, absl::Time now) {
  return absl::StrFormat("%.1fs ago",
                         std::max(0.0, absl::ToDoubleSeconds(now - then)));
}

Json JsonPeer(const PeerInfo& p, absl::Time now) {
  Json o = Json::object();
  SetBytesField(o, "name", p.name);
  o["id"] = p.id.ToHex();
  SetBytesField(o, "address", p.mailbox_endpoint);
  o["state"] = std::string(PeerStateName(p.state));
  o["last_seen_ms_ago"] =
      std::max<int64_t>(0, absl::ToInt64Milliseconds(now - p.last_seen));
  o["messages_in"] = p.messages_in;
  o["messages_out"] = p.messages_out;
  // Secure mode only: the key the peer authenticated with (a fingerprint,
  // never the key) and the beacon key id it sends under, so a key or
  // beacon-secret rotation can be followed (docs/security.md).
  if (!p.public_key.empty()) {
    o["key"] = security::KeyFingerprint(p.public_key);
  }
  if (p.beacon_key_id != 0) o["beacon_key_id"] = p.beacon_key_id;
  SetBytesMapField(o, "headers", p.headers);
  SetBytesSetMapField(o, "offers", p.offers);
  return o;
}

std::string UtcMillis(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

constexpr size_t kBodyPreviewBytes = 60;

Json SpoolProblemsJson(const std::vector<SpoolProblem>& problems) {
  Json array = Json::array();
  for (const SpoolProblem& p : problems) {
    Json o = Json::object();
    SetBytesField(o, "segment", p.segment);
    o["offset"] = p.offset;
    SetBytesField(o, "what", p.what);
    array.push_back(std::move(o));
  }
  return array;
}

}  // namespace

std::string QuotedText(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  out += "\"";
  return out;
}

std::string FormatReadyLine(absl::string_view endpoint, absl::string_view id,
                            absl::string_view name, bool json) {
  if (json) {
    Json o = Json::object();
    o["event"] = "ready";
    SetBytesField(o, "endpoint", endpoint);
    SetBytesField(o, "id", id);
    SetBytesField(o, "name", name);
    return JsonDump(o);
  }
  return absl::StrCat("READY ", endpoint, " ", id, " ", name);
}

std::string FormatOffers(const Offers& offers) {
  std::vector<std::string> parts;
  for (const auto& [kind, names] : offers) {
    for (const std::string& n : names)
      parts.push_back(absl::StrCat(kind, ":", n));
  }
  return parts.empty() ? "-" : absl::StrJoin(parts, ",");
}

std::string FormatPeerTable(const std::vector<PeerInfo>& peers,
                            absl::Time now) {
  // The KEY column only when some peer has a key (secure mode), so the
  // plaintext table stays as it was.
  const bool keys = std::any_of(peers.begin(), peers.end(), [](const auto& p) {
    return !p.public_key.empty();
  });
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "ID", "ADDRESS", "STATE", "LAST-SEEN", "OFFERS"}};
  if (keys) rows[0].push_back("KEY");
  for (const PeerInfo& p : peers) {
    rows.push_back({p.name, p.id.ShortHex(), p.mailbox_endpoint,
                    std::string(PeerStateName(p.state)), Ago(p.last_seen, now),
                    FormatOffers(p.offers)});
    if (keys) {
      rows.back().push_back(
          p.public_key.empty() ? "-" : security::KeyFingerprint(p.public_key));
    }
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      out += row[i];
      if (i + 1 < row.size())
        out += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out += "\n";
  }
  return out;
}

std::string FormatPeerJson(const std::vector<PeerInfo>& peers, absl::Time now) {
  Json array = Json::array();
  for (const PeerInfo& p : peers) array.push_back(JsonPeer(p, now));
  return JsonLine(array);
}

std::string FormatEvent(const PeerEvent& e, size_t peer_count, bool json) {
  const PeerInfo& p = e.peer;
  if (json) {
    Json o = Json::object();
    o["event"] = std::string(PeerEventTypeName(e.type));
    SetBytesField(o, "name", p.name);
    o["id"] = p.id.ToHex();
    SetBytesField(o, "address", p.mailbox_endpoint);
    SetBytesSetMapField(o, "offers", p.offers);
    o["peers"] = peer_count;
    SetBytesField(o, "reason", e.reason);
    return JsonDump(o);
  }
  return absl::StrCat(PeerEventTypeName(e.type), " ", p.name, " ",
                      p.id.ShortHex(), " ", p.mailbox_endpoint,
                      " peers=", peer_count, " offers=", FormatOffers(p.offers),
                      " (", e.reason, ")");
}

std::string PrintableBody(absl::string_view body) {
  for (char c : body) {
    if (c < 0x20 || c > 0x7e) return absl::CEscape(body);
  }
  return std::string(body);
}

std::string FormatMessageLine(const Message& m, bool json) {
  const std::string stream = absl::StrFormat("%016x", m.stream);
  if (json) {
    Json o = Json::object();
    SetBytesField(o, "topic", m.topic);
    o["stream"] = stream;
    o["seq"] = m.seq;
    o["published"] = absl::FormatTime(m.published);
    o["durable"] = m.durable;
    o["replayed"] = m.replayed;
    SetBytesMapField(o, "headers", m.headers);
    SetBytesField(o, "body", m.body);
    return JsonDump(o);
  }
  return absl::StrCat(m.topic, " ", m.seq, m.replayed ? " (replay) " : " ",
                      PrintableBody(m.body));
}

std::string FormatGapLine(const GapEvent& e, bool json) {
  const std::string stream = absl::StrFormat("%016x", e.stream);
  if (json) {
    Json o = Json::object();
    o["event"] = "gap";
    SetBytesField(o, "topic", e.topic);
    o["stream"] = stream;
    o["first"] = e.first;
    o["last"] = e.last;
    o["lost"] = e.count();
    SetBytesField(o, "reason", e.reason);
    return JsonDump(o);
  }
  return absl::StrCat("gap ", e.topic, " stream ", stream, " seqs ", e.first,
                      "..", e.last, " lost ", e.count(), " (", e.reason, ")");
}

std::string FormatTaskLine(const Task& task, bool json) {
  if (json) {
    Json o = Json::object();
    o["task"] = task.id.ToString();
    o["producer"] = task.id.producer.ToHex();
    o["seq"] = task.id.seq;
    SetBytesField(o, "queue", task.queue);
    o["attempt"] = task.attempt;
    o["redelivered"] = task.redelivered;
    SetBytesMapField(o, "headers", task.headers);
    SetBytesField(o, "body", task.body);
    return JsonDump(o);
  }
  return absl::StrCat("task ", task.id.ToString(), " queue=", task.queue,
                      " attempt=", task.attempt,
                      task.redelivered ? " redelivered " : " ",
                      PrintableBody(task.body));
}

std::string FormatVerdictLine(const TaskId& id, absl::string_view verdict,
                              absl::string_view detail, bool json) {
  if (json) {
    Json o = Json::object();
    SetBytesField(o, "verdict", verdict);
    o["task"] = id.ToString();
    SetBytesField(o, "detail", detail);
    return JsonDump(o);
  }
  return absl::StrCat(verdict, " ", id.ToString(), " ", detail);
}

std::string FormatDeadLetter(const DeadLetter& dead, bool json) {
  if (json) {
    Json o = Json::object();
    o["seq"] = dead.task.seq;
    o["attempts"] = dead.attempts;
    SetBytesField(o, "reason", dead.reason);
    o["died"] = UtcMillis(dead.died);
    o["enqueued"] = UtcMillis(dead.task.enqueued);
    SetBytesMapField(o, "headers", dead.task.headers);
    SetBytesField(o, "body", dead.task.body);
    return JsonDump(o);
  }
  absl::string_view body = dead.task.body;
  const bool cut = body.size() > kBodyPreviewBytes;
  return absl::StrCat(
      "seq=", dead.task.seq, " attempts=", dead.attempts,
      " died=", UtcMillis(dead.died), " reason=", QuotedText(dead.reason),
      " body=",
      QuotedText(PrintableBody(cut ? body.substr(0, kBodyPreviewBytes) : body)),
      cut ? "..." : "");
}

std::string FormatSpoolProblem(const SpoolProblem& problem) {
  return absl::StrCat("corrupt ", problem.segment, " offset ", problem.offset,
                      ": ", problem.what);
}

std::string FormatSpoolVerify(absl::string_view dir, const SpoolReport& r,
                              bool json) {
  const bool ok = r.corrupt.empty() && r.torn_tail_bytes == 0;
  if (json) {
    Json o = Json::object();
    SetBytesField(o, "dir", dir);
    o["ok"] = ok;
    o["records"] = r.records;
    o["pending"] = r.pending;
    o["acked"] = r.acked;
    o["dead"] = r.dead;
    o["torn_tail_bytes"] = r.torn_tail_bytes;
    o["corrupt"] = SpoolProblemsJson(r.corrupt);
    return JsonLine(o);
  }
  if (ok) {
    return absl::StrCat("ok records=", r.records, " pending=", r.pending,
                        " acked=", r.acked, " dead=", r.dead, "\n");
  }
  std::string out;
  for (const SpoolProblem& p : r.corrupt) {
    absl::StrAppend(&out, FormatSpoolProblem(p), "\n");
  }
  if (r.torn_tail_bytes > 0) {
    absl::StrAppend(&out, "torn tail of ", r.torn_tail_bytes,
                    " bytes (cut off at the next open)\n");
  }
  return out;
}

std::string FormatSpoolReport(absl::string_view dir, const SpoolReport& r,
                              bool json) {
  if (json) {
    Json o = Json::object();
    SetBytesField(o, "dir", dir);
    o["producer"] = r.producer_id.ToHex();
    SetBytesField(o, "queue", r.queue);
    o["next_seq"] = r.next_seq;
    o["segments"] = r.segments;
    o["disk_bytes"] = r.disk_bytes;
    o["live_bytes"] = r.live_bytes;
    o["records"] = r.records;
    o["enqueued"] = r.enqueued;
    o["pending"] = r.pending;
    o["acked"] = r.acked;
    o["dead"] = r.dead;
    o["torn_tail_bytes"] = r.torn_tail_bytes;
    o["seqs_skipped"] = r.seqs_skipped;
    o["corrupt"] = SpoolProblemsJson(r.corrupt);
    return JsonLine(o);
  }
  std::string out =
      absl::StrCat("spool            ", dir, "\n",                    //
                   "producer         ", r.producer_id.ToHex(), "\n",  //
                   "queue            ", r.queue, "\n",                //
                   "next-seq         ", r.next_seq, "\n",             //
                   "segments         ", r.segments, "\n",             //
                   "disk-bytes       ", r.disk_bytes, "\n",           //
                   "live-bytes       ", r.live_bytes, "\n",           //
                   "records          ", r.records, "\n",              //
                   "enqueued         ", r.enqueued, "\n",             //
                   "pending          ", r.pending, "\n",              //
                   "acked            ", r.acked, "\n",                //
                   "dead             ", r.dead, "\n",                 //
                   "torn-tail-bytes  ", r.torn_tail_bytes, "\n",      //
                   "seqs-skipped     ", r.seqs_skipped, "\n",         //
                   "corrupt          ", r.corrupt.size(), "\n");
  for (const SpoolProblem& p : r.corrupt) {
    absl::StrAppend(&out, "  ", FormatSpoolProblem(p), "\n");
  }
  return out;
}

}  // namespace fabric::cli
