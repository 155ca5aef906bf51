# SPDX-License-Identifier: Apache-2.0
"""Smoke runs of the Python examples (examples/python), as CI runs every
C++ demo."""

from __future__ import annotations

import subprocess
import sys

from conftest import SOURCE_DIR

EXAMPLES = SOURCE_DIR / "examples" / "python"


def test_image_queue_demo(env):
    r = subprocess.run([sys.executable,
                        str(EXAMPLES / "image_queue" / "run_demo.py")],
                       env=env, capture_output=True, timeout=150)
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    assert "thumbnails: 12 of 12" in out


def test_task_list(env, procs, tmp_path):
    worker = procs.start([sys.executable,
                          str(EXAMPLES / "task_list" / "worker.py")])
    r = subprocess.run([sys.executable,
                        str(EXAMPLES / "task_list" / "producer.py")],
                       env=env, cwd=tmp_path, capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    got = sorted(procs.wait_line(worker, "got") for _ in range(10))
    assert got == sorted(f"got task {i}" for i in range(10))


def test_log_fanout(env, procs):
    receivers = [procs.start([sys.executable,
                              str(EXAMPLES / "log_fanout" /
                                  "receive_logs.py")]) for _ in range(2)]
    for r in receivers:
        procs.wait_line(r, " [*] Waiting for logs")
    # A line sent before a receiver's subscription arrived is not owed to
    # it (as with a fanout exchange): send until both have one.
    for attempt in range(20):
        sent = subprocess.run([sys.executable,
                               str(EXAMPLES / "log_fanout" / "emit_log.py"),
                               "error:", f"disk {attempt} full"],
                              env=procs.env, capture_output=True, timeout=30)
        assert sent.returncode == 0, sent.stderr.decode()
        assert f"[x] Sent error: disk {attempt} full" in sent.stdout.decode()
        try:
            for r in receivers:
                line = procs.wait_line(r, " [x] error: disk", timeout=2)
                assert line.endswith("full")
            break
        except AssertionError:
            continue
    else:
        raise AssertionError("a receiver never got a line")
