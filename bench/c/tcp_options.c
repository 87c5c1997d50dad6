// Walk the TCP options of each segment and record the flow's MSS, window
// scale, SACK permission and timestamps in an LRU table.
//
// The walk takes at most MAX_OPTIONS steps (the verifier needs a bound): EOL
// ends it, NOP is one byte, every other option carries its length, and a
// malformed length stops it.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_OPTIONS 10
#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCPOPT_WSCALE 3
#define TCPOPT_SACK_PERM 4
#define TCPOPT_TIMESTAMP 8

struct tcp_opt {
	__u8 kind;
	__u8 len;
} __attribute__((packed));

struct mss_opt {
	__u8 kind;
	__u8 len;
	__be16 value;
} __attribute__((packed));

struct wscale_opt {
	__u8 kind;
	__u8 len;
	__u8 shift;
} __attribute__((packed));

struct ts_opt {
	__u8 kind;
	__u8 len;
	__be32 value;
	__be32 echo;
} __attribute__((packed));

struct flow_key {
	__be32 src;
	__be32 dst;
	__be16 sport;
	__be16 dport;
};

struct options {
	__u16 mss;
	__u8 wscale;
	__u8 sack_ok;
	__u32 ts_value;
	__u32 ts_echo;
	__u8 options_seen;
	__u8 malformed;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct flow_key);
	__type(value, struct options);
} flows SEC(".maps");

SEC("xdp")
int parse_options(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	__u32 start = sizeof(*eth) + ip->ihl * 4;
	struct tcphdr *tcp = data + start;
	if ((void *)(tcp + 1) > data_end || tcp->doff * 4 <= sizeof(*tcp))
		return XDP_PASS;
	struct options opts = {};
	__u32 off = start + sizeof(*tcp);
	__u32 end = start + tcp->doff * 4;
	for (int i = 0; i < MAX_OPTIONS; i++) {
		if (off >= end)
			break;
		struct tcp_opt *opt = data + off;
		if ((void *)(opt + 1) > data_end)
			break;
		if (opt->kind == TCPOPT_EOL)
			break;
		if (opt->kind == TCPOPT_NOP) {
			off += 1;
			continue;
		}
		if (opt->len < 2 || off + opt->len > end) {
			opts.malformed = 1;
			break;
		}
		opts.options_seen += 1;
		if (opt->kind == TCPOPT_MSS && opt->len == sizeof(struct mss_opt)) {
			struct mss_opt *m = data + off;
			if ((void *)(m + 1) <= data_end)
				opts.mss = bpf_ntohs(m->value);
		} else if (opt->kind == TCPOPT_WSCALE && opt->len == sizeof(struct wscale_opt)) {
			struct wscale_opt *w = data + off;
			if ((void *)(w + 1) <= data_end)
				opts.wscale = w->shift < 14 ? w->shift : 14;
		} else if (opt->kind == TCPOPT_SACK_PERM) {
			opts.sack_ok = 1;
		} else if (opt->kind == TCPOPT_TIMESTAMP && opt->len == sizeof(struct ts_opt)) {
			struct ts_opt *ts = data + off;
			if ((void *)(ts + 1) <= data_end) {
				opts.ts_value = bpf_ntohl(ts->value);
				opts.ts_echo = bpf_ntohl(ts->echo);
			}
		}
		off += opt->len;
	}
	struct flow_key key = {
		.src = ip->saddr,
		.dst = ip->daddr,
		.sport = tcp->source,
		.dport = tcp->dest,
	};
	bpf_map_update_elem(&flows, &key, &opts, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
