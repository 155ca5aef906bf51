# SPDX-License-Identifier: Apache-2.0
"""Blocking calls release the GIL and give way to Ctrl-C: each waits in
short slices and runs Python's signal handlers between them. The bounds
below are generous limits that a stuck call would blow through (the calls
would otherwise wait 30 s or forever), not speed measurements."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

import fabricmq as fm

LIMIT = 10.0  # seconds; each blocked call below would otherwise wait >= 30 s


def interrupt_after(delay: float) -> threading.Timer:
    t = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    t.start()
    return t


def assert_interrupted(fn) -> None:
    timer = interrupt_after(0.3)
    start = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            fn()
    finally:
        timer.cancel()
    assert time.monotonic() - start < LIMIT


def test_push_waiting_for_room(nodes):
    producer = fm.Producer(nodes("p"), "full", max_bytes=100)
    producer.push(b"x" * 90)
    assert_interrupted(lambda: producer.push(b"y" * 90))
    producer.close()  # still closable


def test_wait_completed(nodes):
    producer = fm.Producer(nodes("p"), "nobody")
    producer.push(b"x")
    assert_interrupted(lambda: producer.wait_completed(60))
    producer.close()


def test_call(nodes):
    release = threading.Event()
    fm.Server(nodes("s"), "stuck", lambda r: release.wait(30) and b"")
    client = fm.Client(nodes("c"))
    client.wait_for_server("stuck", timeout=20)
    try:
        assert_interrupted(lambda: client.call("stuck", b"x", timeout=60,
                                               max_attempts=1))
    finally:
        release.set()
    assert client.stats().failed == 1


def test_subscriber_next(nodes):
    sub = fm.Subscriber(nodes("s"), "quiet")
    assert_interrupted(lambda: sub.next())
    sub.close()


def test_node_wait_and_sigterm(nodes):
    node = nodes("n")
    assert_interrupted(lambda: node.wait())
    # SIGTERM ends the wait quietly, so `with` blocks close cleanly.
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    start = time.monotonic()
    assert node.wait(60) is True
    assert time.monotonic() - start < LIMIT
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_gil_is_released_while_blocked(nodes):
    """Another Python thread runs while the main thread waits 2 s."""
    producer = fm.Producer(nodes("p"), "gil")
    producer.push(b"x")  # never completes: no worker
    count = 0
    stop = threading.Event()

    def spin():
        nonlocal count
        while not stop.is_set():
            count += 1
            time.sleep(0.001)

    t = threading.Thread(target=spin)
    t.start()
    with pytest.raises(fm.Timeout):
        producer.wait_completed(2)
    stop.set()
    t.join()
    # About 2000 with the GIL free; a held GIL would leave it near 0.
    assert count > 200


def test_fabric_threads_block_sigint_and_sigterm(nodes):
    """Every thread fabric starts (engine, handlers, callbacks, the bridge)
    blocks SIGINT and SIGTERM, so the signals always reach Python's main
    thread."""
    seen = threading.Event()
    node = nodes("w", on_peer_event=lambda e: None)
    fm.Worker(node, "sig", lambda t: seen.set(), concurrency=2)
    producer = fm.Producer(nodes("p"), "sig", on_completed=lambda c: None)
    fm.Client(node).call_future("nobody", b"x").exception(20)  # bridge
    producer.push(b"x")
    assert seen.wait(20)
    python_threads = {t.native_id for t in threading.enumerate()}
    fabric_threads = 0
    for task in os.listdir("/proc/self/task"):
        if int(task) in python_threads:
            continue
        with open(f"/proc/self/task/{task}/status") as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        blocked = int(status["SigBlk"], 16)
        assert blocked & (1 << (signal.SIGINT - 1)), (task, status["Name"])
        assert blocked & (1 << (signal.SIGTERM - 1)), (task, status["Name"])
        fabric_threads += 1
    assert fabric_threads >= 5
