#!/usr/bin/env bash
# The rolling-restart procedure of docs/deploy.md on a local 3-process
# cluster, under load: three `neo serve` processes on loopback, an
# idempotent producer at acks=all writing numbered records to each, and each
# broker restarted in turn (SIGTERM, start, wait for /ready) while they
# produce. Every producer must report all its records acknowledged, and each
# broker must hold exactly those records — none lost, none twice.
# (Without replication each broker is its own single node; the replicated
# version of this check comes with the replication issue.)
#
#   ci/rolling_restart.sh [path/to/neo]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
neo="$(realpath "${1:-$root/target/release/neo}")"
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() { for i in 0 1 2; do echo "--- broker $i:" >&2; tail -n 8 "$work/serve$i.log" >&2 || true; done; echo "FAIL $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

N=3000
declare -a PORT APORT SRV
start() {
    local i="$1"
    "$neo" serve --data-dir "$work/data$i" --listen "127.0.0.1:${PORT[$i]}" \
        --admin-listen "127.0.0.1:${APORT[$i]}" >>"$work/serve$i.log" 2>&1 &
    SRV[$i]=$!
    pids+=("${SRV[$i]}")
    for _ in $(seq 200); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:${APORT[$i]}/ready")" = 200 ] && return 0
        sleep 0.05
    done
    fail "broker $i not ready after start"
}
for i in 0 1 2; do
    PORT[$i]="$(free_port)"; APORT[$i]="$(free_port)"
    start "$i"
    "$neo" topics create rr -p 2 -c fsync=interval:5 -b "127.0.0.1:${PORT[$i]}" >/dev/null
done
# Numbered records at ~600/s per broker: the restarts happen mid-stream.
prods=()
for i in 0 1 2; do
    python3 -c "
import sys, time
for n in range(1, $N + 1):
    sys.stdout.write(f'{n}\n')
    if n % 30 == 0:
        sys.stdout.flush(); time.sleep(0.05)
" | "$neo" produce rr --acks all -b "127.0.0.1:${PORT[$i]}" --timeout-ms 60000 >/dev/null 2>"$work/prod$i.log" &
    prods+=($!)
done
sleep 1
restarts=""
for i in 0 1 2; do
    t0="$(date +%s.%N)"
    kill -TERM "${SRV[$i]}"
    wait "${SRV[$i]}" || fail "broker $i did not stop cleanly"
    start "$i"
    restarts+=" $i:$(python3 -c "print(f'{$(date +%s.%N) - $t0:.2f}s')")"
    sleep 0.5
done
for i in 0 1 2; do
    wait "${prods[$i]}" || { cat "$work/prod$i.log"; fail "producer $i failed"; }
    grep -q "$N of $N records acknowledged" "$work/prod$i.log" || { cat "$work/prod$i.log"; fail "producer $i: not every record acknowledged"; }
done
for i in 0 1 2; do
    "$neo" consume rr -b "127.0.0.1:${PORT[$i]}" -o beginning --idle-exit-ms 1000 2>/dev/null | sort -n >"$work/got$i"
    seq 1 "$N" | cmp -s - "$work/got$i" || fail "broker $i holds $(wc -l <"$work/got$i") records ($(sort -n "$work/got$i" | uniq -d | wc -l) duplicated), not 1..$N"
done
# The restarts really hit the producers mid-stream: each restarted process
# (its counters start at zero) took produce requests after its restart.
after=""
for i in 0 1 2; do
    n="$(curl -sf "127.0.0.1:${APORT[$i]}/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["produce_requests"])')"
    [ "$n" -ge 1 ] || fail "broker $i: no produce request after its restart"
    after+=" $n"
done
echo "PASS rolling_restart: 3 brokers restarted one at a time (SIGTERM, start, /ready; downtime$restarts) under 3 idempotent acks=all producers; $N of $N acknowledged on each (produce requests after each restart:$after), each broker holds exactly 1..$N"
