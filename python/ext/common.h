// SPDX-License-Identifier: Apache-2.0
// Shared pieces of the `fabricmq._fabric` extension: turning statuses into
// the Python exceptions of `fabricmq.errors`, converting bodies, headers and
// durations, waiting in interruptible slices, and the registry of live
// objects that the exit hook closes. docs/python.md describes the rules
// they implement.
#ifndef PYTHON_EXT_COMMON_H_
#define PYTHON_EXT_COMMON_H_

#include <pybind11/pybind11.h>
// Every translation unit sees the same type casters (pybind11 requires it).
#include <pybind11/stl.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fabric/codec/control.h"

namespace fabricmq {

namespace py = pybind11;

// ------------------------------------------------------------------ errors

// The Python types that `fabricmq/__init__.py` hands over at import
// (`_fabric._init`): the exception class per status code, `Retry`,
// `Reject`, `RpcError`, `UsageError`, `ForkedError` and the helpers named in
// module.cc. REQUIRES for every function here: the GIL is held.
void SetPythonTypes(py::dict types);
// Returns a registered type or helper; raises RuntimeError if the package
// did not register it (the extension imported on its own).
py::object PythonType(const char* name);

// Returns the `fabricmq.Error` subclass instance for a non-OK status.
py::object StatusToException(const absl::Status& status);
// Raises the exception for `status` in Python (by throwing
// `py::error_already_set`). REQUIRES: !status.ok().
[[noreturn]] void ThrowStatus(const absl::Status& status);
// Raises `fabricmq.UsageError(message)`: a call the binding refuses because
// it would deadlock or act on a finished object.
[[noreturn]] void ThrowUsage(const std::string& message);
// Raises `fabricmq.ForkedError` for an object made before this process was
// forked.
[[noreturn]] void ThrowForked(const char* what);
// Raises `TypeError(message)`.
[[noreturn]] void ThrowType(const std::string& message);

// -------------------------------------------------------------- conversion

// A body given by Python: any bytes-like object, or a str (sent as UTF-8).
// `view()` stays valid while the Body and the object it came from live,
// with or without the GIL: immutable objects (bytes, str) are viewed in
// place, mutable ones (bytearray, memoryview, ...) are copied, since another
// thread could change them while the GIL is released.
// Thread safety: thread-compatible; construct it with the GIL held.
class Body {
 public:
  // Raises TypeError for anything else, naming `what` (e.g. "body").
  Body(py::handle object, const char* what);
  absl::string_view view() const { return view_; }
  std::string Take() &&;

 private:
  std::string storage_;
  absl::string_view view_;
};

// dict[str, str] (or None) to headers; TypeError for other keys or values.
fabric::Headers ToHeaders(py::handle object);
py::dict FromHeaders(const fabric::Headers& headers);
py::bytes ToBytes(absl::string_view data);
py::str ToStr(absl::string_view data);  // UTF-8, invalid bytes replaced

// A duration in seconds (int or float) or a `datetime.timedelta`. Raises
// `fabricmq.InvalidArgument` for negative or NaN values and TypeError for
// other types. None gives `if_none`.
absl::Duration ToDuration(py::handle object, const char* what,
                          absl::Duration if_none);
double ToSeconds(absl::Duration d);  // inf for an infinite duration
// A `datetime` in UTC for `t`.
py::object ToDatetime(absl::Time t);
// Seconds since the epoch from a `datetime` (naive ones are local time).
absl::Time FromDatetime(py::handle dt);

// Reads options from the dict the Python layer builds. Every key must be
// read; `Finish` raises TypeError naming any that was not (a typo).
// Thread safety: thread-compatible; every method REQUIRES the GIL.
class Options {
 public:
  template <typename T>
  static constexpr int64_t LargestOf() {
    return static_cast<uint64_t>(std::numeric_limits<T>::max()) >
                   static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
               ? std::numeric_limits<int64_t>::max()
               : static_cast<int64_t>(std::numeric_limits<T>::max());
  }

