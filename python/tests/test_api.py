# SPDX-License-Identifier: Apache-2.0
"""The package's surface: exceptions, bad input, closed objects, options,
the stubs."""

from __future__ import annotations

import ast
import inspect
from datetime import timedelta
from pathlib import Path

import pytest

import fabricmq as fm
from fabricmq import _fabric


def test_exceptions_map_status_codes_and_builtins():
    assert issubclass(fm.Timeout, TimeoutError)
    assert issubclass(fm.Unavailable, ConnectionError)
    assert issubclass(fm.InvalidArgument, ValueError)
    assert issubclass(fm.NotFound, LookupError)
    assert issubclass(fm.UsageError, RuntimeError)
    assert issubclass(fm.ForkedError, fm.UsageError)
    for cls in (fm.Timeout, fm.Unavailable, fm.Closed, fm.InternalError):
        assert issubclass(cls, fm.Error)
    e = fm.Timeout("took too long")
    assert str(e) == "took too long" and e.code == fm.Code.DEADLINE_EXCEEDED
    assert fm.RpcError(fm.Code.NOT_FOUND, "x").code == fm.Code.NOT_FOUND
    with pytest.raises(ValueError):
        fm.RpcError(fm.Code.OK)


def test_bad_node_options(cluster, beacon_port):
    with pytest.raises(fm.InvalidArgument, match="discovery"):
        fm.Node(cluster=cluster, beacon_port=beacon_port, discovery="carrier")
    with pytest.raises(fm.InvalidArgument, match="beacon_port"):
        fm.Node(cluster=cluster, beacon_port=0)
    with pytest.raises(TypeError):
        fm.Node(cluster=cluster, beacon_port="47470")
    with pytest.raises(fm.InvalidArgument):
        fm.Node(cluster=cluster, beacon_port=beacon_port, dead_timeout=-1)
    with pytest.raises(TypeError):
        fm.Node(cluster=cluster, beacon_port=beacon_port, linger="soon")
    with pytest.raises(TypeError):
        fm.Node(cluster=cluster, beacon_port=beacon_port,
                headers={"a": 1})
    with pytest.raises(TypeError):
        fm.Node.from_env(clustr="typo")


def test_node_basics(nodes):
    events = []
    a = nodes("a", on_peer_event=events.append,
              headers={"role": "test"})
    b = nodes("b", beacon_interval=timedelta(milliseconds=100))
    assert len(a.id) == 32 and a.name == "a"
    assert a.mailbox_endpoint.startswith("tcp://127.0.0.1:")
    from conftest import wait_until
    wait_until(lambda: [p for p in a.peers() if p.name == "b"],
               what="a sees b")
    peer = [p for p in b.peers() if p.name == "a"][0]
    assert peer.id == a.id and peer.headers == {"role": "test"}
    assert peer.state == "alive"
    a.set_offer("queue", "images")
    wait_until(lambda: any(p.has_offer("queue", "images")
                           for p in b.peers()), what="offer seen")
    wait_until(lambda: any(e.type == "joined" and e.peer.name == "b"
                           for e in events), what="joined event")
    assert a.stats().beacons_sent > 0
    b.close()
    b.close()  # idempotent
    wait_until(lambda: any(e.type == "left" for e in events),
               what="left event")
    with pytest.raises(fm.Closed):
        b.peers()


def test_from_env(monkeypatch, cluster, beacon_port):
    monkeypatch.setenv("FABRIC_CLUSTER", cluster)
    monkeypatch.setenv("FABRIC_BEACON_PORT", str(beacon_port))
    with fm.Node.from_env("envnode", linger=0.1) as n:
        assert n.cluster == cluster and n.name == "envnode"
    monkeypatch.setenv("FABRIC_BEACON_PORT", "not-a-port")
    with pytest.raises(fm.InvalidArgument, match="FABRIC_BEACON_PORT"):
        fm.Node.from_env()


