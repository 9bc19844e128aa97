#!/usr/bin/env bash
# The rolling-restart procedure of docs/deploy.md on a local replicated
# 3-node cluster, under load: three `neo serve --node-id` processes on
# loopback, a topic of 3 partitions with replication factor 3 and
# min.insync.replicas 2, and one idempotent acks=all producer per partition
# (given all three brokers, following its partition's leader). Each node is
# restarted in turn — SIGTERM (controlled shutdown hands its leaderships
# over), start, wait until every partition's ISR is whole again — while they
# produce. Every producer must report all its records acknowledged, and the
# cluster must hold exactly those records: none lost, none twice. At the end
# every partition must be led by its preferred replica again (the
# controller's leader rebalance, every 500 ms here).
#
#   ci/rolling_restart.sh [path/to/neo]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
neo="$(realpath "${1:-$root/target/release/neo}")"
. "$here/procs.sh"

N=3000
declare -a PORT CPORT APORT SRV
for i in 1 2 3; do PORT[$i]="$(free_port)"; CPORT[$i]="$(free_port)"; APORT[$i]="$(free_port)"; done
voters="1=127.0.0.1:${CPORT[1]},2=127.0.0.1:${CPORT[2]},3=127.0.0.1:${CPORT[3]}"
brokers="127.0.0.1:${PORT[1]},127.0.0.1:${PORT[2]},127.0.0.1:${PORT[3]}"
start() {
    local i="$1"
    "$neo" serve --data-dir "$work/data$i" --listen "127.0.0.1:${PORT[$i]}" \
        --admin-listen "127.0.0.1:${APORT[$i]}" --node-id "$i" --leader-rebalance-ms 500 \
        --controller-listen "127.0.0.1:${CPORT[$i]}" --controller-voters "$voters" \
        >>"$work/serve$i.log" 2>&1 &
    SRV[$i]=$!
    pids+=("${SRV[$i]}")
    for _ in $(seq 200); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:${APORT[$i]}/ready")" = 200 ] && return 0
        sleep 0.05
    done
    fail "node $i not ready after start"
}
# whole: every partition of rr has a leader and an ISR of 3, as node $1 sees it.
whole() {
    "$neo" -b "127.0.0.1:${PORT[$1]}" --timeout-ms 2000 cluster status --json 2>/dev/null | python3 -c '
import json, sys
m = json.load(sys.stdin)["meta"]["topics"].get("rr")
sys.exit(0 if m and all(p["leader"] is not None and len(p["isr"]) == 3 for p in m["partitions"]) else 1)'
}
# wait_whole WHAT: until every node sees every partition whole (a node just
# restarted may still hold its old view).
wait_whole() {
    for _ in $(seq 300); do
        whole 1 && whole 2 && whole 3 && return 0
        sleep 0.1
    done
    fail "partitions not whole again (leader and ISR of 3 on every node) after $1"
}
for i in 1 2 3; do start "$i"; done
for _ in $(seq 100); do
    "$neo" -b "$brokers" topics create rr -p 3 -c fsync=interval:5 -c replication.factor=3 \
        -c min.insync.replicas=2 >/dev/null 2>"$work/create.log" && break
    sleep 0.2
done
[ -s "$work/create.log" ] && cat "$work/create.log" >&2
wait_whole "creating the topic"
# Numbered records at ~600/s per partition: the restarts happen mid-stream.
prods=()
for p in 0 1 2; do
    python3 -c "
import sys, time
for n in range(1, $N + 1):
    sys.stdout.write(f'{n}\n')
    if n % 30 == 0:
        sys.stdout.flush(); time.sleep(0.05)
" | "$neo" produce rr -p "$p" --acks all -b "$brokers" --timeout-ms 60000 >/dev/null 2>"$work/prod$p.log" &
    prods+=($!)
done
sleep 1
restarts=""
for i in 1 2 3; do
    t0="$(date +%s.%N)"
    kill -TERM "${SRV[$i]}"
    wait "${SRV[$i]}" || fail "node $i did not stop cleanly"
    start "$i"
    wait_whole "restarting node $i"
    restarts+=" $i:$(python3 -c "print(f'{$(date +%s.%N) - $t0:.2f}s')")"
done
for p in 0 1 2; do
    wait "${prods[$p]}" || { cat "$work/prod$p.log"; fail "producer $p failed"; }
    grep -q "$N of $N records acknowledged" "$work/prod$p.log" || { cat "$work/prod$p.log"; fail "producer $p: not every record acknowledged"; }
done
for p in 0 1 2; do
    "$neo" consume rr -p "$p" -b "$brokers" -o beginning --idle-exit-ms 1500 2>/dev/null | sort -n >"$work/got$p"
    seq 1 "$N" | cmp -s - "$work/got$p" || fail "partition $p holds $(wc -l <"$work/got$p") records ($(sort -n "$work/got$p" | uniq -d | wc -l) duplicated), not 1..$N"
done
# Every node holds every partition in full (the replicas caught up).
for i in 1 2 3; do
    for p in 0 1 2; do
        f="$(ls "$work/data$i/topics/rr/$p/"*.log | head -n 1)"
        [ -s "$f" ] || fail "node $i has no data for partition $p"
    done
done
# Leadership spread again: though every node was restarted (handing its
# leaderships away), each partition is back on its preferred replica (the
# first assigned; --leader-rebalance-ms 500).
spread() {
    "$neo" -b "$brokers" --timeout-ms 2000 cluster status --json 2>/dev/null | python3 -c '
import json, sys
m = json.load(sys.stdin)["meta"]["topics"]["rr"]["partitions"]
sys.exit(0 if all(p["leader"] == p["replicas"][0] for p in m) else 1)'
}
spread_seen=0
for _ in $(seq 100); do
    if spread; then spread_seen=1; break; fi
    sleep 0.1
done
[ "$spread_seen" = 1 ] || fail "leadership is not back on the preferred replicas"
leaders="$("$neo" -b "$brokers" cluster status --json | python3 -c '
import json, sys
m = json.load(sys.stdin)["meta"]["topics"]["rr"]["partitions"]
print(" ".join("%s:%s@%s" % (i, p["leader"], p["leader_epoch"]) for i, p in enumerate(m)))')"
echo "PASS rolling_restart: a replicated 3-node cluster (rf 3, min.insync.replicas 2) restarted one node at a time (SIGTERM with controlled shutdown, start, ISR whole again:$restarts) under 3 idempotent acks=all producers; $N of $N acknowledged per partition, each partition holds exactly 1..$N; every partition back on its preferred replica, leaders@epochs now $leaders"
