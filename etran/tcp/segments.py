"""TCP segments as the control plane builds and reads them: Ethernet + IPv4 + TCP, checksums
included (the peer's kernel verifies them), options limited to what the handshake offers."""

from __future__ import annotations

import functools
import ipaddress
import socket
import struct
from dataclasses import dataclass

from etran.testing.packets import checksum  # RFC 1071, with a starting sum

FIN, SYN, RST, PSH, ACK, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x40, 0x80
ETH_P_IP = 0x0800
IPPROTO_TCP = 6
MSS = 1460                 # what we offer and the most we send: 1500-byte MTU, no options
WINDOW = 65535             # the window field of a SYN (never scaled, RFC 7323)
HEADERS = 14 + 20 + 20     # Ethernet, IPv4, TCP without options

_TCP = struct.Struct("!HHIIBBHHH")
_IP = struct.Struct("!BBHHHBBH4s4s")


@functools.lru_cache(maxsize=1024)
def ip_int(addr: str) -> int:
    """An IPv4 address as the data path keeps it: the big-endian value, as an integer."""
    return int(ipaddress.IPv4Address(addr))


@dataclass(slots=True)
class Segment:
    """What the control plane reads from a received frame (not frozen: a frozen
    dataclass's constructor costs several microseconds more, on every segment received)."""

    src: str
    dst: str
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int
    mss: int | None        # the MSS option, when present
    wscale: int | None     # the window-scale option's shift, when present (RFC 7323)
    ts: tuple[int, int] | None   # the timestamps option's (TSval, TSecr), when present
    payload: bytes
    src_mac: bytes
    sack_perm: bool = False      # the SACK-permitted option (RFC 2018), in a SYN

    def has(self, flags: int) -> bool:
        return self.flags & flags == flags


TIMEOUT_PROTO = 0x88B5     # the runtime's TIMEOUT frames, and egress's notices made of them
NOTICE_WINDOW, NOTICE_RESUME = 1, 2


def timeout_frame() -> bytes:
    """What the egress pump pushes when a timer asks: room for the notice egress makes."""
    return bytes(12) + struct.pack("!H", TIMEOUT_PROTO) + bytes(HEADERS - 14)


@dataclass(frozen=True)
class Notice:
    """A segment (or TIMEOUT frame) egress handed back: for which connection, and why."""

    peer: str
    peer_port: int
    local_port: int
    why: int               # NOTICE_WINDOW or NOTICE_RESUME
    resume: int            # the connection's snd_nxt when egress looked


def parse_notice(frame: bytes) -> Notice | None:
    if len(frame) < HEADERS:
        return None
    dst = socket.inet_ntoa(frame[30:34])
    sport, dport, _seq, ack = struct.unpack_from("!HHII", frame, 34)
    why = struct.unpack_from("!H", frame, 52)[0]
    return Notice(dst, dport, sport, why, ack)


def parse(frame: bytes) -> Segment | None:
    """The TCP segment in an Ethernet/IPv4 frame, or None when it is not one."""
    if len(frame) < HEADERS or struct.unpack_from("!H", frame, 12)[0] != ETH_P_IP:
        return None
    ver_ihl, _tos, total, _id, _frag, _ttl, proto, _check, src, dst = _IP.unpack_from(frame, 14)
    ihl = (ver_ihl & 0x0F) * 4
    if ver_ihl >> 4 != 4 or proto != IPPROTO_TCP or ihl < 20 or 14 + total > len(frame):
        return None
    at = 14 + ihl
    sport, dport, seq, ack, doff, flags, window, _sum, _urg = _TCP.unpack_from(frame, at)
    hlen = (doff >> 4) * 4
    if hlen < 20 or at + hlen > 14 + total:
        return None
    if hlen == 20 + TS_LEN and frame[at + 20:at + 24] == _TS_HEAD:
        # what every segment of a connection with timestamps carries: two NOPs and TS
        mss = wscale = None
        ts: tuple[int, int] | None = _TS_VALUES.unpack_from(frame, at + 24)
        sack_perm = False
    else:
        mss, wscale, ts, sack_perm = _options(frame[at + 20:at + hlen])
    return Segment(_ntoa(src), _ntoa(dst), sport, dport, seq, ack, flags, window, mss,
                   wscale, ts, bytes(frame[at + hlen:14 + total]), bytes(frame[6:12]),
                   sack_perm)


