"""Homa, the data path: message RPCs with receiver-driven grants and SRPT.

A client sends a request message and gets a response message back; each message is a run of
DATA packets of PAYLOAD bytes (the last one shorter), each saying the message's length and
its offset. The first `rtt_bytes` of a message leave at once (unscheduled); the receiver
grants the rest, a window at a time, to the messages with the fewest bytes left first.
The application library (`etran.homa`) builds the packets; what is per-packet work runs
here, and nothing leaves without passing `homa_tx`.

* `homa_tx` (@egress): each DATA packet the application sends. The first packet of a
  request creates the RPC's state; a response must answer a request that arrived whole. A
  packet leaves only below what the receiver granted, with its priority in the IP header's
  DSCP bits (the top three: one-packet messages 7, unscheduled bytes 4-7 by message size
  from `config.cutoffs`, scheduled bytes the priority of the last GRANT). Over the grant it
  goes back to the application, which sends it again when a GRANT arrives.
* `homa_rx` (@xdp): DATA is checked against the message (length, offset on a packet
  boundary, exact packet size), recorded in a bitmap of received packets (duplicates are
  dropped) and delivered to the application's AF_XDP socket; a message that needs grants
  enters the candidate slots. GRANT and RESEND raise what the sender may send and go to the
  application, which sends; RESEND for an RPC we do not know is answered in place with
  UNKNOWN, one for a request still arriving or being served with BUSY. BUSY keeps a silent
  RPC alive; UNKNOWN (the peer lost the RPC) goes to the application; ACK (the client has
  the response) frees the server's state.
* `homa_gen` (@gen): GRANTs and RESENDs queued in `ctrl`, one per run (an ARM request
  only starts the RPC's timer, which the kernel could not start before: see `arm`). A
  REPAIR request (the library's) is a RESEND for packets this path took but the
  application never got (the AF_XDP socket's ring was full when ingress handed them over):
  their bits are cleared first, so that the packets sent again are taken. When the queue
  is empty it first runs the grant scheduler: under the slots' lock, up to OVERCOMMIT messages
  in order of bytes remaining (SRPT) each get up to `grant_window` bytes past what arrived,
  as long as the bytes granted and not yet received stay within `max_incoming`; the
  shortest gets the highest scheduled priority (3). Packets this path took and the
  application has not yet taken off its socket's ring (`handed` less `taken`) count as not
  yet received: the ring is the receiver's queue, and grants stop while it is long.
* `homa_tick` (@timer, every TICK_NS per RPC): a message arriving with no progress for
  RESEND_TICKS ticks makes the library ask for every missing run below what we granted
  (`events`, STALLED; a RESEND also re-grants, in case a GRANT was lost); a client that
  heard nothing from the server asks it with a RESEND (BUSY or UNKNOWN come back). After
  MAX_RESENDS without progress the RPC is aborted and the application told (`events`). A
  served RPC with neither an ACK nor a client RESEND is forgotten after RECLAIM_TICKS.
"""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, ETH_P_IP, csum_replace16

IPPROTO_HOMA = 0xFD       # RFC 3692's experimental protocol number

DATA = 0x10
GRANT = 0x11
RESEND = 0x12
UNKNOWN = 0x13
BUSY = 0x14
ACK = 0x15
REPAIR = 0x1F             # in `ctrl` only: forget packets the application lost, then RESEND
ARM = 0x1E                # in `ctrl` only: start the RPC's timer, which never ran (`arm`)

FROM_CLIENT = 1           # HomaHdr.flags: the client sent this packet
RETRANSMIT = 2

PAYLOAD = 1400            # bytes of message per DATA packet
BITMAP_WORDS = 12
MAX_MESSAGE = BITMAP_WORDS * 64 * PAYLOAD    # 1,075,200 bytes: one bit per packet
SLOTS = 16                # messages that can wait for grants at once
OVERCOMMIT = 8            # messages granted to at once (Homa's overcommitment)
FIFO_EVERY = 10           # one grant round in this many puts the oldest message first
EVICT_TICKS = 4           # ticks a message waits for a free slot before it takes one

HDR_AT = 34               # Ethernet + a 20-byte IPv4 header
DATA_AT = 50              # + HomaHdr
PAYLOAD_AT = 58           # + HomaData
CTRL_FRAME = 62           # a GRANT or RESEND: HomaHdr + 12 bytes

TICK_NS = 5_000_000       # per-RPC timer: far above the RTT of a Python application
RESEND_TICKS = 3          # silent ticks before a RESEND
MAX_RESENDS = 20          # RESENDs without progress before the RPC is aborted (300 ms:
                          # the library in Python can be that slow under load)
