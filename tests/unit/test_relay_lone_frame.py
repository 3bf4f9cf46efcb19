"""The lone-frame path of a hub relay (netdev.socket_stream, netdev.hub, netdev.queue):
a record that arrives alone is read, relayed and written in the turn it came, with one
send; it gives the same bytes, in the same order, as the batched path, whatever mix of
lone records, bursts and split records a peer sends, and a short write resumes."""

from __future__ import annotations

import contextlib
import socket
import struct

from emu.core.loop import MainLoop
from emu.core.opts import parse_opts
from netdev.net import Net
from tests.netsupport import RecordReader, record
from tests.unit.test_socket_stream import events, netdev, read_records, socket_events

TIMEOUT = 10.0


def relay(net: Net) -> tuple[socket.socket, socket.socket, list]:
    """Two fd= stream netdevs on one hub; returns the peers' ends and the netdevs."""
    a_ours, a_theirs = socket.socketpair()
    b_ours, b_theirs = socket.socketpair()
    a = netdev(net, f"socket,id=a,fd={a_ours.detach()}")
    b = netdev(net, f"socket,id=b,fd={b_ours.detach()}")
    net.add_netdev(parse_opts("hubport,id=p0,hubid=0,netdev=a", "type"))
    net.add_netdev(parse_opts("hubport,id=p1,hubid=0,netdev=b", "type"))
    return a_theirs, b_theirs, [a, b]


def frame(i: int, size: int) -> bytes:
    return struct.pack(">I", i) + bytes([i & 0xFF]) * (size - 4)


def test_a_lone_record_crosses_the_hub_in_one_turn_with_one_write(loop: MainLoop,
                                                                   net: Net) -> None:
    a, b, (_, b_dev) = relay(net)
    with a, b:
        out = socket_events(b_dev)
        one = frame(1, 60)
        a.sendall(record(one))
        loop.run_once(5.0)  # the turn that reads it
        b.setblocking(False)
        reader = RecordReader()
        reader.feed(b.recv(1 << 16))
        assert reader.frames == [one]
        assert [int(e["bytes"]) for e in events(out, "net_socket_write")] == [64]


def test_lone_records_bursts_and_split_records_keep_order(loop: MainLoop, net: Net) -> None:
    a, b, _ = relay(net)
    with a, b:
        frames = [frame(i, 60 + (i * 37) % 1455) for i in range(400)]
        wire = [record(f) for f in frames]
        pieces: list[bytes] = []
        i = 0
        while i < len(wire):
            kind = i % 4
            if kind == 0:  # one lone record
                pieces.append(wire[i])
                i += 1
            elif kind == 1:  # a burst of five in one write
                pieces.append(b"".join(wire[i:i + 5]))
                i += 5
            else:  # a record split in two writes, the second with the next record
                cut = 3 if kind == 2 else len(wire[i]) - 1
                rest = b"".join(wire[i + 1:i + 2])
                pieces += [wire[i][:cut], wire[i][cut:] + rest]
                i += 2
        reader = RecordReader()
        b.setblocking(False)
        for piece in pieces:
            a.sendall(piece)
            loop.run_once(0.5)
            with contextlib.suppress(BlockingIOError):
                reader.feed(b.recv(1 << 20))
        rest = read_records(loop, b, len(frames) - len(reader.frames))
        assert reader.frames + rest == frames


def test_a_short_lone_write_resumes_where_it_stopped(loop: MainLoop, net: Net) -> None:
    """The peer does not read: a relayed record meets a full socket buffer, the rest
    waits in the output and follows when the peer reads; nothing lost or reordered."""
    a, b, (_, b_dev) = relay(net)
    with a, b:
        out = socket_events(b_dev)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        big = [frame(i, 60000) for i in range(6)]
        for one in big:
            a.sendall(record(one))
            loop.run_once(0.2)
        assert events(out, "net_socket_partial_send")
        assert read_records(loop, b, len(big)) == big
