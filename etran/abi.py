"""The kernel's BPF ABI, as etran uses it: one table for every stage.

Helper ids and names, XDP actions, the `struct xdp_md` layout, map types and
program types are numbers fixed by the kernel's uapi header
(include/uapi/linux/bpf.h). The lowering emits them, the disassembler names
them, the interpreter and the runtime interpret them and the command line prints
them; all of them read them here.
"""
from __future__ import annotations

import struct

# ---- helpers ----------------------------------------------------------------------------------

# Helper ids are positions in the kernel's __BPF_FUNC_MAPPER (include/uapi/linux/bpf.h), 0 = unspec.
HELPERS: tuple[str, ...] = tuple("""
unspec map_lookup_elem map_update_elem map_delete_elem probe_read ktime_get_ns trace_printk
get_prandom_u32 get_smp_processor_id skb_store_bytes l3_csum_replace l4_csum_replace tail_call
clone_redirect get_current_pid_tgid get_current_uid_gid get_current_comm get_cgroup_classid
skb_vlan_push skb_vlan_pop skb_get_tunnel_key skb_set_tunnel_key perf_event_read redirect
get_route_realm perf_event_output skb_load_bytes get_stackid csum_diff skb_get_tunnel_opt
skb_set_tunnel_opt skb_change_proto skb_change_type skb_under_cgroup get_hash_recalc
get_current_task probe_write_user current_task_under_cgroup skb_change_tail skb_pull_data
csum_update set_hash_invalid get_numa_node_id skb_change_head xdp_adjust_head probe_read_str
get_socket_cookie get_socket_uid set_hash setsockopt skb_adjust_room redirect_map sk_redirect_map
sock_map_update xdp_adjust_meta perf_event_read_value perf_prog_read_value getsockopt
override_return sock_ops_cb_flags_set msg_redirect_map msg_apply_bytes msg_cork_bytes msg_pull_data
bind xdp_adjust_tail skb_get_xfrm_state get_stack skb_load_bytes_relative fib_lookup
sock_hash_update msg_redirect_hash sk_redirect_hash lwt_push_encap lwt_seg6_store_bytes
lwt_seg6_adjust_srh lwt_seg6_action rc_repeat rc_keydown skb_cgroup_id get_current_cgroup_id
get_local_storage sk_select_reuseport skb_ancestor_cgroup_id sk_lookup_tcp sk_lookup_udp sk_release
map_push_elem map_pop_elem map_peek_elem msg_push_data msg_pop_data rc_pointer_rel spin_lock
spin_unlock sk_fullsock tcp_sock skb_ecn_set_ce get_listener_sock skc_lookup_tcp tcp_check_syncookie
sysctl_get_name sysctl_get_current_value sysctl_get_new_value sysctl_set_new_value strtol strtoul
sk_storage_get sk_storage_delete send_signal tcp_gen_syncookie skb_output probe_read_user
probe_read_kernel probe_read_user_str probe_read_kernel_str tcp_send_ack send_signal_thread
jiffies64 read_branch_records get_ns_current_pid_tgid xdp_output get_netns_cookie
get_current_ancestor_cgroup_id sk_assign ktime_get_boot_ns seq_printf seq_write sk_cgroup_id
sk_ancestor_cgroup_id ringbuf_output ringbuf_reserve ringbuf_submit ringbuf_discard ringbuf_query
csum_level skc_to_tcp6_sock skc_to_tcp_sock skc_to_tcp_timewait_sock skc_to_tcp_request_sock
skc_to_udp6_sock get_task_stack load_hdr_opt store_hdr_opt reserve_hdr_opt inode_storage_get
inode_storage_delete d_path copy_from_user snprintf_btf seq_printf_btf skb_cgroup_classid
redirect_neigh per_cpu_ptr this_cpu_ptr redirect_peer task_storage_get task_storage_delete
get_current_task_btf bprm_opts_set ktime_get_coarse_ns ima_inode_hash sock_from_file check_mtu
for_each_map_elem snprintf sys_bpf btf_find_by_name_kind sys_close timer_init timer_set_callback
timer_start timer_cancel get_func_ip get_attach_cookie task_pt_regs get_branch_snapshot
trace_vprintk skc_to_unix_sock kallsyms_lookup_name find_vma loop strncmp get_func_arg get_func_ret
get_func_arg_cnt get_retval set_retval xdp_get_buff_len xdp_load_bytes xdp_store_bytes
copy_from_user_task skb_set_tstamp ima_file_hash kptr_xchg map_lookup_percpu_elem skc_to_mptcp_sock
dynptr_from_mem ringbuf_reserve_dynptr ringbuf_submit_dynptr ringbuf_discard_dynptr dynptr_read
dynptr_write dynptr_data tcp_raw_gen_syncookie_ipv4 tcp_raw_gen_syncookie_ipv6
tcp_raw_check_syncookie_ipv4 tcp_raw_check_syncookie_ipv6 ktime_get_tai_ns user_ringbuf_drain
cgrp_storage_get cgrp_storage_delete
""".split())


