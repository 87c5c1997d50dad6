"""TCP, the data path: what runs in the kernel for every segment of an etran connection.

The peer is any TCP, the kernel's own included. The handshake, the close and everything else
that is not per-segment work live in the control plane (`etran.tcp`), which installs a
connection in `conns` once the handshake is done and removes it at the end.

* `tcp_rx` (@xdp, on the host's interface): segments of the ports etran owns. It checks the
  IPv4 header and the TCP checksum, takes ACKs (`snd_una`, the peer's window), accepts the
  next in-order data and FIN, queues an ACK for anything that carried sequence space or was
  out of order (a duplicate ACK, so a Linux sender fast-retransmits), and hands accepted
  data, FINs, and segments of connections it does not know (SYN, SYN-ACK, RST) to the
  application's socket. Segments of other ports go to the host's own stack.
* `tcp_tx` (@egress): each segment the application sends. The application writes addresses,
  ports, flags and payload; this stamps the sequence and acknowledgement numbers, the window,
  the IPv4 and TCP checksums, and keeps sending within the peer's window: a segment that does
  not fit goes back to the application, which sends it again later.
* `tcp_ack` (@gen): one pure ACK per connection that asked for one, until none is left.

What it does not do yet: retransmission, congestion control (DCTCP), window scaling,
timestamps, SACK, holding out-of-order data. docs/tcp.md has the plan.
"""
from etran.dsl import *
from etran.bpf_templates.headers import (
    Eth, IPv4, Tcp, ETH_P_IP, IPPROTO_TCP, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN,
    csum_fold, ipv4_checksum,
)

ESTABLISHED = 1     # data both ways
PEER_CLOSED = 2     # the peer's FIN arrived: nothing more to receive
RCV_WINDOW = 65535  # what we advertise (no window scaling yet)
ACK_LEN = 54        # Ethernet + IPv4 + TCP without options
TCP_AT = 34         # the TCP header, after Ethernet and a 20-byte IPv4 header


class Mac(Header):
    octets: Array[u8, 6]


class EthAddrs(Header):
    dst: Mac
    src: Mac


class ConnKey(Struct):
    """A connection as this host names it: the peer's address and port, our port."""
    peer_ip: u32
    peer_port: u16
    local_port: u16


class Conn(Struct):
    state: u32
    snd_una: u32          # oldest byte not yet acknowledged
    snd_nxt: u32          # next byte to send
    snd_wnd: u32          # the peer's window, in bytes
    rcv_nxt: u32          # next byte expected
    ack_queued: bool      # an ACK is waiting in `acks`
    local_ip: u32
    local_port: u16
    peer_port: u16
    peer_ip: u32
    local_mac: Mac
    peer_mac: Mac
    segs_in: u64
    segs_out: u64
    bytes_in: u64
    bytes_out: u64
    acks_sent: u64
    dup_acks_sent: u64
    out_of_order: u64
    over_window: u64


class Port(Struct):
    """A local port etran owns: its segments never reach the host's stack."""
    owned: u32


class Counters(Struct):
    bad_checksum: u64
    bad_header: u64
    to_control: u64


class Wake(Struct):
    asked: u32


conns = HashMap(ConnKey, Conn, max_entries=1024)
ports = HashMap(u16, Port, max_entries=256)
acks = Queue(ConnKey, max_entries=1024)
wake = ArrayMap(Wake, max_entries=1)
counters = PerCpuArray(Counters, max_entries=1)
sockets = XskMap(max_entries=4)


def tcp_sum_ok(pkt: Packet, ip: IPv4, tcp_len: u32) -> bool:
    """The TCP checksum over the pseudo-header and the segment verifies."""
    pseudo = (ip.src >> 16) + (ip.src & 0xFFFF) + (ip.dst >> 16) + (ip.dst & 0xFFFF) + \
        IPPROTO_TCP + tcp_len
    return pkt.checksum(TCP_AT, tcp_len, pseudo) == 0xFFFF


def tcp_sum(pkt: Packet, ip: IPv4, tcp_len: u32) -> u16:
    """The value of the TCP checksum field (the field itself must be 0 while summing)."""
    pseudo = (ip.src >> 16) + (ip.src & 0xFFFF) + (ip.dst >> 16) + (ip.dst & 0xFFFF) + \
        IPPROTO_TCP + tcp_len
    return csum_fold(pkt.checksum(TCP_AT, tcp_len, pseudo))


def ask_for_ack(key: ConnKey, c: Conn) -> None:
    if not c.ack_queued:
        if acks.push(key):
            c.ack_queued = True
            w = wake.get(0)
            if w is not None:
                w.asked = 1


