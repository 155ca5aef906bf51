# SPDX-License-Identifier: Apache-2.0
"""Publish/subscribe: `Publisher` and `Subscriber` (binding of
``fabric::Publisher`` and ``fabric::Subscriber``)."""

from __future__ import annotations

import asyncio
import collections
import datetime
import os
import threading
from datetime import timedelta
from typing import (Any, AsyncIterator, Callable, Deque, Dict, Iterable,
                    Iterator, List, Optional, Union)

from . import _fabric
from .errors import Closed, Error, Timeout
from ._base import Endpoint
from .node import Node

Seconds = Union[float, int, timedelta]
Body = Union[bytes, bytearray, memoryview, str]
Start = Union[str, int, datetime.datetime]


class Publisher(Endpoint):
    """Publishes messages on topics to every subscriber of the cluster.
    Each topic is a stream numbered from 1, so subscribers see gaps. Topics
    in ``durable_topics`` are also kept in a log in ``spool_dir``, and a
    subscriber that missed messages of those gets them replayed. On a
    secure node an existing log that group or others may access is refused
    (FailedPrecondition, FAB-SEC-FILE-PERMS) unless ``allow_shared_files``.

    Thread safety: every method may be called from any thread.
    """

    def __init__(self, node: Node, *,
                 durable_topics: Iterable[str] = (),
                 spool_dir: Union[str, "os.PathLike[str]", None] = None,
                 allow_shared_files: bool = False,
                 fsync: str = "batch",
                 fsync_interval: Seconds = 0.1,
                 retention_bytes: int = 1 << 30,
                 retention_age: Optional[Seconds] = None,
                 segment_bytes: int = 16 << 20,
                 send_hwm: int = 10000,
                 max_message_bytes: int = 1 << 20,
                 beat_interval: Seconds = 1.0,
                 bind_host: Optional[str] = None) -> None:
        options = dict(durable_topics=list(durable_topics),
                       spool_dir=None if spool_dir is None
                       else os.fspath(spool_dir),
                       allow_shared_files=allow_shared_files,
                       fsync=fsync, fsync_interval=fsync_interval,
                       retention_bytes=retention_bytes,
                       retention_age=retention_age,
                       segment_bytes=segment_bytes, send_hwm=send_hwm,
                       max_message_bytes=max_message_bytes,
                       beat_interval=beat_interval, bind_host=bind_host)
        self._attach(node, _fabric.Publisher(node._impl, options))

    def publish(self, topic: str, body: Body,
                headers: Optional[Dict[str, str]] = None) -> int:
        """Publishes and returns the message's seq in its topic's stream.
        Never blocks on the network or the disk."""
        return self._impl.publish(topic, body, headers)

    def wait_for_subscribers(self, n: int = 1,
                             timeout: Optional[Seconds] = None) -> None:
        """Waits until ``n`` subscribers are connected; raises Timeout."""
        self._impl.wait_for_subscribers(n, timeout)

    def flush(self, timeout: Optional[Seconds] = None) -> None:
        """Waits until every durable message published so far is on disk
        and handed to the network."""
        self._impl.flush(timeout)

    @property
    def endpoint(self) -> str:
        return self._impl.endpoint

    def close(self) -> None:
        """Stops advertising, flushes the topic logs and sends what is
        queued. Idempotent."""
        super().close()


