// Per-flow counters in an LRU table, plus per-CPU totals, for every IPv4 frame
// (examples/flow_stats.py).
//
// Flows are keyed by the 5-tuple (ports are zero for protocols without them).
// The LRU table keeps the most recently active flows when it fills up; the
// per-CPU totals need no atomics because each CPU updates its own copy.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct five_tuple {
	__be32 src;
	__be32 dst;
	__be16 sport;
	__be16 dport;
	__u8 protocol;
};

struct flow_counters {
	__u64 packets;
	__u64 bytes;
	__u64 first_ns;
	__u64 last_ns;
	__u32 max_size;
};

struct totals {
	__u64 packets;
	__u64 bytes;
	__u64 new_flows;
	__u64 non_ip;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct five_tuple);
	__type(value, struct flow_counters);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct totals);
} totals SEC(".maps");

SEC("xdp")
int account(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	__u32 zero = 0;
	struct totals *t = bpf_map_lookup_elem(&totals, &zero);
	if (!t)
		return XDP_PASS;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) {
		t->non_ip += 1;
		return XDP_PASS;
	}
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end) {
		t->non_ip += 1;
		return XDP_PASS;
	}
	struct five_tuple key;
	__builtin_memset(&key, 0, sizeof(key));  /* the padding is part of the key */
	key.src = ip->saddr;
	key.dst = ip->daddr;
	key.protocol = ip->protocol;
	void *l4 = (void *)ip + ip->ihl * 4;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;
		if ((void *)(tcp + 1) <= data_end) {
			key.sport = tcp->source;
			key.dport = tcp->dest;
		}
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = l4;
		if ((void *)(udp + 1) <= data_end) {
			key.sport = udp->source;
			key.dport = udp->dest;
		}
	}
	__u32 size = data_end - data;
	__u64 now = bpf_ktime_get_ns();
	t->packets += 1;
	t->bytes += size;
	struct flow_counters *f = bpf_map_lookup_elem(&flows, &key);
	if (!f) {
		t->new_flows += 1;
		struct flow_counters fresh = {
			.packets = 1,
			.bytes = size,
			.first_ns = now,
			.last_ns = now,
			.max_size = size,
		};
		bpf_map_update_elem(&flows, &key, &fresh, BPF_ANY);
		return XDP_PASS;
	}
	f->packets += 1;
	f->bytes += size;
	f->last_ns = now;
	f->max_size = f->max_size > size ? f->max_size : size;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
