# SPDX-License-Identifier: Apache-2.0
# Takes tasks off the queue "tasks" (the redis-py BRPOP example).
import fabricmq as fm


def work(task):
    print("got", task.body.decode(), flush=True)


with fm.Node.from_env() as node, fm.Worker(node, "tasks", work):
    node.wait()
