"""Two members of one consumer group that reach a replicated cluster through
different brokers must still form one group: the cluster names the same
coordinator to both (FindCoordinator), so the topic's partitions are split
between them, not each given all of them (two groups of one).

Usage: group_split_check.py BOOTSTRAP_A BOOTSTRAP_B TOPIC PARTITIONS
Prints one `PASS ...` line, or raises (non-zero exit) with the reason.
"""

import sys
import time

from confluent_kafka import Consumer

A, B, TOPIC, N = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
DEADLINE_S = 45


def member(boot):
    c = Consumer({
        "bootstrap.servers": boot,
        "group.id": "split-check",
        "enable.auto.commit": False,
        "auto.offset.reset": "latest",
        "session.timeout.ms": 6000,
    })
    c.subscribe([TOPIC])
    return c


a, b = member(A), member(B)
deadline = time.time() + DEADLINE_S
seen = None
try:
    while time.time() < deadline:
        for c in (a, b):
            msg = c.poll(0.1)
            if msg is not None and msg.error() is not None:
                print(f"(consumer error: {msg.error()})", file=sys.stderr)
        pa = {tp.partition for tp in a.assignment()}
        pb = {tp.partition for tp in b.assignment()}
        seen = (sorted(pa), sorted(pb))
        if pa and pb and not (pa & pb) and (pa | pb) == set(range(N)):
            print(f"PASS kafka_cluster_one_group: members bootstrapped through {A} and {B} "
                  f"share one group: partitions {sorted(pa)} and {sorted(pb)}")
            sys.exit(0)
finally:
    a.close()
    b.close()
raise SystemExit(f"the two members never shared the partitions of {TOPIC} "
                 f"(last assignments {seen}): the group split across coordinators")
