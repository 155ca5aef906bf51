// SPDX-License-Identifier: Apache-2.0
#include "tools/cli/output.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "fabric/security/keys.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/cli/json.h"

namespace fabric::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

PeerInfo Sample() {
  PeerInfo p;
  p.id = NodeId::Random();
  p.name = "web \"1\"";
  p.mailbox_endpoint = "tcp://127.0.0.1:4000";
  p.offers["queue"] = {"images"};
  p.headers["zone"] = "a\nb";
  return p;
}

// Every byte value 0..255 once.
std::string AllBytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  return s;
}

// Strings that are not UTF-8, each with a name for failure messages.
const std::vector<std::pair<std::string, std::string>>& InvalidUtf8() {
  static const auto* cases =
      new std::vector<std::pair<std::string, std::string>>{
          {"all bytes", AllBytes()},
          {"lone continuation", "a\x80z"},
          {"overlong slash", "\xc0\xaf"},
          {"overlong 3-byte", "\xe0\x80\xaf"},
          {"surrogate", "\xed\xa0\x80"},
          {"above U+10FFFF", "\xf4\x90\x80\x80"},
          {"truncated", "ok\xe6\x97"},
          {"0xff", "\xff"},
      };
  return *cases;
}

// Valid multi-byte UTF-8: é, 日本, an emoji, and NUL plus controls.
const std::vector<std::string>& ValidUtf8() {
  static const auto* cases = new std::vector<std::string>{
      "caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x98\x80 ok",
      std::string("a\0b\n\"\\", 6), ""};
  return *cases;
}

// Parses `text` as exactly one JSON value on one line (a trailing newline
// allowed), without exceptions.
nlohmann::json ParseLine(const std::string& text) {
  std::string line = text;
  if (!line.empty() && line.back() == '\n') line.pop_back();
  EXPECT_EQ(line.find('\n'), std::string::npos) << "not one line: " << text;
  nlohmann::json j =
      nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << "invalid JSON: " << text;
  return j;
}

// The bytes of field `key` of `obj`: the UTF-8 text of obj[key], or the
// decoded obj[key + "_b64"]. Fails the test when neither or both exist.
std::string BytesOf(const nlohmann::json& obj, const std::string& key) {
  const bool plain = obj.contains(key);
  const bool b64 = obj.contains(key + "_b64");
  EXPECT_NE(plain, b64) << key << " in " << obj.dump();
  if (plain) return obj[key].get<std::string>();
  if (!b64) return "<missing>";
  std::string out;
  EXPECT_TRUE(absl::Base64Unescape(obj[key + "_b64"].get<std::string>(), &out));
  return out;
}

