// SPDX-License-Identifier: Apache-2.0
// Binding of request/reply: `Client` (blocking, future and asyncio calls),
// `Server` (a sync handler returning the reply, or a deferred one replying
// through a `Responder` from any thread), `Request` and `Reply`.
// Asynchronous results arrive on the node's engine thread, where Python
// must never run: the bridge thread takes them to Python.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "patterns/reqrep/client.h"
#include "patterns/reqrep/server.h"
#include "python/ext/common.h"
#include "python/ext/gate.h"
#include "python/ext/node.h"

namespace fabricmq {
namespace {

constexpr absl::Duration kSlice = absl::Milliseconds(100);

struct PyReply {
  py::object body;
  fabric::NodeId server;
  uint32_t attempts = 0;
};

PyReply ToPyReply(fabric::Reply&& r) {
  return PyReply{ToBytes(r.body), r.server, r.attempts};
}

// A request as the handler sees it; the body becomes `bytes` on first use.
struct PyRequest {
  fabric::Request r;
  py::object body;

  py::object Body() {
    if (!body) {
      body = ToBytes(r.body);
      std::string().swap(r.body);
    }
    return body;
  }
};

// The reply owed to a request, for deferred handlers. Usable from any
// Python thread; dropping it unanswered answers kInternal (C++ Responder).
struct PyResponder {
  std::optional<fabric::Responder> responder;
  std::mutex mu;

  void Reply(py::handle body) {
    std::string data = Body(body, "reply body").Take();
    Answer([&data](fabric::Responder& r) { return r.Reply(std::move(data)); });
  }

  void Fail(int code, const std::string& message) {
    if (code <= 0 || code > 16) {
      ThrowStatus(absl::InvalidArgumentError(
          "fail() needs an error code (fabricmq.Code, not OK)"));
    }
    const absl::Status status(static_cast<absl::StatusCode>(code), message);
    Answer([&status](fabric::Responder& r) { return r.Fail(status); });
  }

  // Answers once through `send`, without the GIL; raises its error, or
  // FailedPrecondition when the request was answered already.
  void Answer(const std::function<absl::Status(fabric::Responder&)>& send) {
    absl::Status s;
    {
      ReleaseGil nogil;
      std::lock_guard<std::mutex> lock(mu);
      if (!responder.has_value()) {
        s = absl::FailedPreconditionError("this request was answered already");
      } else {
        s = send(*responder);
        responder.reset();
      }
    }
    if (!s.ok()) ThrowStatus(s);
  }

