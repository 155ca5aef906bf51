// SPDX-License-Identifier: Apache-2.0
// Binding of the work queue: `Producer`, `Worker`, `Task` and their values.
// A Python handler runs on the worker's handler threads through the gate;
// how it ends decides the outcome (docs/python.md, "Workers").
#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fabric/spool/spool.h"
#include "patterns/work_queue/producer.h"
#include "patterns/work_queue/worker.h"
#include "python/ext/common.h"
#include "python/ext/gate.h"
#include "python/ext/node.h"

namespace fabricmq {
namespace {

constexpr absl::Duration kSlice = absl::Milliseconds(100);

// One delivery as the Python handler sees it. `ctx` is set only while the
// handler runs, on the handler's thread.
struct PyTask {
  fabric::TaskId id;
  std::string queue;
  fabric::Headers headers;
  py::object body;
  uint32_t attempt = 1;
  bool redelivered = false;
  fabric::TaskContext* ctx = nullptr;
  std::thread::id thread;

  void ExtendLease(py::handle seconds) {
    if (ctx == nullptr) {
      ThrowUsage("Task.extend_lease() is only valid while its handler runs");
    }
    if (thread != std::this_thread::get_id()) {
      ThrowUsage("Task.extend_lease() must be called on the handler's thread");
    }
    absl::Status s = ctx->ExtendLease(
        ToDuration(seconds, "extend_lease seconds", absl::ZeroDuration()));
    if (!s.ok()) ThrowStatus(s);
  }
};

// Turns a Python exception from a handler into an outcome. Anything but
// Retry and Reject fills `failure` with the exception's last traceback line
// (logged in full by fabricmq's `_handler_failed`).
fabric::Outcome OutcomeOf(py::error_already_set& e, py::handle task,
                          std::string* failure) {
  try {
    if (e.matches(PythonType("Retry"))) {
      py::object exc = e.value();
      return fabric::Outcome::RetryAfter(
          ToDuration(exc.attr("delay"), "Retry delay", absl::ZeroDuration()),
          py::str(exc.attr("reason")).cast<std::string>());
    }
    if (e.matches(PythonType("Reject"))) {
      return fabric::Outcome::Reject(
          py::str(e.value().attr("reason")).cast<std::string>());
    }
    *failure =
        PythonType("_handler_failed")(task, e.type(), e.value(), e.trace())
            .cast<std::string>();
  } catch (py::error_already_set& inner) {
    inner.discard_as_unraisable("fabricmq worker handler");
    *failure = "exception (unprintable)";
  } catch (const std::exception& inner) {  // e.g. a Retry with a bad delay
    *failure = inner.what();
  }
  if (failure->empty()) *failure = "exception";
  return fabric::Outcome::RetryAfter(absl::ZeroDuration());
}

// The worker's handler: calls the Python callable on a handler thread.
fabric::Outcome RunHandler(const SharedPy& handler, const void* owner,
                           const fabric::Task& task, fabric::TaskContext& ctx) {
  std::string failure;
  fabric::Outcome outcome = fabric::Outcome::Ack();
  {
    Gate::Entry entry;
    if (!entry.ok()) {
      return fabric::Outcome::RetryAfter(absl::ZeroDuration(),
                                         "interpreter exiting");
    }
    CallbackScope scope(owner);
    py::object object = py::cast(PyTask{
        task.id, task.queue, task.headers, ToBytes(task.body), task.attempt,
        task.redelivered, &ctx, std::this_thread::get_id()});
    PyTask* t = object.cast<PyTask*>();
    // The context dies with this call: a Task kept by the handler must not
    // reach it later, whatever happens below.
    struct ForgetContext {
      PyTask* t;
      ~ForgetContext() { t->ctx = nullptr; }
    } forget{t};
    try {
      handler->get()(object);
    } catch (py::error_already_set& e) {
      outcome = OutcomeOf(e, object, &failure);
    }
  }
  // Thrown outside Python so that the worker counts a handler error and
  // retries with "handler threw: <failure>".
  if (!failure.empty()) throw std::runtime_error(failure);
  return outcome;
}

void DeliverCompletion(const SharedPy& callback, const void* owner,
                       const fabric::Completion& c) {
  Gate::Entry entry;
  if (!entry.ok()) return;
  CallbackScope scope(owner);
  try {
    callback->get()(py::cast(c));
  } catch (py::error_already_set& e) {
    e.discard_as_unraisable("fabricmq on_completed callback");
  }
}

absl::StatusOr<fabric::FsyncPolicy> ParsePolicy(const std::string& name) {
  return fabric::ParseFsyncPolicy(name);
}

// ---------------------------------------------------------------- producer

class PyProducer : public PatternObject<fabric::Producer> {
 public:
  static std::shared_ptr<PyProducer> Create(std::shared_ptr<PyNode> node,
                                            py::dict dict) {
    Options options(std::move(dict));
    fabric::ProducerOptions o;
    o.queue = options.String("queue", "");
    o.spool_dir = options.String("spool_dir", "");
    o.allow_shared_files = options.Bool("allow_shared_files", false);
    absl::StatusOr<fabric::FsyncPolicy> fsync =
        ParsePolicy(options.String("fsync", "batch"));
    if (!fsync.ok()) ThrowStatus(fsync.status());
    o.fsync = *fsync;
    o.fsync_interval = options.Duration("fsync_interval", o.fsync_interval);
    options.Read("max_bytes", &o.max_bytes, 1);
    o.push_timeout = options.Duration("push_timeout", o.push_timeout);
    o.lease = options.Duration("lease", o.lease);
    options.Read("max_attempts", &o.max_attempts, 1);
    options.Read("max_worker_crashes", &o.max_worker_crashes, 1);
    o.retry_backoff = options.Duration("retry_backoff", o.retry_backoff);
    o.max_retry_backoff =
        options.Duration("max_retry_backoff", o.max_retry_backoff);
    options.Read("max_batch", &o.max_batch, 1, 65536);
    py::object on_completed = options.Object("on_completed");
    options.Finish();

    std::shared_ptr<PyProducer> self(new PyProducer(node));
    if (!on_completed.is_none()) {
      if (!PyCallable_Check(on_completed.ptr())) {
        ThrowType("on_completed must be callable");
      }
      SharedPy callback = Share(on_completed);
      const void* owner = self.get();
      o.on_completed = [callback, owner](const fabric::Completion& c) {
        DeliverCompletion(callback, owner, c);
      };
    }
    self->spool_dir_ = o.spool_dir;
    self->queue_ = o.queue;
    self->push_timeout_ = o.push_timeout;
    self->Start([&o](fabric::Node& n) {
      return fabric::Producer::Create(n, std::move(o));
    });
    return self;
  }

