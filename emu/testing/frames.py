"""Ethernet, ARP, IPv4, ICMP and UDP frame builders for tests, no scapy needed (QEMU's
qtest network tests build their frames by hand the same way)."""

from __future__ import annotations

import struct

BROADCAST = b"\xff" * 6
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806


def inet_checksum(data: bytes) -> int:
    """RFC 1071 one's-complement sum (IPv4 header, ICMP, UDP)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ethernet(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> bytes:
    return dst + src + struct.pack("!H", ethertype) + payload


def ipv4(src: bytes, dst: bytes, proto: int, payload: bytes, *, ttl: int = 64,
         ident: int = 0) -> bytes:
    """An IPv4 packet (no options, DF clear) with a correct header checksum."""
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0, ttl, proto,
                         0, src, dst)
    checksum = inet_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:] + payload


def icmp_echo(ident: int, seq: int, data: bytes, *, reply: bool = False) -> bytes:
    body = struct.pack("!BBHHH", 0 if reply else 8, 0, 0, ident, seq) + data
    return body[:2] + struct.pack("!H", inet_checksum(body)) + body[4:]


def udp(src_ip: bytes, dst_ip: bytes, sport: int, dport: int, data: bytes) -> bytes:
    """A UDP datagram with its checksum over the IPv4 pseudo-header (0 becomes 0xFFFF)."""
    length = 8 + len(data)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, 17, length)
    checksum = inet_checksum(pseudo + header + data) or 0xFFFF
    return header[:6] + struct.pack("!H", checksum) + data


def arp_request(src_mac: bytes, src_ip: bytes, target_ip: bytes) -> bytes:
    """A broadcast ARP who-has frame."""
    body = struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, 1, src_mac, src_ip, bytes(6),
                       target_ip)
    return ethernet(BROADCAST, src_mac, ETH_P_ARP, body)
