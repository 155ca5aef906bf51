// SPDX-License-Identifier: Apache-2.0
#include "tools/cli/output.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace fabric::cli {
namespace {

std::string Ago(absl::Time then, absl::Time now) {
  return absl::StrFormat("%.1fs ago",
                         std::max(0.0, absl::ToDoubleSeconds(now - then)));
}

std::string JsonObjectOfStrings(const Headers& headers) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : headers) {
    parts.push_back(absl::StrCat(JsonString(k), ":", JsonString(v)));
  }
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

std::string JsonOffers(const Offers& offers) {
  std::vector<std::string> parts;
  for (const auto& [kind, names] : offers) {
    std::vector<std::string> quoted;
    for (const std::string& n : names) quoted.push_back(JsonString(n));
    parts.push_back(
        absl::StrCat(JsonString(kind), ":[", absl::StrJoin(quoted, ","), "]"));
  }
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

std::string JsonPeer(const PeerInfo& p, absl::Time now) {
  return absl::StrCat(
      "{\"name\":", JsonString(p.name), ",\"id\":", JsonString(p.id.ToHex()),
      ",\"address\":", JsonString(p.mailbox_endpoint),
      ",\"state\":", JsonString(PeerStateName(p.state)),
      ",\"last_seen_ms_ago\":",
      std::max<int64_t>(0, absl::ToInt64Milliseconds(now - p.last_seen)),
      ",\"messages_in\":", p.messages_in, ",\"messages_out\":", p.messages_out,
      ",\"headers\":", JsonObjectOfStrings(p.headers),
      ",\"offers\":", JsonOffers(p.offers), "}");
}

std::string UtcMillis(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

constexpr size_t kBodyPreviewBytes = 60;

}  // namespace

std::string JsonString(absl::string_view s) {
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
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "ID", "ADDRESS", "STATE", "LAST-SEEN", "OFFERS"}};
  for (const PeerInfo& p : peers) {
    rows.push_back({p.name, p.id.ShortHex(), p.mailbox_endpoint,
                    std::string(PeerStateName(p.state)), Ago(p.last_seen, now),
                    FormatOffers(p.offers)});
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
  std::vector<std::string> objects;
  for (const PeerInfo& p : peers) objects.push_back(JsonPeer(p, now));
  return absl::StrCat("[", absl::StrJoin(objects, ",\n "), "]\n");
}

std::string FormatEvent(const PeerEvent& e, size_t peer_count, bool json) {
  const PeerInfo& p = e.peer;
  if (json) {
    return absl::StrCat(
        "{\"event\":", JsonString(PeerEventTypeName(e.type)),
        ",\"name\":", JsonString(p.name), ",\"id\":", JsonString(p.id.ToHex()),
        ",\"address\":", JsonString(p.mailbox_endpoint),
        ",\"offers\":", JsonOffers(p.offers), ",\"peers\":", peer_count,
        ",\"reason\":", JsonString(e.reason), "}");
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
    return absl::StrCat(
        "{\"topic\":", JsonString(m.topic), ",\"stream\":", JsonString(stream),
        ",\"seq\":", m.seq,
        ",\"published\":", JsonString(absl::FormatTime(m.published)),
        ",\"durable\":", m.durable ? "true" : "false",
        ",\"replayed\":", m.replayed ? "true" : "false",
        ",\"headers\":", JsonObjectOfStrings(m.headers),
        ",\"body\":", JsonString(m.body), "}");
  }
  return absl::StrCat(m.topic, " ", m.seq, m.replayed ? " (replay) " : " ",
                      PrintableBody(m.body));
}

std::string FormatGapLine(const GapEvent& e, bool json) {
  const std::string stream = absl::StrFormat("%016x", e.stream);
  if (json) {
    return absl::StrCat("{\"event\":\"gap\",\"topic\":", JsonString(e.topic),
                        ",\"stream\":", JsonString(stream),
                        ",\"first\":", e.first, ",\"last\":", e.last,
                        ",\"lost\":", e.count(),
                        ",\"reason\":", JsonString(e.reason), "}");
  }
  return absl::StrCat("gap ", e.topic, " stream ", stream, " seqs ", e.first,
                      "..", e.last, " lost ", e.count(), " (", e.reason, ")");
}

