"""Committed offsets of a consumer group outlive the broker that coordinated
the group: commit through the cluster (phase `commit`), then, after that
broker is SIGKILLed, a new member of the same group reads them back through
the survivors (phase `resume`).

Usage: offsets_failover_check.py BOOTSTRAP TOPIC PARTITIONS commit|resume STATE_FILE [NODE]
`commit` picks a group that node NODE coordinates (groups are spread over
the brokers; FindCoordinator via AdminClient names each group's), consumes
150 messages from the beginning, commits synchronously and writes the
committed offsets to STATE_FILE and the group's name to STATE_FILE.group;
`resume` checks the group's
committed offsets equal them, then that consuming goes on from there: the
next message of each partition is the one after the commit. Prints one
`PASS ...` line, or raises (non-zero exit).
"""

import json
import sys
import time

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

BOOT, TOPIC, N, PHASE, STATE = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
NODE = int(sys.argv[6]) if len(sys.argv) > 6 else None
DEADLINE_S = 60


def group_on(node):
    """The first of offsets-failover-0, -1, ... that `node` coordinates."""
    admin = AdminClient({"bootstrap.servers": BOOT})
    for k in range(64):
        g = f"offsets-failover-{k}"
        d = admin.describe_consumer_groups([g], request_timeout=10)[g].result()
        if d.coordinator.id == node:
            return g
    raise SystemExit(f"none of 64 groups is coordinated by node {node}: groups do not spread")


GROUP = group_on(NODE) if PHASE == "commit" else open(STATE + ".group").read().strip()


def consumer():
    c = Consumer({
        "bootstrap.servers": BOOT,
        "group.id": GROUP,
        "enable.auto.commit": False,
        "auto.offset.reset": "latest" if PHASE == "resume" else "earliest",
        "session.timeout.ms": 6000,
    })
    c.subscribe([TOPIC])
    return c


def commit():
    c = consumer()
    got, deadline = [], time.time() + DEADLINE_S
    while len(got) < 150 and time.time() < deadline:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            got.append(m)
    if len(got) < 150:
        raise SystemExit(f"consumed {len(got)} of 150 before committing")
    offsets = c.commit(asynchronous=False)
    mine = {tp.partition: tp.offset for tp in offsets if tp.offset >= 0}
    c.close()
    json.dump(mine, open(STATE, "w"))
    open(STATE + ".group", "w").write(GROUP)
    print(f"committed {mine} for {GROUP}, coordinated by node {NODE}", file=sys.stderr)


def resume():
    want = {int(k): v for k, v in json.load(open(STATE)).items()}
    c = consumer()
    started = time.time()
    deadline = started + DEADLINE_S
    have = None
    first = {}

    def note(m):
        if m is not None and m.error() is None and m.partition() not in first:
            first[m.partition()] = m.offset()

    while time.time() < deadline:
        note(c.poll(0.2))
        if c.assignment():
            tps = [TopicPartition(TOPIC, p) for p in range(N)]
            have = {tp.partition: tp.offset for tp in c.committed(tps, timeout=10) if tp.offset >= 0}
            break
    if have != want:
        raise SystemExit(f"committed offsets after the coordinator's death: {have}, committed before: {want}")
    # Consumption resumes at the commits, not at the end (auto.offset.reset
    # is `latest` here, so lost commits would show as nothing read), on each
    # partition that has messages past its commit.
    ends = {p: c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1] for p in want}
    want = {p: o for p, o in want.items() if ends[p] > o}
    if not want:
        raise SystemExit(f"no partition has messages past the commits (ends {ends})")
    while len(first) < len(want) and time.time() < deadline:
        note(c.poll(0.2))
    assigned = c.assignment()
    c.close()
    if first != {p: o for p, o in want.items() if p in first} or len(first) < len(want):
        raise SystemExit(f"first offsets read after resuming {first}, committed {want} "
                         f"(assignment {[tp.partition for tp in assigned]}, "
                         f"{time.time() - started:.1f}s)")
    print(f"PASS kafka_cluster_offsets_failover: offsets of {GROUP} committed through its coordinator {have} "
          f"read back after it was SIGKILLed, and consumption resumed at them ({first})")


commit() if PHASE == "commit" else resume()
