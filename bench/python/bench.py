# SPDX-License-Identifier: Apache-2.0
"""The Python queue benchmark: one Python producer, two Python worker
processes, 100-byte bodies, a no-op handler, run in one invocation for

  fabric-memory    fabricmq, memory-only producer (acked tasks)
  fabric-spooled   fabricmq, spooled producer, fsync "batch" (acked tasks)
  pika-durable     pika -> RabbitMQ: durable queue, persistent messages,
                   publisher confirms, manual acks (prefetch 100)
  pika-tx100       the same, published in transactions of 100 messages
                   instead of confirm by confirm (BlockingConnection's way
                   to batch; the commit returns once they are on disk)
  redis-list       redis-py -> Redis (AOF everysec): LPUSH / BRPOP
  redis-reliable   redis-py -> Redis (AOF everysec): LPUSH / BLMOVE + LREM

and a memory check: one Python worker's RSS after warm-up and after 1 M
more tasks. Rates are tasks completed / (last completion - first push).
Producers send as fast as each client allows: fabric pushes without
waiting per task (push_nowait) and waits for the whole batch; redis-py
pipelines 100 LPUSHes; pika's BlockingConnection waits for each confirm
(how pika publishes with confirms). Ratios are what count: the machine is
shared by the producer, the workers and the broker.

    /usr/bin/python3 bench/python/bench.py [--quick] [--out results.json]

Needs fabricmq importable (PYTHONPATH=build/python after tools/dev build);
installs Debian's redis-server, rabbitmq-server, python3-pika and
python3-redis when missing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

BODY = b"x" * 100
QUEUE = "bench"
IDLE = 2.0  # consumers stop after this long without a message
FAST = dict(beacon_interval=0.1, heartbeat_interval=0.2, suspect_timeout=1.0,
            dead_timeout=2.0)


def rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


# ------------------------------------------------------------------- roles
# Each worker process prints READY, then at the end one line
# "DONE <count> <unix time of its last completion>" (and "RSS ..." lines).


def role_fabric_worker(args) -> None:
    import fabricmq as fm
    count = 0
    marks = sorted(int(x) for x in args.rss_at.split(",") if x)

    def handler(task):
        nonlocal count
        count += 1
        if marks and count == marks[0]:
            marks.pop(0)
            print(f"RSS {count} {rss_kb()}", flush=True)

    try:
        with fm.Node.from_env(f"bench-worker-{os.getpid()}", **FAST) as node, \
                fm.Worker(node, QUEUE, handler, prefetch=args.prefetch,
                      **({"dedup_max": args.dedup_max}
                         if args.dedup_max >= 0 else {})):
            print("READY", flush=True)
            node.wait()
    except KeyboardInterrupt:  # SIGTERM from the orchestrator
        pass
    print(f"DONE {count}", flush=True)


def role_pika_consumer(args) -> None:
    import pika
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", args.port, heartbeat=0))
    ch = conn.channel()
    ch.queue_declare(QUEUE, durable=True)
    ch.basic_qos(prefetch_count=args.prefetch)
    count, last = 0, 0.0
    print("READY", flush=True)
    for method, _, body in ch.consume(QUEUE, inactivity_timeout=IDLE):
        if method is None:
            if count:
                break
            continue
        ch.basic_ack(method.delivery_tag)
        count += 1
        last = time.time()
    print(f"DONE {count} {last}", flush=True)
    conn.close()


def role_redis_consumer(args) -> None:
    import redis
    r = redis.Redis("127.0.0.1", args.port)
    busy = f"{QUEUE}:busy:{os.getpid()}"
    count, last = 0, 0.0
    print("READY", flush=True)
    while True:
        if args.mode == "list":
            item = r.brpop(QUEUE, timeout=1)
            item = item[1] if item else None
        else:
            item = r.blmove(QUEUE, busy, 1, "RIGHT", "LEFT")
        if item is None:
            if count and time.time() - last > IDLE:
                break
            continue
        if args.mode == "reliable":
            r.lrem(busy, 1, item)  # the ack
        count += 1
        last = time.time()
    print(f"DONE {count} {last}", flush=True)


# ------------------------------------------------------------ orchestration

class Worker:
    def __init__(self, argv: List[str], env: Dict[str, str]) -> None:
        self.p = subprocess.Popen([sys.executable, __file__, *argv], env=env,
                                  stdout=subprocess.PIPE, text=True)
        self.lines: List[str] = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self) -> None:
        for line in self.p.stdout:  # type: ignore[union-attr]
            self.lines.append(line.strip())

    def wait(self, prefix: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith(prefix):
                    return line
            if self.p.poll() is not None and not self.t.is_alive():
                break
            time.sleep(0.01)
        raise RuntimeError(f"worker: no {prefix} line ({self.lines[-3:]})")

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
        self.p.wait(60)
        self.t.join(10)


def fabric_env() -> Dict[str, str]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return dict(os.environ, FABRIC_CLUSTER=f"pybench-{os.getpid()}",
                FABRIC_BEACON_PORT=str(port), FABRIC_DISCOVERY="loopback")


def run_fabric(n: int, spool: Optional[str], workers: int = 2,
               prefetch: int = 256) -> Dict:
    import fabricmq as fm
    env = fabric_env()
    os.environ.update({k: env[k] for k in ("FABRIC_CLUSTER",
                                           "FABRIC_BEACON_PORT")})
    ws = [Worker(["--role", "fabric-worker", "--prefetch", str(prefetch)],
                 env) for _ in range(workers)]
    for w in ws:
        w.wait("READY")
    with fm.Node.from_env("bench-producer", **FAST) as node, \
            fm.Producer(node, QUEUE, spool_dir=spool) as producer:
        deadline = time.monotonic() + 30
        while producer.stats().workers < workers:
            if time.monotonic() > deadline:
                raise RuntimeError("workers not seen")
            time.sleep(0.01)
        start = time.time()
        push = producer.push_nowait
        for _ in range(n):
            push(BODY)
        pushed = time.time()
        producer.wait_completed(600)
        end = time.time()
        stats = producer.stats()
    for w in ws:
        w.stop()
    done = sum(int(w.wait("DONE").split()[1]) for w in ws)
    return dict(tasks=n, seconds=end - start, rate=n / (end - start),
                push_rate=n / (pushed - start), acked=stats.acked,
                handled=done, duplicates=max(0, done - n),
                dead=stats.dead_lettered)


def run_pika(n: int, port: int, batch: int, workers: int = 2) -> Dict:
    import pika
    env = dict(os.environ)
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", port, heartbeat=0))
    ch = conn.channel()
    ch.queue_delete(QUEUE)
    ch.queue_declare(QUEUE, durable=True)
    if batch > 1:
        ch.tx_select()
    else:
        ch.confirm_delivery()
    ws = [Worker(["--role", "pika-consumer", "--port", str(port),
                  "--prefetch", "100"], env) for _ in range(workers)]
    for w in ws:
        w.wait("READY")
    props = pika.BasicProperties(delivery_mode=2)
    start = time.time()
    for i in range(n):
        ch.basic_publish("", QUEUE, BODY, props)  # with confirms: waits
        if batch > 1 and (i % batch == batch - 1 or i == n - 1):
            ch.tx_commit()
    pushed = time.time()
    results = [w.wait("DONE", timeout=600).split() for w in ws]
    for w in ws:
        w.stop()
    conn.close()
    done = sum(int(r[1]) for r in results)
    end = max(float(r[2]) for r in results)
    return dict(tasks=n, seconds=end - start, rate=done / (end - start),
                push_rate=n / (pushed - start), handled=done,
                duplicates=max(0, done - n))


def run_redis(n: int, port: int, mode: str, workers: int = 2) -> Dict:
    import redis
    r = redis.Redis("127.0.0.1", port)
    r.delete(QUEUE)
    ws = [Worker(["--role", "redis-consumer", "--port", str(port),
                  "--mode", mode], dict(os.environ)) for _ in range(workers)]
    for w in ws:
        w.wait("READY")
    start = time.time()
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.lpush(QUEUE, BODY)
        if i % 100 == 99:
            pipe.execute()
    pipe.execute()
    pushed = time.time()
    results = [w.wait("DONE", timeout=600).split() for w in ws]
    for w in ws:
        w.stop()
    done = sum(int(x[1]) for x in results)
    end = max(float(x[2]) for x in results)
    return dict(tasks=n, seconds=end - start, rate=done / (end - start),
                push_rate=n / (pushed - start), handled=done,
                duplicates=max(0, done - n))


def run_rss(total: int, warmup: int, dedup_max: int) -> Dict:
    """One Python worker: RSS after `warmup` tasks and after `total`. The
    worker's dedup memory (ids of completed tasks, kept 5 min and at most
    `dedup_max`, by default 2^20 of them) grows with the tasks by design;
    a small `dedup_max` leaves what the binding itself keeps."""
    import fabricmq as fm
    env = fabric_env()
    os.environ.update({k: env[k] for k in ("FABRIC_CLUSTER",
                                           "FABRIC_BEACON_PORT")})
    w = Worker(["--role", "fabric-worker", "--rss-at", f"{warmup},{total}",
                "--dedup-max", str(dedup_max)], env)
    w.wait("READY")
    with fm.Node.from_env("rss-producer", **FAST) as node, \
            fm.Producer(node, QUEUE) as producer:
        while producer.stats().workers < 1:
            time.sleep(0.01)
        chunk = 100_000
        for start in range(0, total, chunk):
            for _ in range(min(chunk, total - start)):
                producer.push_nowait(BODY)
            producer.wait_completed(600)
    first = int(w.wait(f"RSS {warmup}").split()[2])
    last = int(w.wait(f"RSS {total}").split()[2])
    w.stop()
    return dict(tasks=total, warmup=warmup, dedup_max=dedup_max,
                rss_warm_kb=first,
                rss_end_kb=last, growth_pct=100.0 * (last - first) / first)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--role")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--prefetch", type=int, default=256)
    ap.add_argument("--mode", default="list")
    ap.add_argument("--rss-at", default="")
    ap.add_argument("--dedup-max", type=int, default=-1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--systems", default="fabric-memory,fabric-spooled,"
                    "pika-durable,pika-tx100,redis-list,redis-reliable,rss")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    if args.role:
        {"fabric-worker": role_fabric_worker,
         "pika-consumer": role_pika_consumer,
         "redis-consumer": role_redis_consumer}[args.role](args)
        return 0

    systems = args.systems.split(",")
    scale = 10 if args.quick else 1
    n_fabric, n_pika, n_redis = (200_000 // scale, 20_000 // scale,
                                 100_000 // scale)
    from servers import Servers, ensure_packages
    ensure_packages(["redis-server", "rabbitmq-server", "python3-pika",
                     "python3-redis"])
    servers = Servers()
    results: Dict[str, Dict] = {}
    try:
        if "fabric-memory" in systems:
            results["fabric-memory"] = run_fabric(n_fabric, None)
        if "fabric-spooled" in systems:
            with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
                results["fabric-spooled"] = run_fabric(
                    n_fabric, os.path.join(d, "spool"))
        if any(s.startswith("redis") for s in systems):
            port = servers.start_redis()
            for mode in ("list", "reliable"):
                if f"redis-{mode}" in systems:
                    results[f"redis-{mode}"] = run_redis(n_redis, port, mode)
        if "pika-durable" in systems:
            port = servers.start_rabbitmq()
            results["pika-durable"] = run_pika(n_pika, port, 1)
        if "pika-tx100" in systems:
            port = servers.port.get("rabbitmq") or servers.start_rabbitmq()
            results["pika-tx100"] = run_pika(n_pika * 2, port, 100)
        if "rss" in systems:
            results["rss"] = run_rss(1_200_000 // scale, 200_000 // scale,
                                     10_000)
            results["rss-dedup"] = run_rss(1_200_000 // scale,
                                           200_000 // scale, 1 << 20)
    finally:
        servers.stop()

    print(f"\n{'system':<16} {'tasks':>8} {'tasks/s':>10} {'push/s':>10} "
          f"{'handled':>8} {'dups':>5}")
    for name, r in results.items():
        if name.startswith("rss"):
            continue
        print(f"{name:<16} {r['tasks']:>8} {r['rate']:>10,.0f} "
              f"{r['push_rate']:>10,.0f} {r['handled']:>8} "
              f"{r['duplicates']:>5}")
    ratios = {}
    for fab in ("fabric-memory", "fabric-spooled"):
        for peer in ("pika-durable", "pika-tx100", "redis-list",
                     "redis-reliable"):
            if fab in results and peer in results:
                ratios[f"{fab} / {peer}"] = (results[fab]["rate"] /
                                             results[peer]["rate"])
    for k, v in ratios.items():
        print(f"  {k}: {v:.1f}x")
    for name in ("rss", "rss-dedup"):
        if name in results:
            r = results[name]
            print(f"worker RSS (dedup_max {r['dedup_max']:,}) after "
                  f"{r['warmup']:,} tasks {r['rss_warm_kb']} kB, after "
                  f"{r['tasks']:,}: {r['rss_end_kb']} kB "
                  f"({r['growth_pct']:+.1f}%)")
    report = dict(started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  machine=dict(nproc=os.cpu_count(), kernel=platform.release(),
                               python=platform.python_version()),
                  results=results, ratios=ratios,
                  loadavg=os.getloadavg(),
                  max_rss_kb=resource.getrusage(
                      resource.RUSAGE_SELF).ru_maxrss)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
