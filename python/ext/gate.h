// SPDX-License-Identifier: Apache-2.0
// The one way fabric's threads enter Python, and the binding's bridge
// thread. docs/python.md ("Threads and the GIL") explains why:
//   - a thread that takes the GIL once the interpreter is finalizing is
//     ended by CPython (3.8-3.13) with a forced unwind, which aborts a C++
//     process; so entries go through a gate that the exit hook closes, and
//     the hook waits until no fabric thread is inside Python;
//   - a fabric thread keeps one PyThreadState for its whole life instead of
//     making a new one per call (pybind11's default), which is about 10x
//     cheaper per task; it is freed when the thread ends;
//   - results produced on the node's engine thread (CallAsync) must not run
//     Python there: the bridge thread takes them to Python instead.
#ifndef PYTHON_EXT_GATE_H_
#define PYTHON_EXT_GATE_H_

#include <pybind11/pybind11.h>

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/time/time.h"

namespace fabricmq {

namespace py = pybind11;

// Thread safety: thread-safe; every function may be called from any thread.
class Gate {
 public:
  // Holds the gate and the GIL while alive, if the gate is open. A thread
  // that already holds the GIL (nested use) keeps it and just counts as
  // inside.
  class Entry {
   public:
    Entry();
    ~Entry();
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    // False when the gate is closed: the caller must not touch Python.
    bool ok() const { return entered_; }

   private:
    bool entered_ = false;
    int mode_ = 0;  // how the GIL was taken (gate.cc)
    int gil_state_ = 0;
  };

  // Refuses all later entries (the exit hook's second step).
  static void Close();
  // Waits until no thread is inside, nor taking the GIL back (see
  // BeginTakingGilBack), up to `timeout`. Returns true if none is.
  // REQUIRES: the caller does not hold the GIL and is not inside.
  static bool WaitIdle(absl::Duration timeout);
  static bool IsOpen();
  // Thread states kept by fabric threads now (for tests: they must follow
  // the number of live fabric threads, not grow).
  static int KeptThreadStates();
  // Counts fork()s; objects remember the value they were made under.
  static uint64_t ForkGeneration();
  // Installs the pthread_atfork handler that resets the gate in a child.
  static void InstallForkHandler();
};

// Releases the GIL while alive, like py::gil_scoped_release, around a C++
// call made from a Python thread. Taking it back after the exit hook closed
// the gate could let a daemon thread into a finalizing interpreter, which
// ends it with a forced unwind (an abort in C++ frames): every thread but
// the one running the exit hook parks instead, for good, and ends with the
// process. REQUIRES: the GIL is held. Thread safety: this thread only.
class ReleaseGil {
 public:
  ReleaseGil();
  ~ReleaseGil();
  ReleaseGil(const ReleaseGil&) = delete;
  ReleaseGil& operator=(const ReleaseGil&) = delete;

 private:
  PyThreadState* state_;
};

// Brackets taking the GIL back on a Python thread that released it (as
// ReleaseGil does): the first parks this thread for good if the exit hook
// has closed the gate (and this is not its thread), else counts it until
// the second, so that the hook waits until it holds the GIL.
void BeginTakingGilBack();
void EndTakingGilBack();

// Python objects held by C++ code that may drop them on any thread: the
// last reference is released at once by a thread holding the GIL, else on
// the bridge thread (never on an engine thread), or leaked once the gate
// is closed (a decref during finalization crashes).
class PyHolder {
 public:
  explicit PyHolder(py::object object);  // REQUIRES: the GIL is held
  ~PyHolder();
  PyHolder(const PyHolder&) = delete;
  PyHolder& operator=(const PyHolder&) = delete;
  // REQUIRES: the GIL is held.
  py::handle get() const { return object_; }

 private:
  PyObject* object_;
  uint64_t fork_generation_;
};
using SharedPy = std::shared_ptr<PyHolder>;
// REQUIRES: the GIL is held.
inline SharedPy Share(py::object object) {
  return std::make_shared<PyHolder>(std::move(object));
}

// The bridge thread: one per process, started on first use.
class Bridge {
 public:
  // Collects, per event loop, asyncio results to hand over with one
  // `call_soon_threadsafe` per loop and batch.
  class Batch {
   public:
    // Queues `resolve(future, value, is_error)` on `loop`. REQUIRES: GIL.
    void Resolve(py::handle loop, py::handle future, py::object value,
                 bool is_error);
    void Flush();  // REQUIRES: GIL

   private:
    struct Item {
      py::object loop;
      py::list items;
    };
    std::vector<Item> loops_;
  };

  // Runs `fn` on the bridge thread inside the gate, with the GIL; dropped
  // (unrun) once the gate is closed. Never blocks.
  static void PostWithGil(std::function<void(Batch&)> fn);
  // Runs `fn` on the bridge thread without the GIL (e.g. to destroy an
  // object whose last reference died on one of its own threads).
  static void PostWithoutGil(std::function<void()> fn);
};

}  // namespace fabricmq

#endif  // PYTHON_EXT_GATE_H_
