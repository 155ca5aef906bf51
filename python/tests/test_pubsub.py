# SPDX-License-Identifier: Apache-2.0
"""Publish/subscribe in one process: live topics, handlers, iteration,
asyncio, durable replay and resume."""

from __future__ import annotations

import asyncio
import threading

import pytest

import fabricmq as fm
from conftest import wait_until


def test_publish_next_and_iterate(nodes):
    pub = fm.Publisher(nodes("pub"))
    sub = fm.Subscriber(nodes("sub"), "orders.")
    sub.wait_for_publishers(1, timeout=20)
    pub.wait_for_subscribers(1, timeout=20)
    for i in range(10):
        assert pub.publish("orders.eu", f"o{i}", {"i": str(i)}) == i + 1
    pub.publish("other", b"ignored")
    first = sub.next(10)
    assert (first.topic, first.body, first.seq) == ("orders.eu", b"o0", 1)
    assert first.headers == {"i": "0"} and not first.durable
    assert first.published.tzinfo is not None
    rest = []
    for msg in sub:
        rest.append(msg.body)
        if len(rest) == 9:
            break
    assert rest == [f"o{i}".encode() for i in range(1, 10)]
    with pytest.raises(fm.Timeout):
        sub.next(0.2)
    assert sub.stats().delivered == 10


def test_handler_mode_and_exceptions(nodes, monkeypatch):
    got = []
    done = threading.Event()
    reported = []
    monkeypatch.setattr("sys.unraisablehook", reported.append)

    def handler(msg):
        got.append(msg.body)
        if msg.body == b"boom":
            raise RuntimeError("handler failure is reported, not fatal")
        if len(got) == 3:
            done.set()

    pub = fm.Publisher(nodes("pub"))
    sub = fm.Subscriber(nodes("sub"), "t", handler=handler)
    pub.wait_for_subscribers(1, timeout=20)
    with pytest.raises(fm.UsageError):
        sub.next(1)
    for body in (b"a", b"boom", b"c"):
        pub.publish("t", body)
    assert done.wait(20)
    sub.close()
    assert got == [b"a", b"boom", b"c"]
    assert len(reported) == 1
    assert isinstance(reported[0].exc_value, RuntimeError)


def test_async_for(nodes):
    pub = fm.Publisher(nodes("pub"))
    sub = fm.Subscriber(nodes("sub"), "a", read_ahead=8)
    pub.wait_for_subscribers(1, timeout=20)

    async def main():
        for i in range(500):
            pub.publish("a", str(i))
        bodies = []
        async for msg in sub:
            bodies.append(int(msg.body))
            if len(bodies) == 500:
                break
        return bodies

    assert asyncio.run(main()) == list(range(500))


def test_async_for_ends_when_closed(nodes):
    sub = fm.Subscriber(nodes("sub"), "z")

    async def main():
        loop = asyncio.get_running_loop()
        loop.call_later(0.2, sub.close)
        return [m async for m in sub]

    assert asyncio.run(main()) == []


def test_durable_replay_and_resume(nodes, tmp_path):
    pn = nodes("pub")
    pub = fm.Publisher(pn, durable_topics=["audit"],
                       spool_dir=tmp_path / "topics")
    for i in range(20):
        pub.publish("audit", f"a{i}")
    pub.flush(20)
    state = tmp_path / "subs"
    sn = nodes("sub")
    with fm.Subscriber(sn, "audit", durable_name="billing", state_dir=state,
                       start="earliest") as sub:
        got = [sub.next(20) for _ in range(12)]
    assert [m.body for m in got] == [f"a{i}".encode() for i in range(12)]
    assert all(m.durable and m.replayed for m in got)
    # Resumes after the last message it returned.
    for i in range(20, 25):
        pub.publish("audit", f"a{i}")
    with fm.Subscriber(sn, "audit", durable_name="billing",
                       state_dir=state) as sub:
        more = [sub.next(20).body for _ in range(13)]
    assert more == [f"a{i}".encode() for i in range(12, 25)]


def test_start_positions(nodes, tmp_path):
    pub = fm.Publisher(nodes("pub"), durable_topics=["s"],
                       spool_dir=tmp_path / "t")
    for i in range(10):
        pub.publish("s", str(i))
    pub.flush(20)
    with fm.Subscriber(nodes("sub"), "s", start=8) as sub:
        assert sub.next(20).body == b"7"


def test_gap_callback(nodes):
    gaps = []
    pub = fm.Publisher(nodes("pub"), send_hwm=1)
    blocker = threading.Event()

    def slow(msg):
        if not gaps:  # slow until the first gap, then drain quickly
            blocker.wait(0.01)

    sub = fm.Subscriber(nodes("sub"), "g", handler=slow, receive_hwm=1,
                        on_gap=gaps.append)
    pub.wait_for_subscribers(1, timeout=20)
    for i in range(20000):
        pub.publish("g", b"x" * 100)
    wait_until(lambda: gaps, timeout=30, what="a gap")
    sub.close()
    assert gaps[0].reason == "dropped" and gaps[0].count >= 1
    assert sub.stats().lost >= gaps[0].count


def test_leaving_async_for_leaves_the_rest(nodes):
    """Without read_ahead, async for takes only what the loop asks for:
    after a break, the rest is still there for next()."""
    pub = fm.Publisher(nodes("pub"))
    sub = fm.Subscriber(nodes("sub"), "r")
    pub.wait_for_subscribers(1, timeout=20)
    for i in range(50):
        pub.publish("r", str(i))

    async def first_three():
        got = []
        async for msg in sub:
            got.append(int(msg.body))
            if len(got) == 3:
                break
        return got

    assert asyncio.run(first_three()) == [0, 1, 2]
    rest = [int(sub.next(20).body) for _ in range(47)]
    assert rest == list(range(3, 50))
