// SPDX-License-Identifier: Apache-2.0
// Image-processing task queue: a web front end (fabric::Producer with a
// disk spool) receives 200 photo uploads and pushes one resize task each; a
// pool of three worker processes (fabric::Worker) renders a thumbnail per
// upload into an output directory. The driver SIGKILLs a worker mid-way
// (its tasks go to the other two) and then the web front end (restarted on
// the same spool, it delivers every confirmed task that was not acked yet),
// then checks that every upload has the right thumbnail.
//
//   build/examples/image_pipeline [--verbose]
//
// Exits 0 only if every upload got a correct thumbnail (duplicates are
// allowed and reported: the queue is at least once).
//
// Roles, each this binary run again by the driver (examples/demo_util.h):
//   image_pipeline worker name=W out=DIR          one image worker
//   image_pipeline producer spool=DIR first=N ...  the web front end
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/demo_util.h"
#include "fabric/base/status_macros.h"
#include "fabric/node.h"
#include "fabric/work_queue/producer.h"
#include "fabric/work_queue/worker.h"

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

constexpr char kQueue[] = "thumbnails";
constexpr int kUploads = 200;
constexpr int kUploadIntervalMs = 20;  // one upload every 20 ms (50/s)
constexpr int kWorkMs = 50;            // one image takes a worker 50 ms
constexpr int kKillWorkerAt = 40;      // uploads confirmed before each kill
constexpr int kKillProducerAt = 120;
const char* const kWorkers[] = {"worker-1", "worker-2", "worker-3"};

// ------------------------------------------------------ the "image" work
// Deterministic, so the driver can check every thumbnail byte for byte.

constexpr int kWidth = 96, kHeight = 64, kScale = 4;

std::string UploadName(int n) { return absl::StrFormat("IMG_%04d.jpg", n); }

// "IMG_0042.jpg" -> 42; -1 for anything else.
int UploadNumber(absl::string_view body) {
  int n = 0;
  if (body.size() != 12 || !absl::StartsWith(body, "IMG_") ||
      !absl::SimpleAtoi(body.substr(4, 4), &n)) {
    return -1;
  }
  return n;
}

// The uploaded photo: a grey-scale pattern that depends on `n`.
std::vector<uint8_t> RenderPhoto(int n) {
  std::vector<uint8_t> pixels(size_t{kWidth} * kHeight);
  for (int y = 0; y < kHeight; ++y) {
    for (int x = 0; x < kWidth; ++x) {
      pixels[y * kWidth + x] =
          static_cast<uint8_t>((x * 3 + y * 5 + n * 37 + ((x ^ y) & n)) & 0xff);
    }
  }
  return pixels;
}

// The thumbnail: the photo scaled down 4x (box filter), as a binary PGM.
std::string Thumbnail(int n) {
  const std::vector<uint8_t> photo = RenderPhoto(n);
  std::string out =
      absl::StrFormat("P5\n%d %d\n255\n", kWidth / kScale, kHeight / kScale);
  for (int ty = 0; ty < kHeight / kScale; ++ty) {
    for (int tx = 0; tx < kWidth / kScale; ++tx) {
      int sum = 0;
      for (int dy = 0; dy < kScale; ++dy) {
        for (int dx = 0; dx < kScale; ++dx) {
          sum += photo[(ty * kScale + dy) * kWidth + tx * kScale + dx];
        }
      }
      out.push_back(static_cast<char>(sum / (kScale * kScale)));
    }
  }
  return out;
}

std::string ThumbnailPath(const std::string& dir, int n) {
  return absl::StrFormat("%s/IMG_%04d.pgm", dir, n);
}

// Writes via a temp file and rename, so a killed worker never leaves half
// a thumbnail behind.
absl::Status WriteFileAtomically(const std::string& path,
                                 const std::string& data) {
  const std::string tmp = absl::StrCat(path, ".tmp-", getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return absl::InternalError(absl::StrCat("open ", tmp));
  const bool written =
      std::fwrite(data.data(), 1, data.size(), f) == data.size();
  if (std::fclose(f) != 0 || !written ||
      std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("write ", path));
  }
  return absl::OkStatus();
}

// ------------------------------------------------------------ role: worker

