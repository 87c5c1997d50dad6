// DCTCP ACK processing: the receive half of examples/dctcp.py.
//
// For a connection the control plane registered in `conns`, an ACK advances
// snd_una, counts acked and CE-marked bytes, grows the window (slow start or
// congestion avoidance) and, once per window of data, folds the marked
// fraction into alpha and cuts the window by cwnd * alpha / 2. The frame then
// goes to the application's AF_XDP socket.
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MSS 1448
#define DCTCP_SHIFT_G 4       /* alpha gain g = 1/16 */
#define DCTCP_MAX_ALPHA 1024  /* alpha in units of 1/1024 */
#define ECN_CE 3

#define max(a, b) ((a) > (b) ? (a) : (b))
#define min(a, b) ((a) < (b) ? (a) : (b))

struct flow_key {
	__be32 local_ip;
	__be32 remote_ip;
	__be16 local_port;
	__be16 remote_port;
};

struct conn {
	struct bpf_spin_lock lock;
	__u32 snd_una;
	__u32 snd_nxt;
	__u32 cwnd;
	__u32 ssthresh;
	__u32 alpha;
	__u32 acked_bytes;
	__u32 ce_bytes;
	__u32 window_end;
	__u8 dupacks;
	__u8 timeouts;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow_key);
	__type(value, struct conn);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} app_sockets SEC(".maps");

static __always_inline bool seq_after(__u32 a, __u32 b)
{
	return (__s32)(a - b) > 0;
}

static __always_inline bool seq_after_eq(__u32 a, __u32 b)
{
	return (__s32)(a - b) >= 0;
}

/* Once per window: fold the marked fraction into alpha, cut the window if marked. */
static __always_inline void end_of_window(struct conn *c)
{
	__u32 fraction = ((__u64)c->ce_bytes << 10) / max(c->acked_bytes, 1);
	c->alpha = c->alpha - (c->alpha >> DCTCP_SHIFT_G) + (fraction >> DCTCP_SHIFT_G);
	c->alpha = min(c->alpha, DCTCP_MAX_ALPHA);
	if (c->ce_bytes > 0) {
		__u32 cut = ((__u64)c->cwnd * c->alpha) >> 11;  /* cwnd * alpha / 2 */
		c->cwnd = max(c->cwnd - cut, MSS);
		c->ssthresh = c->cwnd;
	}
	c->acked_bytes = 0;
	c->ce_bytes = 0;
	c->window_end = c->snd_nxt;
}

static __always_inline void on_ack(struct conn *c, __u32 ack, bool ce)
{
	if (!seq_after(ack, c->snd_una)) {
		if (ack == c->snd_una && c->snd_nxt != c->snd_una)
			c->dupacks += 1;
		return;
	}
	__u32 acked = ack - c->snd_una;
	c->snd_una = ack;
	c->dupacks = 0;
	c->acked_bytes += acked;
	if (ce)
		c->ce_bytes += acked;
	if (c->cwnd < c->ssthresh)
		c->cwnd += acked;  /* slow start */
	else
		c->cwnd += max(MSS * acked / c->cwnd, 1);
	if (seq_after_eq(c->snd_una, c->window_end))
		end_of_window(c);
}

SEC("xdp")
int rx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	struct tcphdr *tcp = (void *)ip + ip->ihl * 4;
	if ((void *)(tcp + 1) > data_end || !tcp->ack)
		return XDP_PASS;
	struct flow_key key = {
		.local_ip = ip->daddr,
		.remote_ip = ip->saddr,
		.local_port = tcp->dest,
		.remote_port = tcp->source,
	};
	struct conn *c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return XDP_PASS;  /* not ours: the kernel stack keeps it */
	bool ce = (ip->tos & 3) == ECN_CE || tcp->ece;
	bpf_spin_lock(&c->lock);
	on_ack(c, bpf_ntohl(tcp->ack_seq), ce);
	bpf_spin_unlock(&c->lock);
	return bpf_redirect_map(&app_sockets, ctx->rx_queue_index, XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
