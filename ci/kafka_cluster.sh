#!/usr/bin/env bash
# Kafka clients against a replicated 3-node cluster (docs/replication.md):
# kcat (librdkafka) reads the cluster's metadata — every broker, each
# partition's leader and ISR — produces at acks=all across partitions led
# by different brokers, keeps producing after the leader of partition 0 is
# SIGKILLed (librdkafka follows the new leader from the metadata), and reads
# everything back: each message exactly once. Before that, two members of one
# consumer group (confluent-kafka), each bootstrapped through a different
# broker, must share the topic's partitions: one coordinator for the group
# (groups are spread over the brokers by rendezvous hashing), which
# AdminClient lists and describes; and the offsets of a group coordinated
# by partition 0's leader are read back, and consumption resumes from them,
# after that node is SIGKILLed (commits are agreed by the controller quorum).
# Last, a survivor restarted without a quorum names no partition leaders
# over Kafka until it has caught up with a controller leader again.
#
#   ci/kafka_cluster.sh [path/to/neo]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
neo="$(realpath "${1:-$root/target/release/neo}")"
. "$here/procs.sh"
. "$here/kafka/venv.sh"

declare -a PORT CPORT KPORT SRV
for i in 1 2 3; do PORT[$i]="$(free_port)"; CPORT[$i]="$(free_port)"; KPORT[$i]="$(free_port)"; done
voters="1=127.0.0.1:${CPORT[1]},2=127.0.0.1:${CPORT[2]},3=127.0.0.1:${CPORT[3]}"
brokers="127.0.0.1:${PORT[1]},127.0.0.1:${PORT[2]},127.0.0.1:${PORT[3]}"
kafka="127.0.0.1:${KPORT[1]},127.0.0.1:${KPORT[2]},127.0.0.1:${KPORT[3]}"
# Node 3 advertises a host name: its followers resolve it off their poll
# loops (replication/resolver.rs) to fetch the partitions it leads.
start() {
    local i="$1" adv=()
    [ "$i" = 3 ] && adv=(--advertise "localhost:${PORT[3]}")
    "$neo" serve --no-admin --data-dir "$work/data$i" --listen "127.0.0.1:${PORT[$i]}" "${adv[@]}" \
        --kafka-listen "127.0.0.1:${KPORT[$i]}" --no-kafka-auto-create --node-id "$i" \
        --controller-listen "127.0.0.1:${CPORT[$i]}" --controller-voters "$voters" \
        >>"$work/serve$i.log" 2>&1 &
    SRV[$i]=$!
    pids+=("${SRV[$i]}")
}
for i in 1 2 3; do start "$i"; done
created=0
for _ in $(seq 100); do
    if "$neo" -b "$brokers" topics create kc -p 3 -c replication.factor=3 -c min.insync.replicas=2 >/dev/null 2>&1; then
        created=1; break
    fi
    sleep 0.2
done
[ "$created" = 1 ] || fail "topic not created"
md=""
for _ in $(seq 100); do
    md="$(kcat -b "$kafka" -L -t kc 2>/dev/null || true)"
    [ "$(grep -c 'isrs: [0-9],[0-9],[0-9]$' <<<"$md")" = 3 ] && break
    sleep 0.2
done
grep -q ' 3 brokers:' <<<"$md" || { echo "$md"; fail "kcat does not see 3 brokers"; }
[ "$(grep -c 'isrs: [0-9],[0-9],[0-9]$' <<<"$md")" = 3 ] || { echo "$md"; fail "not every partition has an ISR of 3"; }
leaders="$(grep -oE 'partition [0-9], leader [0-9]' <<<"$md" | awk '{print $4}' | sort -u | wc -l)"
[ "$leaders" -ge 2 ] || { echo "$md"; fail "the partitions' leaders are not spread"; }
"$py" "$here/kafka/group_split_check.py" "127.0.0.1:${KPORT[1]}" "127.0.0.1:${KPORT[3]}" kc 3 \
    || fail "consumer group members reaching the cluster through different brokers did not form one group"
seq 1 300 | kcat -b "$kafka" -P -t kc -X acks=all -X enable.idempotence=true 2>"$work/p1.log" \
    || { cat "$work/p1.log"; fail "kcat produce failed"; }
lead0="$(grep -oE 'partition 0, leader [0-9]' <<<"$md" | awk '{print $4}')"
# Groups are spread over the brokers: the commit phase picks a group that
# the leader of partition 0 coordinates, so one SIGKILL takes both.
"$py" "$here/kafka/offsets_failover_check.py" "$kafka" kc 3 commit "$work/committed.json" "$lead0" \
    || fail "committing a group's offsets through the cluster"
kill -KILL "${SRV[$lead0]}"
wait "${SRV[$lead0]}" 2>/dev/null || true
others="$(for i in 1 2 3; do [ "$i" = "$lead0" ] || printf '127.0.0.1:%s,' "${KPORT[$i]}"; done)"
t0="$(date +%s.%N)"
seq 301 600 | timeout 60 kcat -b "${others%,}" -P -t kc -X acks=all -X enable.idempotence=true \
    -X message.timeout.ms=50000 2>"$work/p2.log" || { cat "$work/p2.log"; fail "kcat produce after the leader kill failed"; }
