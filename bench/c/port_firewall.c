// Drop TCP and UDP traffic to blocked destination ports, configured as a
// bitmap in a map (examples/port_firewall.py).
//
// User space sets bits in `config.blocked` (one bit per port, 65536 bits as
// 1024 words); the program tests the bit for each frame's destination port.
// Per-CPU counters of dropped frames per protocol show the rule working.
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct config {
	__u8 enabled;
	__u64 blocked[1024];
};

struct drops {
	__u64 tcp;
	__u64 udp;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct drops);
} drops SEC(".maps");

static __always_inline bool is_blocked(struct config *cfg, __u16 port)
{
	__u64 word = cfg->blocked[port >> 6];
	return ((word >> (port & 63)) & 1) == 1;
}

SEC("xdp")
int firewall(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || !cfg->enabled)
		return XDP_PASS;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	void *l4 = (void *)ip + ip->ihl * 4;
	struct drops *d = bpf_map_lookup_elem(&drops, &zero);
	if (!d)
		return XDP_ABORTED;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;
		if ((void *)(tcp + 1) <= data_end && is_blocked(cfg, bpf_ntohs(tcp->dest))) {
			d->tcp += 1;
			return XDP_DROP;
		}
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = l4;
		if ((void *)(udp + 1) <= data_end && is_blocked(cfg, bpf_ntohs(udp->dest))) {
			d->udp += 1;
			return XDP_DROP;
		}
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
