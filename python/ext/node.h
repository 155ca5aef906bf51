// SPDX-License-Identifier: Apache-2.0
// `PyNode`, the binding's owner of a `fabric::Node`, and what the pattern
// objects share: each holds its node (so the C++ node outlives it) and is
// closed by the node's close, before the node itself.
#ifndef PYTHON_EXT_NODE_H_
#define PYTHON_EXT_NODE_H_

#include <pybind11/pybind11.h>

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/synchronization/notification.h"
#include "fabric/node.h"
#include "python/ext/common.h"
#include "python/ext/gate.h"

namespace fabricmq {

// Thread safety: thread-safe.
class PyNode : public Closable {
 public:
  // Starts a node from the options the Python layer collected (see
  // fabricmq/node.py). REQUIRES: the GIL is held.
  static std::shared_ptr<PyNode> Start(py::dict options);
  ~PyNode() override;

  // Closes the node's pattern objects (newest first), then the node, and
  // joins its engine. Raises UsageError from a callback of the node or of
  // one of its objects (it would wait for itself).
  void Close();
  void CloseNoGil() override;
  // Waits until the node is closed; false after `timeout` (None: forever).
  bool Wait(py::handle timeout);
  bool closed() const { return done_.HasBeenNotified(); }

  // The node, for pattern objects being made on it. Raises ForkedError or
  // Closed. REQUIRES: the GIL is held.
  fabric::Node& Use(const char* what);
  fabric::Node& node() { return *node_; }
  // Closes `child` when the node closes. Weak: children keep the node.
  void Adopt(const std::shared_ptr<Closable>& child);
  // Raises UsageError when this thread runs a callback of the node or of
  // one of its children.
  void CheckNotInOwnCallback(const char* what);

 private:
  PyNode() : Closable(kNodes) {}
  std::unique_ptr<fabric::Node> node_;
  std::mutex close_mu_;  // serializes closing
  std::mutex mu_;        // guards children_
  std::vector<std::weak_ptr<Closable>> children_;
  absl::Notification done_;
};

// Destroys a pattern object's C++ part (`destroy`) the right way for the
// thread the last Python reference died on: leaked in a forked child, on
// the bridge thread when that thread is one of the object's own (it would
// join itself), otherwise here with the GIL released. `node` is kept alive
// until then.
void DestroyPatternObject(const Closable& self, const void* owner,
                          std::function<void()> destroy);

void BindNode(py::module_& m);

}  // namespace fabricmq

#endif  // PYTHON_EXT_NODE_H_
