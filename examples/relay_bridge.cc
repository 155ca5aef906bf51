// SPDX-License-Identifier: Apache-2.0
// A relay joining two segments: "plant" and "office" are two clusters on
// this host (two loopback discovery domains that cannot see each other).
// A relay process (fabric::relay::Relay, the library behind fabric-relay)
// joins them for the work queue "reports" and the topic prefix "alerts.".
//
// In the plant, a producer pushes 300 report tasks and exits as soon as the
// relay has confirmed them all: they are now in the relay's spool. A sensor
// publishes 60 alerts on a durable topic. In the office, two workers run
// the reports and a durable dashboard subscriber shows the alerts. The
// driver SIGKILLs the relay mid-way and starts it again on the same state
// directory: it recovers the unfinished reports from its spool, and its
// durable subscriber replays the alerts published while it was down.
//
//   build/examples/relay_bridge [--verbose]
//
// Exits 0 only if every report ran in the office (at least once) and the
// dashboard got every alert, with duplicates (possible after the kill)
// reported.
//
// Roles, each this binary run again by the driver (examples/demo_util.h):
//   relay_bridge relay dir=D          the relay between the two segments
//   relay_bridge producer spool=D     plant: pushes the reports
//   relay_bridge worker name=W        office: runs reports
//   relay_bridge sensor spool=D       plant: publishes alerts
//   relay_bridge dashboard state=D    office: shows alerts
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/demo_util.h"
#include "fabric/base/status_macros.h"
#include "fabric/node.h"
#include "fabric/pubsub/publisher.h"
#include "fabric/pubsub/subscriber.h"
#include "fabric/work_queue/producer.h"
#include "fabric/work_queue/worker.h"
#include "tools/relay/relay.h"

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

constexpr char kQueue[] = "reports";
constexpr char kTopic[] = "alerts.line1";
constexpr int kReports = 300;
constexpr int kAlerts = 60;
constexpr absl::Duration kReportWork = absl::Milliseconds(20);
constexpr absl::Duration kAlertEvery = absl::Milliseconds(50);

// A role's node in one of the two segments: the run's cluster name plus
// "-plant" or "-office".
fabric::NodeOptions SegmentNode(const Fields& args, const std::string& name,
                                const std::string& segment) {
  fabric::NodeOptions options = RoleNodeOptions(args, name);
  options.cluster = absl::StrCat(options.cluster, "-", segment);
  return options;
}

// ------------------------------------------------------------- role: relay

int RunRelay(const Fields& args) {
  fabric::relay::RelayOptions options;
  options.name = "relay";
  options.a = SegmentNode(args, "relay", "plant");
  options.b = SegmentNode(args, "relay", "office");
  options.queues = {kQueue};
  options.topics = {"alerts."};
  options.durable_topics = {kTopic};  // office subscribers can replay them
  options.state_dir = args.Get("dir");
  absl::StatusOr<std::unique_ptr<fabric::relay::Relay>> relay =
      fabric::relay::Relay::Start(std::move(options));
  if (!relay.ok()) return Fail("relay", relay.status());
  uint64_t recovered = 0;
  for (const auto& q : (*relay)->Stats().queues) recovered += q.recovered;
  Emit("ready recovered=%llu", static_cast<unsigned long long>(recovered));
  WaitForStop();
  (*relay)->Close();
  return 0;
}

// ---------------------------------------------------------- role: producer

int RunProducer(const Fields& args) {
  absl::StatusOr<std::unique_ptr<fabric::Node>> node =
      fabric::Node::Start(SegmentNode(args, "producer", "plant"));
  if (!node.ok()) return Fail("producer", node.status());
  fabric::ProducerOptions options;
  options.queue = kQueue;
  options.spool_dir = args.Get("spool");
  absl::StatusOr<std::unique_ptr<fabric::Producer>> producer =
      fabric::Producer::Create(**node, options);
  if (!producer.ok()) return Fail("producer", producer.status());
  for (int i = 1; i <= kReports; ++i) {
    // Returns once the task is in this producer's spool.
    absl::Status pushed =
        (*producer)->PushAsync(absl::StrCat("report-", i)).status();
    if (!pushed.ok()) return Fail("producer", pushed);
  }
  Emit("pushed %d", kReports);
  // The plant has no workers of its own: the relay is the only worker here,
  // and it acks a task once the task is durable in its own spool.
  absl::Status done = (*producer)->WaitCompleted(absl::Seconds(60));
  if (!done.ok()) return Fail("producer", done);
  Emit("confirmed acked=%llu",
       static_cast<unsigned long long>((*producer)->Stats().acked));
  (*producer)->Close();
  (*node)->Close();
  return 0;
}

