# SPDX-License-Identifier: Apache-2.0
"""Runs the image queue end to end: the web front end, three workers,
twelve uploads over HTTP; SIGKILLs a worker in the middle of a task, and
checks that every upload still gets its thumbnail (the killed worker's
tasks are redelivered to the others). Exit 0 when all is well.

    python3 examples/python/image_queue/run_demo.py
"""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
UPLOADS = 12


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process whose stdout lines are collected by a thread."""

    def __init__(self, name, argv, env):
        self.name = name
        self.lines = []
        self.p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                  text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))
            print(f"  {self.name}: {line}", end="", flush=True)

    def wait_for(self, prefix, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith(prefix):
                    return line
            if self.p.poll() is not None:
                break
            time.sleep(0.02)
        raise SystemExit(f"{self.name}: no '{prefix}' line")


def first_to_start(workers, timeout=30.0):
    """The first worker that starts a task (the producer may well give all
    twelve to the first workers it sees)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for w in workers:
            if any(line.startswith("start") for line in list(w.lines)):
                return w
        time.sleep(0.005)
    raise SystemExit("no worker started a task")


def main() -> int:
    data = tempfile.mkdtemp(prefix="image-queue-")
    env = dict(os.environ, FABRIC_CLUSTER=f"images-{os.getpid()}",
               FABRIC_BEACON_PORT=str(free_udp_port()),
               WORK_SECONDS="0.4", PYTHONUNBUFFERED="1")
    procs = []
    try:
        web = Proc("web", [sys.executable, f"{HERE}/web.py", "--data", data],
                   env)
        procs.append(web)
        url = web.wait_for("READY").split()[1]
        workers = [Proc(f"worker-{i}", [sys.executable, f"{HERE}/worker.py"],
                        env) for i in range(3)]
        procs += workers
        for w in workers:
            w.wait_for("READY")
        print("-- 12 uploads; the web answers at once, workers thumbnail")
        paths = []
        for i in range(UPLOADS):
            image = random.randbytes(50_000)
            req = urllib.request.Request(f"{url}/upload", data=image,
                                         headers={"X-Name": f"cat-{i}.png"})
            with urllib.request.urlopen(req, timeout=10) as r:
                paths.append(json.loads(r.read())["path"])
        victim = first_to_start(workers)
        print(f"-- kill -9 {victim.name} in the middle of a task")
        victim.p.send_signal(signal.SIGKILL)
        victim.p.wait()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(os.path.exists(p + ".thumb") for p in paths):
                break
            time.sleep(0.1)
        missing = [p for p in paths if not os.path.exists(p + ".thumb")]
        redelivered = [line for w in workers if w is not victim
                       for line in w.lines if "redelivered" in line]
        print(f"-- thumbnails: {UPLOADS - len(missing)} of {UPLOADS}; "
              f"redelivered to the other workers: {len(redelivered)}")
        if missing or not redelivered:
            return 1
        return 0
    finally:
        for p in procs:
            if p.p.poll() is None:
                p.p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.p.wait(10)
            except subprocess.TimeoutExpired:
                p.p.kill()


if __name__ == "__main__":
    sys.exit(main())
