# SPDX-License-Identifier: Apache-2.0
"""Request/reply in one process: replies, error codes, handler exceptions,
deferred replies, futures, asyncio and failover."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

import pytest

import fabricmq as fm


def serve(nodes, service, handler, **kw):
    node = nodes("server")
    return node, fm.Server(node, service, handler, **kw)


def test_call_and_reply(nodes):
    _, server = serve(nodes, "echo",
                      lambda r: r.body + r.headers.get("x", "").encode())
    with fm.Client(nodes("client")) as client:
        client.wait_for_server("echo", timeout=20)
        reply = client.call("echo", b"hi", headers={"x": "!"})
        assert reply.body == b"hi!" and reply.attempts == 1
        assert len(reply.server) == 32
        assert client.call("echo", "text").body == b"text"
        assert client.servers("echo") == [reply.server]
        assert client.stats().ok == 2
    assert server.stats().replied == 2


def test_request_fields(nodes):
    seen = []

    def handler(req):
        seen.append((req.service, req.body, req.idempotency_key, req.attempt,
                     req.deadline, len(req.client), req.id))
        return None  # an empty reply

    serve(nodes, "fields", handler)
    client = fm.Client(nodes("c"))
    assert client.call("fields", b"b", idempotency_key="k-1",
                       wait_for_server=True, timeout=20).body == b""
    service, body, key, attempt, deadline, client_len, _ = seen[0]
    assert (service, body, key, attempt, client_len) == ("fields", b"b",
                                                        "k-1", 1, 32)
    assert deadline.tzinfo is not None


def test_error_codes_and_handler_exceptions(nodes):
    def handler(req):
        kind = req.body.decode()
        if kind == "notfound":
            raise fm.NotFound("no such image")
        if kind == "rpc":
            raise fm.RpcError(fm.Code.PERMISSION_DENIED, "go away")
        if kind == "bug":
            raise KeyError("oops")
        if kind == "int":
            return 42
        return b"fine"

    _, server = serve(nodes, "err", handler)
    client = fm.Client(nodes("c"), timeout=10)
    client.wait_for_server("err", timeout=20)
    with pytest.raises(fm.NotFound, match="no such image"):
        client.call("err", "notfound")
    with pytest.raises(fm.PermissionDenied, match="go away"):
        client.call("err", "rpc")
    with pytest.raises(fm.InternalError, match="handler raised KeyError"):
        client.call("err", "bug")
    with pytest.raises(fm.InternalError, match="returned int"):
        client.call("err", "int")
    assert client.call("err", "ok").body == b"fine"


def test_deferred_reply_from_another_thread(nodes):
    def handler(req, responder):
        def later():
            time.sleep(0.05)
            if req.body == b"fail":
                responder.fail(fm.Code.ABORTED, "changed my mind")
            else:
                responder.reply(req.body.upper())
            with pytest.raises(fm.FailedPrecondition):
                responder.reply(b"twice")
        threading.Thread(target=later).start()

    serve(nodes, "later", handler, deferred=True)
    client = fm.Client(nodes("c"))
    client.wait_for_server("later", timeout=20)
    assert client.call("later", b"abc").body == b"ABC"
    with pytest.raises(fm.Aborted, match="changed my mind"):
        client.call("later", b"fail")


def test_deferred_handler_that_drops_the_responder(nodes):
    serve(nodes, "drop", lambda req, responder: None, deferred=True)
    client = fm.Client(nodes("c"))
    client.wait_for_server("drop", timeout=20)
    with pytest.raises(fm.InternalError):
        client.call("drop", b"x")


def test_call_future_and_async(nodes):
    serve(nodes, "sq", lambda r: str(int(r.body) ** 2))
    client = fm.Client(nodes("c"))
    client.wait_for_server("sq", timeout=20)
    futures = [client.call_future("sq", str(i)) for i in range(50)]
    done = [f.result(timeout=20).body for f in futures]
    assert done == [str(i * i).encode() for i in range(50)]
    failing = client.call_future("nobody", b"x")
    with pytest.raises(fm.Unavailable):
        failing.result(timeout=20)

    async def main():
        replies = await asyncio.gather(
            *(client.call_async("sq", str(i)) for i in range(50)))
        assert [r.body for r in replies] == [str(i * i).encode()
                                             for i in range(50)]
        with pytest.raises(fm.Unavailable):
            await client.call_async("nobody", b"x")
        # A cancelled awaiter: the late result is dropped quietly.
        task = asyncio.ensure_future(client.call_async("sq", b"3"))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_timeout_and_failover(nodes):
    stop = threading.Event()

    def stuck(req):
        stop.wait(10)
        return b"too late"

    _, slow = serve(nodes, "fo", stuck, threads=1)
    fast_node = nodes("fast")
    fm.Server(fast_node, "fo", lambda r: b"fast")
    client = fm.Client(nodes("c"))
    from conftest import wait_until
    wait_until(lambda: len(client.servers("fo")) == 2, what="two servers")
    # Every call either lands on the fast server or fails over to it.
    for _ in range(5):
        reply = client.call("fo", b"x", timeout=5, attempt_timeout=0.2)
        assert reply.body == b"fast"
    stop.set()
    with pytest.raises(fm.Timeout):
        only = fm.Client(nodes("c2"))
        blocked = threading.Event()
        serve(nodes, "never", lambda r: blocked.wait(5) and b"", threads=1)
        only.wait_for_server("never", timeout=20)
        only.call("never", b"x", timeout=0.3, max_attempts=1)
    blocked.set()


def test_close_from_own_handler(nodes):
    box = {}
    errors = []

    def handler(req):
        try:
            box["server"].close()
        except fm.UsageError as e:
            errors.append(e)
        return b"ok"

    node = nodes("s")
    box["server"] = fm.Server(node, "self", handler)
    client = fm.Client(nodes("c"))
    client.wait_for_server("self", timeout=20)
    assert client.call("self", b"x").body == b"ok"
    assert len(errors) == 1
