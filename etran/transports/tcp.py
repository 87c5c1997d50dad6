"""TCP, the data path: what runs in the kernel for every segment of an etran connection.

The peer is any TCP, the kernel's own included. The handshake, the close and everything else
that is not per-segment work live in the control plane (`etran.tcp`), which installs a
connection in `conns` once the handshake is done and removes it at the end.

* `tcp_rx` (@xdp, on the host's interface): segments of the ports etran owns. It checks the
  IPv4 header and the TCP checksum, takes ACKs (`snd_una`, the peer's window), accepts the
  next in-order data and FIN, queues an ACK for anything that carried sequence space or was
  out of order (a duplicate ACK, so a Linux sender fast-retransmits), and hands accepted
  data, FINs, and segments of connections it does not know (SYN, SYN-ACK, RST) to the
  application's socket, counting them (`handed`); data that would make more frames wait on
  that socket's ring than the application allows (`taken`) is refused as beyond the window
  (a full ring would drop it after we acknowledged it). Segments of other ports go to the
  host's own stack.
* `tcp_tx` (@egress): each segment the application sends. The application writes addresses,
  ports, flags, payload and the sequence number it means to send; a segment leaves only if
  that is `snd_nxt` and it fits the peer's window, stamped with the acknowledgement number,
  the window and both checksums. Otherwise it goes back to the application as a notice
  (`NOTICE_WINDOW`: wait for ACKs; `NOTICE_RESUME`: send again from the sequence number in
  the notice's ACK field). A TIMEOUT frame from the runtime (EtherType `TIMEOUT_PROTO`,
  pushed when `wake_tx` is raised) makes it go back N for the connection in `go_backs`:
  `snd_nxt = snd_una`, and the frame becomes a RESUME notice for that connection.
* `tcp_ack` (@gen): one pure ACK per connection that asked for one, until none is left.
* `rto_fired` (@timer): no ACK progress for one RTO while data is outstanding: queue a go-back
  and double the RTO (up to `RTO_MAX_NS`). Three duplicate ACKs queue a go-back at once (fast
  retransmit).
* `delayed_ack_due` (@timer): a lone in-order segment's ACK, queued `DELAYED_ACK_NS` ago and
  not carried by a segment of ours meanwhile, is sent now.

Congestion control is DCTCP (Linux's tcp_dctcp.c rule): `alpha` in units of 1/1024 from
1024, gain 1/16, updated once per window of data from the segments delivered and delivered
with ECE; on ECE the window drops once per window of data to max(cwnd - cwnd*alpha/2048, 2);
slow start and congestion avoidance otherwise; each ACK that acknowledges new data writes a
record to `trace`. With ECN negotiated, data segments carry ECT(0), the first one after a
reduction carries CWR, and our ACKs echo CE as ECE segment by segment (DCTCP's receiver).

SACK (RFC 2018), when both SYNs offered it: our ACKs carry the out-of-order intervals held,
the one holding the latest segment first, so a Linux sender resends only what is missing.
Our sending side takes no notice of the SACK blocks a peer sends (it goes back N, which
RFC 2018 allows a sender to do).
"""
from etran.dsl import *
from etran.bpf_templates.headers import (
    Eth, IPv4, Tcp, ETH_P_IP, IPPROTO_TCP, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN,
    csum_fold, ipv4_checksum,
)

ESTABLISHED = 1     # data both ways
PEER_CLOSED = 2     # the peer's FIN arrived: nothing more to receive
RCV_WINDOW = 65535  # what we advertise when the control plane set no receive buffer
MAX_WSCALE = 14     # RFC 7323: a larger window-scale shift counts as 14
ACK_LEN = 54        # Ethernet + IPv4 + TCP without options
TS_LEN = 12         # the timestamps option as RFC 7323's appendix lays it out: NOP, NOP, TS
TCPOPT_NOP = 1
TCPOPT_TIMESTAMP = 8
TCPOLEN_TIMESTAMP = 10
TCPOPT_SACK = 5
SACK_HEAD = 4       # NOP, NOP, kind, length: the blocks after it stay 4-byte aligned
SACK_BLOCK = 8      # the first and the one-past-last sequence number of an interval
SACK_BLOCKS_TS = 3  # blocks that fit in 40 bytes of options beside the timestamps
TCP_AT = 34         # the TCP header, after Ethernet and a 20-byte IPv4 header
TIMEOUT_PROTO = 0x88B5   # EtherType of the runtime's TIMEOUT frames and of our notices
NOTICE_WINDOW = 1   # urg_ptr of a returned segment: the peer's window is full
NOTICE_RESUME = 2   # ... send again from ack_seq
DELAYED_ACK_SEGMENTS = 2   # in-order segments an ACK may wait for (RFC 5681 4.2)
DELAYED_ACK_NS = 1_000_000  # ... and how long (RFC 5681: under 500 ms; Linux: 40 ms at least)
RTO_MIN_NS = 40_000_000     # 40 ms: see docs/tcp.md (our ACKs come from a Python thread)
RTO_MAX_NS = 640_000_000
DUP_ACKS = 3
OOO_MAX = 4               # out-of-order intervals held at once
INIT_CWND = 10            # segments (RFC 6928)
DCTCP_MAX_ALPHA = 1024
DCTCP_SHIFT_G = 4         # g = 1/16
ECT0 = 2
ECN_MASK = 3
CE = 3
TCP_ECE_FLAG = 0x40
TCP_CWR_FLAG = 0x80


