# SPDX-License-Identifier: Apache-2.0
# Type stubs of the extension module fabricmq._fabric (hand-written:
# pybind11 2.10 has no stub generator in Debian). The public classes wrap
# these; the value types (Task, Message, ...) are used as they are.
# test_api.py checks that the names here match the module.
import asyncio
import concurrent.futures
import datetime
from typing import Any, Callable, Dict, List, Optional, Union

Seconds = Union[float, int, datetime.timedelta]
Body = Union[bytes, bytearray, memoryview, str]
Headers = Optional[Dict[str, str]]

fabric_version: str
zmq_version: str

def _init(types: Dict[str, Any]) -> None: ...
def _shutdown(timeout: float) -> bool: ...
def _close_all() -> None: ...
def _kept_thread_states() -> int: ...
def _gate_open() -> bool: ...
def set_log_level(level: str) -> None: ...
def keygen(name: str, dir: str = ..., force: bool = ...) -> str: ...
def new_beacon_secret(path: str) -> None: ...
def scan_dead_letters(spool_dir: str) -> List[DeadLetter]: ...

class NodeStats:
    beacons_sent: int
    beacon_bytes_sent: int
    beacons_received: int
    beacons_malformed: int
    beacons_wrong_version: int
    beacons_other_cluster: int
    messages_received: int
    messages_sent: int
    messages_malformed: int
    messages_wrong_version: int
    messages_other_cluster: int
    messages_unknown_sender: int
    messages_unknown_kind: int
    heartbeats_sent: int
    peers_joined: int
    peers_left: int
    local_stalls: int
    loop_wakeups: int
    beacons_unauthenticated: int
    beacons_unknown_key_id: int
    beacons_bad_mac: int
    beacons_addr_mismatch: int
    beacons_stale: int
    beacons_replayed: int
    beacons_unknown_node_key: int
    messages_unauthenticated: int
    messages_key_mismatch: int
    messages_revoked_key: int
    gossip_unkeyed: int
    handshakes_failed_auth: int
    handshakes_failed_protocol: int
    handshakes_failed_other: int
    roster_reloads: int
    roster_reload_errors: int
    keys_revoked: int
    zap_allowed: int
    zap_denied: int
    zap_running: bool

class PeerInfo:
    id: str
    name: str
    mailbox_endpoint: str
    publish_endpoint: str
    discovery: str
    key: Optional[str]
    beacon_key_id: int
    state: str
    headers: Dict[str, str]
    offers: Dict[str, List[str]]
    joined_at: Optional[datetime.datetime]
    last_seen: Optional[datetime.datetime]
    messages_in: int
    messages_out: int
    def has_offer(self, kind: str, name: str) -> bool: ...

class PeerEvent:
    type: str
    peer: PeerInfo
    reason: str
    time: Optional[datetime.datetime]

class Node:
    def __init__(self, options: Dict[str, Any]) -> None: ...
    def close(self) -> None: ...
    def wait(self, timeout: Optional[Seconds] = ...) -> bool: ...
    closed: bool
    id: str
    name: str
    cluster: str
    mailbox_endpoint: str
    def peers(self) -> List[PeerInfo]: ...
    def set_offer(self, kind: str, name: str, offered: bool = ...) -> None: ...
    def set_header(self, key: str, value: str) -> None: ...
    def stats(self) -> NodeStats: ...
    def reload_roster(self) -> None: ...

class TaskId:
    def __init__(self, producer: str, seq: int) -> None: ...
    producer: str
    seq: int

class Task:
    id: TaskId
    queue: str
    headers: Dict[str, str]
    body: bytes
    attempt: int
    redelivered: bool
    def extend_lease(self, seconds: Seconds) -> None: ...

class Completion:
    id: TaskId
    kind: str
    attempts: int
    reason: str
    worker: Optional[str]

class DeadLetter:
    seq: int
    headers: Dict[str, str]
    body: bytes
    enqueued: Optional[datetime.datetime]
    attempts: int
    reason: str
    died: Optional[datetime.datetime]

class ProducerStats:
    pushed: int
    confirmed: int
    recovered: int
    dispatched: int
    redelivered: int
    started: int
    returned: int
    acked: int
    late_acks: int
    retries: int
    lease_expired: int
    worker_lost: int
    worker_crashes: int
    dead_lettered: int
    rejected_pushes: int
    refused: int
    malformed: int
    in_flight: int
    backlog: int
    workers: int

class WorkerStats:
    received: int
    acked: int
    retried: int
    rejected: int
    released: int
    duplicates: int
    malformed: int
    handler_errors: int
    running: int
    waiting: int

