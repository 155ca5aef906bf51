// SPDX-License-Identifier: Apache-2.0
#include "tools/cli/json.h"

#include <cstdint>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace fabric::cli {

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto b0 = static_cast<uint8_t>(s[i]);
    if (b0 < 0x80) {
      ++i;
      continue;
    }
    // The lead byte gives the length and the range of the second byte,
    // which is where overlongs, surrogates and > U+10FFFF are excluded.
    size_t len = 0;
    uint8_t lo = 0x80, hi = 0xbf;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
      len = 2;
    } else if (b0 == 0xe0) {
      len = 3;
      lo = 0xa0;  // below is overlong
    } else if (b0 >= 0xe1 && b0 <= 0xec) {
      len = 3;
    } else if (b0 == 0xed) {
      len = 3;
      hi = 0x9f;  // above are the surrogates U+D800..U+DFFF
    } else if (b0 >= 0xee && b0 <= 0xef) {
      len = 3;
    } else if (b0 == 0xf0) {
      len = 4;
      lo = 0x90;  // below is overlong
    } else if (b0 >= 0xf1 && b0 <= 0xf3) {
      len = 4;
    } else if (b0 == 0xf4) {
      len = 4;
      hi = 0x8f;  // above is beyond U+10FFFF
    } else {
      return false;  // a continuation byte, 0xc0/0xc1 (overlong) or 0xf5+
    }
    if (n - i < len) return false;
    const auto b1 = static_cast<uint8_t>(s[i + 1]);
    if (b1 < lo || b1 > hi) return false;
    for (size_t k = 2; k < len; ++k) {
      const auto b = static_cast<uint8_t>(s[i + k]);
      if (b < 0x80 || b > 0xbf) return false;
    }
    i += len;
  }
  return true;
}

void SetBytesField(Json& obj, absl::string_view key, absl::string_view bytes) {
  if (IsValidUtf8(bytes)) {
    obj[std::string(key)] = std::string(bytes);
  } else {
    obj[absl::StrCat(key, "_b64")] = absl::Base64Escape(bytes);
  }
}

void SetBytesMapField(Json& obj, absl::string_view key,
                      const std::map<std::string, std::string>& map) {
  Json text = Json::object();
  Json b64 = Json::object();
  for (const auto& [k, v] : map) {
    if (IsValidUtf8(k) && IsValidUtf8(v)) {
      text[k] = v;
    } else {
      b64[absl::Base64Escape(k)] = absl::Base64Escape(v);
    }
  }
  obj[std::string(key)] = std::move(text);
  if (!b64.empty()) obj[absl::StrCat(key, "_b64")] = std::move(b64);
}

void SetBytesSetMapField(
    Json& obj, absl::string_view key,
    const std::map<std::string, std::set<std::string>>& m) {
  Json text = Json::object();
  Json b64 = Json::object();
  for (const auto& [kind, names] : m) {
    const bool kind_ok = IsValidUtf8(kind);
    if (kind_ok && names.empty()) text[kind] = Json::array();
    for (const std::string& name : names) {
      if (kind_ok && IsValidUtf8(name)) {
        text[kind].push_back(name);
      } else {
        b64[absl::Base64Escape(kind)].push_back(absl::Base64Escape(name));
      }
    }
  }
  obj[std::string(key)] = std::move(text);
  if (!b64.empty()) obj[absl::StrCat(key, "_b64")] = std::move(b64);
}

std::string JsonDump(const Json& value) {
  return value.dump(-1, ' ', /*ensure_ascii=*/false,
                    Json::error_handler_t::replace);
}

std::string JsonLine(const Json& value) {
  std::string line = JsonDump(value);
  line += '\n';
  return line;
}

}  // namespace fabric::cli
