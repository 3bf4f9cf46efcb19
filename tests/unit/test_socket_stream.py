"""Stream socket netdev in-process: listen, connect, fd=, framing on the wire, partial
sends (and what is not one: a full sendmsg of IOV_MAX buffers), backpressure, and the
seed-bug fixes Q1, Q2, Q3, Q5, Q6 (docs/quirks.md)."""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import socket
import struct
import termios

from emu.core.errors import UserError
from emu.core.loop import MainLoop
from emu.core.opts import parse_opts
from emu.core.trace import Trace
from netdev import socket_stream
from netdev.client import NetClient, connect_peers
from netdev.framing import NET_BUFSIZE, OVERSIZE_MESSAGE
from netdev.net import Net
from netdev.socket_stream import IOV_MAX, StreamSocket
from tests.netsupport import RecordReader, free_port, record, records

TIMEOUT = 10.0


class Nic(NetClient):
    """Stands in for a NIC: collects frames; can refuse them ("ring full")."""

    def __init__(self) -> None:
        super().__init__("nic", "test-nic")
        self.got: list[bytes] = []
        self.full = False

    def receive(self, frame: bytes) -> int:
        if self.full:
            return 0
        self.got.append(frame)
        return len(frame)


def netdev(net: Net, text: str) -> StreamSocket:
    client = net.add_netdev(parse_opts(text, "type"))
    assert isinstance(client, StreamSocket)
    return client


def with_nic(client: NetClient) -> Nic:
    nic = Nic()
    connect_peers(nic, client)
    return nic


def read_records(loop: MainLoop, sock: socket.socket, count: int) -> list[bytes]:
    reader = RecordReader()
    sock.setblocking(False)

    def enough() -> bool:
        while len(reader.frames) < count:
            try:
                data = sock.recv(1 << 20)
            except BlockingIOError:
                return False
            if not data:
                return True
            reader.feed(data)
        return True

    # A short step: the bytes may already sit in kernel buffers, with no loop event to come.
    assert loop.run_until(enough, TIMEOUT, step=0.002), (
        f"got {len(reader.frames)} of {count} records"
    )
    return reader.frames


def accept_backlog(port: int) -> int:
    """Connections waiting in the accept queue of the socket listening on 127.0.0.1:port
    (for a listening socket, /proc/net/tcp's rx_queue is that count)."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        for fields in (line.split() for line in table.readlines()[1:]):
            if fields[1] == want and fields[3] == "0A":
                return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def unread_bytes(sock: socket.socket) -> int:
    """Bytes waiting in `sock`'s kernel receive buffer."""
    return int.from_bytes(fcntl.ioctl(sock.fileno(), termios.FIONREAD, bytes(4)), "little")


def accepted(loop: MainLoop, client: StreamSocket, port: int) -> socket.socket:
    peer = socket.create_connection(("127.0.0.1", port))
    assert loop.run_until(lambda: client.connected, TIMEOUT)
    return peer


def test_listen_waits_link_down_with_empty_info(net: Net) -> None:
    client = netdev(net, f"socket,id=s,listen=127.0.0.1:{free_port()}")
    assert client.link_down
    assert client.info_str == ""


def test_listen_accepts_and_q1_data_socket_nonblocking_nodelay(loop: MainLoop, net: Net) -> None:
    port = free_port()
    client = netdev(net, f"socket,id=s,listen=127.0.0.1:{port}")
    peer = accepted(loop, client, port)
    local = peer.getsockname()
    assert client.info_str == f"socket: connection from {local[0]}:{local[1]}"
    assert not client.link_down
    data_sock = client._sock
    assert data_sock is not None
    assert data_sock.getblocking() is False
    assert data_sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    peer.close()


def test_wire_to_nic_s1_s2_s3(loop: MainLoop, net: Net) -> None:
    port = free_port()
    client = netdev(net, f"socket,id=s,listen=127.0.0.1:{port}")
    nic = with_nic(client)
    peer = accepted(loop, client, port)
    peer.sendall(bytes.fromhex("00000005") + b"TEST\x00")
    assert loop.run_until(lambda: len(nic.got) == 1, TIMEOUT)
    for byte in record(b"split"):
        peer.sendall(bytes([byte]))
    peer.sendall(records([b"two", b"three"]))
    assert loop.run_until(lambda: len(nic.got) == 4, TIMEOUT)
    assert nic.got == [b"TEST\x00", b"split", b"two", b"three"]
    peer.close()


