// SPDX-License-Identifier: Apache-2.0
// Log fan-out with publish/subscribe: two services ("web" and "db") publish
// their log lines on durable topics (kept in a topic log on disk), and three
// subscribers take what they need: `web-tail` follows everything of the web
// service, `alerts` only the error topics of both, and `archive`, a named
// durable subscriber, takes everything. The driver SIGKILLs the archive
// mid-stream while the services keep logging, restarts it, and it catches
// up by replay from its saved position. Every subscriber must end with
// every message of its prefixes, in order per stream, with no gap and no
// duplicate.
//
//   build/examples/log_fanout [--verbose]
//
// Roles, each this binary run again by the driver (examples/demo_util.h):
//   log_fanout publisher name=web spool=DIR topics=web.access,web.error
//   log_fanout subscriber name=N prefixes=P1,P2 [state=DIR]

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/demo_util.h"
#include "fabric/base/status_macros.h"
#include "fabric/node.h"
#include "fabric/pubsub/publisher.h"
#include "fabric/pubsub/subscriber.h"

namespace {

using ::fabric::examples::Emit;
using ::fabric::examples::Fail;
using ::fabric::examples::Fields;
using ::fabric::examples::Processes;
using ::fabric::examples::RoleNodeOptions;
using ::fabric::examples::Say;
using ::fabric::examples::StopRequested;
using ::fabric::examples::TempDir;
using ::fabric::examples::WaitForStop;

constexpr int kMessagesPerService = 400;
constexpr int kIntervalMs = 10;  // each service logs 100 lines a second

struct Service {
  const char* name;
  std::vector<std::string> topics;  // info topic, error topic
};
const Service kServices[] = {{"web", {"web.access", "web.error"}},
                             {"db", {"db.query", "db.error"}}};

struct SubscriberSpec {
  const char* name;
  const char* prefixes;  // comma-separated; "" is everything
  bool durable;
};
const SubscriberSpec kSubscribers[] = {{"web-tail", "web.", false},
                                       {"alerts", "web.error,db.error", false},
                                       {"archive", "", true}};

// Line `k` of a topic: "web.access #12 GET /img/12.jpg 200". The driver
// checks that the number matches the message's seq.
std::string LogText(const std::string& topic, int k) {
  if (absl::EndsWith(topic, ".error")) {
    return absl::StrFormat("%s #%d timeout after %d ms", topic, k, 100 + k);
  }
  if (absl::StartsWith(topic, "db.")) {
    return absl::StrFormat("%s #%d SELECT * FROM photos WHERE id=%d", topic, k,
                           k);
  }
  return absl::StrFormat("%s #%d GET /img/%d.jpg 200", topic, k, k);
}

// --------------------------------------------------------- role: publisher

int RunPublisher(const Fields& args) {
  const std::string name = args.Get("name");
  const std::vector<std::string> topics =
      absl::StrSplit(args.Get("topics"), ',');
  absl::StatusOr<std::unique_ptr<fabric::Node>> node =
      fabric::Node::Start(RoleNodeOptions(args, name));
  if (!node.ok()) return Fail(name, node.status());

  fabric::PublisherOptions options;
  // Both topics are durable: kept in a log under spool_dir, so subscribers
  // that miss messages (a restart, a late start) get them replayed.
  options.durable_topics = topics;
  options.spool_dir = args.Get("spool");
  absl::StatusOr<std::unique_ptr<fabric::Publisher>> pub =
      fabric::Publisher::Create(**node, options);
  if (!pub.ok()) return Fail(name, pub.status());
  Emit("ready");

  // Messages published before a subscriber connects are not sent to it
  // live; waiting (bounded) for the three makes the live path the norm.
  absl::Status subscribed = (*pub)->WaitForSubscribers(
      static_cast<size_t>(args.GetInt("subscribers", 0)), absl::Seconds(20));
  if (!subscribed.ok()) return Fail(name, subscribed);

  std::map<std::string, int> counts;
  for (int i = 1; i <= kMessagesPerService; ++i) {
    // One error line for every four info lines.
    const std::string& topic = i % 5 == 0 ? topics[1] : topics[0];
    absl::StatusOr<uint64_t> seq =
        (*pub)->Publish(topic, LogText(topic, ++counts[topic]));
    if (!seq.ok()) return Fail(name, seq.status());
    Emit("published %s seq=%llu", topic.c_str(),
         static_cast<unsigned long long>(*seq));
    if (StopRequested(absl::Milliseconds(kIntervalMs))) break;
  }
  // Durable messages go out once they are on disk: wait for the last ones.
  absl::Status flushed = (*pub)->Flush(absl::Seconds(20));
  if (!flushed.ok()) return Fail(name, flushed);
  Emit("done");

  // Stay up to serve replays until the driver stops us.
  WaitForStop();
  (*pub)->Close();
  (*node)->Close();
  return 0;
}

// -------------------------------------------------------- role: subscriber

int RunSubscriber(const Fields& args) {
  const std::string name = args.Get("name");
  absl::StatusOr<std::unique_ptr<fabric::Node>> node =
      fabric::Node::Start(RoleNodeOptions(args, name));
  if (!node.ok()) return Fail(name, node.status());

  fabric::SubscriberOptions options;
  options.prefixes = absl::StrSplit(args.Get("prefixes"), ',');
  if (args.Has("state")) {
    // Named and durable: its position in every durable stream is kept in
    // state/<name>.pos, and a restart resumes right after it.
    options.durable_name = name;
    options.state_dir = args.Get("state");  // created if missing
  }
  // A durable stream this subscriber has no position in starts at its
  // first message.
  options.start.kind = fabric::StartPosition::Kind::kEarliest;
  // Both callbacks run on the subscriber's own thread, in order per stream.
  options.handler = [](const fabric::Message& m) {
    Emit("msg %s %s stream=%016llx seq=%llu text=%s", m.topic.c_str(),
         m.replayed ? "replay" : "live",
         static_cast<unsigned long long>(m.stream),
         static_cast<unsigned long long>(m.seq), m.body.c_str());
  };
  options.on_gap = [](const fabric::GapEvent& g) {
    Emit("gap %s stream=%016llx first=%llu last=%llu reason=%s",
         g.topic.c_str(), static_cast<unsigned long long>(g.stream),
         static_cast<unsigned long long>(g.first),
         static_cast<unsigned long long>(g.last), g.reason.c_str());
  };
  absl::StatusOr<std::unique_ptr<fabric::Subscriber>> sub =
      fabric::Subscriber::Create(**node, std::move(options));
  if (!sub.ok()) return Fail(name, sub.status());
  Emit("ready");

  WaitForStop();
  (*sub)->Close();  // saves the positions of a durable subscriber
  const fabric::SubscriberStats s = (*sub)->Stats();
  Emit("stopped delivered=%llu replayed=%llu duplicates=%llu gaps=%llu",
       static_cast<unsigned long long>(s.delivered),
       static_cast<unsigned long long>(s.replayed),
       static_cast<unsigned long long>(s.duplicates),
       static_cast<unsigned long long>(s.gaps));
  (*node)->Close();
  return 0;
}

// ------------------------------------------------------------------ driver

struct Received {
  std::string topic;
  std::string stream;
  uint64_t seq = 0;
  bool replayed = false;
  std::string text;
  int run = 1;  // which run of the subscriber process delivered it
};

// What one subscriber delivered, and its checks.
struct SubscriberLog {
  std::vector<std::string> prefixes;
  std::vector<Received> got;
  std::vector<std::string> gaps;
  int runs = 0;  // "ready" lines

