# SPDX-License-Identifier: Apache-2.0
"""Work queues in one process: acks, retries, rejects, handler exceptions,
lease extension, completions, spools and dead letters."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest

import fabricmq as fm
from fabricmq import _fabric
from conftest import wait_until


def collect_completions():
    done = []
    cond = threading.Condition()

    def on_completed(c):
        with cond:
            done.append(c)
            cond.notify_all()

    return done, on_completed


def test_push_and_ack(nodes):
    seen = []
    with nodes("w") as wn, fm.Worker(wn, "jobs",
                                     lambda t: seen.append(t)) as worker:
        pn = nodes("p")
        with fm.Producer(pn, "jobs") as producer:
            ids = [producer.push(f"task {i}".encode(), {"n": str(i)})
                   for i in range(20)]
            producer.wait_completed(20)
            assert [t.id for t in sorted(seen, key=lambda t: t.id.seq)] == ids
            assert sorted(t.body for t in seen) == sorted(
                f"task {i}".encode() for i in range(20))
            first = min(seen, key=lambda t: t.id.seq)
            assert first.headers == {"n": "0"}
            assert first.queue == "jobs"
            assert first.attempt == 1 and not first.redelivered
            assert isinstance(first.body, bytes)
            s = producer.stats()
            assert (s.pushed, s.confirmed, s.acked) == (20, 20, 20)
            assert producer.producer_id == ids[0].producer
            assert str(ids[0]) == f"{ids[0].producer[:8]}:{ids[0].seq}"
        assert worker.stats().acked == 20


def test_bodies_of_every_bytes_like_type(nodes):
    got = []
    with fm.Worker(nodes("w"), "b", lambda t: got.append(t.body)), \
            fm.Producer(nodes("p"), "b") as producer:
        producer.push(b"\x00\xff bytes")
        producer.push(bytearray(b"array"))
        producer.push(memoryview(b"view"))
        producer.push("text é")
        producer.push(memoryview(b"0123456789")[2:5])
        producer.wait_completed(20)
    assert sorted(got) == sorted([b"\x00\xff bytes", b"array", b"view",
                                  "text é".encode(), b"234"])


def test_retry_reject_and_exceptions(nodes):
    done, on_completed = collect_completions()
    attempts = {}

    def handler(task):
        kind = task.body.decode()
        attempts[kind] = task.attempt
        if kind == "retry-once" and task.attempt == 1:
            raise fm.Retry(0.05, "not yet")
        if kind == "reject":
            raise fm.Reject("bad input")
        if kind == "always-fails":
            raise ValueError(f"broken on attempt {task.attempt}")

    with fm.Worker(nodes("w"), "q", handler) as worker, \
            fm.Producer(nodes("p"), "q", max_attempts=3, retry_backoff=0.01,
                        on_completed=on_completed) as producer:
        for kind in ("ok", "retry-once", "reject", "always-fails"):
            producer.push(kind.encode())
        producer.wait_completed(30)
        wait_until(lambda: len(done) == 4, what="4 completions")
        by_seq = {c.id.seq: c for c in done}
        ok, retried, rejected, failed = (by_seq[i] for i in (1, 2, 3, 4))
        assert (ok.kind, ok.attempts) == ("acked", 1)
        assert (retried.kind, retried.attempts) == ("acked", 2)
        assert rejected.kind == "dead_lettered"
        assert "bad input" in rejected.reason
        assert failed.kind == "dead_lettered"
        assert failed.attempts == 3
        # The reason is the exception's last traceback line.
        assert "ValueError: broken on attempt 3" in failed.reason
        assert attempts["always-fails"] == 3
        ws = worker.stats()
        assert ws.handler_errors == 3
        assert ws.rejected == 1
        dead = producer.dead_letters()
        assert sorted(d.body for d in dead) == [b"always-fails", b"reject"]
        assert all(isinstance(d.reason, str) for d in dead)


def test_handler_exception_is_logged(nodes, caplog):
    with fm.Worker(nodes("w"), "log", lambda t: 1 / 0), \
            fm.Producer(nodes("p"), "log", max_attempts=1) as producer:
        producer.push(b"x")
        producer.wait_completed(20)
    records = [r for r in caplog.records if r.name == "fabricmq"]
    assert records and records[0].exc_info[0] is ZeroDivisionError


def test_retry_accepts_timedelta_and_rejects_negative():
    assert fm.Retry(timedelta(milliseconds=1500)).delay == 1.5
    with pytest.raises(ValueError):
        fm.Retry(-1)
    with pytest.raises(TypeError):
        fm.Retry("soon")


def test_extend_lease_only_inside_the_handler(nodes):
    kept = []
    outcome = {}

    def handler(task):
        task.extend_lease(5)
        task.extend_lease(timedelta(seconds=1))
        kept.append(task)

    with fm.Worker(nodes("w"), "lease", handler), \
            fm.Producer(nodes("p"), "lease", lease=1) as producer:
        producer.push(b"x")
        producer.wait_completed(20)
        with pytest.raises(fm.UsageError):
            kept[0].extend_lease(5)

        # From another thread during the call: refused too.
        release = threading.Event()

        def slow(task):
            t = threading.Thread(target=lambda: outcome.setdefault(
                "other", _try(lambda: task.extend_lease(1))))
            t.start()
            t.join()
            release.set()

        with fm.Worker(nodes("w2"), "lease2", slow), \
                fm.Producer(nodes("p2"), "lease2") as p2:
            p2.push(b"y")
            p2.wait_completed(20)
    assert isinstance(outcome["other"], fm.UsageError)


def _try(fn):
    try:
        fn()
        return None
    except Exception as e:  # noqa: BLE001 - the test inspects it
        return e


def test_long_task_keeps_its_lease(nodes):
    """A handler that runs past the lease but extends it is not
    redelivered."""
    runs = []

    def handler(task):
        runs.append(task.attempt)
        for _ in range(6):
            task.extend_lease(0.5)
            threading.Event().wait(0.1)

    with fm.Worker(nodes("w"), "long", handler), \
            fm.Producer(nodes("p"), "long", lease=0.3) as producer:
        producer.push(b"x")
        producer.wait_completed(30)
        assert producer.stats().lease_expired == 0
    assert runs == [1]


def test_spooled_producer_survives_a_restart(nodes, tmp_path):
    spool = tmp_path / "spool"
    pn = nodes("p")
    with fm.Producer(pn, "s", spool_dir=spool) as producer:
        ids = [producer.push(f"t{i}") for i in range(5)]
        assert producer.confirmed_seq == 5
        assert producer.stats().confirmed == 5
    # No worker ran: a new producer on the directory delivers them.
    seen = []
    with fm.Worker(nodes("w"), "s", lambda t: seen.append(t)):
        with fm.Producer(pn, "s", spool_dir=spool) as again:
            assert again.producer_id == ids[0].producer
            assert again.stats().recovered == 5
            again.wait_completed(30)
    assert sorted(t.id.seq for t in seen) == [1, 2, 3, 4, 5]
    assert all(t.redelivered for t in seen)


def test_spooled_dead_letters_are_readable(nodes, tmp_path):
    spool = tmp_path / "dlq"
    with fm.Worker(nodes("w"), "d", lambda t: (_ for _ in ()).throw(
            fm.Reject("nope"))), \
            fm.Producer(nodes("p"), "d", spool_dir=spool) as producer:
        producer.push(b"poison", {"k": "v"})
        producer.wait_completed(20)
        dead = producer.dead_letters()
    assert len(dead) == 1
    assert (dead[0].body, dead[0].headers) == (b"poison", {"k": "v"})
    assert "nope" in dead[0].reason
    assert fm.dead_letters(spool)[0].seq == dead[0].seq


def test_push_nowait_then_wait_confirmed(nodes, tmp_path):
    with fm.Producer(nodes("p"), "n", spool_dir=tmp_path / "s",
                     fsync="always") as producer:
        ids = [producer.push_nowait(b"x") for _ in range(50)]
        producer.wait_confirmed(ids[-1], timeout=20)
        assert producer.confirmed_seq >= ids[-1].seq


def test_full_producer_times_out(nodes):
    with fm.Producer(nodes("p"), "full", max_bytes=200) as producer:
        producer.push(b"x" * 150)
        with pytest.raises(fm.ResourceExhausted, match="waited 300ms"):
            producer.push(b"y" * 150, timeout=0.3)
        assert producer.stats().rejected_pushes == 1


def test_push_async(nodes, tmp_path):
    got = []

    async def main():
        with fm.Producer(nodes("p"), "a", spool_dir=tmp_path / "s") as prod:
            ids = await asyncio.gather(
                *(prod.push_async(f"{i}") for i in range(100)))
            assert sorted(i.seq for i in ids) == list(range(1, 101))
            assert prod.confirmed_seq >= 100
            with fm.Worker(nodes("w"), "a", lambda t: got.append(t.body)):
                await asyncio.get_running_loop().run_in_executor(
                    None, prod.wait_completed, 30)

    asyncio.run(main())
    assert len(got) == 100


def test_push_async_memory_producer_full(nodes):
    async def main():
        with fm.Producer(nodes("p"), "af", max_bytes=100,
                         push_timeout=0.2) as prod:
            await prod.push_async(b"x" * 80)
            with pytest.raises(fm.ResourceExhausted):
                await prod.push_async(b"y" * 80)

    asyncio.run(main())


def test_second_producer_for_a_queue_is_refused(nodes):
    n = nodes("p")
    with fm.Producer(n, "dup"):
        with pytest.raises(fm.AlreadyExists):
            fm.Producer(n, "dup")


def test_close_from_own_handler_is_a_usage_error(nodes):
    errors = []
    holder = {}

    def handler(task):
        try:
            holder["w"].close()
        except fm.UsageError as e:
            errors.append(e)

    with fm.Producer(nodes("p"), "re") as producer:
        wn = nodes("w")
        holder["w"] = fm.Worker(wn, "re", handler)
        producer.push(b"x")
        producer.wait_completed(20)
        holder["w"].close()
        # Closing the node from the handler of one of its objects too.
        node_errors = []

        def closes_node(task):
            try:
                wn2.close()
            except fm.UsageError as e:
                node_errors.append(e)

        with fm.Producer(nodes("p2"), "re2") as p2:
            wn2 = nodes("w2")
            fm.Worker(wn2, "re2", closes_node)
            p2.push(b"y")
            p2.wait_completed(20)
    assert len(errors) == 1 and len(node_errors) == 1


def test_last_reference_dropped_in_own_handler(nodes):
    """The worker's last reference dies inside its own handler: it is
    destroyed on the binding's bridge thread, not on the handler thread
    (which would wait for itself)."""
    box = {}
    gone = threading.Event()

    def handler(task):
        box.pop("worker", None)
        gone.set()

    with fm.Producer(nodes("p"), "gone") as producer:
        # The extension's own Worker: the public one is also held by its
        # node until closed.
        box["worker"] = _fabric.Worker(nodes("w")._impl, handler,
                                       {"queues": ["gone"]})
        producer.push(b"x")
        assert gone.wait(20)
        producer.wait_completed(20)


def test_node_close_closes_its_objects(nodes):
    n = nodes("w")
    worker = fm.Worker(n, "nc", lambda t: None)
    producer = fm.Producer(n, "nc")
    n.close()
    assert n.closed
    with pytest.raises(fm.Closed):
        producer.push(b"x")
    worker.stats()  # still readable
    with pytest.raises(fm.Closed):
        fm.Producer(n, "other")


def test_confirmation_watch_after_close_fails_at_once(nodes, tmp_path):
    """push_async racing a close: a watch registered after the close is
    failed with Closed, not left pending."""
    async def main():
        producer = fm.Producer(nodes("p"), "wc", spool_dir=tmp_path / "s")
        await producer.push_async(b"x")  # starts the watcher, maybe
        producer.close()
        future = asyncio.get_running_loop().create_future()
        producer._impl.watch_confirmed(10**9, asyncio.get_running_loop(),
                                       future)
        with pytest.raises(fm.Closed):
            await asyncio.wait_for(future, 10)

    asyncio.run(main())
