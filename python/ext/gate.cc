// SPDX-License-Identifier: Apache-2.0
// The gate, kept thread states and the bridge thread (gate.h). Plain
// std::mutex rather than absl::Mutex: a forked child must be able to
// replace a lock that a vanished thread held at fork time, so each lock
// lives behind a pointer that the child swaps for a fresh one (the old one
// is leaked on purpose).
#include "python/ext/gate.h"

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include "python/ext/common.h"

namespace fabricmq {
namespace {

struct GateState {
  std::mutex* mu = new std::mutex;
  std::condition_variable* idle = new std::condition_variable;
  bool closed = false;          // guarded by mu; mirrored in `exiting`
  std::thread::id exit_thread;  // the thread that closed the gate
  int inside = 0;
  // The GIL-release path (ReleaseGil) is taken on every blocking call, so
  // it uses atomics, not `mu`: `exiting` is set (seq_cst) when the gate
  // closes; `reacquiring` counts Python threads between deciding to take
  // the GIL back and having it. A thread increments, then reads
  // `exiting`; Close sets `exiting`, then waits for `reacquiring`: with
  // sequentially consistent order one of the two sees the other, so no
  // thread is still waiting for the GIL when finalization begins.
  std::atomic<bool> exiting{false};
  std::atomic<int> reacquiring{0};
  std::atomic<uint64_t> generation{0};
  std::atomic<int> kept{0};
};

GateState& State() {
  static GateState* state = new GateState;  // never destroyed: threads may
  return *state;                            // outlive static destructors
}

// How an Entry took the GIL.
enum Mode { kNested = 0, kKept = 1, kEnsured = 2 };

// The thread state a fabric thread keeps for its life. Freed at thread exit
// (through the gate), or leaked when the gate is closed: finalization frees
// every thread state itself.
struct KeptState {
  PyThreadState* ts = nullptr;
  uint64_t generation = 0;
  ~KeptState() {
    if (ts == nullptr) return;
    GateState& s = State();
    {
      std::lock_guard<std::mutex> lock(*s.mu);
      if (s.closed || generation != s.generation.load()) return;
      s.inside++;
    }
    PyEval_RestoreThread(ts);
    // The count of the state is 1 (from its PyGILState_Ensure): releasing
    // clears and deletes it, and drops the GIL.
    PyGILState_Release(PyGILState_UNLOCKED);
    ts = nullptr;
    s.kept--;
    std::lock_guard<std::mutex> lock(*s.mu);
    if (--s.inside == 0 && s.reacquiring == 0) s.idle->notify_all();
  }
};
thread_local KeptState kept_state;

// ------------------------------------------------------------------ bridge

struct BridgeState {
  std::mutex* mu = new std::mutex;
  std::condition_variable* wake = new std::condition_variable;
  bool started = false;
  std::deque<std::function<void(Bridge::Batch&)>> with_gil;
  std::deque<std::function<void()>> without_gil;
};

BridgeState& Bridged() {
  static BridgeState* state = new BridgeState;
  return *state;
}

void RunWithGil(std::deque<std::function<void(Bridge::Batch&)>>& work) {
  Gate::Entry entry;
  if (!entry.ok()) {
    // Exiting: the closures hold Python references that must not be
    // released now. Leak them.
    new std::deque<std::function<void(Bridge::Batch&)>>(std::move(work));
    return;
  }
  Bridge::Batch batch;
  for (auto& fn : work) {
    try {
      fn(batch);
    } catch (py::error_already_set& e) {
      e.discard_as_unraisable("fabricmq bridge thread");
    }
  }
  try {
    batch.Flush();
  } catch (py::error_already_set& e) {
    e.discard_as_unraisable("fabricmq bridge thread");
  }
  work.clear();  // drops their references with the GIL held
}

void BridgeLoop() {
  BridgeState& b = Bridged();
  std::mutex* mu = b.mu;
  std::condition_variable* wake = b.wake;
  for (;;) {
    std::deque<std::function<void(Bridge::Batch&)>> with_gil;
    std::deque<std::function<void()>> without_gil;
    {
      std::unique_lock<std::mutex> lock(*mu);
      wake->wait(
          lock, [&b] { return !b.with_gil.empty() || !b.without_gil.empty(); });
      with_gil.swap(b.with_gil);
      without_gil.swap(b.without_gil);
    }
    for (auto& fn : without_gil) fn();
    without_gil.clear();
    if (!with_gil.empty()) RunWithGil(with_gil);
  }
}

// Starts the bridge thread if needed. REQUIRES: b.mu held.
void StartBridgeLocked(BridgeState& b) {
  if (b.started) return;
  b.started = true;
  SignalsBlocked blocked;
  std::thread(BridgeLoop).detach();  // lives as long as the process
}

void ChildAfterFork() {
  GateState& s = State();
  // Threads of the parent do not exist here: whatever they held is
  // abandoned with the old locks.
  s.mu = new std::mutex;
  s.idle = new std::condition_variable;
  s.closed = false;
  s.exit_thread = std::thread::id();
  s.inside = 0;
  s.exiting.store(false);
  s.reacquiring.store(0);
  s.kept = 0;
  s.generation++;
  Closable::ResetAfterFork();
  BridgeState& b = Bridged();
  b.mu = new std::mutex;
  b.wake = new std::condition_variable;
  b.started = false;
  // Their closures belong to the parent's objects: leak them.
  new std::deque<std::function<void(Bridge::Batch&)>>(std::move(b.with_gil));
  new std::deque<std::function<void()>>(std::move(b.without_gil));
  b.with_gil.clear();
  b.without_gil.clear();
}

}  // namespace

Gate::Entry::Entry() {
  GateState& s = State();
  {
    std::lock_guard<std::mutex> lock(*s.mu);
    if (s.closed) return;
    s.inside++;
  }
  entered_ = true;
  if (PyGILState_Check()) {
    mode_ = kNested;
    return;
  }
  const uint64_t generation = s.generation.load();
  if (kept_state.ts != nullptr && kept_state.generation == generation) {
    PyEval_RestoreThread(kept_state.ts);
    mode_ = kKept;
    return;
  }
  kept_state.ts = nullptr;  // from before a fork: not ours to free
  if (PyGILState_GetThisThreadState() != nullptr) {
    // A thread Python made (or one that made its own state): use its state
    // as Python does.
    gil_state_ = PyGILState_Ensure();
    mode_ = kEnsured;
    return;
  }
  PyGILState_Ensure();
  kept_state.ts = PyThreadState_Get();
  kept_state.generation = generation;
  s.kept++;
  mode_ = kKept;
}

Gate::Entry::~Entry() {
  if (!entered_) return;
  if (mode_ == kKept) {
    PyEval_SaveThread();
  } else if (mode_ == kEnsured) {
    PyGILState_Release(static_cast<PyGILState_STATE>(gil_state_));
  }
  GateState& s = State();
  std::lock_guard<std::mutex> lock(*s.mu);
  if (--s.inside == 0 && s.reacquiring == 0) s.idle->notify_all();
}

void Gate::Close() {
  GateState& s = State();
  std::lock_guard<std::mutex> lock(*s.mu);
  s.closed = true;
  s.exit_thread = std::this_thread::get_id();
  s.exiting.store(true);
}

void EndTakingGilBack() {
  GateState& s = State();
  if (s.reacquiring.fetch_sub(1) == 1 && s.exiting.load()) {
    std::lock_guard<std::mutex> lock(*s.mu);  // no lost wake-up
    s.idle->notify_all();
  }
}

void BeginTakingGilBack() {
  GateState& s = State();
  s.reacquiring.fetch_add(1);
  if (!s.exiting.load()) return;
  {
    std::lock_guard<std::mutex> lock(*s.mu);
    if (s.exit_thread == std::this_thread::get_id()) return;
  }
  EndTakingGilBack();
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));  // parked
}