def _options(options: bytes
             ) -> tuple[int | None, int | None, tuple[int, int] | None, bool]:
    """The MSS, window-scale and timestamps options of a header's option bytes (None when
    absent or malformed) and whether SACK-permitted is there; the walk stops at the
    end-of-list option or a malformed length."""
    mss = wscale = None
    ts: tuple[int, int] | None = None
    sack_perm = False
    i = 0
    while i < len(options):
        kind = options[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(options) or options[i + 1] < 2:
            break
        size = options[i + 1]
        if i + size > len(options):
            break
        if kind == 2 and size == 4:
            mss = int(struct.unpack_from("!H", options, i + 2)[0])
        elif kind == 3 and size == 3:
            wscale = options[i + 2]
        elif kind == 8 and size == 10:
            val, ecr = struct.unpack_from("!II", options, i + 2)
            ts = (int(val), int(ecr))
        elif kind == 4 and size == 2:
            sack_perm = True
        i += size
    return mss, wscale, ts, sack_perm


def build(*, src_mac: bytes, dst_mac: bytes, src: str, dst: str, sport: int, dport: int,
          seq: int = 0, ack: int = 0, flags: int = 0, window: int = WINDOW,
          options: bytes = b"", payload: bytes = b"", checksums: bool = True) -> bytes:
    """A whole frame with correct IPv4 and TCP checksums (left 0 with ``checksums=False``,
    for segments egress stamps: it writes both, and summing 1,460 bytes in Python is the
    largest cost of a send)."""
    if len(options) % 4:
        options += b"\0" * (4 - len(options) % 4)
    tcp_len = 20 + len(options) + len(payload)
    saddr, daddr = _packed(src), _packed(dst)
    ip = bytearray(_IP.pack(0x45, 0, 20 + tcp_len, 0, 0x4000, 64, IPPROTO_TCP, 0, saddr, daddr))
    if checksums:
        struct.pack_into("!H", ip, 10, checksum(bytes(ip)))
    tcp = bytearray(_TCP.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                              (5 + len(options) // 4) << 4, flags, window, 0, 0))
    tcp += options + payload
    if checksums:
        pseudo = sum(struct.unpack("!4H", saddr + daddr)) + IPPROTO_TCP + tcp_len
        struct.pack_into("!H", tcp, 16, checksum(bytes(tcp), pseudo))
    return dst_mac + src_mac + struct.pack("!H", ETH_P_IP) + bytes(ip) + bytes(tcp)


@functools.lru_cache(maxsize=256)
def _packed(addr: str) -> bytes:
    """An address's four bytes (parsing one costs more than building the rest of a frame)."""
    return ipaddress.IPv4Address(addr).packed


def mss_option(mss: int = MSS) -> bytes:
    return struct.pack("!BBH", 2, 4, mss)


def ts_option(val: int, ecr: int) -> bytes:
    """The timestamps option behind two NOPs (12 bytes), as RFC 7323's appendix lays it out
    and the data path reads and writes it."""
    return struct.pack("!BBBBII", 1, 1, 8, 10, val & 0xFFFFFFFF, ecr & 0xFFFFFFFF)


TS_ROOM = ts_option(0, 0)   # what a data segment carries for egress to fill in
TS_LEN = len(TS_ROOM)
_TS_HEAD = TS_ROOM[:4]
_TS_VALUES = struct.Struct("!II")
_ntoa = socket.inet_ntoa


def syn_options(wscale: int | None, mss: int = MSS, ts: tuple[int, int] | None = None,
                sack: bool = False) -> bytes:
    """The options of our SYN or SYN-ACK: the MSS, the timestamps (TSval, TSecr) unless `ts`
    is None, the window-scale shift (after a NOP, so that the list stays 4-byte aligned)
    unless `wscale` is None (a SYN-ACK offers neither to a SYN that did not), and
    SACK-permitted (after two NOPs) when `sack`."""
    return mss_option(mss) + (b"" if ts is None else ts_option(*ts)) + \
        (b"" if wscale is None else struct.pack("!BBBB", 1, 3, 3, wscale)) + \
        (b"\x01\x01\x04\x02" if sack else b"")
