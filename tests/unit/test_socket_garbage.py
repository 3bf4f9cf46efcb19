"""A stream peer sending arbitrary bytes (garbage, huge prefixes, torn records) never
breaks the netdev: it delivers exactly the frames a reference parse finds, then closes."""

from __future__ import annotations

import socket
import struct

from hypothesis import given
from hypothesis import strategies as st

from emu.core.loop import MainLoop
from emu.core.opts import parse_opts
from emu.testing import RecordingClient, record
from netdev.client import connect_peers
from netdev.framing import NET_BUFSIZE
from netdev.net import Net
from netdev.socket_stream import StreamSocket


def reference_frames(data: bytes) -> tuple[list[bytes], bool]:
    """Frames a correct reader takes from `data`, and whether it hits an oversized prefix."""
    frames: list[bytes] = []
    offset = 0
    while offset + 4 <= len(data):
        (length,) = struct.unpack_from(">I", data, offset)
        if length > NET_BUFSIZE:
            return frames, True
        if offset + 4 + length > len(data):
            break
        if length:
            frames.append(data[offset + 4:offset + 4 + length])
        offset += 4 + length
    return frames, False


pieces = st.one_of(
    st.binary(max_size=64),
    st.builds(record, st.binary(max_size=300)),
    st.builds(struct.pack, st.just(">I"), st.integers(0, 0xFFFFFFFF)),
    st.just(b"\xff\xff\xff\xff"),
)


@given(st.lists(pieces, max_size=12), st.integers(1, 97))
def test_arbitrary_bytes_from_a_stream_peer(parts: list[bytes], chunk: int) -> None:
    data = b"".join(parts)
    expected, oversized = reference_frames(data)
    loop = MainLoop()
    net = Net(loop)
    ours, theirs = socket.socketpair()
    try:
        client = net.add_netdev(parse_opts(f"socket,id=g,fd={ours.detach()}", "type"))
        assert isinstance(client, StreamSocket)
        messages: list[str] = []
        client.report = messages.append
        nic = RecordingClient("nic", "test-nic")
        connect_peers(nic, client)
        theirs.setblocking(False)
        for start in range(0, len(data), chunk):
            try:
                theirs.sendall(data[start:start + chunk])
            except (BrokenPipeError, ConnectionResetError):
                break
            loop.run_once(0)
        theirs.close()
        assert loop.run_until(lambda: not client.connected, 10.0)
        assert nic.received == expected
        assert len(messages) == int(oversized)
        assert client.link_down
    finally:
        theirs.close()
        net.close()
        loop.close()
