"""toynic's datagram netdevs against a real QEMU: `-netdev socket` udp= and mcast=, fd=
passing of a bound multicast socket (toynic clones it, as the seed does), and QEMU 7.2's
`-netdev dgram` unicast and multicast (QEMU: net/socket.c, net/dgram.c).

Multicast runs only inside a network namespace each test creates (both emulators in
it), so no datagram can leave the machine. Frames are windowed: a burst that overflows a
receive buffer is dropped by the kernel, which would say nothing about either emulator."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest

from tests.interop.harness import (
    DGRAM_SIZES,
    close_sides,
    exchange,
    qemu_side,
    toynic_side,
    udp_port,
)
from tests.netsupport import in_netns, qemu_binary

pytestmark = pytest.mark.interop

WINDOW = 32 * 1024  # bytes in flight per direction
GROUP = "230.0.0.1"


@pytest.fixture(autouse=True)
def _need_qemu() -> None:
    qemu_binary()


def dgram_exchange(q_netdev: str, t_netdev: str, workdir: Path,
                   t_fds: tuple[int, ...] = ()) -> str:
    """Both sides up, frames both ways; returns QEMU's `info network`."""
    q = t = None
    try:
        q = qemu_side(q_netdev, workdir)
        t = toynic_side(t_netdev, pass_fds=t_fds)
        exchange(q, t, sizes=DGRAM_SIZES, window=WINDOW)
        return q.proc.hmp("info network")
    finally:
        close_sides(t, q)


def test_udp_both_ways(tmp_path: Path) -> None:
    qp, tp = udp_port(), udp_port()
    info = dgram_exchange(f"socket,id=q,udp=127.0.0.1:{tp},localaddr=127.0.0.1:{qp}",
                          f"socket,id=t,udp=127.0.0.1:{qp},localaddr=127.0.0.1:{tp}", tmp_path)
    assert f"socket: udp=127.0.0.1:{tp}" in info


def test_qemu_dgram_unicast(tmp_path: Path) -> None:
    qp, tp = udp_port(), udp_port()
    info = dgram_exchange(
        f"dgram,id=q,local.type=inet,local.host=127.0.0.1,local.port={qp},"
        f"remote.type=inet,remote.host=127.0.0.1,remote.port={tp}",
        f"socket,id=t,udp=127.0.0.1:{qp},localaddr=127.0.0.1:{tp}", tmp_path)
    assert f"udp=127.0.0.1:{qp}/127.0.0.1:{tp}" in info


def _mcast_in_netns(q_netdev: str, workdir: Path) -> str:
    return dgram_exchange(q_netdev, f"socket,id=t,mcast={GROUP}:5000", workdir)


@pytest.mark.netns
def test_mcast_one_group(tmp_path: Path) -> None:
    info = in_netns(_mcast_in_netns, f"socket,id=q,mcast={GROUP}:5000", tmp_path)
    assert f"socket: mcast={GROUP}:5000" in info


@pytest.mark.netns
def test_qemu_dgram_mcast(tmp_path: Path) -> None:
    info = in_netns(_mcast_in_netns,
                    f"dgram,id=q,remote.type=inet,remote.host={GROUP},remote.port=5000",
                    tmp_path)
    assert f"mcast={GROUP}:5000" in info


def _mcast_fd_in_netns(workdir: Path) -> str:
    # The usual way to hand a group to a child: a socket bound to the group address.
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((GROUP, 5000))
        mreq = struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton("0.0.0.0"))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        fd = sock.fileno()
        return dgram_exchange(f"socket,id=q,mcast={GROUP}:5000", f"socket,id=t,fd={fd}",
                              workdir, t_fds=(fd,))


@pytest.mark.netns
def test_bound_mcast_socket_passed_as_fd_is_cloned(tmp_path: Path) -> None:
    info = in_netns(_mcast_fd_in_netns, tmp_path)
    assert f"socket: mcast={GROUP}:5000" in info
