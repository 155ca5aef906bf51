# SPDX-License-Identifier: Apache-2.0
"""A server process: serves SERVICE, replying "<name>:<BODY upper>"."""

import argparse

import fabricmq as fm
from common import node

ap = argparse.ArgumentParser()
ap.add_argument("service")
ap.add_argument("--name", default="py-server")
args = ap.parse_args()

with node(args.name) as n, fm.Server(
        n, args.service,
        lambda r: f"{args.name}:{r.body.decode().upper()}"):
    print(f"READY {n.id}", flush=True)
    n.wait()
