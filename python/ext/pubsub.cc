// SPDX-License-Identifier: Apache-2.0
// Binding of publish/subscribe: `Publisher`, `Subscriber`, `Message` and
// `GapEvent`. A subscriber's handler and on_gap run on its own thread,
// through the gate.
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "patterns/pubsub/publisher.h"
#include "patterns/pubsub/subscriber.h"
#include "python/ext/common.h"
#include "python/ext/gate.h"
#include "python/ext/node.h"

namespace fabricmq {
namespace {

// A message as Python sees it; the body becomes `bytes` on first access.
struct PyMessage {
  fabric::Message m;
  py::object body;

  py::object Body() {
    if (!body) {
      body = ToBytes(m.body);
      std::string().swap(m.body);
    }
    return body;
  }
};

void DeliverMessage(const SharedPy& handler, const void* owner,
                    const fabric::Message& m) {
  Gate::Entry entry;
  if (!entry.ok()) return;
  CallbackScope scope(owner);
  try {
    handler->get()(py::cast(PyMessage{m, py::object()}));
  } catch (py::error_already_set& e) {
    e.discard_as_unraisable("fabricmq subscriber handler");
  }
}

void DeliverGap(const SharedPy& callback, const void* owner,
                const fabric::GapEvent& gap) {
  Gate::Entry entry;
  if (!entry.ok()) return;
  CallbackScope scope(owner);
  try {
    callback->get()(py::cast(gap));
  } catch (py::error_already_set& e) {
    e.discard_as_unraisable("fabricmq on_gap callback");
  }
}

fabric::StartPosition ToStart(py::handle start) {
  fabric::StartPosition p;
  if (start.is_none()) return p;
  if (PyLong_Check(start.ptr()) && !PyBool_Check(start.ptr())) {
    p.kind = fabric::StartPosition::Kind::kSeq;
    p.seq = start.cast<uint64_t>();
    return p;
  }
  if (PyUnicode_Check(start.ptr())) {
    absl::StatusOr<fabric::StartPosition> parsed =
        fabric::StartPosition::Parse(start.cast<std::string>());
    if (!parsed.ok()) ThrowStatus(parsed.status());
    return *parsed;
  }
  if (py::hasattr(start, "timestamp")) {  // datetime.datetime
    p.kind = fabric::StartPosition::Kind::kTime;
    p.time = FromDatetime(start);
    return p;
  }
  ThrowType(
      "start must be 'latest', 'earliest', a seq (int), a datetime or a "
      "relative time such as '-5m'");
}

// ---------------------------------------------------------------- publisher

class PyPublisher : public PatternObject<fabric::Publisher> {
 public:
  static std::shared_ptr<PyPublisher> Create(std::shared_ptr<PyNode> node,
                                             py::dict dict) {
    Options options(std::move(dict));
    fabric::PublisherOptions o;
    o.durable_topics = options.Strings("durable_topics");
    o.spool_dir = options.String("spool_dir", "");
    o.allow_shared_files = options.Bool("allow_shared_files", false);
    absl::StatusOr<fabric::FsyncPolicy> fsync =
        fabric::ParseFsyncPolicy(options.String("fsync", "batch"));
    if (!fsync.ok()) ThrowStatus(fsync.status());
    o.fsync = *fsync;
    o.fsync_interval = options.Duration("fsync_interval", o.fsync_interval);
    options.Read("retention_bytes", &o.retention_bytes, 1);
    o.retention_age = options.Duration("retention_age", o.retention_age);
    options.Read("segment_bytes", &o.segment_bytes, 1);
    options.Read("send_hwm", &o.send_hwm, 0);
    options.Read("max_message_bytes", &o.max_message_bytes, 1);
    o.beat_interval = options.Duration("beat_interval", o.beat_interval);
    o.bind_host = options.String("bind_host", "");
    options.Finish();

    std::shared_ptr<PyPublisher> self(new PyPublisher(node));
    self->Start([&o](fabric::Node& n) {
      return fabric::Publisher::Create(n, std::move(o));
    });
    return self;
  }

  uint64_t Publish(const std::string& topic, py::handle body,
                   py::handle headers) {
    fabric::Publisher& publisher = object();
    Body b(body, "body");
    const fabric::Headers h = ToHeaders(headers);
    absl::StatusOr<uint64_t> seq;
    {
      ReleaseGil nogil;
      seq = publisher.Publish(topic, b.view(), h);
    }
    if (!seq.ok()) ThrowStatus(seq.status());
    return *seq;
  }

  void WaitForSubscribers(size_t n, py::handle timeout) {
    fabric::Publisher& publisher = object();
    WaitOrRaise(
        timeout,
        [&](absl::Duration slice) {
          return publisher.WaitForSubscribers(n, slice);
        },
        absl::StrCat("fewer than ", n, " subscriber(s) connected"));
  }

