"""Stream framing — QEMU's SocketReadState / net_fill_rstate (net/net.c) and the record writer.

On a stream socket every frame travels as a record: a 4-byte big-endian length L, then
exactly L bytes of Ethernet frame. A frame may be at most 69632 bytes (QEMU's
NET_BUFSIZE); a longer length prefix is a fatal error for the connection.

For speed, frames cross the net layer in batches that stay in wire format:
`RecordBatch` is a run of complete records, so a stream socket can forward a batch to
another stream socket without touching each frame, and per-frame consumers iterate it.
`Reassembler.feed(chunk)` turns arbitrary chunks of the byte stream into such batches.

Empty records (L = 0) are not frames: the reassembler skips them and counts them
(seed quirk Q5, see docs/quirks.md).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

NET_BUFSIZE = 69632
MAX_FRAME = NET_BUFSIZE
OVERSIZE_MESSAGE = "serious error: oversized packet received,connection terminated."

_LEN = struct.Struct(">I")
_unpack_len = _LEN.unpack_from
pack_len = _LEN.pack


class RecordBatch:
    """`count` complete, non-empty records laid end to end in `data` (wire format)."""

    __slots__ = ("count", "data")

    def __init__(self, data: bytes, count: int) -> None:
        self.data = data
        self.count = count

    @classmethod
    def from_frames(cls, frames: Iterable[bytes]) -> RecordBatch:
        parts: list[bytes] = []
        count = 0
        for frame in frames:
            parts.append(pack_len(len(frame)))
            parts.append(bytes(frame))
            count += 1
        return cls(b"".join(parts), count)

    def frames(self) -> Iterator[bytes]:
        data = self.data
        offset = 0
        end = len(data)
        while offset < end:
            length = _unpack_len(data, offset)[0]
            start = offset + 4
            offset = start + length
            yield data[start:offset]

    def tail(self, skip: int) -> RecordBatch:
        """The batch without its first `skip` frames."""
        data = self.data
        offset = 0
        for _ in range(skip):
            offset += 4 + _unpack_len(data, offset)[0]
        return RecordBatch(data[offset:], self.count - skip)

    def __len__(self) -> int:
        return self.count


def encode(frame: bytes) -> bytes:
    """One record: length prefix and frame."""
    return pack_len(len(frame)) + bytes(frame)


@dataclass
class Feed:
    """What one chunk of input produced."""

    batches: list[RecordBatch] = field(default_factory=list)
    empty_records: int = 0
    oversized: bool = False


class Reassembler:
    """Byte stream → batches of complete records; keeps a partial record between chunks."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._pending = b""

    @property
    def pending(self) -> int:
        """Bytes of an incomplete record held back."""
        return len(self._pending)

    def reset(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> Feed:
        """Parse `chunk` after what was held back. On an oversized length prefix the
        records before it are still returned, `oversized` is set and the state resets."""
        if type(chunk) is not bytes:
            chunk = bytes(chunk)
        data = self._pending + chunk if self._pending else chunk
        result = Feed()
        end = len(data)
        limit = self.max_frame
        unpack = _unpack_len
        offset = 0
        segment = 0
        count = 0
        while offset + 4 <= end:
            length = unpack(data, offset)[0]
            if length > limit:
                result.oversized = True
                break
            nxt = offset + 4 + length
            if nxt > end:
                break
            if length == 0:
                if count:
                    result.batches.append(RecordBatch(data[segment:offset], count))
                    count = 0
                result.empty_records += 1
                segment = nxt
            else:
                count += 1
            offset = nxt
        if count:
            whole = segment == 0 and offset == end
            result.batches.append(RecordBatch(data if whole else data[segment:offset], count))
        if result.oversized:
            self._pending = b""
        else:
            self._pending = data[offset:] if offset < end else b""
        return result
