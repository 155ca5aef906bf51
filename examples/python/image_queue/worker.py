# SPDX-License-Identifier: Apache-2.0
"""A thumbnail worker; run as many as you like, on this host or others.

    FABRIC_CLUSTER=demo python3 worker.py

Each task names an uploaded file; the worker writes FILE.thumb. Delivery
is at least once (a worker that dies before acking has its tasks
redelivered to the others), so the handler is idempotent.
"""

import os
import time

import fabricmq as fm

WORK_SECONDS = float(os.environ.get("WORK_SECONDS", "0.2"))


def make_thumbnail(task: fm.Task) -> None:
    src = task.body.decode()
    dst = src + ".thumb"
    print(f"start {os.path.basename(src)} attempt={task.attempt}"
          f"{' redelivered' if task.redelivered else ''}", flush=True)
    if task.redelivered and os.path.exists(dst):
        return  # finished by a worker that died before its ack: just ack
    if not os.path.exists(src):
        raise fm.Reject("upload vanished")  # a dead letter, no retries
    with open(src, "rb") as f:
        image = f.read()
    for _ in range(4):  # "resizing"; a long job keeps its lease
        time.sleep(WORK_SECONDS / 4)
        task.extend_lease(30)
    thumb = image[::max(1, len(image) // 64)][:64]
    with open(dst + ".tmp", "wb") as f:
        f.write(thumb)
    os.replace(dst + ".tmp", dst)
    print(f"done {os.path.basename(dst)}", flush=True)
    # Returning acks the task; any exception retries it with backoff.


# Long tasks: hold only a couple, so the next one goes to a free worker.
with fm.Node.from_env(f"worker-{os.getpid()}") as node, \
        fm.Worker(node, "thumbnails", make_thumbnail, prefetch=2):
    print("READY", flush=True)
    node.wait()  # until Ctrl-C or SIGTERM
