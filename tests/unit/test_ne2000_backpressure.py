"""Lossless receive under backpressure: a stream socket netdev (`-netdev socket,listen=`)
feeds an NE2000 that the reference driver drains slowly; every one of 10,000 frames
arrives, in order and byte-exact, while the frames queued in the process stay bounded
and the remote sender's TCP socket is made to wait."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import pytest

from emu.core.loop import MainLoop
from emu.core.opts import parse_opts
from emu.testing import QTest, free_port, record
from netdev.client import NetClient, connect_peers
from netdev.hub import Hub
from netdev.net import Net
from netdev.socket_stream import RECV_SIZE
from tests.ne2000_driver import Ne2000Driver

pytestmark = pytest.mark.timeout(90)

FRAMES = 10_000
MAC = bytes.fromhex("525400123456")
SRC = bytes.fromhex("020000000001")
DEADLINE_S = 75.0


def frame(seq: int) -> bytes:
    size = 200 + (seq * 97) % 800
    body = struct.pack(">I", seq) * (size // 4)
    return (MAC + SRC + b"\x88\xb5" + body)[:size]


def records() -> Iterator[bytes]:
    for seq in range(FRAMES):
        yield record(frame(seq))


def test_ten_thousand_frames_no_loss_bounded_queue() -> None:
    loop = MainLoop()
    net = Net(loop)
    client = socket.socket()
    try:
        port = free_port()
        net.add_netdev(parse_opts(f"socket,id=n0,listen=127.0.0.1:{port}", "type"))
        qt = QTest()
        card = qt.add_ne2000(0x300, 9)
        net.add_nic(card.nc, "n0")
        driver = Ne2000Driver(qt, 0x300)
        assert driver.probe() == MAC
        driver.init(rcr=0x00)

        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
        client.connect(("127.0.0.1", port))
        client.setblocking(False)
        assert loop.run_until(lambda: not net.find_netdev("n0").link_down, 10)

        pending = b""
        source = records()
        exhausted = False
        blocked = 0
        received: list[bytes] = []
        max_queued = 0
        deadline = time.monotonic() + DEADLINE_S
        while len(received) < FRAMES and time.monotonic() < deadline:
            while not exhausted and len(pending) < 256 * 1024:
                chunk = b"".join(r for _, r in zip(range(64), source, strict=False))
                exhausted = not chunk
                pending += chunk
            if pending:
                try:
                    sent = client.send(pending)
                    pending = pending[sent:]
                except BlockingIOError:
                    blocked += 1
            loop.run_once(0.001)
            max_queued = max(max_queued, len(card.nc.incoming_queue))
            received += driver.receive(max_frames=3)  # slow guest: 3 frames per turn

        assert len(received) == FRAMES, f"only {len(received)} frames within {DEADLINE_S}s"
        for seq, got in enumerate(received):
            want = frame(seq)
            assert got == want, f"frame {seq} differs"
        stats = card.stats
        assert stats.accepted == FRAMES
        assert stats.offered == FRAMES and stats.total_filtered() == 0
        assert blocked > 0, "the remote sender never had to wait: no backpressure"
        # At most the records of one recv() chunk wait in the process at any time.
        assert max_queued <= RECV_SIZE // (4 + 200) + 1
        assert max_queued > 0
    finally:
        client.close()
        net.close()
        loop.close()


class PacedSender(NetClient):
    """Sends frames with send_async and, like the socket netdev, pauses on 0."""

    def __init__(self, frames: list[bytes]) -> None:
        super().__init__("sender", "test")
        self.todo = list(reversed(frames))
        self.paused = False

    def pump(self) -> None:
        while self.todo and not self.paused:
            if self.send_async(self.todo.pop(), self._done) == 0:
                self.paused = True

    def _done(self, _sender: NetClient, _result: int) -> None:
        self.paused = False


def test_lossless_through_a_hub() -> None:
    """The NIC's flush must reach a hub even when the NIC's own queue is empty."""
    hub = Hub(0)
    qt = QTest()
    card = qt.add_ne2000(0x300, 9)
    connect_peers(hub.add_port(), card.nc)
    frames = [frame(seq) for seq in range(400)]
    sender = PacedSender(frames)
    connect_peers(hub.add_port(), sender)
    driver = Ne2000Driver(qt, 0x300)
    driver.probe()
    driver.init(rcr=0x00)
    received: list[bytes] = []
    for _ in range(10_000):
        sender.pump()
        received += driver.receive(max_frames=2)
        if len(received) == len(frames):
            break
    assert received == frames
    assert card.stats.offered == card.stats.accepted == len(frames)