  bool Wants(const std::string& topic) const {
    for (const std::string& p : prefixes) {
      if (absl::StartsWith(topic, p)) return true;
    }
    return false;
  }
  int Count(int run, bool replayed) const {
    int n = 0;
    for (const Received& r : got) n += r.run == run && r.replayed == replayed;
    return n;
  }
};

struct Fanout {
  std::set<std::string> ready, done;
  std::map<std::string, uint64_t> published;  // topic -> last seq
  int published_total = 0;
  std::map<std::string, SubscriberLog> subs;

  void OnLine(const std::string& name, const std::string& line) {
    const Fields f(line);
    const std::string verb = f.Word(0);
    if (verb == "ready") {
      ready.insert(name);
      if (subs.count(name)) ++subs[name].runs;
    } else if (verb == "published") {
      published[f.Word(1)] = static_cast<uint64_t>(f.GetInt("seq"));
      ++published_total;
    } else if (verb == "done") {
      done.insert(name);
    } else if (verb == "msg") {
      SubscriberLog& s = subs[name];
      s.got.push_back(Received{f.Word(1), f.Get("stream"),
                               static_cast<uint64_t>(f.GetInt("seq")),
                               f.Word(2) == "replay", f.Get("text"), s.runs});
    } else if (verb == "gap") {
      subs[name].gaps.push_back(line);
    }
  }

