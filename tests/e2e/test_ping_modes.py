"""`ping` <-> `pingd` between toynic machines over every `-netdev socket` mode (QEMU:
net/socket.c): stream listen/connect, udp, mcast (three machines in one group), fd= with
an inherited stream socket and with an inherited multicast socket (the cloning path),
and through a real QEMU hub relay. 5/5 replies each time.

Multicast runs only inside a network namespace the test creates; everything else on
127.0.0.1. The frames of the stream exchange are captured with filter-dump and decoded
by scapy.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest
from scapy.utils import rdpcap

from tests.e2e.conftest import (
    COUNT,
    GROUP,
    PINGD_IP,
    ProcessLab,
    assert_ping_ok,
    check_frames,
    finish,
    finish_ok,
    mac,
    wait_output,
)
from tests.netsupport import LOOPBACK, free_port, free_ports, hub_args, in_netns, qemu_binary

PINGD = f"ip={PINGD_IP} count={COUNT} timeout=20"
READY = "pingd: answering"


def ping_append(ip: str, count: int = COUNT, timeout: int = 5) -> str:
    return f"ip={ip} peer={PINGD_IP} count={count} timeout={timeout}"


def test_stream_listen_connect_and_frames_decode(lab: ProcessLab, tmp_path: Path) -> None:
    port = free_port()
    dumps = tmp_path / "pingd.pcap", tmp_path / "ping.pcap"
    a = lab.machine("pingd", PINGD, f"listen={LOOPBACK}:{port}", mac(1), dump=dumps[0])
    wait_output(a, READY)
    b = lab.machine("ping", ping_append("10.0.0.2"), f"connect={LOOPBACK}:{port}", mac(2),
                    dump=dumps[1])
    ping_out = finish_ok(b)
    assert f"ping: {PINGD_IP} is at {mac(1)}" in ping_out
    assert_ping_ok(ping_out, finish_ok(a), "10.0.0.2")

    for dump in dumps:
        frames = [bytes(p) for p in rdpcap(str(dump))]
        kinds = check_frames(frames)
        # each side saw ARP request + reply and 5 requests + 5 replies
        assert kinds.get("arp") == 2, (dump.name, kinds)
        assert kinds.get("icmp") == 2 * COUNT, (dump.name, kinds)


def test_udp(lab: ProcessLab) -> None:
    pa, pb = free_ports(2, socket.SOCK_DGRAM)
    a = lab.machine("pingd", PINGD, f"udp={LOOPBACK}:{pb},localaddr={LOOPBACK}:{pa}", mac(1))
    wait_output(a, READY)
    b = lab.machine("ping", ping_append("10.0.0.2"),
                    f"udp={LOOPBACK}:{pa},localaddr={LOOPBACK}:{pb}", mac(2))
    assert_ping_ok(finish_ok(b), finish_ok(a), "10.0.0.2")


def test_fd_inherited_stream_socketpair(lab: ProcessLab) -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left, right:
        a = lab.machine("pingd", PINGD, f"fd={left.fileno()}", mac(1),
                        pass_fds=(left.fileno(),))
        wait_output(a, READY)
        b = lab.machine("ping", ping_append("10.0.0.2"), f"fd={right.fileno()}", mac(2),
                        pass_fds=(right.fileno(),))
    # our copies are closed: the machines hold the only ends
    assert_ping_ok(finish_ok(b), finish_ok(a), "10.0.0.2")


def test_fd_inherited_connected_tcp_pair(lab: ProcessLab) -> None:
    with socket.create_server((LOOPBACK, 0)) as server:
        client = socket.create_connection(server.getsockname(), timeout=10)
        accepted, _ = server.accept()
    with client, accepted:
        a = lab.machine("pingd", PINGD, f"fd={accepted.fileno()}", mac(1),
                        pass_fds=(accepted.fileno(),))
        wait_output(a, READY)
        b = lab.machine("ping", ping_append("10.0.0.2"), f"fd={client.fileno()}", mac(2),
                        pass_fds=(client.fileno(),))
    assert_ping_ok(finish_ok(b), finish_ok(a), "10.0.0.2")


def test_through_a_real_qemu_hub_relay(lab: ProcessLab, tmp_path: Path) -> None:
    """pingd ── listen ◄─ QEMU (two socket netdevs, one hub) ─► listen ── ping."""
    qemu_binary()  # skips without QEMU (fails under CI=true)
    pa, pb = free_ports(2)
    a = lab.machine("pingd", PINGD, f"listen={LOOPBACK}:{pa}", mac(1))
    wait_output(a, READY)
    # ping resolves pingd by ARP, retrying until QEMU has connected both sides
    b = lab.machine("ping", ping_append("10.0.0.2", timeout=10), f"listen={LOOPBACK}:{pb}",
                    mac(2))
    wait_output(b, "ping: PING")
    q = lab.qemu("-netdev", f"socket,id=qa,connect={LOOPBACK}:{pa}",
                 "-netdev", f"socket,id=qb,connect={LOOPBACK}:{pb}",
                 *hub_args("qa", "qb"), workdir=tmp_path)
    info = q.hmp("info network")
    assert f"connect to {LOOPBACK}:{pa}" in info and f"connect to {LOOPBACK}:{pb}" in info, info
    assert_ping_ok(finish_ok(b), finish_ok(a), "10.0.0.2")


# --- multicast, inside a network namespace ------------------------------------------------

def _mcast_trio() -> tuple[list[int], list[str]]:
    port = 5000
    netdev = f"mcast={GROUP}:{port}"
    with ProcessLab() as lab:
        a = lab.machine("pingd", f"ip={PINGD_IP} count={2 * COUNT} timeout=20", netdev, mac(1))
        wait_output(a, READY)
        b = lab.machine("ping", ping_append("10.0.0.2"), netdev, mac(2))
        c = lab.machine("ping", ping_append("10.0.0.3"), netdev, mac(3))
        results = [finish(p) for p in (a, b, c)]
    return [r[0] for r in results], [r[1] for r in results]


@pytest.mark.netns
def test_mcast_three_machines_two_pinging_one() -> None:
    statuses, (a_out, b_out, c_out) = in_netns(_mcast_trio, timeout=150)
    assert statuses == [0, 0, 0], (a_out, b_out, c_out)
    assert_ping_ok(b_out, a_out, "10.0.0.2")
    assert_ping_ok(c_out, a_out, "10.0.0.3")
    # looped-back own frames are not taken for the other machines' traffic
    assert f"ARP reply to {mac(1)}" not in a_out
    assert a_out.count("ARP reply to") == 2, a_out
    assert a_out.count("echo reply to") == 2 * COUNT, a_out


def _hello_trio() -> tuple[list[int], list[str]]:
    netdev = f"mcast={GROUP}:5001"
    # each hears the two others' 3 greetings; its own come back from the group too
    append = "count=3 expect=6 interval=100 timeout=10"
    with ProcessLab() as lab:
        procs = [lab.machine("hello-eth", append, netdev, mac(n)) for n in (1, 2, 3)]
        results = [finish(p) for p in procs]
    return [r[0] for r in results], [r[1] for r in results]


@pytest.mark.netns
def test_mcast_hello_eth_three_machines_ignore_their_own_frames() -> None:
    statuses, outs = in_netns(_hello_trio, timeout=150)
    assert statuses == [0, 0, 0], outs
    for n, out in zip((1, 2, 3), outs, strict=True):
        others = [m for m in (1, 2, 3) if m != n]
        assert "received 6 greetings" in out, out
        assert f"from {mac(n)} type" not in out, f"machine {n} took its own frame:\n{out}"
        for m in others:
            for k in (1, 2, 3):
                assert f'"hello {k} from {mac(m)}"' in out, (n, m, k, out)


def _mcast_fd_clone() -> tuple[list[int], list[str], str]:
    port = 5002
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock, ProcessLab() as lab:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((GROUP, port))
        mreq = struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton("0.0.0.0"))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        fd = sock.fileno()
        a = lab.machine("pingd", PINGD, f"fd={fd}", mac(1), pass_fds=(fd,))
        wait_output(a, READY)
        b = lab.machine("ping", ping_append("10.0.0.2"), f"mcast={GROUP}:{port}", mac(2))
        results = [finish(p) for p in (a, b)]
        stderr = a.stderr
    return [r[0] for r in results], [r[1] for r in results], stderr


@pytest.mark.netns
def test_fd_inherited_multicast_socket_is_cloned() -> None:
    statuses, (a_out, b_out), a_err = in_netns(_mcast_fd_clone, timeout=120)
    assert statuses == [0, 0], (a_out, b_out, a_err)
    assert_ping_ok(b_out, a_out, "10.0.0.2")