def test_wrong_types_and_bad_input(nodes):
    n = nodes("p")
    producer = fm.Producer(n, "types")
    with pytest.raises(TypeError, match="body"):
        producer.push(12345)
    with pytest.raises(TypeError, match="body"):
        producer.push(None)
    with pytest.raises(TypeError, match="headers"):
        producer.push(b"x", headers=["a"])
    with pytest.raises(TypeError, match="headers"):
        producer.push(b"x", headers={"a": b"b"})
    with pytest.raises(fm.InvalidArgument, match="exceeds"):
        producer.push(b"x" * (65 << 20))
    with pytest.raises(fm.InvalidArgument):
        fm.Producer(n, "")
    with pytest.raises(fm.InvalidArgument):
        fm.Producer(n, "q2", fsync="sometimes")
    with pytest.raises(fm.InvalidArgument):
        fm.Producer(n, "q3", max_attempts=0)
    with pytest.raises(TypeError, match="callable"):
        fm.Worker(n, "w", handler=42)
    with pytest.raises(fm.InvalidArgument):
        fm.Worker(n, [], lambda t: None)
    with pytest.raises(TypeError):
        fm.Worker(n, [1, 2], lambda t: None)
    pub = fm.Publisher(n)
    with pytest.raises(fm.InvalidArgument):
        pub.publish("", b"x")
    with pytest.raises(fm.InvalidArgument):
        pub.publish("t", b"x" * (2 << 20))
    with pytest.raises(TypeError):
        fm.Subscriber(n, "t", start=3.5)
    with pytest.raises(fm.InvalidArgument):
        fm.Subscriber(n, "t", start="yesterday")
    client = fm.Client(n)
    with pytest.raises(fm.Unavailable):
        client.call("no-such-service", b"x", timeout=1)
    with pytest.raises(fm.InvalidArgument):
        client.call("", b"x")
    with pytest.raises(fm.InvalidArgument):
        client.call("svc", b"x" * (5 << 20))
    with pytest.raises(TypeError, match="callable"):
        fm.Server(n, "svc", handler=None)


def test_closed_objects_raise_closed(nodes):
    n = nodes("c")
    producer = fm.Producer(n, "closed")
    producer.close()
    producer.close()
    with pytest.raises(fm.Closed):
        producer.push(b"x")
    sub = fm.Subscriber(n, "x")
    sub.close()
    with pytest.raises(fm.Closed):
        sub.next(1)
    assert list(sub) == []
    client = fm.Client(n)
    client.close()
    with pytest.raises(fm.Closed):
        client.call("s", b"x")
    pub = fm.Publisher(n)
    pub.close()
    with pytest.raises(fm.Closed):
        pub.publish("t", b"x")


def _public_names(path: Path):
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
    return names


def test_stub_matches_the_extension():
    """_fabric.pyi names exactly what the extension defines, and each
    class's public members."""
    stub = Path(fm.__file__).with_name("_fabric.pyi")
    tree = ast.parse(stub.read_text())
    stub_names = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            stub_names.add(node.name)
        if isinstance(node, ast.AnnAssign):
            stub_names.add(node.target.id)
        if isinstance(node, ast.ClassDef):
            members = {m.name for m in node.body
                       if isinstance(m, ast.FunctionDef)}
            members |= {m.target.id for m in node.body
                        if isinstance(m, ast.AnnAssign)}
            real = {a for a in dir(getattr(_fabric, node.name))
                    if not a.startswith("_")}
            assert members - {"__init__"} >= real, (node.name,
                                                    real - members)
            assert {m for m in members if not m.startswith("_")} <= real, (
                node.name, members - real)
    real = {a for a in dir(_fabric) if not a.startswith("__")}
    assert stub_names == real, (stub_names ^ real)


def test_public_api_is_documented():
    for name in fm.__all__:
        obj = getattr(fm, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__ or obj.__module__ == "fabricmq._fabric", name


def test_unknown_queue_and_missing_spool(nodes, tmp_path):
    """Nobody serves the queue: the push is kept, and waiting for it ends
    with a Timeout that says why; a spool that does not exist is
    NotFound."""
    producer = fm.Producer(nodes("p"), "nobody-serves-this")
    task = producer.push(b"x")
    with pytest.raises(fm.Timeout, match="0 worker"):
        producer.wait_completed(0.5)
    assert producer.stats().backlog == 1
    assert task.seq == 1
    with pytest.raises(fm.NotFound):
        fm.dead_letters(tmp_path / "no-such-spool")


def test_async_with_closes(cluster, beacon_port):
    import asyncio

    async def main():
        async with fm.Node(cluster=cluster, beacon_port=beacon_port,
                           linger=0.1) as node:
            async with fm.Producer(node, "aw") as producer, \
                    fm.Worker(node, "aw", lambda t: None):
                await producer.push_async(b"x")
                await asyncio.get_running_loop().run_in_executor(
                    None, producer.wait_completed, 20)
            with pytest.raises(fm.Closed):
                producer.push(b"y")
        return node

    node = asyncio.run(main())
    assert node.closed