RECLAIM_TICKS = 40        # silent ticks before a served RPC is forgotten
MAX_BUSY = 3              # a client waiting on a BUSY server asks every RESEND_TICKS << busy

# RPC states, as this host sees them
CLIENT_OUT = 1            # sending the request, then waiting for the response
CLIENT_IN = 2             # receiving the response
SERVER_IN = 3             # receiving the request
SERVER_BUSY = 4           # the application has the request
SERVER_OUT = 5            # sending the response, then waiting for the ACK

EVENT_ABORTED = 1
EVENT_STALLED = 2         # a message stopped arriving: the library sends RESENDs


class HomaHdr(Header):
    sport: be16
    dport: be16
    kind: u8
    flags: u8
    reserved: be16
    rpc_id: be64          # the client's id for the RPC (even)


class HomaData(Header):
    message_length: be32
    offset: be32


class HomaCtrl(Header):
    """GRANT: let the sender send below `offset`, at `priority`. RESEND: send again the
    `length` bytes from `offset` (and take them as granted)."""
    offset: be32
    length: be32
    priority: u8
    reserved: Array[u8, 3]


class Mac(Header):
    octets: Array[u8, 6]


class EthAddrs(Header):
    dst: Mac
    src: Mac


class RpcKey(Struct):
    """An RPC as this host names it: the client's id, odd on the server (so one host can be
    client and server of the same id), the peer's address and both ports."""
    id: u64
    peer: u32
    local_port: u16
    peer_port: u16


class Rpc(Struct):
    state: u32
    # the message we send
    out_length: u32
    granted: u32          # the receiver lets us send the bytes below this
    sent: u32             # the end of the furthest packet sent
    out_prio: u32         # priority of scheduled packets (from the last GRANT)
    # the message we receive
    in_length: u32        # 0 until its first packet
    received: u32         # distinct bytes received
    in_granted: u32       # bytes we let the sender send
    bitmap: Array[u64, 12]
    # timers
    last_received: u32
    silent: u32           # ticks without progress
    resends: u32
    local_ip: u32
    armed: u32            # the timer runs (starting it can fail: then the next packet tries)
    busy: u32             # client: BUSY answers since the server last granted (probe less)
    unslotted: u32        # ticks spent waiting for grants without a slot
    local_mac: Mac
    peer_mac: Mac
    timer: Timer


class Cands(Struct):
    """The messages that need grants, slot by slot (an array per field: a loop indexes
    arrays of integers, not arrays of structs): the RPC, and what the scheduler knows."""
    lock: SpinLock
    used: Array[u32, 16]
    id: Array[u64, 16]
    peer: Array[u32, 16]
    local_port: Array[u16, 16]
    peer_port: Array[u16, 16]
    length: Array[u32, 16]
    received: Array[u32, 16]
    granted: Array[u32, 16]
    rank: Array[u32, 16]      # the scheduler's SRPT order (255: unused)
    born: Array[u32, 16]      # `entered` when the message took the slot
    entered: u32              # messages that ever took a slot
    rounds: u32               # scheduler rounds: every FIFO_EVERY-th the oldest goes first


class CtrlReq(Struct):
    """A GRANT or RESEND for gen to send."""
    id: u64
    peer: u32
    local_port: u16
    peer_port: u16
    kind: u32
    offset: u32
    length: u32
    priority: u32


class Picks(Struct):
    """What the grant scheduler chose under the lock, by SRPT rank, queued after it (no
    helpers inside the lock). Kept in `picks`, a per-CPU scratch entry: on gen's stack it
    took 192 of its 512 bytes."""
    offset: Array[u32, 8]     # 0: no grant at this rank
    received: Array[u32, 8]
    id: Array[u64, 8]
    peer: Array[u32, 8]
    local_port: Array[u16, 8]
    peer_port: Array[u16, 8]


class Config(Struct):
    rtt_bytes: u32        # unscheduled bytes per message (default 60,000)
    grant_window: u32     # bytes granted past what arrived (default 100,000)
    max_incoming: u32     # bytes granted and not received, all messages (default 480,000)
    cutoffs: Array[u32, 4]   # unscheduled priority 7 - i for messages up to cutoffs[i]


class Port(Struct):
    owned: u32


class Handed(Struct):
    """DATA packets ingress has handed to the application's AF_XDP socket, ever (atomic
    adds)."""
    frames: u64


class Taken(Struct):
    """Written by the application: how many of those it has taken off the socket's ring."""
    frames: u64