  void Flush(py::handle timeout) {
    fabric::Publisher& publisher = object();
    WaitOrRaise(
        timeout, [&](absl::Duration slice) { return publisher.Flush(slice); },
        "durable messages not flushed");
  }

  std::string endpoint() { return object().endpoint(); }
  fabric::PublisherStats Stats() { return object().Stats(); }

 private:
  explicit PyPublisher(std::shared_ptr<PyNode> node)
      : PatternObject(kEndpoints, std::move(node), "this Publisher", nullptr) {}
};

// --------------------------------------------------------------- subscriber

class PySubscriber : public PatternObject<fabric::Subscriber> {
 public:
  static std::shared_ptr<PySubscriber> Create(std::shared_ptr<PyNode> node,
                                              py::dict dict) {
    Options options(std::move(dict));
    fabric::SubscriberOptions o;
    o.prefixes = options.Strings("prefixes");
    o.durable_name = options.String("durable_name", "");
    o.state_dir = options.String("state_dir", "");
    o.allow_shared_files = options.Bool("allow_shared_files", false);
    o.start = ToStart(options.Object("start"));
    py::object handler = options.Object("handler");
    py::object on_gap = options.Object("on_gap");
    options.Read("receive_hwm", &o.receive_hwm, 0);
    options.Read("max_pending", &o.max_pending, 1);
    options.Read("max_held", &o.max_held, 1);
    options.Read("replay_batch", &o.replay_batch, 1);
    options.Read("replay_bytes", &o.replay_bytes, 1);
    o.replay_timeout = options.Duration("replay_timeout", o.replay_timeout);
    options.Read("max_message_bytes", &o.max_message_bytes, 1);
    options.Finish();

    std::shared_ptr<PySubscriber> self(new PySubscriber(node));
    const void* owner = self.get();
    if (!handler.is_none()) {
      if (!PyCallable_Check(handler.ptr())) {
        ThrowType("the subscriber's handler must be callable");
      }
      SharedPy callback = Share(std::move(handler));
      o.handler = [callback, owner](const fabric::Message& m) {
        DeliverMessage(callback, owner, m);
      };
      self->push_mode_ = true;
    }
    if (!on_gap.is_none()) {
      if (!PyCallable_Check(on_gap.ptr())) ThrowType("on_gap must be callable");
      SharedPy callback = Share(std::move(on_gap));
      o.on_gap = [callback, owner](const fabric::GapEvent& g) {
        DeliverGap(callback, owner, g);
      };
    }
    self->Start([&o](fabric::Node& n) {
      return fabric::Subscriber::Create(n, std::move(o));
    });
    return self;
  }

  // Pull mode: the next message, waiting in slices up to `timeout` (None:
  // until one comes or the subscriber closes).
  PyMessage Next(py::handle timeout) {
    fabric::Subscriber& subscriber = object();
    if (push_mode_) {
      ThrowUsage(
          "this Subscriber has a handler: messages go to it, not to next() "
          "or iteration");
    }
    const absl::Duration t =
        ToDuration(timeout, "timeout", absl::InfiniteDuration());
    absl::StatusOr<fabric::Message> m;
    const bool done = WaitInSlices(t, [&](absl::Duration slice) {
      m = subscriber.Next(slice);
      return m.ok() || m.status().code() != absl::StatusCode::kDeadlineExceeded;
    });
    if (!done) {
      ThrowStatus(absl::DeadlineExceededError(
          absl::StrCat("no message within ", absl::FormatDuration(t))));
    }
    if (!m.ok()) ThrowStatus(m.status());
    return PyMessage{std::move(*m), py::object()};
  }

  // Up to `max` messages already waiting, without blocking: for the
  // asyncio pump, which hands them over in one batch.
  py::list TakeReady(size_t max) {
    fabric::Subscriber& subscriber = object();
    py::list out;
    while (out.size() < max) {
      absl::StatusOr<fabric::Message> m;
      {
        ReleaseGil nogil;
        m = subscriber.Next(absl::ZeroDuration());
      }
      if (!m.ok()) break;
      out.append(py::cast(PyMessage{std::move(*m), py::object()}));
    }
    return out;
  }

  void WaitForPublishers(size_t n, py::handle timeout) {
    fabric::Subscriber& subscriber = object();
    WaitOrRaise(
        timeout,
        [&](absl::Duration slice) {
          return subscriber.WaitForPublishers(n, slice);
        },
        absl::StrCat("fewer than ", n, " publisher(s) connected"));
  }

  fabric::SubscriberStats Stats() { return object().Stats(); }