  // The watcher thread uses the producer: stopped first.
  ~PyProducer() override {
    if (inherited()) {
      (void)watcher_.release();  // its lock and thread are the parent's
      return;
    }
    StopWatcher();  // its thread uses the producer
  }

  void CloseNoGil() override {
    PatternObject::CloseNoGil();
    StopWatcher();
  }

  // Appends a task, waiting in slices for room up to `timeout` (default
  // push_timeout).
  fabric::TaskId Append(py::handle body, py::handle headers,
                        py::handle timeout) {
    fabric::Producer& producer = object();
    Body b(body, "body");
    const fabric::Headers h = ToHeaders(headers);
    const absl::Duration total = ToDuration(timeout, "timeout", push_timeout_);
    const absl::Time deadline = absl::Now() + total;
    for (;;) {
      const absl::Duration left = deadline - absl::Now();
      const bool last = left <= kSlice;
      absl::StatusOr<fabric::TaskId> id;
      {
        ReleaseGil nogil;
        id = producer.PushAsyncWithin(
            b.view(), h, std::max(absl::ZeroDuration(), std::min(left, kSlice)),
            last, total);
      }
      if (id.ok()) return *id;
      if (id.status().code() != absl::StatusCode::kDeadlineExceeded || last) {
        ThrowStatus(id.status());
      }
      CheckSignals();
    }
  }

  fabric::TaskId Push(py::handle body, py::handle headers, py::handle timeout) {
    const fabric::TaskId id = Append(body, headers, timeout);
    if (!spool_dir_.empty()) WaitConfirmed(id.seq, py::none());
    return id;
  }