// ------------------------------------------------------------ role: worker

int RunWorker(const Fields& args) {
  const std::string name = args.Get("name");
  absl::StatusOr<std::unique_ptr<fabric::Node>> node =
      fabric::Node::Start(SegmentNode(args, name, "office"));
  if (!node.ok()) return Fail(name, node.status());
  fabric::WorkerOptions options;
  options.queues = {kQueue};
  options.concurrency = 2;
  options.handler = [](const fabric::Task& task, fabric::TaskContext&) {
    absl::SleepFor(kReportWork);  // write the report
    // The relay names the task it forwarded: a handler that must not run
    // twice can key on it.
    auto origin = task.headers.find(fabric::relay::kOriginHeader);
    Emit("done %s origin=%s", task.body.c_str(),
         origin == task.headers.end() ? "-" : origin->second.c_str());
    return fabric::Outcome::Ack();
  };
  absl::StatusOr<std::unique_ptr<fabric::Worker>> worker =
      fabric::Worker::Create(**node, std::move(options));
  if (!worker.ok()) return Fail(name, worker.status());
  Emit("ready");
  WaitForStop();
  (*worker)->Close();
  (*node)->Close();
  return 0;
}

// ------------------------------------------------------------ role: sensor

int RunSensor(const Fields& args) {
  absl::StatusOr<std::unique_ptr<fabric::Node>> node =
      fabric::Node::Start(SegmentNode(args, "sensor", "plant"));
  if (!node.ok()) return Fail("sensor", node.status());
  fabric::PublisherOptions options;
  options.durable_topics = {kTopic};  // subscribers that missed some replay
  options.spool_dir = args.Get("spool");
  absl::StatusOr<std::unique_ptr<fabric::Publisher>> publisher =
      fabric::Publisher::Create(**node, options);
  if (!publisher.ok()) return Fail("sensor", publisher.status());
  // The relay's subscriber is the one we wait for.
  absl::Status found = (*publisher)->WaitForSubscribers(1, absl::Seconds(20));
  if (!found.ok()) return Fail("sensor", found);
  for (int i = 1; i <= kAlerts && !StopRequested(kAlertEvery); ++i) {
    absl::StatusOr<uint64_t> seq =
        (*publisher)->Publish(kTopic, absl::StrCat("alert-", i));
    if (!seq.ok()) return Fail("sensor", seq.status());
    Emit("published %d", i);
  }
  // Stay: the log serves replays to whoever missed alerts.
  WaitForStop();
  (*publisher)->Close();
  (*node)->Close();
  return 0;
}

// --------------------------------------------------------- role: dashboard

int RunDashboard(const Fields& args) {
  absl::StatusOr<std::unique_ptr<fabric::Node>> node =
      fabric::Node::Start(SegmentNode(args, "dashboard", "office"));
  if (!node.ok()) return Fail("dashboard", node.status());
  fabric::SubscriberOptions options;
  options.prefixes = {"alerts."};
  options.durable_name = "dashboard";
  options.state_dir = args.Get("state");
  options.start.kind = fabric::StartPosition::Kind::kEarliest;
  options.handler = [](const fabric::Message& m) {
    Emit("alert %s%s", m.body.c_str(), m.replayed ? " replayed" : "");
  };
  options.on_gap = [](const fabric::GapEvent& gap) {
    Emit("gap %llu", static_cast<unsigned long long>(gap.count()));
  };
  absl::StatusOr<std::unique_ptr<fabric::Subscriber>> sub =
      fabric::Subscriber::Create(**node, std::move(options));
  if (!sub.ok()) return Fail("dashboard", sub.status());
  Emit("ready");
  WaitForStop();
  (*sub)->Close();
  (*node)->Close();
  return 0;
}

// ------------------------------------------------------------------ driver

