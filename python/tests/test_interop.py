# SPDX-License-Identifier: Apache-2.0
"""The Python package and the `fabric` command speak the same protocol:
each pattern across the two, both ways."""

from __future__ import annotations

import subprocess
import threading

import fabricmq as fm
from conftest import wait_until

FAST = ["--beacon-interval", "0.1", "--heartbeat-interval", "0.1",
        "--suspect-timeout", "0.4", "--dead-timeout", "1"]


def run(fabric_cli, env, *args, timeout=60, stdin=None):
    return subprocess.run([fabric_cli, *args, *FAST], env=env,
                          capture_output=True, timeout=timeout, input=stdin)


def test_python_worker_serves_fabric_push(nodes, env, fabric_cli):
    seen = []
    lock = threading.Lock()

    def handler(task):
        with lock:
            seen.append((task.body, task.headers))

    fm.Worker(nodes("py-worker"), "interop", handler)
    r = run(fabric_cli, env, "push", "interop", "a", "b", "c", "--header",
            "k=v", "--wait-acked")
    assert r.returncode == 0, r.stderr.decode()
    assert b"pushed 3 confirmed 3 acked 3 dead 0" in r.stdout
    assert sorted(seen) == [(b"a", {"k": "v"}), (b"b", {"k": "v"}),
                            (b"c", {"k": "v"})]


def test_fabric_work_serves_python_producer(nodes, procs, fabric_cli):
    worker = procs.start([fabric_cli, "work", "interop2", "--count", "3",
                          *FAST])
    procs.wait_line(worker, "READY")
    producer = fm.Producer(nodes("py-producer"), "interop2")
    wait_until(lambda: producer.stats().workers == 1, what="fabric work")
    ids = [producer.push(body, {"from": "python"})
           for body in (b"one", "two", bytearray(b"three"))]
    producer.wait_completed(30)
    lines = [procs.wait_line(worker, "task") for _ in range(3)]
    for task_id, line, body in zip(ids, lines, ("one", "two", "three")):
        assert line == (f"task {task_id} queue=interop2 attempt=1 {body}")
    assert worker.wait(20) == 0


def test_python_subscriber_replays_fabric_durable_topic(nodes, procs,
                                                        fabric_cli,
                                                        tmp_path):
    pub = procs.start([fabric_cli, "pub", "audit", "--durable", "--spool",
                       str(tmp_path / "topics"), "--count", "50", "--stay",
                       *FAST])
    procs.wait_line(pub, "READY")
    sub = fm.Subscriber(nodes("py-sub"), "audit", durable_name="py",
                        state_dir=tmp_path / "subs", start="earliest")
    got = [sub.next(30) for _ in range(50)]
    assert [m.seq for m in got] == list(range(1, 51))
    assert all(m.durable for m in got)
    assert got[0].body.startswith(b"msg-1")


def test_fabric_sub_receives_python_publisher(nodes, procs, fabric_cli):
    sub = procs.start([fabric_cli, "sub", "py.", "--count", "5", *FAST])
    procs.wait_line(sub, "READY")
    pub = fm.Publisher(nodes("py-pub"))
    pub.wait_for_subscribers(1, timeout=30)
    for i in range(5):
        pub.publish("py.topic", f"m{i}")
    lines = [procs.wait_line(sub, "py.topic") for _ in range(5)]
    assert lines == [f"py.topic {i + 1} m{i}" for i in range(5)]
    assert sub.wait(20) == 0


def test_fabric_req_calls_python_server(nodes, env, fabric_cli):
    fm.Server(nodes("py-server"), "pyecho",
              lambda r: b"echo:" + r.body + r.headers.get("h", "").encode())
    r = run(fabric_cli, env, "req", "pyecho", "hello", "--header", "h=!",
            "--wait", "20000")
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout == b"echo:hello!\n"  # a newline for the shell's prompt
    r = run(fabric_cli, env, "req", "pyecho", "hello", "--raw", "--wait",
            "20000")
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout == b"echo:hello"  # --raw: the reply's bytes exactly
    failing = fm.Server(nodes("py-failing"), "pyfail",
                        lambda r: (_ for _ in ()).throw(
                            fm.NotFound("no such image")))
    r = run(fabric_cli, env, "req", "pyfail", "x", "--wait", "20000")
    assert r.returncode == 1
    assert b"NOT_FOUND: no such image" in r.stderr
    failing.close()


def test_python_client_calls_fabric_serve(nodes, procs, fabric_cli):
    server = procs.start([fabric_cli, "serve", "cliecho", "--echo", *FAST])
    procs.wait_line(server, "READY")
    client = fm.Client(nodes("py-client"))
    client.wait_for_server("cliecho", timeout=30)
    assert client.call("cliecho", b"\x00binary\xff").body == b"\x00binary\xff"
