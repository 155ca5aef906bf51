// SPDX-License-Identifier: Apache-2.0
// The `fabricmq._fabric` extension module: the bindings of each area, plus
// what the Python package wires up at import (`_init`) and at exit
// (`_shutdown`). Users import `fabricmq`, never this module directly.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <sys/stat.h>
#include <zmq.h>

#include <cerrno>
#include <string>

#include "absl/strings/str_cat.h"
#include "fabric/base/errno_status.h"
#include "fabric/base/log.h"
#include "fabric/security/keys.h"
#include "python/ext/common.h"
#include "python/ext/gate.h"
#include "python/ext/node.h"

#ifndef FABRIC_VERSION
#define FABRIC_VERSION "0.0.0"
#endif

namespace fabricmq {

void BindWorkQueue(py::module_& m);
void BindPubSub(py::module_& m);
void BindReqRep(py::module_& m);

namespace {

// The exit hook's work (fabricmq/__init__.py registers it with atexit):
// close every live object with the gate open, so running handlers finish
// normally; then close the gate and wait until no fabric thread is inside
// Python. Returns false when that did not happen within `timeout` or a
// second Ctrl-C came; the caller then ends the process with os._exit.
bool Shutdown(double timeout_seconds) {
  {
    ReleaseGil nogil;
    Closable::CloseAll();
  }
  Gate::Close();
  const absl::Time deadline = absl::Now() + absl::Seconds(timeout_seconds);
  for (;;) {
    bool idle = false;
    {
      ReleaseGil nogil;
      idle = Gate::WaitIdle(absl::Milliseconds(100));
    }
    if (idle) return true;
    if (PyErr_CheckSignals() != 0) {
      PyErr_Clear();
      return false;
    }
    if (absl::Now() >= deadline) return false;
  }
}

}  // namespace

}  // namespace fabricmq

PYBIND11_MODULE(_fabric, m) {
  namespace fm = fabricmq;
  namespace py = pybind11;
  m.doc() = "fabricmq's binding of the fabric C++ library (use fabricmq)";
  fm::Gate::InstallForkHandler();
  fm::BindNode(m);
  fm::BindWorkQueue(m);
  fm::BindPubSub(m);
  fm::BindReqRep(m);

  m.def("_init", &fm::SetPythonTypes, py::arg("types"),
        "Registers the Python types and helpers the binding raises and calls.");
  m.def("_shutdown", &fm::Shutdown, py::arg("timeout"),
        "Closes every live object and waits for fabric threads to leave "
        "Python; False if they did not within `timeout` seconds.");
  m.def("_close_all", [] {
    fm::ReleaseGil nogil;
    fm::Closable::CloseAll();
  });
  m.def("_kept_thread_states", &fm::Gate::KeptThreadStates);
  m.def("_gate_open", &fm::Gate::IsOpen);
  m.def(
      "set_log_level",
      [](const std::string& level) {
        absl::StatusOr<fabric::LogLevel> parsed = fabric::ParseLogLevel(level);
        if (!parsed.ok()) fm::ThrowStatus(parsed.status());
        fabric::SetLogLevel(*parsed);
      },
      py::arg("level"));
  m.def(
      "keygen",
      [](const std::string& name, const std::string& dir, bool force) {
        absl::StatusOr<fabric::security::CurveKeypair> keys =
            fabric::security::GenerateKeypair(name);
        if (!keys.ok()) fm::ThrowStatus(keys.status());
        // As `fabric keygen`: a missing directory is made, owner-only.
        if (!dir.empty() && mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
          fm::ThrowStatus(fabric::ZmqErrnoToStatus(errno, "mkdir " + dir));
        }
        absl::Status written =
            fabric::security::WriteKeypair(dir, *keys, force);
        if (!written.ok()) fm::ThrowStatus(written);
        return fabric::security::KeyFingerprint(keys->public_key);
      },
      py::arg("name"), py::arg("dir") = ".", py::arg("force") = false,
      "Writes DIR/NAME.key (0600) and DIR/NAME.pub (0644), as `fabric "
      "keygen`; returns the key's fingerprint.");
  m.def(
      "new_beacon_secret",
      [](const std::string& path) {
        fabric::security::BeaconSecrets secrets;
        secrets.secrets[1] = fabric::security::RandomBeaconSecret();
        secrets.primary = 1;
        absl::Status written =
            fabric::security::WriteBeaconSecrets(path, secrets);
        if (!written.ok()) fm::ThrowStatus(written);
      },
      py::arg("path"),
      "Writes a new beacon keyring (key id 1, primary; mode 0600), as "
      "`fabric keygen --beacon-secret`.");
  int major = 0, minor = 0, patch = 0;
  zmq_version(&major, &minor, &patch);
  m.attr("fabric_version") = FABRIC_VERSION;
  m.attr("zmq_version") = absl::StrCat(major, ".", minor, ".", patch);
}
