# SPDX-License-Identifier: Apache-2.0
"""Interpreter exit with live objects never aborts or hangs; fork() gives a
clear error in the child; thread states and references do not leak."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import fabricmq as fm
from fabricmq import _fabric
from conftest import SCRIPTS, wait_until

RUNS = 20


def run_script(env, *args, timeout=60):
    return subprocess.run([sys.executable, str(SCRIPTS / args[0]),
                           *args[1:]], env=env, capture_output=True,
                          timeout=timeout)


@pytest.mark.parametrize("mode", ["no-close", "past-drain", "sys-exit",
                                  "thread", "callbacks", "daemons"])
def test_exit_with_live_objects(env, mode):
    """Each way of leaving, RUNS times: always exit status 0 (an abort is
    134, a crash 139, the exit hook's give-up 70)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: run_script(env, "exit_live.py",
                                                     mode), range(RUNS)))
    codes = [r.returncode for r in results]
    bad = [r for r in results if r.returncode != 0]
    assert not bad, (codes, bad[0].stderr.decode(errors="replace")[-2000:])
    assert all(b"EXITING" in r.stdout for r in results)


def test_fork(env):
    r = run_script(env, "fork_child.py")
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    child = [line for line in out.splitlines() if line.startswith("CHILD")]
    assert child == ["CHILD peers:ForkedError push:ForkedError "
                     "close:ForkedError node-close:ForkedError "
                     "child-node:from the child"], out
    assert "PARENT child-status=0" in out


def test_kept_thread_states_follow_live_threads(nodes):
    """Handler threads keep one Python thread state each while they live;
    closing their objects frees them, so 30 rounds leave none behind. (The
    binding's bridge thread, once it has run Python, keeps one for the
    life of the process.)"""
    base = _fabric._kept_thread_states()
    most = 0
    for i in range(30):
        node = nodes(f"round-{i}")
        with fm.Worker(node, "ts", lambda t: None, concurrency=3), \
                fm.Producer(node, "ts") as producer:
            for _ in range(6):
                producer.push(b"x")
            producer.wait_completed(20)
            most = max(most, _fabric._kept_thread_states())
        node.close()
    assert most <= base + 3 + 1
    gc.collect()
    wait_until(lambda: _fabric._kept_thread_states() <= base + 1,
               what="thread states freed")


def test_no_reference_leaks(nodes):
    """The handler, bodies and exceptions are not leaked per task."""
    class Handler:
        calls = 0

        def __call__(self, task):
            Handler.calls += 1
            if task.body == b"fail" and task.attempt == 1:
                raise fm.Retry(0, "again")

    handler = Handler()
    body = b"payload" * 10
    before_handler = sys.getrefcount(handler)
    before_body = sys.getrefcount(body)
    with fm.Worker(nodes("w"), "refs", handler, concurrency=2), \
            fm.Producer(nodes("p"), "refs") as producer:
        for _ in range(2000):
            producer.push(body)
        for _ in range(50):
            producer.push(b"fail")
        producer.wait_completed(60)
        gc.collect()
        assert sys.getrefcount(body) == before_body
        assert sys.getrefcount(handler) == before_handler + 1  # the worker
    assert Handler.calls == 2100


def test_objects_usable_from_many_threads(nodes):
    seen = []
    lock = threading.Lock()

    def handler(task):
        with lock:
            seen.append(task.body)

    fm.Worker(nodes("w"), "mt", handler, concurrency=4)
    producer = fm.Producer(nodes("p"), "mt")

    def pusher(k):
        for i in range(200):
            producer.push(f"{k}-{i}")

    threads = [threading.Thread(target=pusher, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    producer.wait_completed(60)
    assert len(seen) == 800 and len(set(seen)) == 800
