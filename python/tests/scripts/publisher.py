# SPDX-License-Identifier: Apache-2.0
"""A publisher process: waits for a subscriber, publishes --count
messages on TOPIC, prints SENT, stays until SIGTERM."""

import argparse

import fabricmq as fm
from common import node

ap = argparse.ArgumentParser()
ap.add_argument("topic")
ap.add_argument("--count", type=int, default=10)
args = ap.parse_args()

with node("py-publisher") as n, fm.Publisher(n) as pub:
    print("READY", flush=True)
    pub.wait_for_subscribers(1, timeout=30)
    for i in range(args.count):
        pub.publish(args.topic, f"m{i}", {"i": str(i)})
    print("SENT", flush=True)
    n.wait()