  // True when `name` delivered the last published message of every topic
  // it wants.
  bool CaughtUp(const std::string& name) {
    const SubscriberLog& s = subs[name];
    for (const auto& [topic, last] : published) {
      if (!s.Wants(topic)) continue;
      bool seen = false;
      for (const Received& r : s.got) seen |= r.topic == topic && r.seq == last;
      if (!seen) return false;
    }
    return true;
  }
};

// Checks one subscriber: for every topic it wants, seqs 1..last in order,
// each once, with matching text and one stream id; nothing else. The one
// allowed repeat is after a SIGKILL of a durable subscriber: the message
// its handler had finished, but whose position was not yet saved, comes
// again after the restart (docs/pubsub.md section 5). `repeatable` maps a
// run that followed a SIGKILL to that message.
std::vector<std::string> Check(const std::string& name, const SubscriberLog& s,
                               const std::map<std::string, uint64_t>& published,
                               const std::map<int, Received>& repeatable,
                               int* repeats) {
  std::vector<std::string> problems;
  if (!s.gaps.empty()) {
    problems.push_back(absl::StrCat(name, " reported ", s.gaps.size(),
                                    " gap(s): ", s.gaps.front()));
  }
  for (const auto& [topic, last] : published) {
    if (!s.Wants(topic)) continue;
    uint64_t next = 1;
    std::string stream;
    std::set<int> runs_seen;  // runs that delivered this topic so far
    for (const Received& r : s.got) {
      if (r.topic != topic) continue;
      if (stream.empty()) stream = r.stream;
      if (r.stream != stream) {
        problems.push_back(absl::StrCat(name, ": ", topic, " changed stream"));
      }
      if (!absl::StartsWith(r.text, absl::StrCat(topic, " #", r.seq, " "))) {
        problems.push_back(absl::StrCat(name, ": ", topic, " seq ", r.seq,
                                        " carries \"", r.text, "\""));
      }
      auto allowed = repeatable.find(r.run);
      const bool may_repeat =
          runs_seen.insert(r.run).second && allowed != repeatable.end() &&
          allowed->second.topic == topic && allowed->second.seq == r.seq;
      if (r.seq == next) {
        ++next;
      } else if (r.seq < next && may_repeat) {
        ++*repeats;
      } else if (r.seq < next) {
        problems.push_back(absl::StrCat(name, ": ", topic, " seq ", r.seq,
                                        " delivered twice"));
      } else {
        problems.push_back(absl::StrCat(name, ": ", topic, " gap: seqs ", next,
                                        "..", r.seq - 1, " never delivered"));
        next = r.seq + 1;
      }
    }
    if (next <= last) {
      problems.push_back(absl::StrCat(name, ": ", topic, " seqs ", next, "..",
                                      last, " never delivered"));
    }
  }
  for (const Received& r : s.got) {
    if (!s.Wants(r.topic)) {
      problems.push_back(absl::StrCat(name, " got ", r.topic,
                                      ", which none of its prefixes match"));
      break;
    }
  }
  return problems;
}

std::string PerTopic(const SubscriberLog& s) {
  std::map<std::string, int> n;
  for (const Received& r : s.got) ++n[r.topic];
  std::vector<std::string> out;
  for (const auto& [topic, count] : n) {
    out.push_back(absl::StrCat(topic, " ", count));
  }
  return absl::StrJoin(out, ", ");
}

// The demo's script. Each step waits for what it narrates, with a bound.
class Demo {
 public:
  explicit Demo(bool verbose)
      : dir_("log-fanout"),
        procs_([this](const std::string& name,
                      const std::string& line) { f_.OnLine(name, line); },
               absl::Seconds(120)),
        archive_(f_.subs["archive"]) {
    procs_.set_echo(verbose);
    for (const SubscriberSpec& spec : kSubscribers) {
      f_.subs[spec.name].prefixes = absl::StrSplit(spec.prefixes, ',');
    }
  }