def helper_id(name: str) -> int:
    """The id of helper `bpf_<name>` (KeyError for a name the table does not have)."""
    return _HELPER_IDS[name]


def helper_name(helper_id: int) -> str:
    """``bpf_<name>`` for a known helper id, ``unknown`` as the kernel prints otherwise."""
    return f"bpf_{HELPERS[helper_id]}" if 0 < helper_id < len(HELPERS) else "unknown"


_HELPER_IDS = {name: i for i, name in enumerate(HELPERS)}

# helper id -> number of arguments, for the helpers etran emits (the kernel's
# get_call_summary(): the registers a call reads). Unlisted: assume all five.
HELPER_ARGS = {
    1: 2, 2: 4, 3: 2, 5: 0, 7: 0, 8: 0, 28: 5, 44: 2, 51: 3, 65: 2, 87: 3, 88: 2, 89: 2,
    93: 1, 94: 1, 130: 4, 131: 3, 132: 2, 133: 2, 169: 3, 170: 2, 171: 3, 172: 1, 189: 4,
    190: 4, 195: 3,
}


def helper_reads(helper: int) -> int:
    """The argument registers a call of `helper` reads, as a bit mask of r1-r5."""
    return ((1 << (HELPER_ARGS.get(helper, 5) + 1)) - 1) & ~1

# The helpers the lowering calls, by id.
MAP_LOOKUP_ELEM = helper_id("map_lookup_elem")
MAP_UPDATE_ELEM = helper_id("map_update_elem")
MAP_DELETE_ELEM = helper_id("map_delete_elem")
KTIME_GET_NS = helper_id("ktime_get_ns")
GET_PRANDOM_U32 = helper_id("get_prandom_u32")
GET_SMP_PROCESSOR_ID = helper_id("get_smp_processor_id")
XDP_ADJUST_HEAD = helper_id("xdp_adjust_head")
REDIRECT_MAP = helper_id("redirect_map")
XDP_ADJUST_TAIL = helper_id("xdp_adjust_tail")
CSUM_DIFF = helper_id("csum_diff")
XDP_LOAD_BYTES = helper_id("xdp_load_bytes")
MAP_PUSH_ELEM = helper_id("map_push_elem")
MAP_POP_ELEM = helper_id("map_pop_elem")
SPIN_LOCK = helper_id("spin_lock")
SPIN_UNLOCK = helper_id("spin_unlock")
RINGBUF_OUTPUT = helper_id("ringbuf_output")
TIMER_INIT = helper_id("timer_init")
TIMER_SET_CALLBACK = helper_id("timer_set_callback")
TIMER_START = helper_id("timer_start")
TIMER_CANCEL = helper_id("timer_cancel")

# map update flags
BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK = 0, 1, 2, 4

CLOCK_MONOTONIC = 1  # bpf_timer_init's clock

MAX_BPF_STACK = 512  # bytes of stack a program may use

