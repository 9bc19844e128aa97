#!/usr/bin/env bash
# Replication over a kernel-bypass fabric (docs/replication.md): a 3-node
# cluster whose brokers serve Neo RPC over AF_XDP or DPDK, each in its own
# network namespace on a veth bridged in a hub namespace, so followers fetch
# from leaders through the packet engine on XDP sockets or DPDK ports — the
# broker's own poll loop, no TCP (the controller quorum and the Kafka front
# stay on the kernel's TCP, on the same veth for AF_XDP, on a second one for
# DPDK, which owns its port, ARP included). From the hub, kcat (librdkafka)
# auto-creates a topic of 3 partitions (replication factor 3, min ISR 2),
# produces 300 messages at acks=all (each acknowledged only once a follower
# holds it), the leader of partition 0 is SIGKILLed, 300 more go to the
# survivors (the new leader must hold the first 300: it got them over the
# fabric), and everything is read back: exactly 1..600.
#
#   ci/fabric_cluster.sh af-xdp|dpdk [path/to/neo]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
fabric="${1:?usage: ci/fabric_cluster.sh af-xdp|dpdk [neo]}"
neo="$(realpath "${2:-$root/target/release/neo}")"
. "$here/netns.sh"
. "$here/procs.sh"
require_root "ci/fabric_cluster.sh" "network namespaces, XDP, AF_PACKET"
case "$fabric" in af-xdp | dpdk) ;; *) echo "unknown fabric $fabric" >&2; exit 2 ;; esac

hub=neo-fc-hub
nodes=(1 2 3)
ns_down() {
    for i in "${nodes[@]}"; do ip netns del "neo-fc$i" 2>/dev/null || true; done
    ip netns del "$hub" 2>/dev/null || true
}
ns_down
trap 'cleanup; ns_down' EXIT
ip netns add "$hub"
ip -n "$hub" link set lo up
for br in br0 br1; do
    ip -n "$hub" link add "$br" type bridge
    ip -n "$hub" link set "$br" up
done
ip -n "$hub" addr add 10.78.0.254/24 dev br0
for i in "${nodes[@]}"; do
    ns="neo-fc$i"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    # fcK: the kernel's (TCP: controller, Kafka; for AF_XDP also the fabric).
    ip link add "fc$i" netns "$ns" type veth peer name "fh$i" netns "$hub"
    ip -n "$ns" addr add "10.78.0.$i/24" dev "fc$i"
    ip -n "$ns" link set "fc$i" up
    ip -n "$hub" link set "fh$i" master br0
    ip -n "$hub" link set "fh$i" up
    if [ "$fabric" = dpdk ]; then
        # fdK: DPDK's port (net_af_packet), no kernel address on it.
        ip link add "fd$i" netns "$ns" type veth peer name "fe$i" netns "$hub"
        ip -n "$ns" link set "fd$i" up
        ip -n "$hub" link set "fe$i" master br1
        ip -n "$hub" link set "fe$i" up
    fi
done

voters="1=10.78.0.1:7500,2=10.78.0.2:7500,3=10.78.0.3:7500"
kafka="10.78.0.1:9092,10.78.0.2:9092,10.78.0.3:9092"
declare -a SRV
for i in "${nodes[@]}"; do
    if [ "$fabric" = af-xdp ]; then
        fab=(--transport af-xdp --interface "fc$i" --listen "10.78.0.$i:7400")
    else
        fab=(--transport dpdk --dpdk-vdev "net_af_packet0,iface=fd$i" --listen "10.79.0.$i:7400")
    fi
    ip netns exec "neo-fc$i" "$neo" serve --config "$here/cluster.toml" --no-admin --data-dir "$work/data$i" \
        "${fab[@]}" --kafka-listen "10.78.0.$i:9092" --node-id "$i" \
        --controller-listen "10.78.0.$i:7500" --controller-voters "$voters" \
        >"$work/serve$i.log" 2>&1 &
    SRV[$i]=$!
    pids+=("${SRV[$i]}")
done
in_hub() { ip netns exec "$hub" "$@"; }
md=""
for _ in $(seq 150); do
    md="$(in_hub kcat -b "$kafka" -L -t fc 2>/dev/null || true)"
    [ "$(grep -c 'isrs: [0-9],[0-9],[0-9]$' <<<"$md")" = 3 ] && break
    sleep 0.2
