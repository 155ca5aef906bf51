# SPDX-License-Identifier: Apache-2.0
"""Exits in one of several awkward ways with fabric objects alive. The test
runs it many times: it must exit 0 every time (never abort or crash).

  no-close    handlers still running, nothing closed, end of script
  past-drain  a handler runs past the worker's drain_timeout at exit
  sys-exit    sys.exit(0) inside the with blocks
  thread      the objects live in a non-main thread that is still working
              when the main thread ends
  callbacks   every callback kind busy at exit (completions, peer events,
              a subscriber handler, a server handler)
  daemons     daemon threads blocked in fabric calls (node.wait, next,
              call, a push on a full producer) when the main thread ends
"""

import sys
import threading
import time

import fabricmq as fm
from common import node

mode = sys.argv[1]
started = threading.Event()


def busy(task):
    started.set()
    time.sleep(0.01)


if mode == "no-close":
    n = node("exit-a")
    w = fm.Worker(n, "exit", busy, concurrency=2)
    p = fm.Producer(n, "exit")
    for i in range(200):
        p.push_nowait(b"x")
    started.wait(10)
elif mode == "past-drain":
    n = node("exit-b")
    w = fm.Worker(n, "exit", lambda t: (started.set(), time.sleep(1.5)),
                  drain_timeout=0.2)
    p = fm.Producer(n, "exit")
    p.push(b"x")
    started.wait(10)
elif mode == "sys-exit":
    with node("exit-c") as n, fm.Worker(n, "exit", busy), \
            fm.Producer(n, "exit") as p:
        for i in range(100):
            p.push_nowait(b"x")
        started.wait(10)
        print("EXITING", flush=True)
        sys.exit(0)
elif mode == "thread":
    def run():
        n = node("exit-d")
        w = fm.Worker(n, "exit", busy)
        p = fm.Producer(n, "exit")
        for i in range(1000):
            p.push_nowait(b"x")
        started.wait(10)
        time.sleep(0.3)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    started.wait(10)
elif mode == "callbacks":
    events = []
    n = node("exit-e")
    n2 = node("exit-f")
    n3 = fm.Node.from_env("exit-g", on_peer_event=lambda e: time.sleep(0.01),
                          beacon_interval=0.1)
    w = fm.Worker(n, "exit", busy)
    p = fm.Producer(n2, "exit", on_completed=lambda c: time.sleep(0.001))
    s = fm.Server(n, "exit-svc", lambda r: (time.sleep(0.05), b"")[1])
    c = fm.Client(n2)
    pub = fm.Publisher(n)
    sub = fm.Subscriber(n2, "t", handler=lambda m: time.sleep(0.001))
    futures = [c.call_future("exit-svc", b"x", wait_for_server=True)
               for _ in range(20)]
    for i in range(300):
        p.push_nowait(b"x")
        pub.publish("t", b"y")
    started.wait(10)
elif mode == "daemons":
    n = node("exit-h")
    sub = fm.Subscriber(n, "quiet")
    full = fm.Producer(n, "full", max_bytes=100)
    full.push(b"x" * 90)
    client = fm.Client(n)
    calls = [n.wait, sub.next, lambda: full.push(b"y" * 90, timeout=60),
             lambda: client.call("nobody-serves-this", b"x", timeout=60,
                                 wait_for_server=True)]

    def blocked(call):
        started.set()
        try:
            call()
        except Exception:  # closed by the exit hook: ask again at once
            pass
        while True:  # and keep wanting the GIL
            time.sleep(0.0001)

    for call in calls:
        threading.Thread(target=blocked, args=(call,), daemon=True).start()
    started.wait(10)
    time.sleep(0.2)
else:
    sys.exit(f"unknown mode {mode}")
print("EXITING", flush=True)