  py::object TryPush(py::handle body, py::handle headers) {
    fabric::Producer& producer = object();
    Body b(body, "body");
    const fabric::Headers h = ToHeaders(headers);
    absl::StatusOr<fabric::TaskId> id;
    {
      ReleaseGil nogil;
      id = producer.PushAsyncWithin(b.view(), h, absl::ZeroDuration(),
                                    /*last_try=*/false);
    }
    if (id.ok()) return py::cast(*id);
    if (id.status().code() == absl::StatusCode::kDeadlineExceeded) {
      return py::none();
    }
    ThrowStatus(id.status());
  }

  void WaitConfirmed(uint64_t seq, py::handle timeout) {
    fabric::Producer& producer = object();
    WaitOrRaise(
        timeout,
        [&](absl::Duration slice) {
          return producer.WaitConfirmed(seq, slice);
        },
        absl::StrCat("task ", seq, " not confirmed"));
  }

  void WaitCompleted(py::handle timeout) {
    fabric::Producer& producer = object();
    const absl::Duration t =
        ToDuration(timeout, "timeout", absl::InfiniteDuration());
    absl::Status s;
    const bool done = WaitInSlices(t, [&](absl::Duration slice) {
      s = producer.WaitCompleted(slice);
      return s.code() != absl::StatusCode::kDeadlineExceeded;
    });
    if (!done) {
      const fabric::ProducerStats st = producer.Stats();
      s = absl::DeadlineExceededError(absl::StrCat(
          "tasks of queue ", queue_, " not all completed within ",
          absl::FormatDuration(t), " (", st.in_flight, " in flight, ",
          st.backlog, " waiting for a worker, ", st.workers, " worker(s))"));
    }
    if (!s.ok()) ThrowStatus(s);
  }

  // Resolves asyncio `future` (on `loop`) once task `seq` is confirmed.
  void WatchConfirmed(uint64_t seq, py::object loop, py::object future) {
    fabric::Producer& producer = object();
    if (producer.Refused(seq)) {
      future.attr("set_exception")(
          StatusToException(producer.WaitConfirmed(seq, absl::ZeroDuration())));
      return;
    }
    if (producer.confirmed_seq() >= seq) {
      future.attr("set_result")(py::none());
      return;
    }
    Watcher& w = *watcher_;
    std::unique_lock<std::mutex> lock(w.mu);
    if (w.stop) {
      lock.unlock();
      future.attr("set_exception")(
          StatusToException(absl::CancelledError("producer is closed")));
      return;
    }
    w.watches.emplace(seq, Watch{Share(std::move(loop)), Share(future)});
    if (!w.thread.joinable()) {
      SignalsBlocked blocked;
      w.thread = std::thread([this] { WatchLoop(); });
    }
    w.wake.notify_one();
  }

  uint64_t confirmed_seq() { return object().confirmed_seq(); }
  std::string producer_id() { return object().producer_id().ToHex(); }
  fabric::ProducerStats Stats() { return object().Stats(); }

  std::vector<fabric::DeadLetter> DeadLetters() {
    fabric::Producer& producer = object();
    absl::StatusOr<std::vector<fabric::DeadLetter>> dead;
    {
      ReleaseGil nogil;
      dead = producer.DeadLetters();
    }
    if (!dead.ok()) ThrowStatus(dead.status());
    return std::move(*dead);
  }

 private:
  struct Watch {
    SharedPy loop;
    SharedPy future;
  };

  explicit PyProducer(std::shared_ptr<PyNode> node)
      : PatternObject(kEndpoints, std::move(node), "this Producer", nullptr) {}