// What the driver learns from the role processes' lines.
struct Bridge {
  std::set<std::string> ready;
  int relay_runs = 0;
  uint64_t recovered = 0;  // reported by the latest relay run
  bool confirmed = false;
  int published = 0;
  std::map<std::string, int> reports;  // body -> runs
  std::map<std::string, int> alerts;   // body -> deliveries
  int replayed_alerts = 0;
  int gaps = 0;

  void OnLine(const std::string& name, const std::string& line) {
    const Fields f(line);
    const std::string what = f.Word(0);
    if (what == "ready") ready.insert(name);
    if (what == "ready" && name == "relay") {
      ++relay_runs;
      recovered = static_cast<uint64_t>(f.GetInt("recovered"));
    }
    if (what == "confirmed") confirmed = true;
    if (what == "published") published = std::atoi(f.Word(1).c_str());
    if (what == "done") reports[f.Word(1)]++;
    if (what == "alert") {
      alerts[f.Word(1)]++;
      if (f.Word(2) == "replayed") ++replayed_alerts;
    }
    if (what == "gap") gaps += static_cast<int>(std::atoi(f.Word(1).c_str()));
  }
  int ReportRuns() const {
    int n = 0;
    for (const auto& [body, runs] : reports) n += runs;
    return n;
  }
};

class Demo {
 public:
  explicit Demo(bool verbose)
      : dir_("relay-bridge"),
        procs_([this](const std::string& name,
                      const std::string& line) { b_.OnLine(name, line); },
               absl::Seconds(150)) {
    procs_.set_echo(verbose);
  }

  absl::Status Run() {
    if (!dir_.ok()) return absl::InternalError("no temp dir");
    Say("Relay demo: segments %s-plant and %s-office, two clusters that "
        "cannot see each other.",
        procs_.cluster().c_str(), procs_.cluster().c_str());
    FABRIC_RETURN_IF_ERROR(StartSegments());
    FABRIC_RETURN_IF_ERROR(HandOver());
    FABRIC_RETURN_IF_ERROR(KillAndRestartRelay());
    FABRIC_RETURN_IF_ERROR(procs_.WaitUntil(
        [&] {
          return b_.reports.size() == kReports && b_.alerts.size() == kAlerts;
        },
        kStep, "for every report and every alert in the office"));
    Say("Every report ran in the office and the dashboard shows every alert.");
    Say("Stopping everything (SIGTERM).");
    for (const char* name :
         {"dashboard", "worker-1", "worker-2", "sensor", "relay"}) {
      FABRIC_RETURN_IF_ERROR(procs_.StopCleanly(name));
    }
    return Verify();
  }

 private:
  static constexpr absl::Duration kStep = absl::Seconds(40);  // never hit

  std::string Path(const std::string& leaf) const {
    return absl::StrCat(dir_.path(), "/", leaf);
  }

  absl::Status StartSegments() {
    Say("Starting the relay between them (queue '%s', topics 'alerts.').",
        kQueue);
    FABRIC_RETURN_IF_ERROR(
        procs_.Start("relay", "relay", {"dir=" + Path("relay")}));
    Say("Office: two workers of '%s' and a durable dashboard subscriber.",
        kQueue);
    for (const char* w : {"worker-1", "worker-2"}) {
      FABRIC_RETURN_IF_ERROR(
          procs_.Start(w, "worker", {absl::StrCat("name=", w)}));
    }
    FABRIC_RETURN_IF_ERROR(
        procs_.Start("dashboard", "dashboard", {"state=" + Path("dashboard")}));
    FABRIC_RETURN_IF_ERROR(procs_.WaitUntil(
        [&] { return b_.ready.size() == 4; }, kStep, "for relay and office"));
    Say("Plant: a sensor publishing %d alerts on durable topic %s, one "
        "every %s.",
        kAlerts, kTopic, absl::FormatDuration(kAlertEvery).c_str());
    return procs_.Start("sensor", "sensor", {"spool=" + Path("sensor")});
  }

  // The plant's producer pushes every report and leaves once the relay has
  // them.
  absl::Status HandOver() {
    Say("Plant: a producer pushes %d reports. The plant has no workers: the "
        "relay takes them.",
        kReports);
    FABRIC_RETURN_IF_ERROR(
        procs_.Start("producer", "producer", {"spool=" + Path("producer")}));
    FABRIC_RETURN_IF_ERROR(
        procs_.WaitUntil([&] { return b_.confirmed; }, kStep,
                         "for the relay to confirm every report"));
    absl::StatusOr<int> code = procs_.WaitExit("producer", absl::Seconds(20));
    if (!code.ok()) return code.status();
    if (*code != 0) return absl::InternalError("the producer failed");
    Say("The producer exited: the relay confirmed all %d reports, which are "
        "now in the relay's spool. %d have run in the office so far.",
        kReports, b_.ReportRuns());
    return absl::OkStatus();
  }

