"""Ethernet, IPv4, UDP and TCP headers and their constants, written in the transport language.

Transports import what they need:

    from etran.bpf_templates.headers import Eth, IPv4, Tcp, ETH_P_IP, IPPROTO_TCP

Multi-byte fields are big-endian (`be16`/`be32`): stored in network order in
the packet, read and written as host-order integers. Every header has
`H.size`, its length in bytes (options not included).
"""
from etran.dsl import *

# EtherTypes
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ETH_ALEN = 6

# IP protocol numbers
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17

# ECN codepoints (the low two bits of the IPv4 TOS byte)
ECN_NOT_ECT = 0
ECN_ECT1 = 1
ECN_ECT0 = 2
ECN_CE = 3

# TCP flags (the `flags` byte)
TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10
TCP_URG = 0x20
TCP_ECE = 0x40
TCP_CWR = 0x80

# TCP option kinds
TCPOPT_EOL = 0
TCPOPT_NOP = 1
TCPOPT_MSS = 2
TCPOPT_WSCALE = 3
TCPOPT_SACK_PERM = 4
TCPOPT_SACK = 5
TCPOPT_TIMESTAMP = 8


class Eth(Header):
    """Ethernet II header (14 bytes)."""
    dst: Array[u8, 6]
    src: Array[u8, 6]
    proto: be16


class IPv4(Header):
    """IPv4 header without options (20 bytes); `header_len()` includes options."""
    ver_ihl: u8
    tos: u8
    total_len: be16
    id: be16
    frag_off: be16
    ttl: u8
    protocol: u8
    check: be16
    src: be32
    dst: be32

    def version(self) -> u8:
        return self.ver_ihl >> 4

    def header_len(self) -> u32:
        """Length of the header with its options, in bytes (IHL * 4)."""
        return u32(self.ver_ihl & 0x0F) * 4

    def ecn(self) -> u8:
        return self.tos & 0x03

    def dscp(self) -> u8:
        return self.tos >> 2


class Udp(Header):
    """UDP header (8 bytes)."""
    src_port: be16
    dst_port: be16
    len: be16
    check: be16


class Tcp(Header):
    """TCP header without options (20 bytes); `header_len()` includes options."""
    src_port: be16
    dst_port: be16
    seq: be32
    ack_seq: be32
    doff_res: u8
    flags: u8
    window: be16
    check: be16
    urg_ptr: be16

    def header_len(self) -> u32:
        """Length of the header with its options, in bytes (data offset * 4)."""
        return u32(self.doff_res >> 4) * 4

    def has(self, flag: u8) -> bool:
        return self.flags & flag != 0


class TcpOption(Header):
    """The kind and length bytes that start every TCP option but EOL and NOP."""
    kind: u8
    len: u8


class IPv4Words(Header):
    """A 20-byte IPv4 header seen as ten 16-bit words, for checksums."""
    w: Array[be16, 10]


def csum_fold(sum: u32) -> u16:
    """Fold a 32-bit one's-complement sum to 16 bits and complement it."""
    s = (sum & 0xFFFF) + (sum >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return u16(~s)


def csum_replace16(check: u16, old: u16, new: u16) -> u16:
    """RFC 1624 (eqn. 3): the checksum field after a 16-bit word changed from `old` to
    `new`, without summing the data again."""
    return csum_fold(u32(~check) + u32(~old) + u32(new))


def csum_replace32(check: u16, old: u32, new: u32) -> u16:
    """RFC 1624 for a 32-bit field (an address, a sequence number): both halves at once."""
    return csum_fold(u32(~check) + (~old >> 16) + (~old & 0xFFFF) + (new >> 16) + (new & 0xFFFF))


def ipv4_checksum(pkt: Packet, offset: u32) -> u16:
    """The header checksum of the 20-byte IPv4 header at `offset` (its `check` field skipped)."""
    h = pkt.header(IPv4Words, offset)
    if h is None:
        return 0
    s: u32 = 0
    for i in range(10):
        if i != 5:
            s += h.w[i]
    return csum_fold(s)
