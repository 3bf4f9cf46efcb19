"""The monitor's chardev (emu.monitor.chardev): QEMU's `-monitor` spellings, and a tcp
session (prompt, CRLF, one client after the other, line limits, quit)."""

from __future__ import annotations

import socket

import pytest

from emu.core.errors import UserError
from emu.monitor.chardev import MonitorServer, parse_chardev
from emu.monitor.hmp import PROMPT, Monitor
from emu.testing import Lab

pytestmark = pytest.mark.timeout(60)


def test_chardev_spellings() -> None:
    assert parse_chardev("stdio").kind == "stdio"
    tcp = parse_chardev("tcp:127.0.0.1:4444,server,nowait")
    assert (tcp.kind, tcp.address, tcp.wait) == ("tcp", ("127.0.0.1", 4444), False)
    unix = parse_chardev("unix:/tmp/m.sock,server=on,wait=off")
    assert (unix.kind, unix.path, unix.wait) == ("unix", "/tmp/m.sock", False)
    assert parse_chardev("tcp::4444,server").wait
    for bad, message in [("tcp:127.0.0.1:4444", "only server mode"),
                         ("pty", "not supported"), ("stdio,server", "takes no options"),
                         ("tcp:127.0.0.1:4444,server,telnet", "'telnet' is unexpected")]:
        with pytest.raises(UserError, match=message):
            parse_chardev(bad)


def _read_until(sock: socket.socket, lab: Lab, marker: bytes, got: bytearray) -> bytes:
    def have() -> bool:
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            return marker in got
        got.extend(chunk)
        return marker in got or not chunk

    assert lab.run_until(have, 10), bytes(got)
    end = got.index(marker) + len(marker)
    text = bytes(got[:end])
    del got[:end]
    return text


def test_tcp_session_prompt_crlf_sequential_clients_and_quit() -> None:
    with Lab() as lab:
        lab.netdev("hubport,id=h0,hubid=0")
        quits: list[bool] = []
        monitor = Monitor(lab.net, on_quit=lambda: quits.append(True))
        server = MonitorServer(lab.loop, monitor, parse_chardev("tcp:127.0.0.1:0,server,nowait"))
        try:
            prompt = PROMPT.encode()
            for _ in range(2):  # one client after the other
                sock = socket.create_connection(server.address, timeout=5)
                sock.setblocking(False)
                got = bytearray()
                banner = _read_until(sock, lab, prompt, got)
                assert banner.endswith(b"type 'help' for more information\r\n(toynic) ")
                sock.sendall(b"info net")
                sock.sendall(b"work\r\nfoo\n")
                assert _read_until(sock, lab, prompt, got) == b"hub 0\r\n \\ h0\r\n(toynic) "
                assert _read_until(sock, lab, prompt, got) == b"unknown command: 'foo'\r\n(toynic) "
                sock.sendall(b"x" * 5000 + b"\n")
                assert b"line too long" in _read_until(sock, lab, prompt, got)
                sock.close()
                assert lab.run_until(lambda: server.session is None, 10)
            sock = socket.create_connection(server.address, timeout=5)
            sock.setblocking(False)
            got = bytearray()
            _read_until(sock, lab, prompt, got)
            sock.sendall(b"quit\n")
            assert lab.run_until(lambda: bool(quits) and server.session is None, 10)
            sock.close()
        finally:
            server.close()
