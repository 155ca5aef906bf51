# SPDX-License-Identifier: Apache-2.0
"""`Node`: one identity in a cluster (binding of ``fabric::Node``)."""

from __future__ import annotations

import asyncio
import signal
import threading
from datetime import timedelta
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Union

from . import _fabric

Seconds = Union[float, int, timedelta]


class _Terminated(BaseException):
    """SIGTERM arrived during Node.wait."""


class Node:
    """A node: binds a mailbox, finds the other nodes of its cluster (UDP
    beacons on loopback by default, a LAN interface, or seed endpoints),
    keeps them alive with heartbeats and reports peers coming and going.
    Producers, workers, publishers, subscribers, clients and servers are
    made on a node; closing the node closes them first.

    Every option has the C++ default (docs/python.md lists them):
    ``discovery`` is "loopback", or "seeds" when ``seeds`` are given;
    durations are seconds or timedeltas. Secure mode (docs/security.md):
    ``key_file``, ``roster`` (a directory of ``*.pub`` keys) and
    ``beacon_secret_file``, paths made with ``fabric keygen``; any of them
    turns it on, and a missing or unsafe one raises FailedPrecondition.
    ``on_peer_event(event)`` runs on
    the node's event thread, one event at a time; an exception it raises is
    reported (``sys.unraisablehook``) and the next event still comes.

    Thread safety: every method may be called from any thread.
    """

    def __init__(self, name: Optional[str] = None, *,
                 cluster: str = "default",
                 discovery: Optional[str] = None,
                 interface: Optional[str] = None,
                 beacon_port: int = 47470,
                 seeds: Optional[Iterable[str]] = None,
                 mailbox_port: int = 0,
                 headers: Optional[Dict[str, str]] = None,
                 beacon_interval: Seconds = 1.0,
                 heartbeat_interval: Seconds = 1.0,
                 suspect_timeout: Seconds = 2.0,
                 dead_timeout: Seconds = 3.0,
                 disconnect_grace: Seconds = 0.3,
                 max_message_bytes: int = 16 << 20,
                 linger: Seconds = 0.2,
                 security: Optional[str] = None,
                 key_file: Optional[str] = None,
                 roster: Optional[str] = None,
                 beacon_secret_file: Optional[str] = None,
                 on_peer_event: Optional[Callable[[_fabric.PeerEvent],
                                                  Any]] = None) -> None:
        options = dict(name=name, cluster=cluster, discovery=discovery,
                       interface=interface, beacon_port=beacon_port,
                       seeds=None if seeds is None else list(seeds),
                       mailbox_port=mailbox_port, headers=headers,
                       beacon_interval=beacon_interval,
                       heartbeat_interval=heartbeat_interval,
                       suspect_timeout=suspect_timeout,
                       dead_timeout=dead_timeout,
                       disconnect_grace=disconnect_grace,
                       max_message_bytes=max_message_bytes, linger=linger,
                       security=security, key_file=key_file, roster=roster,
                       beacon_secret_file=beacon_secret_file,
                       on_peer_event=on_peer_event)
        self._impl = _fabric.Node(options)
        self._objects: Set[Any] = set()
        self._objects_lock = threading.Lock()

    @classmethod
    def from_env(cls, name: Optional[str] = None, **overrides: Any) -> "Node":
        """Makes a node from the same environment variables as the
        ``fabric`` command: FABRIC_CLUSTER, FABRIC_DISCOVERY,
        FABRIC_INTERFACE, FABRIC_BEACON_PORT, FABRIC_SEEDS
        (comma-separated; alone they mean seeds discovery), FABRIC_SECURITY,
        FABRIC_KEY_FILE, FABRIC_ROSTER and FABRIC_BEACON_SECRET_FILE; FABRIC_LOG_LEVEL
        sets the library's log level. Keyword arguments override them."""
        self = cls.__new__(cls)
        options: Dict[str, Any] = dict(overrides, name=name, from_env=True)
        if options.get("seeds") is not None:
            options["seeds"] = list(options["seeds"])
        self._impl = _fabric.Node(options)
        self._objects = set()
        self._objects_lock = threading.Lock()
        return self

    # The node holds its open objects, so that a worker made without
    # keeping a reference (``fm.Worker(node, "q", handle); node.wait()``)
    # keeps working until it or the node is closed.
    def _hold(self, obj: Any) -> None:
        with self._objects_lock:
            self._objects.add(obj)

    def _drop(self, obj: Any) -> None:
        with self._objects_lock:
            self._objects.discard(obj)

    # -- lifetime

    def close(self) -> None:
        """Closes the node's objects (workers and servers finish their
        running handlers first), says goodbye to the peers and stops.
        Idempotent. Raises UsageError from a callback of this node or of
        one of its objects."""
        self._impl.close()
        with self._objects_lock:
            self._objects.clear()

    @property
    def closed(self) -> bool:
        return self._impl.closed

    def wait(self, timeout: Optional[Seconds] = None) -> bool:
        """Blocks until the node is closed (True) or ``timeout`` passes
        (False). Ctrl-C raises KeyboardInterrupt. On the main thread, while
        it waits, SIGTERM ends the wait too (True), unless the program set
        its own SIGTERM handler: ``with`` blocks around it then close
        everything cleanly, so a service manager's stop says goodbye to the
        peers."""
        restore = None
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL):
            def on_term(signum: int, frame: Any) -> None:
                raise _Terminated()
            restore = signal.signal(signal.SIGTERM, on_term)
        try:
            return self._impl.wait(timeout)
        except _Terminated:
            return True
        finally:
            if restore is not None:
                signal.signal(signal.SIGTERM, restore)

    def __enter__(self) -> "Node":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> "Node":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    # -- identity and peers

    @property
    def id(self) -> str:
        """This node's id, 32 hex characters (new for every start)."""
        return self._impl.id

    @property
    def name(self) -> str:
        return self._impl.name

    @property
    def cluster(self) -> str:
        return self._impl.cluster

    @property
    def mailbox_endpoint(self) -> str:
        return self._impl.mailbox_endpoint

    def peers(self) -> List[_fabric.PeerInfo]:
        """The peers known now (alive and suspect), sorted by name."""
        return self._impl.peers()

    def set_offer(self, kind: str, name: str, offered: bool = True) -> None:
        """Advertises (or withdraws) an offer, e.g. ("queue", "images")."""
        self._impl.set_offer(kind, name, offered)

    def set_header(self, key: str, value: str) -> None:
        """Sets a header peers see (an empty value removes it)."""
        self._impl.set_header(key, value)

    def stats(self) -> _fabric.NodeStats:
        return self._impl.stats()

    def reload_roster(self) -> None:
        """Secure mode: re-reads the roster directory now (it is also
        re-read within 2 s of a change) and cuts off every peer whose key
        left it. Raises FailedPrecondition in plaintext mode or when the
        roster does not load (the previous one stays)."""
        self._impl.reload_roster()

    def __repr__(self) -> str:
        try:
            return (f"<fabricmq.Node {self.name} {self.id[:8]} "
                    f"{self.mailbox_endpoint}"
                    f"{' closed' if self.closed else ''}>")
        except Exception:  # e.g. in a forked child
            return "<fabricmq.Node>"
