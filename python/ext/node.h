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

#include "absl/status/statusor.h"
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
// join itself), otherwise here with the GIL released.
void DestroyPatternObject(const Closable& self, const void* owner,
                          std::function<void()> destroy);

// The binding of one fabric pattern object `T` (Producer, Worker,
// Publisher, ...): it keeps its node alive, is closed by the node's close
// and by the exit hook, refuses use in a forked child and is destroyed as
// DestroyPatternObject says. Thread safety: thread-safe.
template <typename T>
class PatternObject : public Closable {
 public:
  ~PatternObject() override {
    // Moved into the closure, with no copy left here: the bridge thread may
    // run it before this destructor returns, and the last reference must
    // not be the one dropped here, on what may be the object's own thread.
    DestroyPatternObject(
        *this, this,
        [object = std::move(object_), node = std::move(node_)]() mutable {
          object.reset();  // before the node it runs on
          node.reset();
        });
  }

  void CloseNoGil() override {
    if (object_ != nullptr) object_->Close();
  }

  // Close from Python. REQUIRES: the GIL is held.
  void Close() {
    CheckNotForked(what_);
    if (refused_in_callback_ != nullptr && CallbackScope::Inside(this)) {
      ThrowUsage(refused_in_callback_);
    }
    ReleaseGil nogil;
    CloseNoGil();
  }

  // The fabric object, for a method called from Python. Raises
  // ForkedError in a forked child. REQUIRES: the GIL is held.
  T& object() {
    CheckNotForked(what_);
    return *object_;
  }

 protected:
  // `what` names the object in errors ("this Worker");
  // `refused_in_callback` is the UsageError message for a close from one
  // of the object's own callbacks, or null when that is allowed.
  PatternObject(Rank rank, std::shared_ptr<PyNode> node, const char* what,
                const char* refused_in_callback)
      : Closable(rank),
        node_(std::move(node)),
        what_(what),
        refused_in_callback_(refused_in_callback) {}

  // Makes the fabric object with `make(node)`, with the GIL released and
  // SIGINT and SIGTERM blocked (its threads inherit the mask), then
  // registers this object with the exit hook and the node. Raises the
  // error `make` returns. REQUIRES: the GIL is held; `this` is owned by a
  // shared_ptr.
  void Start(
      const std::function<absl::StatusOr<std::unique_ptr<T>>(fabric::Node&)>&
          make) {
    fabric::Node& node = node_->Use("this Node");
    absl::StatusOr<std::unique_ptr<T>> made;
    {
      ReleaseGil nogil;
      SignalsBlocked blocked;
      made = make(node);
    }
    if (!made.ok()) ThrowStatus(made.status());
    object_ = std::move(*made);
    std::shared_ptr<Closable> self = shared_from_this();
    Closable::Register(self);
    node_->Adopt(self);
  }

  std::shared_ptr<PyNode> node_;
  std::shared_ptr<T> object_;

 private:
  const char* const what_;
  const char* const refused_in_callback_;
};

void BindNode(py::module_& m);

}  // namespace fabricmq

#endif  // PYTHON_EXT_NODE_H_