  absl::Status Run() {
    if (!dir_.ok()) return absl::InternalError("cannot create a temp dir");
    Say("Log fan-out demo: cluster %s, loopback only, files in %s",
        procs_.cluster().c_str(), dir_.path().c_str());
    FABRIC_RETURN_IF_ERROR(StartAll());
    // Outage 1: a clean stop. Close() saves the archive's positions.
    FABRIC_RETURN_IF_ERROR(Outage(kStopArchiveAfter, /*kill=*/false));
    // Outage 2: a crash. Positions survive a SIGKILL too (they are in a
    // memory-mapped file the kernel keeps).
    FABRIC_RETURN_IF_ERROR(Outage(kKillArchiveAfter, /*kill=*/true));
    FABRIC_RETURN_IF_ERROR(procs_.WaitUntil([&] { return f_.done.size() == 2; },
                                            kStep,
                                            "for the services to finish"));
    Say("Both services are done: %d messages. Waiting until every "
        "subscriber has all of its share.",
        f_.published_total);
    FABRIC_RETURN_IF_ERROR(procs_.WaitUntil(
        [&] {
          return f_.CaughtUp("web-tail") && f_.CaughtUp("alerts") &&
                 f_.CaughtUp("archive");
        },
        kStep, "for the subscribers to catch up"));
    Say("Stopping everyone (SIGTERM).");
    for (const char* name : {"web-tail", "alerts", "archive", "web", "db"}) {
      FABRIC_RETURN_IF_ERROR(procs_.StopCleanly(name));
    }
    return Verify();
  }

 private:
  static constexpr int kStopArchiveAfter = 150;  // messages it has stored
  static constexpr int kKillArchiveAfter = 450;
  static constexpr int kDownFor = 100;  // messages published while it is down
  static constexpr absl::Duration kStep = absl::Seconds(30);  // never hit

  absl::Status StartArchive() {
    return procs_.Start(
        "archive", "subscriber",
        {"name=archive", "prefixes=", "state=" + dir_.path() + "/subscribers"});
  }

  absl::Status StartAll() {
    Say("Starting 3 subscribers: web-tail (prefix \"web.\"), alerts "
        "(\"web.error\" and \"db.error\") and archive (everything; named "
        "and durable).");
    for (const SubscriberSpec& spec : kSubscribers) {
      if (spec.durable) {
        FABRIC_RETURN_IF_ERROR(StartArchive());
        continue;
      }
      FABRIC_RETURN_IF_ERROR(
          procs_.Start(spec.name, "subscriber",
                       {absl::StrCat("name=", spec.name),
                        absl::StrCat("prefixes=", spec.prefixes)}));
    }
    FABRIC_RETURN_IF_ERROR(procs_.WaitUntil(
        [&] { return f_.ready.size() == 3; }, kStep, "for the subscribers"));
    Say("Starting 2 services logging %d lines each, 100 a second: web "
        "(web.access, web.error) and db (db.query, db.error), every topic "
        "durable in the service's own topic log.",
        kMessagesPerService);
    for (const Service& s : kServices) {
      FABRIC_RETURN_IF_ERROR(
          procs_.Start(s.name, "publisher",
                       {absl::StrCat("name=", s.name),
                        absl::StrCat("spool=", dir_.path(), "/", s.name),
                        absl::StrCat("topics=", absl::StrJoin(s.topics, ",")),
                        "subscribers=3"}));
    }
    return absl::OkStatus();
  }