class Mac(Header):
    octets: Array[u8, 6]


class EthAddrs(Header):
    dst: Mac
    src: Mac


class SackHead(Header):
    """The SACK option's start (RFC 2018), behind two NOPs; its blocks follow."""
    nop1: u8
    nop2: u8
    kind: u8
    size: u8


class SackBlock(Header):
    left: be32
    right: be32


class TsOpt(Header):
    """The timestamps option (RFC 7323) first in a TCP header's options, behind two NOPs:
    where Linux puts it in every segment after the handshake, and where ours go."""
    nop1: u8
    nop2: u8
    kind: u8
    size: u8
    val: be32
    ecr: be32

    def laid_out(self) -> bool:
        return self.nop1 == TCPOPT_NOP and self.nop2 == TCPOPT_NOP and \
            self.kind == TCPOPT_TIMESTAMP and self.size == TCPOLEN_TIMESTAMP


class ConnKey(Struct):
    """A connection as this host names it: the peer's address and port, our port."""
    peer_ip: u32
    peer_port: u16
    local_port: u16


class AckReq(Struct):
    """An ACK asked for: of which connection, and whether it is a duplicate ACK (sent even
    when it says nothing new: the peer counts them) or may be skipped when the last ACK
    sent already said the same."""
    peer_ip: u32
    peer_port: u16
    local_port: u16
    dup: u32


class Conn(Struct):
    state: u32
    snd_una: u32          # oldest byte not yet acknowledged
    snd_nxt: u32          # next byte to send
    snd_wnd: u32          # the peer's window, in bytes
    rcv_nxt: u32          # next byte expected
    # the out-of-order intervals held (by the application), the first ooo_count of them,
    # in no order; each [start, end) ahead of rcv_nxt, none overlapping another
    ooo_starts: Array[u32, 4]
    ooo_ends: Array[u32, 4]
    ooo_count: u32
    ack_queued: bool      # an ACK is waiting in `acks`
    last_ack: u32         # the last ACK sent (by tcp_ack, or on data by tcp_tx): its
    last_wnd: u32         # number and window
    rx_unacked: u32       # in-order data segments taken since the last ACK sent
    go_back_queued: bool  # a go-back is waiting in `go_backs`
    rto_armed: bool
    dup_acks: u32
    rto_ns: u64           # the current RTO, doubled on each timeout
    snd_max: u32          # the highest sequence number sent: below it, a resend
    rtt_timing: bool      # one segment at a time is timed (never a resent one: Karn)
    rtt_seq: u32          # ... the ACK that covers this ends the sample
    rtt_start: u64
    srtt_us: u32          # RFC 6298 smoothed RTT and its variation, microseconds
    rttvar_us: u32
    rto_una: u32          # snd_una when the timer was armed: progress since?
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
    timeouts: u64
    fast_retransmits: u64
    go_backs: u64
    stale: u64            # segments refused because they were not at snd_nxt
    paws_rejected: u64    # segments refused for a timestamp older than ts_recent (PAWS)
    # window scaling (RFC 7323), from the handshake: the shift of the peer's windows and of
    # ours (0 and 0 when either side did not offer it), and our receive buffer in bytes
    snd_wscale: u32
    rcv_wscale: u32
    rcv_buf: u32
    # timestamps (RFC 7323): negotiated at the handshake, then in every segment both ways;
    # ts_recent is the peer's latest timestamp, echoed in ours
    ts_ok: bool
    ts_recent: u32
    # SACK (RFC 2018): negotiated at the handshake; ooo_recent is the first byte of the
    # latest out-of-order segment held, whose interval our ACKs report first
    sack_ok: bool
    ooo_recent: u32
    # congestion control (DCTCP); the control plane sets mss, cwnd, ssthresh, ecn_ok, alpha
    mss: u32
    ecn_ok: bool          # ECN negotiated at the handshake
    ce_state: bool        # the last data segment received carried CE: our ACKs say ECE
    cwr_pending: bool     # the next data segment we send carries CWR
    cwnd: u32             # segments
    ssthresh: u32
    cwnd_cnt: u32         # segments acknowledged towards the next +1 in avoidance
    alpha: u32            # DCTCP's estimate of the marked fraction, in 1/1024
    next_seq: u32         # the end of the current window of data (alpha's update)
    delivered: u32        # segments acknowledged, and of those with ECE
    delivered_ce: u32
    old_delivered: u32
    old_delivered_ce: u32
    cwr_end: u32          # no second reduction until snd_una passes this
    rto: Timer


