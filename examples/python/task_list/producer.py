# SPDX-License-Identifier: Apache-2.0
# Ten tasks onto the queue "tasks" (the redis-py LPUSH example). The queue
# lives in this process's spool, so it stays until the workers are done;
# if it dies first, the next run delivers what is left.
import fabricmq as fm

with fm.Node.from_env() as node, \
        fm.Producer(node, "tasks", spool_dir="fabric-tasks") as q:
    for i in range(10):
        q.push(f"task {i}")
    q.wait_completed()