class Producer:
    def __init__(self, node: Node, options: Dict[str, Any]) -> None: ...
    def push(self, body: Body, headers: Headers = ...,
             timeout: Optional[Seconds] = ...) -> TaskId: ...
    def push_nowait(self, body: Body, headers: Headers = ...,
                    timeout: Optional[Seconds] = ...) -> TaskId: ...
    def try_push(self, body: Body, headers: Headers = ...) -> Optional[TaskId]: ...
    def wait_confirmed(self, seq: int, timeout: Optional[Seconds] = ...) -> None: ...
    def wait_completed(self, timeout: Optional[Seconds] = ...) -> None: ...
    def watch_confirmed(self, seq: int, loop: asyncio.AbstractEventLoop,
                        future: asyncio.Future[None]) -> None: ...
    confirmed_seq: int
    producer_id: str
    def stats(self) -> ProducerStats: ...
    def dead_letters(self) -> List[DeadLetter]: ...
    def close(self) -> None: ...

class Worker:
    def __init__(self, node: Node, handler: Callable[[Task], Any],
                 options: Dict[str, Any]) -> None: ...
    def stats(self) -> WorkerStats: ...
    def close(self) -> None: ...

class Message:
    topic: str
    headers: Dict[str, str]
    body: bytes
    stream: int
    seq: int
    published: Optional[datetime.datetime]
    durable: bool
    replayed: bool

class GapEvent:
    topic: str
    stream: int
    first: int
    last: int
    reason: str
    count: int

class PublisherStats:
    published: int
    sent: int
    frames: int
    dropped: int
    beats: int
    rejected: int
    replay_requests: int
    replayed: int
    replay_errors: int
    subscribers: int
    durable_pending: int

class SubscriberStats:
    received: int
    delivered: int
    replayed: int
    duplicates: int
    gaps: int
    lost: int
    malformed: int
    replay_requests: int
    publishers: int
    streams: int
    held: int

class Publisher:
    def __init__(self, node: Node, options: Dict[str, Any]) -> None: ...
    def publish(self, topic: str, body: Body, headers: Headers = ...) -> int: ...
    def wait_for_subscribers(self, n: int, timeout: Optional[Seconds] = ...) -> None: ...
    def flush(self, timeout: Optional[Seconds] = ...) -> None: ...
    endpoint: str
    def stats(self) -> PublisherStats: ...
    def close(self) -> None: ...

class Subscriber:
    def __init__(self, node: Node, options: Dict[str, Any]) -> None: ...
    def next(self, timeout: Optional[Seconds] = ...) -> Message: ...
    def take_ready(self, max: int) -> List[Message]: ...
    def wait_for_publishers(self, n: int, timeout: Optional[Seconds] = ...) -> None: ...
    def stats(self) -> SubscriberStats: ...
    def close(self) -> None: ...

class Reply:
    body: bytes
    server: str
    attempts: int

class Request:
    service: str
    body: bytes
    headers: Dict[str, str]
    idempotency_key: Optional[str]
    client: str
    id: int
    attempt: int
    deadline: Optional[datetime.datetime]

class Responder:
    def reply(self, body: Body) -> None: ...
    def fail(self, code: int, message: str) -> None: ...
    cancelled: bool
    answered: bool

class ClientStats:
    calls: int
    ok: int
    failed: int
    deadline_exceeded: int
    unavailable: int
    attempts: int
    retries: int
    late_replies: int
    in_flight: int

class ServerStats:
    received: int
    replied: int
    failed: int
    rejected_busy: int
    rejected_draining: int
    rejected_too_large: int
    joined: int
    cache_hits: int
    expired: int
    cancelled: int
    handler_errors: int
    late_replies: int
    malformed: int
    pending: int

class Client:
    def __init__(self, node: Node, options: Dict[str, Any]) -> None: ...
    def call(self, service: str, body: Body, options: Dict[str, Any]) -> Reply: ...
    def call_later(self, service: str, body: Body, options: Dict[str, Any],
                   future: Union[asyncio.Future[Reply],
                                 concurrent.futures.Future[Reply]],
                   loop: Optional[asyncio.AbstractEventLoop] = ...) -> None: ...
    def servers(self, service: str) -> List[str]: ...
    def wait_for_server(self, service: str, timeout: Optional[Seconds] = ...) -> None: ...
    def stats(self) -> ClientStats: ...
    def close(self) -> None: ...

class Server:
    def __init__(self, node: Node, handler: Callable[..., Any],
                 options: Dict[str, Any]) -> None: ...
    def stats(self) -> ServerStats: ...
    def close(self) -> None: ...
