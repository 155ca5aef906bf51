#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Runs every fabric bench and ../shared/peers/run-peers, then writes
bench/results/<YYYY-MM-DD>.md (fabric beside each peer, with the ratio
fabric/peer, machine and load) and a PNG bar chart of the ratios.

Invoked by `tools/dev bench [--quick]`, which builds the benches first.
The benches print tables (stdout); this script parses them, and the JSON
that peers.py writes with --out. A bench that fails, or a peer run that
cannot install or start its brokers, leaves its cells "not measured"; the
report is written anyway and says why.

`--parse-only DIR` rebuilds the report from the raw outputs a previous run
kept in DIR (every run keeps them: see "Raw outputs" in the report).
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEERS = os.path.normpath(os.path.join(ROOT, "..", "shared", "peers", "run-peers"))

# Counts follow the peers' workloads (peers/README.md "Workloads"): the same
# N per workload, quick and full, so the rows compare like with like.
BENCHES = {
    # name: (full args, quick args)
    "work_queue_bench": (
        ["--modes", "zmq,memory,batch", "--prefetch", "100", "--count", "200000"],
        ["--modes", "zmq,memory,batch", "--prefetch", "100", "--count", "20000"],
    ),
    "reqrep_bench": (
        ["--count", "10000", "--warmup", "1000", "--runs", "3"],
        ["--count", "2000", "--warmup", "200", "--pipelined", "20000", "--runs", "1"],
    ),
    "pubsub_bench": (
        ["--count", "200000", "--runs", "3"],
        ["--count", "20000", "--replay-count", "20000", "--latency-count", "500",
         "--runs", "1"],
    ),
    "discovery_bench": (
        ["--nodes", "10,50,100", "--runs", "3"],
        ["--nodes", "10,100", "--runs", "1", "--kill-reps", "1", "--stop-reps", "1",
         "--traffic-seconds", "3"],
    ),
    "log_bench": ([], ["--count", "20000", "--seconds", "0.5"]),
    "dedup_bench": ([], ["--counts", "500000"]),
}

NOT_MEASURED = "not measured"


# ---------------------------------------------------------------------------
# Parsers: one per bench table. Each returns a dict of named figures; a row
# that is missing from the output is simply absent.

def _num(text):
    """A float from a table cell, or None for '-', 'inf', 'nan' and junk."""
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) and v >= 0 else None


def parse_work_queue(out):
    """mode / tasks / tasks/s / p50 us / p99 us / notes."""
    rows = {}
    for line in out.splitlines():
        m = re.match(r"^(raw libzmq PUSH/PULL \(no acks\)|fabric [^0-9]+?)\s+"
                     r"(\d+)\s+(\S+)\s+(\S+)\s+(\S+)", line)
        if not m:
            continue
        name = m.group(1).strip()
        rows[name] = {"tasks": int(m.group(2)), "tasks_per_s": _num(m.group(3)),
                      "p50_us": _num(m.group(4)), "p99_us": _num(m.group(5))}
    return rows


def parse_reqrep(out):
    """system / p50 us / p99 us / mean us / p50/REQ-REP / pipelined/s / ..."""
    rows = {}
    for line in out.splitlines():
        m = re.match(r"^(\S.*?)\s{2,}(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", line)
        if not m or m.group(1) in ("system", "targets:"):
            continue
        rows[m.group(1).strip()] = {
            "p50_us": _num(m.group(2)), "p99_us": _num(m.group(3)),
            "mean_us": _num(m.group(4)), "pipelined_per_s": _num(m.group(6))}
    return rows


def parse_pubsub(out):
    """Throughput lines, one per subscriber: the slowest subscriber of each
    system, as peers.py reports for pubsub-fanout."""
    rows = {}
    for line in out.splitlines():
        m = re.match(r"^(.+?)\s+sub(\d+)\s+(\S+) msg/s\s+received\s+(\d+)/(\d+)",
                     line)
        if not m:
            continue
        name, rate = m.group(1).strip(), _num(m.group(3))
        r = rows.setdefault(name, {"min_per_sub_msgs_per_s": None, "subs": 0,
                                   "received": 0, "expected": 0})
        r["subs"] += 1
        r["received"] += int(m.group(4))
        r["expected"] += int(m.group(5))
        if rate is not None and (r["min_per_sub_msgs_per_s"] is None or
                                 rate < r["min_per_sub_msgs_per_s"]):
            r["min_per_sub_msgs_per_s"] = rate
    return rows


