"""Homa-style receiver: count DATA bytes per RPC, grant more as data arrives, send GRANTs.

Each message's first UNSCHED_BYTES arrive without a grant. As DATA packets
arrive, ingress (`rx`) moves the RPC's grant offset GRANT_WINDOW bytes past what
was received, capped by the message length and by MAX_INCOMING bytes granted
but not yet received across all RPCs (an atomic total), and queues a GRANT.
The generation hook (`send_grants`) turns queued GRANTs into frames, one per
run, and says XDP_DROP when there is nothing left to send. Shorter remaining
messages get higher priorities, as in Homa's SRPT policy.
"""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, ETH_P_IP, ipv4_checksum

IPPROTO_HOMA = 0xFD
HOMA_DATA = 0x10
HOMA_GRANT = 0x11
UNSCHED_BYTES = 60000
GRANT_WINDOW = 100000
MAX_INCOMING = 480000


class HomaHdr(Header):
    sport: be16
    dport: be16
    kind: u8
    priority: u8
    reserved: be16
    rpc_id: be64


class HomaData(Header):
    message_length: be32
    offset: be32
    length: be32


class HomaGrant(Header):
    offset: be32
    priority: u8
    reserved: Array[u8, 3]


class RpcKey(Struct):
    rpc_id: u64
    peer: be32
    local_port: be16
    peer_port: be16


class Rpc(Struct):
    message_length: u32
    received: u32
    granted: u32
    packets: u32


class GrantRequest(Struct):
    rpc_id: u64
    peer: be32
    local_ip: be32
    local_port: be16
    peer_port: be16
    offset: u32
    priority: u8


class Totals(Struct):
    incoming: i64        # granted but not yet received, all RPCs
    grants: u64


GRANT_FRAME = Eth.size + IPv4.size + HomaHdr.size + HomaGrant.size

rpcs = HashMap(RpcKey, Rpc, max_entries=4096)
pending = Queue(GrantRequest, max_entries=256)
totals = ArrayMap(Totals, max_entries=1)
app_sockets = XskMap(max_entries=64)


def priority_for(remaining: u32) -> u8:
    """Shortest remaining processing time first: fewer bytes left, higher priority."""
    if remaining < 20000:
        return 7
    if remaining < 100000:
        return 5
    if remaining < 500000:
        return 3
    return 1


@xdp
def rx(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.protocol != IPPROTO_HOMA:
        return XDP_PASS
    off = Eth.size + ip.header_len()
    h = pkt.header(HomaHdr, off)
    if h is None or h.kind != HOMA_DATA:
        return XDP_PASS
    d = pkt.header(HomaData, off + HomaHdr.size)
    if d is None:
        return XDP_DROP
    t = totals.get(0)
    if t is None:
        return XDP_ABORTED
    key = RpcKey(rpc_id=h.rpc_id, peer=ip.src, local_port=h.dport, peer_port=h.sport)
    r = rpcs.get(key)
    if r is None:
        first = min(d.message_length, UNSCHED_BYTES)
        if not rpcs.insert(key, Rpc(message_length=d.message_length, granted=first)):
            return XDP_DROP                  # table full: let the sender retry
        r = rpcs.get(key)
        if r is None:
            return XDP_DROP
    length = min(d.length, r.message_length - r.received)
    r.received += length
    r.packets += 1
    if r.granted > UNSCHED_BYTES:
        atomic_add(t.incoming, -i64(length))
    wanted = min(r.received + GRANT_WINDOW, r.message_length)
    if wanted > r.granted:
        room = MAX_INCOMING - t.incoming
        grant = min(i64(wanted - r.granted), room)
        if grant > 0:
            r.granted += u32(grant)
            atomic_add(t.incoming, grant)
            pending.push(GrantRequest(rpc_id=h.rpc_id, peer=ip.src, local_ip=ip.dst,
                                      local_port=h.dport, peer_port=h.sport, offset=r.granted,
                                      priority=priority_for(r.message_length - r.received)))
    return app_sockets.redirect(pkt.rx_queue, XDP_PASS)


@gen
def send_grants(pkt: Packet) -> int:
    g = pending.pop()
    if g is None:
        return XDP_DROP                      # nothing more to send
    if not pkt.resize_tail(GRANT_FRAME - i32(pkt.len)):
        return XDP_DROP
    eth = pkt.header(Eth, 0)
    ip = pkt.header(IPv4, Eth.size)
    h = pkt.header(HomaHdr, Eth.size + IPv4.size)
    grant = pkt.header(HomaGrant, Eth.size + IPv4.size + HomaHdr.size)
    if eth is None or ip is None or h is None or grant is None:
        return XDP_DROP
    eth.proto = ETH_P_IP
    ip.ver_ihl = 0x45
    ip.tos = g.priority << 5
    ip.total_len = GRANT_FRAME - Eth.size
    ip.ttl = 64
    ip.protocol = IPPROTO_HOMA
    ip.src = g.local_ip
    ip.dst = g.peer
    ip.check = 0
    ip.check = ipv4_checksum(pkt, Eth.size)
    h.sport = g.local_port
    h.dport = g.peer_port
    h.kind = HOMA_GRANT
    h.priority = g.priority
    h.rpc_id = g.rpc_id
    grant.offset = g.offset
    grant.priority = g.priority
    t = totals.get(0)
    if t is not None:
        atomic_add(t.grants, 1)
    return XDP_TX
