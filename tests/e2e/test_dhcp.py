"""`dhcp` gets its lease from tests/dhcp_server.py (an independent server the test runs on
the other end of a stream socket), prints it, then answers pings on the leased address
that the test builds with scapy. Every frame the guest sends decodes cleanly in scapy.
"""

from __future__ import annotations

import time

from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import Ether

from tests.dhcp_server import (
    DHCPACK,
    DHCPDISCOVER,
    DHCPOFFER,
    DHCPREQUEST,
    OPT_REQUESTED_IP,
    OPT_SERVER_ID,
    DhcpServer,
)
from tests.e2e.conftest import (
    ProcessLab,
    WirePeer,
    check_frames,
    finish_ok,
    listener,
    mac,
    wait_output,
)
from tests.netsupport import LOOPBACK

SERVER_IP = "10.0.2.2"
SERVER_MAC = mac(0xFE)
LEASED = "10.0.2.15"
PINGS = 3


def test_dhcp_lease_then_pings(lab: ProcessLab) -> None:
    server = DhcpServer(server_ip=SERVER_IP, server_mac=SERVER_MAC, pool_start=LEASED,
                        mask="255.255.255.0", router="10.0.2.1", dns="10.0.2.3",
                        lease_seconds=86400)
    guest_mac = mac(1)
    with listener() as lsock:
        port = lsock.getsockname()[1]
        guest = lab.machine("dhcp", f"count={PINGS} timeout=10 retry=500",
                            f"connect={LOOPBACK}:{port}", guest_mac)
        peer = WirePeer.accept(lsock, SERVER_MAC, SERVER_IP)
    try:
        deadline = time.monotonic() + 60
        while not any(m.message_type == DHCPACK for m in server.sent):
            frame = peer.recv(deadline - time.monotonic())
            assert frame is not None, f"no DHCP exchange; guest said:\n{guest.stdout}"
            for reply in server.handle(frame):
                peer.send(reply)
        out = wait_output(guest, f"dhcp: answering {PINGS} pings on {LEASED}")
        assert (f"dhcp: lease address={LEASED} mask=255.255.255.0 router=10.0.2.1 "
                f"dns=10.0.2.3 lease=86400s server={SERVER_IP}\n") in out, out

        kinds = [m.message_type for m in server.received]
        assert kinds[0] == DHCPDISCOVER and kinds[-1] == DHCPREQUEST, kinds
        assert [m.message_type for m in server.sent][-2:] == [DHCPOFFER, DHCPACK]
        request = server.received[-1]
        assert request.client_mac.hex(":") == guest_mac
        assert request.ip_option(OPT_REQUESTED_IP) == LEASED
        assert request.ip_option(OPT_SERVER_ID) == SERVER_IP
        assert len({m.xid for m in server.received[-2:]}) == 1, "xid changed within a lease"

        replies = 0
        for seq in range(1, PINGS + 1):
            peer.send(Ether(src=SERVER_MAC, dst=guest_mac) / IP(src=SERVER_IP, dst=LEASED)
                      / ICMP(type=8, id=0x4242, seq=seq) / (b"toynic" * 8))
            reply = peer.expect(
                lambda p, seq=seq: ICMP in p and p[ICMP].type == 0 and p[ICMP].seq == seq,
                timeout=30, what=f"echo reply {seq}")
            assert reply[IP].src == LEASED and reply[IP].dst == SERVER_IP
            assert reply[ICMP].id == 0x4242
            assert bytes(reply[ICMP].payload).startswith(b"toynic" * 8)
            replies += 1
        assert replies == PINGS
        out = finish_ok(guest)
        assert f"dhcp: {PINGS} replies sent, done" in out
        for seq in range(1, PINGS + 1):
            assert f"dhcp: echo reply to {SERVER_IP} icmp_seq={seq}\n" in out
        kinds_seen = check_frames(peer.frames)
        assert kinds_seen.get("udp", 0) >= 2 and kinds_seen.get("icmp") == PINGS, kinds_seen
    finally:
        peer.close()


def test_server_speaks_dhcp_as_scapy_reads_it() -> None:
    """The test server itself, against scapy's BOOTP/DHCP layers: DISCOVER -> OFFER,
    REQUEST -> ACK, a REQUEST for another address -> NAK, broadcast flag honoured."""
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet import UDP

    server = DhcpServer(server_ip=SERVER_IP, server_mac=SERVER_MAC, pool_start=LEASED,
                        mask="255.255.255.0", router="10.0.2.1", dns="10.0.2.3",
                        lease_seconds=600)
    client = mac(7)
    chaddr = bytes.fromhex(client.replace(":", ""))

    def ask(options: list[object], flags: int = 0) -> Ether:
        frame = (Ether(src=client, dst="ff:ff:ff:ff:ff:ff")
                 / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67)
                 / BOOTP(op=1, xid=0x1234, chaddr=chaddr, flags=flags)
                 / DHCP(options=[*options, "end"]))
        (reply,) = server.handle(bytes(frame))
        return Ether(reply)

    def options(pkt: Ether) -> dict[str, object]:
        return {o[0]: o[1] for o in pkt[DHCP].options if isinstance(o, tuple)}

    offer = ask([("message-type", "discover")])
    assert (offer.dst, offer[IP].dst, offer[UDP].dport) == (client, LEASED, 68)
    assert offer[BOOTP].op == 2 and offer[BOOTP].xid == 0x1234 and offer[BOOTP].yiaddr == LEASED
    assert options(offer) == {"message-type": 2, "server_id": SERVER_IP, "lease_time": 600,
                              "subnet_mask": "255.255.255.0", "router": "10.0.2.1",
                              "name_server": "10.0.2.3"}
    assert len(offer[BOOTP]) >= 300

    ack = ask([("message-type", "request"), ("requested_addr", LEASED),
               ("server_id", SERVER_IP)], flags=0x8000)
    assert (ack.dst, ack[IP].dst) == ("ff:ff:ff:ff:ff:ff", "255.255.255.255")
    assert options(ack)["message-type"] == 5 and ack[BOOTP].yiaddr == LEASED

    nak = ask([("message-type", "request"), ("requested_addr", "10.0.2.99"),
               ("server_id", SERVER_IP)])
    assert options(nak) == {"message-type": 6, "server_id": SERVER_IP}
    assert nak[BOOTP].yiaddr == "0.0.0.0"

    other_server = Ether(bytes(
        Ether(src=client) / IP() / UDP(sport=68, dport=67)
        / BOOTP(op=1, xid=1, chaddr=chaddr)
        / DHCP(options=[("message-type", "request"), ("server_id", "10.9.9.9"), "end"])))
    assert server.handle(bytes(other_server)) == []
