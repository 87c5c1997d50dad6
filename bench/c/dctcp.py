"""DCTCP ACK processing: the receive half of examples/dctcp.py.

For a connection the control plane registered in `conns`, an ACK advances
snd_una, counts acked and CE-marked bytes, grows the window (slow start or
congestion avoidance) and, once per window of data, folds the marked fraction
into alpha and cuts the window by cwnd * alpha / 2. The frame then goes to the
application's AF_XDP socket. The twin of dctcp.c, statement for statement.
"""
from etran.dsl import *
from etran.bpf_templates.headers import (Eth, IPv4, Tcp, ECN_CE, ETH_P_IP, IPPROTO_TCP,
                                         TCP_ACK, TCP_ECE)

MSS = 1448
DCTCP_SHIFT_G = 4            # alpha gain g = 1/16
DCTCP_MAX_ALPHA = 1024       # alpha in units of 1/1024


class FlowKey(Struct):
    local_ip: be32
    remote_ip: be32
    local_port: be16
    remote_port: be16


class Conn(Struct):
    lock: SpinLock
    snd_una: u32
    snd_nxt: u32
    cwnd: u32
    ssthresh: u32
    alpha: u32
    acked_bytes: u32
    ce_bytes: u32
    window_end: u32
    dupacks: u8
    timeouts: u8


conns = HashMap(FlowKey, Conn, max_entries=65536)
app_sockets = XskMap(max_entries=64)


def end_of_window(c: Conn) -> None:
    """Once per window: fold the marked fraction into alpha, cut the window if marked."""
    fraction = u32((u64(c.ce_bytes) << 10) // max(c.acked_bytes, 1))
    c.alpha = c.alpha - (c.alpha >> DCTCP_SHIFT_G) + (fraction >> DCTCP_SHIFT_G)
    c.alpha = min(c.alpha, DCTCP_MAX_ALPHA)
    if c.ce_bytes > 0:
        cut = u32((u64(c.cwnd) * c.alpha) >> 11)     # cwnd * alpha / 2
        c.cwnd = max(c.cwnd - cut, MSS)
        c.ssthresh = c.cwnd
    c.acked_bytes = 0
    c.ce_bytes = 0
    c.window_end = c.snd_nxt


def on_ack(c: Conn, ack: u32, ce: bool) -> None:
    if not seq_after(ack, c.snd_una):
        if ack == c.snd_una and c.snd_nxt != c.snd_una:
            c.dupacks += 1
        return
    acked = ack - c.snd_una
    c.snd_una = ack
    c.dupacks = 0
    c.acked_bytes += acked
    if ce:
        c.ce_bytes += acked
    if c.cwnd < c.ssthresh:
        c.cwnd += acked                      # slow start
    else:
        c.cwnd += max(MSS * acked // c.cwnd, 1)
    if seq_after_eq(c.snd_una, c.window_end):
        end_of_window(c)


@xdp
def rx(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.protocol != IPPROTO_TCP:
        return XDP_PASS
    tcp = pkt.header(Tcp, Eth.size + ip.header_len())
    if tcp is None or not tcp.has(TCP_ACK):
        return XDP_PASS
    c = conns.get(FlowKey(local_ip=ip.dst, remote_ip=ip.src,
                          local_port=tcp.dst_port, remote_port=tcp.src_port))
    if c is None:
        return XDP_PASS                      # not ours: the kernel stack keeps it
    ce = ip.ecn() == ECN_CE or tcp.has(TCP_ECE)
    with c.lock:
        on_ack(c, tcp.ack_seq, ce)
    return app_sockets.redirect(pkt.rx_queue, XDP_PASS)
