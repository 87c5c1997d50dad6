"""Budget under-estimate (1.21x): a flag materialized from two views' tests under a spin lock,
stored into a map value and a struct; covered by the margin."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp
LIMIT: u32 = 1179
class Flow(Struct):
    count: be16
class StatsKey(Struct):
    count: u32
    def total(self) -> u64:
        return u16(self.count <= u8(233)) | (self.count - self.count)
class Stats(Struct):
    count: u64
    total: u64
    seq: bool
    flags: bool
    lock: SpinLock
class Shim(Header):
    count: u16
flows = HashMap(StatsKey, Flow, max_entries=64)
slots = ArrayMap(Stats, max_entries=2)
@xdp
def rx(pkt: Packet) -> int:
    shim = pkt.header(Shim, LIMIT & 63)
    stat = StatsKey(count=min(LIMIT, LIMIT, pkt.len))
    stats = slots.get(pkt.len)
    stats2 = slots.get(16 ^ stat.count)
    if not stats2:
        return XDP_REDIRECT
    with stats2.lock:
        flag = not shim or shim.count >= pkt.rx_queue
    tcp = pkt.header(Tcp, Eth.size + IPv4.size)
    if tcp is not None and tcp.urg_ptr < u8(255):
        stats2.seq = flag
        flows.insert(stat, Flow(count=min(u16(0), 115)))
    slots.set(1, Stats(count=stat.total(), total=1448, seq=False, flags=flag))
    return XDP_REDIRECT

