# SPDX-License-Identifier: Apache-2.0
# Sends one log line to every receiver (RabbitMQ tutorial 3, "logs").
import sys

import fabricmq as fm

message = " ".join(sys.argv[1:]) or "info: Hello World!"
with fm.Node.from_env() as node, fm.Publisher(node) as logs:
    logs.wait_for_subscribers(1, timeout=5)
    logs.publish("logs", message)
    print(f" [x] Sent {message}")