grep -qi "delivery failed\|failed to produce" "$work/p2.log" && { cat "$work/p2.log"; fail "kcat reported failed deliveries after the leader kill"; }
took="$(python3 -c "print(f'{$(date +%s.%N) - $t0:.2f}')")"
after="$(kcat -b "${others%,}" -L -t kc 2>/dev/null | grep -E 'partition 0, leader')"
grep -q "leader $lead0," <<<"$after" && fail "partition 0 still names the killed node $lead0 as leader: $after"
"$py" "$here/kafka/offsets_failover_check.py" "${others%,}" kc 3 resume "$work/committed.json" \
    || fail "the group's committed offsets did not outlive its coordinator"
# The same commits through the Neo protocol: set through one survivor, read
# through the other, and the Kafka group's commit listed there too.
surv=(); for i in 1 2 3; do [ "$i" = "$lead0" ] || surv+=("$i"); done
"$neo" -b "127.0.0.1:${PORT[${surv[0]}]}" groups commit neo-rewind kc:2=7 kc:1=3 >/dev/null \
    || fail "neo groups commit through node ${surv[0]}"
d="$("$neo" -b "127.0.0.1:${PORT[${surv[1]}]}" groups describe neo-rewind)"
grep -qE '^ +kc +2 +7 ' <<<"$d" && grep -qE '^ +kc +1 +3 ' <<<"$d" \
    || { echo "$d"; fail "a commit made through node ${surv[0]} is not seen through node ${surv[1]}"; }
d="$("$neo" -b "127.0.0.1:${PORT[${surv[1]}]}" groups describe "$(cat "$work/committed.json.group")")"
while read -r p o; do
    grep -qE "^ +kc +$p +$o " <<<"$d" || { echo "$d"; fail "neo groups describe does not list the Kafka group's commit $p:$o"; }
done < <(python3 -c 'import json, sys; [print(p, o) for p, o in json.load(open(sys.argv[1])).items()]' "$work/committed.json")
echo "PASS kafka_cluster_neo_commits: offsets committed with neo through node ${surv[0]} read through node ${surv[1]}, with the Kafka group's"
timeout 60 kcat -b "${others%,}" -C -t kc -o beginning -e -q 2>/dev/null | sort -n >"$work/got"
if ! seq 1 600 | cmp -s - "$work/got"; then
    kcat -b "${others%,}" -L -t kc >&2 || true
    cat "$work/p2.log" >&2
    missing="$(seq 1 600 | comm -23 - <(sort -u "$work/got") | awk 'NR==1{f=$1} {l=$1} END{if (NR) print NR " missing, " f ".." l}')"
    fail "read back $(wc -l <"$work/got") messages ($(uniq -d "$work/got" | wc -l) duplicated; ${missing:-none missing}), not exactly 1..600"
fi
echo "PASS kafka_cluster: kcat sees 3 brokers with partition leaders spread and ISRs of 3; 300 messages at acks=all, then node $lead0 (leader of partition 0) SIGKILLed and 300 more (done in ${took}s; partition 0 now:$(sed 's/^ *partition 0,//' <<<"$after")); read back exactly 1..600"
# A node restarted without a controller quorum must not name partition
# leaders from its replayed (possibly stale) metadata: kcat sees every
# partition of kc without a leader (LEADER_NOT_AVAILABLE) until a second
# node is back and the restarted one has caught up with the new controller
# leader; then every partition is led by one of the two again.
a="${surv[0]}"; b="${surv[1]}"
for i in "$b" "$a"; do kill -TERM "${SRV[$i]}"; wait "${SRV[$i]}" 2>/dev/null || true; done
start "$a"
alone=""
for _ in $(seq 100); do
    md="$(timeout 10 kcat -b "127.0.0.1:${KPORT[$a]}" -L -t kc 2>/dev/null || true)"
    if [ "$(grep -c 'partition [0-2], leader -1,' <<<"$md")" = 3 ]; then alone="$md"; break; fi
    sleep 0.1
done
[ -n "$alone" ] || { echo "$md"; fail "node $a restarted without a quorum named partition leaders from its replayed metadata"; }
grep -q "Leader not available" <<<"$alone" || { echo "$alone"; fail "no LEADER_NOT_AVAILABLE from node $a without a quorum"; }
start "$b"
led=0
for _ in $(seq 150); do
    md="$(timeout 10 kcat -b "127.0.0.1:${KPORT[$a]}" -L -t kc 2>/dev/null || true)"
    if [ "$(grep -cE "partition [0-2], leader [$a$b]," <<<"$md")" = 3 ]; then led=1; break; fi
    sleep 0.2
done
[ "$led" = 1 ] || { echo "$md"; fail "node $a named no leaders after node $b came back"; }
echo "PASS kafka_cluster_restart_without_quorum: node $a alone after a restart named no leaders (LEADER_NOT_AVAILABLE on 3 partitions); with node $b back it names leaders among them"