def test_s6_nic_to_wire_framing(loop: MainLoop, net: Net) -> None:
    port = free_port()
    client = netdev(net, f"socket,id=s,listen=127.0.0.1:{port}")
    nic = with_nic(client)
    peer = accepted(loop, client, port)
    assert nic.send(b"TEST") == 4
    peer.setblocking(False)
    got = bytearray()

    def have_8() -> bool:
        with contextlib.suppress(BlockingIOError):
            got.extend(peer.recv(100))
        return len(got) >= 8

    assert loop.run_until(have_8, TIMEOUT)
    assert bytes(got) == bytes.fromhex("00000004") + b"TEST"
    peer.close()


def test_q5_empty_records_dropped_and_counted(loop: MainLoop, net: Net) -> None:
    port = free_port()
    client = netdev(net, f"socket,id=s,listen=127.0.0.1:{port}")
    nic = with_nic(client)
    peer = accepted(loop, client, port)
    peer.sendall(record(b"") + record(b"after") + record(b""))
    assert loop.run_until(lambda: client.stats.empty_records_in == 2, TIMEOUT)
    assert nic.got == [b"after"]
    assert not nic.receive_disabled
    # An empty frame from the NIC is not written either.
    assert nic.send(b"") > 0
    assert nic.send(b"x") == 1
    assert read_records(loop, peer, 1) == [b"x"]
    assert client.stats.empty_frames_out == 1
    peer.close()


def test_s5_oversize_closes_and_next_client_is_served(loop: MainLoop, net: Net) -> None:
    port = free_port()
    client = netdev(net, f"socket,id=s,listen=127.0.0.1:{port}")
    messages: list[str] = []
    client.report = messages.append
    nic = with_nic(client)
    first = accepted(loop, client, port)
    first.sendall(record(b"ok") + struct.pack(">I", NET_BUFSIZE + 1) + b"z" * 1000)
    assert loop.run_until(lambda: not client.connected, TIMEOUT)
    assert messages == [OVERSIZE_MESSAGE]
    assert client.link_down and client.info_str == ""
    second = accepted(loop, client, port)
    second.sendall(record(b"second client"))
    assert loop.run_until(lambda: len(nic.got) == 2, TIMEOUT)
    assert nic.got == [b"ok", b"second client"]
    first.close()
    second.close()


def test_s8_second_client_waits_for_the_first(loop: MainLoop, net: Net) -> None:
    port = free_port()
    client = netdev(net, f"socket,id=s,listen=127.0.0.1:{port}")
    nic = with_nic(client)
    first = accepted(loop, client, port)
    second = socket.create_connection(("127.0.0.1", port))
    second.sendall(record(b"from second"))
    first.sendall(record(b"from first"))
    assert loop.run_until(lambda: len(nic.got) == 1 and accept_backlog(port) == 1, TIMEOUT)
    # Serve every event that is ready now: a netdev still watching its listening socket
    # would take the waiting connection out of the backlog here.
    loop.run_once(0)
    assert accept_backlog(port) == 1, "the second client was accepted while the first is on"
    assert nic.got == [b"from first"]
    first.close()
    assert loop.run_until(lambda: len(nic.got) == 2, TIMEOUT)
    assert nic.got[1] == b"from second"
    second.close()


def test_frames_to_unconnected_listener_are_dropped(loop: MainLoop, net: Net) -> None:
    port = free_port()
    client = netdev(net, f"socket,id=s,listen=127.0.0.1:{port}")
    nic = with_nic(client)
    assert nic.send(b"lost") == 4
    assert len(client.incoming_queue) == 0
    peer = accepted(loop, client, port)
    nic.send(b"kept")
    assert read_records(loop, peer, 1) == [b"kept"]
    peer.close()


def test_s7_partial_sends_resume_mid_record(loop: MainLoop, net: Net) -> None:
    port = free_port()
    client = netdev(net, f"socket,id=s,listen=127.0.0.1:{port}")
    nic = with_nic(client)
    peer = socket.socket()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    peer.connect(("127.0.0.1", port))
    assert loop.run_until(lambda: client.connected, TIMEOUT)
    frames = [struct.pack(">I", i) + bytes([i & 0xFF]) * (1000 + i % 517) for i in range(3000)]
    sent = 0
    for frame in frames:
        if nic.send(frame) == 0:
            break
        sent += 1
        loop.run_once(0)
    # The stream refused at some point (peer not reading): the rest waits in the queue.
    assert sent < len(frames)
    assert client.receive_disabled or len(client.incoming_queue)
    for frame in frames[sent + 1:]:
        nic.send(frame)
    assert read_records(loop, peer, len(frames)) == frames
    peer.close()


