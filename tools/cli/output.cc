// SPDX-License-Identifier: Apache-2.0
#include "tools/cli/output.h"

#include <algorithm>

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
      ",\"headers\":", JsonObjectOfStrings(p.headers),
      ",\"offers\":", JsonOffers(p.offers), "}");
}

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

}  // namespace fabric::cli
