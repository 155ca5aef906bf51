// SPDX-License-Identifier: Apache-2.0
#include "python/ext/common.h"

#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "python/ext/gate.h"

namespace fabricmq {
namespace {

// Registered by fabricmq/__init__.py; never released (module lifetime).
py::dict* types = nullptr;

constexpr absl::Duration kSlice = absl::Milliseconds(100);

std::string TypeName(py::handle object) {
  return std::string(Py_TYPE(object.ptr())->tp_name);
}

}  // namespace

// ------------------------------------------------------------------ errors

void SetPythonTypes(py::dict t) {
  if (types == nullptr) types = new py::dict();
  for (auto item : t) (*types)[item.first] = item.second;
}

py::object PythonType(const char* name) {
  if (types == nullptr || !types->contains(name)) {
    PyErr_Format(PyExc_RuntimeError,
                 "fabricmq._fabric: %s is not registered (import fabricmq, "
                 "not fabricmq._fabric)",
                 name);
    throw py::error_already_set();
  }
  return (*types)[name];
}

py::object StatusToException(const absl::Status& status) {
  py::object by_code = PythonType("errors_by_code");
  const int code = static_cast<int>(status.code());
  py::object cls = by_code.attr("get")(code, PythonType("Error"));
  return cls(py::str(std::string(status.message())), code);
}

void ThrowStatus(const absl::Status& status) {
  py::object exc = StatusToException(status);
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
  throw py::error_already_set();
}

void ThrowUsage(const std::string& message) {
  py::object exc = PythonType("UsageError")(message);
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
  throw py::error_already_set();
}

void ThrowForked(const char* what) {
  py::object exc = PythonType("ForkedError")(absl::StrCat(
      what,
      " was made before this process forked; fabric's threads do not "
      "survive fork(): make nodes and their objects after the fork (e.g. in "
      "gunicorn's post_fork)"));
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
  throw py::error_already_set();
}

void ThrowType(const std::string& message) { throw py::type_error(message); }

// -------------------------------------------------------------- conversion

Body::Body(py::handle object, const char* what) {
  PyObject* o = object.ptr();
  if (PyBytes_Check(o)) {
    view_ = absl::string_view(PyBytes_AS_STRING(o), PyBytes_GET_SIZE(o));
    return;
  }
  if (PyUnicode_Check(o)) {
    Py_ssize_t size = 0;
    const char* data = PyUnicode_AsUTF8AndSize(o, &size);
    if (data == nullptr) throw py::error_already_set();
    view_ = absl::string_view(data, static_cast<size_t>(size));
    return;
  }
  if (PyObject_CheckBuffer(o)) {
    Py_buffer buffer;
    if (PyObject_GetBuffer(o, &buffer, PyBUF_SIMPLE) != 0) {
      PyErr_Clear();
      // Not contiguous: let Python make the bytes.
      py::bytes b = py::reinterpret_steal<py::bytes>(PyBytes_FromObject(o));
      if (!b) throw py::error_already_set();
      storage_ = std::string(b);
    } else {
      storage_.assign(static_cast<const char*>(buffer.buf),
                      static_cast<size_t>(buffer.len));
      PyBuffer_Release(&buffer);
    }
    view_ = storage_;
    return;
  }
  ThrowType(
      absl::StrCat(what, " must be bytes-like or str, not ", TypeName(object)));
}

std::string Body::Take() && {
  if (view_.data() == storage_.data()) return std::move(storage_);
  return std::string(view_);
}

fabric::Headers ToHeaders(py::handle object) {
  fabric::Headers headers;
  if (object.is_none()) return headers;
  if (!PyDict_Check(object.ptr())) {
    ThrowType(absl::StrCat("headers must be a dict of str to str, not ",
                           TypeName(object)));
  }
  for (auto item : py::reinterpret_borrow<py::dict>(object)) {
    if (!PyUnicode_Check(item.first.ptr()) ||
        !PyUnicode_Check(item.second.ptr())) {
      ThrowType(absl::StrCat("headers must map str to str; got ",
                             TypeName(item.first), " to ",
                             TypeName(item.second)));
    }
    headers[item.first.cast<std::string>()] = item.second.cast<std::string>();
  }
  return headers;
}

py::dict FromHeaders(const fabric::Headers& headers) {
  py::dict d;
  for (const auto& [k, v] : headers) d[ToStr(k)] = ToStr(v);
  return d;
}

py::bytes ToBytes(absl::string_view data) {
  return py::bytes(data.data(), data.size());
}

py::str ToStr(absl::string_view data) {
  PyObject* s = PyUnicode_DecodeUTF8(
      data.data(), static_cast<Py_ssize_t>(data.size()), "replace");
  if (s == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(s);
}

absl::Duration ToDuration(py::handle object, const char* what,
                          absl::Duration if_none) {
  if (object.is_none()) return if_none;
  double seconds = 0;
  PyObject* o = object.ptr();
  if (PyBool_Check(o)) {
    ThrowType(absl::StrCat(what, " must be seconds or a timedelta, not bool"));
  } else if (PyFloat_Check(o) || PyLong_Check(o)) {
    seconds = PyFloat_AsDouble(o);
    if (seconds == -1.0 && PyErr_Occurred()) throw py::error_already_set();
  } else if (py::hasattr(object, "total_seconds")) {
    seconds = object.attr("total_seconds")().cast<double>();
  } else {
    ThrowType(absl::StrCat(what, " must be seconds or a timedelta, not ",
                           TypeName(object)));
  }
  if (std::isnan(seconds) || seconds < 0) {
    ThrowStatus(absl::InvalidArgumentError(
        absl::StrCat(what, " must not be negative")));
  }
  if (std::isinf(seconds)) return absl::InfiniteDuration();
  return absl::Seconds(seconds);
}

double ToSeconds(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return HUGE_VAL;
  return absl::ToDoubleSeconds(d);
}

py::object ToDatetime(absl::Time t) {
  static py::object* from_ts = nullptr;
  static py::object* utc = nullptr;
  if (from_ts == nullptr) {
    py::module_ datetime = py::module_::import("datetime");
    from_ts = new py::object(datetime.attr("datetime").attr("fromtimestamp"));
    utc = new py::object(datetime.attr("timezone").attr("utc"));
  }
  if (t == absl::InfinitePast() || t == absl::UnixEpoch()) return py::none();
  return (*from_ts)(absl::ToDoubleSeconds(t - absl::UnixEpoch()), *utc);
}

absl::Time FromDatetime(py::handle dt) {
  return absl::FromUnixSeconds(0) +
         absl::Seconds(dt.attr("timestamp")().cast<double>());
}

py::handle Options::Get(const char* key) {
  seen_.emplace_back(key);
  if (!dict_.contains(key)) return py::none();
  return dict_[key];
}

bool Options::Has(const char* key) {
  return dict_.contains(key) && !dict_[key].is_none();
}

std::string Options::String(const char* key, std::string if_none) {
  py::handle v = Get(key);
  if (v.is_none()) return if_none;
  if (PyUnicode_Check(v.ptr())) return v.cast<std::string>();
  if (PyBytes_Check(v.ptr())) return std::string(v.cast<py::bytes>());
  if (py::hasattr(v, "__fspath__")) {  // pathlib.Path for directories
    return py::str(v.attr("__fspath__")()).cast<std::string>();
  }
  ThrowType(absl::StrCat(key, " must be a str, not ", TypeName(v)));
}

int64_t Options::Int(const char* key, int64_t if_none, int64_t min,
                     int64_t max) {
  py::handle v = Get(key);
  if (v.is_none()) return if_none;
  if (!PyLong_Check(v.ptr()) || PyBool_Check(v.ptr())) {
    ThrowType(absl::StrCat(key, " must be an int, not ", TypeName(v)));
  }
  int overflow = 0;
  const long long n = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
  if (overflow != 0 || n < min || n > max) {
    ThrowStatus(absl::InvalidArgumentError(
        absl::StrCat(key, " must be in ", min, "..", max)));
  }
  return n;
}

bool Options::Bool(const char* key, bool if_none) {
  py::handle v = Get(key);
  if (v.is_none()) return if_none;
  return PyObject_IsTrue(v.ptr()) == 1;
}

absl::Duration Options::Duration(const char* key, absl::Duration if_none) {
  return ToDuration(Get(key), key, if_none);
}

std::vector<std::string> Options::Strings(const char* key) {
  py::handle v = Get(key);
  std::vector<std::string> out;
  if (v.is_none()) return out;
  if (PyUnicode_Check(v.ptr())) {
    out.push_back(v.cast<std::string>());
    return out;
  }
  if (!py::isinstance<py::iterable>(v)) {
    ThrowType(absl::StrCat(key, " must be a str or a list of str, not ",
                           TypeName(v)));
  }
  for (py::handle item : py::reinterpret_borrow<py::iterable>(v)) {
    if (!PyUnicode_Check(item.ptr())) {
      ThrowType(absl::StrCat(key, " must hold str, not ", TypeName(item)));
    }
    out.push_back(item.cast<std::string>());
  }
  return out;
}

fabric::Headers Options::HeaderMap(const char* key) {
  return ToHeaders(Get(key));
}

py::object Options::Object(const char* key) {
  return py::reinterpret_borrow<py::object>(Get(key));
}

void Options::Finish() {
  for (auto item : dict_) {
    const std::string key = item.first.cast<std::string>();
    if (std::find(seen_.begin(), seen_.end(), key) == seen_.end()) {
      ThrowType(absl::StrCat("unknown option '", key, "'"));
    }
  }
}

// ------------------------------------------------------------ blocking work

void CheckSignals() {
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

bool WaitInSlices(absl::Duration timeout,
                  const std::function<bool(absl::Duration)>& step) {
  const absl::Time deadline = timeout == absl::InfiniteDuration()
                                  ? absl::InfiniteFuture()
                                  : absl::Now() + timeout;
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    bool done = false;
    {
      ReleaseGil nogil;
      done = step(std::clamp(left, absl::ZeroDuration(), kSlice));
    }
    if (done) return true;
    CheckSignals();
    if (absl::Now() >= deadline) return false;
  }
}

void WaitOrRaise(py::handle timeout,
                 const std::function<absl::Status(absl::Duration)>& wait,
                 const std::string& what) {
  const absl::Duration t =
      ToDuration(timeout, "timeout", absl::InfiniteDuration());
  absl::Status s;
  const bool done = WaitInSlices(t, [&](absl::Duration slice) {
    s = wait(slice);
    return s.code() != absl::StatusCode::kDeadlineExceeded;
  });
  if (!done) {
    s = absl::DeadlineExceededError(
        absl::StrCat(what, " within ", absl::FormatDuration(t)));
  }
  if (!s.ok()) ThrowStatus(s);
}

SignalsBlocked::SignalsBlocked() {
  static_assert(sizeof(sigset_t) <= sizeof(old_));
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, reinterpret_cast<sigset_t*>(old_));
}

SignalsBlocked::~SignalsBlocked() {
  pthread_sigmask(SIG_SETMASK, reinterpret_cast<sigset_t*>(old_), nullptr);
}

void WithoutGil(const std::function<void()>& fn) {
  if (PyGILState_Check()) {
    ReleaseGil nogil;
    fn();
  } else {
    fn();
  }
}

// ---------------------------------------------------------- live objects

namespace {

struct Registry {
  std::mutex* mu = new std::mutex;  // replaced in a forked child
  std::vector<std::weak_ptr<Closable>> live;
};

Registry& Live() {
  static Registry* registry = new Registry;
  return *registry;
}

thread_local const void* current_callback_owner = nullptr;

}  // namespace

Closable::Closable(Rank rank)
    : rank_(rank), fork_generation_(Gate::ForkGeneration()) {}

bool Closable::inherited() const {
  return fork_generation_ != Gate::ForkGeneration();
}

void Closable::CheckNotForked(const char* what) const {
  if (inherited()) ThrowForked(what);
}

void Closable::Register(const std::shared_ptr<Closable>& object) {
  Registry& r = Live();
  std::lock_guard<std::mutex> lock(*r.mu);
  // Forget the dead ones now and then so the list stays short.
  if (r.live.size() >= 64 && (r.live.size() & (r.live.size() - 1)) == 0) {
    r.live.erase(std::remove_if(r.live.begin(), r.live.end(),
                                [](const std::weak_ptr<Closable>& w) {
                                  return w.expired();
                                }),
                 r.live.end());
  }
  r.live.push_back(object);
}

void Closable::CloseAll() {
  std::vector<std::shared_ptr<Closable>> objects;
  {
    Registry& r = Live();
    std::lock_guard<std::mutex> lock(*r.mu);
    for (auto it = r.live.rbegin(); it != r.live.rend(); ++it) {
      if (std::shared_ptr<Closable> o = it->lock()) objects.push_back(o);
    }
  }
  std::stable_sort(
      objects.begin(), objects.end(),
      [](const std::shared_ptr<Closable>& a,
         const std::shared_ptr<Closable>& b) { return a->rank() < b->rank(); });
  for (const std::shared_ptr<Closable>& o : objects) {
    if (!o->inherited()) o->CloseNoGil();
  }
  // The last references may go here, without the GIL: the destructors
  // know (they check PyGILState_Check).
  objects.clear();
}

void Closable::ResetAfterFork() { Live().mu = new std::mutex; }

CallbackScope::CallbackScope(const void* owner)
    : previous_(current_callback_owner) {
  current_callback_owner = owner;
}

CallbackScope::~CallbackScope() { current_callback_owner = previous_; }

bool CallbackScope::Inside(const void* owner) {
  return owner != nullptr && current_callback_owner == owner;
}

bool CallbackScope::InsideAny() { return current_callback_owner != nullptr; }

}  // namespace fabricmq
