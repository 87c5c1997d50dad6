from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp, TcpOption, TCPOPT_MSS
# expect: loop-bound at 19:20
# The option loop runs up to a count read from the packet: the verifier cannot see a bound.


@xdp
def find_mss(pkt: Packet) -> int:
    ip = pkt.header(IPv4, Eth.size)
    if ip is None:
        return XDP_PASS
    tcp_off = Eth.size + ip.header_len()
    tcp = pkt.header(Tcp, tcp_off)
    if tcp is None:
        return XDP_PASS
    opt_bytes = tcp.header_len() - Tcp.size
    off = tcp_off + Tcp.size
    found = False
    for i in range(opt_bytes):
        opt = pkt.header(TcpOption, off)
        if opt is None:
            break
        if opt.kind == TCPOPT_MSS:
            found = True
            break
        off += u32(max(opt.len, 1))
    return XDP_DROP if found else XDP_PASS