def socket_events(client: StreamSocket) -> io.StringIO:
    """Trace `client`'s net_socket_* events into the returned buffer."""
    trace = Trace()
    out = io.StringIO()
    trace.open_log(out)
    trace.enable("net_socket_*")
    client.set_trace(trace)
    return out


def events(out: io.StringIO, name: str) -> list[dict[str, str]]:
    return [dict(pair.split("=", 1) for pair in line.split(" ")[1:])
            for line in out.getvalue().splitlines() if line.split(" ")[0] == name]


def test_more_records_than_iov_max_is_not_a_partial_send(loop: MainLoop, net: Net) -> None:
    """Over IOV_MAX buffers wait: one sendmsg takes the first IOV_MAX, all of them, and
    the next takes the rest. The kernel took everything offered each time, so no
    net_socket_partial_send. (The first frame, alone in the buffer, is written at once;
    the others wait for the loop.)"""
    ours, theirs = socket.socketpair()
    client = netdev(net, f"socket,id=f,fd={ours.detach()}")
    out = socket_events(client)
    nic = with_nic(client)
    frames = [struct.pack(">I", i) + bytes(16) for i in range(IOV_MAX + 1)]  # two buffers each
    for frame in frames:
        assert nic.send(frame) == len(frame)
    record = 4 + 20
    assert [int(e["bytes"]) for e in events(out, "net_socket_write")] == [record]
    assert read_records(loop, theirs, len(frames)) == frames
    half = IOV_MAX // 2 * record
    assert [int(e["bytes"]) for e in events(out, "net_socket_write")] == [record, half, half]
    assert events(out, "net_socket_partial_send") == []
    theirs.close()


def test_a_short_write_is_a_partial_send(loop: MainLoop, net: Net) -> None:
    """The kernel's buffer fills before all is written: net_socket_partial_send says how
    much it took and how much waits, and the rest follows once the reader reads."""
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client = netdev(net, f"socket,id=f,fd={ours.detach()}")
    out = socket_events(client)
    nic = with_nic(client)
    frames = [struct.pack(">I", i) + bytes([i]) * 1496 for i in range(100)]
    for frame in frames:
        nic.send(frame)
    loop.run_once(0)
    partial = events(out, "net_socket_partial_send")
    assert partial, out.getvalue()
    # The first frame went out alone, at once; the short write is the next one.
    lone, short = (int(e["bytes"]) for e in events(out, "net_socket_write")[:2])
    assert lone == 4 + 1500
    assert int(partial[0]["sent"]) == short
    assert int(partial[0]["remaining"]) == 100 * (4 + 1500) - lone - short > 0
    assert read_records(loop, theirs, len(frames)) == frames
    theirs.close()


def test_large_and_small_reads_deliver_every_frame_once_in_order(
        loop: MainLoop, net: Net, monkeypatch) -> None:
    """After a large read the next one hands recv()'s own bytes on; after a small one it
    reads into the reused buffer. With the threshold lowered so that both kinds follow
    each other, records split across reads of either kind arrive whole, once, in order."""
    monkeypatch.setattr(socket_stream, "BULK_READ", 3000)
    port = free_port()
    client = netdev(net, f"socket,id=s,listen=127.0.0.1:{port}")
    out = socket_events(client)
    nic = with_nic(client)
    peer = accepted(loop, client, port)
    frames = [struct.pack(">I", i) + bytes([i & 0xFF]) * (1510 if i % 7 < 3 else 56)
              for i in range(400)]
    stream = records(frames)
    for start in range(0, len(stream), 5000):
        peer.sendall(stream[start:start + 5000])
        loop.run_once(0)
    assert loop.run_until(lambda: len(nic.got) == len(frames), TIMEOUT)
    assert nic.got == frames
    sizes = [int(e["bytes"]) for e in events(out, "net_socket_read")]
    # a large read that was not the last, and a small one
    assert max(sizes[:-1]) >= 3000 > min(sizes), sizes
    peer.close()


