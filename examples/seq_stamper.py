"""Egress sequence stamping for a datagram transport, and in-order accounting at the receiver.

Every frame the application sends carries a small transport header after UDP.
The egress hook (`stamp`) gives it the flow's next sequence number; the
ingress hook (`receive`) at the other end counts in-order frames, gaps and
duplicates, and hands frames to the application's AF_XDP socket.
"""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Udp, ETH_P_IP, IPPROTO_UDP

PORT = 9000


class Shim(Header):
    flow: be32
    seq: be32


class TxState(Struct):
    next_seq: u32
    frames: u64


class RxState(Struct):
    expected: u32
    in_order: u64
    gaps: u64
    duplicates: u64


tx_flows = HashMap(u32, TxState, max_entries=1024)
rx_flows = HashMap(u32, RxState, max_entries=1024)
app_sockets = XskMap(max_entries=64)


def shim_of(pkt: Packet) -> u32:
    """Offset of the transport header, or 0 when the frame is not ours."""
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return 0
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.protocol != IPPROTO_UDP:
        return 0
    off = Eth.size + ip.header_len()
    udp = pkt.header(Udp, off)
    if udp is None or udp.dst_port != PORT:
        return 0
    return off + Udp.size


@egress
def stamp(pkt: Packet) -> int:
    off = shim_of(pkt)
    if off == 0:
        return XDP_TX
    shim = pkt.header(Shim, off)
    if shim is None:
        return XDP_DROP
    st = tx_flows.get(shim.flow)
    if st is None:
        tx_flows.insert(shim.flow, TxState(next_seq=1, frames=1))
        shim.seq = 0
        return XDP_TX
    shim.seq = st.next_seq
    st.next_seq += 1
    st.frames += 1
    return XDP_TX


@xdp
def receive(pkt: Packet) -> int:
    off = shim_of(pkt)
    if off == 0:
        return XDP_PASS
    shim = pkt.header(Shim, off)
    if shim is None:
        return XDP_DROP
    st = rx_flows.get(shim.flow)
    if st is None:
        rx_flows.insert(shim.flow, RxState())
        st = rx_flows.get(shim.flow)
        if st is None:
            return XDP_DROP
    seq = shim.seq
    if seq == st.expected:
        st.in_order += 1
        st.expected += 1
    elif seq_after(seq, st.expected):
        st.gaps += u64(seq - st.expected)
        st.expected = seq + 1
    else:
        st.duplicates += 1
    return app_sockets.redirect(pkt.rx_queue, XDP_PASS)
