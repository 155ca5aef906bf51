# SPDX-License-Identifier: Apache-2.0
"""fabricmq: brokerless work queues, pub/sub and request/reply for Python.

A binding of the fabric C++ library (not a second implementation): nodes
find each other by themselves, producers keep their tasks in a local disk
spool until a worker acks them, workers that die have their tasks
redelivered, failed tasks are retried with backoff and end as dead letters,
durable topics replay what a subscriber missed, and calls fail over to
another server. There is no broker to run.

    import fabricmq as fm

    with fm.Node(name="web") as node, \\
         fm.Producer(node, "thumbnails", spool_dir="/var/lib/app/spool") as q:
        q.push(b"/uploads/cat.png")          # on disk when it returns

    def make_thumbnail(task: fm.Task) -> None:
        ...                                  # return: ack; raise: retry

    with fm.Node(name="worker") as node, \\
         fm.Worker(node, "thumbnails", make_thumbnail):
        node.wait()                          # until Ctrl-C or SIGTERM

docs/python.md has the whole API, the threading rules and what an exception
in each callback does.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import traceback
from typing import Any, List, Tuple

from . import _fabric
from .errors import (Aborted, AlreadyExists, Closed, Code, DataLoss, Error,
                     FailedPrecondition, ForkedError, InternalError,
                     InvalidArgument, NotFound, OutOfRange, PermissionDenied,
                     Reject, ResourceExhausted, Retry, RpcError, Timeout,
                     Unauthenticated, Unavailable, Unimplemented, Unknown,
                     UsageError, ERRORS_BY_CODE)
from ._fabric import (Completion, DeadLetter, GapEvent, Message, NodeStats,
                      PeerEvent, PeerInfo, ProducerStats, PublisherStats,
                      Reply, Request, Responder, ServerStats, SubscriberStats,
                      Task, TaskId, WorkerStats, ClientStats)
from .node import Node
from .work_queue import Producer, Worker, dead_letters
from .pubsub import Publisher, Subscriber
from .reqrep import Client, Server

__version__ = _fabric.fabric_version
zmq_version = _fabric.zmq_version

__all__ = [
    "Node", "Producer", "Worker", "Publisher", "Subscriber", "Client",
    "Server", "Task", "TaskId", "Completion", "DeadLetter", "Message",
    "GapEvent", "Request", "Reply", "Responder", "PeerInfo", "PeerEvent",
    "NodeStats", "ProducerStats", "WorkerStats", "PublisherStats",
    "SubscriberStats", "ClientStats", "ServerStats", "dead_letters",
    "set_log_level", "keygen", "new_beacon_secret", "Code", "Error", "Closed", "Unknown", "InvalidArgument",
    "Timeout", "NotFound", "AlreadyExists", "PermissionDenied",
    "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
    "Unimplemented", "InternalError", "Unavailable", "DataLoss",
    "Unauthenticated", "UsageError", "ForkedError", "RpcError", "Retry",
    "Reject",
]

log = logging.getLogger("fabricmq")

# How long the exit hook waits for fabric threads to leave Python before it
# ends the process with os._exit(70) (docs/python.md, "Exit").
EXIT_TIMEOUT = 30.0


def set_log_level(level: str) -> None:
    """Sets the C++ library's log level: "debug", "info", "warning" (the
    default, or $FABRIC_LOG_LEVEL), "error" or "off". Its lines go to
    stderr."""
    _fabric.set_log_level(level)


def keygen(name: str, dir: str = ".", force: bool = False) -> str:
    """Makes a node keypair for secure mode (docs/security.md), as
    ``fabric keygen``: DIR/NAME.key (the secret, mode 0600) and
    DIR/NAME.pub (its roster entry, 0644); DIR is made (0700) if missing.
    Returns the key's fingerprint. Raises AlreadyExists without
    ``force``."""
    return _fabric.keygen(name, dir, force)


def new_beacon_secret(path: str) -> None:
    """Writes a new beacon keyring (key id 1, primary; mode 0600), as
    ``fabric keygen --beacon-secret``. Copy it to every node."""
    _fabric.new_beacon_secret(path)


def _last_line(exc_type: Any, exc: Any, tb: Any) -> str:
    lines = traceback.format_exception_only(exc_type, exc)
    return lines[-1].strip() if lines else getattr(exc_type, "__name__", "?")


def _handler_failed(task: Task, exc_type: Any, exc: Any, tb: Any) -> str:
    """A worker handler raised: log the traceback, return the reason the
    producer records ("ValueError: bad image")."""
    log.warning("handler failed on task %s (attempt %d); it will be retried",
                task.id, task.attempt, exc_info=(exc_type, exc, tb))
    return _last_line(exc_type, exc, tb)


def _describe_exception(exc_type: Any, exc: Any, tb: Any) -> str:
    """A server handler raised something other than fabricmq.Error: log it,
    return what the caller sees after "handler raised "."""
    log.warning("server handler failed", exc_info=(exc_type, exc, tb))
    return _last_line(exc_type, exc, tb)


def _resolve_futures(items: List[Tuple[Any, Any, bool]]) -> None:
    """Runs on an asyncio loop: settles each (future, value, is_error)."""
    for future, value, is_error in items:
        if future.done():  # cancelled by its awaiter meanwhile
            continue
        if is_error:
            future.set_exception(value)
        else:
            future.set_result(value)


def _resolve_future(future: Any, value: Any, is_error: bool) -> None:
    """Settles a concurrent.futures.Future unless it was cancelled."""
    if not future.set_running_or_notify_cancel():
        return
    if is_error:
        future.set_exception(value)
    else:
        future.set_result(value)


_fabric._init({
    "errors_by_code": ERRORS_BY_CODE,
    "Error": Error,
    "UsageError": UsageError,
    "ForkedError": ForkedError,
    "Retry": Retry,
    "Reject": Reject,
    "_handler_failed": _handler_failed,
    "_describe_exception": _describe_exception,
    "_resolve_futures": _resolve_futures,
    "_resolve_future": _resolve_future,
})


def _at_exit() -> None:
    # Registered at import, so it runs after the exit hooks the program
    # registers later: those may still use fabric objects.
    if _fabric._shutdown(EXIT_TIMEOUT):
        return
    try:
        sys.stderr.write(
            "fabricmq: fabric threads were still running Python code at "
            "exit; ending the process now (exit status 70)\n")
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(70)


atexit.register(_at_exit)
