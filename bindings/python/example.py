"""Produce three records and read them back as a group member.

    python example.py [HOST:PORT] [TOPIC] [TRANSPORT]
"""

import sys

import neo

boot = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:7400"
topic = sys.argv[2] if len(sys.argv) > 2 else "orders"
transport = sys.argv[3] if len(sys.argv) > 3 else "tcp"

with neo.Producer(boot, transport=transport) as p:
    for fruit in (b"apple", b"pear", b"plum"):
        p.send(topic, fruit, key=b"k", on_delivery=lambda r: print("delivered", r))

with neo.Consumer(boot, group="example", topics=[topic], transport=transport, idle_timeout=3.0) as c:
    for n, msg in enumerate(c, 1):
        print("read", msg.value.decode(), "at offset", msg.offset)
        if n == 3:
            break
