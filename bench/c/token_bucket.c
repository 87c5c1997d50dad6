// A token bucket per source address, in an LRU hash so that the busiest
// sources keep their buckets when the table fills up.
//
// Tokens are bytes. Each frame first refills its source's bucket for the time
// since the last frame (at `rate` bytes per second, at most `burst`), then
// pays its length or is dropped. The elapsed time is capped at one second so
// that elapsed * rate cannot overflow. A new source gets a full bucket with
// the default rate.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define NSEC_PER_SEC 1000000000ULL
#define DEFAULT_RATE 12500000ULL  /* bytes per second: 100 Mbit/s */
#define DEFAULT_BURST 65536ULL

struct bucket {
	__u64 tokens;
	__u64 last_ns;
	__u64 rate;   /* bytes per second */
	__u64 burst;
	__u64 passed;
	__u64 dropped;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __be32);
	__type(value, struct bucket);
} buckets SEC(".maps");

SEC("xdp")
int police(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	__be32 src = ip->saddr;
	__u64 size = data_end - data;
	__u64 now = bpf_ktime_get_ns();
	struct bucket *b = bpf_map_lookup_elem(&buckets, &src);
	if (!b) {
		struct bucket fresh = {
			.tokens = DEFAULT_BURST - size,
			.last_ns = now,
			.rate = DEFAULT_RATE,
			.burst = DEFAULT_BURST,
			.passed = 1,
		};
		bpf_map_update_elem(&buckets, &src, &fresh, BPF_ANY);
		return XDP_PASS;
	}
	__u64 elapsed = now - b->last_ns;
	if (elapsed > NSEC_PER_SEC)
		elapsed = NSEC_PER_SEC;
	b->last_ns = now;
	__u64 tokens = b->tokens + elapsed * b->rate / NSEC_PER_SEC;
	if (tokens > b->burst)
		tokens = b->burst;
	if (tokens < size) {
		b->tokens = tokens;
		b->dropped += 1;
		return XDP_DROP;
	}
	b->tokens = tokens - size;
	b->passed += 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
