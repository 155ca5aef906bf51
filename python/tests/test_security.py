# SPDX-License-Identifier: Apache-2.0
"""Secure mode from Python (docs/security.md): key material made with
fabricmq.keygen, nodes that meet only with a roster key, a refusal that
raises FailedPrecondition, and a revocation."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

import fabricmq as fm

from conftest import FAST


def wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def keys(tmp_path: Path):
    keydir = tmp_path / "keys"
    roster = tmp_path / "roster"
    roster.mkdir()
    for name in ("a", "b", "stranger"):
        fm.keygen(name, str(keydir))
    for name in ("a", "b"):
        shutil.copy(keydir / f"{name}.pub", roster / f"{name}.pub")
    secret = tmp_path / "beacon.secret"
    fm.new_beacon_secret(str(secret))
    return keydir, roster, secret


def secure_node(name, cluster, beacon_port, keys, **kw):
    keydir, roster, secret = keys
    options = dict(FAST, beacon_interval=0.2)
    options.update(kw)
    return fm.Node(name, cluster=cluster, beacon_port=beacon_port,
                   key_file=str(keydir / f"{name}.key"), roster=str(roster),
                   beacon_secret_file=str(secret), **options)


def names(node: fm.Node):
    return {p.name for p in node.peers()}


def test_keygen_writes_owner_only_secret(keys):
    keydir, _, secret = keys
    assert oct(os.stat(keydir / "a.key").st_mode & 0o777) == "0o600"
    assert oct(os.stat(keydir / "a.pub").st_mode & 0o777) == "0o644"
    assert oct(os.stat(secret).st_mode & 0o777) == "0o600"
    with pytest.raises(fm.AlreadyExists):
        fm.keygen("a", str(keydir))


def test_secure_nodes_meet_and_a_stranger_is_refused(cluster, beacon_port,
                                                     keys):
    a = secure_node("a", cluster, beacon_port, keys)
    b = secure_node("b", cluster, beacon_port, keys)
    keydir, _, secret = keys
    # The stranger trusts a and b, but they do not hold its key.
    own = keydir.parent / "roster-stranger"
    own.mkdir()
    for n in ("a", "b", "stranger"):
        shutil.copy(keydir / f"{n}.pub", own / f"{n}.pub")
    stranger = fm.Node("stranger", cluster=cluster, beacon_port=beacon_port,
                       key_file=str(keydir / "stranger.key"),
                       roster=str(own), beacon_secret_file=str(secret),
                       **dict(FAST, beacon_interval=0.2))
    try:
        assert wait_for(lambda: "b" in names(a) and "a" in names(b))
        peer = next(p for p in a.peers() if p.name == "b")
        assert peer.key is not None and len(peer.key) == 16
        assert wait_for(
            lambda: stranger.stats().handshakes_failed_auth >= 1
            and a.stats().zap_denied >= 1)
        assert "stranger" not in names(a)
        assert names(stranger) == set()
        assert a.stats().zap_running
    finally:
        stranger.close()
        b.close()
        a.close()


def test_missing_key_file_refuses_to_start(cluster, beacon_port, keys):
    keydir, roster, secret = keys
    with pytest.raises(fm.FailedPrecondition, match="FAB-SEC-KEY"):
        fm.Node("a", cluster=cluster, beacon_port=beacon_port,
                key_file=str(keydir / "missing.key"), roster=str(roster),
                beacon_secret_file=str(secret))
    os.chmod(keydir / "a.key", 0o644)
    with pytest.raises(fm.FailedPrecondition, match="FAB-SEC-KEY-PERMS"):
        fm.Node("a", cluster=cluster, beacon_port=beacon_port,
                key_file=str(keydir / "a.key"), roster=str(roster),
                beacon_secret_file=str(secret))


def test_shared_spool_and_state_dir_refused_unless_allowed(
        cluster, beacon_port, keys, tmp_path):
    spool = tmp_path / "spool"
    subs = tmp_path / "subs"
    for d in (spool, subs):
        d.mkdir()
        os.chmod(d, 0o755)  # as an earlier release left it
    a = secure_node("a", cluster, beacon_port, keys)
    try:
        with pytest.raises(fm.FailedPrecondition,
                           match=re.escape(
                               f"FAB-SEC-FILE-PERMS {spool} has mode 0755")):
            fm.Producer(a, "jobs", spool_dir=spool)
        fm.Producer(a, "jobs", spool_dir=spool,
                    allow_shared_files=True).close()
        with pytest.raises(fm.FailedPrecondition,
                           match=re.escape(
                               f"FAB-SEC-FILE-PERMS {subs} has mode 0755")):
            fm.Subscriber(a, "t", durable_name="x", state_dir=subs)
        fm.Subscriber(a, "t", durable_name="x", state_dir=subs,
                      allow_shared_files=True).close()
        topics = tmp_path / "topics"
        (topics / "t").mkdir(parents=True)
        os.chmod(topics / "t", 0o755)
        with pytest.raises(fm.FailedPrecondition,
                           match="FAB-SEC-FILE-PERMS"):
            fm.Publisher(a, durable_topics=["t"], spool_dir=topics)
        fm.Publisher(a, durable_topics=["t"], spool_dir=topics,
                     allow_shared_files=True).close()
        # Owner-only: accepted without the override.
        os.chmod(spool, 0o700)
        fm.Producer(a, "jobs", spool_dir=spool).close()
    finally:
        a.close()


def test_work_queue_and_revocation(cluster, beacon_port, keys):
    _, roster, _ = keys
    a = secure_node("a", cluster, beacon_port, keys)
    b = secure_node("b", cluster, beacon_port, keys)
    done = []
    try:
        worker = fm.Worker(b, "jobs", lambda task: done.append(task.body))
        producer = fm.Producer(a, "jobs")
        for i in range(20):
            producer.push(b"task-%d" % i)
        assert wait_for(lambda: len(done) == 20)
        (roster / "b.pub").unlink()
        a.reload_roster()
        assert "b" not in names(a)
        assert a.stats().keys_revoked == 1
        worker.close()
        producer.close()
    finally:
        b.close()
        a.close()
