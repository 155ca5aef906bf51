// SPDX-License-Identifier: Apache-2.0
// `fabric pub TOPIC [MSG...]` and `fabric sub PREFIX...`: a publisher and a
// subscriber on the command line. Both print "READY <endpoint> <id> <name>"
// once their node is up; sub then prints one line per message (and per gap).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "fabric/base/status_macros.h"
#include "patterns/pubsub/publisher.h"
#include "patterns/pubsub/subscriber.h"
#include "tools/cli/body_dir.h"
#include "tools/cli/commands.h"
#include "tools/cli/input.h"
#include "tools/cli/output.h"

namespace fabric::cli {
namespace {

constexpr char kDefaultTopicSpool[] = "fabric-topics";
constexpr char kDefaultStateDir[] = "fabric-subs";

struct PubPlan {
  PublisherOptions options;
  Headers headers;
  InputFlags input;  // with --size parsed
  InputMode mode = InputMode::kNone;
  size_t max_body = 0;
  absl::Duration wait_timeout = absl::Seconds(30);
  absl::Time deadline = absl::InfiniteFuture();
  absl::Duration timeout = absl::InfiniteDuration();  // --timeout
};

absl::StatusOr<PubPlan> ParsePubFlags(const PubFlags& f,
                                      const NodeOptions& node) {
  PubPlan plan;
  if (f.topic.empty()) return absl::InvalidArgumentError("TOPIC is required");
  FABRIC_RETURN_IF_ERROR(ParseHeaders(f.headers, &plan.headers));
  if (!f.max_message_bytes.empty()) {
    FABRIC_ASSIGN_OR_RETURN(
        const int64_t max,
        ParseByteSize("--max-message-bytes", f.max_message_bytes));
    if (max <= 0) {
      return absl::InvalidArgumentError("--max-message-bytes must be positive");
    }
    plan.options.max_message_bytes = static_cast<size_t>(max);
  }
  // The body alone: topic and headers count against the same limit.
  plan.max_body =
      std::min(plan.options.max_message_bytes, node.max_message_bytes);
  FABRIC_ASSIGN_OR_RETURN(
      plan.mode, ResolveInput(f.input, f.size, plan.max_body,
                              "message (--max-message-bytes)", &plan.input));
  if (f.hwm < 0) return absl::InvalidArgumentError("--hwm must be positive");
  if (f.hwm > 0) plan.options.send_hwm = f.hwm;
  if (f.rate < 0)
    return absl::InvalidArgumentError("--rate must not be negative");
  if (f.wait_subscribers < 0) {
    return absl::InvalidArgumentError(
        "--wait-subscribers must not be negative");
  }
  if (!f.durable &&
      (!f.spool.empty() || !f.fsync.empty() || !f.retention_bytes.empty() ||
       !f.retention_age.empty() || f.allow_shared_files)) {
    return absl::InvalidArgumentError(
        "--spool, --fsync, --retention-* and --allow-shared-files need "
        "--durable");
  }
  if (plan.mode == InputMode::kNone && !f.stay) {
    return absl::InvalidArgumentError(
        "nothing to publish: give MSG..., --count N, --file PATH, "
        "--stdin-raw or lines on stdin (or --stay to serve a durable topic's "
        "replays)");
  }
  if (f.durable) {
    plan.options.durable_topics = {f.topic};
    plan.options.spool_dir = f.spool.empty() ? kDefaultTopicSpool : f.spool;
    plan.options.allow_shared_files = f.allow_shared_files;
    if (!f.fsync.empty()) {
      absl::StatusOr<FsyncPolicy> policy = ParseFsyncPolicy(f.fsync);
      if (!policy.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--fsync: unknown policy '", f.fsync,
                         "' (want always, batch, interval or none)"));
      }
      plan.options.fsync = *policy;
    }
    if (!f.retention_bytes.empty()) {
      FABRIC_ASSIGN_OR_RETURN(
          const int64_t bytes,
          ParseByteSize("--retention-bytes", f.retention_bytes));
      if (bytes <= 0) {
        return absl::InvalidArgumentError("--retention-bytes must be positive");
      }
      plan.options.retention_bytes = static_cast<uint64_t>(bytes);
    }
    if (!f.retention_age.empty()) {
      FABRIC_ASSIGN_OR_RETURN(
          plan.options.retention_age,
          ParseDurationFlag("--retention-age", f.retention_age));
      if (plan.options.retention_age <= absl::ZeroDuration()) {
        return absl::InvalidArgumentError("--retention-age must be positive");
      }
    }
  }
  if (!f.wait_timeout.empty()) {
    FABRIC_ASSIGN_OR_RETURN(
        plan.wait_timeout, ParseDurationFlag("--wait-timeout", f.wait_timeout));
  }
  if (!f.timeout.empty()) {
    FABRIC_ASSIGN_OR_RETURN(const absl::Duration timeout,
                            ParseDurationFlag("--timeout", f.timeout));
    if (timeout > absl::ZeroDuration()) {
      plan.timeout = timeout;
      plan.deadline = absl::Now() + timeout;
    }
  }
  return plan;
}

