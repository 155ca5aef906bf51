// SPDX-License-Identifier: Apache-2.0
// libFuzzer target over the ZAP request parser (fabric/security/zap.h) and
// the verdict it leads to against a one-key roster. The input is split into
// frames, with flag bits that plant the values a real request has, so the
// accepting paths are reached as often as the refusals. Build and run:
// tests/fuzz/README.md.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fabric/security/keys.h"
#include "fabric/security/zap.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

// The one key the ZAP fuzzing roster admits.
const std::string& RosterKey() {
  static const std::string* const key = new std::string(32, '\x5a');
  return *key;
}

const fabric::security::Roster& FuzzRoster() {
  static const fabric::security::Roster* const roster =
      new fabric::security::Roster({{"member", RosterKey(), "", "member.pub"}});
  return *roster;
}

// Splits `input` into ZAP frames: after a flags byte, each frame is a
// length byte and that many bytes (a short last frame takes what is
// left). Flag bits put the values a real request has into frames 0
// (version), 2 (domain), 5 (mechanism) and 6 (the roster's key), so the
// accepting paths are reached as often as the refusals.
std::vector<std::string> ZapFrames(absl::string_view input) {
  std::vector<std::string> frames;
  if (input.empty()) return frames;
  const uint8_t flags = static_cast<uint8_t>(input[0]);
  input.remove_prefix(1);
  while (!input.empty() && frames.size() < 12) {
    const size_t n =
        std::min<size_t>(static_cast<uint8_t>(input[0]), input.size() - 1);
    frames.emplace_back(input.substr(1, n));
    input.remove_prefix(1 + n);
  }
  const std::pair<size_t, std::string> fixed[] = {
      {0, "1.0"}, {2, "fabric"}, {5, "CURVE"}, {6, RosterKey()}};
  for (size_t bit = 0; bit < 4; ++bit) {
    if ((flags & (1u << bit)) != 0 && fixed[bit].first < frames.size()) {
      frames[fixed[bit].first] = fixed[bit].second;
    }
  }
  return frames;
}

// Parses the frames as the ZAP handler does and decides them against a
// one-key roster: a parse must keep every frame as it came and refuse what
// RFC 27 and fabric's CURVE rules refuse; only the roster's key over CURVE
// in fabric's domain is ever allowed.
void FuzzZapRequest(absl::string_view input) {
  namespace security = ::fabric::security;
  const std::vector<std::string> frames = ZapFrames(input);
  absl::StatusOr<security::ZapRequest> request =
      security::ParseZapRequest(frames);
  if (!request.ok()) {
    FABRIC_FUZZ_REQUIRE(request.status().code() ==
                        absl::StatusCode::kInvalidArgument);
    return;
  }
  FABRIC_FUZZ_REQUIRE(frames.size() >= 6 && request->version == "1.0");
  FABRIC_FUZZ_REQUIRE(
      request->request_id == frames[1] && request->domain == frames[2] &&
      request->address == frames[3] && request->identity == frames[4] &&
      request->mechanism == frames[5]);
  if (request->mechanism == "CURVE") {
    FABRIC_FUZZ_REQUIRE(frames.size() == 7 &&
                        request->client_key == frames[6] &&
                        request->client_key.size() == security::kCurveKeyBytes);
  } else {
    FABRIC_FUZZ_REQUIRE(request->mechanism == "NULL" ||
                        request->mechanism == "PLAIN" ||
                        request->mechanism == "GSSAPI");
    FABRIC_FUZZ_REQUIRE(request->mechanism != "NULL" || frames.size() == 6);
    FABRIC_FUZZ_REQUIRE(request->client_key.empty());
  }
  const security::ZapVerdict verdict = security::Decide(*request, FuzzRoster());
  const bool should_allow = request->domain == security::kZapDomain &&
                            request->mechanism == "CURVE" &&
                            request->client_key == RosterKey();
  FABRIC_FUZZ_REQUIRE((verdict == security::ZapVerdict::kAllowed) ==
                      should_allow);
  if (request->domain != security::kZapDomain) {
    FABRIC_FUZZ_REQUIRE(verdict == security::ZapVerdict::kWrongDomain);
  }
  // Against an empty roster nothing is ever allowed.
  FABRIC_FUZZ_REQUIRE(security::Decide(*request, security::Roster()) !=
                      security::ZapVerdict::kAllowed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzZapRequest(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
