# SPDX-License-Identifier: Apache-2.0
"""Work queues: `Producer` and `Worker` (binding of ``fabric::Producer`` and
``fabric::Worker``)."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

from . import _fabric
from .errors import ResourceExhausted, seconds
from ._base import Endpoint
from .node import Node

Seconds = Union[float, int, timedelta]
Body = Union[bytes, bytearray, memoryview, str]


class Producer(Endpoint):
    """Pushes tasks onto the work queue ``queue``. Tasks are kept until a
    worker acks them: in ``spool_dir`` on disk (they survive a restart of
    this process: the next producer on the directory delivers them again),
    or in memory when no directory is given. Each task goes to the worker
    with the most free prefetch, under a lease; it is delivered again when
    the lease runs out, its worker dies or the handler asks for a retry.
    Only deliveries whose handler started count as attempts: it becomes a
    dead letter after ``max_attempts`` of them fail, or when
    ``max_worker_crashes`` workers in a row died while running it.

    ``fsync``: "batch" (default; group commit), "always", "interval" or
    "none" (docs/spool.md). On a secure node an existing ``spool_dir`` that
    group or others may access is refused (FailedPrecondition,
    FAB-SEC-FILE-PERMS) unless ``allow_shared_files`` (docs/security.md). ``on_completed(completion)`` runs on the
    producer's callback thread for each task that is acked or
    dead-lettered, in order; an exception it raises is reported and the
    next completion still comes.

    Thread safety: every method may be called from any thread.
    """

    def __init__(self, node: Node, queue: str, *,
                 spool_dir: Union[str, "os.PathLike[str]", None] = None,
                 allow_shared_files: bool = False,
                 fsync: str = "batch",
                 fsync_interval: Seconds = 0.1,
                 max_bytes: int = 1 << 30,
                 push_timeout: Seconds = 30.0,
                 lease: Seconds = 30.0,
                 max_attempts: int = 5,
                 max_worker_crashes: int = 5,
                 retry_backoff: Seconds = 1.0,
                 max_retry_backoff: Seconds = 300.0,
                 max_batch: int = 512,
                 on_completed: Optional[Callable[[_fabric.Completion],
                                                 Any]] = None) -> None:
        self._push_timeout = seconds(push_timeout, "push_timeout")
        self._queue = queue
        self._spool_dir = None if spool_dir is None else os.fspath(spool_dir)
        options = dict(queue=queue, spool_dir=self._spool_dir,
                       allow_shared_files=allow_shared_files, fsync=fsync,
                       fsync_interval=fsync_interval, max_bytes=max_bytes,
                       push_timeout=push_timeout, lease=lease,
                       max_attempts=max_attempts,
                       max_worker_crashes=max_worker_crashes,
                       retry_backoff=retry_backoff,
                       max_retry_backoff=max_retry_backoff,
                       max_batch=max_batch, on_completed=on_completed)
        self._attach(node, _fabric.Producer(node._impl, options))

    def push(self, body: Body, headers: Optional[Dict[str, str]] = None, *,
             timeout: Optional[Seconds] = None) -> _fabric.TaskId:
        """Pushes one task and returns its id once it is confirmed: durable
        under the fsync policy (at once without a spool). When the producer
        is full (``max_bytes`` held unacked) it waits for room up to
        ``timeout`` (default ``push_timeout``), then raises
        ResourceExhausted. Ctrl-C interrupts the wait."""
        return self._impl.push(body, headers, timeout)

    def push_nowait(self, body: Body,
                    headers: Optional[Dict[str, str]] = None, *,
                    timeout: Optional[Seconds] = None) -> _fabric.TaskId:
        """Like :meth:`push`, but returns once the task is appended, before
        it is durable: the fast way to push many; then
        ``wait_confirmed(last_id)``."""
        return self._impl.push_nowait(body, headers, timeout)

    async def push_async(self, body: Body,
                         headers: Optional[Dict[str, str]] = None, *,
                         timeout: Optional[Seconds] = None) -> _fabric.TaskId:
        """``await``-able :meth:`push`: the event loop keeps running while
        the task becomes durable (and while a full producer makes room)."""
        loop = asyncio.get_running_loop()
        limit = self._push_timeout if timeout is None else seconds(
            timeout, "timeout")
        deadline = time.monotonic() + limit
        delay = 0.001
        while True:
            task_id = self._impl.try_push(body, headers)
            if task_id is not None:
                break
            if time.monotonic() >= deadline:
                raise ResourceExhausted(
                    f"producer for queue {self._queue} is full: no room "
                    f"within {limit}s (workers have not acked enough)")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        future = loop.create_future()
        self._impl.watch_confirmed(task_id.seq, loop, future)
        await future
        return task_id

    def wait_confirmed(self, task: Union[_fabric.TaskId, int],
                       timeout: Optional[Seconds] = None) -> None:
        """Waits until every task up to ``task`` (an id or a seq) is
        confirmed; raises Timeout, or the spool's error."""
        seq = task.seq if isinstance(task, _fabric.TaskId) else task
        self._impl.wait_confirmed(seq, timeout)

    def wait_completed(self, timeout: Optional[Seconds] = None) -> None:
        """Waits until every task pushed (or recovered from the spool) so
        far is acked or dead-lettered; raises Timeout after ``timeout``."""
        self._impl.wait_completed(timeout)

    @property
    def queue(self) -> str:
        return self._queue

    @property
    def spool_dir(self) -> Optional[str]:
        return self._spool_dir

    @property
    def producer_id(self) -> str:
        """The persistent id in every TaskId (the spool's id)."""
        return self._impl.producer_id

    @property
    def confirmed_seq(self) -> int:
        return self._impl.confirmed_seq


    def dead_letters(self) -> List[_fabric.DeadLetter]:
        """The dead letters: kept in memory for a memory-only producer,
        read from the spool otherwise (``fabric dlq replay DIR`` puts them
        back)."""
        return self._impl.dead_letters()

    def close(self) -> None:
        """Stops dispatching; spooled tasks stay for the next producer on
        the directory. Idempotent."""
        super().close()


    def __repr__(self) -> str:
        where = self._spool_dir or "memory"
        return f"<fabricmq.Producer queue={self._queue} {where}>"