// An independent decoder: the lengths and ranges of RFC 3629 from the bit
// patterns, to check IsValidUtf8 against.
bool ReferenceValid(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<uint8_t>(s[i]);
    size_t len;
    uint32_t cp;
    if ((b & 0x80) == 0) {
      len = 1;
      cp = b;
    } else if ((b & 0xe0) == 0xc0) {
      len = 2;
      cp = b & 0x1f;
    } else if ((b & 0xf0) == 0xe0) {
      len = 3;
      cp = b & 0x0f;
    } else if ((b & 0xf8) == 0xf0) {
      len = 4;
      cp = b & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto c = static_cast<uint8_t>(s[i + k]);
      if ((c & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += len;
  }
  return true;
}

TEST(Utf8, AcceptsValidText) {
  for (const std::string& s : ValidUtf8()) EXPECT_TRUE(IsValidUtf8(s)) << s;
  EXPECT_TRUE(IsValidUtf8("\xed\x9f\xbf"));      // U+D7FF, below surrogates
  EXPECT_TRUE(IsValidUtf8("\xee\x80\x80"));      // U+E000, above them
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF
  EXPECT_TRUE(IsValidUtf8("\xc2\x80"));          // U+0080
}

TEST(Utf8, RejectsInvalidText) {
  for (const auto& [name, s] : InvalidUtf8()) {
    EXPECT_FALSE(IsValidUtf8(s)) << name;
  }
  for (const char* s :
       {"\xc0\x80", "\xc1\xbf", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf",
        "\xed\xbf\xbf", "\xf5\x80\x80\x80", "\xc3\x41", "\xbf", "\xf0\x9f\x98",
        "\xfe", "\xf8\x88\x80\x80\x80"}) {
    EXPECT_FALSE(IsValidUtf8(s)) << absl::CEscape(s);
  }
}

TEST(Utf8, AgreesWithReferenceOnEveryShortString) {
  std::string s;
  for (int a = 0; a < 256; ++a) {
    s.assign(1, static_cast<char>(a));
    ASSERT_EQ(IsValidUtf8(s), ReferenceValid(s)) << absl::CEscape(s);
    for (int b = 0; b < 256; ++b) {
      s.assign({static_cast<char>(a), static_cast<char>(b)});
      ASSERT_EQ(IsValidUtf8(s), ReferenceValid(s)) << absl::CEscape(s);
    }
  }
  // Every 3-byte string with a multi-byte lead, and 4-byte ones with every
  // lead and second byte.
  for (int a = 0xc0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      for (int c = 0; c < 256; ++c) {
        s.assign(
            {static_cast<char>(a), static_cast<char>(b), static_cast<char>(c)});
        ASSERT_EQ(IsValidUtf8(s), ReferenceValid(s)) << absl::CEscape(s);
      }
      for (int d : {0x41, 0x80, 0xbf, 0xc0}) {
        s.assign({static_cast<char>(a), static_cast<char>(b), '\x80',
                  static_cast<char>(d)});
        ASSERT_EQ(IsValidUtf8(s), ReferenceValid(s)) << absl::CEscape(s);
      }
    }
  }
}

TEST(Json, BytesFieldIsTextOrBase64) {
  for (const std::string& s : ValidUtf8()) {
    Json o = Json::object();
    SetBytesField(o, "body", s);
    const nlohmann::json j = ParseLine(JsonLine(o));
    EXPECT_FALSE(j.contains("body_b64"));
    EXPECT_EQ(BytesOf(j, "body"), s);
  }
  for (const auto& [name, s] : InvalidUtf8()) {
    Json o = Json::object();
    SetBytesField(o, "body", s);
    const nlohmann::json j = ParseLine(JsonLine(o));
    EXPECT_FALSE(j.contains("body")) << name;
    EXPECT_EQ(BytesOf(j, "body"), s) << name;
  }
}

TEST(Json, MapSplitsValidAndBase64Pairs) {
  const std::string bad = "\xff\xfe";
  Json o = Json::object();
  SetBytesMapField(o, "headers",
                   {{"ok", "caf\xc3\xa9"}, {"k", bad}, {bad, "v"}});
  const nlohmann::json j = ParseLine(JsonDump(o));
  EXPECT_EQ(j["headers"], nlohmann::json({{"ok", "caf\xc3\xa9"}}));
  ASSERT_EQ(j["headers_b64"].size(), 2u);
  EXPECT_EQ(j["headers_b64"][absl::Base64Escape("k")], absl::Base64Escape(bad));
  EXPECT_EQ(j["headers_b64"][absl::Base64Escape(bad)], absl::Base64Escape("v"));

  Json clean = Json::object();
  SetBytesMapField(clean, "headers", {});
  EXPECT_EQ(JsonDump(clean), "{\"headers\":{}}");
}

TEST(Json, DumpReplacesInsteadOfThrowing) {
  Json o = Json::object();
  o["raw"] = std::string("a\xffz");  // bypasses SetBytesField
  std::string text;
  EXPECT_NO_THROW(text = JsonDump(o));
  const nlohmann::json j = ParseLine(text);
  EXPECT_EQ(j["raw"], "a\xef\xbf\xbdz");  // U+FFFD
}

TEST(Json, ReadyLine) {
  EXPECT_EQ(FormatReadyLine("tcp://127.0.0.1:4000", "abcd", "web-1", false),
            "READY tcp://127.0.0.1:4000 abcd web-1");
  const nlohmann::json j =
      ParseLine(FormatReadyLine("tcp://127.0.0.1:4000", "abcd", "web-1", true));
  EXPECT_EQ(j["event"], "ready");
  EXPECT_EQ(j["endpoint"], "tcp://127.0.0.1:4000");
  EXPECT_EQ(j["id"], "abcd");
  EXPECT_EQ(j["name"], "web-1");
  for (const auto& [label, name] : InvalidUtf8()) {
    const nlohmann::json b = ParseLine(FormatReadyLine("e", "i", name, true));
    EXPECT_EQ(BytesOf(b, "name"), name) << label;
  }
}

// Peers and events with every kind of name, header and offer bytes.
TEST(Json, PeersAndEventsRoundTripAnyBytes) {
  std::vector<std::string> inputs = ValidUtf8();
  for (const auto& [label, s] : InvalidUtf8()) inputs.push_back(s);
  for (const std::string& bytes : inputs) {
    PeerInfo p = Sample();
    p.name = bytes;
    p.headers["zone"] = bytes;
    p.offers["queue"] = {bytes};
    const nlohmann::json peers =
        ParseLine(FormatPeerJson({p, Sample()}, absl::Now()));
    ASSERT_TRUE(peers.is_array());
    ASSERT_EQ(peers.size(), 2u);
    const nlohmann::json& j = peers[0];
    EXPECT_EQ(BytesOf(j, "name"), bytes);
    EXPECT_EQ(j["id"], p.id.ToHex());
    EXPECT_EQ(j["state"].get<std::string>(), PeerStateName(p.state));
    if (IsValidUtf8(bytes)) {
      EXPECT_EQ(j["headers"]["zone"], bytes);
      EXPECT_EQ(j["offers"]["queue"][0], bytes);
    } else {
      std::string v;
      ASSERT_TRUE(absl::Base64Unescape(
          j["headers_b64"][absl::Base64Escape("zone")].get<std::string>(), &v));
      EXPECT_EQ(v, bytes);
      ASSERT_TRUE(absl::Base64Unescape(
          j["offers_b64"][absl::Base64Escape("queue")][0].get<std::string>(),
          &v));
      EXPECT_EQ(v, bytes);
    }
    EXPECT_EQ(peers[1]["name"], "web \"1\"");

    PeerEvent e{PeerEventType::kLeft, p, bytes, absl::Now()};
    const nlohmann::json ev = ParseLine(FormatEvent(e, 2, true));
    EXPECT_EQ(ev["event"], "left");
    EXPECT_EQ(ev["peers"], 2);
    EXPECT_EQ(BytesOf(ev, "name"), bytes);
    EXPECT_EQ(BytesOf(ev, "reason"), bytes);
  }
}

TEST(Json, MessageAndGapLinesRoundTripAnyBytes) {
  std::vector<std::string> inputs = ValidUtf8();
  for (const auto& [label, s] : InvalidUtf8()) inputs.push_back(s);
  for (const std::string& bytes : inputs) {
    Message m;
    m.topic = bytes;
    m.stream = 0xabc;
    m.seq = 9;
    m.durable = true;
    m.headers[bytes] = "v";
    m.body = bytes;
    const nlohmann::json j = ParseLine(FormatMessageLine(m, true));
    EXPECT_EQ(BytesOf(j, "topic"), bytes);
    EXPECT_EQ(BytesOf(j, "body"), bytes);
    EXPECT_EQ(j["seq"], 9);
    EXPECT_EQ(j["stream"], "0000000000000abc");
    EXPECT_EQ(j["durable"], true);
    EXPECT_EQ(j["replayed"], false);
    if (IsValidUtf8(bytes)) {
      EXPECT_EQ(j["headers"][bytes], "v");
    } else {
      EXPECT_EQ(j["headers_b64"][absl::Base64Escape(bytes)],
                absl::Base64Escape("v"));
    }

    GapEvent g{bytes, 1, 3, 7, bytes};
    const nlohmann::json gap = ParseLine(FormatGapLine(g, true));
    EXPECT_EQ(gap["event"], "gap");
    EXPECT_EQ(gap["lost"], 5);
    EXPECT_EQ(BytesOf(gap, "topic"), bytes);
    EXPECT_EQ(BytesOf(gap, "reason"), bytes);
  }
}

TEST(Output, QuotedTextEscapes) {
  EXPECT_EQ(QuotedText("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
}

TEST(Output, TableHasHeaderAndRow) {
  PeerInfo p = Sample();
  const absl::Time now = absl::Now();
  p.last_seen = now - absl::Milliseconds(300);
  const std::string table = FormatPeerTable({p}, now);
  EXPECT_THAT(table, HasSubstr("NAME"));
  EXPECT_THAT(table, HasSubstr("LAST-SEEN"));
  EXPECT_THAT(table, HasSubstr(p.id.ShortHex()));
  EXPECT_THAT(table, HasSubstr("queue:images"));
  EXPECT_THAT(table, HasSubstr("0.3s ago"));
}

TEST(Output, JsonIsEscapedAndComplete) {
  PeerInfo p = Sample();
  const std::string json = FormatPeerJson({p}, absl::Now());
  EXPECT_THAT(json, HasSubstr("\"name\":\"web \\\"1\\\"\""));
  EXPECT_THAT(json, HasSubstr("\"offers\":{\"queue\":[\"images\"]}"));
  EXPECT_THAT(json, HasSubstr("\"zone\":\"a\\nb\""));
  EXPECT_THAT(json, HasSubstr(p.id.ToHex()));
}

TEST(Output, PlaintextPeersHaveNoKeyFields) {
  const PeerInfo p = Sample();
  const nlohmann::json j = ParseLine(FormatPeerJson({p}, absl::Now()))[0];
  EXPECT_FALSE(j.contains("key")) << j;
  EXPECT_FALSE(j.contains("beacon_key_id")) << j;
  EXPECT_THAT(FormatPeerTable({p}, absl::Now()), Not(HasSubstr("KEY")));
}

TEST(Output, SecurePeersShowTheirKeyFingerprintAndBeaconKeyId) {
  PeerInfo secure = Sample();
  secure.public_key = std::string(32, '\x5a');
  secure.public_key[0] = '\x01';
  secure.beacon_key_id = 2;
  PeerInfo seeds_only = Sample();  // seeds mode: a key, no beacon
  seeds_only.public_key = std::string(32, '\xff');
  const std::string fingerprint = security::KeyFingerprint(secure.public_key);
  ASSERT_EQ(fingerprint, "015a5a5a5a5a5a5a");

  const nlohmann::json peers =
      ParseLine(FormatPeerJson({secure, seeds_only}, absl::Now()));
  EXPECT_EQ(peers[0]["key"], fingerprint);
  EXPECT_EQ(peers[0]["beacon_key_id"], 2);
  EXPECT_EQ(peers[1]["key"], "ffffffffffffffff");
  EXPECT_FALSE(peers[1].contains("beacon_key_id")) << peers[1];
  // Never the key itself, raw or in Z85.
  const std::string line = FormatPeerJson({secure}, absl::Now());
  EXPECT_THAT(line, Not(HasSubstr(security::Z85Key(secure.public_key))));

  const std::string table = FormatPeerTable({secure, Sample()}, absl::Now());
  EXPECT_THAT(table, HasSubstr("KEY"));
  EXPECT_THAT(table, HasSubstr(fingerprint));
}

TEST(Output, EventLine) {
  PeerEvent e{PeerEventType::kJoined, Sample(), "hello", absl::Now()};
  EXPECT_THAT(FormatEvent(e, 3, false), HasSubstr("joined web"));
  EXPECT_THAT(FormatEvent(e, 3, false), HasSubstr("peers=3"));
  EXPECT_THAT(FormatEvent(e, 3, true), HasSubstr("\"event\":\"joined\""));
  EXPECT_THAT(FormatEvent(e, 3, true), HasSubstr("\"peers\":3"));
}

}  // namespace
}  // namespace fabric::cli
