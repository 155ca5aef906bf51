# SPDX-License-Identifier: Apache-2.0
"""A producer process on a spool: pushes --count tasks ("t0", "t1", ...),
prints PUSHED; with --wait, waits until everything the spool holds is acked
and prints COMPLETED; otherwise stays until killed."""

import argparse
import threading

import fabricmq as fm
from common import node

ap = argparse.ArgumentParser()
ap.add_argument("queue")
ap.add_argument("--spool", required=True)
ap.add_argument("--count", type=int, default=0)
ap.add_argument("--wait", action="store_true")
args = ap.parse_args()

with node("py-producer") as n, fm.Producer(n, args.queue,
                                           spool_dir=args.spool) as p:
    for i in range(args.count):
        p.push(f"t{i}")
    print(f"PUSHED {args.count} recovered={p.stats().recovered}", flush=True)
    if args.wait:
        p.wait_completed(60)
        s = p.stats()
        print(f"COMPLETED acked={s.acked} dead={s.dead_lettered}", flush=True)
    else:
        threading.Event().wait(600)