ReleaseGil::ReleaseGil() : state_(PyEval_SaveThread()) {}

ReleaseGil::~ReleaseGil() {
  BeginTakingGilBack();
  PyEval_RestoreThread(state_);
  EndTakingGilBack();
}

bool Gate::WaitIdle(absl::Duration timeout) {
  GateState& s = State();
  std::unique_lock<std::mutex> lock(*s.mu);
  return s.idle->wait_for(lock, absl::ToChronoNanoseconds(timeout),
                          [&s] { return s.inside == 0 && s.reacquiring == 0; });
}

bool Gate::IsOpen() {
  GateState& s = State();
  std::lock_guard<std::mutex> lock(*s.mu);
  return !s.closed;
}

int Gate::KeptThreadStates() { return State().kept.load(); }

uint64_t Gate::ForkGeneration() { return State().generation.load(); }

void Gate::InstallForkHandler() {
  static std::once_flag once;
  std::call_once(once,
                 [] { pthread_atfork(nullptr, nullptr, &ChildAfterFork); });
}

PyHolder::PyHolder(py::object object)
    : object_(object.release().ptr()),
      fork_generation_(Gate::ForkGeneration()) {}

PyHolder::~PyHolder() {
  if (object_ == nullptr) return;
  if (fork_generation_ != Gate::ForkGeneration()) return;  // parent's
  if (PyGILState_Check()) {
    Py_DECREF(object_);
    return;
  }
  // A thread without the GIL, perhaps a node's engine thread (the last
  // reference to a handler can go with a closure there): a decref may run
  // Python code (__del__), so it is left to the bridge thread. Once the
  // gate is closed the bridge drops it: leaked rather than crash.
  PyObject* object = object_;
  Bridge::PostWithGil([object](Bridge::Batch&) { Py_DECREF(object); });
}

void Bridge::Batch::Resolve(py::handle loop, py::handle future,
                            py::object value, bool is_error) {
  for (Item& item : loops_) {
    if (item.loop.is(loop)) {
      item.items.append(py::make_tuple(future, std::move(value), is_error));
      return;
    }
  }
  Item item{py::reinterpret_borrow<py::object>(loop), py::list()};
  item.items.append(py::make_tuple(future, std::move(value), is_error));
  loops_.push_back(std::move(item));
}

void Bridge::Batch::Flush() {
  if (loops_.empty()) return;
  py::object resolve = PythonType("_resolve_futures");
  for (Item& item : loops_) {
    try {
      item.loop.attr("call_soon_threadsafe")(resolve, item.items);
    } catch (py::error_already_set& e) {
      // The loop was closed: nobody waits for these futures any more.
      if (!e.matches(PyExc_RuntimeError)) throw;
    }
  }
  loops_.clear();
}

void Bridge::PostWithGil(std::function<void(Batch&)> fn) {
  BridgeState& b = Bridged();
  std::lock_guard<std::mutex> lock(*b.mu);
  StartBridgeLocked(b);
  b.with_gil.push_back(std::move(fn));
  b.wake->notify_one();
}

void Bridge::PostWithoutGil(std::function<void()> fn) {
  BridgeState& b = Bridged();
  std::lock_guard<std::mutex> lock(*b.mu);
  StartBridgeLocked(b);
  b.without_gil.push_back(std::move(fn));
  b.wake->notify_one();
}

}  // namespace fabricmq
