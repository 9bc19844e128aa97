#!/bin/sh
# Runs inside the soft-RoCE guest for scripts/bench.sh (booted by
# ci/softroce/guest.sh, the tree shared read-only over 9p): the RDMA rows of
# the benchmark matrix on rxe0 — perftest's ib_send_lat and Neo RPC over the
# rdma transport at each size, then the broker e2e over rdma at a fixed rate
# and at maximum throughput. Parameters come from target/bench-rdma.env
# (written by scripts/bench-rdma.sh); results leave on the serial console as
# `BENCH-*` lines. The guest CPU is emulated (qemu TCG): every figure from
# here is labelled so, and none is a performance claim.
set -u
. target/bench-rdma.env
NEO=target/release/neo
ADDR=10.99.0.1
echo "BENCH-INFO guest_kernel $(uname -r)"

for s in $SIZES; do
    timeout 120 ib_send_lat -d rxe0 -x 1 -s "$s" -n "$IB_ITERS" >/tmp/ibs.log 2>&1 &
    sleep 1
    if timeout 120 ib_send_lat -d rxe0 -x 1 -s "$s" -n "$IB_ITERS" "$ADDR" >/tmp/ibc.log 2>&1; then
        echo "BENCH-IB $s $(grep -E "^ +$s +$IB_ITERS " /tmp/ibc.log | head -1)"
    else
        echo "BENCH-FAIL rtt/ib_send_lat-tcg-guest/$s ib_send_lat failed: $(tail -3 /tmp/ibc.log | tr '\n' ' ')"
    fi
    wait
done

timeout 900 $NEO serve --transport rdma --listen "$ADDR:7471" --no-admin --data-dir /tmp/neo-data >/tmp/serve.log 2>&1 &
srv=$!
for _ in $(seq 200); do grep -q 'neo serving' /tmp/serve.log && break; sleep 0.1; done
if ! grep -q 'neo serving' /tmp/serve.log; then
    echo "neo serve --transport rdma did not start: $(tail -3 /tmp/serve.log | tr '\n' ' ')"
    exit 0    # the host fails every row that has no result
fi
for s in $SIZES; do
    n=$RTT_COUNT
    [ "$s" -ge 65536 ] && n=$RTT_COUNT_BIG
    if timeout 300 $NEO bench rtt --transport rdma --connect "$ADDR:7471" --size "$s" --count "$n" \
        --warmup $((n / 10 + 1)) --json >/tmp/rtt.log 2>&1; then
        echo "BENCH-NEO rtt $s $(tail -1 /tmp/rtt.log)"
    else
        echo "BENCH-FAIL rtt/rdma-tcg-guest/$s neo bench rtt failed: $(tail -3 /tmp/rtt.log | tr '\n' ' ')"
    fi
done
for r in $E2E_RATE 0; do
    row="e2e/rdma-tcg-guest/latency@$r"
    [ "$r" = 0 ] && row=e2e/rdma-tcg-guest/throughput
    if timeout 300 $NEO bench e2e --transport rdma --connect "$ADDR:7471" --rate "$r" --size "$E2E_SIZE" \
        --duration "$E2E_SECS" --warmup "$E2E_WARMUP" --acks 1 --fsync interval:120000 --json >/tmp/e2e.log 2>&1; then
        echo "BENCH-NEO e2e $r $(tail -1 /tmp/e2e.log)"
    else
        echo "BENCH-FAIL $row neo bench e2e failed: $(tail -3 /tmp/e2e.log | tr '\n' ' ')"
    fi
done
kill -TERM $srv
wait $srv
