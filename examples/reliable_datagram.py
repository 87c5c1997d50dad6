"""Reliable datagrams: go-back-N with cumulative ACKs and a retransmission timer.

Every frame of the transport is a UDP datagram to PORT whose payload starts with a
`Datagram` header (kind, epoch, flow, seq, ack). One program runs on every host.

Sender (host A):
* `send` (@egress) stamps each DATA frame of the application with the flow's
  next sequence number (`snd_nxt`), arms the flow's retransmission timer when
  it is not running, and transmits. The first DATA frame of a flow creates its
  state (`tx_flows`, keyed by peer address and flow id).
* `receive` (@xdp) consumes ACKs: `snd_una` advances to the cumulative ack
  (mod 2^32, never past what was sent); the ACK goes no further.
* `rto_expired` (@timer) fires every RTO_NS while data is outstanding. When
  `snd_una` did not move since the last firing, the flow times out: it is marked
  for retransmission, queued in `timed_out`, and the wake flag (`wake`) is
  raised. A timer cannot send, so the runtime, watching the flag, pushes a
  TIMEOUT frame through egress (`etran.runtime.hooks.EgressPump`).
* `send`, given a TIMEOUT frame, takes one flow from `timed_out` and goes back
  N: `snd_nxt = snd_una`, a new epoch, and the frame becomes a go-back notice
  (flow, epoch, seq = where to resume, ip.dst = the peer) that loops back to
  the application's AF_XDP socket. It raises the wake flag again, since more
  flows may be waiting; a TIMEOUT that finds none is dropped.
* The application keeps what it sent and, on a notice, resends from `seq`,
  writing the notice's epoch in its DATA frames. Egress drops DATA of an older
  epoch (`stale`): those were sent before the application heard of the go-back,
  and their sequence numbers would no longer match its buffer. There is no
  backoff: while nothing is resent, every RTO without progress makes another
  go-back and another notice (so a lost notice is made good).

Receiver (host B):
* `receive` delivers a DATA frame with `seq == expected` to the application's
  socket (`app_sockets`) and advances `expected`; a duplicate or a frame after
  a gap is counted and dropped, so every frame is delivered once and in order.
  Every DATA frame makes an ACK due: the flow goes into `acks_due` once.
* `ack` (@gen, run by the runtime after each receive batch) takes a flow from
  `acks_due` and builds its ACK (cumulative ack = `expected`, addresses learned
  from the flow's DATA, full IPv4 checksum, no UDP checksum), until none is due.

Fields that two hooks may touch at once (hooks run on several CPUs, timer
handlers in softirq context) are read and written under the flow's spin lock.
"""
from etran.dsl import *
from etran.bpf_templates.headers import (Eth, IPv4, Udp, ETH_P_IP, IPPROTO_UDP,
                                         ipv4_checksum)

PORT = 7100
RTO_NS = 10_000_000           # 10 ms

DATA = 1
ACK = 2
TIMEOUT = 3

HEADER_AT = Eth.size + IPv4.size + Udp.size     # senders write IPv4 without options


class Datagram(Header):
    kind: u8
    flags: u8
    epoch: be16       # DATA, TIMEOUT notice: the sender's go-back generation
    flow: be32
    seq: be32         # DATA: its sequence number; TIMEOUT notice: resend from here
    ack: be32         # ACK: the next sequence number expected


ACK_LEN = HEADER_AT + Datagram.size


class Mac(Header):
    octets: Array[u8, 6]


class EthAddrs(Header):
    """The addresses of an Ethernet header, as whole values to copy."""
    dst: Mac
    src: Mac


class FlowKey(Struct):
    peer: be32        # the other host's IPv4 address
    flow: u32


class TxFlow(Struct):
    lock: SpinLock
    snd_una: u32      # oldest unacknowledged sequence number
    snd_nxt: u32      # next sequence number to stamp
    snd_max: u32      # highest sequence number stamped, plus one
    una_seen: u32     # snd_una when the timer last looked
    epoch: u16
    rto_armed: bool
    retransmit: bool  # timed out; the go-back notice has not been made yet
    sent: u64         # DATA frames stamped (retransmissions included)
    stale: u64        # DATA frames of an old epoch, dropped
    acks: u64
    timeouts: u64
    go_backs: u64
    rto: Timer