@xdp
def tcp_rx(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.protocol != IPPROTO_TCP:
        return XDP_PASS
    tcp = pkt.header(Tcp, TCP_AT)
    if tcp is None:
        return XDP_PASS
    if ports.get(tcp.dst_port) is None:
        return XDP_PASS                  # not ours: the host's own TCP
    n = counters.get(0)
    if n is None:
        return XDP_DROP
    total = u32(ip.total_len)
    if ip.ver_ihl != 0x45 or total < 40 or Eth.size + total > pkt.len:
        n.bad_header += 1
        return XDP_DROP
    tcp_len = total - 20
    hlen = tcp.header_len()
    if hlen < 20 or hlen > tcp_len:
        n.bad_header += 1
        return XDP_DROP
    if not tcp_sum_ok(pkt, ip, tcp_len):
        n.bad_checksum += 1
        return XDP_DROP
    key = ConnKey(peer_ip=ip.src, peer_port=tcp.src_port, local_port=tcp.dst_port)
    c = conns.get(key)
    if c is None or tcp.flags & (TCP_SYN | TCP_RST) != 0:
        n.to_control += 1
        return sockets.redirect(pkt.rx_queue, XDP_DROP)   # the control plane's business
    c.segs_in += 1
    seq = tcp.seq
    if tcp.flags & TCP_ACK != 0:
        ack = tcp.ack_seq
        if seq_after(ack, c.snd_una) and seq_before_eq(ack, c.snd_nxt):
            c.snd_una = ack
        if seq_after_eq(ack, c.snd_una):
            c.snd_wnd = u32(tcp.window)
    data_len = tcp_len - hlen
    fin = u32(1) if tcp.flags & TCP_FIN != 0 else u32(0)
    if data_len + fin == 0:
        return XDP_DROP                  # a pure ACK: taken
    if seq != c.rcv_nxt or c.state != ESTABLISHED:
        c.out_of_order += 1
        c.dup_acks_sent += 1
        ask_for_ack(key, c)              # a duplicate ACK says what we still expect
        return XDP_DROP
    c.rcv_nxt = seq + data_len + fin
    c.bytes_in += data_len
    if fin == 1:
        c.state = PEER_CLOSED
    ask_for_ack(key, c)
    return sockets.redirect(pkt.rx_queue, XDP_DROP)


@egress
def tcp_tx(pkt: Packet) -> int:
    ip = pkt.header(IPv4, Eth.size)
    tcp = pkt.header(Tcp, TCP_AT)
    if ip is None or tcp is None:
        return XDP_DROP
    total = pkt.len - Eth.size
    if total < 40 or total > 1500:
        return XDP_DROP
    c = conns.get(ConnKey(peer_ip=ip.dst, peer_port=tcp.dst_port, local_port=tcp.src_port))
    if c is None or c.state == 0:
        return XDP_DROP                  # no such connection: nothing leaves
    data_len = total - 40
    fin = u32(1) if tcp.flags & TCP_FIN != 0 else u32(0)
    if seq_after(c.snd_nxt + data_len, c.snd_una + c.snd_wnd):
        c.over_window += 1
        return sockets.redirect(pkt.rx_queue, XDP_DROP)   # back to the application: later
    ip.ver_ihl = 0x45
    ip.total_len = u16(total)
    ip.frag_off = 0x4000
    ip.ttl = 64
    ip.protocol = IPPROTO_TCP
    ip.src = c.local_ip
    ip.check = 0
    ip.check = ipv4_checksum(pkt, Eth.size)
    tcp.seq = c.snd_nxt
    tcp.ack_seq = c.rcv_nxt
    tcp.doff_res = 0x50
    tcp.flags = TCP_ACK | (tcp.flags & (TCP_PSH | TCP_FIN))
    tcp.window = RCV_WINDOW
    tcp.urg_ptr = 0
    tcp.check = 0
    tcp.check = tcp_sum(pkt, ip, total - 20)
    c.snd_nxt += data_len + fin
    c.segs_out += 1
    c.bytes_out += data_len
    return XDP_TX


@gen
def tcp_ack(pkt: Packet) -> int:
    k = acks.pop()
    if k is None:
        return XDP_DROP                  # no ACK due: the round is over
    c = conns.get(ConnKey(peer_ip=k.peer_ip, peer_port=k.peer_port, local_port=k.local_port))
    if c is None:
        return XDP_DROP
    c.ack_queued = False
    c.acks_sent += 1
    if pkt.len != ACK_LEN:
        pkt.resize_tail(i32(ACK_LEN) - i32(pkt.len))   # whatever template the runtime gave
    eth = pkt.header(Eth, 0)
    addrs = pkt.header(EthAddrs, 0)
    ip = pkt.header(IPv4, Eth.size)
    tcp = pkt.header(Tcp, TCP_AT)
    if eth is None or addrs is None or ip is None or tcp is None:
        return XDP_DROP
    addrs.dst = c.peer_mac
    addrs.src = c.local_mac
    eth.proto = ETH_P_IP
    ip.ver_ihl = 0x45
    ip.tos = 0
    ip.total_len = 40
    ip.id = 0
    ip.frag_off = 0x4000
    ip.ttl = 64
    ip.protocol = IPPROTO_TCP
    ip.src = c.local_ip
    ip.dst = c.peer_ip
    ip.check = 0
    ip.check = ipv4_checksum(pkt, Eth.size)
    tcp.src_port = c.local_port
    tcp.dst_port = c.peer_port
    tcp.seq = c.snd_nxt
    tcp.ack_seq = c.rcv_nxt
    tcp.doff_res = 0x50
    tcp.flags = TCP_ACK
    tcp.window = RCV_WINDOW
    tcp.urg_ptr = 0
    tcp.check = 0
    tcp.check = tcp_sum(pkt, ip, 20)
    return XDP_TX
