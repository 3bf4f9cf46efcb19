"""`addr.type=fd` of `-netdev stream` and `local.type=fd` of `-netdev dgram` go through the
same descriptor checks as `-netdev socket,fd=` and `tap,fd=` (netdev.fd_param.take_fd,
QEMU's monitor_fd_param): a descriptor of toynic's event loop or of another netdev is
refused and left alone, a closed one is refused with the reason."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from emu.core.errors import UserError
from emu.testing import Lab

NETDEVS = {
    "stream-server": "stream,id=s,server=on,addr.type=fd,addr.str={fd}",
    "stream-client": "stream,id=s,server=off,addr.type=fd,addr.str={fd}",
    "dgram": "dgram,id=s,local.type=fd,local.str={fd}",
}


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab


@pytest.mark.parametrize("kind", NETDEVS)
def test_the_loops_own_descriptors_are_refused_and_left_alone(lab: Lab, kind: str) -> None:
    own = lab.net.loop.own_fds()
    assert own
    for fd in sorted(own):
        with pytest.raises(UserError) as err:
            lab.netdev(NETDEVS[kind].format(fd=fd))
        assert str(err.value) == (f"fd={fd} is a descriptor of toynic's event loop, "
                                  "not a socket handed to toynic")
        os.fstat(fd)


@pytest.mark.parametrize("kind", NETDEVS)
def test_another_netdevs_socket_is_refused(lab: Lab, kind: str) -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with right:
        fd = left.detach()
        lab.netdev(f"dgram,id=first,local.type=fd,local.str={fd}")
        with pytest.raises(UserError, match=f"^fd={fd} is a socket of netdev first, "):
            lab.netdev(NETDEVS[kind].format(fd=fd))


@pytest.mark.parametrize(("kind", "context"), [("stream-server", ""), ("stream-client", ""),
                                               ("dgram", "s: ")])
def test_a_closed_descriptor_is_refused(lab: Lab, kind: str, context: str) -> None:
    fd = os.open("/dev/null", os.O_RDONLY)
    os.close(fd)
    with pytest.raises(UserError) as err:
        lab.netdev(NETDEVS[kind].format(fd=fd))
    assert str(err.value) == f"{context}Can't use file descriptor {fd}: Bad file descriptor"
