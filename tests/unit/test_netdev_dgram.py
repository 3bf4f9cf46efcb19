"""`-netdev dgram` in-process (netdev.dgram): inet unicast, unix sockets and an inherited
fd carry frames both ways with QEMU's info strings; QEMU's refusals word for word.
(Multicast runs against QEMU inside a network namespace: tests/interop.)"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from emu.core.errors import UserError
from emu.testing import Lab
from tests.netsupport import free_port

TIMEOUT = 10.0


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab


def test_inet_unicast_pair(lab: Lab) -> None:
    pa, pb = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    a = lab.netdev(f"dgram,id=a,local.type=inet,local.host=127.0.0.1,local.port={pa},"
                   f"remote.type=inet,remote.host=127.0.0.1,remote.port={pb}")
    lab.netdev(f"dgram,id=b,local.type=inet,local.host=127.0.0.1,local.port={pb},"
               f"remote.type=inet,remote.host=127.0.0.1,remote.port={pa}")
    x, y = lab.peer("x", "a"), lab.peer("y", "b")
    assert a.info_str == f"udp=127.0.0.1:{pa}/127.0.0.1:{pb}"
    assert a.model == "dgram"
    x.send(b"1" * 1514)
    y.send(b"2" * 60)
    assert lab.run_until(lambda: y.received == [b"1" * 1514] and x.received == [b"2" * 60],
                         TIMEOUT)


def test_unix_pair(lab: Lab, tmp_path: Path) -> None:
    pa, pb = tmp_path / "a.sock", tmp_path / "b.sock"
    a = lab.netdev(f"dgram,id=a,local.type=unix,local.path={pa},"
                   f"remote.type=unix,remote.path={pb}")
    lab.netdev(f"dgram,id=b,local.type=unix,local.path={pb},remote.type=unix,remote.path={pa}")
    x, y = lab.peer("x", "a"), lab.peer("y", "b")
    assert a.info_str == f"udp={pa}:{pb}"
    x.send(b"to b")
    y.send(b"to a")
    assert lab.run_until(lambda: y.received == [b"to b"] and x.received == [b"to a"], TIMEOUT)


def test_fd_connected_socketpair(lab: Lab) -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    fd = left.detach()
    a = lab.netdev(f"dgram,id=a,local.type=fd,local.str={fd}")
    x = lab.peer("x", "a")
    assert a.info_str == f"fd={fd} unix"
    x.send(b"out")
    right.setblocking(False)
    got: list[bytes] = []

    def arrived() -> bool:
        try:
            got.append(right.recv(100))
        except BlockingIOError:
            return False
        return True

    assert lab.run_until(arrived, TIMEOUT)
    assert got == [b"out"]
    right.send(b"in")
    assert lab.run_until(lambda: x.received == [b"in"], TIMEOUT)
    right.close()


@pytest.mark.parametrize(("text", "message"), [
    ("dgram,id=d", "dgram requires local= parameter"),
    ("dgram,id=d,local.type=inet,local.host=127.0.0.1,local.port=5555",
     "type=inet or type=unix requires remote parameter"),
    ("dgram,id=d,remote.type=inet,remote.host=127.0.0.1,remote.port=5555",
     "dgram requires local= parameter"),
    ("dgram,id=d,remote.type=inet,remote.host=224.0.0.1,remote.port=5555,"
     "local.type=unix,local.path=/tmp/x", "only support inet or fd type for local"),
    ("dgram,id=d,remote.type=unix,remote.path=/tmp/x", "dgram requires local= parameter"),
    ("dgram,id=d,local.type=unix,local.path=/tmp/x,remote.type=inet,remote.host=1.2.3.4,"
     "remote.port=2", "remote and local types must be the same"),
    ("dgram,id=d,local.type=fd,local.str=0,remote.type=inet,remote.host=1.2.3.4,"
     "remote.port=3", "don't set remote with local.fd"),
    ("dgram,id=d,local.type=inet,local.host=127.0.0.1,local.port=5555,remote.type=unix,"
     "remote.path=/tmp/x", "remote and local types must be the same"),
    ("dgram,id=d,local.type=inet,local.port=1", "Parameter 'local.host' is missing"),
    ("dgram,id=d,locale=1", "Parameter 'locale' is unexpected"),
])
def test_refused(lab: Lab, text: str, message: str) -> None:
    with pytest.raises(UserError) as err:
        lab.netdev(text)
    assert str(err.value) == message


def test_fd_not_a_socket(lab: Lab) -> None:
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(UserError) as err:
            lab.netdev(f"dgram,id=d,local.type=fd,local.str={read_end}")
        assert str(err.value) == ("Unable to query local socket address: "
                                  "Socket operation on non-socket")
    finally:
        os.close(read_end)
        os.close(write_end)
