#!/bin/sh
# Runs inside the soft-RoCE guest (ci/rdma.sh boots it through guest.sh),
# from the repository root shared over 9p: the ib_send_lat reference, neo
# doctor, the RDMA transport tests, Neo RPC round trips at 64 B and 1 MiB,
# and the broker's produce/consume over rdma. Every figure here comes from an
# emulated CPU (qemu TCG): correctness, not performance.
set -u
NEO=target/release/neo
TEST=$(cat target/rdma-test-binary)
ADDR=10.99.0.1
fail() { echo "FAIL $*"; for f in /tmp/*.log; do echo "--- $f"; tail -20 "$f"; done; exit 1; }

timeout 60 ib_send_lat -d rxe0 -x 1 -n 1000 >/tmp/lat-server.log 2>&1 &
sleep 1
timeout 60 ib_send_lat -d rxe0 -x 1 -n 1000 "$ADDR" >/tmp/lat.log 2>&1 || fail "ib_send_lat client"
wait
echo "PASS ib_send_lat reference over rxe0 (emulated guest): $(grep -E '^ +2 +1000' /tmp/lat.log | awk '{print "t_typical " $5 " us, t_avg " $6 " us, 99% " $8 " us"}')"

$NEO doctor >/tmp/doctor.log 2>&1
sed -n '/^transports:/,/^$/p;/^RDMA verbs:/,/^$/p' /tmp/doctor.log
grep -q '^  rdma    usable' /tmp/doctor.log || fail "neo doctor does not find rdma usable"
echo "PASS neo doctor: rdma usable ($(grep -m1 'rxe0 port 1' /tmp/doctor.log | sed 's/^ *//'))"

NEO_RDMA_ADDR=$ADDR timeout 900 "$TEST" --nocapture --test-threads 1 >/tmp/transport-tests.log 2>&1
grep '^PASS' /tmp/transport-tests.log
grep -q 'test result: ok. 1 passed' /tmp/transport-tests.log || fail "RDMA transport tests"

timeout 600 $NEO serve --transport rdma --listen "$ADDR:7471" --no-admin --data-dir /tmp/neo-data >/tmp/serve.log 2>&1 &
srv=$!
for _ in $(seq 200); do grep -q 'neo serving' /tmp/serve.log && break; sleep 0.1; done
grep -q 'neo serving' /tmp/serve.log || fail "neo serve --transport rdma did not start"
timeout 300 $NEO bench rtt --transport rdma --connect "$ADDR:7471" --size 64 --count 2000 --warmup 200 --json >/tmp/rtt64.log 2>&1 || fail "bench rtt 64 B"
timeout 300 $NEO bench rtt --transport rdma --connect "$ADDR:7471" --size 1048576 --count 30 --warmup 3 --json >/tmp/rtt1m.log 2>&1 || fail "bench rtt 1 MiB"
echo "PASS Neo RPC over rdma (emulated guest): 64 B $(grep -o '"p50_us":[0-9.]*' /tmp/rtt64.log | tail -1), 1 MiB $(grep -o '"p50_us":[0-9.]*' /tmp/rtt1m.log | tail -1)"
timeout 300 $NEO bench e2e --transport rdma --connect "$ADDR:7471" --rate 500 --duration 2 --warmup 0 --acks all --json >/tmp/e2e.log 2>&1 || fail "bench e2e"
last=$(grep '^{"bench":"e2e"' /tmp/e2e.log | tail -1)
sent=$(echo "$last" | sed 's/.*"sent":\([0-9]*\).*/\1/')
received=$(echo "$last" | sed 's/.*"received":\([0-9]*\).*/\1/')
[ -n "$sent" ] && [ "$sent" -gt 0 ] && [ "$sent" = "$received" ] || fail "broker over rdma: sent $sent, received $received"
echo "PASS broker produce/consume over rdma: $sent records produced (acks=all) and consumed $(echo "$last" | grep -o '"p50_us":[0-9.]*') (emulated guest)"
kill -TERM $srv
wait $srv || fail "neo serve did not stop cleanly"
grep -o 'transport counters.*' /tmp/serve.log | tail -1
