"""Ethernet, ARP, IPv4, ICMP and UDP frame builders for tests, no scapy needed (QEMU's
qtest network tests build their frames by hand the same way).

Addresses may be given as a test writes them: an IPv4 address as "10.0.0.1", an
`ipaddress.IPv4Address` or 4 bytes; a MAC address as "52:54:00:12:34:56" or 6 bytes.
"""

from __future__ import annotations

import ipaddress
import struct

BROADCAST = b"\xff" * 6
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806

IPv4Like = str | ipaddress.IPv4Address | bytes
MacLike = str | bytes


def ip_bytes(address: IPv4Like, what: str = "IPv4 address") -> bytes:
    """`address` as 4 bytes in network order; a ValueError naming `what` for anything
    that is not an IPv4 address ("10.0.0.1", IPv4Address("10.0.0.1") or 4 bytes)."""
    if isinstance(address, ipaddress.IPv4Address):
        return address.packed
    if isinstance(address, bytes | bytearray) and len(address) == 4:
        return bytes(address)
    if isinstance(address, str):
        try:
            return ipaddress.IPv4Address(address).packed
        except ValueError:
            pass
    raise ValueError(f"{what} must be an IPv4 address: '10.0.0.1', "
                     f"ipaddress.IPv4Address('10.0.0.1') or 4 bytes, not {address!r}")


def mac_bytes(address: MacLike, what: str = "MAC address") -> bytes:
    """`address` as 6 bytes; a ValueError naming `what` for anything that is not a MAC
    address ("52:54:00:12:34:56" or 6 bytes)."""
    if isinstance(address, bytes | bytearray) and len(address) == 6:
        return bytes(address)
    if isinstance(address, str):
        parts = address.split(":")
        if len(parts) == 6 and all(len(p) == 2 for p in parts):
            try:
                return bytes(int(p, 16) for p in parts)
            except ValueError:
                pass
    raise ValueError(f"{what} must be a MAC address: '52:54:00:12:34:56' or 6 bytes, "
                     f"not {address!r}")


def inet_checksum(data: bytes) -> int:
    """RFC 1071 one's-complement sum (IPv4 header, ICMP, UDP)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ethernet(dst: MacLike, src: MacLike, ethertype: int, payload: bytes) -> bytes:
    return (mac_bytes(dst, "ethernet dst") + mac_bytes(src, "ethernet src")
            + struct.pack("!H", ethertype) + payload)


def ipv4(src: IPv4Like, dst: IPv4Like, proto: int, payload: bytes, *, ttl: int = 64,
         ident: int = 0) -> bytes:
    """An IPv4 packet (no options, DF clear) with a correct header checksum."""
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0, ttl, proto,
                         0, ip_bytes(src, "ipv4 src"), ip_bytes(dst, "ipv4 dst"))
    checksum = inet_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:] + payload


def icmp_echo(ident: int, seq: int, data: bytes, *, reply: bool = False) -> bytes:
    body = struct.pack("!BBHHH", 0 if reply else 8, 0, 0, ident, seq) + data
    return body[:2] + struct.pack("!H", inet_checksum(body)) + body[4:]


def udp(src_ip: IPv4Like, dst_ip: IPv4Like, sport: int, dport: int, data: bytes) -> bytes:
    """A UDP datagram with its checksum over the IPv4 pseudo-header (0 becomes 0xFFFF)."""
    length = 8 + len(data)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    pseudo = (ip_bytes(src_ip, "udp src_ip") + ip_bytes(dst_ip, "udp dst_ip")
              + struct.pack("!BBH", 0, 17, length))
    checksum = inet_checksum(pseudo + header + data) or 0xFFFF
    return header[:6] + struct.pack("!H", checksum) + data


def arp_request(src_mac: MacLike, src_ip: IPv4Like, target_ip: IPv4Like, *,
                dst: MacLike = BROADCAST) -> bytes:
    """An ARP who-has frame for `target_ip`, broadcast, or sent to `dst` (a unicast
    request, as a host refreshing its cache entry sends: RFC 1122 2.3.2.1)."""
    src_mac = mac_bytes(src_mac, "arp_request src_mac")
    body = struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, 1, src_mac,
                       ip_bytes(src_ip, "arp_request src_ip"), bytes(6),
                       ip_bytes(target_ip, "arp_request target_ip"))
    return ethernet(dst, src_mac, ETH_P_ARP, body)