void PrintReady(const Node& node, bool json) {
  const std::string line =
      FormatReadyLine(node.mailbox_endpoint(), node.id().ToHex(), node.name(),
                      json) +
      "\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

// Publishes what the flags name; stops early on SIGINT/SIGTERM.
absl::Status PublishAll(Publisher& pub, const PubFlags& f, const PubPlan& plan,
                        std::atomic<bool>& stop, int64_t* published) {
  const absl::Duration gap =
      f.rate > 0 ? absl::Seconds(1) / f.rate : absl::ZeroDuration();
  absl::Time next = absl::Now();
  auto one = [&](absl::string_view body) -> absl::Status {
    if (gap > absl::ZeroDuration()) {
      const absl::Time now = absl::Now();
      if (next > now) absl::SleepFor(std::min(next, plan.deadline) - now);
      next = std::max(next, now) + gap;
    }
    if (absl::Now() > plan.deadline) {
      return absl::DeadlineExceededError("--timeout passed while publishing");
    }
    absl::Status published_one =
        pub.Publish(f.topic, body, plan.headers).status();
    if (absl::IsInvalidArgument(published_one)) {
      // The command line was fine; this message is too big to send.
      return absl::FailedPreconditionError(absl::StrCat(
          "message ", *published + 1, ": ", published_one.message()));
    }
    FABRIC_RETURN_IF_ERROR(published_one);
    ++*published;
    return absl::OkStatus();
  };
  auto interrupted = [&] {
    if (!stop.load() && WaitForSignal(absl::ZeroDuration())) stop = true;
    return stop.load();
  };
  // Reading stdin checks for SIGINT/SIGTERM too (they are blocked, so
  // nothing else would notice them while it waits).
  BodySource source(plan.input, plan.mode, interrupted, plan.deadline,
                    plan.max_body);
  std::string body;
  while (!interrupted() && source.Next(&body)) {
    FABRIC_RETURN_IF_ERROR(one(body));
  }
  return source.status();
}

absl::Status PubOnNode(Node& node, const PubFlags& f, PubPlan plan) {
  FABRIC_ASSIGN_OR_RETURN(std::unique_ptr<Publisher> pub,
                          Publisher::Create(node, plan.options));
  PrintReady(node, /*json=*/false);
  std::atomic<bool> stop{false};
  if (f.wait_subscribers > 0) {
    const absl::Time deadline =
        std::min(absl::Now() + plan.wait_timeout, plan.deadline);
    absl::Status waited;
    do {
      waited = pub->WaitForSubscribers(
          static_cast<size_t>(f.wait_subscribers),
          std::min(absl::Milliseconds(100), deadline - absl::Now()));
      if (WaitForSignal(absl::ZeroDuration())) return absl::OkStatus();
    } while (absl::IsDeadlineExceeded(waited) && absl::Now() < deadline);
    if (absl::IsDeadlineExceeded(waited)) {
      // The whole wait, not the last slice of it.
      const bool by_timeout = deadline == plan.deadline;
      return absl::DeadlineExceededError(absl::StrCat(
          "fewer than ", f.wait_subscribers, " subscribers connected within ",
          absl::FormatDuration(by_timeout ? plan.timeout : plan.wait_timeout),
          by_timeout ? " (--timeout)" : " (--wait-timeout)"));
    }
    FABRIC_RETURN_IF_ERROR(waited);
  }
  int64_t published = 0;
  absl::Status status = PublishAll(*pub, f, plan, stop, &published);
  if (status.ok()) {
    status = pub->Flush(
        std::min(absl::Seconds(30),
                 std::max(absl::Milliseconds(1), plan.deadline - absl::Now())));
  }
  const PublisherStats stats = pub->Stats();
  std::fprintf(stderr,
               "pub: %lld published on %s (%llu subscribers, %llu rejected)\n",
               static_cast<long long>(published), f.topic.c_str(),
               static_cast<unsigned long long>(stats.subscribers),
               static_cast<unsigned long long>(stats.rejected));
  if (status.ok() && f.stay && !stop.load()) {
    while (!WaitForSignal(absl::Milliseconds(200))) {
    }
  }
  pub->Close();
  return status;
}

absl::StatusOr<SubscriberOptions> ParseSubFlags(const SubFlags& f) {
  SubscriberOptions o;
  if (f.prefixes.empty()) {
    return absl::InvalidArgumentError("PREFIX is required ('' for all)");
  }
  if (f.count < 0) {
    return absl::InvalidArgumentError("--count must not be negative");
  }
  o.prefixes = f.prefixes;
  if (f.hwm < 0) return absl::InvalidArgumentError("--hwm must be positive");
  if (f.hwm > 0) o.receive_hwm = f.hwm;
  if (!f.from.empty()) {
    FABRIC_ASSIGN_OR_RETURN(o.start, StartPosition::Parse(f.from));
  }
  if (!f.durable.empty()) {
    o.durable_name = f.durable;
    o.state_dir = f.state_dir.empty() ? kDefaultStateDir : f.state_dir;
    o.allow_shared_files = f.allow_shared_files;
    // Positions say what a subscriber read: owner-only, as the file layer
    // makes them (docs/spool.md, "Files and modes").
    if (mkdir(o.state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot create --state-dir ", o.state_dir, ": ", strerror(errno)));
    }
  } else if (!f.state_dir.empty()) {
    return absl::InvalidArgumentError("--state-dir needs --durable NAME");
  } else if (f.allow_shared_files) {
    return absl::InvalidArgumentError(
        "--allow-shared-files needs --durable NAME");
  }
  return o;
}

absl::Status SubOnNode(Node& node, const SubFlags& f, SubscriberOptions o) {
  std::atomic<int64_t> delivered{0};
  const bool json = f.json;
  std::optional<BodyDir> out_dir;
  if (!f.out_dir.empty()) {
    FABRIC_ASSIGN_OR_RETURN(out_dir, BodyDir::Open(f.out_dir));
  }
  // Lines are written whole and flushed, so a killed subscriber leaves no
  // half line; the position is committed after each line.
  // The first body that cannot be written ends the run with exit 1.
  absl::Mutex write_mu;
  absl::Status write_error;
  o.handler = [&delivered, &out_dir, &write_mu, &write_error,
               json](const Message& m) {
    if (out_dir.has_value()) {
      absl::StatusOr<std::string> path =
          out_dir->Write(absl::StrFormat("%016x-%d", m.stream, m.seq), m.body);
      if (!path.ok()) {
        absl::MutexLock lock(&write_mu);
        if (write_error.ok()) write_error = path.status();
      }
    }
    const std::string line = FormatMessageLine(m, json) + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
    delivered.fetch_add(1);
  };
  o.on_gap = [json](const GapEvent& e) {
    const std::string line = FormatGapLine(e, json) + "\n";
    FILE* out = json ? stdout : stderr;
    std::fwrite(line.data(), 1, line.size(), out);
    std::fflush(out);
  };
  FABRIC_ASSIGN_OR_RETURN(std::unique_ptr<Subscriber> sub,
                          Subscriber::Create(node, std::move(o)));
  PrintReady(node, json);
  for (;;) {
    if (WaitForSignal(absl::Milliseconds(50))) break;
    if (f.count > 0 && delivered.load() >= f.count) break;
    absl::MutexLock lock(&write_mu);
    if (!write_error.ok()) break;
  }
  sub->Close();
  const SubscriberStats s = sub->Stats();
  std::fprintf(stderr,
               "sub: %llu delivered (%llu replayed), %llu gaps, %llu lost, "
               "%llu duplicates dropped, %llu malformed\n",
               static_cast<unsigned long long>(s.delivered),
               static_cast<unsigned long long>(s.replayed),
               static_cast<unsigned long long>(s.gaps),
               static_cast<unsigned long long>(s.lost),
               static_cast<unsigned long long>(s.duplicates),
               static_cast<unsigned long long>(s.malformed));
  absl::MutexLock lock(&write_mu);
  return write_error;
}

// Starts a quiet node with `role`, runs `body` on it, then leaves.
absl::Status WithNode(const CommonFlags& common, absl::string_view role,
                      const std::function<absl::Status(Node&)>& body) {
  FABRIC_ASSIGN_OR_RETURN(NodeOptions options, BuildNodeOptions(common));
  options.headers.emplace("fabric.role", std::string(role));
  BlockTerminationSignals();
  FABRIC_ASSIGN_OR_RETURN(PrintingNode pn,
                          StartPrintingNode(std::move(options), /*json=*/false,
                                            /*print=*/false));
  absl::Status status = ApplyOffers(*pn.node, common.offers);
  if (status.ok()) status = body(*pn.node);
  pn.node->Close();
  pn.node->Join();
  return status;
}

}  // namespace

absl::Status RunPub(const CommonFlags& common, const PubFlags& flags) {
  FABRIC_ASSIGN_OR_RETURN(const NodeOptions options, BuildNodeOptions(common));
  FABRIC_ASSIGN_OR_RETURN(PubPlan plan, ParsePubFlags(flags, options));
  FABRIC_RETURN_IF_ERROR(CheckFiles(plan.input.files, plan.max_body));
  return WithNode(common, "publisher", [&](Node& node) {
    return PubOnNode(node, flags, std::move(plan));
  });
}

absl::Status RunSub(const CommonFlags& common, const SubFlags& flags) {
  FABRIC_ASSIGN_OR_RETURN(SubscriberOptions options, ParseSubFlags(flags));
  return WithNode(common, "subscriber", [&](Node& node) {
    return SubOnNode(node, flags, std::move(options));
  });
}

}  // namespace fabric::cli