  bool cancelled() {
    std::lock_guard<std::mutex> lock(mu);
    return responder.has_value() && responder->cancelled();
  }
  bool answered() {
    std::lock_guard<std::mutex> lock(mu);
    return !responder.has_value();
  }
};

// The status a Python exception from a handler becomes: `fabricmq.Error`
// (and RpcError) keep their code and message; anything else is kInternal.
absl::Status StatusOfException(py::error_already_set& e) {
  try {
    if (e.matches(PythonType("Error"))) {
      py::object exc = e.value();
      const int code = exc.attr("code").cast<int>();
      if (code > 0 && code <= 16) {
        return absl::Status(static_cast<absl::StatusCode>(code),
                            py::str(exc).cast<std::string>());
      }
    }
    return absl::InternalError(absl::StrCat(
        "handler raised ",
        PythonType("_describe_exception")(e.type(), e.value(), e.trace())
            .cast<std::string>()));
  } catch (py::error_already_set& inner) {
    inner.discard_as_unraisable("fabricmq server handler");
    return absl::InternalError("handler raised an exception");
  }
}

// Runs the Python handler for one request on a server thread. Sync mode:
// the return value is the reply. Deferred mode: the handler gets a
// Responder; an exception before it answered fails the request.
void Serve(const SharedPy& handler, const void* owner, bool deferred,
           fabric::Request request, fabric::Responder responder) {
  std::optional<std::string> reply;
  absl::Status failure;
  {
    Gate::Entry entry;
    if (!entry.ok()) {
      (void)responder.Fail(absl::UnavailableError("the server is exiting"));
      return;
    }
    CallbackScope scope(owner);
    py::object req = py::cast(PyRequest{std::move(request), py::object()});
    if (deferred) {
      auto r = std::make_shared<PyResponder>();
      r->responder.emplace(std::move(responder));
      py::object pr = py::cast(r);
      try {
        handler->get()(req, pr);
      } catch (py::error_already_set& e) {
        const absl::Status s = StatusOfException(e);
        std::lock_guard<std::mutex> lock(r->mu);
        if (r->responder.has_value()) {
          (void)r->responder->Fail(s);
          r->responder.reset();
        }
      }
      return;
    }
    try {
      py::object result = handler->get()(req);
      if (result.is_none()) {
        reply.emplace();
      } else if (PyBytes_Check(result.ptr()) || PyUnicode_Check(result.ptr()) ||
                 PyObject_CheckBuffer(result.ptr())) {
        reply.emplace(std::move(Body(result, "reply")).Take());
      } else {
        failure = absl::InternalError(
            absl::StrCat("handler returned ", Py_TYPE(result.ptr())->tp_name,
                         ", not bytes"));
      }
    } catch (py::error_already_set& e) {
      failure = StatusOfException(e);
    }
  }
  // Sent outside Python: the reply may go straight to the socket.
  if (reply.has_value()) {
    (void)responder.Reply(std::move(*reply));
  } else {
    (void)responder.Fail(failure);
  }
}

fabric::CallOptions ToCallOptions(py::dict dict) {
  Options options(std::move(dict));
  fabric::CallOptions o;
  o.timeout = options.Duration("timeout", absl::ZeroDuration());
  o.attempt_timeout = options.Duration("attempt_timeout", absl::ZeroDuration());
  options.Read("max_attempts", &o.max_attempts, 0, 100);
  o.idempotency_key = options.String("idempotency_key", "");
  o.headers = options.HeaderMap("headers");
  o.wait_for_server = options.Bool("wait_for_server", false);
  options.Finish();
  return o;
}

// ------------------------------------------------------------------ client

class PyClient : public PatternObject<fabric::Client> {
 public:
  static std::shared_ptr<PyClient> Create(std::shared_ptr<PyNode> node,
                                          py::dict dict) {
    Options options(std::move(dict));
    fabric::ClientOptions o;
    o.timeout = options.Duration("timeout", o.timeout);
    o.attempt_timeout = options.Duration("attempt_timeout", o.attempt_timeout);
    options.Read("max_attempts", &o.max_attempts, 1, 100);
    options.Read("max_request_bytes", &o.max_request_bytes, 1);
    o.spin_wait = options.Duration("spin_wait", o.spin_wait);
    options.Finish();
    std::shared_ptr<PyClient> self(new PyClient(node));
    self->Start([&o](fabric::Node& n) {
      return fabric::Client::Create(n, std::move(o));
    });
    return self;
  }

  // The blocking call: C++'s own fast path (direct send, a short spin),
  // polled every 100 ms for Ctrl-C.
  PyReply Call(const std::string& service, py::handle body, py::dict options) {
    fabric::Client& client = object();
    Body b(body, "body");
    const fabric::CallOptions o = ToCallOptions(std::move(options));
    bool interrupted = false;
    absl::StatusOr<fabric::Reply> reply;
    {
      ReleaseGil nogil;
      reply = client.Call(service, b.view(), o, kSlice, [&interrupted] {
        BeginTakingGilBack();
        PyGILState_STATE g = PyGILState_Ensure();
        EndTakingGilBack();
        interrupted = PyErr_CheckSignals() != 0;  // leaves the exception set
        PyGILState_Release(g);
        return !interrupted;
      });
    }
    if (interrupted) throw py::error_already_set();
    if (!reply.ok()) ThrowStatus(reply.status());
    return ToPyReply(std::move(*reply));
  }