def parse_discovery(out):
    """benchmark / n / median / max / target / result; values carry a unit."""
    rows = {}
    for line in out.splitlines():
        m = re.match(r"^(\S.*?)\s+(\d+)\s+(\S+) (\S+)\s+(\S+) \S+\s+(.*?)\s+"
                     r"(PASS|FAIL|info)$", line)
        if not m:
            continue
        rows[m.group(1).strip()] = {"n": int(m.group(2)), "median": _num(m.group(3)),
                                    "unit": m.group(4), "max": _num(m.group(5)),
                                    "target": m.group(6).strip(),
                                    "result": m.group(7)}
    return rows


def parse_log(out):
    rows = {}
    for line in out.splitlines():
        m = re.match(r"^(\S.*?)\s{2,}(\d+)(\s|$)", line)
        if m:
            rows[m.group(1).strip()] = {"per_s": float(m.group(2))}
    return rows


def parse_dedup(out):
    """acks / count / heap MB / RSS+ MB / ns/ack / B/ack."""
    rows = {}
    for line in out.splitlines():
        m = re.match(r"^(\S.*?)\s+(\d+)\s+([\d.]+)\s+(-?[\d.]+)\s+([\d.]+)\s+([\d.]+)$",
                     line)
        if m:
            rows[(m.group(1).strip(), int(m.group(2)))] = {
                "heap_mb": float(m.group(3)), "rss_mb": float(m.group(4)),
                "ns_per_ack": float(m.group(5))}
    return rows


PARSERS = {
    "work_queue_bench": parse_work_queue,
    "reqrep_bench": parse_reqrep,
    "pubsub_bench": parse_pubsub,
    "discovery_bench": parse_discovery,
    "log_bench": parse_log,
    "dedup_bench": parse_dedup,
}


def peer_cells(peers_json):
    """{(workload, system): cell} from peers.py's JSON, or {}."""
    if not peers_json:
        return {}
    return {(r["workload"], r["system"]): r for r in peers_json.get("results", [])}


# ---------------------------------------------------------------------------
# Running.

def loadavg():
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def run_logged(name, argv, raw_dir, timeout):
    """Runs argv; keeps stdout/stderr in raw_dir/<name>.{out,err}; returns a
    record with exit code, seconds and load average before and after."""
    rec = {"name": name, "argv": argv, "load_before": loadavg()}
    print(f"compare: running {' '.join(argv)}", file=sys.stderr, flush=True)
    start = time.monotonic()
    out_path = os.path.join(raw_dir, name + ".out")
    err_path = os.path.join(raw_dir, name + ".err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        try:
            proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=ROOT,
                                    start_new_session=True)
        except OSError as e:
            err.write(f"compare: cannot start: {e}\n".encode())
            rec["exit"] = None
            rec["error"] = str(e)
            proc = None
        if proc is not None:
            try:
                rec["exit"] = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # Our own child's process group: SIGTERM first, so run-peers
                # stops the brokers it started; SIGKILL if it lingers.
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                rec["exit"] = None
                rec["error"] = f"timed out after {timeout} s"
    rec["seconds"] = round(time.monotonic() - start, 1)
    rec["load_after"] = loadavg()
    with open(os.path.join(raw_dir, name + ".rec.json"), "w") as f:
        json.dump(rec, f)
    print(f"compare: {name} exit {rec.get('exit')} in {rec['seconds']} s",
          file=sys.stderr, flush=True)
    return rec


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


# ---------------------------------------------------------------------------
# The comparison rows.

