# SPDX-License-Identifier: Apache-2.0
"""Shared by the helper processes: a node of the test's cluster (from the
FABRIC_* environment the test sets) with fast timings."""

import fabricmq as fm

FAST = dict(beacon_interval=0.1, heartbeat_interval=0.1, suspect_timeout=0.4,
            dead_timeout=1.0, disconnect_grace=0.2, linger=0.1)


def node(name):
    return fm.Node.from_env(name, **FAST)
