#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""bench/compare.py on tables as the benches print them (captured from real
runs, shortened): the parsers, the rows and the report, with and without
the peers' JSON. Runs no bench."""

import json
import os
import shutil
import sys
import tempfile
import types
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402

WORK_QUEUE = """\
1 producer -> 2 workers, 100-byte tasks, window 20000, prefetch 100; fabric security: off
mode                                   tasks      tasks/s     p50 us     p99 us notes
raw libzmq PUSH/PULL (no acks)         20000       285048         -1         -1 
fabric memory-only, acked              20000        51306     201984     235739 window 20000 tasks/frame 97 acks/frame 97 
fabric spool fsync=batch, acked        20000        94282     132271     170443 window 20000 tasks/frame 97 acks/frame 98 
"""

REQREP = """\
100-byte bodies; sequential: 2000 round trips (+200 warm-up) each; median of 1 runs; fabric security: off
system                          p50 us    p99 us   mean us  p50/REQ-REP  pipelined/s  /DEALER-RTR
raw libzmq REQ/REP               146.9    4435.4     365.4         1.00            -            -
raw libzmq DEALER/ROUTER             -         -         -            -       339718         1.00
fabric, 1 handler thread         159.2     793.9     256.8         1.08       235357         0.69
  same, client spin off          172.9     285.8     183.5         1.18            -            -
fabric, inline handler           156.8     729.2     252.9         1.07       306589         0.90
targets: p50/REQ-REP <= 1.30, pipelined/DEALER-RTR >= 0.50
"""

PUBSUB = """\
pubsub_bench: 1 publisher -> 2 subscribers, 20000 messages of 100 bytes, 1 runs each (interleaved); fabric security: off
raw libzmq PUB/SUB             sub0      170316 msg/s  received     20000/20000  lost 0
raw libzmq PUB/SUB             sub1      170785 msg/s  received     20000/20000  lost 0
fabric Publisher/Subscriber    sub0      378309 msg/s  received     20000/20000  lost 0 (counted as gaps: 0)
fabric Publisher/Subscriber    sub1      377826 msg/s  received     19990/20000  lost 10 (counted as gaps: 10)
raw libzmq PUB/SUB             sub0  latency p50   120.1 us  p99  2288.6 us  received 500/500
"""

DISCOVERY = """\
benchmark                                       n         median            max       target result
----------------------------------------------------------------------------------------------------
mesh N=10, from last spawn                      1        0.918 s        0.918 s            - info
idle CPU, N=10 meshed nodes                     1    0.009 cores    0.009 cores            - info
mesh N=100, from first spawn                    1       49.480 s       49.480 s            - info
mesh N=100, from last spawn                     1       28.158 s       28.158 s        < 3 s FAIL
idle CPU, N=100 meshed nodes                    1    0.135 cores    0.135 cores        < 0.1 FAIL
beacon bytes/s per node                         2     31.631 B/s     37.957 B/s   < 1024 B/s PASS
"""

LOG = """\
what                                           per second
disk: 128 B pwrite + fdatasync                        191
spool appends, fsync=batch, 100 B                  143469  (38% of sequential writes)
"""

DEDUP = """\
worker ledger, dedup_window 5 min, dedup_max 2^20, frame 100
acks                           count      heap MB      RSS+ MB     ns/ack    B/ack
in order                      500000         4.25        -0.50        120      8.5
shuffled in groups of 8       500000         6.00         5.10        150     12.0
"""

PEERS = {"results": [
    {"workload": "queue-transient", "system": "nats", "status": "ok",
     "msgs_per_s": 1000000.0},
    {"workload": "queue-transient", "system": "zmq", "status": "ok",
     "msgs_per_s": 2000000.0},
    {"workload": "queue-durable", "system": "rabbitmq", "status": "ok",
     "msgs_per_s": 10000.0},
    {"workload": "queue-durable", "system": "redis", "status": "ERROR",
     "error": "connect refused"},
    {"workload": "pubsub-fanout", "system": "nats", "status": "ok",
     "msgs_per_s": 500000, "per_sub_msgs_per_s": [500000, 400000]},
    {"workload": "reqrep-latency", "system": "redis", "status": "ok",
     "p50_us": 100.0, "p99_us": 200.0},
]}