int RunWorker(const Fields& args) {
  const std::string name = args.Get("name");
  const std::string out_dir = args.Get("out");
  absl::StatusOr<std::unique_ptr<fabric::Node>> node =
      fabric::Node::Start(RoleNodeOptions(args, name));
  if (!node.ok()) return Fail(name, node.status());

  fabric::WorkerOptions options;
  options.queues = {kQueue};
  options.concurrency = 1;  // one image at a time
  options.prefetch = 4;     // and at most 4 tasks held (1 running, 3 queued)
  // Runs on the worker's handler thread, once per delivery.
  options.handler = [&](const fabric::Task& task, fabric::TaskContext&) {
    const int n = UploadNumber(task.body);
    if (n < 0) return fabric::Outcome::Reject("not an upload: " + task.body);
    Emit("start %s task=%s", task.body.c_str(), task.id.ToString().c_str());
    const std::string thumbnail = Thumbnail(n);
    absl::SleepFor(absl::Milliseconds(kWorkMs));  // pretend it is a big photo
    absl::Status written =
        WriteFileAtomically(ThumbnailPath(out_dir, n), thumbnail);
    if (!written.ok()) {
      // Not acked: the producer delivers it again after 200 ms.
      return fabric::Outcome::RetryAfter(absl::Milliseconds(200),
                                         std::string(written.message()));
    }
    Emit("done %s task=%s attempt=%u%s", task.body.c_str(),
         task.id.ToString().c_str(), task.attempt,
         task.redelivered ? " redelivered" : "");
    return fabric::Outcome::Ack();
  };
  absl::StatusOr<std::unique_ptr<fabric::Worker>> worker =
      fabric::Worker::Create(**node, std::move(options));
  if (!worker.ok()) return Fail(name, worker.status());
  Emit("ready");

  WaitForStop();
  // Clean stop: hand back tasks not started, finish the running one.
  (*worker)->Close();
  const fabric::WorkerStats stats = (*worker)->Stats();
  Emit("stopped acked=%llu duplicates=%llu released=%llu",
       static_cast<unsigned long long>(stats.acked),
       static_cast<unsigned long long>(stats.duplicates),
       static_cast<unsigned long long>(stats.released));
  (*node)->Close();
  return 0;
}

// ---------------------------------------------------------- role: producer

// Prints the producer's counters when the ones the driver narrates change.
void EmitStatsIfChanged(const fabric::Producer& producer,
                        fabric::ProducerStats* last) {
  const fabric::ProducerStats s = producer.Stats();
  if (s.workers == last->workers && s.worker_lost == last->worker_lost &&
      s.redelivered == last->redelivered) {
    return;
  }
  Emit("stats workers=%llu worker_lost=%llu redelivered=%llu backlog=%llu",
       static_cast<unsigned long long>(s.workers),
       static_cast<unsigned long long>(s.worker_lost),
       static_cast<unsigned long long>(s.redelivered),
       static_cast<unsigned long long>(s.backlog));
  *last = s;
}

// The uploads: one push per request, at a steady rate. Returns kCancelled
// when the driver asks this process to stop.
absl::Status PushUploads(fabric::Producer& producer, int first, int last,
                         fabric::ProducerStats* stats) {
  for (int n = first; n <= last; ++n) {
    const std::string body = UploadName(n);
    // Blocks until the task is durable in the spool.
    FABRIC_ASSIGN_OR_RETURN(
        fabric::TaskId id,
        producer.Push(body, {{"user", absl::StrCat("user-", n % 7)}}));
    Emit("confirmed %s task=%s", body.c_str(), id.ToString().c_str());
    EmitStatsIfChanged(producer, stats);
    if (StopRequested(absl::Milliseconds(kUploadIntervalMs))) {
      return absl::CancelledError("stopped");
    }
  }
  return absl::OkStatus();
}

// Waits (bounded) until every task pushed or recovered is acked, narrating
// the counters meanwhile.
absl::Status WaitAllAcked(fabric::Producer& producer,
                          fabric::ProducerStats* stats) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (true) {
    absl::Status completed = producer.WaitCompleted(absl::Milliseconds(200));
    EmitStatsIfChanged(producer, stats);
    if (!absl::IsDeadlineExceeded(completed) || absl::Now() >= deadline) {
      return completed;
    }
    if (StopRequested()) return absl::CancelledError("stopped");
  }
}

