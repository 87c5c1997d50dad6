"""Build well-formed frames for tests: Ethernet, IPv4, UDP, TCP, with correct checksums.

Addresses are strings ("10.0.0.1", "02:00:00:00:00:01") or integers. Every
builder returns bytes ready for `etran run --packet` or a test run.
"""
from __future__ import annotations

import ipaddress
import struct

ETH_P_IP = 0x0800


def mac(addr: str | bytes) -> bytes:
    if isinstance(addr, bytes):
        return addr
    return bytes.fromhex(addr.replace(":", ""))


def ip4(addr: str | int) -> bytes:
    return int(ipaddress.IPv4Address(addr)).to_bytes(4, "big")


def checksum(data: bytes, start: int = 0) -> int:
    """The Internet checksum (RFC 1071) of `data`, starting from the sum `start` (a
    pseudo-header's words, say)."""
    if len(data) % 2:
        data += b"\0"
    s: int = start + sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def eth(payload: bytes, *, src: str = "02:00:00:00:00:01", dst: str = "02:00:00:00:00:02",
        proto: int = ETH_P_IP) -> bytes:
    return mac(dst) + mac(src) + struct.pack("!H", proto) + payload


def ipv4(payload: bytes, *, src: str = "10.0.0.1", dst: str = "10.0.0.2", proto: int = 17,
         ttl: int = 64, tos: int = 0, ident: int = 0, options: bytes = b"") -> bytes:
    if len(options) % 4:
        raise ValueError("IPv4 options must be a multiple of 4 bytes")
    ihl = 5 + len(options) // 4
    header = struct.pack("!BBHHHBBH4s4s", (4 << 4) | ihl, tos, ihl * 4 + len(payload), ident, 0,
                         ttl, proto, 0, ip4(src), ip4(dst)) + options
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def _pseudo(src: str, dst: str, proto: int, length: int) -> bytes:
    return ip4(src) + ip4(dst) + struct.pack("!BBH", 0, proto, length)


def udp(payload: bytes = b"", *, sport: int = 5000, dport: int = 6000, src: str = "10.0.0.1",
        dst: str = "10.0.0.2") -> bytes:
    """A UDP datagram (header + payload) with its checksum over the IPv4 pseudo-header."""
    length = 8 + len(payload)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    c = checksum(_pseudo(src, dst, 17, length) + header + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, length, c) + payload


def tcp(payload: bytes = b"", *, sport: int = 5000, dport: int = 80, seq: int = 0, ack: int = 0,
        flags: int = 0x10, window: int = 65535, options: bytes = b"", src: str = "10.0.0.1",
        dst: str = "10.0.0.2") -> bytes:
    """A TCP segment (header + options + payload) with its checksum."""
    if len(options) % 4:
        options += b"\x01" * (4 - len(options) % 4)   # pad with NOPs
    doff = (20 + len(options)) // 4
    header = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                         doff << 4, flags, window, 0, 0) + options
    c = checksum(_pseudo(src, dst, 6, len(header) + len(payload)) + header + payload)
    return header[:16] + struct.pack("!H", c) + header[18:] + payload


def udp_frame(payload: bytes = b"", *, src: str = "10.0.0.1", dst: str = "10.0.0.2",
              sport: int = 5000, dport: int = 6000, tos: int = 0, ttl: int = 64) -> bytes:
    return eth(ipv4(udp(payload, sport=sport, dport=dport, src=src, dst=dst), src=src, dst=dst,
                    proto=17, tos=tos, ttl=ttl))


def tcp_frame(payload: bytes = b"", *, src: str = "10.0.0.1", dst: str = "10.0.0.2",
              sport: int = 5000, dport: int = 80, seq: int = 0, ack: int = 0, flags: int = 0x10,
              window: int = 65535, options: bytes = b"", tos: int = 0, ttl: int = 64) -> bytes:
    return eth(ipv4(tcp(payload, sport=sport, dport=dport, seq=seq, ack=ack, flags=flags,
                        window=window, options=options, src=src, dst=dst),
                    src=src, dst=dst, proto=6, tos=tos, ttl=ttl))
