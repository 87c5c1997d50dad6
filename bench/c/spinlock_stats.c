// Per-port packet-size statistics shared by all CPUs, updated under a spin
// lock (examples/spinlock_stats.py).
//
// Count, sum, minimum and maximum of UDP frame sizes per destination port must
// change together, so each update holds the entry's lock. The clock is read
// before taking the lock: the verifier allows no helper calls under it.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct port_stats {
	struct bpf_spin_lock lock;
	__u64 count;
	__u64 total_bytes;
	__u32 smallest;
	__u32 largest;
	__u64 last_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, struct port_stats);
} ports SEC(".maps");

SEC("xdp")
int measure(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	struct udphdr *udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	__u16 port = bpf_ntohs(udp->dest);
	struct port_stats *s = bpf_map_lookup_elem(&ports, &port);
	if (!s)
		return XDP_PASS;
	__u32 size = data_end - data;
	__u64 now = bpf_ktime_get_ns();
	bpf_spin_lock(&s->lock);
	if (s->count == 0 || size < s->smallest)
		s->smallest = size;
	s->largest = s->largest > size ? s->largest : size;
	s->count += 1;
	s->total_bytes += size;
	s->last_ns = now;
	bpf_spin_unlock(&s->lock);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