int RunProducer(const Fields& args) {
  absl::StatusOr<std::unique_ptr<fabric::Node>> node =
      fabric::Node::Start(RoleNodeOptions(args, "web"));
  if (!node.ok()) return Fail("web", node.status());

  fabric::ProducerOptions options;
  options.queue = kQueue;
  // Push returns once the task is in this spool (fsync policy: batch), and
  // a producer restarted on it sends again every task not yet acked.
  options.spool_dir = args.Get("spool");
  // A resize takes 50 ms, so a task not acked within 3 s (a hung worker, an
  // ack lost with a dead process) is delivered again; the default is 30 s.
  options.lease = absl::Seconds(3);
  absl::StatusOr<std::unique_ptr<fabric::Producer>> created =
      fabric::Producer::Create(**node, options);
  if (!created.ok()) return Fail("web", created.status());
  fabric::Producer& producer = **created;
  fabric::ProducerStats stats = producer.Stats();
  Emit("ready recovered=%llu",
       static_cast<unsigned long long>(stats.recovered));

  // Wait (bounded) until the workers are known, so the first uploads are
  // spread over all of them; tasks would wait in the spool anyway.
  const size_t want = static_cast<size_t>(args.GetInt("wait_workers", 1));
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (producer.Stats().workers < want && absl::Now() < deadline) {
    if (StopRequested(absl::Milliseconds(20))) return 0;
  }

  absl::Status status =
      PushUploads(producer, static_cast<int>(args.GetInt("first", 1)),
                  static_cast<int>(args.GetInt("last", kUploads)), &stats);
  if (status.ok()) status = WaitAllAcked(producer, &stats);
  if (absl::IsCancelled(status)) return 0;  // the driver stopped us
  if (!status.ok()) return Fail("web", status);
  stats = producer.Stats();
  Emit(
      "completed pushed=%llu recovered=%llu acked=%llu redelivered=%llu "
      "dead=%llu",
      static_cast<unsigned long long>(stats.pushed),
      static_cast<unsigned long long>(stats.recovered),
      static_cast<unsigned long long>(stats.acked),
      static_cast<unsigned long long>(stats.redelivered),
      static_cast<unsigned long long>(stats.dead_lettered));
  producer.Close();  // the spool stays for the next run
  (*node)->Close();
  return 0;
}

// ------------------------------------------------------------------ driver

// What the driver learns from the role processes' lines.
struct Pipeline {
  struct Run {  // one completed resize
    std::string worker;
    int attempt = 1;
    bool redelivered = false;
    bool after_restart = false;  // read after the producer was restarted
  };
  std::set<std::string> ready;
  int web_runs = 0;        // producer "ready" lines
  uint64_t recovered = 0;  // of the latest producer run
  int confirmed = 0;       // highest upload confirmed
  uint64_t worker_lost = 0;
  bool restarted = false;                        // the producer was restarted
  Fields completed{""};                          // the producer's final line
  std::map<int, std::vector<Run>> runs;          // upload -> completed resizes
  std::map<std::string, std::set<int>> in_hand;  // started, not done
  std::map<std::string, int> per_worker;
  int total = 0;

  void OnLine(const std::string& name, const std::string& line) {
    const Fields f(line);
    const std::string verb = f.Word(0);
    const int n = UploadNumber(f.Word(1));
    if (verb == "ready") {
      ready.insert(name);
      if (name == "web") {
        ++web_runs;
        recovered = static_cast<uint64_t>(f.GetInt("recovered"));
      }
    } else if (verb == "confirmed") {
      confirmed = std::max(confirmed, n);
    } else if (verb == "stats") {
      worker_lost = static_cast<uint64_t>(f.GetInt("worker_lost"));
    } else if (verb == "completed") {
      completed = f;
    } else if (verb == "start") {
      in_hand[name].insert(n);
    } else if (verb == "done") {
      in_hand[name].erase(n);
      runs[n].push_back(Run{name, static_cast<int>(f.GetInt("attempt", 1)),
                            f.Word(2) == "redelivered", restarted});
      ++per_worker[name];
      ++total;
    }
  }

  // "IMG_0041 (worker-3), ..." for the uploads delivered a second time by
  // the same producer run (attempt >= 2): before the restart because
  // worker-2 died, after it because a lease ran out.
  std::string Redelivered(bool after_restart) const {
    std::vector<std::string> out;
    for (const auto& [n, list] : runs) {
      for (const Run& r : list) {
        if (r.attempt >= 2 && r.after_restart == after_restart) {
          out.push_back(absl::StrFormat("IMG_%04d (%s)", n, r.worker));
        }
      }
    }
    return out.empty() ? "none" : absl::StrJoin(out, ", ");
  }
};

std::string Uploads(const std::set<int>& set) {
  std::vector<std::string> out;
  for (int n : set) out.push_back(absl::StrFormat("IMG_%04d", n));
  return out.empty() ? "nothing" : absl::StrJoin(out, ", ");
}

