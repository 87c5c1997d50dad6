from etran.dsl import *
# expect: syntax at 12:9
# A `break` left outside the loop after re-indenting.


@gen
def send_burst(pkt: Packet) -> int:
    sent: u32 = 0
    for i in range(8):
        sent += 1
    if sent == 8:
        break
    return XDP_DROP