class RxFlow(Struct):
    lock: SpinLock
    expected: u32
    ack_queued: bool
    delivered: u64
    duplicates: u64
    out_of_order: u64
    acks_sent: u64
    local_mac: Mac
    peer_mac: Mac
    local_ip: be32
    peer_ip: be32
    local_port: be16
    peer_port: be16


class Wake(Struct):
    asked: u32


tx_flows = HashMap(FlowKey, TxFlow, max_entries=1024)
rx_flows = HashMap(FlowKey, RxFlow, max_entries=1024)
timed_out = Queue(FlowKey, max_entries=1024)
acks_due = Queue(FlowKey, max_entries=1024)
wake = ArrayMap(Wake, max_entries=1)
app_sockets = XskMap(max_entries=64)


def ask_for_tick() -> None:
    w = wake.get(0)
    if w is not None:
        w.asked = 1


def our_udp(pkt: Packet) -> bool:
    """An IPv4 (no options) UDP frame to PORT."""
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return False
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.protocol != IPPROTO_UDP or ip.ver_ihl != 0x45:
        return False
    udp = pkt.header(Udp, Eth.size + IPv4.size)
    return udp is not None and udp.dst_port == PORT


# ------------------------------------------------------------------ sender

@egress
def send(pkt: Packet) -> int:
    if not our_udp(pkt):
        return XDP_TX
    ip = pkt.header(IPv4, Eth.size)
    udp = pkt.header(Udp, Eth.size + IPv4.size)
    hdr = pkt.header(Datagram, HEADER_AT)
    if ip is None or udp is None or hdr is None:
        return XDP_DROP
    if hdr.kind == TIMEOUT:
        return go_back(pkt)
    if hdr.kind != DATA:
        return XDP_TX
    key = FlowKey(peer=ip.dst, flow=hdr.flow)
    f = tx_flows.get(key)
    if f is None:
        tx_flows.insert(key, TxFlow())
        f = tx_flows.get(key)
        if f is None:
            return XDP_DROP
    epoch = hdr.epoch
    stale = False
    arm = False
    seq: u32 = 0
    with f.lock:
        if epoch != f.epoch:
            f.stale += 1
            stale = True
        else:
            seq = f.snd_nxt
            f.snd_nxt += 1
            if seq_after(f.snd_nxt, f.snd_max):
                f.snd_max = f.snd_nxt
            f.sent += 1
            if not f.rto_armed:
                f.rto_armed = True
                f.una_seen = f.snd_una
                arm = True
    if stale:
        return XDP_DROP
    hdr.seq = seq
    hdr.ack = 0
    udp.check = 0                 # the payload changed; zero means "no checksum" in IPv4
    if arm:
        f.rto.start(RTO_NS)
    return XDP_TX


def go_back(pkt: Packet) -> u32:
    """A TIMEOUT frame from the runtime: go back N for one timed-out flow and turn the
    frame into the application's notice."""
    k = timed_out.pop()
    if k is None:
        return XDP_DROP           # nothing (more) to do
    f = tx_flows.get(FlowKey(peer=k.peer, flow=k.flow))
    if f is None:
        return XDP_DROP
    with f.lock:
        f.retransmit = False
        f.snd_nxt = f.snd_una
        f.epoch += 1
        f.go_backs += 1
        resume = f.snd_una
        epoch = f.epoch
    ask_for_tick()                # another flow may have timed out too
    ip = pkt.header(IPv4, Eth.size)
    hdr = pkt.header(Datagram, HEADER_AT)
    if ip is None or hdr is None:
        return XDP_DROP
    ip.dst = k.peer
    hdr.epoch = epoch
    hdr.flow = k.flow
    hdr.seq = resume
    hdr.ack = 0
    return app_sockets.redirect(pkt.rx_queue, XDP_DROP)


@timer(TxFlow.rto)
def rto_expired(key: FlowKey, f: TxFlow) -> None:
    expired = False
    with f.lock:
        outstanding = seq_before(f.snd_una, f.snd_max)
        if not outstanding:
            f.rto_armed = False
        elif f.snd_una == f.una_seen and not f.retransmit:
            f.retransmit = True
            f.timeouts += 1
            expired = True
        f.una_seen = f.snd_una
    if expired:
        timed_out.push(key)
        ask_for_tick()
    if outstanding:
        f.rto.start(RTO_NS)