class Worker(Endpoint):
    """Serves work queues: runs ``handler(task)`` for each task on
    ``concurrency`` threads, holding up to ``prefetch`` tasks. How the
    handler ends decides the task's fate:

    - returns (any value): acked, never delivered again;
    - raises :class:`fabricmq.Retry(delay, reason)`: delivered again after
      ``delay`` (0: the producer's exponential backoff);
    - raises :class:`fabricmq.Reject(reason)`: a dead letter now;
    - raises anything else: logged (logger "fabricmq") and retried with
      backoff; the exception's last line is the reason recorded, and after
      ``max_attempts`` the task is a dead letter.

    Handlers run on fabric's threads, never on the node's engine thread, so
    a slow handler does not stall heartbeats; for long tasks call
    ``task.extend_lease(seconds)``. Python runs one thread at a time: for
    CPU-bound handlers run several worker processes rather than a high
    ``concurrency``.

    Thread safety: every method may be called from any thread, except
    ``close`` from the worker's own handler (UsageError).
    """

    def __init__(self, node: Node, queues: Union[str, Iterable[str]],
                 handler: Callable[[_fabric.Task], Any], *,
                 concurrency: int = 1,
                 prefetch: int = 256,
                 dedup_window: Seconds = 300.0,
                 dedup_max: int = 1 << 20,
                 drain_timeout: Seconds = 10.0) -> None:
        self._node = node
        self._queues = [queues] if isinstance(queues, str) else list(queues)
        options = dict(queues=self._queues, concurrency=concurrency,
                       prefetch=prefetch, dedup_window=dedup_window,
                       dedup_max=dedup_max, drain_timeout=drain_timeout)
        self._attach(node, _fabric.Worker(node._impl, handler, options))

    @property
    def queues(self) -> List[str]:
        return list(self._queues)


    def run(self, timeout: Optional[Seconds] = None) -> bool:
        """Serves until the node closes, Ctrl-C or SIGTERM (see
        ``Node.wait``)."""
        return self._node.wait(timeout)

    def close(self) -> None:
        """Stops taking tasks, hands waiting ones back unrun, lets running
        handlers finish (up to ``drain_timeout``). Idempotent."""
        super().close()


    def __repr__(self) -> str:
        return f"<fabricmq.Worker queues={self._queues}>"


def dead_letters(spool_dir: Union[str, "os.PathLike[str]"]
                 ) -> List[_fabric.DeadLetter]:
    """Reads the dead letters of a spool directory without changing it
    (also while a producer has it open)."""
    return _fabric.scan_dead_letters(os.fspath(spool_dir))