  // Stops the archive once it stored `after` messages (SIGTERM, or SIGKILL
  // when `kill`), lets the services log `kDownFor` more, restarts it and
  // waits until it replayed what it missed and is live again.
  absl::Status Outage(int after, bool kill) {
    FABRIC_RETURN_IF_ERROR(procs_.WaitUntil(
        [&] { return archive_.got.size() >= static_cast<size_t>(after); },
        kStep, "for the archive to receive messages"));
    if (kill) {
      FABRIC_RETURN_IF_ERROR(procs_.Kill("archive"));
      // This message may come again after the restart (see Check).
      repeatable_[archive_.runs + 1] = archive_.got.back();
    } else {
      FABRIC_RETURN_IF_ERROR(procs_.StopCleanly("archive"));
    }
    const int published_at_stop = f_.published_total;
    const Received& last = archive_.got.back();
    Say("%s the archive after it stored %zu messages (the last: %s seq %llu). "
        "The services keep logging.",
        kill ? "Killed (SIGKILL)" : "Stopped (SIGTERM)", archive_.got.size(),
        last.topic.c_str(), static_cast<unsigned long long>(last.seq));
    FABRIC_RETURN_IF_ERROR(procs_.WaitUntil(
        [&] {
          return f_.published_total >= std::min(published_at_stop + kDownFor,
                                                2 * kMessagesPerService);
        },
        kStep, "for messages published while the archive is down"));
    Say("%d messages were published while it was down. Restarting it with "
        "the same name and state directory.",
        f_.published_total - published_at_stop);
    const int run = archive_.runs + 1;
    FABRIC_RETURN_IF_ERROR(StartArchive());
    // Caught up: every stream is live again (or, once the services are
    // done, everything was delivered).
    auto live_again = [&] {
      for (const auto& [topic, last] : f_.published) {
        bool live = false;
        for (const Received& r : archive_.got) {
          live |= r.run == run && r.topic == topic && !r.replayed;
        }
        if (!live) return f_.done.size() == 2 && f_.CaughtUp("archive");
      }
      return true;
    };
    FABRIC_RETURN_IF_ERROR(
        procs_.WaitUntil(live_again, kStep, "for the archive to catch up"));
    Say("The archive resumed after its saved positions: it replayed the %d "
        "messages it missed from the services' topic logs, then went on "
        "live.",
        archive_.Count(run, true));
    return absl::OkStatus();
  }

  absl::Status Verify() {
    std::vector<std::string> problems;
    int repeats = 0;
    for (const SubscriberSpec& spec : kSubscribers) {
      const SubscriberLog& s = f_.subs[spec.name];
      std::vector<std::string> p = Check(
          spec.name, s, f_.published,
          spec.durable ? repeatable_ : std::map<int, Received>{}, &repeats);
      problems.insert(problems.end(), p.begin(), p.end());
      Say("  %-8s %4zu messages (%s)%s", spec.name, s.got.size(),
          PerTopic(s).c_str(), p.empty() ? ": all, in order" : ": PROBLEMS");
    }
    for (int run = 1; run <= archive_.runs; ++run) {
      Say("  archive run %d: %d replayed, %d live", run,
          archive_.Count(run, true), archive_.Count(run, false));
    }
    for (const auto& [run, r] : repeatable_) {
      if (repeats == 0) break;
      Say("  After the SIGKILL the archive got %s seq %llu again: its "
          "handler had finished it, but the kill came before its position "
          "was saved (the one repeat docs/pubsub.md allows).",
          r.topic.c_str(), static_cast<unsigned long long>(r.seq));
    }
    if (!problems.empty()) {
      for (const std::string& p : problems) Say("  problem: %s", p.c_str());
      return absl::DataLossError(
          absl::StrCat(problems.size(), " delivery problem(s)"));
    }
    Say("OK: every subscriber has every message of its prefixes, in order per "
        "stream, with no gap and no duplicate%s.",
        repeats > 0 ? " (but the one allowed after the SIGKILL)" : "");
    return absl::OkStatus();
  }

  TempDir dir_;  // removed last, after every process is stopped
  Fanout f_;
  Processes procs_;
  SubscriberLog& archive_;
  std::map<int, Received> repeatable_;  // run -> message it may repeat
};

}  // namespace

int main(int argc, char** argv) {
  return fabric::examples::DemoMain(
      argc, argv, {{"publisher", RunPublisher}, {"subscriber", RunSubscriber}},
      [](bool verbose) { return Demo(verbose).Run(); });
}
