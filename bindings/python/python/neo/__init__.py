"""Neo's Python client: produce to and consume from a Neo broker over Neo's
own protocol (TCP, or RDMA where the node has it), through the Rust client.

    import neo
    with neo.Producer("127.0.0.1:7400") as p:
        p.send("orders", b"hello", key=b"k1")
    with neo.Consumer("127.0.0.1:7400", group="billing", topics=["orders"],
                      idle_timeout=5.0) as c:
        for msg in c:
            print(msg.offset, msg.value)

Kafka clients reach the same broker on its Kafka listener; this package is
for Neo's own protocol and its fast transports.
"""

from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator, Callable, Dict, Iterator, List, Optional, Union

from ._neo import NativeConsumer, NativeProducer, NeoError, __version__

__all__ = ["Producer", "Consumer", "Message", "NeoError", "DeliveryReport", "__version__"]


class DeliveryReport:
    """The fate of one record: its offset, or the error that kept it out."""

    __slots__ = ("topic", "partition", "offset", "error")

    def __init__(self, topic: str, partition: int, offset: int, error: Optional[str]) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.error = error

    def __repr__(self) -> str:
        if self.error:
            return f"DeliveryReport({self.topic}/{self.partition} failed: {self.error})"
        return f"DeliveryReport({self.topic}/{self.partition}@{self.offset})"


class Message:
    """One consumed record."""

    __slots__ = ("topic", "partition", "offset", "timestamp", "key", "value")

    def __init__(self, topic: str, partition: int, offset: int, timestamp: int,
                 key: Optional[bytes], value: bytes) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value

    def __repr__(self) -> str:
        return f"Message({self.topic}/{self.partition}@{self.offset}, key={self.key!r}, {len(self.value)} B)"


Callback = Callable[[DeliveryReport], None]
Options = Union[None, str, Dict[str, object]]


def _options(options: Options) -> Optional[str]:
    """Transport options as the native layer takes them: "key=value,...".
    Keys: interface, local, xdp_mode, queue, zero_copy, dpdk_vdev, dpdk_pci,
    dpdk_port, dpdk_hugepages, dpdk_memory, dpdk_lcores."""
    if options is None or isinstance(options, str):
        return options
    return ",".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in options.items())


class Producer:
    """Batches, retries and idempotence as Neo's Rust producer (acks=all).

    ``send`` queues; ``flush`` waits until every queued record is acknowledged;
    ``on_delivery`` callbacks run from ``poll``/``flush`` on this thread.
    ``transport``: ``"tcp"``, ``"rdma"``, ``"af-xdp"``, ``"dpdk"`` or ``"auto"``;
    ``options`` for the raw-frame ones, e.g. ``{"interface": "eth1", "local": "10.0.0.1:7401"}``.
    """

    def __init__(self, bootstrap: str = "127.0.0.1:7400", transport: str = "tcp",
                 options: Options = None) -> None:
        self._native: Optional[NativeProducer] = NativeProducer(bootstrap, transport, _options(options))
        self._next = 1
        self._callbacks: Dict[int, Callback] = {}
        self._futures: Dict[int, "asyncio.Future[DeliveryReport]"] = {}

    def _p(self) -> NativeProducer:
        if self._native is None:
            raise NeoError(6, "the producer is closed")
        return self._native

    def send(self, topic: str, value: bytes, key: Optional[bytes] = None,
             partition: Optional[int] = None, on_delivery: Optional[Callback] = None) -> None:
        """Queues one record. ``partition``: explicit, else by key, else sticky."""
        tag = self._next
        self._next += 1
        self._p().send(topic, value, key, partition, tag)
        if on_delivery is not None:
            self._callbacks[tag] = on_delivery

    def _dispatch(self, reports: List[tuple]) -> int:
        for tag, topic, partition, offset, error in reports:
            report = DeliveryReport(topic, partition, offset, error)
            cb = self._callbacks.pop(tag, None)
            if cb is not None:
                cb(report)
            fut = self._futures.pop(tag, None)
            if fut is not None and not fut.done():
                if error:
                    fut.set_exception(NeoError(4, error))
                else:
                    fut.set_result(report)
        return len(reports)

    def poll(self) -> int:
        """Moves batches along; runs due callbacks; returns how many ran."""
        return self._dispatch(self._p().poll())

    def flush(self, timeout: float = 30.0) -> None:
        """Waits until every queued record is acknowledged (or given up)."""
        reports, err = self._p().flush(int(timeout * 1000))
        self._dispatch(reports)
        if err is not None:
            raise NeoError(*err)

    async def send_async(self, topic: str, value: bytes, key: Optional[bytes] = None,
                         partition: Optional[int] = None) -> DeliveryReport:
        """Sends one record and awaits its acknowledgement (polling cooperatively)."""
        loop = asyncio.get_running_loop()
        tag = self._next
        self._next += 1
        fut: "asyncio.Future[DeliveryReport]" = loop.create_future()
        self._futures[tag] = fut
        self._p().send(topic, value, key, partition, tag)
        while not fut.done():
            self.poll()
            if not fut.done():
                await asyncio.sleep(0.0005)
        return fut.result()

    def close(self, timeout: float = 30.0) -> None:
        """Flushes, then releases the connection (its close reaches the broker)."""
        if self._native is not None:
            try:
                self.flush(timeout)
            finally:
                native, self._native = self._native, None
                del native

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Consumer:
    """A member of ``group`` reading ``topics``; the broker assigns partitions.

    Iterating yields messages; it ends after ``idle_timeout`` seconds without
    one (``None``: never). ``close`` (and leaving a ``with`` block) commits the
    records handed out and leaves the group.
    """

    def __init__(self, bootstrap: str = "127.0.0.1:7400", *, group: str, topics: List[str],
                 transport: str = "tcp", options: Options = None,
                 idle_timeout: Optional[float] = None) -> None:
        self._native: Optional[NativeConsumer] = NativeConsumer(
            bootstrap, transport, group, list(topics), _options(options))
        self.idle_timeout = idle_timeout

    def _c(self) -> NativeConsumer:
        if self._native is None:
            raise NeoError(6, "the consumer is closed")
        return self._native

    def poll(self, timeout: float = 1.0) -> Optional[Message]:
        """The next message, waiting up to ``timeout`` seconds; ``None`` if none came."""
        r = self._c().poll(int(timeout * 1000))
        return None if r is None else Message(*r)

    def commit(self) -> None:
        """Commits the positions of the messages handed out (durable on return)."""
        self._c().commit()

    def __iter__(self) -> Iterator[Message]:
        last = time.monotonic()
        while True:
            m = self.poll(0.2)
            if m is not None:
                last = time.monotonic()
                yield m
            elif self.idle_timeout is not None and time.monotonic() - last >= self.idle_timeout:
                return

    async def poll_async(self, timeout: float = 1.0) -> Optional[Message]:
        """``poll`` for asyncio: checks without blocking, yielding to the loop between."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.poll(0)
            if m is not None or time.monotonic() >= deadline:
                return m
            await asyncio.sleep(0.001)

    async def __aiter__(self) -> AsyncIterator[Message]:
        last = time.monotonic()
        while True:
            m = await self.poll_async(0.2)
            if m is not None:
                last = time.monotonic()
                yield m
            elif self.idle_timeout is not None and time.monotonic() - last >= self.idle_timeout:
                return

    def close(self) -> None:
        """Commits what was handed out and leaves the group."""
        if self._native is not None:
            try:
                self._native.close()
            finally:
                self._native = None

    def __enter__(self) -> "Consumer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
