from etran.dsl import *
# expect: stack at 16:5
# Two 400-byte SACK scoreboards built on the stack in one hook: over 512 bytes.


class Scoreboard(Struct):
    left: Array[u32, 50]
    right: Array[u32, 50]


boards = HashMap(u32, Scoreboard, max_entries=64)
spares = HashMap(u32, Scoreboard, max_entries=64)


@xdp
def reset_sack(pkt: Packet) -> int:
    boards.set(pkt.rx_queue, Scoreboard())
    spares.set(pkt.rx_queue, Scoreboard())
    return XDP_PASS
