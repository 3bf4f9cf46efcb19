"""Bad peers against the toynic relay process: garbage, oversized length prefixes, clients
that vanish mid-record or never read, and many connect/disconnect cycles (QEMU: the
net/socket.c reader and end-of-connection path, net/hub.c pacing by the slowest port).

After every abuse the relay must still be alive and relay the next well-formed frame
from a fresh client, and nothing of the bad client's torn record may leak out."""

from __future__ import annotations

import contextlib
import random
import select
import socket
import struct
import time

import pytest

from tests.integration.conftest import Relay
from tests.netsupport import (
    OVERSIZE_MESSAGE,
    RecordReader,
    connect,
    fd_count,
    listen_backlog,
    pump,
    read_until_closed,
    record,
    records,
    relay_drained,
    rss_bytes,
    wait_for,
)

MiB = 1 << 20


def marker(tag: str) -> bytes:
    return f"marker:{tag}:".encode() + bytes(range(256))


def relayed_after(relay: Relay, dst: socket.socket, tag: str,
                  reader: RecordReader | None = None) -> list[bytes]:
    """Relay a marker frame from a fresh client on port 0 to `dst`; return what `dst` got
    up to and including the marker."""
    src = relay.client(0)
    frame = marker(tag)
    reader = reader or RecordReader()
    deadline = time.monotonic() + 30.0
    src.sendall(record(frame))
    dst.setblocking(False)
    try:
        while frame not in reader.frames:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"marker {tag!r} never arrived; got {len(reader.frames)} frames"
            ready, _, _ = select.select([dst], [], [], remaining)
            if ready:
                data = dst.recv(1 << 16)
                assert data, "the relay closed the healthy client"
                reader.feed(data)
    finally:
        dst.setblocking(True)
    assert reader.pending == 0, "bytes of a torn record reached the healthy client"
    return reader.frames


@pytest.mark.parametrize("seed", range(4))
def test_garbage_then_a_good_client(relay: Relay, seed: int) -> None:
    b = relay.client(1)
    a = relay.client(0)
    rng = random.Random(seed)
    garbage = rng.randbytes(rng.randrange(1, 50000))
    if seed % 2:
        # A plausible start (small lengths) that degenerates into noise mid-record.
        garbage = records([b"ok", b"fine"]) + struct.pack(">I", 9000) + garbage[:5000]
    with contextlib.suppress(OSError):
        a.sendall(garbage)
    a.close()
    got = relayed_after(relay, b, f"garbage{seed}")
    assert got[-1] == marker(f"garbage{seed}")
    if seed % 2:
        assert got[:2] == [b"ok", b"fine"]
    assert relay.proc.alive()


def test_oversized_length_prefix_closes_only_that_client(relay: Relay) -> None:
    b = relay.client(1)
    a = relay.client(0)
    with contextlib.suppress(OSError):
        a.sendall(b"\xff\xff\xff\xff" + bytes(70000))
    read_until_closed(a)
    wait_for(lambda: OVERSIZE_MESSAGE in relay.proc.stderr, 10.0, "the oversize message")
    assert relay.proc.stderr.count(OVERSIZE_MESSAGE) == 1
    assert "Traceback" not in relay.proc.stderr
    got = relayed_after(relay, b, "after-oversize")
    assert got == [marker("after-oversize")]


def test_record_of_69633_bytes_is_refused_and_69632_is_not(relay: Relay) -> None:
    b = relay.client(1)
    a = relay.client(0)
    biggest = bytes(range(256)) * 272  # 69632 bytes: NET_BUFSIZE, still allowed
    assert pump({a: record(biggest)}, {b: 1}, timeout=30.0)[b] == [biggest]
    with contextlib.suppress(OSError):
        a.sendall(record(biggest + b"!"))
    read_until_closed(a)
    wait_for(lambda: OVERSIZE_MESSAGE in relay.proc.stderr, 10.0, "the oversize message")
    assert relayed_after(relay, b, "after-69633") == [marker("after-69633")]