class DelayedAck(Struct):
    """A connection's delayed-ACK timer (a map value holds one timer: the RTO's is in Conn)."""
    due: Timer


class Read(Struct):
    """How far the application has taken a connection's data off its socket: the receive
    window is what is left of RCV_WINDOW beyond it, so the socket's rings never overflow
    (ingress acknowledges data when it hands it over, before the application has it)."""
    consumed: u32


class TraceRecord(Struct):
    """One ACK that acknowledged new data, as DCTCP saw it (read by `etran.tcp` and tests)."""
    snd_una: u32
    snd_nxt: u32          # as DCTCP read it: where a window it starts here ends
    acked: u32            # segments this ACK acknowledged
    ece: u32
    alpha: u32            # after the ACK
    cwnd: u32
    ssthresh: u32
    srtt_us: u32
    peer_port: u16
    local_port: u16


class Handed(Struct):
    """Frames ingress has handed to the application's AF_XDP socket, ever (atomic adds)."""
    frames: u64


class Taken(Struct):
    """Written by the application: the frames it has taken off its socket's ring (as far as
    `handed` knows them), and how many may wait there at most (0: no limit). Data beyond
    that is refused unacknowledged, as beyond the window: a full ring would drop it after
    ingress acknowledged it, and the connection could never have it again."""
    frames: u64
    limit: u64


class Port(Struct):
    """A local port etran owns: its segments never reach the host's stack."""
    owned: u32


class Counters(Struct):
    bad_checksum: u64
    bad_header: u64
    to_control: u64


class Wake(Struct):
    asked: u32            # a round now: a record was written to the ring when this rose


class Pending(Struct):
    """ACK requests pushed by the data path and not yet popped. A pop can fail while the
    queue is not empty (its lock is busy: another CPU, or ingress interrupting gen on this
    one), and gen must not take that for "nothing to send"."""
    acks: u64


conns = HashMap(ConnKey, Conn, max_entries=1024)
ports = HashMap(u16, Port, max_entries=256)
acks = Queue(AckReq, max_entries=1024)
go_backs = Queue(ConnKey, max_entries=1024)
reads = HashMap(ConnKey, Read, max_entries=1024)
delayed_acks = HashMap(ConnKey, DelayedAck, max_entries=1024)
wake = ArrayMap(Wake, max_entries=1)
wake_tx = ArrayMap(Wake, max_entries=1)
# A record when a flag rises wakes its pump at once (a record per request would be one per
# segment; one per rise is one per round of the pump); the pumps also look at the flags,
# now and then, in case a record was lost to a full ring
wake_ring = RingBuf(Wake, max_entries=4096)
wake_tx_ring = RingBuf(Wake, max_entries=4096)
pending = ArrayMap(Pending, max_entries=1)
trace = RingBuf(TraceRecord, max_entries=1 << 20)
counters = PerCpuArray(Counters, max_entries=1)
sockets = XskMap(max_entries=4)
handed = ArrayMap(Handed, max_entries=1)
taken = ArrayMap(Taken, max_entries=1)


def to_app(pkt: Packet) -> int:
    """Hand the segment to the application's socket, counted in `handed`."""
    h = handed.get(0)
    if h is not None:
        atomic_add(h.frames, 1)
    return sockets.redirect(pkt.rx_queue, XDP_DROP)


def ring_has_room() -> bool:
    """Fewer frames wait on the application's ring than it allows (`Taken`)."""
    h = handed.get(0)
    t = taken.get(0)
    if h is None or t is None or t.limit == 0 or t.frames >= h.frames:
        return True                      # (the application's count can run a frame or two
    return h.frames - t.frames < t.limit  # ahead: one counted as it resynced, then seen)


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


def ask_gen() -> None:
    """Ask the gen pump for a round (it zeroes the flag before each)."""
    w = wake.get(0)
    if w is not None:
        if w.asked == 0:
            # the flag first, then the record: the pump, woken by the record, then finds
            # the flag raised; the other way round it could take the record and read the
            # flag before it rose, and the flag then stayed up with no record to come, every
            # later ask writing none, until the pump's fallback look
            w.asked = 1
            wake_ring.output(Wake(asked=1))


def ask_egress() -> None:
    """Ask the egress pump to push a TIMEOUT frame through egress."""
    w = wake_tx.get(0)
    if w is not None:
        if w.asked == 0:
            # the flag first, then the record, as in `ask_gen`
            w.asked = 1
            wake_tx_ring.output(Wake(asked=1))