def fmt(v, unit=""):
    if v is None:
        return NOT_MEASURED
    if abs(v) >= 1000:
        s = f"{v:,.0f}"
    elif abs(v) >= 10:
        s = f"{v:.1f}"
    else:
        s = f"{v:.3g}"
    return f"{s} {unit}".strip()


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def build_rows(fab, peers, peers_note):
    """The comparison: a list of dicts with workload, metric, better
    ('higher'/'lower'), fabric value, against (name), against value, target."""
    wq = fab.get("work_queue_bench", {})
    rr = fab.get("reqrep_bench", {})
    ps = fab.get("pubsub_bench", {})
    disc = fab.get("discovery_bench", {})
    dd = fab.get("dedup_bench", {})
    rows = []

    def peer(workload, system, key):
        cell = peers.get((workload, system))
        if not cell:
            return None, peers_note
        if cell.get("status") != "ok":
            return None, f"{cell.get('status')}: {cell.get('error') or cell.get('notes', '')}"[:80]
        v = cell.get(key)
        if isinstance(v, list):  # per-subscriber rates: the slowest one
            v = min(v) if v else None
        return v, ""

    def get(table, name, key):
        return (table.get(name) or {}).get(key)

    # `short` names the row in the chart.
    short = {"wl": ""}

    def add(workload, metric, better, fabric_v, against, against_v, note="",
            target="", met=None):
        """`met`: the target as a test of the ratio fabric/against."""
        rows.append({"workload": workload, "metric": metric, "better": better,
                     "fabric": fabric_v, "against": against,
                     "against_v": against_v, "note": note, "target": target,
                     "met": met, "short": f"{short['wl']} {metric} vs {against}"})

    mem = get(wq, "fabric memory-only, acked", "tasks_per_s")
    wl = "acked work queue, memory-only, 1 -> 2 workers, prefetch 100"
    short["wl"] = "work queue memory-only,"
    for system, label in (("nats", "NATS core (no acks)"),
                          ("zmq", "raw PUSH/PULL, peers (no acks)")):
        v, note = peer("queue-transient", system, "msgs_per_s")
        add(wl, "tasks/s", "higher", mem, label, v, note,
            ">= 1x" if system == "nats" else "",
            (lambda q: q >= 1) if system == "nats" else None)
    add(wl, "tasks/s", "higher", mem, "raw PUSH/PULL, same bench (no acks)",
        get(wq, "raw libzmq PUSH/PULL (no acks)", "tasks_per_s"))

    spool = get(wq, "fabric spool fsync=batch, acked", "tasks_per_s")
    wl = "spooled work queue, fsync=batch"
    short["wl"] = "work queue spooled,"
    # ">= 5x the best durable peer" is >= 5x each of them.
    for system, label, target, least in (
            ("rabbitmq", "RabbitMQ durable", ">= 10x", 10.0),
            ("redis", "Redis AOF everysec", ">= 5x", 5.0),
            ("nats", "NATS JetStream", ">= 5x", 5.0)):
        v, note = peer("queue-durable", system, "msgs_per_s")
        add(wl, "tasks/s", "higher", spool, label, v, note, target,
            lambda q, least=least: q >= least)

    wl = "req/rep round trip, 1 client, 1 server (fabric: 1 handler thread)"
    short["wl"] = "req/rep"
    for key, metric, most in (("p50_us", "p50 us", 1.2), ("p99_us", "p99 us", 2.0)):
        f = get(rr, "fabric, 1 handler thread", key)
        add(wl, metric, "lower", f, "raw REQ/REP, same bench",
            get(rr, "raw libzmq REQ/REP", key), "", f"<= {most:g}x",
            lambda q, most=most: q <= most)
        for system, label in (("zmq", "raw REQ/REP, peers"), ("redis", "Redis"),
                              ("nats", "NATS request")):
            v, note = peer("reqrep-latency", system, key)
            if system == "zmq":
                add(wl, metric, "lower", f, label, v, note, f"<= {most:g}x",
                    lambda q, most=most: q <= most)
            elif system == "redis" and key == "p50_us":
                add(wl, metric, "lower", f, label, v, note, "< 1x",
                    lambda q: q < 1)
            else:
                add(wl, metric, "lower", f, label, v, note)

    wl = "pub/sub fan-out to 2, slowest subscriber"
    short["wl"] = "pub/sub fan-out,"
    f = get(ps, "fabric Publisher/Subscriber", "min_per_sub_msgs_per_s")
    add(wl, "msg/s", "higher", f, "raw PUB/SUB, same bench",
        get(ps, "raw libzmq PUB/SUB", "min_per_sub_msgs_per_s"))
    for system, label in (("nats", "NATS core"), ("redis", "Redis pub/sub"),
                          ("zmq", "raw PUB/SUB, peers")):
        v, note = peer("pubsub-fanout", system, "per_sub_msgs_per_s")
        add(wl, "msg/s", "higher", f, label, v, note)

    # Discovery has no peer in run-peers: the targets stand in.
    sizes = sorted({int(m.group(1)) for k in disc
                    for m in [re.match(r"mesh N=(\d+), from last", k)] if m})
    for n in sizes:
        row = disc.get(f"mesh N={n}, from last spawn", {})
        short["wl"] = f"N={n}: mesh"
        has = n >= 100  # the targets are for 100 nodes
        add(f"{n} nodes meshing on one host", "s from last spawn", "lower",
            row.get("median"), "issue 23 target" if has else "-",
            3.0 if has else None, "" if has else "-",
            "< 3 s" if has else "", (lambda q: q < 1) if has else None)
        idle = disc.get(f"idle CPU, N={n} meshed nodes", {}).get("median")
        short["wl"] = f"N={n}: idle CPU,"
        add(f"{n} idle meshed nodes, CPU together", "cores", "lower", idle,
            "issue 23 target" if has else "-", 0.1 if has else None,
            "" if has else "-", "< 0.1 core" if has else "",
            (lambda q: q < 1) if has else None)
        per_node = idle * 1000.0 / n if idle is not None else None
        short["wl"] = f"N={n}: idle CPU per node,"
        add(f"{n} idle meshed nodes, CPU per node", "ms CPU/s", "lower",
            per_node, "issue 23 target", 1.0, "", "<= 1 ms/s",
            lambda q: q <= 1)

    # The worst ack order at 500,000 acks (or at the largest count run).
    counts = sorted({count for (_, count) in dd})
    if counts:
        at = 500000 if 500000 in counts else counts[-1]
        order, r = max(((o, r) for (o, c), r in dd.items() if c == at),
                       key=lambda x: x[1]["heap_mb"])
        short["wl"] = "worker dedup"
        add(f"worker dedup memory, {at:,} acks, worst order ({order})",
            "heap MB", "lower", r["heap_mb"], "issue 23 target", 8.0, "",
            "<= 8 MB", lambda q: q <= 1)
    return rows