class Event(Struct):
    """For the application: an RPC the data path gave up on."""
    id: u64
    peer: u32
    local_port: u16
    peer_port: u16
    what: u32
    state: u32
    granted: u32          # STALLED: the bytes we let the sender send
    length: u32           # ... of a message this long


class Counters(Struct):
    data_in: u64
    duplicates: u64
    bad_data: u64         # wrong length, offset off a packet boundary, past the end
    bad_header: u64
    unknown_rpc: u64      # GRANT, ACK, a response: for no RPC we know
    grants_sent: u64
    resends_sent: u64
    resends_in: u64
    unknown_sent: u64
    busy_sent: u64
    aborted: u64
    reclaimed: u64
    over_grant: u64       # packets egress handed back: beyond the grant
    no_slot: u64          # a message that needs grants found every slot taken
    evicted: u64          # ... and, after EVICT_TICKS, took the youngest message's slot
    peer_forgot: u64      # RPCs removed because the client answered UNKNOWN
    repaired: u64         # runs of packets the application lost, asked for again (REPAIR)
    timer_failed: u64     # an RPC's timer could not be started (tried again at its next packet)


class Wake(Struct):
    asked: u32


class GrantRecord(Struct):
    """One GRANT the scheduler decided (`etran trace`, tests): for which message, up to
    where, with what had arrived, at which SRPT rank, when."""
    id: u64
    peer: u32
    local_port: u16
    peer_port: u16
    offset: u32
    received: u32
    rank: u32
    now_ns: u64


rpcs = HashMap(RpcKey, Rpc, max_entries=4096)
cands = ArrayMap(Cands, max_entries=1)
picks = PerCpuArray(Picks, max_entries=1)
ctrl = Queue(CtrlReq, max_entries=1024)
config = ArrayMap(Config, max_entries=1)
ports = HashMap(u16, Port, max_entries=256)
wake = ArrayMap(Wake, max_entries=1)
# A record when the flag rises wakes the gen pump at once (it also looks at the flag now
# and then, in case a record was lost): one record per round of the pump, not one per request
wake_ring = RingBuf(Wake, max_entries=4096)
events = RingBuf(Event, max_entries=1 << 16)
trace = RingBuf(GrantRecord, max_entries=1 << 20)
counters = PerCpuArray(Counters, max_entries=1)
sockets = XskMap(max_entries=4)
handed = ArrayMap(Handed, max_entries=1)
taken = ArrayMap(Taken, max_entries=1)


def same(cs: Cands, i: u32, key: RpcKey) -> bool:
    return cs.used[i] != 0 and cs.id[i] == key.id and cs.peer[i] == key.peer and \
        cs.local_port[i] == key.local_port and cs.peer_port[i] == key.peer_port


def ask_gen() -> None:
    w = wake.get(0)
    if w is not None:
        if w.asked == 0:
            # the flag first, then the record (TCP's `ask_gen` says why)
            w.asked = 1
            wake_ring.output(Wake(asked=1))


def first_grant(length: u32) -> u32:
    cfg = config.get(0)
    if cfg is None:
        return min(length, 60000)
    return min(length, cfg.rtt_bytes)


def note_candidate(key: RpcKey, r: Rpc, evict: bool) -> bool:
    """Keep the scheduler's view of a message that needs grants: enter it in a free slot,
    update what arrived, free its slot once it is whole. With every slot taken, `evict`
    (the message has waited EVICT_TICKS for one) takes the slot of the message that entered
    last among those with all they were granted in, which waits in its turn. False: the
    message needs grants and has no slot."""
    cs = cands.get(0)
    if cs is None:
        return True
    received = r.received
    length = r.in_length
    granted = r.in_granted
    done = received >= length
    needs = granted < length
    placed = False
    evicted = False
    with cs.lock:
        for i in range(SLOTS):
            if same(cs, i, key):
                placed = True
                if done:
                    cs.used[i] = 0
                else:
                    cs.received[i] = received
        if not placed and needs and not done:
            at: u32 = SLOTS                  # a free slot, or else the youngest
            for i in range(SLOTS):
                if at == SLOTS and cs.used[i] == 0:
                    at = u32(i)
            if at == SLOTS and evict:
                # only a message with nothing granted on its way: what a slot's message was
                # granted and has not received counts against max_incoming
                for i in range(SLOTS):
                    if cs.granted[i] <= cs.received[i] and \
                            (at == SLOTS or i32(cs.born[i] - cs.born[at % SLOTS]) > 0):
                        at = u32(i)
                evicted = at < SLOTS
            if at < SLOTS:
                cs.id[at] = key.id
                cs.peer[at] = key.peer
                cs.local_port[at] = key.local_port
                cs.peer_port[at] = key.peer_port
                cs.length[at] = length
                cs.received[at] = received
                cs.granted[at] = granted
                cs.entered += 1
                cs.born[at] = cs.entered
                cs.used[at] = 1
                placed = True
    if done:
        ask_gen()                            # room for the others' grants
    elif needs:
        ct = counters.get(0)
        if placed:
            ask_gen()
            if evicted and ct is not None:
                ct.evicted += 1
        elif ct is not None:
            ct.no_slot += 1
    return placed or done or not needs