def queue_ack(key: ConnKey, c: Conn) -> None:
    """One ACK request per connection in `acks` until gen takes it."""
    if not c.ack_queued:
        if acks.push(AckReq(peer_ip=key.peer_ip, peer_port=key.peer_port,
                            local_port=key.local_port, dup=0)):
            c.ack_queued = True
            count_request()


def ask_for_ack(key: ConnKey, c: Conn) -> None:
    queue_ack(key, c)
    ask_gen()                            # even when the queue is full: it must drain


def delay_ack(key: ConnKey, c: Conn) -> None:
    """Queue an ACK that waits up to DELAYED_ACK_NS (`delayed_ack_due`) before the gen pump
    is asked for it: a segment of ours that leaves meanwhile carries the acknowledgement
    (egress zeroes `rx_unacked`), the timer then finds nothing due, and the queued request
    is skipped as a repeat at the pump's next round. Request/response traffic then sends
    no pure ACK at all, as with Linux's delayed ACKs, and wakes no pump."""
    queue_ack(key, c)
    d = delayed_acks.get(key)
    if d is None or not d.due.start(DELAYED_ACK_NS):
        ask_gen()                        # no timer: the ACK goes now


@timer(DelayedAck.due)
def delayed_ack_due(key: ConnKey, d: DelayedAck) -> None:
    c = conns.get(key)
    if c is not None and c.rx_unacked != 0:
        ask_gen()


def ask_for_go_back(key: ConnKey, c: Conn) -> None:
    if not c.go_back_queued:
        if go_backs.push(key):
            c.go_back_queued = True
            ask_egress()


def arm_rto(c: Conn) -> None:
    """(Re)start the retransmission timer from now, remembering where snd_una was."""
    if c.rto_ns < RTO_MIN_NS:
        c.rto_ns = RTO_MIN_NS
    c.rto_una = c.snd_una
    c.rto_armed = c.rto.start(c.rto_ns)