def fabric_tables():
    return {"work_queue_bench": compare.parse_work_queue(WORK_QUEUE),
            "reqrep_bench": compare.parse_reqrep(REQREP),
            "pubsub_bench": compare.parse_pubsub(PUBSUB),
            "discovery_bench": compare.parse_discovery(DISCOVERY),
            "dedup_bench": compare.parse_dedup(DEDUP)}


def find(rows, workload_part, against, metric=None):
    for r in rows:
        if (workload_part in r["workload"] and r["against"] == against and
                (metric is None or r["metric"] == metric)):
            return r
    raise AssertionError(f"no row {workload_part} / {against} / {metric}")


class ParserTest(unittest.TestCase):
    def test_work_queue(self):
        t = compare.parse_work_queue(WORK_QUEUE)
        self.assertEqual(t["fabric memory-only, acked"]["tasks_per_s"], 51306)
        self.assertEqual(t["fabric spool fsync=batch, acked"]["tasks_per_s"], 94282)
        self.assertEqual(t["raw libzmq PUSH/PULL (no acks)"]["tasks_per_s"], 285048)
        self.assertIsNone(t["raw libzmq PUSH/PULL (no acks)"]["p50_us"])  # -1
        self.assertEqual(len(t), 3)

    def test_reqrep(self):
        t = compare.parse_reqrep(REQREP)
        self.assertEqual(t["fabric, 1 handler thread"]["p50_us"], 159.2)
        self.assertEqual(t["fabric, 1 handler thread"]["p99_us"], 793.9)
        self.assertEqual(t["raw libzmq REQ/REP"]["p99_us"], 4435.4)
        self.assertIsNone(t["raw libzmq DEALER/ROUTER"]["p50_us"])
        # The indented variant rows are not rows of their own.
        self.assertNotIn("same, client spin off", t)
        self.assertNotIn("system", t)

    def test_pubsub_takes_the_slowest_subscriber(self):
        t = compare.parse_pubsub(PUBSUB)
        f = t["fabric Publisher/Subscriber"]
        self.assertEqual(f["min_per_sub_msgs_per_s"], 377826)
        self.assertEqual((f["received"], f["expected"], f["subs"]), (39990, 40000, 2))
        self.assertEqual(t["raw libzmq PUB/SUB"]["min_per_sub_msgs_per_s"], 170316)

    def test_discovery(self):
        t = compare.parse_discovery(DISCOVERY)
        self.assertEqual(t["mesh N=100, from last spawn"]["median"], 28.158)
        self.assertEqual(t["mesh N=100, from last spawn"]["result"], "FAIL")
        self.assertEqual(t["idle CPU, N=100 meshed nodes"]["median"], 0.135)
        self.assertEqual(t["idle CPU, N=100 meshed nodes"]["unit"], "cores")
        self.assertEqual(t["beacon bytes/s per node"]["target"], "< 1024 B/s")
        self.assertNotIn("benchmark", t)

    def test_log_and_dedup(self):
        self.assertEqual(
            compare.parse_log(LOG)["spool appends, fsync=batch, 100 B"]["per_s"], 143469)
        d = compare.parse_dedup(DEDUP)
        self.assertEqual(d[("in order", 500000)]["heap_mb"], 4.25)
        self.assertEqual(d[("in order", 500000)]["rss_mb"], -0.5)
        self.assertEqual(len(d), 2)