 private:
  explicit PySubscriber(std::shared_ptr<PyNode> node)
      : PatternObject(kHandlers, std::move(node), "this Subscriber",
                      "Subscriber.close() called from its own handler or "
                      "on_gap: it joins the thread running them") {}
  bool push_mode_ = false;
};

}  // namespace

void BindPubSub(py::module_& m) {
  py::class_<PyMessage>(m, "Message")
      .def_property_readonly(
          "topic", [](const PyMessage& x) { return ToStr(x.m.topic); })
      .def_property_readonly(
          "headers",
          [](const PyMessage& x) { return FromHeaders(x.m.headers); })
      .def_property_readonly("body", &PyMessage::Body)
      .def_property_readonly("stream",
                             [](const PyMessage& x) { return x.m.stream; })
      .def_property_readonly("seq", [](const PyMessage& x) { return x.m.seq; })
      .def_property_readonly(
          "published",
          [](const PyMessage& x) { return ToDatetime(x.m.published); })
      .def_property_readonly("durable",
                             [](const PyMessage& x) { return x.m.durable; })
      .def_property_readonly("replayed",
                             [](const PyMessage& x) { return x.m.replayed; })
      .def("__repr__", [](const PyMessage& x) {
        return absl::StrCat("<Message ", x.m.topic, " seq=", x.m.seq,
                            x.m.replayed ? " replayed" : "", ">");
      });

  py::class_<fabric::GapEvent>(m, "GapEvent")
      .def_property_readonly(
          "topic", [](const fabric::GapEvent& g) { return ToStr(g.topic); })
      .def_readonly("stream", &fabric::GapEvent::stream)
      .def_readonly("first", &fabric::GapEvent::first)
      .def_readonly("last", &fabric::GapEvent::last)
      .def_readonly("reason", &fabric::GapEvent::reason)
      .def_property_readonly("count", &fabric::GapEvent::count)
      .def("__repr__", [](const fabric::GapEvent& g) {
        return absl::StrCat("<GapEvent ", g.topic, " seqs ", g.first, "..",
                            g.last, " (", g.reason, ")>");
      });

  py::class_<fabric::PublisherStats>(m, "PublisherStats")
      .def_readonly("published", &fabric::PublisherStats::published)
      .def_readonly("sent", &fabric::PublisherStats::sent)
      .def_readonly("frames", &fabric::PublisherStats::frames)
      .def_readonly("dropped", &fabric::PublisherStats::dropped)
      .def_readonly("beats", &fabric::PublisherStats::beats)
      .def_readonly("rejected", &fabric::PublisherStats::rejected)
      .def_readonly("replay_requests", &fabric::PublisherStats::replay_requests)
      .def_readonly("replayed", &fabric::PublisherStats::replayed)
      .def_readonly("replay_errors", &fabric::PublisherStats::replay_errors)
      .def_readonly("subscribers", &fabric::PublisherStats::subscribers)
      .def_readonly("durable_pending",
                    &fabric::PublisherStats::durable_pending);

  py::class_<fabric::SubscriberStats>(m, "SubscriberStats")
      .def_readonly("received", &fabric::SubscriberStats::received)
      .def_readonly("delivered", &fabric::SubscriberStats::delivered)
      .def_readonly("replayed", &fabric::SubscriberStats::replayed)
      .def_readonly("duplicates", &fabric::SubscriberStats::duplicates)
      .def_readonly("gaps", &fabric::SubscriberStats::gaps)
      .def_readonly("lost", &fabric::SubscriberStats::lost)
      .def_readonly("malformed", &fabric::SubscriberStats::malformed)
      .def_readonly("replay_requests",
                    &fabric::SubscriberStats::replay_requests)
      .def_readonly("publishers", &fabric::SubscriberStats::publishers)
      .def_readonly("streams", &fabric::SubscriberStats::streams)
      .def_readonly("held", &fabric::SubscriberStats::held);

  py::class_<PyPublisher, std::shared_ptr<PyPublisher>>(m, "Publisher")
      .def(py::init(&PyPublisher::Create), py::arg("node"), py::arg("options"))
      .def("publish", &PyPublisher::Publish, py::arg("topic"), py::arg("body"),
           py::arg("headers") = py::none())
      .def("wait_for_subscribers", &PyPublisher::WaitForSubscribers,
           py::arg("n"), py::arg("timeout") = py::none())
      .def("flush", &PyPublisher::Flush, py::arg("timeout") = py::none())
      .def_property_readonly("endpoint", &PyPublisher::endpoint)
      .def("stats", &PyPublisher::Stats)
      .def("close", &PyPublisher::Close);

  py::class_<PySubscriber, std::shared_ptr<PySubscriber>>(m, "Subscriber")
      .def(py::init(&PySubscriber::Create), py::arg("node"), py::arg("options"))
      .def("next", &PySubscriber::Next, py::arg("timeout") = py::none())
      .def("take_ready", &PySubscriber::TakeReady, py::arg("max"))
      .def("wait_for_publishers", &PySubscriber::WaitForPublishers,
           py::arg("n"), py::arg("timeout") = py::none())
      .def("stats", &PySubscriber::Stats)
      .def("close", &PySubscriber::Close);
}

}  // namespace fabricmq