class Subscriber(Endpoint):
    """Receives the messages of topic ``prefixes`` ("" for all) from every
    publisher of the cluster, in order per stream, without duplicates, and
    counts what it will never get as gaps (``on_gap``).

    Take messages with ``next()``, ``for msg in sub`` or ``async for msg in
    sub``, or give a ``handler(msg)`` that runs on the subscriber's own
    thread. A ``durable_name`` (with ``state_dir``) keeps the position in
    each durable stream across restarts (on a secure node an existing
    ``state_dir`` or position file open to group or others is refused
    unless ``allow_shared_files``): replay resumes there, or at
    ``start`` ("latest", "earliest", a seq, a datetime or "-5m") the first
    time. The position of a message is committed when it is handed over
    (``next`` returns it, or the handler returns, even by raising): a crash
    while processing it loses it for this subscriber. ``async for`` takes a
    message when the loop asks for the next one; with ``read_ahead=N`` it
    takes up to N more ahead (faster), and those count as handed over even
    if the loop is left before it reads them.

    Thread safety: every method may be called from any thread, except
    ``close`` from the subscriber's own handler (UsageError).
    """

    def __init__(self, node: Node, prefixes: Union[str, Iterable[str]] = "",
                 *, durable_name: Optional[str] = None,
                 state_dir: Union[str, "os.PathLike[str]", None] = None,
                 allow_shared_files: bool = False,
                 start: Start = "latest",
                 handler: Optional[Callable[[_fabric.Message], Any]] = None,
                 on_gap: Optional[Callable[[_fabric.GapEvent], Any]] = None,
                 receive_hwm: int = 10000,
                 max_pending: int = 10000,
                 max_held: int = 100000,
                 replay_batch: int = 8192,
                 replay_bytes: int = 2 << 20,
                 replay_timeout: Seconds = 5.0,
                 max_message_bytes: int = 1 << 20,
                 read_ahead: int = 0) -> None:
        self._prefixes = ([prefixes] if isinstance(prefixes, str)
                          else list(prefixes))
        if read_ahead < 0:
            raise ValueError("read_ahead must not be negative")
        self._read_ahead = read_ahead
        options = dict(prefixes=self._prefixes, durable_name=durable_name,
                       state_dir=None if state_dir is None
                       else os.fspath(state_dir),
                       allow_shared_files=allow_shared_files,
                       start=start, handler=handler, on_gap=on_gap,
                       receive_hwm=receive_hwm, max_pending=max_pending,
                       max_held=max_held, replay_batch=replay_batch,
                       replay_bytes=replay_bytes,
                       replay_timeout=replay_timeout,
                       max_message_bytes=max_message_bytes)
        self._attach(node, _fabric.Subscriber(node._impl, options))

    def next(self, timeout: Optional[Seconds] = None) -> _fabric.Message:
        """The next message; raises Timeout after ``timeout`` (None: wait
        until one comes) and Closed once closed. Ctrl-C interrupts it."""
        return self._impl.next(timeout)

    def __iter__(self) -> Iterator[_fabric.Message]:
        """Yields messages until the subscriber is closed."""
        while True:
            try:
                yield self._impl.next(None)
            except Closed:
                return

    def __aiter__(self) -> AsyncIterator[_fabric.Message]:
        """``async for msg in sub``: a helper thread takes each message the
        loop asks for (plus up to ``read_ahead`` ahead, default 0) and hands
        them to the event loop in batches. Ends when the subscriber is
        closed."""
        return _messages(self)

    def wait_for_publishers(self, n: int = 1,
                            timeout: Optional[Seconds] = None) -> None:
        """Waits until ``n`` publishers are connected; raises Timeout."""
        self._impl.wait_for_publishers(n, timeout)

    def close(self) -> None:
        """Stops receiving and saves the positions. Idempotent."""
        super().close()


    def __repr__(self) -> str:
        return f"<fabricmq.Subscriber prefixes={self._prefixes}>"


_END = object()


class _Pump:
    """Takes messages for ``async for`` on a daemon thread that waits in
    ``next`` (without the GIL) and hands each batch to the loop with one
    ``call_soon_threadsafe``. It takes one message for each one the
    consumer asks for, plus at most ``read_ahead`` ahead of it, so that
    leaving the loop early leaves the rest with the subscriber. The thread
    holds no reference to the iterator; ``stop`` ends it within 0.1 s."""

    def __init__(self, impl: Any, loop: asyncio.AbstractEventLoop,
                 read_ahead: int) -> None:
        self._impl = impl
        self._loop = loop
        self.ready: Deque[Any] = collections.deque()
        self.waiter: Optional[asyncio.Future[None]] = None
        self._credits = threading.Semaphore(read_ahead)
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True,
                         name="fabricmq-subscriber-pump").start()

    def ask(self) -> None:
        self._credits.release()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._credits.acquire(timeout=0.1):
                continue
            if self._stop.is_set():
                return
            try:
                first = self._impl.next(0.1)
            except Timeout:
                self._credits.release()
                continue
            except Closed:
                self._post([_END])
                return
            except Error as e:
                self._post([e, _END])
                return
            extra = 0
            while extra < 1023 and self._credits.acquire(blocking=False):
                extra += 1
            batch: List[Any] = [first]
            if extra:
                try:
                    batch.extend(self._impl.take_ready(extra))
                except Error:
                    pass
                for _ in range(extra - (len(batch) - 1)):
                    self._credits.release()
            if not self._post(batch):
                return

    def _post(self, batch: List[Any]) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._deliver, batch)
            return True
        except RuntimeError:  # the loop is closed
            return False

    def _deliver(self, batch: List[Any]) -> None:
        self.ready.extend(batch)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


async def _messages(sub: "Subscriber") -> AsyncIterator[_fabric.Message]:
    """The async generator behind ``async for msg in sub``. When the loop
    is left (break, an exception, the generator closed), the pump stops."""
    loop = asyncio.get_running_loop()
    pump = _Pump(sub._impl, loop, sub._read_ahead)
    try:
        while True:
            pump.ask()  # one more message, please
            while not pump.ready:
                pump.waiter = loop.create_future()
                try:
                    await pump.waiter
                finally:
                    pump.waiter = None
            item = pump.ready.popleft()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        pump.stop()
