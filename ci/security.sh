#!/usr/bin/env bash
# Security and observability against real peers: one `neo serve` with TLS 1.3
# on both TCP listeners and mutual TLS (a CA made here with openssl), Kafka
# over SASL_SSL (SCRAM), the Neo protocol requiring authentication, ACLs,
# the audit log and a produce quota; then:
#   openssl s_client (TLS 1.3 negotiated, TLS 1.2 refused, no client cert refused),
#   kcat over SASL_SSL (SCRAM-SHA-256/512 good and bad passwords),
#   ACLs through kcat and `neo` (produce, fetch, group join: denied, then
#   allowed after `neo acl add` on the running broker), each decision in the audit log,
#   the quota throttling a producer without losing a record,
#   certificate reload without restart,
#   promtool check metrics and the Grafana dashboard against the live /metrics.
# Prints one PASS line per check; fails on the first check that fails.
#
#   ci/security.sh [path/to/neo]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
neo="$(realpath "${1:-$root/target/release/neo}")"

work="$(mktemp -d)"
srv=""
stop_broker() {
    if [ -n "$srv" ]; then kill -TERM "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true; fi
    srv=""
}
trap 'stop_broker; rm -rf "$work"' EXIT
log="$work/serve.log"
fail() { echo "--- neo serve log:" >&2; tail -n 30 "$log" >&2; echo "FAIL $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- A CA, the broker's certificate, clients' certificates, a stranger's CA.
cd "$work"
cert() { # name CN issuer-prefix [san]
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
        -subj "/CN=$2" -out "$1.csr" 2>/dev/null
    printf '%s\n' "${4:-basicConstraints=CA:FALSE}" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 2 \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
for ca in ca stranger-ca; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$ca.key" \
        -subj "/CN=Neo test $ca" -days 2 -out "$ca.pem" 2>/dev/null
done
cert broker localhost ca "subjectAltName=IP:127.0.0.1,DNS:localhost"
cert broker2 localhost ca "subjectAltName=IP:127.0.0.1,DNS:localhost"
for u in admin alice bob; do cert "$u" "$u" ca; done
cert mallory mallory stranger-ca
cd - >/dev/null

# --- Users and ACLs, written before the broker starts (and one after).
data="$work/data"
for u in admin alice bob; do
    NEO_PASSWORD="$u-secret" "$neo" users add "$u" --data-dir "$data" >/dev/null
done
"$neo" users list --data-dir "$data" | sort | tr '\n' ' ' | grep -q "admin alice bob" || fail "neo users list"
grep -q "alice-secret" "$data/security/credentials.json" && fail "the credential file holds a password"
[ "$(stat -c %a "$data/security/credentials.json")" = 600 ] || fail "credential file mode is not 0600"
"$neo" acl add --data-dir "$data" --principal User:alice --operation Write --operation Read --topic orders >/dev/null
"$neo" acl add --data-dir "$data" --principal User:alice --operation Read --group g1 >/dev/null
"$neo" acl add --data-dir "$data" --deny --principal 'User:*' --operation Write --topic audit- --prefixed >/dev/null
n="$("$neo" acl list --data-dir "$data" | wc -l)"
[ "$n" = 4 ] || fail "neo acl list: $n ACLs, not 4"
echo "PASS users_and_acls: 3 users (salted SCRAM keys only, file mode 0600), 4 ACLs listed"

KPORT="$(free_port)" NPORT="$(free_port)" APORT="$(free_port)"
KAFKA="127.0.0.1:$KPORT" NEO_AT="127.0.0.1:$NPORT"
cp "$work/broker.pem" "$work/live.pem"; cp "$work/broker.key" "$work/live.key"
"$neo" serve --data-dir "$data" --listen "$NEO_AT" --admin-listen "127.0.0.1:$APORT" \
    --kafka-listen "$KAFKA" --kafka-security-protocol SASL_SSL \
    --tls-cert "$work/live.pem" --tls-key "$work/live.key" \
    --tls-client-ca "$work/ca.pem" --tls-require-client-cert \
    --sasl-mechanisms SCRAM-SHA-256,SCRAM-SHA-512 --neo-auth --authorizer --super-user User:admin \
    --audit-log "$work/audit.jsonl" --quota-produce-bytes 400000 >"$log" 2>&1 &
srv=$!
for _ in $(seq 100); do grep -q "neo serving" "$log" 2>/dev/null && break; sleep 0.05; done
grep -q "neo serving" "$log" || fail "neo serve did not start"

# --- openssl s_client against both listeners.
sclient() { timeout 10 openssl s_client -connect "$1" -CAfile "$work/ca.pem" "${@:2}" </dev/null 2>&1 || true; }
for at in "$KAFKA" "$NEO_AT"; do
    out="$(sclient "$at" -tls1_3 -cert "$work/alice.pem" -key "$work/alice.key")"
    grep -q "New, TLSv1.3, Cipher is TLS_" <<<"$out" && grep -q "Verify return code: 0 (ok)" <<<"$out" \
        || { echo "$out"; fail "openssl s_client $at: no verified TLS 1.3 session"; }
    out="$(sclient "$at" -tls1_2 -cert "$work/alice.pem" -key "$work/alice.key")"
    grep -q "New, TLSv1.2" <<<"$out" && { echo "$out"; fail "openssl s_client $at: TLS 1.2 was accepted"; }
    grep -q "New, (NONE), Cipher is (NONE)" <<<"$out" || { echo "$out"; fail "openssl s_client $at -tls1_2: no refusal seen"; }
    # Without a client certificate: the server refuses (TLS 1.3 alert 116).
    out="$( (printf 'x'; sleep 1) | timeout 10 openssl s_client -connect "$at" -CAfile "$work/ca.pem" -tls1_3 2>&1 || true)"
    grep -qi "certificate required" <<<"$out" || { echo "$out"; fail "openssl s_client $at without a client certificate was not refused"; }
    out="$( (printf 'x'; sleep 1) | timeout 10 openssl s_client -connect "$at" -CAfile "$work/ca.pem" -tls1_3 \
        -cert "$work/mallory.pem" -key "$work/mallory.key" 2>&1 || true)"
    grep -qiE "unknown ca|bad certificate|decrypt error" <<<"$out" || { echo "$out"; fail "openssl s_client $at with a stranger's certificate was not refused"; }
done
echo "PASS tls_openssl: TLS 1.3 negotiated and verified on the Kafka and Neo listeners; TLS 1.2, no client certificate and a foreign CA's certificate refused"

# --- kcat over SASL_SSL.
kc() { # user password mechanism args...
    timeout 30 kcat -b "$KAFKA" -X security.protocol=SASL_SSL -X "sasl.mechanisms=$3" \
        -X "sasl.username=$1" -X "sasl.password=$2" -X "ssl.ca.location=$work/ca.pem" \
        -X "ssl.certificate.location=$work/$1.pem" -X "ssl.key.location=$work/$1.key" \
        -X api.version.request=true "${@:4}"
}
NEO_PASSWORD=admin-secret "$neo" topics create orders -p 2 -b "$NEO_AT" --tls-ca "$work/ca.pem" \
    --tls-cert "$work/admin.pem" --tls-key "$work/admin.key" --user admin >/dev/null || fail "neo topics create as admin"
seq 1 200 | kc alice alice-secret SCRAM-SHA-256 -P -t orders >"$work/kc.out" 2>&1 || { cat "$work/kc.out"; fail "kcat SASL_SSL SCRAM-SHA-256 produce as alice"; }
kc alice alice-secret SCRAM-SHA-512 -C -t orders -o beginning -e -q >"$work/got" 2>"$work/kc.err" || { cat "$work/kc.err"; fail "kcat SCRAM-SHA-512 consume as alice"; }
[ "$(sort -n "$work/got" | tr '\n' ' ')" = "$(seq 1 200 | tr '\n' ' ')" ] || fail "kcat: alice read back $(wc -l <"$work/got") of 200"
if kc alice wrong-password SCRAM-SHA-256 -L >"$work/kc.out" 2>&1; then cat "$work/kc.out"; fail "kcat with a wrong password got metadata"; fi
grep -qi "authentication failed" "$work/kc.out" || { cat "$work/kc.out"; fail "kcat wrong password: no authentication failure reported"; }
echo "PASS kcat_sasl_ssl: 200 produced (SCRAM-SHA-256) and consumed (SCRAM-SHA-512) as alice over SASL_SSL; a wrong password fails authentication"

# --- ACLs: bob has none; produce, fetch and group join are denied.
if echo denied | kc bob bob-secret SCRAM-SHA-256 -P -t orders >"$work/kc.out" 2>&1; then :; fi
grep -qi "authorization" "$work/kc.out" || { cat "$work/kc.out"; fail "kcat produce as bob was not refused for authorization"; }
if kc bob bob-secret SCRAM-SHA-256 -C -t orders -o beginning -e -q >"$work/kc.out" 2>&1; then :; fi
grep -qi "authorization" "$work/kc.out" || { cat "$work/kc.out"; fail "kcat consume as bob was not refused for authorization"; }
if kc bob bob-secret SCRAM-SHA-256 -G bobs orders -o beginning -e -q >"$work/kc.out" 2>&1; then :; fi
grep -qi "authorization" "$work/kc.out" || { cat "$work/kc.out"; fail "kcat group join as bob was not refused for authorization"; }
# alice may join g1 but not g2.
kc alice alice-secret SCRAM-SHA-256 -G g1 orders -o beginning -e -q -c 200 >"$work/got" 2>"$work/kc.err" || { cat "$work/kc.err"; fail "kcat group g1 as alice"; }
[ "$(wc -l <"$work/got")" = 200 ] || fail "kcat group g1: $(wc -l <"$work/got") of 200"
if kc alice alice-secret SCRAM-SHA-256 -G g2 orders -o beginning -e -q >"$work/kc.out" 2>&1; then :; fi
grep -qi "authorization" "$work/kc.out" || { cat "$work/kc.out"; fail "kcat group g2 as alice was not refused"; }
# Grant bob on the running broker: allowed within the reload interval.
"$neo" acl add --data-dir "$data" --principal User:bob --operation Write --operation Read --topic orders >/dev/null
"$neo" acl add --data-dir "$data" --principal User:bob --operation Read --group bobs >/dev/null
sleep 1.5
echo from-bob | kc bob bob-secret SCRAM-SHA-256 -P -t orders 2>"$work/kc.err" || { cat "$work/kc.err"; fail "kcat produce as bob after the grant"; }
kc bob bob-secret SCRAM-SHA-256 -G bobs orders -o beginning -e -q -c 201 >"$work/got" 2>"$work/kc.err" || { cat "$work/kc.err"; fail "kcat group join as bob after the grant"; }
grep -q "^from-bob$" "$work/got" || fail "bob did not read back his record"
echo "PASS acl_kafka: produce, fetch and group join denied for bob, group g2 for alice; after neo acl add (no restart) bob produced and consumed in group bobs"

# --- The Neo protocol: authentication required, then ACLs.
neo_c() { "$neo" -b "$NEO_AT" --tls-ca "$work/ca.pem" --tls-cert "$work/$1.pem" --tls-key "$work/$1.key" "${@:2}"; }
# A client certificate alone authenticates (principal = its CN).
neo_c alice consume orders -c 3 >/dev/null 2>"$work/neo.err" || { cat "$work/neo.err"; fail "neo consume as alice (client certificate)"; }
if printf 'x\n' | neo_c alice produce audit-log >/dev/null 2>"$work/neo.err"; then fail "neo produce to a topic alice has no ACL for succeeded"; fi
grep -q "not authorized" "$work/neo.err" || { cat "$work/neo.err"; fail "neo produce: no 'not authorized'"; }
printf 'n1\nn2\n' | NEO_PASSWORD=alice-secret neo_c alice produce orders --user alice >/dev/null 2>"$work/neo.err" || { cat "$work/neo.err"; fail "neo produce as alice with SCRAM"; }
if printf 'x\n' | NEO_PASSWORD=nope neo_c alice produce orders --user alice >/dev/null 2>"$work/neo.err"; then fail "neo produce with a wrong password succeeded"; fi
grep -q "authentication" "$work/neo.err" || { cat "$work/neo.err"; fail "neo wrong password: no authentication error"; }
echo "PASS acl_neo: over TLS the client certificate authenticates alice (consume allowed, produce to another topic not authorized); SCRAM over Neo RPC with a good password produces, a wrong one is refused"

# --- The audit log has every kind of decision.
sleep 0.3
audit="$work/audit.jsonl"
python3 - "$audit" <<'PY' || fail "audit log"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
def has(**kv):
    return any(all(l.get(k) == v for k, v in kv.items()) for l in lines)
checks = {
    "bob denied on Topic:orders": has(event="authorize", principal="User:bob", resource="Topic:orders", allowed=False),
    "alice denied on Topic:audit-log (neo)": has(event="authorize", listener="neo", principal="User:alice", resource="Topic:audit-log", allowed=False),
    "bob denied Read Group:bobs": has(event="authorize", principal="User:bob", resource="Group:bobs", allowed=False),
    "bob allowed Write Topic:orders": has(event="authorize", principal="User:bob", operation="Write", resource="Topic:orders", allowed=True),
    "alice allowed Read Topic:orders": has(event="authorize", principal="User:alice", operation="Read", resource="Topic:orders", allowed=True),
    "alice denied Read Group:g2": has(event="authorize", principal="User:alice", resource="Group:g2", allowed=False),
    "SCRAM failure": has(event="authenticate", outcome="failure", mechanism="SCRAM-SHA-256"),
    "SCRAM-SHA-512 success": has(event="authenticate", outcome="success", mechanism="SCRAM-SHA-512", principal="User:alice"),
    "certificate on neo": has(event="authenticate", listener="neo", mechanism="TLS client certificate", principal="User:alice"),
}
bad = [k for k, ok in checks.items() if not ok]
if bad:
    print("missing from the audit log:", bad); sys.exit(1)
print(f"PASS audit_log: {len(lines)} JSON lines; " + "; ".join(checks))
PY

# --- Quota: 400 kB/s per principal; a 1.6 MB burst is throttled, not dropped.
head -c 1200000 /dev/urandom | base64 -w 1000 >"$work/big"   # 1600 lines of 1000 characters
kc alice alice-secret SCRAM-SHA-256 -P -t orders -X linger.ms=5 <"$work/big" 2>"$work/kc.err" || { cat "$work/kc.err"; fail "kcat produce under quota"; }
before="$(wc -l <"$work/got")"
kc alice alice-secret SCRAM-SHA-256 -C -t orders -o beginning -e -q >"$work/all" 2>/dev/null || fail "kcat consume after the quota"
got_big="$(grep -c -x -F -f "$work/big" "$work/all" || true)"
[ "$got_big" = 1600 ] || fail "quota: $got_big of 1600 records read back"
metrics="$(curl -sf "127.0.0.1:$APORT/metrics")" || fail "GET /metrics"
throttle="$(awk '$1=="neo_quota_throttle_seconds_total{kind=\"produce\"}" {print $2}' <<<"$metrics")"
awk -v t="${throttle:-0}" 'BEGIN{exit !(t>0)}' || fail "quota: no produce throttle recorded (${throttle:-none})"
echo "PASS quota: 1600 records (1.6 MB of values) produced at a 400 kB/s quota, throttled ${throttle}s in total, all read back (no disconnect, nothing lost; $before before)"

# --- Certificate reload without restart: a new pair is served to new handshakes.
serial_of() { sclient "$KAFKA" -tls1_3 -cert "$work/alice.pem" -key "$work/alice.key" | openssl x509 -noout -serial 2>/dev/null; }
old="$(serial_of)"; want="$(openssl x509 -noout -serial -in "$work/broker2.pem")"
echo "not a certificate" >"$work/live.pem"
sleep 1.2
[ "$(serial_of)" = "$old" ] || fail "a broken certificate file replaced the served one"
cp "$work/broker2.key" "$work/live.key"; cp "$work/broker2.pem" "$work/live.pem"
sleep 1.2
new="$(serial_of)"
[ "$new" = "$want" ] && [ "$new" != "$old" ] || fail "certificate reload: served $new, want $want (old $old)"
echo "PASS tls_reload: a broken file kept the old certificate; the new pair was served without a restart ($old -> $new)"

# --- /metrics: promtool and the dashboard.
curl -sf "127.0.0.1:$APORT/metrics" >"$work/metrics.txt" || fail "GET /metrics"
promtool check metrics <"$work/metrics.txt" || fail "promtool check metrics"
python3 "$here/check_metrics.py" "$work/metrics.txt" "$root/docs/grafana/neo-dashboard.json" || fail "dashboard metrics"
grep -q 'neo_authorization_decisions_total{listener="kafka",result="denied"}' "$work/metrics.txt" || fail "no denial counted in /metrics"
[ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$APORT/ready")" = 200 ] || fail "/ready is not 200"
echo "PASS metrics: promtool check metrics is clean on $(grep -c '^# TYPE' "$work/metrics.txt") families; every dashboard query's metric is exported; /ready 200"
stop_broker