def forget_candidate(key: RpcKey) -> None:
    cs = cands.get(0)
    if cs is None:
        return
    with cs.lock:
        for i in range(SLOTS):
            if same(cs, i, key):
                cs.used[i] = 0


def arm(r: Rpc) -> None:
    """Start the RPC's timer. The kernel allocates a timer's state when it is first set up,
    and that can fail (under load it failed thousands of times in a long incast run, and an
    RPC whose timer never ran waited for a RESEND forever): then the RPC's next packet, or
    gen (the library's ARM request), tries again."""
    if r.timer.start(TICK_NS):
        r.armed = 1
    else:
        r.armed = 0
        ct = counters.get(0)
        if ct is not None:
            ct.timer_failed += 1


# --------------------------------------------------------------------------- egress
@egress
def homa_tx(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_DROP
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.ver_ihl != 0x45 or ip.protocol != IPPROTO_HOMA:
        return XDP_DROP
    h = pkt.header(HomaHdr, HDR_AT)
    d = pkt.header(HomaData, DATA_AT)
    addrs = pkt.header(EthAddrs, 0)
    if h is None or d is None or addrs is None or h.kind != DATA:
        return XDP_DROP
    length = d.message_length
    offset = d.offset
    size = u32(ip.total_len) - (PAYLOAD_AT - Eth.size)
    if u32(ip.total_len) < PAYLOAD_AT - Eth.size + 1 or pkt.len != u32(ip.total_len) + Eth.size:
        return XDP_DROP
    if length == 0 or length > MAX_MESSAGE or offset % PAYLOAD != 0 or offset >= length or \
            size != min(length - offset, PAYLOAD):
        return XDP_DROP
    from_client = h.flags & FROM_CLIENT != 0
    key = RpcKey(id=h.rpc_id if from_client else h.rpc_id | 1, peer=ip.dst,
                 local_port=h.sport, peer_port=h.dport)
    r = rpcs.get(key)
    if r is None:
        if not from_client or offset != 0 or h.rpc_id & 1 != 0:
            return XDP_DROP                  # a response to no request, or a request's middle
        if not rpcs.insert(key, Rpc(state=CLIENT_OUT, out_length=length,
                                    granted=first_grant(length), local_ip=ip.src)):
            return XDP_DROP
        r = rpcs.get(key)
        if r is None:
            return XDP_DROP
        r.local_mac = addrs.src
        r.peer_mac = addrs.dst
    elif r.state == SERVER_BUSY and not from_client and offset == 0:
        r.state = SERVER_OUT                 # the response begins
        r.out_length = length
        r.granted = first_grant(length)
        r.silent = 0
    if r.armed == 0:
        arm(r)
    if not ((r.state == CLIENT_OUT and from_client) or (r.state == SERVER_OUT and
            not from_client)) or length != r.out_length:
        return XDP_DROP
    end = offset + size
    if end > r.granted:
        ct = counters.get(0)
        if ct is not None:
            ct.over_grant += 1
        return sockets.redirect(pkt.rx_queue, XDP_DROP)   # back: sent again on a GRANT
    prio: u32 = r.out_prio
    if length <= PAYLOAD:
        prio = 7
    elif offset < first_grant(length):
        prio = 4                             # longer than every cutoff
        cfg = config.get(0)
        if cfg is not None:
            for i in range(4):
                if prio == 4 and length <= cfg.cutoffs[i]:
                    prio = 7 - u32(i)            # the first cutoff the message fits
    tos = u8(prio << 5) | (ip.tos & 0x1F)
    old = (u16(ip.ver_ihl) << 8) | u16(ip.tos)
    ip.tos = tos
    ip.check = csum_replace16(ip.check, old, (u16(ip.ver_ihl) << 8) | u16(tos))
    if end > r.sent:                         # one sender per RPC at a time (etran.homa)
        r.sent = end
    return XDP_TX


# --------------------------------------------------------------------------- ingress
@xdp
def homa_rx(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.protocol != IPPROTO_HOMA:
        return XDP_PASS
    ct = counters.get(0)
    if ct is None:
        return XDP_ABORTED
    h = pkt.header(HomaHdr, HDR_AT)
    if h is None or ip.ver_ihl != 0x45 or u32(ip.total_len) + Eth.size > pkt.len:
        ct.bad_header += 1
        return XDP_DROP
    from_client = h.flags & FROM_CLIENT != 0
    key = RpcKey(id=h.rpc_id | 1 if from_client else h.rpc_id, peer=ip.src,
                 local_port=h.dport, peer_port=h.sport)
    if h.kind == DATA:
        return data_in(pkt, ip, h, key, from_client, ct)
    c = pkt.header(HomaCtrl, DATA_AT)
    r = rpcs.get(key)
    if h.kind == GRANT or h.kind == RESEND:
        if c is None:
            ct.bad_header += 1
            return XDP_DROP
        if h.kind == RESEND:
            ct.resends_in += 1
        if r is None:
            if h.kind == GRANT:
                ct.unknown_rpc += 1
                return XDP_DROP
            ct.unknown_sent += 1
            return answer(pkt, ip, h, UNKNOWN)
        if h.kind == RESEND and (r.state == SERVER_IN or r.state == SERVER_BUSY):
            r.silent = 0                     # the client is still there
            ct.busy_sent += 1
            return answer(pkt, ip, h, BUSY)
        r.silent = 0
        r.resends = 0
        r.busy = 0
        if r.armed == 0:
            arm(r)
        if h.kind == RESEND and (r.state == CLIENT_IN):
            return XDP_DROP                  # our request is whole: nothing to send again
        allowed = c.offset if h.kind == GRANT else c.offset + min(c.length, MAX_MESSAGE)
        if allowed > r.granted:
            r.granted = min(allowed, r.out_length)
        if h.kind == GRANT:
            r.out_prio = u32(c.priority & 7)
        return sockets.redirect(pkt.rx_queue, XDP_DROP)   # the library sends
    if r is None:
        ct.unknown_rpc += 1
        return XDP_DROP
    if r.armed == 0:
        arm(r)
    if h.kind == BUSY:
        r.silent = 0                         # the peer is alive: it is working on it
        r.resends = 0
        r.busy = min(r.busy + 1, MAX_BUSY)   # ... so ask it less often (15 ms to 120 ms)
        return XDP_DROP
    if h.kind == ACK:
        if r.state == SERVER_OUT or r.state == SERVER_BUSY:
            forget_candidate(key)
            rpcs.delete(key)
        return XDP_DROP
    if h.kind == UNKNOWN:
        if from_client:                      # the client forgot the RPC: so do we
            ct.peer_forgot += 1
            forget_candidate(key)
            rpcs.delete(key)
            return XDP_DROP
        return sockets.redirect(pkt.rx_queue, XDP_DROP)   # the library sends again
    ct.bad_header += 1
    return XDP_DROP


def data_in(pkt: Packet, ip: IPv4, h: HomaHdr, key: RpcKey, from_client: bool,
            ct: Counters) -> int:
    d = pkt.header(HomaData, DATA_AT)
    addrs = pkt.header(EthAddrs, 0)
    if d is None or addrs is None or u32(ip.total_len) < PAYLOAD_AT - Eth.size + 1:
        ct.bad_header += 1
        return XDP_DROP
    length = d.message_length
    offset = d.offset
    size = u32(ip.total_len) - (PAYLOAD_AT - Eth.size)
    if length == 0 or length > MAX_MESSAGE or offset % PAYLOAD != 0 or offset >= length or \
            size != min(length - offset, PAYLOAD):
        ct.bad_data += 1
        return XDP_DROP
    r = rpcs.get(key)
    if r is None:
        if not from_client or ports.get(h.dport) is None:
            ct.unknown_rpc += 1
            return XDP_DROP
        if not rpcs.insert(key, Rpc(state=SERVER_IN, in_length=length,
                                    in_granted=first_grant(length), local_ip=ip.dst)):
            return XDP_DROP
        r = rpcs.get(key)
        if r is None:
            return XDP_DROP
        r.local_mac = addrs.dst
        r.peer_mac = addrs.src
    elif r.state == CLIENT_OUT and not from_client:
        r.state = CLIENT_IN                  # the response begins
        r.in_length = length
        r.in_granted = first_grant(length)
    if r.armed == 0:
        arm(r)
    # A request's packets are taken until it is whole, and then only those a REPAIR asked
    # for again (their bits are clear, every other bit is set: below)
    if not (((r.state == SERVER_IN or r.state == SERVER_BUSY) and from_client) or
            (r.state == CLIENT_IN and not from_client)):
        ct.duplicates += 1                   # a request packet after the response began
        return XDP_DROP
    if length != r.in_length:
        ct.bad_data += 1
        return XDP_DROP
    index = offset // PAYLOAD
    word = index >> 6
    bit = u64(1) << u64(index & 63)
    if word >= BITMAP_WORDS:
        ct.bad_data += 1
        return XDP_DROP
    if r.bitmap[word] & bit != 0:
        ct.duplicates += 1
        return XDP_DROP
    r.bitmap[word] = r.bitmap[word] | bit
    r.received += size
    r.silent = 0
    ct.data_in += 1
    if r.received >= r.in_length and r.state == SERVER_IN:
        r.state = SERVER_BUSY
    if r.in_length > first_grant(r.in_length):
        note_candidate(key, r, False)
    hd = handed.get(0)
    if hd is not None:
        atomic_add(hd.frames, 1)
    return sockets.redirect(pkt.rx_queue, XDP_DROP)


def ring_backlog() -> u32:
    """Bytes of DATA waiting on the application's ring (at most a full packet each): taken
    by this path, not yet by the application (which may count a frame or two ahead)."""
    hd = handed.get(0)
    tk = taken.get(0)
    if hd is None or tk is None or tk.frames >= hd.frames:
        return 0
    return u32(min(hd.frames - tk.frames, u64(1 << 16))) * PAYLOAD


def answer(pkt: Packet, ip: IPv4, h: HomaHdr, kind: u8) -> int:
    """Turn the packet around as a bare `kind` (BUSY, UNKNOWN) from us to its sender."""
    addrs = pkt.header(EthAddrs, 0)
    if addrs is None:
        return XDP_DROP
    for i in range(6):                       # byte by byte: `addrs.dst` is a view, not a copy
        octet = addrs.dst.octets[i]
        addrs.dst.octets[i] = addrs.src.octets[i]
        addrs.src.octets[i] = octet
    src = ip.src
    ip.src = ip.dst
    ip.dst = src
    sport = h.sport
    h.sport = h.dport
    h.dport = sport
    h.kind = kind
    h.flags = (h.flags & FROM_CLIENT) ^ FROM_CLIENT
    return XDP_TX


# --------------------------------------------------------------------------- gen
@gen
def homa_gen(pkt: Packet) -> int:
    req = ctrl.pop()
    if req is None:
        schedule_grants()
        req = ctrl.pop()
    for _ in range(4):                       # skip requests of RPCs gone meanwhile
        if req is None:
            return XDP_DROP                  # nothing more to send
        if rpcs.get(RpcKey(id=req.id, peer=req.peer, local_port=req.local_port,
                           peer_port=req.peer_port)) is not None:
            break
        req = ctrl.pop()
    if req is None:
        return XDP_DROP
    key = RpcKey(id=req.id, peer=req.peer, local_port=req.local_port, peer_port=req.peer_port)
    r = rpcs.get(key)
    if r is None:
        return XDP_DROP                      # four in a row gone: the next round goes on
    if r.armed == 0:
        arm(r)
    if req.kind == ARM:
        ask_gen()                            # nothing to send: the requests behind it go
        return XDP_DROP
    if req.kind == REPAIR and not forget_lost(r, req.offset, req.length):
        ask_gen()                            # stale: the requests behind it still go
        return XDP_DROP
    if not pkt.resize_tail(CTRL_FRAME - i32(pkt.len)):
        return XDP_DROP
    eth = pkt.header(Eth, 0)
    addrs = pkt.header(EthAddrs, 0)
    ip = pkt.header(IPv4, Eth.size)
    h = pkt.header(HomaHdr, HDR_AT)
    c = pkt.header(HomaCtrl, DATA_AT)
    if eth is None or addrs is None or ip is None or h is None or c is None:
        return XDP_DROP
    addrs.dst = r.peer_mac
    addrs.src = r.local_mac
    eth.proto = ETH_P_IP
    ip.ver_ihl = 0x45
    ip.tos = u8(7 << 5)                      # control packets at the top priority
    ip.total_len = CTRL_FRAME - Eth.size
    ip.id = 0
    ip.frag_off = 0
    ip.ttl = 64
    ip.protocol = IPPROTO_HOMA
    ip.src = r.local_ip
    ip.dst = key.peer
    ip.check = 0
    ip.check = header_checksum(pkt)
    h.sport = key.local_port
    h.dport = key.peer_port
    h.kind = RESEND if req.kind == REPAIR else u8(req.kind)
    h.flags = FROM_CLIENT if key.id & 1 == 0 else 0
    h.reserved = 0
    h.rpc_id = key.id & ~u64(1)
    c.offset = req.offset
    c.length = req.length
    c.priority = u8(req.priority)
    c.reserved[0] = 0
    c.reserved[1] = 0
    c.reserved[2] = 0
    ct = counters.get(0)
    if ct is not None:
        if req.kind == GRANT:
            ct.grants_sent += 1
        else:
            ct.resends_sent += 1
        if req.kind == REPAIR:
            ct.repaired += 1
    return XDP_TX


def forget_lost(r: Rpc, offset: u32, length: u32) -> bool:
    """Clear the bits of the packets in [offset, offset + length) of the message arriving,
    which this path took and the application lost: a run within one bitmap word, `length`
    exactly their bytes. Their bytes no longer count as received; the RPC keeps its state
    (a whole request stays SERVER_BUSY: the application may answer it, and `data_in` takes
    the packets whose bits are clear). A run already forgotten (its RESEND was lost) is
    asked for again as it is. False, changing nothing, for a run part taken, part not: the
    library's view was stale."""
    if length == 0 or offset % PAYLOAD != 0 or offset >= r.in_length:
        return False
    first = offset // PAYLOAD
    count = (length + PAYLOAD - 1) // PAYLOAD
    word = first >> 6
    lo = first & 63
    if word >= BITMAP_WORDS or lo + count > 64 or \
            length != min(count * PAYLOAD, r.in_length - offset):
        return False
    mask = u64(0xFFFFFFFFFFFFFFFF)
    if count < 64:
        mask = (u64(1) << u64(count)) - u64(1)
    mask = mask << u64(lo)
    held = r.bitmap[word] & mask
    if held == 0:
        return True                          # forgotten before: ask again
    if held != mask or r.received < length:
        return False
    r.bitmap[word] = r.bitmap[word] & ~mask
    r.received -= length
    r.last_received = r.received
    r.silent = 0
    return True


class IPv4Words(Header):
    w: Array[be16, 10]


def header_checksum(pkt: Packet) -> u16:
    words = pkt.header(IPv4Words, Eth.size)
    if words is None:
        return 0
    s: u32 = 0
    for i in range(10):
        s += u32(words.w[i])
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return u16(~s)


def schedule_grants() -> None:
    """SRPT: the OVERCOMMIT candidates with the fewest bytes left each get grant_window
    bytes past what arrived, while the bytes granted and not received (all messages) stay
    within max_incoming; rank 0 (the shortest) gets scheduled priority 3."""
    cfg = config.get(0)
    cs = cands.get(0)
    chosen = picks.get(0)
    if cfg is None or cs is None or chosen is None:
        return
    window = cfg.grant_window
    limit = cfg.max_incoming
    waiting = ring_backlog()
    for j in range(OVERCOMMIT):
        chosen.offset[j] = 0                 # no grant at this rank (yet)
    with cs.lock:
        incoming: u32 = waiting
        for i in range(SLOTS):
            if cs.used[i] != 0 and cs.granted[i] > cs.received[i]:
                incoming += cs.granted[i] - cs.received[i]
        # Each slot's place in SRPT order: the used slots with fewer bytes left (or as
        # many, at a lower index) come first. Written to the map and read back below, so
        # that the verifier does not follow every combination of ranks.
        for i in range(SLOTS):
            place: u32 = 0
            left = cs.length[i] - cs.received[i]
            for j in range(SLOTS):
                other = cs.length[j] - cs.received[j]
                if cs.used[j] != 0 and (other < left or (other == left and j < i)):
                    place += 1
            cs.rank[i] = place if cs.used[i] != 0 else 255
        # Every FIFO_EVERY-th round the message that has waited longest goes first (those
        # it passes move down one place), so that a steady load of shorter messages cannot
        # starve a long one for ever (Homa's FIFO grants).
        cs.rounds += 1
        if cs.rounds % FIFO_EVERY == 0:
            oldest: u32 = SLOTS
            for i in range(SLOTS):
                if cs.used[i] != 0 and (oldest == SLOTS or
                                        i32(cs.born[i] - cs.born[oldest % SLOTS]) < 0):
                    oldest = u32(i)
            if oldest < SLOTS:
                lifted = cs.rank[oldest]
                for i in range(SLOTS):
                    if cs.used[i] != 0 and cs.rank[i] < lifted:
                        cs.rank[i] += 1
                cs.rank[oldest] = 0
        # In SRPT order (ranks are distinct), grant each of the first OVERCOMMIT up to
        # grant_window past what arrived, within max_incoming.
        for rank in range(OVERCOMMIT):
            for i in range(SLOTS):
                if cs.rank[i] == u32(rank):
                    want = min(cs.received[i] + window, cs.length[i])
                    if want > cs.granted[i] and incoming < limit:
                        more = min(want - cs.granted[i], limit - incoming)
                        if more >= PAYLOAD or cs.granted[i] + more == cs.length[i]:
                            cs.granted[i] += more
                            incoming += more
                            chosen.id[rank] = cs.id[i]
                            chosen.peer[rank] = cs.peer[i]
                            chosen.local_port[rank] = cs.local_port[i]
                            chosen.peer_port[rank] = cs.peer_port[i]
                            chosen.offset[rank] = cs.granted[i]
                            chosen.received[rank] = cs.received[i]
    now = now_ns()
    for j in range(OVERCOMMIT):
        if chosen.offset[j] != 0:
            trace.output(GrantRecord(id=chosen.id[j], peer=chosen.peer[j],
                                     local_port=chosen.local_port[j],
                                     peer_port=chosen.peer_port[j], offset=chosen.offset[j],
                                     received=chosen.received[j], rank=u32(j), now_ns=now))
            ctrl.push(CtrlReq(id=chosen.id[j], peer=chosen.peer[j],
                              local_port=chosen.local_port[j], peer_port=chosen.peer_port[j],
                              kind=GRANT, offset=chosen.offset[j], length=0,
                              priority=u32(3) - min(u32(j), 3)))
            r = rpcs.get(RpcKey(id=chosen.id[j], peer=chosen.peer[j],
                                local_port=chosen.local_port[j], peer_port=chosen.peer_port[j]))
            if r is not None and chosen.offset[j] > r.in_granted:
                r.in_granted = chosen.offset[j]


# --------------------------------------------------------------------------- timers
@timer(Rpc.timer)
def homa_tick(key: RpcKey, r: Rpc) -> None:
    receiving = r.state == CLIENT_IN or r.state == SERVER_IN
    # A client hears nothing from the server, whether its request is whole (no response
    # yet) or not (no grants): it asks, and learns BUSY, or UNKNOWN if the server lost it.
    waiting = r.state == CLIENT_OUT
    if receiving and r.received != r.last_received:
        r.last_received = r.received
        r.silent = 0
        r.resends = 0
    elif receiving and r.received >= r.in_granted:
        # All we granted is here: waiting on our grants, which SRPT gives to shorter
        # messages first; a message that found every slot taken looks for one again
        # (nothing else would: all its packets so far are here), and one that waited
        # EVICT_TICKS for it takes the youngest message's
        r.silent = 0
        if note_candidate(key, r, r.unslotted >= EVICT_TICKS):
            r.unslotted = 0
        else:
            r.unslotted += 1
    else:
        r.silent += 1
    if (r.state == SERVER_OUT or r.state == SERVER_BUSY) and r.silent >= RECLAIM_TICKS:
        ct = counters.get(0)
        if ct is not None:
            ct.reclaimed += 1
        forget_candidate(key)
        rpcs.delete(key)                     # no ACK, no RESEND: the client is gone
        return
    limit = RESEND_TICKS
    if waiting:
        limit = RESEND_TICKS << min(r.busy, MAX_BUSY)
    if (receiving or waiting) and r.silent >= limit:
        r.silent = 0
        r.resends += 1
        if r.resends > MAX_RESENDS:
            ct = counters.get(0)
            if ct is not None:
                ct.aborted += 1
            events.output(Event(id=key.id, peer=key.peer, local_port=key.local_port,
                                peer_port=key.peer_port, what=EVENT_ABORTED, state=r.state))
            forget_candidate(key)
            rpcs.delete(key)
            return
        if receiving:
            # The library knows which packets are missing: it asks for all of them.
            events.output(Event(id=key.id, peer=key.peer, local_port=key.local_port,
                                peer_port=key.peer_port, what=EVENT_STALLED, state=r.state,
                                granted=r.in_granted, length=r.in_length))
        elif ctrl.push(CtrlReq(id=key.id, peer=key.peer, local_port=key.local_port,
                               peer_port=key.peer_port, kind=RESEND, offset=0,
                               length=first_grant(r.out_length), priority=7)):
            ask_gen()                        # the server is silent: ask it
    if not r.timer.start(TICK_NS):
        r.armed = 0                          # the next packet tries again