std::string FormatTaskLine(const Task& task, bool json) {
  if (json) {
    return absl::StrCat(
        "{\"task\":", JsonString(task.id.ToString()),
        ",\"producer\":", JsonString(task.id.producer.ToHex()),
        ",\"seq\":", task.id.seq, ",\"queue\":", JsonString(task.queue),
        ",\"attempt\":", task.attempt,
        ",\"redelivered\":", task.redelivered ? "true" : "false",
        ",\"headers\":", JsonObjectOfStrings(task.headers),
        ",\"body\":", JsonString(task.body), "}");
  }
  return absl::StrCat("task ", task.id.ToString(), " queue=", task.queue,
                      " attempt=", task.attempt,
                      task.redelivered ? " redelivered " : " ",
                      PrintableBody(task.body));
}

std::string FormatVerdictLine(const TaskId& id, absl::string_view verdict,
                              absl::string_view detail, bool json) {
  if (json) {
    return absl::StrCat("{\"verdict\":", JsonString(verdict),
                        ",\"task\":", JsonString(id.ToString()),
                        ",\"detail\":", JsonString(detail), "}");
  }
  return absl::StrCat(verdict, " ", id.ToString(), " ", detail);
}

std::string FormatDeadLetter(const DeadLetter& dead, bool json) {
  if (json) {
    return absl::StrCat(
        "{\"seq\":", dead.task.seq, ",\"attempts\":", dead.attempts,
        ",\"reason\":", JsonString(dead.reason),
        ",\"died\":", JsonString(UtcMillis(dead.died)),
        ",\"enqueued\":", JsonString(UtcMillis(dead.task.enqueued)),
        ",\"headers\":", JsonObjectOfStrings(dead.task.headers),
        ",\"body\":", JsonString(dead.task.body), "}");
  }
  absl::string_view body = dead.task.body;
  const bool cut = body.size() > kBodyPreviewBytes;
  return absl::StrCat(
      "seq=", dead.task.seq, " attempts=", dead.attempts,
      " died=", UtcMillis(dead.died), " reason=", JsonString(dead.reason),
      " body=",
      JsonString(PrintableBody(cut ? body.substr(0, kBodyPreviewBytes) : body)),
      cut ? "..." : "");
}

std::string FormatSpoolProblem(const SpoolProblem& problem) {
  return absl::StrCat("corrupt ", problem.segment, " offset ", problem.offset,
                      ": ", problem.what);
}

std::string FormatSpoolReport(absl::string_view dir, const SpoolReport& r,
                              bool json) {
  if (json) {
    std::vector<std::string> problems;
    for (const SpoolProblem& p : r.corrupt) {
      problems.push_back(absl::StrCat("{\"segment\":", JsonString(p.segment),
                                      ",\"offset\":", p.offset,
                                      ",\"what\":", JsonString(p.what), "}"));
    }
    return absl::StrCat(
        "{\"dir\":", JsonString(dir),
        ",\"producer\":", JsonString(r.producer_id.ToHex()),
        ",\"queue\":", JsonString(r.queue), ",\"next_seq\":", r.next_seq,
        ",\"segments\":", r.segments, ",\"disk_bytes\":", r.disk_bytes,
        ",\"live_bytes\":", r.live_bytes, ",\"records\":", r.records,
        ",\"enqueued\":", r.enqueued, ",\"pending\":", r.pending,
        ",\"acked\":", r.acked, ",\"dead\":", r.dead,
        ",\"torn_tail_bytes\":", r.torn_tail_bytes, ",\"corrupt\":[",
        absl::StrJoin(problems, ","), "]}\n");
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
                   "corrupt          ", r.corrupt.size(), "\n");
  for (const SpoolProblem& p : r.corrupt) {
    absl::StrAppend(&out, "  ", FormatSpoolProblem(p), "\n");
  }
  return out;
}

}  // namespace fabric::cli
