# SPDX-License-Identifier: Apache-2.0
"""Starts the brokers the Python benchmark compares against, on loopback
ports of our own with data in a temp dir, and stops them by PID: Redis
(appendonly yes, appendfsync everysec: its durable setting) and RabbitMQ
(run directly from /usr/lib/rabbitmq/bin with its own epmd, as
../../../shared/peers does). Debian's redis-server and rabbitmq-server
packages; installs them if missing (root)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Dict, List, Optional

RMQ_BIN = "/usr/lib/rabbitmq/bin"


def ensure_packages(packages: List[str]) -> None:
    missing = [p for p in packages if subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
        text=True).stdout.find("ok installed") < 0]
    if missing:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = ["apt-get", "install", "-y", "-q", *missing]
        if subprocess.run(cmd, env=env).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
            subprocess.run(cmd, env=env, check=True)


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(f"port {port} did not open (exit {proc.poll()})")


class Servers:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="fabricmq-bench-")
        self.procs: Dict[str, subprocess.Popen] = {}
        self.port: Dict[str, int] = {}
        self.rmq_env: Optional[Dict[str, str]] = None
        self.node = f"bench{os.getpid()}@localhost"

    def _start(self, name: str, argv: List[str], env=None,
               cwd=None) -> subprocess.Popen:
        log = open(os.path.join(self.dir, f"{name}.log"), "wb")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                             start_new_session=True)
        self.procs[name] = p
        return p

    def start_redis(self) -> int:
        port = free_tcp_port()
        d = os.path.join(self.dir, "redis")
        os.makedirs(d)
        p = self._start("redis", ["redis-server", "--bind", "127.0.0.1",
                                  "--port", str(port), "--dir", d,
                                  "--save", "", "--appendonly", "yes",
                                  "--appendfsync", "everysec"])
        wait_port(port, p, 30)
        self.port["redis"] = port
        return port

    def start_rabbitmq(self) -> int:
        d = os.path.join(self.dir, "rabbitmq")
        os.makedirs(d)
        amqp, dist, epmd = free_tcp_port(), free_tcp_port(), free_tcp_port()
        ctl = free_tcp_port()
        with open(os.path.join(d, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        for name in ("rabbitmq.conf", "rabbitmq-env.conf"):
            open(os.path.join(d, name), "w").close()
        self.rmq_env = dict(
            os.environ, HOME=d, ERL_EPMD_PORT=str(epmd),
            RABBITMQ_NODENAME=self.node, RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(amqp), RABBITMQ_DIST_PORT=str(dist),
            RABBITMQ_CTL_DIST_PORT_MIN=str(ctl),
            RABBITMQ_CTL_DIST_PORT_MAX=str(ctl),
            RABBITMQ_MNESIA_BASE=os.path.join(d, "mnesia"),
            RABBITMQ_LOG_BASE=os.path.join(d, "log"),
            RABBITMQ_CONFIG_FILE=os.path.join(d, "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=os.path.join(d, "advanced.config"),
            RABBITMQ_CONF_ENV_FILE=os.path.join(d, "rabbitmq-env.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(d, "enabled_plugins"),
            RABBITMQ_PID_FILE=os.path.join(d, "rabbitmq.pid"))
        e = self._start("epmd", ["epmd", "-address", "127.0.0.1", "-port",
                                 str(epmd)])
        wait_port(epmd, e, 10)
        p = self._start("rabbitmq", [f"{RMQ_BIN}/rabbitmq-server"],
                        env=self.rmq_env, cwd=d)
        wait_port(amqp, p, 120)
        self.port["rabbitmq"] = amqp
        return amqp

    def stop(self) -> None:
        rmq = self.procs.get("rabbitmq")
        if rmq is not None and rmq.poll() is None:
            subprocess.run([f"{RMQ_BIN}/rabbitmqctl", "-n", self.node,
                            "stop"], env=self.rmq_env, capture_output=True,
                           timeout=60)
        for name in ("rabbitmq", "epmd", "redis"):  # epmd after the VM
            p = self.procs.get(name)
            if p is None:
                continue
            for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                if p.poll() is not None:
                    break
                try:
                    os.killpg(p.pid, sig)
                    p.wait(wait)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
        shutil.rmtree(self.dir, ignore_errors=True)