class RowsTest(unittest.TestCase):
    def test_without_peers_every_peer_cell_is_not_measured(self):
        rows = compare.build_rows(fabric_tables(), {}, "not measured (no network)")
        r = find(rows, "memory-only", "NATS core (no acks)")
        self.assertEqual(r["fabric"], 51306)
        self.assertIsNone(r["against_v"])
        self.assertEqual(r["note"], "not measured (no network)")
        # The same-bench yardsticks are still there.
        r = find(rows, "memory-only", "raw PUSH/PULL, same bench (no acks)")
        self.assertAlmostEqual(compare.ratio(r["fabric"], r["against_v"]),
                               51306 / 285048)

    def test_ratios_targets_and_peer_errors(self):
        rows = compare.build_rows(fabric_tables(), compare.peer_cells(PEERS),
                                  "not measured")
        r = find(rows, "memory-only", "NATS core (no acks)")
        self.assertEqual(r["against_v"], 1000000.0)
        self.assertFalse(r["met"](compare.ratio(r["fabric"], r["against_v"])))
        r = find(rows, "spooled", "RabbitMQ durable")
        q = compare.ratio(r["fabric"], r["against_v"])
        self.assertAlmostEqual(q, 9.4282)
        self.assertFalse(r["met"](q))  # needs 10x
        r = find(rows, "spooled", "Redis AOF everysec")
        self.assertIsNone(r["against_v"])
        self.assertIn("connect refused", r["note"])
        r = find(rows, "pub/sub", "NATS core")
        self.assertEqual(r["against_v"], 400000)  # the slower subscriber
        r = find(rows, "req/rep", "Redis", "p50 us")
        self.assertTrue(r["met"](compare.ratio(r["fabric"], 200.0)))
        self.assertFalse(r["met"](compare.ratio(r["fabric"], r["against_v"])))
        r = find(rows, "100 idle meshed nodes, CPU together", "issue 23 target")
        self.assertAlmostEqual(compare.ratio(r["fabric"], r["against_v"]), 1.35)
        r = find(rows, "100 idle meshed nodes, CPU per node", "issue 23 target")
        self.assertAlmostEqual(r["fabric"], 1.35)
        r = find(rows, "worker dedup", "issue 23 target")
        self.assertEqual(r["fabric"], 6.00)  # the worst order
        self.assertIn("shuffled in groups of 8", r["workload"])
        self.assertTrue(r["met"](compare.ratio(r["fabric"], r["against_v"])))


class ReportTest(unittest.TestCase):
    def write(self, with_peers):
        raw = tempfile.mkdtemp(prefix="compare-test-raw-")
        out = tempfile.mkdtemp(prefix="compare-test-out-")
        self.addCleanup(shutil.rmtree, raw)
        self.addCleanup(shutil.rmtree, out)
        recs = {}
        for name, text in (("work_queue_bench", WORK_QUEUE), ("reqrep_bench", REQREP),
                           ("pubsub_bench", PUBSUB), ("discovery_bench", DISCOVERY),
                           ("log_bench", LOG), ("dedup_bench", DEDUP)):
            with open(os.path.join(raw, name + ".out"), "w") as f:
                f.write(text)
            recs[name] = {"argv": [name], "exit": 0, "seconds": 1.0,
                          "load_before": (1.0, 2.0, 3.0), "load_after": (4.0, 5.0, 6.0)}
        recs["peers"] = {"argv": ["run-peers"], "exit": 0 if with_peers else 100,
                         "seconds": 2.0, "load_before": (1, 1, 1), "load_after": (1, 1, 1)}
        if with_peers:
            with open(os.path.join(raw, "peers-results.json"), "w") as f:
                json.dump(PEERS, f)
        else:
            with open(os.path.join(raw, "peers.err"), "w") as f:
                f.write("E: Unable to locate package nats-server\n")
        args = types.SimpleNamespace(quick=True, started="2026-01-02 03:04", git="abc1234",
                                     build=os.path.join(compare.ROOT, "build"))
        md = os.path.join(out, "2026-01-02.md")
        png = os.path.join(out, "2026-01-02.png")
        _, peers_ok = compare.write_report(args, recs, raw, md, png)
        with open(md) as f:
            return f.read(), peers_ok, png

    def test_report_without_peers(self):
        text, peers_ok, _ = self.write(with_peers=False)
        self.assertFalse(peers_ok)
        self.assertIn("**Peers: not measured (run-peers exit 100)", text)
        self.assertIn("Unable to locate package nats-server", text)
        self.assertIn("| 51,306 | NATS core (no acks) | not measured", text)
        self.assertIn("nproc", text)
        self.assertIn("1.00 / 2.00 / 3.00 | 4.00 / 5.00 / 6.00", text)
        self.assertIn("fabric memory-only, acked", text)  # the raw table

    def test_report_with_peers_links_its_chart(self):
        text, peers_ok, png = self.write(with_peers=True)
        self.assertTrue(peers_ok)
        self.assertIn("| RabbitMQ durable | 10,000 | 9.43 | >= 10x | **no** |", text)
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            self.assertIn("no chart: matplotlib missing", text)
            return
        self.assertIn("![ratios](2026-01-02.png)", text)
        with open(png, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


if __name__ == "__main__":
    unittest.main()
