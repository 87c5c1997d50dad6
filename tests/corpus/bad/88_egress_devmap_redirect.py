from etran.dsl import *
# expect: hook-helper at 19:12
# An egress program forwards frames to another interface through a DevMap: the runtime runs
# @egress as a test run, where a redirect can only mean "back to the application".


class Choice(Header):
    port: u8


ports = DevMap(max_entries=4)


@egress
def forward(pkt: Packet) -> int:
    c = pkt.header(Choice, 42)
    if c is None:
        return XDP_DROP
    return ports.redirect(c.port, XDP_DROP)