// Checks every upload's thumbnail; prints the summary.
absl::Status Verify(const Pipeline& p, const std::string& out_dir) {
  std::vector<std::string> missing, wrong, duplicates;
  for (int n = 1; n <= kUploads; ++n) {
    std::ifstream in(ThumbnailPath(out_dir, n), std::ios::binary);
    std::stringstream data;
    data << in.rdbuf();
    if (!in.is_open()) {
      missing.push_back(absl::StrFormat("IMG_%04d", n));
    } else if (data.str() != Thumbnail(n)) {
      wrong.push_back(absl::StrFormat("IMG_%04d", n));
    }
    auto it = p.runs.find(n);
    if (it != p.runs.end() && it->second.size() > 1) {
      std::vector<std::string> who;
      for (const Pipeline::Run& r : it->second) who.push_back(r.worker);
      duplicates.push_back(
          absl::StrFormat("IMG_%04d (%s)", n, absl::StrJoin(who, ", ")));
    }
  }
  Say("Summary: %d uploads, %d thumbnails present, %zu missing, %zu wrong.",
      kUploads, kUploads - static_cast<int>(missing.size()), missing.size(),
      wrong.size());
  Say("  resizes run: %d (worker-1 %d, worker-2 %d, worker-3 %d)", p.total,
      p.per_worker.count("worker-1") ? p.per_worker.at("worker-1") : 0,
      p.per_worker.count("worker-2") ? p.per_worker.at("worker-2") : 0,
      p.per_worker.count("worker-3") ? p.per_worker.at("worker-3") : 0);
  Say("  redelivered after worker-2 died: %s", p.Redelivered(false).c_str());
  const std::string expired = p.Redelivered(true);
  if (expired != "none") {
    Say("  redelivered when their 3 s lease ran out: %s", expired.c_str());
  }
  Say("  recovered from the spool by the restarted web front end: %llu",
      static_cast<unsigned long long>(p.recovered));
  Say("  resized twice: %zu%s%s", duplicates.size(),
      duplicates.empty() ? "" : ": ", absl::StrJoin(duplicates, ", ").c_str());
  if (!duplicates.empty()) {
    Say("  (allowed: delivery is at least once. A task whose ack died with a "
        "process is delivered again, and another worker may run it too.)");
  }
  if (!missing.empty() || !wrong.empty()) {
    return absl::DataLossError(
        absl::StrCat("uploads without a correct thumbnail: missing [",
                     absl::StrJoin(missing, " "), "] wrong [",
                     absl::StrJoin(wrong, " "), "]"));
  }
  Say("OK: every upload has its thumbnail, checked byte for byte.");
  return absl::OkStatus();
}

// The demo's script. Each step waits for what it narrates, with a bound.
class Demo {
 public:
  explicit Demo(bool verbose)
      : dir_("image-pipeline"),
        spool_(dir_.path() + "/spool"),
        out_(dir_.path() + "/thumbnails"),
        procs_([this](const std::string& name,
                      const std::string& line) { p_.OnLine(name, line); },
               absl::Seconds(120)) {
    procs_.set_echo(verbose);
  }

  absl::Status Run() {
    if (!dir_.ok() || mkdir(out_.c_str(), 0700) != 0) {
      return absl::InternalError("cannot create a temp dir");
    }
    Say("Image pipeline demo: cluster %s, loopback only, files in %s",
        procs_.cluster().c_str(), dir_.path().c_str());
    FABRIC_RETURN_IF_ERROR(StartAll());
    FABRIC_RETURN_IF_ERROR(KillWorker());
    FABRIC_RETURN_IF_ERROR(KillAndRestartProducer());
    FABRIC_RETURN_IF_ERROR(Finish());
    return Verify(p_, out_);
  }

 private:
  static constexpr absl::Duration kStep = absl::Seconds(30);  // never hit

  absl::Status StartProducer(int first, int wait_workers) {
    return procs_.Start(
        "web", "producer",
        {absl::StrCat("first=", first), absl::StrCat("last=", kUploads),
         absl::StrCat("spool=", spool_),
         absl::StrCat("wait_workers=", wait_workers)});
  }

  absl::Status StartAll() {
    Say("Starting 3 image workers (queue \"%s\", %d ms per image, 4 tasks "
        "held at most).",
        kQueue, kWorkMs);
    for (const char* w : kWorkers) {
      FABRIC_RETURN_IF_ERROR(procs_.Start(
          w, "worker", {absl::StrCat("name=", w), absl::StrCat("out=", out_)}));
    }
    FABRIC_RETURN_IF_ERROR(procs_.WaitUntil(
        [&] { return p_.ready.size() == 3; }, kStep, "for the workers"));
    Say("Starting the web front end: %d uploads, one every %d ms. Each "
        "pushes a resize task; the push returns once the task is in the "
        "spool.",
        kUploads, kUploadIntervalMs);
    return StartProducer(1, 3);
  }