  // Resolves `future` (a concurrent.futures.Future; with `loop`, an asyncio
  // future of that loop) with the call's Reply or exception.
  void CallLater(const std::string& service, py::handle body, py::dict options,
                 py::object future, py::object loop) {
    fabric::Client& client = object();
    Body b(body, "body");
    const fabric::CallOptions o = ToCallOptions(std::move(options));
    SharedPy fut = Share(std::move(future));
    SharedPy lp = loop.is_none() ? nullptr : Share(std::move(loop));
    ReleaseGil nogil;
    // Runs on the engine thread (or here, if the call fails at once): no
    // Python there, the bridge takes it on.
    client.CallAsync(
        service, b.view(), o, [fut, lp](absl::StatusOr<fabric::Reply> result) {
          auto r = std::make_shared<absl::StatusOr<fabric::Reply>>(
              std::move(result));
          Bridge::PostWithGil([fut, lp, r](Bridge::Batch& batch) {
            const bool ok = r->ok();
            py::object value = ok ? py::cast(ToPyReply(std::move(**r)))
                                  : StatusToException(r->status());
            if (lp != nullptr) {
              batch.Resolve(lp->get(), fut->get(), std::move(value), !ok);
            } else {
              PythonType("_resolve_future")(fut->get(), value, !ok);
            }
          });
        });
  }

  std::vector<std::string> Servers(const std::string& service) {
    fabric::Client& client = object();
    absl::StatusOr<std::vector<fabric::NodeId>> servers;
    {
      ReleaseGil nogil;
      servers = client.Servers(service);
    }
    if (!servers.ok()) ThrowStatus(servers.status());
    std::vector<std::string> out;
    for (const fabric::NodeId& id : *servers) out.push_back(id.ToHex());
    return out;
  }

  void WaitForServer(const std::string& service, py::handle timeout) {
    fabric::Client& client = object();
    WaitOrRaise(
        timeout,
        [&](absl::Duration slice) {
          return client.WaitForServer(service, slice);
        },
        absl::StrCat("no server of service ", service));
  }

  fabric::ClientStats Stats() { return object().Stats(); }

 private:
  explicit PyClient(std::shared_ptr<PyNode> node)
      : PatternObject(kEndpoints, std::move(node), "this Client", nullptr) {}
};

// ------------------------------------------------------------------ server

class PyServer : public PatternObject<fabric::Server> {
 public:
  static std::shared_ptr<PyServer> Create(std::shared_ptr<PyNode> node,
                                          py::object handler, py::dict dict) {
    Options options(std::move(dict));
    fabric::ServerOptions o;
    o.service = options.String("service", "");
    // Never 0 from Python: that would run the handler on the engine thread.
    options.Read("threads", &o.threads, 1, 1024);
    options.Read("max_pending", &o.max_pending, 1);
    options.Read("max_request_bytes", &o.max_request_bytes, 1);
    options.Read("max_reply_bytes", &o.max_reply_bytes, 1);
    o.dedup_window = options.Duration("dedup_window", o.dedup_window);
    options.Read("dedup_max_entries", &o.dedup_max_entries, 0);
    options.Read("dedup_max_bytes", &o.dedup_max_bytes, 0);
    o.drain_timeout = options.Duration("drain_timeout", o.drain_timeout);
    const bool deferred = options.Bool("deferred", false);
    options.Finish();
    if (!PyCallable_Check(handler.ptr())) {
      ThrowType("the server's handler must be callable");
    }
    std::shared_ptr<PyServer> self(new PyServer(node));
    SharedPy callback = Share(std::move(handler));
    const void* owner = self.get();
    o.handler = [callback, owner, deferred](fabric::Request request,
                                            fabric::Responder responder) {
      Serve(callback, owner, deferred, std::move(request),
            std::move(responder));
    };
    self->Start([&o](fabric::Node& n) {
      return fabric::Server::Create(n, std::move(o));
    });
    return self;
  }

  fabric::ServerStats Stats() { return object().Stats(); }

