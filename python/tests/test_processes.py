# SPDX-License-Identifier: Apache-2.0
"""Each pattern across real processes, and the guarantees under kills: a
worker SIGKILLed mid-task has its task redelivered; a producer SIGKILLed
after pushing delivers its spool when it restarts."""

from __future__ import annotations

import signal
import threading

import fabricmq as fm
from conftest import wait_until


def test_worker_killed_mid_task_is_redelivered(nodes, procs):
    done = []
    producer = fm.Producer(nodes("producer"), "images", lease=60,
                           on_completed=done.append)
    doomed = procs.python("worker.py", "images", "--name", "doomed",
                          "--slow", "resize-me")
    doomed_id = procs.wait_line(doomed, "READY").split()[1]
    wait_until(lambda: producer.stats().workers == 1, what="worker seen")
    task = producer.push(b"resize-me", {"h": "v"})
    start = procs.wait_line(doomed, "START")
    assert start.split()[1:5] == [str(task.seq), "1", "0", "resize-me"]

    rescuer = procs.python("worker.py", "images", "--name", "rescuer")
    rescuer_id = procs.wait_line(rescuer, "READY").split()[1]
    wait_until(lambda: producer.stats().workers == 2, what="second worker")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)

    # Redelivered to the other worker well before the 60 s lease: the
    # producer sees the worker's connection drop.
    again = procs.wait_line(rescuer, "START", timeout=30).split()
    assert again[1:6] == [str(task.seq), "2", "1", "resize-me", "v"]
    producer.wait_completed(30)
    # on_completed runs on the producer's callback thread, soon after.
    wait_until(lambda: len(done) == 1, what="the completion")
    assert (done[0].kind, done[0].attempts, done[0].worker) == (
        "acked", 2, rescuer_id)
    assert doomed_id != rescuer_id
    stats = producer.stats()
    assert stats.worker_lost == 1 and stats.acked == 1
    assert stats.dead_lettered == 0
    # Both deliveries started (so both are attempts): the first one's
    # worker died while running it, a worker crash.
    assert stats.started == 2 and stats.worker_crashes == 1
    assert stats.returned == 0


def test_producer_killed_then_restarted_on_its_spool(nodes, procs, tmp_path):
    spool = str(tmp_path / "spool")
    first = procs.python("producer.py", "restart", "--spool", spool,
                         "--count", "50")
    assert procs.wait_line(first, "PUSHED").startswith("PUSHED 50")
    first.send_signal(signal.SIGKILL)  # confirmed: on disk
    first.wait(10)

    seen = []
    lock = threading.Lock()

    def handler(task):
        with lock:
            seen.append((task.body, task.redelivered))

    fm.Worker(nodes("worker"), "restart", handler)
    second = procs.python("producer.py", "restart", "--spool", spool,
                          "--wait")
    assert procs.wait_line(second, "PUSHED").endswith("recovered=50")
    assert procs.wait_line(second, "COMPLETED", timeout=60) == (
        "COMPLETED acked=50 dead=0")
    bodies = sorted(b for b, _ in seen)
    assert bodies == sorted(f"t{i}".encode() for i in range(50))
    assert all(redelivered for _, redelivered in seen)
    assert fm.dead_letters(spool) == []


def test_pubsub_across_processes(nodes, procs):
    sub = fm.Subscriber(nodes("sub"), "prices.")
    pub = procs.python("publisher.py", "prices.eur", "--count", "25")
    procs.wait_line(pub, "READY")
    procs.wait_line(pub, "SENT", timeout=30)
    got = [sub.next(20) for _ in range(25)]
    assert [m.body for m in got] == [f"m{i}".encode() for i in range(25)]
    assert [m.headers["i"] for m in got] == [str(i) for i in range(25)]
    assert [m.seq for m in got] == list(range(1, 26))


def test_reqrep_across_processes_with_failover(nodes, procs):
    a = procs.python("server.py", "upper", "--name", "a")
    b = procs.python("server.py", "upper", "--name", "b")
    procs.wait_line(a, "READY")
    procs.wait_line(b, "READY")
    client = fm.Client(nodes("client"), timeout=10)
    wait_until(lambda: len(client.servers("upper")) == 2, what="2 servers")
    names = {client.call("upper", f"x{i}").body.split(b":")[0]
             for i in range(20)}
    assert names == {b"a", b"b"}  # spread over both
    a.send_signal(signal.SIGKILL)
    a.wait(10)
    # Every call still succeeds: on b, or retried there.
    for i in range(20):
        assert client.call("upper", f"y{i}").body == f"b:Y{i}".encode()
