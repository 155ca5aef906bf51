# SPDX-License-Identifier: Apache-2.0
"""Request/reply: `Client` and `Server` (binding of ``fabric::Client`` and
``fabric::Server``)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from datetime import timedelta
from typing import Any, Callable, Dict, List, Optional, Union

from . import _fabric
from ._base import Endpoint
from .node import Node

Seconds = Union[float, int, timedelta]
Body = Union[bytes, bytearray, memoryview, str]


def _call_options(timeout: Optional[Seconds],
                  attempt_timeout: Optional[Seconds],
                  max_attempts: Optional[int],
                  idempotency_key: Optional[str],
                  headers: Optional[Dict[str, str]],
                  wait_for_server: bool) -> Dict[str, Any]:
    return dict(timeout=timeout, attempt_timeout=attempt_timeout,
                max_attempts=max_attempts, idempotency_key=idempotency_key,
                headers=headers, wait_for_server=wait_for_server)


class Client(Endpoint):
    """Calls named services. Each call goes to the live server with the
    fewest calls outstanding; an attempt unanswered for ``attempt_timeout``
    (default ``timeout / max_attempts``), or whose server dies or refuses
    it, is sent to another server, within the call's deadline. A call ends
    with the first reply, or raises Timeout, Unavailable (no server) or the
    exception of the code the handler failed with.

    Thread safety: every method may be called from any thread.
    """

    def __init__(self, node: Node, *, timeout: Seconds = 5.0,
                 attempt_timeout: Optional[Seconds] = None,
                 max_attempts: int = 3,
                 max_request_bytes: int = 4 << 20,
                 spin_wait: Seconds = 0.001) -> None:
        options = dict(timeout=timeout, attempt_timeout=attempt_timeout,
                       max_attempts=max_attempts,
                       max_request_bytes=max_request_bytes,
                       spin_wait=spin_wait)
        self._attach(node, _fabric.Client(node._impl, options))

    def call(self, service: str, body: Body, *,
             timeout: Optional[Seconds] = None,
             attempt_timeout: Optional[Seconds] = None,
             max_attempts: Optional[int] = None,
             idempotency_key: Optional[str] = None,
             headers: Optional[Dict[str, str]] = None,
             wait_for_server: bool = False) -> _fabric.Reply:
        """Calls ``service`` and returns its Reply (``.body``, ``.server``,
        ``.attempts``). ``idempotency_key``: servers run a key once within
        their dedup window. ``wait_for_server``: wait for a server to
        appear instead of raising Unavailable at once. Ctrl-C gives the
        call up."""
        return self._impl.call(service, body, _call_options(
            timeout, attempt_timeout, max_attempts, idempotency_key, headers,
            wait_for_server))

    def call_future(self, service: str, body: Body, *,
                    timeout: Optional[Seconds] = None,
                    attempt_timeout: Optional[Seconds] = None,
                    max_attempts: Optional[int] = None,
                    idempotency_key: Optional[str] = None,
                    headers: Optional[Dict[str, str]] = None,
                    wait_for_server: bool = False
                    ) -> "concurrent.futures.Future[_fabric.Reply]":
        """Like :meth:`call`, returning at once with a
        ``concurrent.futures.Future`` of the Reply."""
        future: concurrent.futures.Future[_fabric.Reply] = (
            concurrent.futures.Future())
        self._impl.call_later(service, body, _call_options(
            timeout, attempt_timeout, max_attempts, idempotency_key, headers,
            wait_for_server), future)
        return future

    async def call_async(self, service: str, body: Body, *,
                         timeout: Optional[Seconds] = None,
                         attempt_timeout: Optional[Seconds] = None,
                         max_attempts: Optional[int] = None,
                         idempotency_key: Optional[str] = None,
                         headers: Optional[Dict[str, str]] = None,
                         wait_for_server: bool = False) -> _fabric.Reply:
        """``await``-able :meth:`call`. Cancelling the awaiting task
        abandons the result (the call itself runs to its end)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._impl.call_later(service, body, _call_options(
            timeout, attempt_timeout, max_attempts, idempotency_key, headers,
            wait_for_server), future, loop)
        return await future

    def servers(self, service: str) -> List[str]:
        """Ids of the nodes serving ``service`` known now."""
        return self._impl.servers(service)

    def wait_for_server(self, service: str,
                        timeout: Optional[Seconds] = None) -> None:
        """Waits until a server of ``service`` is known; raises Timeout."""
        self._impl.wait_for_server(service, timeout)

    def close(self) -> None:
        """Fails the calls still running with Closed. Idempotent."""
        super().close()


class Server(Endpoint):
    """Serves the named ``service``: runs ``handler(request)`` on
    ``threads`` threads and sends what it returns (bytes-like or str; None
    is an empty reply) as the reply. Raising a :class:`fabricmq.Error`
    (``NotFound("no such image")``, ``RpcError(code, message)``) fails the
    call with that code; any other exception fails it with INTERNAL
    ("handler raised ValueError: ...") and is logged.

    With ``deferred=True`` the handler is ``handler(request, responder)``
    and answers through ``responder.reply(body)`` or
    ``responder.fail(code, message)``, from any thread, now or later.

    Thread safety: every method may be called from any thread, except
    ``close`` from the server's own handler (UsageError).
    """

    def __init__(self, node: Node, service: str,
                 handler: Callable[..., Any], *,
                 threads: int = 4,
                 max_pending: int = 1024,
                 max_request_bytes: int = 4 << 20,
                 max_reply_bytes: int = 4 << 20,
                 dedup_window: Seconds = 60.0,
                 dedup_max_entries: int = 10000,
                 dedup_max_bytes: int = 64 << 20,
                 drain_timeout: Seconds = 10.0,
                 deferred: bool = False) -> None:
        self._service = service
        options = dict(service=service, threads=threads,
                       max_pending=max_pending,
                       max_request_bytes=max_request_bytes,
                       max_reply_bytes=max_reply_bytes,
                       dedup_window=dedup_window,
                       dedup_max_entries=dedup_max_entries,
                       dedup_max_bytes=dedup_max_bytes,
                       drain_timeout=drain_timeout, deferred=deferred)
        self._attach(node, _fabric.Server(node._impl, handler, options))

    @property
    def service(self) -> str:
        return self._service

    def close(self) -> None:
        """Stops advertising, answers what was accepted (up to
        ``drain_timeout``) and leaves. Idempotent."""
        super().close()


    def __repr__(self) -> str:
        return f"<fabricmq.Server service={self._service}>"