# ---- XDP ----------------------------------------------------------------------------------------

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = range(5)
XDP_ACTIONS: dict[str, int] = {"XDP_ABORTED": XDP_ABORTED, "XDP_DROP": XDP_DROP,
                               "XDP_PASS": XDP_PASS, "XDP_TX": XDP_TX,
                               "XDP_REDIRECT": XDP_REDIRECT}
XDP_ACTION_NAMES: dict[int, str] = {v: k for k, v in XDP_ACTIONS.items()}

# attaching: enum bpf_attach_type's BPF_XDP and the XDP_FLAGS_* of if_link.h, by mode name
BPF_XDP = 37
XDP_FLAGS_SKB_MODE, XDP_FLAGS_DRV_MODE = 2, 4
XDP_MODES: dict[str, int] = {"native": XDP_FLAGS_DRV_MODE, "generic": XDP_FLAGS_SKB_MODE}

# struct xdp_md: six u32 fields
XDP_MD = struct.Struct("<6I")
XDP_MD_DATA, XDP_MD_DATA_END, XDP_MD_DATA_META = 0, 4, 8
XDP_MD_INGRESS_IFINDEX, XDP_MD_RX_QUEUE_INDEX, XDP_MD_EGRESS_IFINDEX = 12, 16, 20

ETH_HLEN = 14  # the kernel's test runs need at least an Ethernet header
LOOPBACK_IFINDEX = 1  # loopback's interface index, the same in every network namespace

# Frame geometry of an XDP test run on this kernel: 4 KiB page, 256 bytes of
# headroom of which struct xdp_frame takes 40, and skb_shared_info (320 bytes,
# cache-aligned) reserved at the end. Measured by tests/kernel/test_resize_limits.py.
TEST_RUN_PAGE = 4096
TEST_RUN_HEADROOM = 256
XDP_FRAME_SIZE = 40
SHARED_INFO = 320
MAX_TEST_FRAME = TEST_RUN_PAGE - TEST_RUN_HEADROOM - SHARED_INFO

# ---- program and map types ----------------------------------------------------------------------

PROG_TYPE_XDP = 6

# enum bpf_map_type
MAP_TYPE_NAMES: dict[int, str] = {
    0: "unspec", 1: "hash", 2: "array", 3: "prog_array", 4: "perf_event_array",
    5: "percpu_hash", 6: "percpu_array", 7: "stack_trace", 8: "cgroup_array", 9: "lru_hash",
    10: "lru_percpu_hash", 11: "lpm_trie", 12: "array_of_maps", 13: "hash_of_maps",
    14: "devmap", 15: "sockmap", 16: "cpumap", 17: "xskmap", 18: "sockhash",
    19: "cgroup_storage", 20: "reuseport_sockarray", 21: "percpu_cgroup_storage", 22: "queue",
    23: "stack", 24: "sk_storage", 25: "devmap_hash", 26: "struct_ops", 27: "ringbuf",
    28: "inode_storage", 29: "task_storage", 30: "bloom_filter", 31: "user_ringbuf",
    32: "cgrp_storage", 33: "arena",
}
MAP_TYPES: dict[str, int] = {name: number for number, name in MAP_TYPE_NAMES.items()}

PERCPU_MAP_TYPES = frozenset({5, 6, 10, 21})
HASH_LIKE_MAP_TYPES = frozenset({1, 5, 9, 10, 11, 13, 18, 25})
ARRAY_LIKE_MAP_TYPES = frozenset({2, 6})
QUEUE_LIKE_MAP_TYPES = frozenset({22, 23})
# devmap, cpumap, xskmap: slots 0..max_entries-1 holding kernel objects (a device, a CPU, a
# socket); a slot is empty until set and is emptied by deleting it
SLOT_MAP_TYPES = frozenset({14, 16, 17})
# Maps whose entries `etran status` lists: hash, array and their per-CPU and LRU kinds.
LISTABLE_MAP_TYPES = frozenset(MAP_TYPES[name] for name in (
    "hash", "array", "percpu_hash", "percpu_array", "lru_hash", "lru_percpu_hash"))
RINGBUF_MAP_TYPE = MAP_TYPES["ringbuf"]
