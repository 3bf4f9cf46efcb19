"""The scapy-based frame checker the end-to-end tests rely on rejects what it must: bad
IPv4/ICMP/UDP checksums, a UDP datagram without checksum, wrong ARP fields, runts."""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether

from tests.e2e.conftest import check_frame

A, B = "52:54:00:00:00:01", "52:54:00:00:00:02"


def _padded(pkt: Ether) -> bytes:
    return bytes(pkt).ljust(60, b"\0")


def _patched(frame: bytes, offset: int, value: bytes) -> bytes:
    return frame[:offset] + value + frame[offset + len(value):]


GOOD_ICMP = _padded(Ether(src=A, dst=B) / IP(src="10.0.0.1", dst="10.0.0.2")
                    / ICMP(id=1, seq=1) / b"abcdef")
GOOD_UDP = _padded(Ether(src=A, dst=B) / IP(src="10.0.0.1", dst="10.0.0.2")
                   / UDP(sport=7, dport=9) / b"abc")
GOOD_ARP = _padded(Ether(src=A, dst="ff:ff:ff:ff:ff:ff")
                   / ARP(op=1, hwsrc=A, psrc="10.0.0.1", pdst="10.0.0.2"))


def test_good_frames_pass() -> None:
    assert [check_frame(f) for f in (GOOD_ICMP, GOOD_UDP, GOOD_ARP)] == ["icmp", "udp", "arp"]


@pytest.mark.parametrize("frame", [
    pytest.param(_patched(GOOD_ICMP, 24, b"\0\0"), id="ip-checksum"),
    pytest.param(_patched(GOOD_ICMP, 36, b"\xff\xff"), id="icmp-checksum"),
    pytest.param(_patched(GOOD_UDP, 40, b"\x12\x34"), id="udp-checksum"),
    pytest.param(_patched(GOOD_UDP, 40, b"\0\0"), id="udp-no-checksum"),
    pytest.param(_patched(GOOD_ARP, 18, b"\x05"), id="arp-hwlen"),
    pytest.param(_patched(GOOD_ARP, 14, b"\x00\x06"), id="arp-hwtype"),
    pytest.param(_patched(GOOD_ARP, 22, b"\xaa"), id="arp-sender-not-source"),
    pytest.param(GOOD_ICMP[:50], id="runt"),
])
def test_bad_frames_fail(frame: bytes) -> None:
    with pytest.raises(AssertionError):
        check_frame(frame)
