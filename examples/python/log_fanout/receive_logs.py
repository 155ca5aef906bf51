# SPDX-License-Identifier: Apache-2.0
# Prints every log line sent from now on (RabbitMQ tutorial 3, "logs").
import fabricmq as fm

with fm.Node.from_env() as node, fm.Subscriber(node, "logs") as logs:
    print(" [*] Waiting for logs. To exit press CTRL+C", flush=True)
    for msg in logs:
        print(f" [x] {msg.body.decode()}", flush=True)
