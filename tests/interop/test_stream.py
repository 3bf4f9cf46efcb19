"""toynic's stream netdev against a real QEMU: `-netdev socket` listen/connect both ways,
fd= passing of a connected stream socket, and QEMU 7.2's `-netdev stream` as server and
client (QEMU: net/socket.c, net/stream.c). Frames go both directions, byte-exact."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.interop.harness import Side, close_sides, exchange, qemu_side, toynic_side
from tests.netsupport import LOOPBACK, free_port, qemu_binary, wait_accepted, wait_listening

pytestmark = pytest.mark.interop


@pytest.fixture(autouse=True)
def _need_qemu() -> None:
    qemu_binary()


def test_qemu_listens_toynic_connects(tmp_path: Path) -> None:
    port = free_port()
    q = t = None
    try:
        q = qemu_side(f"socket,id=q,listen={LOOPBACK}:{port}", tmp_path)
        t = toynic_side(f"socket,id=t,connect={LOOPBACK}:{port}")
        wait_accepted(q.proc.pid, port)
        exchange(q, t)
        assert "socket: connection from 127.0.0.1:" in q.proc.hmp("info network")
    finally:
        close_sides(t, q)


def test_toynic_listens_qemu_connects(tmp_path: Path) -> None:
    port = free_port()
    q = t = None
    try:
        t = toynic_side(f"socket,id=t,listen={LOOPBACK}:{port}")
        wait_listening(t.proc.pid, port)
        q = qemu_side(f"socket,id=q,connect={LOOPBACK}:{port}", tmp_path)
        wait_accepted(t.proc.pid, port)
        exchange(q, t)
        assert f"socket: connect to 127.0.0.1:{port}" in q.proc.hmp("info network")
    finally:
        close_sides(q, t)


def test_connected_stream_socket_passed_as_fd(tmp_path: Path) -> None:
    port = free_port()
    q = t = None
    try:
        q = qemu_side(f"socket,id=q,listen={LOOPBACK}:{port}", tmp_path)
        with socket.create_connection((LOOPBACK, port)) as conn:
            fd = conn.fileno()
            t = toynic_side(f"socket,id=t,fd={fd}", pass_fds=(fd,))
        # Only toynic holds the connection now: a leftover copy here would hide a close.
        wait_accepted(q.proc.pid, port)
        exchange(q, t)
    finally:
        close_sides(t, q)


def test_qemu_stream_server_toynic_connects(tmp_path: Path) -> None:
    port = free_port()
    q = t = None
    try:
        q = qemu_side("stream,id=q,server=on,addr.type=inet,addr.host=127.0.0.1,"
                      f"addr.port={port}", tmp_path)
        t = toynic_side(f"socket,id=t,connect={LOOPBACK}:{port}")
        wait_accepted(q.proc.pid, port)
        exchange(q, t)
        assert "tcp:127.0.0.1:" in q.proc.hmp("info network")
    finally:
        close_sides(t, q)


def test_qemu_stream_client_toynic_listens(tmp_path: Path) -> None:
    port = free_port()
    q = t = None
    try:
        t = toynic_side(f"socket,id=t,listen={LOOPBACK}:{port}")
        wait_listening(t.proc.pid, port)
        q = qemu_side("stream,id=q,server=off,addr.type=inet,addr.host=127.0.0.1,"
                      f"addr.port={port}", tmp_path)
        wait_accepted(t.proc.pid, port)
        exchange(q, t)
        assert f"tcp:127.0.0.1:{port}" in q.proc.hmp("info network")
    finally:
        close_sides(q, t)


def test_toynic_survives_qemu_leaving_and_serves_the_next(tmp_path: Path) -> None:
    """QEMU quits mid-session; toynic re-listens and a second QEMU picks up cleanly."""
    port = free_port()
    t: Side | None = None
    q: Side | None = None
    try:
        t = toynic_side(f"socket,id=t,listen={LOOPBACK}:{port}")
        wait_listening(t.proc.pid, port)
        for _ in range(2):
            q = qemu_side(f"socket,id=q,connect={LOOPBACK}:{port}", tmp_path)
            wait_accepted(t.proc.pid, port)
            exchange(q, t, rounds=1)
            close_sides(q)
            q = None
            wait_listening(t.proc.pid, port)
        assert t.proc.alive()
    finally:
        close_sides(q, t)
