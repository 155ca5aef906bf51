// SPDX-License-Identifier: Apache-2.0
// JSON output of the CLI through nlohmann::json, with one rule for byte
// strings that may not be UTF-8 (bodies, headers, names, reasons): valid
// UTF-8 goes in the plain field, anything else in "<field>_b64" as standard
// base64 (docs/cli.md, "JSON output"). Nothing here throws on bad bytes.
#ifndef FABRIC_TOOLS_CLI_JSON_H_
#define FABRIC_TOOLS_CLI_JSON_H_

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "absl/strings/string_view.h"

namespace fabric::cli {

// Objects keep their fields in insertion order, so lines read naturally
// ("event" or "task" first).
using Json = nlohmann::ordered_json;

// True when `s` is well-formed UTF-8 (RFC 3629): no stray or missing
// continuation bytes, no overlong forms, no surrogates (U+D800..U+DFFF) and
// nothing above U+10FFFF. The empty string is valid.
bool IsValidUtf8(absl::string_view s);

// Sets obj[key] to `bytes` when they are valid UTF-8, else sets
// obj[key + "_b64"] to their standard base64 (never both).
void SetBytesField(Json& obj, absl::string_view key, absl::string_view bytes);

// Sets obj[key] to an object of the pairs whose key and value are both
// valid UTF-8 (always present, maybe empty) and, when some pair is not,
// obj[key + "_b64"] to an object mapping base64(key) to base64(value) for
// those pairs.
void SetBytesMapField(Json& obj, absl::string_view key,
                      const std::map<std::string, std::string>& map);

// Sets obj[key] to {kind: [name, ...]} for the pairs that are valid UTF-8
// (always present) and, when some are not, obj[key + "_b64"] to
// {base64(kind): [base64(name), ...]} for the others.
void SetBytesSetMapField(Json& obj, absl::string_view key,
                         const std::map<std::string, std::set<std::string>>& m);

// `value` on one line, without a newline. Invalid UTF-8 that got past the
// rule above is replaced by U+FFFD instead of throwing.
std::string JsonDump(const Json& value);
// JsonDump(value) and a newline: one line of a JSON Lines stream.
std::string JsonLine(const Json& value);

}  // namespace fabric::cli

#endif  // FABRIC_TOOLS_CLI_JSON_H_