@pytest.mark.parametrize("cut", [1, 3, 4, 500, 1003])
def test_client_disconnects_mid_record(relay: Relay, cut: int) -> None:
    b = relay.client(1)
    a = relay.client(0)
    whole = records([b"first", bytes(range(256)) * 4 + b"torn"])
    a.sendall(whole[:9 + cut])  # "first" record, then `cut` bytes of the second
    a.close()
    assert relayed_after(relay, b, f"cut{cut}") == [b"first", marker(f"cut{cut}")]


def test_client_that_never_reads_stalls_input_with_bounded_memory(relay: Relay) -> None:
    lazy = relay.client(1)
    a = relay.client(0)
    rss_before = rss_bytes(relay.proc.pid)
    blob = memoryview(records(struct.pack(">I", i) + bytes(1510) for i in range(2000)))
    a.setblocking(False)
    sent = 0
    stalled = False
    peak = rss_before
    # Bounded: at most 256 MiB offered; the relay must push back long before.
    while sent < 256 * MiB:
        _, writable, _ = select.select([], [a], [], 2.0)
        if not writable:
            stalled = True
            break
        with contextlib.suppress(BlockingIOError):
            sent += a.send(blob[sent % len(blob):])
        peak = max(peak, rss_bytes(relay.proc.pid))
    peak = max(peak, rss_bytes(relay.proc.pid))
    assert stalled, f"{sent} bytes went in while nobody read the other side"
    assert peak - rss_before < 64 * MiB, f"relay grew by {(peak - rss_before) / MiB:.1f} MiB"

    # The lazy client leaves: the hub is no longer paced by it, input flows again.
    lazy.close()
    more = 0
    deadline = time.monotonic() + 30.0
    while more < 16 * MiB:
        assert time.monotonic() < deadline, f"input did not resume ({more} bytes sent)"
        _, writable, _ = select.select([], [a], [], 1.0)
        if writable:
            with contextlib.suppress(BlockingIOError):
                more += a.send(blob[(sent + more) % len(blob):])
    a.setblocking(True)
    # Finish the record in flight so the stream stays well-formed, then a new client of
    # port 1 gets fresh frames only: nothing queued for the departed client, no torn record.
    a.sendall(blob[(sent + more) % len(blob):])
    wait_for(relay_drained(relay.proc.pid, relay.ports[0], a), 30.0, "the relay to read it all")
    fresh = relay.client(1)
    frame = marker("after-lazy")
    reader = RecordReader()
    got = pump({a: record(frame)}, {fresh: 1}, readers={fresh: reader}, timeout=30.0)[fresh]
    assert got == [frame]
    assert reader.pending == 0


def test_thousand_connect_disconnect_cycles_leak_no_descriptor(relay: Relay) -> None:
    b = relay.client(1)
    pid = relay.proc.pid
    port = relay.ports[0]
    baseline = fd_count(pid)
    reader = RecordReader()
    expected = []

    def settled() -> bool:
        return listen_backlog(pid, port) == 0 and fd_count(pid) == baseline

    for i in range(1000):
        a = connect(port)
        kind = i % 4
        if kind == 0:  # a whole frame, orderly close
            frame = struct.pack(">I", i) + b"cycle"
            expected.append(frame)
            a.sendall(record(frame))
            a.close()
            got = pump({}, {b: len(expected)}, readers={b: reader}, timeout=15.0)[b]
            assert got[-1] == frame
        elif kind == 1:  # connect and leave
            a.close()
        elif kind == 2:  # half a record, then leave
            a.sendall(record(b"never delivered")[:7])
            a.close()
        else:  # abortive close (RST)
            a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            a.close()
        wait_for(settled, 15.0, f"cycle {i}: relay to accept and close (fds {baseline})",
                 interval=0.001)
    assert fd_count(pid) == baseline
    assert reader.frames == expected
    assert reader.pending == 0
    assert relay.proc.alive()
