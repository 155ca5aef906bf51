// SPDX-License-Identifier: Apache-2.0
// libFuzzer target over the work-queue wire bodies
// (patterns/work_queue/internal/wire.h): DEMAND, CREDIT, TASKS, RESULTS and
// EXTEND. Each input is decoded as every one of them; whatever decodes
// must encode and decode back to the same value. The input is also read as
// the fields of one message of each kind, which must survive
// encode-then-decode unchanged. Build and run: tests/fuzz/README.md.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "fabric/limits.h"
#include "patterns/work_queue/internal/wire.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace wq = ::fabric::wq;
using ::fabric_fuzz::FieldReader;

bool SameTask(const wq::WireTask& a, const wq::WireTask& b) {
  return a.seq == b.seq && a.attempt == b.attempt &&
         a.redelivered == b.redelivered && a.headers == b.headers &&
         a.body == b.body && a.delivery == b.delivery;
}

bool SameOther(const wq::OtherResult& a, const wq::OtherResult& b) {
  return a.seq == b.seq && a.attempt == b.attempt && a.verdict == b.verdict &&
         a.delay_ms == b.delay_ms && a.reason == b.reason &&
         a.delivery == b.delivery;
}

bool SameTasks(const std::vector<wq::WireTask>& a,
               const std::vector<wq::WireTask>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), SameTask);
}

// RESULTS compared field by field; `reports_starts` apart (see CheckResults).
bool SameResults(const wq::Results& a, const wq::Results& b) {
  return a.queue == b.queue && a.grant == b.grant && a.acked == b.acked &&
         std::equal(a.others.begin(), a.others.end(), b.others.begin(),
                    b.others.end(), SameOther) &&
         a.started == b.started;
}

void RequireRefusal(const absl::Status& status) {
  FABRIC_FUZZ_REQUIRE(status.code() == absl::StatusCode::kInvalidArgument);
}

void RequireQueueName(const std::string& queue) {
  FABRIC_FUZZ_REQUIRE(!queue.empty() && queue.size() <= wq::kMaxQueueName);
}

void CheckDemand(absl::string_view body) {
  absl::StatusOr<wq::Demand> m = wq::DecodeDemand(body);
  if (!m.ok()) return RequireRefusal(m.status());
  RequireQueueName(m->queue);
  absl::StatusOr<wq::Demand> again = wq::DecodeDemand(wq::EncodeDemand(*m));
  FABRIC_FUZZ_REQUIRE(again.ok() && again->queue == m->queue &&
                      again->backlog == m->backlog &&
                      again->credit_held == m->credit_held);
}

void CheckCredit(absl::string_view body) {
  absl::StatusOr<wq::Credit> m = wq::DecodeCredit(body);
  if (!m.ok()) return RequireRefusal(m.status());
  RequireQueueName(m->queue);
  absl::StatusOr<wq::Credit> again = wq::DecodeCredit(wq::EncodeCredit(*m));
  FABRIC_FUZZ_REQUIRE(again.ok() && again->queue == m->queue &&
                      again->grant == m->grant &&
                      again->reports_starts == m->reports_starts);
}

// Re-encodes decoded tasks the way a producer does.
std::string EncodeTasks(const wq::Tasks& m) {
  wq::TasksEncoder encoder(m.queue, m.producer);
  for (const wq::WireTask& t : m.tasks) {
    encoder.Add(t.seq, t.attempt, t.redelivered, t.headers, t.body, t.delivery);
  }
  FABRIC_FUZZ_REQUIRE(encoder.count() == m.tasks.size());
  return encoder.Finish();
}

void CheckTasks(absl::string_view body) {
  absl::StatusOr<wq::Tasks> m = wq::DecodeTasks(body);
  if (!m.ok()) return RequireRefusal(m.status());
  RequireQueueName(m->queue);
  FABRIC_FUZZ_REQUIRE(m->tasks.size() <= wq::kMaxTasksPerFrame);
  for (const wq::WireTask& t : m->tasks) {
    FABRIC_FUZZ_REQUIRE(t.headers.size() <= fabric::kMaxHeaders);
    // Bodies are views into the frame.
    FABRIC_FUZZ_REQUIRE(t.body.data() >= body.data() &&
                        t.body.data() + t.body.size() <=
                            body.data() + body.size());
  }
  const std::string wire = EncodeTasks(*m);
  absl::StatusOr<wq::Tasks> again = wq::DecodeTasks(wire);
  FABRIC_FUZZ_REQUIRE(again.ok() && again->queue == m->queue &&
                      again->producer == m->producer &&
                      SameTasks(again->tasks, m->tasks));
}

