"""A lone frame leaves a stream netdev at once; frames that follow it within the same
loop handler go out together when the handler returns (netdev.socket_stream)."""

from __future__ import annotations

import socket
import struct

from emu.core.loop import MainLoop
from netdev.client import connect_peers
from netdev.net import Net
from tests.netsupport import RecordReader
from tests.unit.test_socket_stream import (
    events,
    netdev,
    read_records,
    socket_events,
    with_nic,
)


def test_a_lone_frame_is_written_without_a_loop_turn(net: Net) -> None:
    ours, theirs = socket.socketpair()
    with theirs:
        client = netdev(net, f"socket,id=f,fd={ours.detach()}")
        nic = with_nic(client)
        frame = bytes(range(60))
        assert nic.send(frame) == len(frame)
        theirs.setblocking(False)
        reader = RecordReader()
        reader.feed(theirs.recv(1 << 16))  # the loop has not run
        assert reader.frames == [frame]


def test_frames_sent_in_one_handler_after_the_first_share_a_write(loop: MainLoop,
                                                                  net: Net) -> None:
    ours, theirs = socket.socketpair()
    with theirs:
        client = netdev(net, f"socket,id=f,fd={ours.detach()}")
        out = socket_events(client)
        nic = with_nic(client)
        frames = [struct.pack(">I", i) + bytes(56) for i in range(10)]
        loop.bh(lambda: [nic.send(frame) for frame in frames])
        assert read_records(loop, theirs, len(frames)) == frames
        writes = [int(e["bytes"]) for e in events(out, "net_socket_write")]
        assert writes == [64, 9 * 64]


def test_a_relayed_batch_goes_out_in_the_turn_it_was_read(loop: MainLoop, net: Net) -> None:
    """Socket in, socket out: nothing waits for a second loop turn."""
    a_ours, a_theirs = socket.socketpair()
    b_ours, b_theirs = socket.socketpair()
    with a_theirs, b_theirs:
        a = netdev(net, f"socket,id=a,fd={a_ours.detach()}")
        b = netdev(net, f"socket,id=b,fd={b_ours.detach()}")
        connect_peers(a, b)
        frames = [struct.pack(">I", i) + bytes(56) for i in range(3)]
        a_theirs.sendall(b"".join(struct.pack(">I", len(f)) + f for f in frames))
        loop.run_once(5.0)  # one turn: a readable, the batch relayed to b's socket
        b_theirs.setblocking(False)
        reader = RecordReader()
        reader.feed(b_theirs.recv(1 << 16))
        assert reader.frames == frames
