"""A slow reader on one hub port of the toynic relay process still receives every frame
byte-exact and in order, with the relay's memory bounded (QEMU: net/socket.c partial
sends with send_index resume; net/hub.c pacing). The slow port is either a `listen=`
port the reader connected to, or a `connect=` port whose far end the reader is — QEMU 7.2
fails the latter: queued frames overtake a half-written one."""

from __future__ import annotations

import random
import select
import socket

from tests.integration.conftest import Relay, start_emulator
from tests.netsupport import (
    LOOPBACK,
    RecordReader,
    connect,
    free_port,
    hub_args,
    records,
    rss_bytes,
    wait_accepted,
    wait_listening,
)

MiB = 1 << 20


def slow_transfer(pid: int, sender: socket.socket, slow: socket.socket, seed: int) -> None:
    rng = random.Random(seed)
    sizes = [rng.choice([1, 60, 590, 1514, rng.randrange(1, 9000)]) for _ in range(2500)]
    sizes[::500] = [65535] * len(sizes[::500])
    frames = [i.to_bytes(4, "big") * (n // 4) + bytes(n % 4) for i, n in enumerate(sizes)]
    wire = memoryview(records(frames))
    reader = RecordReader()
    rss_before = rss_bytes(pid)
    peak = rss_before
    sent = 0
    sender.setblocking(False)
    slow.setblocking(False)
    for step in range(2_000_000):  # bounded; a healthy run needs far fewer
        if len(reader.frames) == len(frames):
            break
        # The reader pauses: it reads only once the sender has had to wait (up to 5 ms)
        # for the relay, so the relay's socket to it fills and sends go partial.
        if sent < len(wire):
            _, writable, _ = select.select([], [sender], [], 0.005)
            if writable:
                try:
                    sent += sender.send(wire[sent:sent + rng.choice([100, 4096, 1 << 20])])
                except BlockingIOError:
                    pass
                else:
                    continue
        ready, _, _ = select.select([slow], [], [], 1.0)
        if ready:
            data = slow.recv(rng.choice([1, 3, 700, 1500, 4096]))
            assert data, "the relay closed the slow reader"
            reader.feed(data)
        if step % 64 == 0:
            peak = max(peak, rss_bytes(pid))
    else:
        raise AssertionError(f"only {len(reader.frames)} of {len(frames)} frames arrived")
    assert sent == len(wire)
    assert len(reader.frames) == len(frames)
    for i, (got, want) in enumerate(zip(reader.frames, frames, strict=True)):
        assert got == want, f"frame {i} differs (len {len(got)} vs {len(want)})"
    assert reader.pending == 0
    assert peak - rss_before < 64 * MiB, f"relay grew by {(peak - rss_before) / MiB:.1f} MiB"


def test_slow_reader_on_a_listen_port(relay: Relay) -> None:
    slow = relay.client(1, rcvbuf=4096)
    sender = relay.client(0)
    slow_transfer(relay.proc.pid, sender, slow, seed=5)


def test_slow_reader_on_a_connect_port() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as upstream:
        upstream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        upstream.bind((LOOPBACK, 0))
        upstream.listen(1)
        up_port = upstream.getsockname()[1]
        with start_emulator("-netdev", f"socket,id=a,listen={LOOPBACK}:{port}",
                            "-netdev", f"socket,id=c,connect={LOOPBACK}:{up_port}",
                            *hub_args("a", "c")) as proc:
            upstream.settimeout(15.0)
            slow, _ = upstream.accept()
            wait_listening(proc.pid, port)
            sender = connect(port)
            with slow, sender:
                wait_accepted(proc.pid, port, sender.getsockname()[1])
                slow_transfer(proc.pid, sender, slow, seed=6)
