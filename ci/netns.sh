# Test hosts in network namespaces, for the backends that need a real link.
# Sourced. Every function is idempotent; `netns_down` removes everything and is
# installed as an EXIT trap by `netns_up`, so a failing test cleans up too.
#
#   direct:  neo-a [neoa0 10.77.0.1/24] <--veth--> [neob0 10.77.0.2/24] neo-b
#   bridged: neo-a [neoa0 10.77.0.1/24] <-> neo-m [br0: ma0, mb0] <-> [neob0 10.77.0.2/24] neo-b
#            (nftables in neo-m's bridge forward hook can drop a share of UDP)

NEO_NS_A=neo-a NEO_NS_B=neo-b NEO_NS_M=neo-m
NEO_IP_A=10.77.0.1 NEO_IP_B=10.77.0.2
NEO_IF_A=neoa0 NEO_IF_B=neob0

netns_down() {
    for ns in "$NEO_NS_A" "$NEO_NS_B" "$NEO_NS_M"; do
        if ip netns list | grep -qw "$ns"; then
            ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
    ip link del "$NEO_IF_A" 2>/dev/null || true
}

# netns_up direct|bridged
netns_up() {
    local shape="$1"
    netns_down
    trap netns_down EXIT
    ip netns add "$NEO_NS_A"
    ip netns add "$NEO_NS_B"
    if [ "$shape" = direct ]; then
        ip link add "$NEO_IF_A" netns "$NEO_NS_A" type veth peer name "$NEO_IF_B" netns "$NEO_NS_B"
    else
        ip netns add "$NEO_NS_M"
        ip link add "$NEO_IF_A" netns "$NEO_NS_A" type veth peer name ma0 netns "$NEO_NS_M"
        ip link add "$NEO_IF_B" netns "$NEO_NS_B" type veth peer name mb0 netns "$NEO_NS_M"
        ip -n "$NEO_NS_M" link add br0 type bridge
        for l in ma0 mb0; do
            ip -n "$NEO_NS_M" link set "$l" master br0
            ip -n "$NEO_NS_M" link set "$l" up
        done
        ip -n "$NEO_NS_M" link set br0 up
    fi
    ip -n "$NEO_NS_A" addr add "$NEO_IP_A/24" dev "$NEO_IF_A"
    ip -n "$NEO_NS_B" addr add "$NEO_IP_B/24" dev "$NEO_IF_B"
    for pair in "$NEO_NS_A:$NEO_IF_A" "$NEO_NS_B:$NEO_IF_B"; do
        ip -n "${pair%%:*}" link set lo up
        ip -n "${pair%%:*}" link set "${pair#*:}" up
    done
}

# netns_drop PERCENT PORT: in the bridged shape, drop PERCENT% of UDP packets
# to or from PORT in each direction (nftables numgen; this kernel has no netem).
netns_drop() {
    local pct="$1" port="$2"
    ip netns exec "$NEO_NS_M" nft -f - <<NFT
table bridge neo_loss {
    chain forward {
        type filter hook forward priority 0; policy accept;
        udp dport $port numgen random mod 100 < $pct counter drop
        udp sport $port numgen random mod 100 < $pct counter drop
    }
}
NFT
}

# netns_drop_counters: packets the loss rules dropped so far.
netns_drop_counters() {
    ip netns exec "$NEO_NS_M" nft list table bridge neo_loss | grep -o 'packets [0-9]*' | awk '{s+=$2} END {print s+0}'
}

in_a() { ip netns exec "$NEO_NS_A" "$@"; }
in_b() { ip netns exec "$NEO_NS_B" "$@"; }

# require_root NAME WHY: exits the calling script — failing in CI, skipping
# loudly elsewhere — unless it runs as root.
require_root() {
    [ "$(id -u)" = 0 ] && return 0
    if [ "${CI:-}" = true ]; then echo "$1: CI must run as root" >&2; exit 1; fi
    echo "SKIPPED $1: needs root ($2)" >&2
    exit 0
}