  explicit Options(py::dict dict) : dict_(std::move(dict)) {}
  bool Has(const char* key);  // present and not None
  std::string String(const char* key, std::string if_none);
  int64_t Int(const char* key, int64_t if_none, int64_t min, int64_t max);
  // Reads an integer option into `*field`, which keeps its value when the
  // option is absent; like Int, in [min, max], where `max` defaults to the
  // largest value both T and int64_t hold.
  template <typename T>
  void Read(const char* key, T* field, int64_t min,
            int64_t max = LargestOf<T>()) {
    *field = static_cast<T>(Int(key, static_cast<int64_t>(*field), min, max));
  }
  bool Bool(const char* key, bool if_none);
  absl::Duration Duration(const char* key, absl::Duration if_none);
  std::vector<std::string> Strings(const char* key);  // str or iterable
  fabric::Headers HeaderMap(const char* key);
  py::object Object(const char* key);  // None when absent
  void Finish();

 private:
  py::handle Get(const char* key);
  py::dict dict_;
  std::vector<std::string> seen_;
};

// ------------------------------------------------------------ blocking work

// Waits in slices of at most 100 ms: calls `step(slice)` with the GIL
// released until it returns true; between slices takes the GIL back and
// runs Python's signal handlers, so Ctrl-C raises `KeyboardInterrupt` (by
// throwing `py::error_already_set`) within a slice. Returns false when
// `timeout` passed first. REQUIRES: the GIL is held.
bool WaitInSlices(absl::Duration timeout,
                  const std::function<bool(absl::Duration)>& step);
// Runs a fabric wait (`wait(slice)`, which returns kDeadlineExceeded when
// its slice passes) in slices for up to `timeout` (seconds, a timedelta or
// None for no limit), as WaitInSlices does. Raises the error the wait ends
// with, or kDeadlineExceeded "<what> within <timeout>" when `timeout`
// passes. REQUIRES: the GIL is held.
void WaitOrRaise(py::handle timeout,
                 const std::function<absl::Status(absl::Duration)>& wait,
                 const std::string& what);
// Raises the pending exception of a signal handler, if any.
void CheckSignals();

// Blocks SIGINT and SIGTERM in this thread while alive, so that threads it
// starts (fabric's engine, handler and writer threads) never take those
// signals: Python must see them on its main thread.
// Thread safety: affects only the thread that made it; not movable.
class SignalsBlocked {
 public:
  SignalsBlocked();
  ~SignalsBlocked();
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;

 private:
  unsigned char old_[128];  // a sigset_t
};

// Runs `fn` with the GIL released if this thread holds it.
void WithoutGil(const std::function<void()>& fn);

// ---------------------------------------------------------- live objects

// A binding object that owns fabric threads or sockets. The exit hook
// closes every live one (lowest rank first: handlers before what they hang
// on), and in a forked child every one made before the fork refuses to be
// used and is leaked instead of closed: its threads exist only in the
// parent. Thread safety: thread-safe.
class Closable : public std::enable_shared_from_this<Closable> {
 public:
  enum Rank { kHandlers = 0, kEndpoints = 1, kNodes = 2 };
  explicit Closable(Rank rank);
  virtual ~Closable() = default;
  Closable(const Closable&) = delete;
  Closable& operator=(const Closable&) = delete;

  // Closes; idempotent. Called without the GIL (it may join threads that
  // wait for it).
  virtual void CloseNoGil() = 0;
  // True for an object inherited through fork(): never touch it.
  bool inherited() const;
  // Raises ForkedError for an inherited object.
  void CheckNotForked(const char* what) const;
  Rank rank() const { return rank_; }

  // Adds `object` to the registry of live objects (weakly).
  static void Register(const std::shared_ptr<Closable>& object);
  // Closes every live object, lowest rank first and newest first within a
  // rank; the exit hook's first step. REQUIRES: the GIL is not held.
  static void CloseAll();
  // In a forked child: a fresh registry lock (a parent's thread may have
  // held it at the fork). Called by the fork handler.
  static void ResetAfterFork();

 private:
  const Rank rank_;
  const uint64_t fork_generation_;
};

// Marks this thread as running a callback of `owner` while alive, so that
// closing `owner` from its own callback raises UsageError instead of
// waiting for itself. Thread safety: the mark is thread-local.
class CallbackScope {
 public:
  explicit CallbackScope(const void* owner);
  ~CallbackScope();
  CallbackScope(const CallbackScope&) = delete;
  CallbackScope& operator=(const CallbackScope&) = delete;
  // True while this thread runs a callback of `owner`.
  static bool Inside(const void* owner);
  // True while this thread runs any callback.
  static bool InsideAny();

 private:
  const void* previous_;
};

}  // namespace fabricmq

#endif  // PYTHON_EXT_COMMON_H_