  // A worker dies in the middle of an image; its tasks go to the others.
  absl::Status KillWorker() {
    FABRIC_RETURN_IF_ERROR(procs_.WaitUntil(
        [&] {
          return p_.confirmed >= kKillWorkerAt &&
                 !p_.in_hand["worker-2"].empty();
        },
        kStep, "for worker-2 to be busy"));
    Say("%d uploads confirmed, %d thumbnails done. Killing worker-2 with "
        "SIGKILL while it is resizing.",
        p_.confirmed, p_.total);
    const absl::Time killed = absl::Now();
    FABRIC_RETURN_IF_ERROR(procs_.Kill("worker-2"));
    Say("worker-2 died while resizing %s.",
        Uploads(p_.in_hand["worker-2"]).c_str());
    FABRIC_RETURN_IF_ERROR(procs_.WaitUntil([&] { return p_.worker_lost > 0; },
                                            kStep,
                                            "for worker-2 to be missed"));
    Say("The web front end saw worker-2 leave %s later: the %llu task(s) it "
        "held went back to the queue, for worker-1 and worker-3.",
        absl::FormatDuration(
            absl::Trunc(absl::Now() - killed, absl::Milliseconds(10)))
            .c_str(),
        static_cast<unsigned long long>(p_.worker_lost));
    return absl::OkStatus();
  }

  // The web front end dies; restarted on its spool, it delivers every
  // confirmed task not yet acked and pushes the uploads it had not taken.
  absl::Status KillAndRestartProducer() {
    FABRIC_RETURN_IF_ERROR(
        procs_.WaitUntil([&] { return p_.confirmed >= kKillProducerAt; }, kStep,
                         "for more uploads"));
    if (!procs_.running("web")) {
      return absl::FailedPreconditionError(
          "the web front end finished before it could be killed");
    }
    FABRIC_RETURN_IF_ERROR(procs_.Kill("web"));
    const int resume = p_.confirmed + 1;
    Say("Killed the web front end with SIGKILL after it confirmed uploads "
        "1..%d; %zu of them have thumbnails so far.",
        p_.confirmed, p_.runs.size());
    Say("So far redelivered after worker-2 died: %s",
        p_.Redelivered(false).c_str());
    p_.restarted = true;
    Say("Restarting it on the same spool; new uploads resume at IMG_%04d.",
        resume);
    FABRIC_RETURN_IF_ERROR(StartProducer(resume, 2));
    FABRIC_RETURN_IF_ERROR(procs_.WaitUntil(
        [&] { return p_.web_runs == 2; }, kStep, "for the restarted producer"));
    Say("The restarted web front end recovered %llu unacked tasks from its "
        "spool and is delivering them again.",
        static_cast<unsigned long long>(p_.recovered));
    return absl::OkStatus();
  }

  // Every task is acked; everyone stops cleanly.
  absl::Status Finish() {
    FABRIC_RETURN_IF_ERROR(
        procs_.WaitUntil([&] { return p_.completed.Word(0) == "completed"; },
                         absl::Seconds(60), "for every task to be acked"));
    Say("The web front end reports every task acked: %lld new uploads "
        "pushed and %lld recovered, %lld acked, %lld dead letters.",
        static_cast<long long>(p_.completed.GetInt("pushed")),
        static_cast<long long>(p_.completed.GetInt("recovered")),
        static_cast<long long>(p_.completed.GetInt("acked")),
        static_cast<long long>(p_.completed.GetInt("dead")));
    absl::StatusOr<int> web = procs_.WaitExit("web", kStep);
    if (!web.ok() || *web != 0) {
      return absl::InternalError("the web front end did not exit cleanly");
    }
    Say("Stopping the workers (SIGTERM: each finishes its image first).");
    FABRIC_RETURN_IF_ERROR(procs_.StopCleanly("worker-1"));
    return procs_.StopCleanly("worker-3");
  }

  TempDir dir_;  // removed last, after every process is stopped
  const std::string spool_, out_;
  Pipeline p_;
  Processes procs_;
};

}  // namespace

int main(int argc, char** argv) {
  return fabric::examples::DemoMain(
      argc, argv, {{"worker", RunWorker}, {"producer", RunProducer}},
      [](bool verbose) { return Demo(verbose).Run(); });
}