 private:
  explicit PyServer(std::shared_ptr<PyNode> node)
      : PatternObject(kHandlers, std::move(node), "this Server",
                      "Server.close() called from its own handler: it waits "
                      "for the handler to finish") {}
};

}  // namespace

void BindReqRep(py::module_& m) {
  py::class_<PyReply>(m, "Reply")
      .def_readonly("body", &PyReply::body)
      .def_property_readonly("server",
                             [](const PyReply& r) { return r.server.ToHex(); })
      .def_readonly("attempts", &PyReply::attempts)
      .def("__repr__", [](const PyReply& r) {
        return absl::StrCat("<Reply from ", r.server.ShortHex(),
                            " attempts=", r.attempts, ">");
      });

  py::class_<PyRequest>(m, "Request")
      .def_property_readonly(
          "service", [](const PyRequest& x) { return ToStr(x.r.service); })
      .def_property_readonly("body", &PyRequest::Body)
      .def_property_readonly(
          "headers",
          [](const PyRequest& x) { return FromHeaders(x.r.headers); })
      .def_property_readonly("idempotency_key",
                             [](const PyRequest& x) -> py::object {
                               if (x.r.idempotency_key.empty()) {
                                 return py::none();
                               }
                               return ToStr(x.r.idempotency_key);
                             })
      .def_property_readonly(
          "client", [](const PyRequest& x) { return x.r.client.ToHex(); })
      .def_property_readonly("id", [](const PyRequest& x) { return x.r.id; })
      .def_property_readonly("attempt",
                             [](const PyRequest& x) { return x.r.attempt; })
      .def_property_readonly(
          "deadline",
          [](const PyRequest& x) { return ToDatetime(x.r.deadline); })
      .def("__repr__", [](const PyRequest& x) {
        return absl::StrCat("<Request ", x.r.service, " ",
                            x.r.client.ShortHex(), ":", x.r.id,
                            " attempt=", x.r.attempt, ">");
      });

  py::class_<PyResponder, std::shared_ptr<PyResponder>>(m, "Responder")
      .def("reply", &PyResponder::Reply, py::arg("body"))
      .def("fail", &PyResponder::Fail, py::arg("code"), py::arg("message"))
      .def_property_readonly("cancelled", &PyResponder::cancelled)
      .def_property_readonly("answered", &PyResponder::answered);

  py::class_<fabric::ClientStats>(m, "ClientStats")
      .def_readonly("calls", &fabric::ClientStats::calls)
      .def_readonly("ok", &fabric::ClientStats::ok)
      .def_readonly("failed", &fabric::ClientStats::failed)
      .def_readonly("deadline_exceeded",
                    &fabric::ClientStats::deadline_exceeded)
      .def_readonly("unavailable", &fabric::ClientStats::unavailable)
      .def_readonly("attempts", &fabric::ClientStats::attempts)
      .def_readonly("retries", &fabric::ClientStats::retries)
      .def_readonly("late_replies", &fabric::ClientStats::late_replies)
      .def_readonly("in_flight", &fabric::ClientStats::in_flight);

  py::class_<fabric::ServerStats>(m, "ServerStats")
      .def_readonly("received", &fabric::ServerStats::received)
      .def_readonly("replied", &fabric::ServerStats::replied)
      .def_readonly("failed", &fabric::ServerStats::failed)
      .def_readonly("rejected_busy", &fabric::ServerStats::rejected_busy)
      .def_readonly("rejected_draining",
                    &fabric::ServerStats::rejected_draining)
      .def_readonly("rejected_too_large",
                    &fabric::ServerStats::rejected_too_large)
      .def_readonly("joined", &fabric::ServerStats::joined)
      .def_readonly("cache_hits", &fabric::ServerStats::cache_hits)
      .def_readonly("expired", &fabric::ServerStats::expired)
      .def_readonly("cancelled", &fabric::ServerStats::cancelled)
      .def_readonly("handler_errors", &fabric::ServerStats::handler_errors)
      .def_readonly("late_replies", &fabric::ServerStats::late_replies)
      .def_readonly("malformed", &fabric::ServerStats::malformed)
      .def_readonly("pending", &fabric::ServerStats::pending);

  py::class_<PyClient, std::shared_ptr<PyClient>>(m, "Client")
      .def(py::init(&PyClient::Create), py::arg("node"), py::arg("options"))
      .def("call", &PyClient::Call, py::arg("service"), py::arg("body"),
           py::arg("options"))
      .def("call_later", &PyClient::CallLater, py::arg("service"),
           py::arg("body"), py::arg("options"), py::arg("future"),
           py::arg("loop") = py::none())
      .def("servers", &PyClient::Servers, py::arg("service"))
      .def("wait_for_server", &PyClient::WaitForServer, py::arg("service"),
           py::arg("timeout") = py::none())
      .def("stats", &PyClient::Stats)
      .def("close", &PyClient::Close);

  py::class_<PyServer, std::shared_ptr<PyServer>>(m, "Server")
      .def(py::init(&PyServer::Create), py::arg("node"), py::arg("handler"),
           py::arg("options"))
      .def("stats", &PyServer::Stats)
      .def("close", &PyServer::Close);
}

}  // namespace fabricmq