def test_backpressure_stops_reading_until_nic_flushes(loop: MainLoop, net: Net) -> None:
    port = free_port()
    client = netdev(net, f"socket,id=s,listen=127.0.0.1:{port}")
    nic = with_nic(client)
    nic.full = True
    peer = accepted(loop, client, port)
    frames = [bytes([i]) * 60 for i in range(50)]
    peer.sendall(records(frames[:10]))
    assert loop.run_until(lambda: len(nic.incoming_queue) == 10, TIMEOUT)
    assert client._reading is False
    rest = records(frames[10:])
    peer.sendall(rest)
    assert client.sock is not None
    data_sock = client.sock
    assert loop.run_until(lambda: unread_bytes(data_sock) == len(rest), TIMEOUT)
    # Serve every event that is ready now: a netdev still reading would drain the buffer.
    loop.run_once(0)
    assert unread_bytes(data_sock) == len(rest), "the socket kept reading while the NIC was full"
    assert len(nic.incoming_queue) == 10
    nic.full = False
    nic.flush_queued()
    assert loop.run_until(lambda: len(nic.got) == 50, TIMEOUT)
    assert nic.got == frames
    peer.close()


def test_q6_disconnect_resets_output_and_releases_queue(loop: MainLoop, net: Net) -> None:
    port = free_port()
    client = netdev(net, f"socket,id=s,listen=127.0.0.1:{port}")
    nic = with_nic(client)
    lazy = socket.socket()
    lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lazy.connect(("127.0.0.1", port))
    assert loop.run_until(lambda: client.connected, TIMEOUT)
    done: list[int] = []
    big = b"\xab" * 1500
    while nic.send_async(big, lambda _c, n: done.append(n)) != 0:
        loop.run_once(0)
    assert client.receive_disabled or len(client.incoming_queue)
    lazy.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    lazy.close()
    assert loop.run_until(lambda: not client.connected, TIMEOUT)
    assert done == [1500], "the queued frame's callback must fire once on disconnect"
    assert not client.receive_disabled
    assert len(client.incoming_queue) == 0
    fresh = accepted(loop, client, port)
    nic.send(b"fresh")
    assert read_records(loop, fresh, 1) == [b"fresh"], "the new client must start on a record"
    fresh.close()


def test_connect_mode_info_nodelay_and_q2_send_while_connecting(loop: MainLoop, net: Net) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    client = netdev(net, f"socket,id=c,connect=127.0.0.1:{port}")
    nic = with_nic(client)
    assert client.info_str == f"socket: connect to 127.0.0.1:{port}"
    # Sent before the loop ran, while the non-blocking connect is still in progress.
    assert not client.connected and not client.link_down
    nic.send(b"early")
    conn, _ = server.accept()
    assert read_records(loop, conn, 1) == [b"early"]
    assert client._sock is not None
    assert client._sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    conn.sendall(record(b"reply"))
    assert loop.run_until(lambda: nic.got == [b"reply"], TIMEOUT)
    conn.close()
    server.close()
    assert loop.run_until(lambda: not client.connected, TIMEOUT)
    assert client.link_down and client.info_str == ""


def test_q3_failed_connect_is_reported(loop: MainLoop, net: Net) -> None:
    port = free_port()
    messages: list[str] = []
    try:
        client = netdev(net, f"socket,id=c,connect=127.0.0.1:{port}")
    except UserError as err:
        assert "Connection refused" in str(err)
        return
    client.report = messages.append
    assert loop.run_until(lambda: bool(messages), TIMEOUT)
    assert "Connection refused" in messages[0] and f"127.0.0.1:{port}" in messages[0]
    assert client.link_down


def test_fd_stream_socketpair_both_ways(loop: MainLoop, net: Net) -> None:
    ours, theirs = socket.socketpair()
    fd = ours.detach()
    client = netdev(net, f"socket,id=f,fd={fd}")
    assert client.info_str == f"socket: fd={fd}"
    nic = with_nic(client)
    theirs.sendall(records([b"in-1", b"in-2"]))
    assert loop.run_until(lambda: nic.got == [b"in-1", b"in-2"], TIMEOUT)
    nic.send(b"out")
    assert read_records(loop, theirs, 1) == [b"out"]
    theirs.close()


def test_many_connect_disconnect_cycles_leak_no_fds(loop: MainLoop, net: Net) -> None:
    port = free_port()
    client = netdev(net, f"socket,id=s,listen=127.0.0.1:{port}")
    nic = with_nic(client)
    before = len(os.listdir("/proc/self/fd"))
    for i in range(100):
        peer = accepted(loop, client, port)
        peer.sendall(record(i.to_bytes(2, "big")))
        peer.close()
        assert loop.run_until(lambda: not client.connected, TIMEOUT)
    assert len(nic.got) == 100
    assert len(os.listdir("/proc/self/fd")) == before
