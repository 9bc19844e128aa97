"""Checks Neo's Kafka listener with aiokafka (a pure-Python asyncio client).

Usage: aiokafka_check.py BOOTSTRAP
Produces 500 records (gzip) with keys and headers, then consumes them as a
member of a group with committed offsets; prints one `PASS` line or raises.
"""

import asyncio
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

BOOT = sys.argv[1]
TOPIC = "aio-topic"
N = 500


async def main():
    producer = AIOKafkaProducer(bootstrap_servers=BOOT, compression_type="gzip", acks="all")
    await producer.start()
    try:
        futures = []
        for i in range(N):
            futures.append(
                await producer.send(
                    TOPIC, key=f"k{i}".encode(), value=f"aio-{i}".encode(), headers=[("n", str(i).encode())]
                )
            )
        metas = await asyncio.gather(*futures)
        assert len(metas) == N
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=BOOT,
        group_id="aio-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got = []
    try:
        async def take():
            async for m in consumer:
                assert dict(m.headers)["n"].decode() == m.value.decode().split("-")[1]
                got.append(m.value.decode())
                if len(got) == N:
                    return

        await asyncio.wait_for(take(), 60)
        await consumer.commit()
        parts = consumer.assignment()
        committed = sum([await consumer.committed(tp) or 0 for tp in parts])
    finally:
        await consumer.stop()
    assert sorted(got) == sorted(f"aio-{i}" for i in range(N)), "records differ"
    assert committed == N, f"committed {committed}"
    print(f"PASS aiokafka: {N} records produced (gzip, acks=all, headers) and consumed in a group; {committed} committed")


asyncio.run(main())
