// SPDX-License-Identifier: Apache-2.0
// `fabric req SERVICE [MSG]`: one call on the command line. The body is MSG
// or, without it, all of stdin; the reply body goes to stdout unchanged
// (exit 0), a failed call's status to stderr (exit 1).
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fabric/base/status_macros.h"
#include "patterns/reqrep/client.h"
#include "tools/cli/commands.h"
#include "tools/cli/input.h"
#include "tools/cli/json.h"
#include "tools/cli/output.h"
#include "tools/relay/relay.h"

namespace fabric::cli {
namespace {

constexpr absl::Duration kDefaultTimeout = absl::Seconds(5);
// How long a fresh process listens for servers before it concludes there
// are none: one beacon interval plus handshakes (as `fabric peers`). Peers
// answer our first beacon at once, so known servers show up much sooner.
constexpr absl::Duration kDefaultWait = absl::Milliseconds(1500);

// A duration flag where a plain number means milliseconds (as the issue's
// `--timeout MS`); "2s" or "250ms" work too.
absl::StatusOr<absl::Duration> ParseMillis(absl::string_view flag,
                                           const std::string& text) {
  int64_t ms = 0;
  if (absl::SimpleAtoi(text, &ms)) {
    if (ms <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, " must be positive"));
    }
    return absl::Milliseconds(ms);
  }
  FABRIC_ASSIGN_OR_RETURN(absl::Duration d, ParseDurationFlag(flag, text));
  if (d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " must be positive"));
  }
  return d;
}

struct ReqPlan {
  std::string body;
  bool body_from_stdin = false;  // read once the deadline is known
  CallOptions call;
  absl::Duration wait;
};

absl::StatusOr<ReqPlan> ParseReqFlags(const ReqFlags& f) {
  if (f.service.empty()) {
    return absl::InvalidArgumentError("SERVICE is required");
  }
  ReqPlan plan;
  plan.call.timeout = kDefaultTimeout;
  if (!f.timeout.empty()) {
    FABRIC_ASSIGN_OR_RETURN(plan.call.timeout,
                            ParseMillis("--timeout", f.timeout));
  }
  if (!f.attempt_timeout.empty()) {
    FABRIC_ASSIGN_OR_RETURN(
        plan.call.attempt_timeout,
        ParseMillis("--attempt-timeout", f.attempt_timeout));
  }
  if (f.max_attempts < 0 || f.max_attempts > 100) {
    return absl::InvalidArgumentError("--max-attempts wants 1..100");
  }
  plan.call.max_attempts = f.max_attempts;
  plan.call.idempotency_key = f.key;
  for (const std::string& kv : f.headers) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--header wants KEY=VALUE, got '", kv, "'"));
    }
    plan.call.headers[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  plan.wait = std::min(kDefaultWait, plan.call.timeout);
  if (!f.wait.empty()) {
    FABRIC_ASSIGN_OR_RETURN(plan.wait, ParseMillis("--wait", f.wait));
  }
  if (f.has_message + !f.file.empty() + f.stdin_raw > 1) {
    return absl::InvalidArgumentError(
        "give one of MSG, --file and --stdin-raw");
  }
  if (f.has_message) {
    plan.body = f.message;
  } else if (!f.file.empty()) {
    // Read later, after the flags are all checked.
  } else if (StdinIsData() || f.stdin_raw) {
    plan.body_from_stdin = true;
  } else if (isatty(STDIN_FILENO)) {
    return absl::InvalidArgumentError(
        "no body: give MSG, --file PATH or pipe the body on stdin");
  }
  // Otherwise stdin is /dev/null or closed: an empty request.
  return plan;
}

void WriteAll(FILE* out, absl::string_view data) {
  std::fwrite(data.data(), 1, data.size(), out);
  std::fflush(out);
}

// The call's failure as the CLI reports it: exit 1 whatever the code (2 is
// for bad arguments), the code's name first.
absl::Status CallFailed(const absl::Status& s) {
  return absl::UnknownError(
      absl::StrCat(absl::StatusCodeToString(s.code()), ": ", s.message()));
}

}  // namespace