  absl::Status KillAndRestartRelay() {
    FABRIC_RETURN_IF_ERROR(procs_.WaitUntil(
        [&] { return b_.ReportRuns() >= 40 && b_.alerts.size() >= 10; }, kStep,
        "for reports and alerts to cross"));
    Say("%zu reports done and %zu alerts shown. Killing the relay (SIGKILL).",
        b_.reports.size(), b_.alerts.size());
    FABRIC_RETURN_IF_ERROR(procs_.Kill("relay"));
    const size_t reports_at_kill = b_.reports.size();
    const int published_at_kill = b_.published;
    FABRIC_RETURN_IF_ERROR(procs_.WaitUntil(
        [&] { return b_.published >= published_at_kill + 10; }, kStep,
        "for the sensor to publish while the relay is down"));
    Say("While the relay is down the sensor keeps publishing (now at alert "
        "%d); nothing crosses.",
        b_.published);
    Say("Starting the relay again on the same state directory.");
    const int runs = b_.relay_runs;
    FABRIC_RETURN_IF_ERROR(
        procs_.Start("relay", "relay", {"dir=" + Path("relay")}));
    FABRIC_RETURN_IF_ERROR(procs_.WaitUntil(
        [&] { return b_.relay_runs > runs; }, kStep, "for the relay"));
    Say("It found %llu unfinished reports in its spool (%zu of %d were done "
        "at the kill) and delivers them; its durable subscriber replays the "
        "missed alerts.",
        static_cast<unsigned long long>(b_.recovered), reports_at_kill,
        kReports);
    return absl::OkStatus();
  }

  absl::Status Verify() {
    std::vector<std::string> problems;
    std::vector<std::string> twice;
    for (int i = 1; i <= kReports; ++i) {
      const std::string body = absl::StrCat("report-", i);
      auto it = b_.reports.find(body);
      if (it == b_.reports.end()) problems.push_back(body + " never ran");
      if (it != b_.reports.end() && it->second > 1) twice.push_back(body);
    }
    int alert_copies = 0;
    for (int i = 1; i <= kAlerts; ++i) {
      auto it = b_.alerts.find(absl::StrCat("alert-", i));
      if (it == b_.alerts.end()) {
        problems.push_back(absl::StrCat("alert-", i, " never shown"));
      } else {
        alert_copies += it->second - 1;
      }
    }
    // Tasks the workers were running when the relay died ran once there and
    // again after the restart delivered them anew (at least once).
    std::string sample = absl::StrJoin(
        twice.begin(), twice.begin() + std::min<size_t>(twice.size(), 6), ", ");
    if (twice.size() > 6)
      absl::StrAppend(&sample, " and ", twice.size() - 6, " more");
    Say("Summary: %d reports, %d runs in the office; %zu ran twice, being in "
        "progress at the kill%s%s.",
        kReports, b_.ReportRuns(), twice.size(), twice.empty() ? "" : ": ",
        sample.c_str());
    Say("         %d alerts, %d replayed to the dashboard, %d shown twice, "
        "%d lost in gaps.",
        kAlerts, b_.replayed_alerts, alert_copies, b_.gaps);
    if (b_.gaps > 0) problems.push_back("the dashboard reported gaps");
    if (!problems.empty()) {
      return absl::InternalError(absl::StrJoin(problems, "; "));
    }
    Say("OK: nothing the relay confirmed was lost across its SIGKILL.");
    return absl::OkStatus();
  }

  Bridge b_;
  TempDir dir_;  // outlives procs_, whose destructor stops the children
  Processes procs_;
};

}  // namespace

int main(int argc, char** argv) {
  return fabric::examples::DemoMain(
      argc, argv,
      {{"relay", RunRelay},
       {"producer", RunProducer},
       {"worker", RunWorker},
       {"sensor", RunSensor},
       {"dashboard", RunDashboard}},
      [](bool verbose) { return Demo(verbose).Run(); });
}