void CheckResults(absl::string_view body) {
  absl::StatusOr<wq::Results> m = wq::DecodeResults(body);
  if (!m.ok()) return RequireRefusal(m.status());
  RequireQueueName(m->queue);
  for (const wq::OtherResult& o : m->others) {
    FABRIC_FUZZ_REQUIRE(o.verdict <= wq::Verdict::kRelease);
    FABRIC_FUZZ_REQUIRE(o.reason.size() <= fabric::kMaxStringBytes);
  }
  // A frame of an earlier release has no `started` list; this release
  // always writes one (empty then).
  FABRIC_FUZZ_REQUIRE(m->reports_starts || m->started.empty());
  absl::StatusOr<wq::Results> again = wq::DecodeResults(wq::EncodeResults(*m));
  FABRIC_FUZZ_REQUIRE(again.ok() && SameResults(*m, *again) &&
                      again->reports_starts);
}

void CheckExtend(absl::string_view body) {
  absl::StatusOr<wq::Extend> m = wq::DecodeExtend(body);
  if (!m.ok()) return RequireRefusal(m.status());
  RequireQueueName(m->queue);
  absl::StatusOr<wq::Extend> again = wq::DecodeExtend(wq::EncodeExtend(*m));
  FABRIC_FUZZ_REQUIRE(again.ok() && again->queue == m->queue &&
                      again->extend_ms == m->extend_ms &&
                      again->seqs == m->seqs);
}

// A queue name of 1..255 bytes.
std::string QueueName(FieldReader& in) {
  std::string queue = in.String();
  // push_back: g++ 12 at -O2 warns falsely (-Wrestrict) on = "q".
  if (queue.empty()) queue.push_back('q');
  return queue;
}

fabric::Headers ReadHeaders(FieldReader& in) {
  fabric::Headers headers;
  for (int n = in.U8() % 4; n > 0; --n) headers[in.String()] = in.String();
  return headers;
}

// Builds one message of each kind from the input's bytes and checks that
// each survives encode-then-decode.
void CheckEncoders(absl::string_view input) {
  FieldReader in(input);
  const wq::Demand demand{QueueName(in), in.U64(), in.U64()};
  absl::StatusOr<wq::Demand> d = wq::DecodeDemand(wq::EncodeDemand(demand));
  FABRIC_FUZZ_REQUIRE(d.ok() && d->queue == demand.queue &&
                      d->backlog == demand.backlog &&
                      d->credit_held == demand.credit_held);

  const wq::Credit credit{QueueName(in), in.U64(), in.Bool()};
  absl::StatusOr<wq::Credit> c = wq::DecodeCredit(wq::EncodeCredit(credit));
  FABRIC_FUZZ_REQUIRE(c.ok() && c->queue == credit.queue &&
                      c->grant == credit.grant &&
                      c->reports_starts == credit.reports_starts);

  wq::Tasks tasks;
  tasks.queue = QueueName(in);
  tasks.producer = in.Id();
  std::vector<std::string> bodies(in.U8() % 4);
  for (std::string& b : bodies) {
    wq::WireTask t;
    t.seq = in.U64();
    t.attempt = in.U32();
    t.redelivered = in.Bool();
    t.headers = ReadHeaders(in);
    b = in.String();
    t.body = b;
    t.delivery = in.U32();
    tasks.tasks.push_back(std::move(t));
  }
  const std::string tasks_wire = EncodeTasks(tasks);
  absl::StatusOr<wq::Tasks> t = wq::DecodeTasks(tasks_wire);
  FABRIC_FUZZ_REQUIRE(t.ok() && t->queue == tasks.queue &&
                      t->producer == tasks.producer &&
                      SameTasks(t->tasks, tasks.tasks));

  wq::Results results;
  results.queue = QueueName(in);
  results.grant = in.U64();
  for (int n = in.U8() % 4; n > 0; --n) results.acked.push_back(in.U64());
  for (int n = in.U8() % 3; n > 0; --n) {
    wq::OtherResult o;
    o.seq = in.U64();
    o.attempt = in.U32();
    o.verdict = static_cast<wq::Verdict>(in.U8() % 4);
    o.delay_ms = in.U64();
    o.reason = in.String();
    o.delivery = in.U32();
    results.others.push_back(std::move(o));
  }
  for (int n = in.U8() % 3; n > 0; --n) {
    results.started.push_back({in.U64(), in.U32()});
  }
  absl::StatusOr<wq::Results> r = wq::DecodeResults(wq::EncodeResults(results));
  FABRIC_FUZZ_REQUIRE(r.ok() && SameResults(results, *r) && r->reports_starts);

  wq::Extend extend;
  extend.queue = QueueName(in);
  extend.extend_ms = in.U64();
  for (int n = in.U8() % 4; n > 0; --n) extend.seqs.push_back(in.U64());
  absl::StatusOr<wq::Extend> e = wq::DecodeExtend(wq::EncodeExtend(extend));
  FABRIC_FUZZ_REQUIRE(e.ok() && e->queue == extend.queue &&
                      e->extend_ms == extend.extend_ms &&
                      e->seqs == extend.seqs);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  CheckDemand(input);
  CheckCredit(input);
  CheckTasks(input);
  CheckResults(input);
  CheckExtend(input);
  CheckEncoders(input);
  return 0;
}
