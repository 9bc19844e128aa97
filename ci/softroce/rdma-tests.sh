#!/bin/sh
# Runs inside the soft-RoCE guest (ci/rdma.sh boots it through guest.sh),
# from the repository root shared over 9p: the ib_send_lat reference, neo
# doctor, the RDMA transport tests, Neo RPC round trips at 64 B and 1 MiB,
# the broker's produce/consume over rdma, and a 3-node cluster replicating
# over rdma (kcat at acks=all through a leader kill). Every figure here comes
# from an emulated CPU (qemu TCG): correctness, not performance.
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

# A 3-node cluster whose brokers serve, and so replicate, over rdma: one rxe
# device, a port each; the controller quorum and the Kafka front on TCP.
# kcat auto-creates a topic (3 partitions, replication factor 3, min ISR 2),
# produces 300 at acks=all, the leader of partition 0 is SIGKILLed, 300 more
# go to the survivors, and exactly 1..600 come back. Timeouts are generous:
# the guest's CPU is emulated. ci/cluster.toml has the topic defaults.
voters="1=$ADDR:7501,2=$ADDR:7502,3=$ADDR:7503"
kafka="$ADDR:9091,$ADDR:9092,$ADDR:9093"
for i in 1 2 3; do
    timeout 600 $NEO serve --config ci/cluster.toml --transport rdma --listen "$ADDR:748$i" --no-admin \
        --data-dir "/tmp/fc$i" --kafka-listen "$ADDR:909$i" --node-id "$i" --controller-listen "$ADDR:750$i" \
        --controller-voters "$voters" --session-timeout-ms 4000 --replica-lag-max-ms 10000 >"/tmp/fc$i.log" 2>&1 &
    eval "fc$i=\$!"
done
md=""
for _ in $(seq 300); do
    md=$(kcat -b "$kafka" -L -t fc 2>/dev/null)
    [ "$(echo "$md" | grep -c 'isrs: [0-9],[0-9],[0-9]$')" = 3 ] && break
    sleep 0.5
done
[ "$(echo "$md" | grep -c 'isrs: [0-9],[0-9],[0-9]$')" = 3 ] || { echo "$md"; fail "rdma cluster: topic fc not auto-created with 3 in-sync replicas per partition"; }
for i in 1 2 3; do grep -q 'replication=.\?rdma' "/tmp/fc$i.log" || fail "rdma cluster: node $i does not replicate over rdma"; done
seq 1 300 | timeout 120 kcat -b "$kafka" -P -t fc -X acks=all -X enable.idempotence=true \
    -X message.timeout.ms=60000 2>/tmp/kp1.log || fail "rdma cluster: kcat produce"
grep -qi "delivery failed" /tmp/kp1.log && fail "rdma cluster: failed deliveries: $(head -3 /tmp/kp1.log)"
lead0=$(echo "$md" | grep -o 'partition 0, leader [0-9]' | awk '{print $4}')
eval "kill -KILL \$fc$lead0"
others=""
for i in 1 2 3; do [ "$i" = "$lead0" ] || others="$others$ADDR:909$i,"; done
others=${others%,}
seq 301 600 | timeout 180 kcat -b "$others" -P -t fc -X acks=all -X enable.idempotence=true \
    -X message.timeout.ms=120000 2>/tmp/kp2.log || fail "rdma cluster: kcat produce after the leader kill"
grep -qi "delivery failed" /tmp/kp2.log && fail "rdma cluster: failed deliveries after the kill: $(head -3 /tmp/kp2.log)"
timeout 120 kcat -b "$others" -C -t fc -o beginning -e -q 2>/dev/null | sort -n >/tmp/fc-got
seq 1 600 >/tmp/fc-want
cmp -s /tmp/fc-want /tmp/fc-got || fail "rdma cluster: read back $(wc -l </tmp/fc-got) messages ($(uniq -d /tmp/fc-got | wc -l) duplicated), not exactly 1..600"
carried=""
for i in 1 2 3; do
    [ "$i" = "$lead0" ] && continue
    eval "kill -TERM \$fc$i; wait \$fc$i"
    c=$(grep -o 'transport counters.*' "/tmp/fc$i.log" | tail -1)
    recvs=$(echo "$c" | grep -o 'recvs=[0-9]*' | cut -d= -f2)
    [ "${recvs:-0}" -gt 0 ] || fail "rdma cluster: node $i's rdma transport carried no replica fetches: ${c:-no counters logged}"
    carried="$carried node $i: $recvs messages received over rdma;"
done
echo "PASS rdma_cluster: 3 brokers replicating over rdma (rxe, emulated guest); 300 at acks=all, node $lead0 (leader of partition 0) SIGKILLed, 300 more; read back exactly 1..600;${carried%;}"
