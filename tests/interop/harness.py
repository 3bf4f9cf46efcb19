"""Two-emulator topologies for interop tests: a real QEMU and a toynic process, joined
by the netdev under test, each with a hub that also carries a `listen=` stream port for
a Python peer (QEMU's tests/qtest/netdev-socket.c runs two QEMUs the same way).

    peer X ── qp (listen) ─ hub 0 ─ q ══ netdev under test ══ t ─ hub 0 ─ tp (listen) ── peer Y
             [ qemu-system-x86_64 -machine none ]                [ toynic ]

In QEMU the netdev under test must have id `q`; in toynic, id `t`. Frames carry their
origin and sequence number so echoes (multicast loops a sender's frames back to it) can
be told apart from the other side's traffic.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.netsupport import (
    LOOPBACK,
    Proc,
    Qemu,
    RecordReader,
    connect,
    free_port,
    hub_args,
    pump,
    records,
    start_qemu,
    start_toynic,
    wait_accepted,
    wait_listening,
)

STREAM_SIZES = [1, 14, 60, 64, 590, 1514, 1518, 4096, 9000, 32768, 65535]
DGRAM_SIZES = [1, 14, 60, 64, 590, 1514, 1518, 4096, 9000, 32768, 65000]


@dataclass
class Side:
    """One emulator process and the Python peer attached to its hub."""

    proc: Proc
    peer: socket.socket


def attach_peer(proc: Proc, port: int) -> socket.socket:
    wait_listening(proc.pid, port)
    sock = connect(port)
    wait_accepted(proc.pid, port, sock.getsockname()[1])
    return sock


def qemu_side(netdev: str, workdir: Path, pass_fds: Sequence[int] = ()) -> Side:
    """QEMU with `-netdev NETDEV` (id q) and a peer port on one hub."""
    port = free_port()
    q: Qemu = start_qemu("-netdev", netdev,
                         "-netdev", f"socket,id=qp,listen={LOOPBACK}:{port}",
                         *hub_args("q", "qp"), workdir=workdir, pass_fds=pass_fds)
    try:
        return Side(q, attach_peer(q, port))
    except BaseException:
        q.close()
        raise


def toynic_side(netdev: str, pass_fds: Sequence[int] = ()) -> Side:
    """toynic with `-netdev NETDEV` (id t) and a peer port on one hub."""
    port = free_port()
    t = start_toynic("-netdev", netdev,
                     "-netdev", f"socket,id=tp,listen={LOOPBACK}:{port}",
                     *hub_args("t", "tp"), pass_fds=pass_fds)
    with t.closed_on_failure():
        return Side(t, attach_peer(t, port))


def tagged_frames(origin: bytes, sizes: Sequence[int], seed: int) -> list[bytes]:
    """Frames that start with origin + BE32 sequence (frames under 5 bytes: origin only)."""
    rng = random.Random(seed)
    frames = []
    for i, n in enumerate(sizes):
        head = (origin + i.to_bytes(4, "big"))[:n]
        frames.append(head + rng.randbytes(n - len(head)))
    return frames


def batches(sizes: Sequence[int], budget: int | None) -> list[range]:
    """Index ranges of consecutive frames, each at most `budget` bytes (or one frame)."""
    if budget is None:
        return [range(len(sizes))]
    out, start, used = [], 0, 0
    for i, n in enumerate(sizes):
        if i > start and used + n > budget:
            out.append(range(start, i))
            start, used = i, 0
        used += n
    out.append(range(start, len(sizes)))
    return out


def exchange(x: Side, y: Side, sizes: Sequence[int] = STREAM_SIZES, rounds: int = 3,
             window: int | None = None, timeout: float = 30.0) -> None:
    """Frames both ways at once, X→Y and Y→X; assert each side got the other's frames
    byte-exact and in order (echoes of a side's own frames are ignored).

    `window` bounds the bytes in flight per direction (datagram modes: the kernel drops
    datagrams that overflow a receive buffer, which is not the emulators' doing; with
    multicast every member's buffer also takes the echoes of its own frames).
    """
    all_sizes = list(sizes) * rounds
    all_x = tagged_frames(b"X", all_sizes, seed=1)
    all_y = tagged_frames(b"Y", all_sizes, seed=2)
    readers = {x.peer: RecordReader(), y.peer: RecordReader()}

    def foreign(sock: socket.socket, own: bytes) -> list[bytes]:
        return [f for f in readers[sock].frames if not _from(f, own)]

    for batch in batches(all_sizes, window):
        batch_x, batch_y = all_x[batch.start:batch.stop], all_y[batch.start:batch.stop]
        want = batch.stop

        def arrived(want: int = want) -> bool:
            return (len(foreign(y.peer, b"Y")) >= want and len(foreign(x.peer, b"X")) >= want)

        pump({x.peer: records(batch_x), y.peer: records(batch_y)}, {x.peer: 0, y.peer: 0},
             readers=readers, until=arrived, timeout=timeout)
    got_at_y = foreign(y.peer, b"Y")
    got_at_x = foreign(x.peer, b"X")
    assert [len(f) for f in got_at_y] == [len(f) for f in all_x]
    assert got_at_y == all_x, "frames from QEMU's side arrived at toynic's side altered"
    assert [len(f) for f in got_at_x] == [len(f) for f in all_y]
    assert got_at_x == all_y, "frames from toynic's side arrived at QEMU's side altered"


def _from(frame: bytes, origin: bytes) -> bool:
    # Sizes below 5 cannot carry a sequence number; they only name their origin.
    return frame[:1] == origin


def close_sides(*sides: Side | None) -> None:
    for side in sides:
        if side is not None:
            side.peer.close()
            side.proc.close()


def udp_port() -> int:
    return free_port(socket.SOCK_DGRAM)
