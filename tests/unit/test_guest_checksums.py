"""The guests' Internet checksum (guests/lib/net.c csum_add: halfwords up to a word
boundary, then whole words with end-around carry) against scapy, an independent oracle:
pingd verifies each echo request's ICMP checksum and computes its reply's, for payloads
of every length class (odd, even, below and above a 16-byte block), whose data starts at
a halfword-aligned but not word-aligned address (an Ethernet frame's IPv4 payload)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, IPOption_NOP
from scapy.layers.l2 import Ether

from emu.testing import Lab, ethernet, icmp_echo, ipv4

PINGD_MAC = "52:54:00:00:00:01"
HOST_MAC = "02:00:00:00:00:02"


def checksums_recomputed(frame: bytes) -> tuple[int, int]:
    """scapy's own IPv4 header and ICMP checksums for `frame`."""
    packet = Ether(frame)
    del packet[IP].chksum
    del packet[ICMP].chksum
    again = Ether(bytes(packet))
    return again[IP].chksum, again[ICMP].chksum


@settings(max_examples=25, deadline=None)
@given(payloads=st.lists(st.binary(min_size=0, max_size=1472), min_size=1, max_size=4))
def test_pingd_checksums_match_scapy(payloads: list[bytes]) -> None:
    with Lab(deterministic=True) as lab:
        wire = lab.peer("wire")
        pingd = lab.machine("pingd", "ip=10.0.0.1", [f"ne2k_isa,netdev=wire,mac={PINGD_MAC}"])
        assert lab.wait_output(pingd, "answering ARP and ping", 30)
        for seq, payload in enumerate(payloads, start=1):
            request = icmp_echo(0x1234, seq, payload)
            if seq == 2:
                # one bit off in the checksum: dropped as malformed, never answered
                bad = request[:2] + bytes([request[2] ^ 1]) + request[3:]
                wire.send(ethernet(PINGD_MAC, HOST_MAC, 0x0800,
                                   ipv4("10.0.0.2", "10.0.0.1", 1, bad)))
            wire.send(ethernet(PINGD_MAC, HOST_MAC, 0x0800,
                               ipv4("10.0.0.2", "10.0.0.1", 1, request)))
            assert lab.run_until(lambda seq=seq: len(wire.received) >= seq, 30), pingd.output
        assert len(wire.received) == len(payloads)
        assert ("malformed frame" in pingd.output) == (len(payloads) >= 2)
        for seq, (frame, payload) in enumerate(zip(wire.received, payloads, strict=True), start=1):
            frame = frame[:14 + Ether(frame)[IP].len]  # without the Ethernet padding
            reply = Ether(frame)
            icmp = reply[ICMP]
            assert (icmp.type, icmp.id, icmp.seq, bytes(icmp.payload)) == (0, 0x1234, seq, payload)
            assert (reply[IP].chksum, icmp.chksum) == checksums_recomputed(frame)


def test_pingd_replies_where_an_update_would_differ_from_a_full_sum() -> None:
    """The reply is built over the request, its ICMP checksum updated for the type word
    alone; two requests take the other way. All-zero reply data (id 0, seq 0, no data)
    sums to 0xffff in full but updates to 0; a request with IP options gets a reply
    without them (built afresh). Both replies' checksums are scapy's."""
    zero = Ether(dst=PINGD_MAC, src=HOST_MAC) / IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(
        type=8, id=0, seq=0)
    with_options = Ether(dst=PINGD_MAC, src=HOST_MAC) / IP(
        src="10.0.0.2", dst="10.0.0.1", options=[IPOption_NOP()] * 4) / ICMP(
        type=8, id=7, seq=9) / b"options"
    with Lab(deterministic=True) as lab:
        wire = lab.peer("wire")
        pingd = lab.machine("pingd", "ip=10.0.0.1", [f"ne2k_isa,netdev=wire,mac={PINGD_MAC}"])
        assert lab.wait_output(pingd, "answering ARP and ping", 30)
        for count, request in enumerate((zero, with_options), start=1):
            wire.send(bytes(request))
            assert lab.run_until(lambda count=count: len(wire.received) >= count, 30), pingd.output
    replies = [Ether(frame[:14 + Ether(frame)[IP].len]) for frame in wire.received]
    assert [(r[ICMP].type, r[ICMP].id, r[ICMP].seq, bytes(r[ICMP].payload)) for r in replies] == [
        (0, 0, 0, b""), (0, 7, 9, b"options")]
    assert replies[0][ICMP].chksum == 0xFFFF
    assert replies[1][IP].ihl == 5
    for reply in replies:
        assert (reply[IP].chksum, reply[ICMP].chksum) == checksums_recomputed(bytes(reply))
        assert (reply[IP].src, reply[IP].dst, reply.src, reply.dst) == (
            "10.0.0.1", "10.0.0.2", PINGD_MAC, HOST_MAC)