absl::Status RunReq(const CommonFlags& common, const ReqFlags& flags) {
  const absl::Time start = absl::Now();
  FABRIC_ASSIGN_OR_RETURN(ReqPlan plan, ParseReqFlags(flags));
  FABRIC_ASSIGN_OR_RETURN(NodeOptions options, BuildNodeOptions(common));
  if (options.security.enabled() && options.security.key_file.empty() &&
      !flags.key.empty()) {
    // After the verb, --key is req's idempotency key (as --header is a
    // message header): say so rather than "needs a key file".
    return absl::InvalidArgumentError(
        "after `req`, --key is the idempotency key; give the secure-mode key "
        "file before the verb (fabric --key FILE req ...) or in "
        "FABRIC_KEY_FILE");
  }
  options.headers.emplace("fabric.role", "cli");
  if (!flags.file.empty()) {
    FABRIC_ASSIGN_OR_RETURN(
        plan.body, ReadBodyFile(flags.file, ClientOptions().max_request_bytes));
  } else if (plan.body_from_stdin) {
    // The call's --timeout bounds the whole run, waiting for stdin included.
    // Not blocked here: SIGINT and SIGTERM end the process at once.
    StdinReader reader([] { return false; }, start + plan.call.timeout);
    if (!reader.ReadAll(ClientOptions().max_request_bytes, &plan.body)) {
      return reader.status();
    }
  }
  FABRIC_ASSIGN_OR_RETURN(std::unique_ptr<Node> node,
                          Node::Start(std::move(options)));
  const ReloadOnHangup hangup(node.get());  // secure mode: SIGHUP reloads
  absl::StatusOr<Reply> reply = absl::UnknownError("not called");
  {
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(*node);
    if (!client.ok()) return client.status();
    // A fresh node knows nobody yet: listen for a server first, within
    // the run's deadline (--timeout bounds the whole run).
    const absl::Duration wait =
        std::min(plan.wait, start + plan.call.timeout - absl::Now());
    absl::Status found = wait <= absl::ZeroDuration()
                             ? absl::DeadlineExceededError("--timeout passed")
                             : (*client)->WaitForServer(flags.service, wait);
    if (!found.ok() && absl::IsDeadlineExceeded(found)) {
      reply = absl::UnavailableError(absl::StrCat(
          "no server of service ", flags.service, " found within ",
          absl::FormatDuration(std::max(wait, absl::ZeroDuration()))));
    } else if (!found.ok()) {
      reply = found;
    } else {
      plan.call.timeout = std::max(absl::Milliseconds(1),
                                   plan.call.timeout - (absl::Now() - start));
      reply = (*client)->Call(flags.service, plan.body, plan.call);
    }
  }
  node->Close();
  node->Join();
  if (flags.json) {
    Json o = Json::object();
    o["ok"] = reply.ok();
    if (reply.ok()) {
      SetBytesField(o, "body", reply->body);
      o["server"] = reply->server.ToHex();
      o["attempts"] = reply->attempts;
    } else {
      o["code"] = absl::StatusCodeToString(reply.status().code());
      SetBytesField(o, "message", reply.status().message());
    }
    WriteAll(stdout, JsonLine(o));
  } else if (reply.ok()) {
    WriteAll(stdout, reply->body);
    // A shell prompt after the reply starts on its own line; --raw keeps
    // the bytes exactly.
    if (!flags.raw && !reply->body.empty() && reply->body.back() != '\n') {
      WriteAll(stdout, "\n");
    }
  }
  return reply.ok() ? absl::OkStatus() : CallFailed(reply.status());
}

absl::Status RunStats(const CommonFlags& common, const StatsFlags& flags) {
  if (flags.node.empty()) return absl::InvalidArgumentError("NODE is required");
  ReqFlags req;
  req.service = absl::StrCat(relay::kStatsServicePrefix, flags.node);
  req.has_message = true;  // an empty request
  req.timeout = flags.timeout;
  return RunReq(common, req);
}

}  // namespace fabric::cli
