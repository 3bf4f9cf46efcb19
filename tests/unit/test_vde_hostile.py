"""`-netdev vde` against a hostile "switch" (a unix socket at DIR/ctl that is not a
vde_switch): whatever it answers, toynic fails in one line (UserError), leaves no data
socket behind in the directory and holds no descriptor; a numeric `group=` the kernel
cannot take is one line too, and a DIR/ctl that is not a socket is named as such."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from emu.core.errors import UserError
from emu.core.loop import MainLoop
from emu.core.opts import parse_opts
from netdev import vde
from netdev.vde import SOCKADDR_UN, create_vde_netdev
from tests.vdesupport import vde_lab


def address(path: bytes, family: int = socket.AF_UNIX) -> bytes:
    return SOCKADDR_UN.pack(family, path)


@contextmanager
def fake_switch(directory: Path, answer: bytes) -> Iterator[None]:
    """Accepts one control connection on directory/ctl, reads the request, sends
    `answer`, and keeps the connection open until the test is done."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(directory / "ctl"))
    server.listen(1)
    server.settimeout(10)
    held: list[socket.socket] = []

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        held.append(conn)
        conn.recv(4096)
        conn.sendall(answer)

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    try:
        yield
    finally:
        worker.join(10)
        for conn in held:
            conn.close()
        server.close()


def open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


ANSWERS = [
    ("a path where nothing listens", address(b"/nonexistent/toynic-vde-data"),
     "No such file or directory"),
    ("its own stream socket", None, "Protocol wrong type for socket"),
    ("a regular file", address(b"/etc/hostname"), "Connection refused"),
    ("a directory", address(b"/tmp"), "Connection refused"),
    ("a path that is not UTF-8", address(b"/nonexistent/\xff\xfe"), "No such file"),
]


@pytest.mark.parametrize(("answer", "expected"),
                         [(answer, expected) for _, answer, expected in ANSWERS],
                         ids=[name for name, _, _ in ANSWERS])
def test_a_hostile_switch_answer_is_one_line(tmp_path: Path, answer: bytes | None,
                                             expected: str) -> None:
    loop = MainLoop()
    try:
        sent = answer if answer is not None else address(str(tmp_path / "ctl").encode())
        before = open_fds()
        with fake_switch(tmp_path, sent), pytest.raises(UserError) as caught:
            create_vde_netdev(loop, "n0", parse_opts(f"vde,id=n0,sock={tmp_path}",
                                                     "type"))
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith(f"VDE switch {tmp_path}: could not connect to the data "
                                  "socket it named")
        assert expected in message
        assert sorted(os.listdir(tmp_path)) == ["ctl"]
        assert open_fds() == before
    finally:
        loop.close()


@pytest.mark.parametrize("group", ["4294967295", "4294967296", "99999999999999999999"])
def test_a_group_number_out_of_range_is_one_line(group: str) -> None:
    loop = MainLoop()
    try:
        with vde_lab() as (switch,):
            before = sorted(os.listdir(switch.directory))
            with pytest.raises(UserError, match=f"^group '{group}' does not exist$"):
                create_vde_netdev(loop, "n0", parse_opts(
                    f"vde,id=n0,sock={switch.directory},group={group}", "type"))
            assert sorted(os.listdir(switch.directory)) == before
    finally:
        loop.close()


def test_the_answer_timeout_is_still_the_only_wait(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # A "switch" that accepts and says nothing: one line after ANSWER_TIMEOUT.
    monkeypatch.setattr(vde, "ANSWER_TIMEOUT", 0.5)
    loop = MainLoop()
    try:
        with fake_switch(tmp_path, b""), pytest.raises(UserError, match="gave no port"):
            create_vde_netdev(loop, "n0", parse_opts(f"vde,id=n0,sock={tmp_path}", "type"))
        assert sorted(os.listdir(tmp_path)) == ["ctl"]
    finally:
        loop.close()



def _regular_ctl(directory: Path) -> None:
    (directory / "ctl").write_text("")


def _directory_ctl(directory: Path) -> None:
    (directory / "ctl").mkdir()


def _stale_socket_ctl(directory: Path) -> None:
    # A socket file whose switch is gone (vde_switch killed with SIGKILL leaves one).
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(directory / "ctl"))


@pytest.mark.parametrize(("make", "hint"), [
    (_regular_ctl, "{dir}/ctl is not a socket: not a switch's directory"),
    (_directory_ctl, "{dir}/ctl is not a socket: not a switch's directory"),
    (_stale_socket_ctl, "the switch that made it is not running"),
])
def test_a_ctl_that_is_not_a_switch_says_what_it_is(tmp_path: Path,
                                                     make: Callable[[Path], None],
                                                     hint: str) -> None:
    make(tmp_path)
    loop = MainLoop()
    try:
        with pytest.raises(UserError) as caught:
            create_vde_netdev(loop, "n0", parse_opts(f"vde,id=n0,sock={tmp_path}", "type"))
    finally:
        loop.close()
    assert str(caught.value) == (f"could not connect to VDE switch {tmp_path}: Connection "
                                 f"refused ({hint.format(dir=tmp_path)})")