done
[ "$(grep -c 'isrs: [0-9],[0-9],[0-9]$' <<<"$md")" = 3 ] || { echo "$md"; fail "$fabric: topic fc not auto-created with 3 partitions of 3 in-sync replicas"; }
for i in "${nodes[@]}"; do
    grep -q "replication=.\?$fabric" "$work/serve$i.log" \
        || fail "$fabric: node $i does not say it replicates over $fabric"
done
seq 1 300 | in_hub kcat -b "$kafka" -P -t fc -X acks=all -X enable.idempotence=true \
    -X message.timeout.ms=30000 2>"$work/p1.log" || { cat "$work/p1.log"; fail "$fabric: kcat produce failed"; }
grep -qi "delivery failed\|failed to produce" "$work/p1.log" && { cat "$work/p1.log"; fail "$fabric: kcat reported failed deliveries"; }
lead0="$(grep -oE 'partition 0, leader [0-9]' <<<"$md" | awk '{print $4}')"
kill -KILL "${SRV[$lead0]}"
wait "${SRV[$lead0]}" 2>/dev/null || true
others="$(for i in "${nodes[@]}"; do [ "$i" = "$lead0" ] || printf '10.78.0.%s:9092,' "$i"; done)"
t0="$(date +%s.%N)"
seq 301 600 | in_hub timeout 60 kcat -b "${others%,}" -P -t fc -X acks=all -X enable.idempotence=true \
    -X message.timeout.ms=50000 2>"$work/p2.log" || { cat "$work/p2.log"; fail "$fabric: kcat produce after the leader kill failed"; }
grep -qi "delivery failed\|failed to produce" "$work/p2.log" && { cat "$work/p2.log"; fail "$fabric: kcat reported failed deliveries after the leader kill"; }
took="$(python3 -c "print(f'{$(date +%s.%N) - $t0:.2f}')")"
after="$(in_hub kcat -b "${others%,}" -L -t fc 2>/dev/null | grep -E 'partition 0, leader')"
grep -q "leader $lead0," <<<"$after" && fail "$fabric: partition 0 still names the killed node $lead0 as leader: $after"
in_hub timeout 60 kcat -b "${others%,}" -C -t fc -o beginning -e -q 2>/dev/null | sort -n >"$work/got"
if ! seq 1 600 | cmp -s - "$work/got"; then
    missing="$(seq 1 600 | comm -23 - <(sort -u "$work/got") | awk 'NR==1{f=$1} {l=$1} END{if (NR) print NR " missing, " f ".." l}')"
    fail "$fabric: read back $(wc -l <"$work/got") messages ($(uniq -d "$work/got" | wc -l) duplicated; ${missing:-none missing}), not exactly 1..600"
fi
# The replica fetches went through the engine: stopped cleanly, each
# survivor logs its engine's counters; no Neo client used the fabric here,
# so its sessions and data frames are the followers' and leaders' fetches.
carried=""
for i in "${nodes[@]}"; do
    [ "$i" = "$lead0" ] && continue
    kill -TERM "${SRV[$i]}"
    wait "${SRV[$i]}" 2>/dev/null || true
    c="$(grep -m1 'transport counters' "$work/serve$i.log" || true)"
    opened="$(grep -oE 'sessions_opened: [0-9]+' <<<"$c" | awk '{print $2}')"
    data="$(grep -oE 'data_in: [0-9]+' <<<"$c" | awk '{print $2}')"
    [ "${opened:-0}" -gt 0 ] && [ "${data:-0}" -gt 0 ] \
        || fail "$fabric: node $i's engine carried no replica fetches: ${c:-no counters logged}"
    carried+=" node $i: ${opened} sessions, ${data} data frames in;"
done
echo "PASS fabric_cluster_$fabric: 3 brokers replicating over $fabric in namespaces; 300 messages at acks=all, node $lead0 (leader of partition 0) SIGKILLed, 300 more (in ${took}s; partition 0 now:$(sed 's/^ *partition 0,//' <<<"$after")); read back exactly 1..600; engines:${carried%;}"
