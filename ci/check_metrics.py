#!/usr/bin/env python3
"""Checks a real /metrics scrape against the Grafana dashboard: every metric
family a panel queries must be in the scrape, so the dashboard cannot drift
from what the broker exports.

  ci/check_metrics.py SCRAPE DASHBOARD_JSON [--packet-engine]

Packet-engine counters (neo_transport_frames_*, retransmits, ring drops)
exist only on af-xdp/dpdk brokers: by default they are left out; with
--packet-engine only the transport families are checked (the scrape of a
broker over af-xdp, which serves no Kafka listener or groups). Exits 1
naming every missing family."""
import json
import re
import sys

ENGINE_ONLY = re.compile(r"^neo_transport_(?!open_connections$)")


def families(scrape):
    out = set()
    for line in open(scrape, encoding="utf-8"):
        if line.startswith("# TYPE "):
            out.add(line.split()[2])
    return out


def queried(dashboard):
    names = set()

    def walk(node):
        if isinstance(node, dict):
            expr = node.get("expr")
            if isinstance(expr, str):
                for n in re.findall(r"\bneo_[a-z0-9_]+", expr):
                    names.add(re.sub(r"_(bucket|sum|count)$", "", n))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    with open(dashboard, encoding="utf-8") as f:
        walk(json.load(f))
    return names


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    engine = "--packet-engine" in sys.argv
    if len(args) != 2:
        sys.exit(__doc__)
    have, want = families(args[0]), queried(args[1])
    if not want:
        sys.exit("the dashboard queries no neo_ metric")
    if engine:
        checked = {n for n in want if n.startswith("neo_transport_")}
    else:
        checked = {n for n in want if not ENGINE_ONLY.match(n)}
    missing = sorted(n for n in checked if n not in have)
    if missing:
        print("dashboard metrics missing from the scrape: " + ", ".join(missing))
        sys.exit(1)
    print(f"{len(checked)} of the dashboard's {len(want)} metric families checked,"
          " all present in the scrape")


main()