# ------------------------------------------------------------------ both hosts

@xdp
def receive(pkt: Packet) -> int:
    if not our_udp(pkt):
        return XDP_PASS
    hdr = pkt.header(Datagram, HEADER_AT)
    ip = pkt.header(IPv4, Eth.size)
    if hdr is None or ip is None:
        return XDP_DROP
    if hdr.kind == ACK:
        return on_ack(FlowKey(peer=ip.src, flow=hdr.flow), hdr.ack)
    if hdr.kind == DATA:
        return on_data(pkt, FlowKey(peer=ip.src, flow=hdr.flow), hdr.seq)
    return XDP_DROP


def on_ack(key: FlowKey, ack: u32) -> u32:
    f = tx_flows.get(key)
    if f is None:
        return XDP_DROP
    with f.lock:
        f.acks += 1
        if seq_after(ack, f.snd_una) and seq_before_eq(ack, f.snd_max):
            f.snd_una = ack
    return XDP_DROP


def on_data(pkt: Packet, key: FlowKey, seq: u32) -> u32:
    f = rx_flows.get(key)
    if f is None:
        learn_flow(pkt, key)
        f = rx_flows.get(key)
        if f is None:
            return XDP_DROP
    deliver = False
    with f.lock:
        if seq == f.expected:
            f.expected += 1
            f.delivered += 1
            deliver = True
        elif seq_before(seq, f.expected):
            f.duplicates += 1
        else:
            f.out_of_order += 1
        queue_ack = not f.ack_queued
        f.ack_queued = True
    if queue_ack:
        acks_due.push(key)
    if deliver:
        return app_sockets.redirect(pkt.rx_queue, XDP_DROP)
    return XDP_DROP


def learn_flow(pkt: Packet, key: FlowKey) -> None:
    """A new flow: remember where its ACKs go."""
    addrs = pkt.header(EthAddrs, 0)
    ip = pkt.header(IPv4, Eth.size)
    udp = pkt.header(Udp, Eth.size + IPv4.size)
    if addrs is None or ip is None or udp is None:
        return
    rx_flows.insert(key, RxFlow(local_ip=ip.dst, peer_ip=ip.src, local_port=udp.dst_port,
                                peer_port=udp.src_port))
    f = rx_flows.get(key)
    if f is None:
        return
    f.local_mac = addrs.dst
    f.peer_mac = addrs.src


# ------------------------------------------------------------------ receiver

@gen
def ack(pkt: Packet) -> int:
    k = acks_due.pop()
    if k is None:
        return XDP_DROP           # no ACK due: the round is over
    f = rx_flows.get(FlowKey(peer=k.peer, flow=k.flow))
    if f is None:
        return XDP_DROP
    with f.lock:
        f.ack_queued = False
        f.acks_sent += 1
        cumulative = f.expected
    if pkt.len > ACK_LEN:
        pkt.resize_tail(i32(ACK_LEN) - i32(pkt.len))
    eth = pkt.header(Eth, 0)
    addrs = pkt.header(EthAddrs, 0)
    ip = pkt.header(IPv4, Eth.size)
    udp = pkt.header(Udp, Eth.size + IPv4.size)
    hdr = pkt.header(Datagram, HEADER_AT)
    if eth is None or addrs is None or ip is None or udp is None or hdr is None:
        return XDP_DROP
    addrs.dst = f.peer_mac
    addrs.src = f.local_mac
    eth.proto = ETH_P_IP
    ip.ver_ihl = 0x45
    ip.tos = 0
    ip.total_len = IPv4.size + Udp.size + Datagram.size
    ip.id = 0
    ip.frag_off = 0x4000          # don't fragment
    ip.ttl = 64
    ip.protocol = IPPROTO_UDP
    ip.src = f.local_ip
    ip.dst = f.peer_ip
    udp.src_port = f.local_port
    udp.dst_port = f.peer_port
    udp.len = Udp.size + Datagram.size
    udp.check = 0
    hdr.kind = ACK
    hdr.flags = 0
    hdr.epoch = 0
    hdr.flow = k.flow
    hdr.seq = 0
    hdr.ack = cumulative
    ip.check = 0
    ip.check = ipv4_checksum(pkt, Eth.size)
    return XDP_TX
