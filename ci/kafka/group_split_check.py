"""Two members of one consumer group that reach a replicated cluster through
different brokers must still form one group: the cluster names the same
coordinator to both (FindCoordinator), so the topic's partitions are split
between them, not each given all of them (two groups of one). Then
AdminClient's list_consumer_groups and describe_consumer_groups (Kafka's
ListGroups and DescribeGroups) must show that live group as it is.

Usage: group_split_check.py BOOTSTRAP_A BOOTSTRAP_B TOPIC PARTITIONS
Prints one `PASS ...` line, or raises (non-zero exit) with the reason.
"""

import sys
import time

from confluent_kafka import Consumer, ConsumerGroupState
from confluent_kafka.admin import AdminClient

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


def admin_view(*consumers):
    """AdminClient (ListGroups from every broker, DescribeGroups at the
    coordinator) must show the live group: Stable, two members from
    127.0.0.1 whose assignments split the topic, while they keep polling."""
    admin = AdminClient({"bootstrap.servers": f"{A},{B}"})
    end = time.time() + 20
    last = None
    while time.time() < end:
        for c in consumers:
            c.poll(0.05)
        listed = admin.list_consumer_groups(request_timeout=10).result()
        mine = [g for g in listed.valid if g.group_id == "split-check"]
        desc = admin.describe_consumer_groups(["split-check"], request_timeout=10)["split-check"].result()
        parts = [{tp.partition for tp in m.assignment.topic_partitions} for m in desc.members]
        last = (mine and mine[0].state, desc.state, [(m.client_id, m.host, sorted(p)) for m, p in zip(desc.members, parts)],
                listed.errors)
        if (mine and mine[0].state == ConsumerGroupState.STABLE and desc.state == ConsumerGroupState.STABLE
                and len(parts) == 2 and not (parts[0] & parts[1]) and (parts[0] | parts[1]) == set(range(N))
                and all(m.host == "/127.0.0.1" and m.client_id for m in desc.members)
                and desc.partition_assignor):
            print(f"PASS kafka_cluster_group_admin: list_consumer_groups lists split-check Stable; "
                  f"describe_consumer_groups: assignor {desc.partition_assignor}, members "
                  f"{[(m.client_id, m.host, sorted(p)) for m, p in zip(desc.members, parts)]}, "
                  f"coordinator node {desc.coordinator.id}")
            return
        time.sleep(0.2)
    raise SystemExit(f"AdminClient did not see the live group as it is: {last}")


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
            admin_view(a, b)
            sys.exit(0)
finally:
    a.close()
    b.close()
raise SystemExit(f"the two members never shared the partitions of {TOPIC} "
                 f"(last assignments {seen}): the group split across coordinators")
