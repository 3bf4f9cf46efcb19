"""`-netdev stream` in-process (netdev.stream): server and client over inet (IPv4, IPv6),
unix (path, abstract) and fd; QEMU's info strings and QMP events; one client at a time;
link down while unconnected; reconnect-ms on a fixed timer, each connection starting on
a record boundary; the refused option combinations with QEMU's texts."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emu.core.errors import UserError
from emu.testing import Lab
from netdev.stream import StreamNetdev
from tests.netsupport import RecordReader, free_port, record, unavailable

TIMEOUT = 10.0


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab


def events_of(lab: Lab) -> list[tuple[str, dict[str, Any]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    lab.net.event_listeners.append(lambda name, data: seen.append((name, data)))
    return seen


def stream(lab: Lab, text: str) -> StreamNetdev:
    client = lab.netdev(text)
    assert isinstance(client, StreamNetdev)
    return client


def accept(lab: Lab, listener: socket.socket) -> socket.socket:
    listener.setblocking(False)
    got: list[socket.socket] = []

    def ready() -> bool:
        try:
            got.append(listener.accept()[0])
        except BlockingIOError:
            return False
        return True

    assert lab.run_until(ready, TIMEOUT)
    got[0].setblocking(True)
    got[0].settimeout(TIMEOUT)
    return got[0]


def read_frames(lab: Lab, sock: socket.socket, want: int) -> list[bytes]:
    reader = RecordReader()
    sock.setblocking(False)

    def enough() -> bool:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return False
        reader.feed(data)
        return len(reader.frames) >= want or not data

    lab.run_until(enough, TIMEOUT)
    return reader.frames


def test_server_inet_serves_one_client_then_listens_again(lab: Lab) -> None:
    seen = events_of(lab)
    port = free_port()
    server = stream(lab, f"stream,id=s0,server=on,addr.type=inet,addr.host=127.0.0.1,"
                         f"addr.port={port}")
    peer = lab.peer("p", "s0")
    assert server.info_str == "listening" and server.link_down
    first = socket.create_connection(("127.0.0.1", port))
    assert lab.run_until(lambda: server.connected, TIMEOUT)
    assert server.info_str == f"tcp:127.0.0.1:{first.getsockname()[1]}"
    assert not server.link_down
    assert seen == [("NETDEV_STREAM_CONNECTED",
                     {"netdev-id": "s0", "addr": {"type": "inet", "host": "127.0.0.1",
                                                  "port": str(first.getsockname()[1]),
                                                  "ipv4": True}})]
    # A second client waits in the backlog while the first is served.
    second = socket.create_connection(("127.0.0.1", port))
    first.sendall(record(b"one"))
    assert lab.run_until(lambda: peer.received == [b"one"], TIMEOUT)
    peer.send(b"back")
    assert read_frames(lab, first, 1) == [b"back"]
    first.close()
    assert lab.run_until(lambda: seen[-1][0] == "NETDEV_STREAM_CONNECTED" and len(seen) == 3,
                         TIMEOUT)
    assert seen[1] == ("NETDEV_STREAM_DISCONNECTED", {"netdev-id": "s0"})
    assert server.info_str == f"tcp:127.0.0.1:{second.getsockname()[1]}"
    second.close()
    assert lab.run_until(lambda: server.info_str == "listening", TIMEOUT)
    assert server.link_down


def test_client_ipv6_and_uri_in_brackets(lab: Lab) -> None:
    listener = socket.socket(socket.AF_INET6)
    try:
        listener.bind(("::1", 0))
    except OSError as err:
        unavailable(f"no IPv6 loopback: {err}")
    listener.listen(1)
    port = listener.getsockname()[1]
    client = stream(lab, f"stream,id=c0,addr.type=inet,addr.host=::1,addr.port={port},"
                         "addr.ipv6=on")
    assert client.info_str == "connecting" or client.connected
    conn = accept(lab, listener)
    assert lab.run_until(lambda: client.connected, TIMEOUT)
    assert client.info_str == f"tcp:[::1]:{port}"
    conn.close()
    listener.close()


def test_server_ipv6_on_any_also_takes_ipv4(lab: Lab) -> None:
    port = free_port()
    try:
        server = stream(lab, f"stream,id=s0,server=on,addr.type=inet,addr.host=::,"
                             f"addr.port={port}")
    except UserError as err:
        unavailable(f"no IPv6: {err}")
    conn = socket.create_connection(("127.0.0.1", port))
    assert lab.run_until(lambda: server.connected, TIMEOUT)
    assert server.info_str.startswith("tcp:[::ffff:127.0.0.1]:")
    conn.close()


def test_unix_server_and_client_frames_both_ways(lab: Lab, tmp_path: Path) -> None:
    seen = events_of(lab)
    path = tmp_path / "s.sock"
    server = stream(lab, f"stream,id=s0,server=on,addr.type=unix,addr.path={path}")
    client = stream(lab, f"stream,id=c0,addr.type=unix,addr.path={path}")
    a, b = lab.peer("a", "s0"), lab.peer("b", "c0")
    assert lab.run_until(lambda: server.connected and client.connected, TIMEOUT)
    assert server.info_str == client.info_str == f"unix:{path}"
    assert ("NETDEV_STREAM_CONNECTED",
            {"netdev-id": "c0", "addr": {"type": "unix", "path": str(path)}}) in seen
    a.send(b"x" * 1514)
    b.send(b"y" * 60)
    assert lab.run_until(lambda: b.received == [b"x" * 1514] and a.received == [b"y" * 60],
                         TIMEOUT)
    lab.net.close()
    assert not path.exists(), "the server's socket file outlives it"


def test_unix_abstract(lab: Lab) -> None:
    name = f"toynic-test-{os.getpid()}"
    server = stream(lab, f"stream,id=s0,server=on,addr.type=unix,addr.path={name},"
                         "addr.abstract=on")
    conn = socket.socket(socket.AF_UNIX)
    conn.connect("\0" + name)
    assert lab.run_until(lambda: server.connected, TIMEOUT)
    assert server.info_str == f"unix:{name}"
    conn.close()


def test_fd_client_and_fd_server(lab: Lab) -> None:
    left, right = socket.socketpair()
    client = stream(lab, f"stream,id=c0,addr.type=fd,addr.str={left.detach()}")
    assert client.connected and not client.link_down
    peer = lab.peer("p", "c0")
    right.sendall(record(b"hello"))
    assert lab.run_until(lambda: peer.received == [b"hello"], TIMEOUT)
    right.close()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = stream(lab, f"stream,id=s0,server=on,addr.type=fd,addr.str={listener.detach()}")
    conn = socket.create_connection(("127.0.0.1", port))
    assert lab.run_until(lambda: server.connected, TIMEOUT)
    conn.close()


def test_connect_refused_is_an_error_info_and_no_retry_without_reconnect(lab: Lab) -> None:
    port = free_port()
    client = stream(lab, f"stream,id=c0,addr.type=inet,addr.host=127.0.0.1,addr.port={port}")
    client.report = lambda _text: None
    assert lab.run_until(lambda: client.info_str.startswith("error:"), TIMEOUT)
    assert client.info_str == (f"error: Failed to connect to '127.0.0.1:{port}': "
                               "Connection refused")
    assert client.link_down


def test_reconnect_fixed_timer_and_record_boundary(lab: Lab) -> None:
    seen = events_of(lab)
    port = free_port()
    client = stream(lab, f"stream,id=c0,addr.type=inet,addr.host=127.0.0.1,addr.port={port},"
                         "reconnect-ms=50")
    peer = lab.peer("p", "c0")
    assert lab.run_until(lambda: client.info_str == "connecting", TIMEOUT)
    listener = socket.create_server(("127.0.0.1", port))
    conn = accept(lab, listener)
    assert lab.run_until(lambda: client.connected, TIMEOUT)
    # Half a record, then the peer goes: the next connection must not see its rest.
    conn.sendall(record(b"whole") + record(b"cut short")[:6])
    assert lab.run_until(lambda: peer.received == [b"whole"], TIMEOUT)
    conn.close()
    assert lab.run_until(lambda: ("NETDEV_STREAM_DISCONNECTED", {"netdev-id": "c0"}) in seen,
                         TIMEOUT)
    assert client.link_down
    conn = accept(lab, listener)
    assert lab.run_until(lambda: client.connected, TIMEOUT)
    conn.sendall(record(b"fresh"))
    assert lab.run_until(lambda: peer.received == [b"whole", b"fresh"], TIMEOUT)
    peer.send(b"out")
    assert read_frames(lab, conn, 1) == [b"out"]
    assert [name for name, _ in seen] == ["NETDEV_STREAM_CONNECTED",
                                          "NETDEV_STREAM_DISCONNECTED",
                                          "NETDEV_STREAM_CONNECTED"]
    conn.close()
    listener.close()


@pytest.mark.parametrize(("text", "message"), [
    ("stream,id=s", "Parameter 'addr' is missing"),
    ("stream,id=s,addr.type=inet", "Parameter 'addr.host' is missing"),
    ("stream,id=s,addr.type=inet,addr.host=127.0.0.1", "Parameter 'addr.port' is missing"),
    ("stream,id=s,addr.type=unix", "Parameter 'addr.path' is missing"),
    ("stream,id=s,addr.type=unix,addr.path=/x,addr.host=h",
     "Parameter 'addr.host' is unexpected"),
    ("stream,id=s,addr.type=bogus", "Parameter 'addr.type' does not accept value 'bogus'"),
    ("stream,id=s,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port=1,reconnect-ms=1",
     "'reconnect' and 'reconnect-ms' options are incompatible with socket in server mode"),
    ("stream,id=s,addr.type=inet,addr.host=127.0.0.1,addr.port=1,reconnect=1",
     "Parameter 'reconnect' is unexpected"),
    ("stream,id=s,addr.type=inet,addr.host=127.0.0.1,addr.port=1,keep-alive=on",
     "Parameter 'keep-alive' is unexpected"),
    ("stream,id=s,addr.type=inet,addr.host=127.0.0.1,addr.port=1,reconnect-ms=-1",
     "Parameter 'reconnect-ms' expects uint32_t"),
    ("stream,id=s,addr.type=fd,addr.str=x", "Invalid file descriptor number 'x'"),
    ("stream,id=s,server=maybe,addr.type=fd,addr.str=1",
     "Parameter 'server' expects 'on' or 'off'"),
])
def test_refused(lab: Lab, text: str, message: str) -> None:
    with pytest.raises(UserError) as err:
        lab.netdev(text)
    assert str(err.value) == message


def test_fd_of_wrong_kind_refused(lab: Lab) -> None:
    left, right = socket.socketpair()
    with pytest.raises(UserError, match="must be a listening socket with server=on"):
        lab.netdev(f"stream,id=s,server=on,addr.type=fd,addr.str={left.fileno()}")
    read_end, write_end = os.pipe()
    with pytest.raises(UserError, match="is not a socket"):
        lab.netdev(f"stream,id=s,addr.type=fd,addr.str={read_end}")
    for fd in (read_end, write_end):
        os.close(fd)
    left.close()
    right.close()
