"""Homa packets as the library builds and reads them: Ethernet + IPv4 + Homa.

The layout is the data path's (`etran/transports/homa.py`): a 16-byte common header
(ports, kind, flags, the client's RPC id), then for DATA the message length and the offset
of the packet's bytes, for GRANT and RESEND an offset, a length and a priority.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import struct
from dataclasses import dataclass

from etran.testing.packets import checksum

IPPROTO_HOMA = 0xFD
ETH_P_IP = 0x0800
DATA, GRANT, RESEND, UNKNOWN, BUSY, ACK = 0x10, 0x11, 0x12, 0x13, 0x14, 0x15
KIND_NAMES = {DATA: "DATA", GRANT: "GRANT", RESEND: "RESEND", UNKNOWN: "UNKNOWN",
              BUSY: "BUSY", ACK: "ACK"}
FROM_CLIENT, RETRANSMIT = 1, 2
PAYLOAD = 1400                     # message bytes per DATA packet
MAX_MESSAGE = 12 * 64 * PAYLOAD    # the receive bitmap's reach: 1,075,200 bytes
HEADERS = 14 + 20 + 16             # Ethernet, IPv4, the common header
DATA_HEADERS = HEADERS + 8
EVENT_ABORTED, EVENT_STALLED = 1, 2   # the data path's `events` ring
# an RPC's state in the data path's `rpcs` (etran/transports/homa.py)
CLIENT_OUT, CLIENT_IN, SERVER_IN, SERVER_BUSY, SERVER_OUT = 1, 2, 3, 4, 5
REPAIR = 0x1F                      # a `ctrl` request: forget packets we lost, then RESEND
ARM = 0x1E                         # a `ctrl` request: start an RPC's timer, which never ran
RESEND_MS = 15                     # the data path's RESEND_TICKS x TICK_NS: silence that asks

_IP = struct.Struct("!BBHHHBBH4s4s")
_COMMON = struct.Struct("!HHBBHQ")
_DATA = struct.Struct("!II")
_CTRL = struct.Struct("!IIB3x")
_U32 = struct.Struct("!I")
_ETHERTYPE = struct.pack("!H", ETH_P_IP)


def ip_str(value: int) -> str:
    """The dotted quad of an address as the data path keeps it (`ip_int`'s inverse)."""
    return socket.inet_ntoa(value.to_bytes(4, "big"))


@functools.lru_cache(maxsize=1024)
def ip_int(addr: str) -> int:
    """An IPv4 address as the data path keeps it: the big-endian value, as an integer."""
    return int(ipaddress.IPv4Address(addr))


_ntoa = socket.inet_ntoa


@dataclass(slots=True)
class Packet:
    """A received Homa packet, as far as the library needs it (not frozen: a frozen
    dataclass's constructor costs microseconds more on every packet)."""

    kind: int
    src: str
    dst: str
    sport: int
    dport: int
    rpc_id: int            # the client's id (even)
    flags: int
    tos: int
    length: int = 0        # DATA: the message's length
    offset: int = 0        # DATA: where the payload goes; GRANT, RESEND: the offset
    ctrl_length: int = 0   # RESEND: how many bytes
    priority: int = 0      # GRANT: for the scheduled bytes
    payload: bytes = b""

    @property
    def from_client(self) -> bool:
        return bool(self.flags & FROM_CLIENT)

    @property
    def local_id(self) -> int:
        """The RPC's id as the receiving host names it (odd on the server)."""
        return self.rpc_id | (1 if self.from_client else 0)


@functools.lru_cache(maxsize=4096)
def _ip_header(src: str, dst: str, total: int, tos: int) -> bytes:
    """The IPv4 header of a packet, checksum included: a host sends to few peers with few
    sizes (full DATA packets, controls, each message's last packet), so they are made once."""
    ip = _IP.pack(0x45, tos, total, 0, 0, 64, IPPROTO_HOMA, 0,
                  ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    return ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]


def _frame(src_mac: bytes, dst_mac: bytes, src: str, dst: str, body: bytes,
           tos: int = 0) -> bytes:
    return dst_mac + src_mac + _ETHERTYPE + _ip_header(src, dst, 20 + len(body), tos) + body


def data_frames(*, src_mac: bytes, dst_mac: bytes, src: str, dst: str, sport: int,
                dport: int, rpc_id: int, from_client: bool, message: bytes) -> list[bytes]:
    """The DATA packets of `message`, in order (the data path sets their priority). Every
    packet but the last has the same headers up to its offset: they are built once (a
    message of 1 MB is 750 packets, and this runs in the caller's thread)."""
    length = len(message)
    eth = dst_mac + src_mac + _ETHERTYPE
    common = _COMMON.pack(sport, dport, DATA, FROM_CLIENT if from_client else 0, 0, rpc_id) \
        + _U32.pack(length)
    full = eth + _ip_header(src, dst, DATA_HEADERS - 14 + PAYLOAD, 0) + common
    pack = _U32.pack
    out = [full + pack(offset) + message[offset:offset + PAYLOAD]
           for offset in range(0, length - length % PAYLOAD, PAYLOAD)]
    if length % PAYLOAD:
        last = length - length % PAYLOAD
        out.append(eth + _ip_header(src, dst, DATA_HEADERS - 14 + length - last, 0) + common
                   + pack(last) + message[last:])
    return out


def control(kind: int, *, src_mac: bytes, dst_mac: bytes, src: str, dst: str, sport: int,
            dport: int, rpc_id: int, from_client: bool, offset: int = 0, length: int = 0,
            priority: int = 0) -> bytes:
    """A control packet: ACK, BUSY and UNKNOWN are the common header alone; GRANT and
    RESEND carry an offset, a length and a priority."""
    body = _COMMON.pack(sport, dport, kind, FROM_CLIENT if from_client else 0, 0, rpc_id)
    if kind in (GRANT, RESEND):
        body += _CTRL.pack(offset, length, priority)
    return _frame(src_mac, dst_mac, src, dst, body, tos=7 << 5)


_DATA_HEADER = struct.Struct("!HHBBHQII")   # the common header, then length and offset


def data_fields(frame: bytes) -> tuple[bytes, bytes, int, int, int, int, int, int,
                                       int] | None:
    """A DATA packet's fields without building a Packet (the receiver's hot path): source
    and destination address (4 bytes each), ports, flags, RPC id, message length, offset,
    and where its payload ends in `frame` (it begins at DATA_HEADERS); None for anything
    `parse` would not return as DATA."""
    if len(frame) < DATA_HEADERS or frame[38] != DATA or frame[12:15] != b"\x08\x00\x45" \
            or frame[23] != IPPROTO_HOMA:
        return None
    end = 14 + ((frame[16] << 8) | frame[17])
    if end > len(frame) or end < DATA_HEADERS:
        return None
    sport, dport, _kind, flags, _r, rpc_id, length, offset = _DATA_HEADER.unpack_from(frame, 34)
    return frame[26:30], frame[30:34], sport, dport, flags, rpc_id, length, offset, end


def priority(frame: bytes) -> int:
    """The priority a frame's sender gave it, 0 to 7 (the IP header's top three bits; the
    receiver handles 7 first)."""
    return frame[15] >> 5 if len(frame) > 15 else 0


def parse(frame: bytes) -> Packet | None:
    """The Homa packet in an Ethernet/IPv4 frame, or None when it is not one."""
    if len(frame) < HEADERS or struct.unpack_from("!H", frame, 12)[0] != ETH_P_IP:
        return None
    ver_ihl, tos, total, _id, _frag, _ttl, proto, _check, src, dst = _IP.unpack_from(frame, 14)
    if ver_ihl != 0x45 or proto != IPPROTO_HOMA or total + 14 > len(frame):
        return None
    sport, dport, kind, flags, _r, rpc_id = _COMMON.unpack_from(frame, 34)
    if kind == DATA:
        if total + 14 < DATA_HEADERS:
            return None
        length, offset = _DATA.unpack_from(frame, HEADERS)
        return Packet(kind, _ntoa(src), _ntoa(dst), sport, dport, rpc_id, flags, tos, length,
                      offset, 0, 0, bytes(frame[DATA_HEADERS:14 + total]))
    if kind in (GRANT, RESEND):
        if total + 14 < HEADERS + _CTRL.size:
            return None
        offset, length, priority = _CTRL.unpack_from(frame, HEADERS)
        return Packet(kind, _ntoa(src), _ntoa(dst), sport, dport, rpc_id, flags, tos,
                      offset=offset, ctrl_length=length, priority=priority)
    return Packet(kind, _ntoa(src), _ntoa(dst), sport, dport, rpc_id, flags, tos)