def rtt_sample(c: Conn, rtt_us: u32) -> None:
    """RFC 6298 section 2: the first sample sets srtt and rttvar, later ones smooth them."""
    c.rtt_timing = False
    if c.srtt_us == 0:
        c.srtt_us = max(rtt_us, 1)
        c.rttvar_us = rtt_us // 2
    else:
        diff = c.srtt_us - rtt_us if c.srtt_us > rtt_us else rtt_us - c.srtt_us
        c.rttvar_us = (3 * c.rttvar_us + diff) // 4
        c.srtt_us = max((7 * c.srtt_us + rtt_us) // 8, 1)


def rto_from_rtt(c: Conn) -> u64:
    """srtt + 4 * rttvar, kept between RTO_MIN_NS and RTO_MAX_NS."""
    rto = (u64(c.srtt_us) + 4 * u64(c.rttvar_us)) * 1000
    return min(max(rto, RTO_MIN_NS), RTO_MAX_NS)


def dctcp_ack(c: Conn, acked_bytes: u32, ece: bool, key: ConnKey) -> None:
    """What tcp_dctcp.c and the congestion avoidance around it do with one ACK that
    acknowledged `acked_bytes` of new data."""
    mss = max(c.mss, 1)
    segs = (acked_bytes + mss - 1) // mss
    # Read once: egress moves snd_nxt on another CPU meanwhile, and the window ends below
    # and the trace record must be the one value the decisions used.
    nxt = c.snd_nxt
    c.delivered += segs
    if ece:
        c.delivered_ce += segs
    if not seq_before(c.snd_una, c.next_seq):
        # A window of data is over: alpha = (1 - g) * alpha + g * F.
        delivered = c.delivered - c.old_delivered
        delivered_ce = c.delivered_ce - c.old_delivered_ce
        alpha = c.alpha
        if alpha >> DCTCP_SHIFT_G == 0:
            alpha = 0                    # min_not_zero(alpha, alpha >> g) is alpha itself
        else:
            alpha -= alpha >> DCTCP_SHIFT_G
        if delivered_ce != 0:
            alpha = min(alpha + (delivered_ce << (10 - DCTCP_SHIFT_G)) // max(delivered, 1),
                        DCTCP_MAX_ALPHA)
        c.alpha = alpha
        c.next_seq = nxt
        c.old_delivered = c.delivered
        c.old_delivered_ce = c.delivered_ce
    if ece and c.ecn_ok and seq_after_eq(c.snd_una, c.cwr_end):
        # Once per window of data: cwnd = max(cwnd - cwnd * alpha / 2048, 2).
        c.ssthresh = max(c.cwnd - ((c.cwnd * c.alpha) >> 11), 2)
        c.cwnd = c.ssthresh
        c.cwnd_cnt = 0
        c.cwr_end = nxt
        c.cwr_pending = True
    elif c.cwnd < c.ssthresh:
        c.cwnd = min(c.cwnd + segs, c.ssthresh)     # slow start
    else:
        c.cwnd_cnt += segs                           # congestion avoidance
        if c.cwnd_cnt >= c.cwnd:
            c.cwnd_cnt -= c.cwnd
            c.cwnd += 1
    c.cwnd = min(c.cwnd, 65535)
    trace.output(TraceRecord(snd_una=c.snd_una, snd_nxt=nxt, acked=segs,
                             ece=u32(1) if ece else u32(0), alpha=c.alpha, cwnd=c.cwnd,
                             ssthresh=c.ssthresh, srtt_us=c.srtt_us, peer_port=key.peer_port,
                             local_port=key.local_port))


def on_loss(c: Conn, timeout: bool) -> None:
    """A go-back: the window shrinks as DCTCP's ssthresh says (to 2 segments on a timeout)."""
    c.ssthresh = max(c.cwnd - ((c.cwnd * c.alpha) >> 11), 2)
    c.cwnd = 2 if timeout else c.ssthresh
    c.cwnd_cnt = 0


@timer(Conn.rto)
def rto_fired(key: ConnKey, c: Conn) -> None:
    c.rto_armed = False
    if c.snd_una == c.snd_nxt:
        return                           # everything was acknowledged meanwhile
    if c.snd_una == c.rto_una:
        c.timeouts += 1
        c.rto_ns = min(c.rto_ns * 2, RTO_MAX_NS)
        on_loss(c, True)
        ask_for_go_back(key, c)
    arm_rto(c)


def count_request() -> None:
    p = pending.get(0)
    if p is not None:
        atomic_add(p.acks, 1)


def ts_clock() -> u32:
    """Our timestamps' clock: CLOCK_MONOTONIC in units of 2**20 ns (about 1 ms, within
    RFC 7323's 1 ms to 1 s per tick); the control plane's SYNs read the same clock."""
    return u32(now_ns() >> 20)


def rcv_window(key: ConnKey, c: Conn) -> u32:
    """What we advertise, in bytes: the receive buffer (`rcv_buf`, RCV_WINDOW when unset)
    minus what was acknowledged but not yet consumed. Data held out of order does not
    shrink it: duplicate ACKs must carry the same window, or a Linux sender does not count
    them as duplicates and never fast-retransmits (it still may not send past `rcv_nxt +
    window`, so the socket's rings hold at most the buffer)."""
    limit: u32 = RCV_WINDOW
    if c.rcv_buf != 0:
        limit = c.rcv_buf
    r = reads.get(key)
    if r is None:
        return limit
    held = c.rcv_nxt - r.consumed
    if held >= limit:
        return 0
    return limit - held


def window_field(c: Conn, wnd: u32) -> u16:
    """A window as the TCP header carries it: shifted by our scale (RFC 7323; rounded down,
    so the peer never sees more than there is), at most 65,535."""
    return u16(min(wnd >> min(c.rcv_wscale, MAX_WSCALE), 65535))


def dup_ack(key: ConnKey, c: Conn) -> int:
    """One duplicate ACK for this segment, never coalesced (a sender without SACK
    fast-retransmits on the third, and otherwise waits for its timeout); drops the segment."""
    if acks.push(AckReq(peer_ip=key.peer_ip, peer_port=key.peer_port,
                        local_port=key.local_port, dup=1)):
        c.dup_acks_sent += 1
        count_request()
    ask_gen()                            # even when the queue is full: it must drain
    return XDP_DROP


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
        return to_app(pkt)               # the control plane's business
    c.segs_in += 1
    seq = tcp.seq
    data_len = tcp_len - hlen
    if c.ts_ok and hlen >= 20 + TS_LEN:
        ts = pkt.header(TsOpt, TCP_AT + 20)
        if ts is not None and ts.laid_out():
            if seq_before(ts.val, c.ts_recent):
                # RFC 7323 5.3 (PAWS): a timestamp older than the latest is an old duplicate
                # (or forged): acknowledged and dropped
                c.paws_rejected += 1
                return dup_ack(key, c)
            if seq_before_eq(seq, c.rcv_nxt):
                # RFC 7323 4.3: the timestamp to echo is that of the segment that starts at
                # or before what we acknowledge next
                c.ts_recent = ts.val
    fin = u32(1) if tcp.flags & TCP_FIN != 0 else u32(0)
    if tcp.flags & TCP_ACK != 0:
        ack = tcp.ack_seq
        if seq_after(ack, c.snd_una) and seq_before_eq(ack, c.snd_max):
            acked = ack - c.snd_una
            c.snd_una = ack              # new data acknowledged
            c.dup_acks = 0
            if c.rtt_timing and seq_after_eq(ack, c.rtt_seq):
                rtt_sample(c, u32((now_ns() - c.rtt_start) // 1000))
            c.rto_ns = rto_from_rtt(c)
            if c.snd_una != c.snd_nxt:
                arm_rto(c)
            dctcp_ack(c, acked, tcp.flags & TCP_ECE_FLAG != 0, key)
        elif ack == c.snd_una and c.snd_una != c.snd_nxt and data_len + fin == 0:
            if not c.rto_armed:
                arm_rto(c)               # the kernel could not start it with the data
            c.dup_acks += 1              # RFC 5681: the peer got something after a hole
            if c.dup_acks == DUP_ACKS:
                c.fast_retransmits += 1
                on_loss(c, False)
                ask_for_go_back(key, c)
        if seq_after_eq(ack, c.snd_una):
            c.snd_wnd = u32(tcp.window) << min(c.snd_wscale, MAX_WSCALE)
    if data_len + fin == 0:
        return XDP_DROP                  # a pure ACK: taken
    if c.state != ESTABLISHED:
        return dup_ack(key, c)           # nothing is accepted after the peer's FIN
    ce_changed = False
    if data_len != 0:
        ce = ip.ecn() == CE
        ce_changed = ce != c.ce_state
        c.ce_state = ce                  # echoed as ECE on the ACKs for this segment
    if seq == c.rcv_nxt:
        if data_len > rcv_window(key, c) or not ring_has_room():
            return dup_ack(key, c)       # the application's socket has no room for it
        filled = c.ooo_count != 0
        c.rcv_nxt = seq + data_len + fin
        if fin == 1:
            c.ooo_count = 0              # nothing held can follow the peer's FIN
        else:
            ooo_join(c)                  # the holes filled: the intervals they end join
        c.bytes_in += data_len
        if fin == 1:
            c.state = PEER_CLOSED
        c.rx_unacked += 1
        # RFC 5681 4.2: an ACK for at least every second segment, and at once for a FIN or
        # a segment that fills a hole; DCTCP's receiver: at once while CE marks arrive or
        # when they stop, so the echo follows the marks (RFC 8257 3.2)
        if fin == 1 or filled or c.rx_unacked >= DELAYED_ACK_SEGMENTS or c.ce_state or \
                ce_changed:
            ask_for_ack(key, c)
        else:
            delay_ack(key, c)
        return to_app(pkt)
    end = seq + data_len
    if fin == 1 or data_len == 0 or not seq_after(seq, c.rcv_nxt) or \
            seq_after(end, c.rcv_nxt + rcv_window(key, c)):
        return dup_ack(key, c)           # old, or beyond the window
    if not ring_has_room() or not ooo_hold(c, seq, end):
        return dup_ack(key, c)           # overlapping what is held, or no room: resent later
    c.ooo_recent = seq
    c.out_of_order += 1
    c.bytes_in += data_len
    dup_ack(key, c)
    return to_app(pkt)                   # the application places it by seq


def ooo_hold(c: Conn, seq: u32, end: u32) -> bool:
    """Hold [seq, end), ahead of rcv_nxt: it extends an interval it touches, or starts a
    new one while fewer than OOO_MAX are held. A segment overlapping what is held is not
    taken (the application places segments by their first byte; the peer resends)."""
    for i in range(OOO_MAX):
        if i < c.ooo_count and seq_after(end, c.ooo_starts[i]) and \
                seq_after(c.ooo_ends[i], seq):
            return False
    for i in range(OOO_MAX):
        if i < c.ooo_count:
            if seq == c.ooo_ends[i]:
                c.ooo_ends[i] = end
                return True
            if end == c.ooo_starts[i]:
                c.ooo_starts[i] = seq
                return True
    n = c.ooo_count
    if n >= OOO_MAX:
        return False
    c.ooo_starts[n] = seq
    c.ooo_ends[n] = end
    c.ooo_count = n + 1
    return True


def ooo_join(c: Conn) -> None:
    """rcv_nxt moved: each held interval it reached joins (rcv_nxt moves to its end, if
    further) and leaves the list, the last entry taking its place; passes repeat while one
    joins, since its end may reach another."""
    for _ in range(OOO_MAX):
        joined = False
        for i in range(OOO_MAX):
            if i < c.ooo_count and seq_after_eq(c.rcv_nxt, c.ooo_starts[i]):
                if seq_after(c.ooo_ends[i], c.rcv_nxt):
                    c.rcv_nxt = c.ooo_ends[i]
                last = c.ooo_count - 1
                c.ooo_starts[i] = c.ooo_starts[last]
                c.ooo_ends[i] = c.ooo_ends[last]
                c.ooo_count = last
                joined = True
        if not joined:
            break


def go_back(pkt: Packet) -> int:
    """A TIMEOUT frame: go back N for the next connection in `go_backs`, and turn the frame
    into a RESUME notice for it (its addresses, ports and the sequence number to resume at)."""
    k = go_backs.pop()
    if k is None:
        return XDP_DROP                  # nothing to do: the pump waits for the next ask
    ask_egress()                         # more may be queued: come back
    c = conns.get(ConnKey(peer_ip=k.peer_ip, peer_port=k.peer_port, local_port=k.local_port))
    if c is None:
        return XDP_DROP
    c.go_back_queued = False
    c.dup_acks = 0
    c.go_backs += 1
    c.snd_nxt = c.snd_una
    c.rtt_timing = False                 # what is resent now is never timed (Karn)
    ip = pkt.header(IPv4, Eth.size)
    tcp = pkt.header(Tcp, TCP_AT)
    if ip is None or tcp is None:
        return XDP_DROP
    ip.src = c.local_ip
    ip.dst = c.peer_ip
    tcp.src_port = c.local_port
    tcp.dst_port = c.peer_port
    tcp.ack_seq = c.snd_nxt
    tcp.urg_ptr = NOTICE_RESUME
    return sockets.redirect(pkt.rx_queue, XDP_DROP)


def notice(c: Conn, tcp: Tcp, why: u16) -> None:
    tcp.ack_seq = c.snd_nxt
    tcp.urg_ptr = why


@egress
def tcp_tx(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None:
        return XDP_DROP
    if eth.proto == TIMEOUT_PROTO:
        return go_back(pkt)
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
    hdr_len: u32 = 40
    if c.ts_ok:
        # the application leaves room for the timestamps, laid out; we fill them in
        ts = pkt.header(TsOpt, TCP_AT + 20)
        if total < 40 + TS_LEN or ts is None or not ts.laid_out():
            return XDP_DROP
        ts.val = ts_clock()
        ts.ecr = c.ts_recent
        hdr_len = 40 + TS_LEN
    data_len = total - hdr_len
    fin = u32(1) if tcp.flags & TCP_FIN != 0 else u32(0)
    if seq_after(c.snd_una, c.snd_nxt):
        # After a go-back the peer acknowledged data sent before it (it had kept what
        # followed the hole): skip ahead. Only egress writes snd_nxt (ingress, on another
        # CPU, could otherwise move it between the check below and the stamping, and a
        # segment would leave under another segment's sequence number).
        c.snd_nxt = c.snd_una
    seq = tcp.seq
    if seq != c.snd_nxt:
        c.stale += 1                     # sent before a go-back, or made up: not now
        notice(c, tcp, NOTICE_RESUME)
        return sockets.redirect(pkt.rx_queue, XDP_DROP)
    in_flight = c.snd_nxt - c.snd_una
    if seq_after(c.snd_nxt + data_len, c.snd_una + c.snd_wnd) or \
            (data_len != 0 and in_flight + data_len > c.cwnd * c.mss):
        c.over_window += 1
        notice(c, tcp, NOTICE_WINDOW)
        return sockets.redirect(pkt.rx_queue, XDP_DROP)   # back to the application: later
    ip.ver_ihl = 0x45
    ip.tos = ip.tos & 0xFC             # the ECN bits are ours to set
    if c.ecn_ok and data_len != 0:
        ip.tos = ip.tos | ECT0           # ECN-capable, so a switch marks instead of dropping
    ip.total_len = u16(total)
    ip.frag_off = 0x4000
    ip.ttl = 64
    ip.protocol = IPPROTO_TCP
    ip.src = c.local_ip
    ip.check = 0
    ip.check = ipv4_checksum(pkt, Eth.size)
    tcp.ack_seq = c.rcv_nxt
    tcp.doff_res = u8((hdr_len - 20) << 2)      # the data offset, in 32-bit words
    tcp.flags = TCP_ACK | (tcp.flags & (TCP_PSH | TCP_FIN))
    if c.ecn_ok:
        if c.ce_state:
            tcp.flags = tcp.flags | TCP_ECE_FLAG
        if data_len != 0 and c.cwr_pending:
            tcp.flags = tcp.flags | TCP_CWR_FLAG
            c.cwr_pending = False
    wnd = rcv_window(ConnKey(peer_ip=ip.dst, peer_port=tcp.dst_port, local_port=tcp.src_port),
                     c)
    tcp.window = window_field(c, wnd)
    c.last_ack = c.rcv_nxt               # the ACK this segment carries: a delayed pure ACK
    c.last_wnd = wnd                     # saying the same is skipped
    c.rx_unacked = 0
    tcp.urg_ptr = 0
    tcp.check = 0
    tcp.check = tcp_sum(pkt, ip, total - 20)
    if data_len != 0 and not c.rtt_timing and seq_after_eq(seq, c.snd_max):
        c.rtt_timing = True              # time this one: new data, not a resend
        c.rtt_seq = seq + data_len
        c.rtt_start = now_ns()
    c.snd_nxt = seq + data_len + fin
    if seq_after(c.snd_nxt, c.snd_max):
        c.snd_max = c.snd_nxt
    c.segs_out += 1
    c.bytes_out += data_len
    if not c.rto_armed:
        arm_rto(c)
    return XDP_TX


def sack_blocks(pkt: Packet, c: Conn, at: u32, blocks: u32) -> bool:
    """The SACK option at `at`: `blocks` of the intervals held, first the one holding the
    latest out-of-order segment (RFC 2018 section 4), then the others in the order held."""
    head = pkt.header(SackHead, at)
    if head is None:
        return False
    head.nop1 = TCPOPT_NOP
    head.nop2 = TCPOPT_NOP
    head.kind = TCPOPT_SACK
    head.size = u8(2 + blocks * SACK_BLOCK)
    first: u32 = 0
    for i in range(OOO_MAX):
        if i < c.ooo_count and seq_after_eq(c.ooo_recent, c.ooo_starts[i]) and \
                seq_after(c.ooo_ends[i], c.ooo_recent):
            first = u32(i)
    written: u32 = 0
    for i in range(OOO_MAX + 1):
        # turn 0 writes the first block; turns 1.. the others, skipping the first
        j = first if i == 0 else u32(i - 1)
        if written < blocks and j < c.ooo_count and (i == 0 or j != first):
            b = pkt.header(SackBlock, at + SACK_HEAD + written * SACK_BLOCK)
            if b is None:
                return False
            b.left = c.ooo_starts[j]
            b.right = c.ooo_ends[j]
            written += 1
    return True


def come_back() -> int:
    """End this gen round without a frame but with the pump asked again: for a request that
    needed no ACK, while others may wait behind it."""
    ask_gen()
    return XDP_DROP


@gen
def tcp_ack(pkt: Packet) -> int:
    k = acks.pop()
    p = pending.get(0)
    if k is None:
        if p is not None and p.acks != 0:
            return come_back()           # the queue was busy, not empty: try again
        return XDP_DROP                  # no ACK due: the round is over
    if p is not None and p.acks != 0:
        atomic_add(p.acks, u64(0xFFFFFFFFFFFFFFFF))   # one fewer (requests the control plane
                                                       # pushes were never counted)
    key = ConnKey(peer_ip=k.peer_ip, peer_port=k.peer_port, local_port=k.local_port)
    c = conns.get(key)
    if c is None:
        return come_back()               # the connection is gone
    c.ack_queued = False
    if not c.rto_armed and c.snd_una != c.snd_nxt:
        # the kernel could not start it when the data left, and no segment or ACK since
        # tried again: the library asks (an ACK request, skipped below if a repeat)
        arm_rto(c)
    wnd = rcv_window(key, c)
    # An ACK that would repeat the last one exactly is skipped unless it is meant as a
    # duplicate: a peer that has closed answers a stray one with a RST. So is a window
    # update once the peer's FIN is in (it sends nothing more; the application reading the
    # last data raises the window just after the FIN's ACK went out)
    if k.dup == 0 and c.last_ack == c.rcv_nxt and (c.last_wnd == wnd or c.state == PEER_CLOSED):
        return come_back()
    c.last_ack = c.rcv_nxt
    c.last_wnd = wnd
    c.rx_unacked = 0
    c.acks_sent += 1
    ack_len: u32 = ACK_LEN
    if c.ts_ok:
        ack_len = ACK_LEN + TS_LEN
    sack_at = ack_len                    # where the SACK option goes, if any
    blocks: u32 = 0
    if c.sack_ok:
        blocks = min(c.ooo_count, SACK_BLOCKS_TS if c.ts_ok else OOO_MAX)
    if blocks != 0:
        ack_len += SACK_HEAD + blocks * SACK_BLOCK
    if pkt.len != ack_len:
        pkt.resize_tail(i32(ack_len) - i32(pkt.len))   # whatever template the runtime gave
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
    ip.total_len = u16(ack_len - Eth.size)
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
    tcp.doff_res = u8((ack_len - TCP_AT) << 2)
    tcp.flags = TCP_ACK
    if c.ts_ok:
        ts = pkt.header(TsOpt, TCP_AT + 20)
        if ts is None:
            return XDP_DROP
        ts.nop1 = TCPOPT_NOP
        ts.nop2 = TCPOPT_NOP
        ts.kind = TCPOPT_TIMESTAMP
        ts.size = TCPOLEN_TIMESTAMP
        ts.val = ts_clock()
        ts.ecr = c.ts_recent
    if blocks != 0 and not sack_blocks(pkt, c, sack_at, blocks):
        return XDP_DROP
    if c.ecn_ok and c.ce_state:
        tcp.flags = TCP_ACK | TCP_ECE_FLAG
    tcp.window = window_field(c, wnd)
    tcp.urg_ptr = 0
    tcp.check = 0
    tcp.check = tcp_sum(pkt, ip, ack_len - TCP_AT)
    return XDP_TX
