"""A slow reader on one hub port of the toynic relay process still receives every frame
byte-exact and in order, with the relay's memory bounded (QEMU: net/socket.c partial
sends with send_index resume; net/hub.c pacing. QEMU 7.2 itself fails this on connect=
ports: queued frames overtake a half-written one)."""

from __future__ import annotations

import random
import select

from tests.integration.conftest import Relay
from tests.netsupport import RecordReader, records, rss_bytes

MiB = 1 << 20


def test_slow_reader_gets_everything_in_order(relay: Relay) -> None:
    slow = relay.client(1, rcvbuf=4096)
    fast_sender = relay.client(0)
    rng = random.Random(5)
    sizes = [rng.choice([1, 60, 590, 1514, rng.randrange(1, 9000)]) for _ in range(2500)]
    sizes[::500] = [65535] * len(sizes[::500])
    frames = [i.to_bytes(4, "big") * (n // 4) + bytes(n % 4) for i, n in enumerate(sizes)]
    wire = memoryview(records(frames))
    reader = RecordReader()
    rss_before = rss_bytes(relay.proc.pid)
    peak = rss_before
    sent = 0
    fast_sender.setblocking(False)
    slow.setblocking(False)
    for step in range(2_000_000):  # bounded; a healthy run needs far fewer
        if len(reader.frames) == len(frames):
            break
        # The reader pauses: it reads only once the sender has had to wait (up to 5 ms)
        # for the relay, so the relay's socket to it fills and sends go partial.
        if sent < len(wire):
            _, writable, _ = select.select([], [fast_sender], [], 0.005)
            if writable:
                try:
                    sent += fast_sender.send(wire[sent:sent + rng.choice([100, 4096, 1 << 20])])
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
            peak = max(peak, rss_bytes(relay.proc.pid))
    else:
        raise AssertionError(f"only {len(reader.frames)} of {len(frames)} frames arrived")
    assert sent == len(wire)
    assert len(reader.frames) == len(frames)
    for i, (got, want) in enumerate(zip(reader.frames, frames, strict=True)):
        assert got == want, f"frame {i} differs (len {len(got)} vs {len(want)})"
    assert reader.pending == 0
    assert peak - rss_before < 64 * MiB, f"relay grew by {(peak - rss_before) / MiB:.1f} MiB"
