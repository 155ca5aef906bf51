# SPDX-License-Identifier: Apache-2.0
"""Makes a node and a worker, forks, and in the child: using the inherited
objects raises ForkedError; a new node made in the child works; the child
exits normally (running the exit hook). Prints the child's findings."""

import os
import sys

import fabricmq as fm
from common import node

parent = node("fork-parent")
worker = fm.Worker(parent, "forkq", lambda t: None)
producer = fm.Producer(parent, "forkq")

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
    del parent, worker, producer  # dropping inherited objects must not hang
    sys.exit(0)
_, status = os.waitpid(pid, 0)
print(f"PARENT child-status={status}", flush=True)
producer.push(b"parent still works")
worker.close()
parent.close()
