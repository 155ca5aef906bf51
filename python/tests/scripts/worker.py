# SPDX-License-Identifier: Apache-2.0
"""A worker process: prints READY, then START/DONE lines per task.
--slow BODY makes the handler hang on that body (to be killed mid-task)."""

import argparse
import threading

import fabricmq as fm
from common import node

ap = argparse.ArgumentParser()
ap.add_argument("queue")
ap.add_argument("--name", default="py-worker")
ap.add_argument("--slow", default=None)
ap.add_argument("--prefetch", type=int, default=256)
ap.add_argument("--concurrency", type=int, default=1)
args = ap.parse_args()


def handler(task: fm.Task) -> None:
    body = task.body.decode()
    print(f"START {task.id.seq} {task.attempt} {int(task.redelivered)} "
          f"{body} {task.headers.get('h', '')}", flush=True)
    if body == args.slow:
        threading.Event().wait(120)
    print(f"DONE {task.id.seq}", flush=True)


with node(args.name) as n, fm.Worker(n, args.queue, handler,
                                     prefetch=args.prefetch,
                                     concurrency=args.concurrency):
    print(f"READY {n.id}", flush=True)
    n.wait()
