# SPDX-License-Identifier: Apache-2.0
"""Exceptions of fabricmq.

Every failure of the C++ library is an ``absl::Status``; here it becomes a
:class:`Error` whose ``code`` is that status code and whose class says which
code it was. Where a built-in exception means the same thing the class also
derives from it, so ``except TimeoutError`` and ``except ConnectionError``
work as they do with redis-py or pika.

Handlers speak back with exceptions too: a worker handler raises
:class:`Retry` or :class:`Reject`; a server handler raises any
:class:`Error` (or :class:`RpcError` with an explicit code) to fail the call
with that code.
"""

from __future__ import annotations

import datetime
import enum
import math
from typing import Dict, Optional, Type, Union

__all__ = [
    "Code", "Error", "Closed", "Unknown", "InvalidArgument", "Timeout",
    "NotFound", "AlreadyExists", "PermissionDenied", "ResourceExhausted",
    "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented",
    "InternalError", "Unavailable", "DataLoss", "Unauthenticated",
    "UsageError", "ForkedError", "RpcError", "Retry", "Reject",
]


class Code(enum.IntEnum):
    """The status codes of the C++ library (``absl::StatusCode``)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class Error(Exception):
    """A failure reported by fabric. ``code`` is a :class:`Code`."""

    default_code = Code.UNKNOWN

    def __init__(self, message: str = "", code: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = Code(code) if code is not None else self.default_code

    def __str__(self) -> str:
        return self.message


class Closed(Error):
    """The object (or its node) is closed (``CANCELLED``)."""

    default_code = Code.CANCELLED


class Unknown(Error):
    """An error without a more precise code (``UNKNOWN``)."""

    default_code = Code.UNKNOWN


class InvalidArgument(Error, ValueError):
    """Bad options or input: an oversized body, a bad name, a bad value."""

    default_code = Code.INVALID_ARGUMENT


class Timeout(Error, TimeoutError):
    """A deadline passed (``DEADLINE_EXCEEDED``)."""

    default_code = Code.DEADLINE_EXCEEDED


class NotFound(Error, LookupError):
    """Something named does not exist (``NOT_FOUND``)."""

    default_code = Code.NOT_FOUND


class AlreadyExists(Error):
    """E.g. a second producer for the same queue on one node."""

    default_code = Code.ALREADY_EXISTS


class PermissionDenied(Error, PermissionError):
    """A file or directory fabric may not use (``PERMISSION_DENIED``)."""

    default_code = Code.PERMISSION_DENIED


class ResourceExhausted(Error):
    """A limit was reached: a full producer or spool, a busy server."""

    default_code = Code.RESOURCE_EXHAUSTED


class FailedPrecondition(Error):
    """E.g. a spool directory another process holds."""

    default_code = Code.FAILED_PRECONDITION


class Aborted(Error):
    """An operation was aborted (``ABORTED``)."""

    default_code = Code.ABORTED


class OutOfRange(Error, ValueError):
    """A value outside its range (``OUT_OF_RANGE``)."""

    default_code = Code.OUT_OF_RANGE


class Unimplemented(Error, NotImplementedError):
    """A newer format or version than this build reads (``UNIMPLEMENTED``)."""

    default_code = Code.UNIMPLEMENTED


class InternalError(Error):
    """An internal failure, or a server handler that raised."""

    default_code = Code.INTERNAL


class Unavailable(Error, ConnectionError):
    """No server of a service, or a peer that is not reachable."""

    default_code = Code.UNAVAILABLE


class DataLoss(Error):
    """Unrecoverable damage, e.g. a failed fsync (``DATA_LOSS``)."""

    default_code = Code.DATA_LOSS


class Unauthenticated(Error):
    """A peer failed authentication (``UNAUTHENTICATED``)."""

    default_code = Code.UNAUTHENTICATED


class UsageError(Error, RuntimeError):
    """A call the binding refuses: it would wait for itself (closing a
    worker from its own handler), or it came too late (``extend_lease``
    after the handler returned)."""

    default_code = Code.FAILED_PRECONDITION


class ForkedError(UsageError):
    """An object made before ``fork()`` was used in the child. fabric's
    threads do not survive a fork: make nodes after it (gunicorn
    ``post_fork``, or the ``spawn`` start method of multiprocessing)."""


class RpcError(Error):
    """Raised by a server handler to fail the call with ``code``; the
    caller gets the exception class of that code (``NotFound``, ...)."""

    def __init__(self, code: Union[int, Code], message: str = "") -> None:
        code = Code(code)
        if code == Code.OK:
            raise ValueError("RpcError needs an error code, not OK")
        super().__init__(message, int(code))


ERRORS_BY_CODE: Dict[int, Type[Error]] = {
    cls.default_code.value: cls
    for cls in (Closed, Unknown, InvalidArgument, Timeout, NotFound,
                AlreadyExists, PermissionDenied, ResourceExhausted,
                FailedPrecondition, Aborted, OutOfRange, Unimplemented,
                InternalError, Unavailable, DataLoss, Unauthenticated)
}


def seconds(value: Union[float, int, datetime.timedelta, None],
            what: str) -> float:
    """Returns ``value`` (seconds or a timedelta) as float seconds."""
    if value is None:
        return 0.0
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be seconds or a timedelta, not "
                        f"{type(value).__name__}")
    if math.isnan(value) or value < 0:
        raise InvalidArgument(f"{what} must not be negative")
    return float(value)


class Retry(Exception):
    """Raised by a worker handler: deliver the task again after ``delay``
    (seconds or a timedelta; 0 means the producer's exponential backoff).
    Counts an attempt; after ``max_attempts`` the task is a dead letter."""

    def __init__(self, delay: Union[float, datetime.timedelta] = 0.0,
                 reason: str = "") -> None:
        self.delay = seconds(delay, "Retry delay")
        self.reason = str(reason)
        super().__init__(self.reason or f"retry after {self.delay}s")


class Reject(Exception):
    """Raised by a worker handler: the task is a dead letter now, whatever
    attempts remain (a poison message, a bad request)."""

    def __init__(self, reason: str = "") -> None:
        self.reason = str(reason)
        super().__init__(self.reason or "rejected")
