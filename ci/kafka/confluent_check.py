"""Checks Neo's Kafka listener with confluent-kafka (librdkafka inside).

Usage: confluent_check.py BOOTSTRAP CHECK   (CHECK: idempotent | group | restart)
Prints one `PASS <check>: ...` line, or raises (non-zero exit) with the reason.
"""

import sys
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BOOT = sys.argv[1]
DEADLINE_S = 60


def create(topic, partitions):
    admin = AdminClient({"bootstrap.servers": BOOT})
    fs = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    for _, f in fs.items():
        f.result(timeout=20)


def produce(topic, n, prefix, idempotent=False, partitions=None):
    conf = {"bootstrap.servers": BOOT, "linger.ms": 5}
    if idempotent:
        conf.update({"enable.idempotence": True, "acks": "all"})
    p = Producer(conf)
    failed = []
    done = [0]

    def report(err, msg):
        if err is not None:
            failed.append(str(err))
        done[0] += 1

    for i in range(n):
        kw = {}
        if partitions:
            kw["partition"] = i % partitions
        p.produce(topic, key=f"k{i}", value=f"{prefix}-{i}", on_delivery=report, **kw)
        p.poll(0)
    left = p.flush(30)
    assert left == 0, f"{left} messages not delivered"
    assert not failed, f"delivery errors: {failed[:3]}"
    assert done[0] == n
    return p


def consumer(group, **extra):
    conf = {
        "bootstrap.servers": BOOT,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    }
    conf.update(extra)
    return Consumer(conf)


def drain(c, want, seen, stop_at=None):
    """Polls until `want` values are in `seen` (a dict value -> count)."""
    deadline = time.time() + DEADLINE_S
    while sum(seen.values()) < want and time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            raise KafkaException(m.error())
        v = m.value().decode()
        seen[v] = seen.get(v, 0) + 1
        if stop_at is not None and sum(seen.values()) >= stop_at:
            break


def check_idempotent():
    topic = "cf-idem"
    create(topic, 3)
    n = 3000
    p = produce(topic, n, "idem", idempotent=True)
    c = consumer("cf-idem-check")
    c.subscribe([topic])
    seen = {}
    drain(c, n, seen)
    c.close()
    dups = [v for v, k in seen.items() if k > 1]
    assert len(seen) == n and not dups, f"{len(seen)} distinct of {n}, duplicates {dups[:3]}"
    print(f"PASS confluent idempotent producer: {n} records, acks=all, enable.idempotence, 3 partitions; consumed once each")
    del p


def check_group():
    topic = "cf-group"
    create(topic, 4)
    n = 4000
    produce(topic, n, "g", partitions=4)
    group = "cf-group-2"
    seen = {}
    lock = threading.Lock()
    assigned = {"a": set(), "b": set()}
    stop = threading.Event()
    left = threading.Event()

    def run(name, leave_after):
        c = consumer(group)

        def on_assign(cons, parts):
            with lock:
                assigned[name] = {p.partition for p in parts}

        c.subscribe([topic], on_assign=on_assign)
        got = 0
        deadline = time.time() + DEADLINE_S
        while not stop.is_set() and time.time() < deadline:
            m = c.poll(0.1)
            if m is None or m.error():
                continue
            with lock:
                v = m.value().decode()
                seen[v] = seen.get(v, 0) + 1
            got += 1
            c.commit(message=m, asynchronous=False)
            if leave_after and got >= leave_after:
                break
        c.close()
        if leave_after:
            left.set()
        return got

    ta = threading.Thread(target=run, args=("a", 0))
    tb = threading.Thread(target=run, args=("b", 300))
    ta.start()
    tb.start()
    # Both members get a share before b leaves.
    deadline = time.time() + DEADLINE_S
    both = False
    while time.time() < deadline and not left.is_set():
        with lock:
            if assigned["a"] and assigned["b"]:
                both = True
        time.sleep(0.05)
    assert both or left.is_set(), "the two members never shared the partitions"
    left.wait(DEADLINE_S)
    deadline = time.time() + DEADLINE_S
    while time.time() < deadline:
        with lock:
            if len(seen) == n and assigned["a"] == {0, 1, 2, 3}:
                break
        time.sleep(0.05)
    stop.set()
    ta.join()
    tb.join()
    assert both, "both members were never assigned at the same time"
    assert assigned["a"] == {0, 1, 2, 3}, f"after b left, a has {assigned['a']}"
    missing = n - len(seen)
    assert missing == 0, f"{missing} records never consumed"
    redelivered = sum(k - 1 for k in seen.values())
    print(f"PASS confluent group of 2: both assigned, b left after 300, a took all 4 partitions; {n} consumed, {redelivered} redelivered after the rebalance (at-least-once)")


def check_restart():
    topic = "cf-restart"
    create(topic, 2)
    n = 1000
    produce(topic, n, "r")
    group = "cf-restart-g"
    c = consumer(group)
    c.subscribe([topic])
    first = {}
    drain(c, 400, first, stop_at=400)
    c.commit(asynchronous=False)
    committed = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
    c.close()
    total_committed = sum(tp.offset for tp in committed if tp.offset >= 0)
    assert total_committed == 400, f"committed {total_committed}, consumed 400"
    c2 = consumer(group)
    c2.subscribe([topic])
    second = {}
    drain(c2, n - 400, second)
    c2.close()
    overlap = set(first) & set(second)
    assert not overlap, f"{len(overlap)} records redelivered after a clean commit"
    assert len(first) + len(second) == n, f"{len(first)} + {len(second)} != {n}"
    print(f"PASS confluent committed offsets survive a consumer restart: 400 before, {len(second)} after, none twice")


{"idempotent": check_idempotent, "group": check_group, "restart": check_restart}[sys.argv[2]]()
