# SPDX-License-Identifier: Apache-2.0
"""Fixtures of the fabricmq tests: every test gets its own cluster name and
beacon port (so parallel runs never hear each other), nodes with fast
timings, and a way to start helper processes that are killed by PID at the
end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

import fabricmq as fm

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "scripts"
SOURCE_DIR = Path(os.environ.get("FABRIC_SOURCE_DIR", HERE.parent.parent))

# Fast timings: peers are found within a beacon interval, and a killed
# process is declared dead within a second or so.
FAST = dict(beacon_interval=0.1, heartbeat_interval=0.1, suspect_timeout=0.4,
            dead_timeout=1.0, disconnect_grace=0.2, linger=0.1)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster() -> str:
    return "pytest-" + uuid.uuid4().hex[:12]


@pytest.fixture
def beacon_port() -> int:
    return free_udp_port()


@pytest.fixture
def env(cluster: str, beacon_port: int) -> Dict[str, str]:
    """The environment for helper processes and `fabric` commands of this
    test's cluster."""
    e = dict(os.environ)
    e.update(FABRIC_CLUSTER=cluster, FABRIC_BEACON_PORT=str(beacon_port),
             FABRIC_DISCOVERY="loopback", PYTHONUNBUFFERED="1")
    e.pop("FABRIC_SEEDS", None)
    return e


class Nodes:
    def __init__(self, cluster: str, beacon_port: int) -> None:
        self.cluster = cluster
        self.beacon_port = beacon_port
        self.made: List[fm.Node] = []

    def __call__(self, name: Optional[str] = None, **kw) -> fm.Node:
        options = dict(FAST)
        options.update(kw)
        node = fm.Node(name, cluster=self.cluster,
                       beacon_port=self.beacon_port, **options)
        self.made.append(node)
        return node


@pytest.fixture
def nodes(cluster: str, beacon_port: int) -> Iterator[Nodes]:
    made = Nodes(cluster, beacon_port)
    yield made
    for n in reversed(made.made):
        n.close()


class Processes:
    """Children started by a test, ended by PID at teardown (SIGKILL if
    they outlive a short grace)."""

    def __init__(self, env: Dict[str, str], tmp: Path) -> None:
        self.env = env
        self.tmp = tmp
        self.procs: List[subprocess.Popen] = []

    def python(self, script: str, *args: str, **kw) -> subprocess.Popen:
        return self.start([sys.executable, str(SCRIPTS / script), *args],
                          **kw)

    def start(self, argv: List[str], stdin=subprocess.DEVNULL,
              env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
        log = open(self.tmp / f"proc-{len(self.procs)}.stderr", "wb")
        p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                             stderr=log, env=env or self.env)
        p.stderr_path = log.name  # type: ignore[attr-defined]
        log.close()
        self.procs.append(p)
        return p

    def stderr(self, p: subprocess.Popen) -> str:
        return Path(p.stderr_path).read_text(errors="replace")  # type: ignore

    def wait_line(self, p: subprocess.Popen, prefix: str,
                  timeout: float = 20.0) -> str:
        """Reads stdout lines until one starts with `prefix`."""
        deadline = time.monotonic() + timeout
        assert p.stdout is not None
        os.set_blocking(p.stdout.fileno(), False)
        buf = getattr(p, "_linebuf", b"")
        while time.monotonic() < deadline:
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode(errors="replace")
                if text.startswith(prefix):
                    p._linebuf = buf  # type: ignore[attr-defined]
                    return text
            chunk = p.stdout.read()
            if chunk:
                buf += chunk
                continue
            if p.poll() is not None and not chunk:
                break
            time.sleep(0.02)
        p._linebuf = buf  # type: ignore[attr-defined]
        raise AssertionError(
            f"no line starting with {prefix!r} within {timeout}s; exit "
            f"{p.poll()}; stderr:\n{self.stderr(p)}")

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
            if p.stdout:
                p.stdout.close()


@pytest.fixture
def procs(env: Dict[str, str], tmp_path: Path) -> Iterator[Processes]:
    p = Processes(env, tmp_path)
    yield p
    p.stop_all()


@pytest.fixture
def fabric_cli() -> str:
    path = os.environ.get("FABRIC_CLI")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("FABRIC_CLI (the fabric command) is not set; the ctest "
                    "run sets it")
    return path


def wait_until(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"{what} not reached within {timeout}s")
