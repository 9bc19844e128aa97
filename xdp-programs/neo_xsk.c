// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
// Neo's XDP program for the AF_XDP backend.
//
// Redirects IPv4/UDP packets whose destination port is Neo's (config[0]) to
// the AF_XDP socket bound to the receiving queue (xsks[queue]); everything
// else — ARP, other ports, IPv6, fragments — passes to the kernel, which keeps
// answering ARP and serving other traffic on the interface. Without a socket
// on the queue the packet passes too (bpf_redirect_map's fallback action).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, 64);
    __type(key, __u32);
    __type(value, __u32);
} xsks SEC(".maps");

// config[0]: Neo's UDP port, host byte order.
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} config SEC(".maps");

SEC("xdp")
int neo_xsk(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
        return XDP_PASS;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP || ip->ihl < 5)
        return XDP_PASS;
    // Fragments go to the kernel: the engine never sends them.
    if (ip->frag_off & bpf_htons(0x3fff))
        return XDP_PASS;
    struct udphdr *udp = (void *)ip + ip->ihl * 4;
    if ((void *)(udp + 1) > end)
        return XDP_PASS;
    __u32 key = 0;
    __u32 *port = bpf_map_lookup_elem(&config, &key);
    if (!port || udp->dest != bpf_htons((__u16)*port))
        return XDP_PASS;
    return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
