"""`udp-echo` returns datagrams that a Python peer sends over a stream socket (scapy-built
Ethernet/IPv4/UDP frames); the echoes carry the same data, swapped ports and addresses,
and correct checksums."""

from __future__ import annotations

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from tests.e2e.conftest import ProcessLab, WirePeer, check_frames, finish_ok, mac, wait_output
from tests.netsupport import LOOPBACK, connect, free_port, wait_accepted

GUEST_IP = "10.0.0.1"
PEER_IP = "10.0.0.2"
PORT = 7
# an odd length (checksum padding), a tiny one, and the largest unfragmented one
PAYLOADS = [b"hello, echo", b"x", bytes(range(256)) * 5 + b"\x01\x02\x03", b"z" * 1472]


def test_udp_echo_returns_datagrams(lab: ProcessLab) -> None:
    port = free_port()
    guest_mac, peer_mac = mac(1), mac(2)
    guest = lab.machine("udp-echo", f"ip={GUEST_IP} port={PORT} count={len(PAYLOADS)} timeout=20",
                        f"listen={LOOPBACK}:{port}", guest_mac)
    wait_output(guest, f"udp-echo: echoing UDP on {GUEST_IP}:{PORT}")
    sock = connect(port)
    wait_accepted(guest.pid, port, sock.getsockname()[1])
    peer = WirePeer(sock, peer_mac, PEER_IP)
    try:
        for i, data in enumerate(PAYLOADS):
            sport = 40000 + i
            peer.send(Ether(src=peer_mac, dst=guest_mac) / IP(src=PEER_IP, dst=GUEST_IP)
                      / UDP(sport=sport, dport=PORT) / data)
            echo = peer.expect(lambda p, s=sport: UDP in p and p[UDP].dport == s,
                               timeout=30, what=f"echo of datagram {i}")
            assert (echo.src, echo.dst) == (guest_mac, peer_mac)
            assert (echo[IP].src, echo[IP].dst) == (GUEST_IP, PEER_IP)
            assert echo[UDP].sport == PORT
            assert bytes(echo[UDP].payload)[:len(data)] == data
            assert echo[UDP].len == 8 + len(data)
        out = finish_ok(guest)
        assert f"udp-echo: {len(PAYLOADS)} datagrams echoed, done" in out
        for i, data in enumerate(PAYLOADS):
            assert f"udp-echo: {len(data)} bytes from {PEER_IP}:{40000 + i} echoed" in out
        assert check_frames(peer.frames).get("udp") == len(PAYLOADS)
    finally:
        peer.close()
