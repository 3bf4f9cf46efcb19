"""Datagram socket netdev in-process: udp= on 127.0.0.1, mcast= and fd= cloning inside a
private network namespace, Q7 (zero-length datagram) and Q9 (own mcast frames loop back)."""

from __future__ import annotations

import socket

from emu.core.loop import MainLoop
from emu.core.opts import parse_opts
from emu.testing import RecordingClient
from netdev.client import connect_peers
from netdev.net import Net
from netdev.socket_dgram import DgramSocket
from tests.netsupport import free_ports, in_netns

TIMEOUT = 10.0


def dgram(net: Net, text: str) -> tuple[DgramSocket, RecordingClient]:
    client = net.add_netdev(parse_opts(text, "type"))
    assert isinstance(client, DgramSocket)
    nic = RecordingClient(f"nic-{client.name}", "test-nic")
    connect_peers(nic, client)
    return client, nic


def test_s11_udp_pair_exchanges_frames(net: Net) -> None:
    pa, pb = free_ports(2, socket.SOCK_DGRAM)
    a, nic_a = dgram(net, f"socket,id=a,udp=127.0.0.1:{pb},localaddr=127.0.0.1:{pa}")
    _, nic_b = dgram(net, f"socket,id=b,udp=127.0.0.1:{pa},localaddr=127.0.0.1:{pb}")
    assert a.info_str == f"socket: udp=127.0.0.1:{pb}"
    nic_a.send(b"a->b")
    nic_b.send(b"b->a" * 300)
    assert net.loop.run_until(lambda: nic_b.received and nic_a.received, TIMEOUT)
    assert nic_b.received == [b"a->b"]
    assert nic_a.received == [b"b->a" * 300]


def test_q7_zero_length_datagram_is_ignored_and_netdev_keeps_listening(net: Net) -> None:
    pa, pb = free_ports(2, socket.SOCK_DGRAM)
    a, nic_a = dgram(net, f"socket,id=a,udp=127.0.0.1:{pb},localaddr=127.0.0.1:{pa}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as outside:
        outside.sendto(b"", ("127.0.0.1", pa))
        outside.sendto(b"still heard", ("127.0.0.1", pa))
        assert net.loop.run_until(lambda: nic_a.received, TIMEOUT)
    assert nic_a.received == [b"still heard"]
    assert a.stats.empty_datagrams_in == 1
    # An empty frame from the NIC is not sent (a QEMU peer would go deaf, Q7).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", pb))
        listener.settimeout(TIMEOUT)
        nic_a.send(b"")
        nic_a.send(b"next")
        assert listener.recv(100) == b"next"
    assert a.stats.empty_frames_out == 1


def test_udp_accepts_any_source_q10(net: Net) -> None:
    pa, pb = free_ports(2, socket.SOCK_DGRAM)
    _, nic_a = dgram(net, f"socket,id=a,udp=127.0.0.1:{pb},localaddr=127.0.0.1:{pa}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        stranger.sendto(b"from elsewhere", ("127.0.0.1", pa))
        assert net.loop.run_until(lambda: nic_a.received, TIMEOUT)
    assert nic_a.received == [b"from elsewhere"]


def _mcast_pair_in_netns(port: int) -> dict[str, object]:
    loop = MainLoop()
    net = Net(loop)
    try:
        a, nic_a = dgram(net, f"socket,id=a,mcast=230.0.0.1:{port}")
        b, nic_b = dgram(net, f"socket,id=b,mcast=230.0.0.1:{port},localaddr=127.0.0.1")
        nic_a.send(b"hello from a")
        ok = loop.run_until(lambda: nic_b.received and len(nic_a.received) >= 1, TIMEOUT)
        return {"ok": ok, "a_got": nic_a.received, "b_got": nic_b.received,
                "a_info": a.info_str, "b_info": b.info_str}
    finally:
        net.close()
        loop.close()


def test_s10_mcast_pair_and_q9_own_frames_loop_back() -> None:
    result = in_netns(_mcast_pair_in_netns, 5010)
    assert result["ok"]
    assert result["b_got"] == [b"hello from a"]
    assert result["a_got"] == [b"hello from a"], "a hears its own frame (Q9, UML compatible)"
    assert result["a_info"] == "socket: mcast=230.0.0.1:5010"


def _fd_clone_in_netns(port: int) -> dict[str, object]:
    handed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    handed.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    handed.bind(("230.0.0.2", port))
    fd = handed.detach()
    loop = MainLoop()
    net = Net(loop)
    try:
        client, nic = dgram(net, f"socket,id=f,fd={fd}")
        same_fd = client.sock is not None and client.sock.fileno() == fd
        member = client.sock.getsockname() if client.sock else None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as outside:
            outside.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            outside.sendto(b"to group", ("230.0.0.2", port))
            ok = loop.run_until(lambda: nic.received, TIMEOUT)
        return {"ok": ok, "got": nic.received, "info": client.info_str, "same_fd": same_fd,
                "member": member, "fd": fd}
    finally:
        net.close()
        loop.close()


def test_fd_dgram_is_cloned_as_mcast_on_the_same_fd_number() -> None:
    result = in_netns(_fd_clone_in_netns, 5020)
    assert result["ok"]
    assert result["got"] == [b"to group"]
    assert result["same_fd"]
    assert result["member"] == ("230.0.0.2", 5020)
    assert result["info"] == f"socket: fd={result['fd']} (cloned mcast=230.0.0.2:5020)"
