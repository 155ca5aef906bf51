# SPDX-License-Identifier: Apache-2.0
"""Makes a node and a worker, forks, and in the child: using the inherited
objects raises ForkedError; a new node made in the child works; the child
exits normally (running the exit hook). Prints the child's findings."""

import asyncio
import gc
import os
import sys
import tempfile

import fabricmq as fm
from common import node

parent = node("fork-parent")
worker = fm.Worker(parent, "forkq", lambda t: None)
producer = fm.Producer(parent, "forkq")
spooled = fm.Producer(parent, "forkspool", spool_dir=tempfile.mkdtemp(),
                      fsync="always")


async def push_some():  # starts the spooled producer's confirm watcher
    for _ in range(20):
        await spooled.push_async(b"x")


asyncio.run(push_some())

pid = os.fork()
if pid == 0:
    results = []
    for what, call in (("peers", parent.peers), ("push",
                                                 lambda: producer.push(b"x")),
                       ("close", worker.close), ("node-close", parent.close)):
        try:
            call()
            results.append(f"{what}:no-error")
        except fm.ForkedError:
            results.append(f"{what}:ForkedError")
    child = node("fork-child")
    seen = []
    with fm.Producer(child, "childq") as p, \
            fm.Worker(child, "childq", lambda t: seen.append(t.body)):
        p.push(b"from the child")
        p.wait_completed(20)
    results.append(f"child-node:{seen[0].decode()}")
    print("CHILD " + " ".join(results), flush=True)
    # Dropping inherited objects must not hang (nor touch the parent's
    # threads and locks).
    del parent, worker, producer, spooled
    gc.collect()
    sys.exit(0)
_, status = os.waitpid(pid, 0)
print(f"PARENT child-status={status}", flush=True)
producer.push(b"parent still works")
worker.close()
parent.close()
