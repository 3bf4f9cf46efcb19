"""The stream socket wire format from a test's side — what QEMU's
tests/qtest/netdev-socket.c writes by hand: every frame as a record, a 4-byte big-endian
length then the frame, at most `NET_BUFSIZE` bytes (netdev.framing reads it back)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from netdev.framing import pack_len


def record(frame: bytes) -> bytes:
    """One stream record: the frame's length (BE32), then the frame."""
    return pack_len(len(frame)) + bytes(frame)


def records(frames: Iterable[bytes]) -> bytes:
    """The records of `frames`, back to back."""
    return b"".join(map(record, frames))


@dataclass(frozen=True)
class StreamCase:
    """Bytes for a stream socket netdev, as `chunks` (one send() each), and `frames`: what a
    correct reader delivers. `kind` is "ok", "oversize", "truncated" or "garbage"."""

    chunks: tuple[bytes, ...]
    frames: tuple[bytes, ...]
    kind: str = "ok"

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)