# ---------------------------------------------------------------------------
# Report.

def chart(rows, path):
    """Horizontal bars of fabric/peer per row, log scale, 1 = parity."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError as e:
        return f"no chart: matplotlib missing ({e}); install python3-matplotlib"
    pts = [r for r in rows if ratio(r["fabric"], r["against_v"]) is not None]
    if not pts:
        return "no chart: no ratio was measured"
    labels, values, colors = [], [], []
    for r in pts:
        q = ratio(r["fabric"], r["against_v"])
        good = q >= 1 if r["better"] == "higher" else q <= 1
        labels.append(r["short"])
        values.append(q)
        colors.append("#2e7d32" if good else "#c62828")
    height = 0.32 * len(pts) + 1.6
    fig, ax = plt.subplots(figsize=(11, height))
    y = list(range(len(pts)))[::-1]
    # Bars grow from parity (1) to the ratio, left or right.
    ax.barh(y, [v - 1.0 for v in values], left=1.0, color=colors)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    lo, hi = min(values + [1.0]), max(values + [1.0])
    ax.set_xlim(lo / 1.6, hi * 1.6)
    ax.xaxis.set_major_formatter(
        matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    for yi, v in zip(y, values):
        ax.text(v, yi, f" {fmt_ratio(v)}", va="center", fontsize=7)
    ax.set_xlabel("fabric / peer (log scale); green: fabric better "
                  "(higher throughput, lower latency or cost)")
    ax.set_title("fabric against its peers, " + os.path.basename(path)[:-4])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return ""


def machine():
    cpu = ""
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = ""
    m = re.search(r"MemTotal:\s+(\d+) kB", read("/proc/meminfo"))
    if m:
        mem = f"{int(m.group(1)) / 1024 / 1024:.1f} GiB"
    os_name = ""
    m = re.search(r'PRETTY_NAME="([^"]+)"', read("/etc/os-release"))
    if m:
        os_name = m.group(1)
    return {"nproc": os.cpu_count(), "kernel": platform.release(),
            "machine": platform.machine(), "cpu": cpu, "mem": mem, "os": os_name}


def git_describe():
    try:
        return subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def short_path(arg):
    """A path under the repo or its parent (../shared) relative to the repo;
    anything else (flags, /tmp files) as it is."""
    if not arg.startswith("/"):
        return arg
    rel = os.path.relpath(arg, ROOT)
    return arg if rel.startswith("../..") else rel


def fmt_ratio(q):
    if q is None:
        return "-"
    return f"{q:.2f}" if q >= 0.1 else f"{q:.2g}"


def la(t):
    return " / ".join(f"{x:.2f}" for x in t) if t else "-"


def write_report(args, recs, raw_dir, out_md, out_png):
    fab = {}
    for name, parse in PARSERS.items():
        if name in recs:
            fab[name] = parse(read(os.path.join(raw_dir, name + ".out")))
    peers_json, peers_note = None, NOT_MEASURED
    peers_rec = recs.get("peers")
    if peers_rec is None:
        peers_note = f"{NOT_MEASURED} (run-peers not run)"
    else:
        try:
            with open(os.path.join(raw_dir, "peers-results.json")) as f:
                peers_json = json.load(f)
        except (OSError, ValueError):
            tail = read(os.path.join(raw_dir, "peers.err")).strip().splitlines()[-3:]
            peers_note = (f"{NOT_MEASURED} (run-peers exit {peers_rec.get('exit')}"
                          f"{': ' + peers_rec['error'] if peers_rec.get('error') else ''})")
            peers_rec["tail"] = tail
    rows = build_rows(fab, peer_cells(peers_json), peers_note)
    chart_note = chart(rows, out_png)

    m = machine()
    date = os.path.basename(out_md)[:-3]
    L = []
    L.append(f"# fabric against its peers, {date}" + (" (quick)" if args.quick else ""))
    L.append("")
    L.append(f"Made by `tools/dev bench{' --quick' if args.quick else ''}` "
             f"(bench/compare.py) at {args.started} UTC, git {args.git}, "
             f"build `{os.path.relpath(args.build, ROOT)}`. Ratio = fabric / peer: "
             "for throughput above 1 is fabric ahead, for latency and cost "
             "below 1 is. Targets are issue 23's.")
    if args.quick:
        L.append("")
        L.append("Quick run: the peers' quick counts (20,000 queue and fan-out "
                 "messages, 10,000 durable, 2,000 round trips), one run each: "
                 "a smoke test, noise-dominated. Compare ratios, not absolutes.")
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append(f"- nproc {m['nproc']}, {m['cpu']}, {m['mem']}, {m['os']}, "
             f"kernel {m['kernel']} {m['machine']}")
    L.append("- load average (1/5/15 min) before and after each step, and how "
             "long it took:")
    L.append("")
    L.append("| step | command | exit | seconds | load before | load after |")
    L.append("| --- | --- | --- | --- | --- | --- |")
    for name, rec in recs.items():
        cmd = " ".join(short_path(a) for a in rec["argv"])
        ex = rec.get("exit")
        ex = ex if ex is not None else rec.get("error", "failed")
        L.append(f"| {name} | `{cmd}` | {ex} | {rec['seconds']} | "
                 f"{la(rec['load_before'])} | {la(rec['load_after'])} |")
    L.append("")
    if peers_json is None:
        L.append(f"**Peers: {peers_note}.** The peer columns say so; only "
                 "fabric's own figures (and the raw libzmq rows its benches "
                 "measure in the same process) were taken.")
        if peers_rec and peers_rec.get("tail"):
            L.append("")
            L.append("run-peers said, last lines:")
            L.append("")
            L.append("```")
            L.extend(peers_rec["tail"])
            L.append("```")
        L.append("")
    else:
        v = peers_json.get("versions", {}).get("servers", {})
        L.append(f"Peers: `{peers_json.get('command', 'run-peers')}`, "
                 f"{peers_json.get('duration_s', '?')} s; servers: "
                 + ", ".join(f"{k} {v[k]}" for k in sorted(v)) + ".")
        L.append("")
    L.append("## fabric beside its peers")
    L.append("")
    L.append(f"![ratios]({os.path.basename(out_png)})" if not chart_note else
             f"({chart_note})")
    L.append("")
    L.append("| workload | metric | fabric | against | its figure | fabric/peer "
             "| target | met |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        q = ratio(r["fabric"], r["against_v"])
        met = "-" if r["met"] is None or q is None else (
            "yes" if r["met"](q) else "**no**")
        theirs = fmt(r["against_v"]) if r["against_v"] is not None else (
            r["note"] or NOT_MEASURED)
        L.append(f"| {r['workload']} | {r['metric']} | {fmt(r['fabric'])} | "
                 f"{r['against']} | {theirs} | "
                 f"{fmt_ratio(q)} | {r['target'] or '-'} | "
                 f"{met} |")
    L.append("")
    L.append("Notes: the peers' queue-transient rows carry no acks, fabric's "
             "memory-only row does. The spooled fabric row is producer and "
             "workers in one process (work_queue_bench); the peers run a "
             "broker process. Discovery and dedup have no peer in run-peers: "
             "the issue's target is the yardstick. \"same bench\" rows are raw "
             "libzmq measured by the fabric bench in the same run. The issue's "
             "idle row for one node without peers has no bench of its own; "
             "\"CPU per node\" of the 10-node mesh is the closest figure. "
             "discovery_bench's 100 processes raise the load average of the "
             "steps after it (see the machine table).")
    L.append("")
    L.append("## Raw outputs")
    L.append("")
    L.append("Each bench's table as printed (stdout).")
    for name in recs:
        if name == "peers":
            text = read(os.path.join(raw_dir, "peers.out")).strip()
        else:
            text = read(os.path.join(raw_dir, name + ".out")).strip()
        L.append("")
        L.append(f"### {name}")
        L.append("")
        L.append("```")
        L.append(text or "(no output)")
        L.append("```")
    with open(out_md, "w") as f:
        f.write("\n".join(L) + "\n")
    return rows, peers_json is not None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"),
                    help="build dir holding bench/*_bench (default build/)")
    ap.add_argument("--quick", action="store_true",
                    help="small counts, one run each; run-peers --quick")
    ap.add_argument("--no-peers", action="store_true",
                    help="skip run-peers: the peer columns say not measured")
    ap.add_argument("--benches", default=",".join(BENCHES),
                    help="comma-separated subset of the fabric benches")
    ap.add_argument("--out-dir", default=os.path.join(HERE, "results"))
    ap.add_argument("--date", default=None,
                    help="YYYY-MM-DD for the file name (default: today, UTC)")
    ap.add_argument("--raw-dir", default=None,
                    help="where to keep raw outputs (default: a new /tmp dir)")
    ap.add_argument("--parse-only", metavar="DIR", default=None,
                    help="only rebuild the report from a previous run's raw dir")
    ap.add_argument("--timeout", type=int, default=1800,
                    help="seconds each step may take before it is killed")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    now = datetime.datetime.now(datetime.timezone.utc)
    args.started = now.strftime("%Y-%m-%d %H:%M")
    args.git = git_describe()  # of the run, also when re-parsed later
    date = args.date or now.strftime("%Y-%m-%d")
    os.makedirs(args.out_dir, exist_ok=True)
    out_md = os.path.join(args.out_dir, date + ".md")
    out_png = os.path.join(args.out_dir, date + ".png")

    recs = {}
    if args.parse_only:
        raw_dir = args.parse_only
        for name in list(BENCHES) + ["peers"]:
            rec_path = os.path.join(raw_dir, name + ".rec.json")
            if os.path.exists(rec_path):
                with open(rec_path) as f:
                    recs[name] = json.load(f)
        meta = os.path.join(raw_dir, "meta.json")
        if os.path.exists(meta):
            with open(meta) as f:
                saved = json.load(f)
            args.quick, args.started = saved["quick"], saved["started"]
            args.git = saved.get("git", args.git)
    else:
        raw_dir = args.raw_dir or tempfile.mkdtemp(prefix="fabric-bench-")
        os.makedirs(raw_dir, exist_ok=True)
        with open(os.path.join(raw_dir, "meta.json"), "w") as f:
            json.dump({"quick": args.quick, "started": args.started,
                       "git": args.git}, f)
        wanted = [b for b in args.benches.split(",") if b]
        for b in wanted:
            if b not in BENCHES:
                ap.error(f"unknown bench {b} ({', '.join(BENCHES)})")
        for b in wanted:
            exe = os.path.join(args.build, "bench", b)
            bench_args = BENCHES[b][1 if args.quick else 0]
            recs[b] = run_logged(b, [exe] + bench_args, raw_dir, args.timeout)
        if not args.no_peers:
            if not os.path.exists(PEERS):
                recs["peers"] = {"name": "peers", "argv": [PEERS], "exit": None,
                                 "error": "run-peers not found", "seconds": 0,
                                 "load_before": loadavg(), "load_after": loadavg()}
            else:
                argv = [PEERS, "--out", os.path.join(raw_dir, "peers-results.json")]
                if args.quick:
                    argv.insert(1, "--quick")
                recs["peers"] = run_logged("peers", argv, raw_dir, args.timeout)
    rows, peers_ok = write_report(args, recs, raw_dir, out_md, out_png)
    print(f"compare: wrote {os.path.relpath(out_md)}"
          + (f" and {os.path.relpath(out_png)}" if os.path.exists(out_png) else "")
          + f"; raw outputs in {raw_dir}"
          + ("" if peers_ok else "; peers not measured"), file=sys.stderr)
    failed = [n for n, r in recs.items() if r.get("exit") != 0]
    if failed:
        print(f"compare: failed steps: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