  // The confirm watcher thread: waits for the highest watched seq and hands
  // each confirmed (or failed) watch to the bridge thread.
  void WatchLoop() {
    Watcher& w = *watcher_;
    for (;;) {
      uint64_t target = 0;
      {
        std::unique_lock<std::mutex> lock(w.mu);
        w.wake.wait(lock, [&w] { return w.stop || !w.watches.empty(); });
        if (w.watches.empty()) return;  // stopping
        target = w.watches.rbegin()->first;
      }
      const absl::Status s = object_->WaitConfirmed(target, kSlice);
      const uint64_t confirmed = object_->confirmed_seq();
      // A task refused for a full disk fails alone (with why); the others
      // are still confirmed or failed as usual.
      const bool target_refused = object_->Refused(target);
      std::vector<Watch> ok;
      std::vector<Watch> failed;
      std::vector<Watch> refused;
      {
        std::lock_guard<std::mutex> lock(w.mu);
        while (!w.watches.empty() && w.watches.begin()->first <= confirmed) {
          auto first = w.watches.begin();
          (object_->Refused(first->first) ? refused : ok)
              .push_back(std::move(first->second));
          w.watches.erase(first);
        }
        if (target_refused) {
          auto range = w.watches.equal_range(target);
          for (auto it = range.first; it != range.second; ++it) {
            refused.push_back(std::move(it->second));
          }
          w.watches.erase(range.first, range.second);
        }
        const bool fatal = !s.ok() && !target_refused &&
                           s.code() != absl::StatusCode::kDeadlineExceeded;
        if (fatal || w.stop) {
          for (auto& [seq, watch] : w.watches)
            failed.push_back(std::move(watch));
          w.watches.clear();
        }
      }
      if (ok.empty() && failed.empty() && refused.empty()) continue;
      const absl::Status why =
          s.ok() || s.code() == absl::StatusCode::kDeadlineExceeded ||
                  target_refused
              ? absl::CancelledError("producer is closed")
              : s;
      const absl::Status full = absl::ResourceExhaustedError(
          "spool disk full: the task's spool write was refused");
      Bridge::PostWithGil([ok = std::move(ok), failed = std::move(failed),
                           refused = std::move(refused), why,
                           full](Bridge::Batch& batch) {
        for (const Watch& x : ok) {
          batch.Resolve(x.loop->get(), x.future->get(), py::none(), false);
        }
        for (const Watch& x : refused) {
          batch.Resolve(x.loop->get(), x.future->get(), StatusToException(full),
                        true);
        }
        for (const Watch& x : failed) {
          batch.Resolve(x.loop->get(), x.future->get(), StatusToException(why),
                        true);
        }
      });
    }
  }

  // Stops the watcher thread and joins it (once, whoever calls).
  void StopWatcher() {
    Watcher& w = *watcher_;
    std::thread thread;
    {
      std::lock_guard<std::mutex> lock(w.mu);
      w.stop = true;
      w.wake.notify_one();
      thread = std::move(w.thread);
    }
    if (!thread.joinable()) return;
    if (thread.get_id() == std::this_thread::get_id()) {
      thread.detach();
    } else {
      WithoutGil([&thread] { thread.join(); });
    }
  }

  // The confirm watcher's state, on the heap so that a forked child can
  // leak it whole: its lock and thread belong to the parent.
  struct Watcher {
    std::mutex mu;
    std::condition_variable wake;
    std::multimap<uint64_t, Watch> watches;
    bool stop = false;
    std::thread thread;
  };

  std::string spool_dir_;
  std::string queue_;
  absl::Duration push_timeout_;
  std::unique_ptr<Watcher> watcher_ = std::make_unique<Watcher>();
};

// ------------------------------------------------------------------ worker

class PyWorker : public PatternObject<fabric::Worker> {
 public:
  static std::shared_ptr<PyWorker> Create(std::shared_ptr<PyNode> node,
                                          py::object handler, py::dict dict) {
    Options options(std::move(dict));
    fabric::WorkerOptions o;
    o.queues = options.Strings("queues");
    options.Read("concurrency", &o.concurrency, 1, 1024);
    options.Read("prefetch", &o.prefetch, 1, 65536);
    o.dedup_window = options.Duration("dedup_window", o.dedup_window);
    options.Read("dedup_max", &o.dedup_max, 0);
    o.drain_timeout = options.Duration("drain_timeout", o.drain_timeout);
    options.Finish();
    if (!PyCallable_Check(handler.ptr())) {
      ThrowType("the worker's handler must be callable");
    }
    std::shared_ptr<PyWorker> self(new PyWorker(node));
    SharedPy callback = Share(std::move(handler));
    const void* owner = self.get();
    o.handler = [callback, owner](const fabric::Task& task,
                                  fabric::TaskContext& ctx) {
      return RunHandler(callback, owner, task, ctx);
    };
    self->Start([&o](fabric::Node& n) {
      return fabric::Worker::Create(n, std::move(o));
    });
    return self;
  }

  fabric::WorkerStats Stats() { return object().Stats(); }

