#!/usr/bin/env bash
# Real Kafka clients against `neo serve --kafka-listen`: kcat (Debian's,
# librdkafka 2.0), confluent-kafka (PyPI, librdkafka 2.x inside) and aiokafka
# (PyPI, pure Python). Nobody here wrote these clients. Also crosses formats:
# what Kafka clients produce is read by `neo consume`, and the other way
# round, and what they produced is still there after a broker restart.
# Prints one PASS line per check; fails on the first check that fails.
#
#   ci/kafka.sh [path/to/neo]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
neo="$(realpath "${1:-$root/target/release/neo}")"
. "$here/kafka/venv.sh"

work="$(mktemp -d)"
srv=""
stop_broker() {
    if [ -n "$srv" ]; then kill -TERM "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true; fi
    srv=""
}
trap 'stop_broker; rm -rf "$work"' EXIT

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
KPORT="$(free_port)" NPORT="$(free_port)" APORT="$(free_port)"
BOOT="127.0.0.1:$KPORT" NEO_AT="127.0.0.1:$NPORT"

log="$work/serve.log"
start_broker() {
    [ -f "$log" ] && mv "$log" "$log.old"
    "$neo" serve --admin-listen "127.0.0.1:$APORT" --data-dir "$work/data" --listen "$NEO_AT" --kafka-listen "$BOOT" >"$log" 2>&1 &
    srv=$!
    for _ in $(seq 100); do grep -q "neo serving" "$log" 2>/dev/null && return 0; sleep 0.05; done
    cat "$log"; echo "FAIL kafka: neo serve did not start" >&2; exit 1
}
fail() { echo "--- neo serve log:" >&2; tail -n 40 "$log" >&2; echo "FAIL $*" >&2; exit 1; }

start_broker
echo "neo serve: Neo RPC on $NEO_AT, Kafka on $BOOT ($(kcat -V 2>&1 | head -1))"

# kcat: metadata, 1000 messages produced, consumed back from the beginning.
meta="$(timeout 30 kcat -b "$BOOT" -L)" || fail "kcat metadata"
grep -q "broker 0 at 127.0.0.1:$KPORT" <<<"$meta" || { echo "$meta"; fail "kcat metadata: broker not listed"; }
seq 1 1000 | timeout 60 kcat -b "$BOOT" -P -t kcat-topic || fail "kcat produce"
timeout 60 kcat -b "$BOOT" -C -t kcat-topic -o beginning -e -q >"$work/kcat.out" || fail "kcat consume"
cmp -s <(seq 1 1000) "$work/kcat.out" || fail "kcat: consumed $(wc -l <"$work/kcat.out") lines, not the 1000 produced"
meta="$(timeout 30 kcat -b "$BOOT" -L -t kcat-topic)"
grep -q 'topic "kcat-topic" with 1 partitions' <<<"$meta" || { echo "$meta"; fail "kcat metadata of the topic"; }
echo "PASS kcat: metadata lists the broker and the auto-created topic; 1000 produced, 1000 consumed from the beginning, in order"

# Every Kafka codec, as kcat compresses it, served back.
for c in gzip snappy lz4 zstd; do
    seq 1 50 | sed "s/^/$c-/" | timeout 30 kcat -b "$BOOT" -P -t kcat-codecs -z "$c" || fail "kcat produce -z $c"
done
timeout 30 kcat -b "$BOOT" -C -t kcat-codecs -o beginning -e -q >"$work/codecs.out" || fail "kcat consume codecs"
cmp -s <(for c in gzip snappy lz4 zstd; do seq 1 50 | sed "s/^/$c-/"; done) "$work/codecs.out" ||
    fail "kcat codecs: consumed records differ"
echo "PASS kcat: gzip, snappy, lz4 and zstd batches stored as sent and served back (200 records)"

# Kafka -> Neo and Neo -> Kafka.
timeout 60 "$neo" consume -b "$NEO_AT" kcat-topic -c 1000 >"$work/neo.out" 2>/dev/null || fail "neo consume of kcat's records"
cmp -s <(seq 1 1000) "$work/neo.out" || fail "neo consume: records differ from what kcat produced"
timeout 60 "$neo" consume -b "$NEO_AT" kcat-codecs -c 200 >"$work/neo-codecs.out" 2>/dev/null || fail "neo consume codecs"
cmp -s "$work/codecs.out" "$work/neo-codecs.out" || fail "neo consume: compressed Kafka batches differ"
# Neo's producer compresses with Neo's lz4 framing; the Kafka side converts.
timeout 30 "$neo" topics create -b "$NEO_AT" neo-topic -c compression.type=lz4 >/dev/null || fail "neo topics create"
seq 1 300 | sed 's/^/neo-/' | timeout 60 "$neo" produce -b "$NEO_AT" neo-topic -K : -H src=neo 2>/dev/null || fail "neo produce"
timeout 60 kcat -b "$BOOT" -C -t neo-topic -o beginning -e -q -f '%s|%h\n' >"$work/from-neo.out" || fail "kcat consume of neo's records"
cmp -s <(seq 1 300 | sed 's/^/neo-/; s/$/|src=neo/') "$work/from-neo.out" || { head -3 "$work/from-neo.out"; fail "kcat: records from neo produce differ"; }
echo "PASS crossing formats: neo consume read kcat's 1000 records and 200 compressed ones; kcat read neo produce's 300 records (Neo lz4 batches, converted) with their headers"

"$py" "$here/kafka/confluent_check.py" "$BOOT" idempotent || fail "confluent-kafka idempotent producer"
"$py" "$here/kafka/confluent_check.py" "$BOOT" group || fail "confluent-kafka consumer group"
"$py" "$here/kafka/confluent_check.py" "$BOOT" restart || fail "confluent-kafka committed offsets"
"$py" "$here/kafka/aiokafka_check.py" "$BOOT" || fail "aiokafka"

# What Kafka clients wrote survives a broker restart.
stop_broker
start_broker
timeout 60 kcat -b "$BOOT" -C -t kcat-topic -o beginning -e -q >"$work/kcat2.out" || fail "kcat consume after restart"
cmp -s <(seq 1 1000) "$work/kcat2.out" || fail "after a restart kcat read $(wc -l <"$work/kcat2.out") records, not 1000"
groups="$(timeout 30 "$neo" groups -b "$NEO_AT" list 2>&1)" || fail "neo groups list"
grep -q cf-restart-g <<<"$groups" || { echo "$groups"; fail "the Kafka group's commits are not in the offsets log"; }
echo "PASS restart: the 1000 kcat records read back after SIGTERM and restart; Kafka groups' commits listed by neo groups"

# The admin endpoint counts the Kafka listener's work.
status="$("$py" -c 'import json,sys,urllib.request; print(json.dumps(json.load(urllib.request.urlopen(sys.argv[1]))["kafka"]))' "http://127.0.0.1:$APORT/status")"
requests="$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["counters"]["requests"])' "$status")"
[ "$requests" -gt 0 ] || { echo "$status"; fail "/status shows no Kafka requests"; }
echo "PASS admin /status: Kafka listener $status"
