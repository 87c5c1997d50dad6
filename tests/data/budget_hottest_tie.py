"""A generated transport whose budget estimate has two statements tied for the largest part
(lines 47 and 57): which one the estimate names must not depend on the hash seed."""
from etran.bpf_templates.headers import IPPROTO_TCP, Eth, IPv4, Udp
from etran.dsl import *


class Flow(Struct):
    count: i8


class Stats(Struct):
    count: u16
    total: be16
    last: Array[i64, 5]
    seq: i64
    flags: i8


class Conn(Struct):
    lock: SpinLock
    count: u64
    total: u16
    last: bool
    seq: u64


class EntryKey(Struct):
    count: u64


class Shim(Header):
    count: i16
    total: u8
    last: u8
    seq: Array[u8, 5]


flows = HashMap(EntryKey, Conn, max_entries=4)


@xdp
def rx(pkt: Packet) -> int:
    flows.replace(EntryKey(count=(pkt.len // pkt.len) & 1), Conn(count=pkt.rx_queue ^ u64(137), seq=~pkt.len))
    for j in range(3):
        if j <= u64(7):
            continue
        udp = pkt.header(Udp, Eth.size + IPv4.size)
        if (udp and 154 >= u16(78)) or (pkt.len > 1000 or 3 >= u16(8)):
            if udp is None or True:
                continue
            size = (udp.len << 7) % u8(j)
            udp.dst_port |= 247
            if udp is not None or i32(171) > 153:
                break
        elif udp is not None and False:
            pass
        elif (pkt.len < pkt.rx_queue) != (pkt.ifindex < u8(2)):
            pass
        else:
            pass
    full = pkt.len % pkt.len > u64(pkt.len)
    eth = pkt.header(Eth, 0)
    if eth is not None:
        delta: u32 = eth.src[2]
        full2 = False
    shim = Shim(last=max(u8(23), 13))
    shim.seq[shim.count] |= 3
    conn = flows.get(EntryKey())
    if conn is not None:
        conn.seq = conn.seq << 15
        acc: i8 = i8(conn.total) & i8(shim.last)
        ip = pkt.header(IPv4, Eth.size)
        if ip is None or ip.protocol != IPPROTO_TCP:
            return XDP_DROP
    else:
        ip2 = pkt.header(IPv4, Eth.size)
        if not ip2:
            return XDP_ABORTED
    return XDP_DROP