 private:
  explicit PyWorker(std::shared_ptr<PyNode> node)
      : PatternObject(kHandlers, std::move(node), "this Worker",
                      "Worker.close() called from its own handler: it would "
                      "wait for itself; return from the handler and close the "
                      "worker elsewhere") {}
};

std::string TaskIdRepr(const fabric::TaskId& id) {
  return absl::StrCat("TaskId('", id.producer.ToHex(), "', ", id.seq, ")");
}

}  // namespace

void BindWorkQueue(py::module_& m) {
  py::class_<fabric::TaskId>(m, "TaskId")
      .def(py::init([](const std::string& producer, uint64_t seq) {
             absl::StatusOr<fabric::NodeId> id =
                 fabric::NodeId::FromHex(producer);
             if (!id.ok()) ThrowStatus(id.status());
             return fabric::TaskId{*id, seq};
           }),
           py::arg("producer"), py::arg("seq"))
      .def_property_readonly(
          "producer",
          [](const fabric::TaskId& id) { return id.producer.ToHex(); })
      .def_readonly("seq", &fabric::TaskId::seq)
      .def("__str__", &fabric::TaskId::ToString)
      .def("__repr__", &TaskIdRepr)
      .def("__eq__",
           [](const fabric::TaskId& a, py::handle b) {
             if (!py::isinstance<fabric::TaskId>(b)) return false;
             return a == b.cast<const fabric::TaskId&>();
           })
      .def("__hash__", [](const fabric::TaskId& id) {
        return py::hash(py::make_tuple(
            py::bytes(std::string(id.producer.bytes())), id.seq));
      });

  py::class_<PyTask>(m, "Task")
      .def_readonly("id", &PyTask::id)
      .def_property_readonly("queue",
                             [](const PyTask& t) { return ToStr(t.queue); })
      .def_property_readonly(
          "headers", [](const PyTask& t) { return FromHeaders(t.headers); })
      .def_readonly("body", &PyTask::body)
      .def_readonly("attempt", &PyTask::attempt)
      .def_readonly("redelivered", &PyTask::redelivered)
      .def("extend_lease", &PyTask::ExtendLease, py::arg("seconds"))
      .def("__repr__", [](const PyTask& t) {
        return absl::StrCat("<Task ", t.id.ToString(), " queue=", t.queue,
                            " attempt=", t.attempt,
                            t.redelivered ? " redelivered" : "", ">");
      });

  py::class_<fabric::Completion>(m, "Completion")
      .def_readonly("id", &fabric::Completion::id)
      .def_property_readonly("kind",
                             [](const fabric::Completion& c) {
                               return c.kind == fabric::Completion::Kind::kAcked
                                          ? "acked"
                                          : "dead_lettered";
                             })
      .def_readonly("attempts", &fabric::Completion::attempts)
      .def_property_readonly(
          "reason", [](const fabric::Completion& c) { return ToStr(c.reason); })
      .def_property_readonly("worker",
                             [](const fabric::Completion& c) -> py::object {
                               if (c.worker.IsZero()) return py::none();
                               return py::str(c.worker.ToHex());
                             })
      .def("__repr__", [](const fabric::Completion& c) {
        return absl::StrCat(
            "<Completion ", c.id.ToString(), " ",
            c.kind == fabric::Completion::Kind::kAcked ? "acked"
                                                       : "dead_lettered",
            " attempts=", c.attempts,
            c.reason.empty() ? "" : absl::StrCat(" reason=", c.reason), ">");
      });

  py::class_<fabric::DeadLetter>(m, "DeadLetter")
      .def_property_readonly(
          "seq", [](const fabric::DeadLetter& d) { return d.task.seq; })
      .def_property_readonly("headers",
                             [](const fabric::DeadLetter& d) {
                               return FromHeaders(d.task.headers);
                             })
      .def_property_readonly(
          "body",
          [](const fabric::DeadLetter& d) { return ToBytes(d.task.body); })
      .def_property_readonly("enqueued",
                             [](const fabric::DeadLetter& d) {
                               return ToDatetime(d.task.enqueued);
                             })
      .def_readonly("attempts", &fabric::DeadLetter::attempts)
      .def_property_readonly(
          "reason", [](const fabric::DeadLetter& d) { return ToStr(d.reason); })
      .def_property_readonly(
          "died",
          [](const fabric::DeadLetter& d) { return ToDatetime(d.died); })
      .def("__repr__", [](const fabric::DeadLetter& d) {
        return absl::StrCat("<DeadLetter seq=", d.task.seq,
                            " attempts=", d.attempts, " reason=", d.reason,
                            ">");
      });

  py::class_<fabric::ProducerStats>(m, "ProducerStats")
      .def_readonly("pushed", &fabric::ProducerStats::pushed)
      .def_readonly("confirmed", &fabric::ProducerStats::confirmed)
      .def_readonly("recovered", &fabric::ProducerStats::recovered)
      .def_readonly("dispatched", &fabric::ProducerStats::dispatched)
      .def_readonly("redelivered", &fabric::ProducerStats::redelivered)
      .def_readonly("started", &fabric::ProducerStats::started)
      .def_readonly("returned", &fabric::ProducerStats::returned)
      .def_readonly("acked", &fabric::ProducerStats::acked)
      .def_readonly("late_acks", &fabric::ProducerStats::late_acks)
      .def_readonly("retries", &fabric::ProducerStats::retries)
      .def_readonly("lease_expired", &fabric::ProducerStats::lease_expired)
      .def_readonly("worker_lost", &fabric::ProducerStats::worker_lost)
      .def_readonly("worker_crashes", &fabric::ProducerStats::worker_crashes)
      .def_readonly("dead_lettered", &fabric::ProducerStats::dead_lettered)
      .def_readonly("rejected_pushes", &fabric::ProducerStats::rejected_pushes)
      .def_readonly("refused", &fabric::ProducerStats::refused)
      .def_readonly("malformed", &fabric::ProducerStats::malformed)
      .def_readonly("in_flight", &fabric::ProducerStats::in_flight)
      .def_readonly("backlog", &fabric::ProducerStats::backlog)
      .def_readonly("workers", &fabric::ProducerStats::workers);

  py::class_<fabric::WorkerStats>(m, "WorkerStats")
      .def_readonly("received", &fabric::WorkerStats::received)
      .def_readonly("acked", &fabric::WorkerStats::acked)
      .def_readonly("retried", &fabric::WorkerStats::retried)
      .def_readonly("rejected", &fabric::WorkerStats::rejected)
      .def_readonly("released", &fabric::WorkerStats::released)
      .def_readonly("duplicates", &fabric::WorkerStats::duplicates)
      .def_readonly("malformed", &fabric::WorkerStats::malformed)
      .def_readonly("handler_errors", &fabric::WorkerStats::handler_errors)
      .def_readonly("running", &fabric::WorkerStats::running)
      .def_readonly("waiting", &fabric::WorkerStats::waiting);

  py::class_<PyProducer, std::shared_ptr<PyProducer>>(m, "Producer")
      .def(py::init(&PyProducer::Create), py::arg("node"), py::arg("options"))
      .def("push", &PyProducer::Push, py::arg("body"),
           py::arg("headers") = py::none(), py::arg("timeout") = py::none())
      .def("push_nowait", &PyProducer::Append, py::arg("body"),
           py::arg("headers") = py::none(), py::arg("timeout") = py::none())
      .def("try_push", &PyProducer::TryPush, py::arg("body"),
           py::arg("headers") = py::none())
      .def("wait_confirmed", &PyProducer::WaitConfirmed, py::arg("seq"),
           py::arg("timeout") = py::none())
      .def("wait_completed", &PyProducer::WaitCompleted,
           py::arg("timeout") = py::none())
      .def("watch_confirmed", &PyProducer::WatchConfirmed, py::arg("seq"),
           py::arg("loop"), py::arg("future"))
      .def_property_readonly("confirmed_seq", &PyProducer::confirmed_seq)
      .def_property_readonly("producer_id", &PyProducer::producer_id)
      .def("stats", &PyProducer::Stats)
      .def("dead_letters", &PyProducer::DeadLetters)
      .def("close", &PyProducer::Close);

  py::class_<PyWorker, std::shared_ptr<PyWorker>>(m, "Worker")
      .def(py::init(&PyWorker::Create), py::arg("node"), py::arg("handler"),
           py::arg("options"))
      .def("stats", &PyWorker::Stats)
      .def("close", &PyWorker::Close);

  m.def(
      "scan_dead_letters",
      [](const std::string& dir) {
        absl::StatusOr<std::vector<fabric::DeadLetter>> dead;
        {
          ReleaseGil nogil;
          dead = fabric::Spool::ScanDead(dir);
        }
        if (!dead.ok()) ThrowStatus(dead.status());
        return std::move(*dead);
      },
      py::arg("spool_dir"));
}

}  // namespace fabricmq
