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
OVERSIZE_MESSAGE = "serious error: oversized packet received,connection terminated."

# Equal-length records seen in a row before the rest of their run is looked for at
# once, and the run such a look must find to be worth its cost (about 30 records' steps).
RUN_START = 4
RUN_WORTH = 32

_LEN = struct.Struct(">I")
_unpack_len = _LEN.unpack_from
pack_len = _LEN.pack


class BadFcsFrame(bytes):
    """A frame damaged on the wire: a receiver that checks the Ethernet FCS (a NIC)
    would find it wrong. Frames cross toynic without their FCS, so a link filter that
    corrupts one (filter-netem's `corrupt=`) says so with this type; the net queue keeps
    the type, a NIC counts a CRC error, everything else sees plain bytes."""

    __slots__ = ()


class RecordBatch:
    """`count` complete, non-empty records laid end to end in `data` (wire format).
    `data` may be a memoryview into a receive buffer; `frames()` yields bytes."""

    __slots__ = ("count", "data")

    def __init__(self, data: bytes | memoryview, count: int) -> None:
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
            yield bytes(data[start:offset])

    def tail(self, skip: int) -> RecordBatch:
        """The batch without its first `skip` frames."""
        data = self.data
        offset = 0
        for _ in range(skip):
            offset += 4 + _unpack_len(data, offset)[0]
        return RecordBatch(data[offset:], self.count - skip)

    def __len__(self) -> int:
        return self.count


@dataclass
class Feed:
    """What one chunk of input produced."""

    batches: list[RecordBatch] = field(default_factory=list)
    empty_records: int = 0
    oversized: bool = False


class Reassembler:
    """Byte stream → batches of complete records; keeps a partial record between chunks.

    Batches reference the input chunk (memoryview slices), so records are not copied;
    only a record split across chunks is assembled in a small side buffer."""

    def __init__(self, max_frame: int = NET_BUFSIZE) -> None:
        self.max_frame = max_frame
        self._pending = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an incomplete record held back."""
        return len(self._pending)

    def reset(self) -> None:
        self._pending = bytearray()

    def whole_record(self, data: memoryview | bytes, size: int) -> bool:
        """True when nothing is held back and the first `size` bytes of `data` are exactly
        one non-empty record within the limit: a lone frame, which `feed` would return
        as a batch of one, and which needs no parsing beyond this check."""
        if self._pending or size <= 4:
            return False
        length = _unpack_len(data, 0)[0]
        return length + 4 == size and length <= self.max_frame

    def feed(self, chunk: bytes) -> Feed:
        """Parse `chunk` after what was held back. On an oversized length prefix the
        records before it are still returned, `oversized` is set and the state resets."""
        result = Feed()
        start = self._complete_pending(chunk, result) if self._pending else 0
        if start < 0:
            return result
        data = memoryview(chunk)
        end = len(data)
        limit = self.max_frame
        unpack = _unpack_len
        offset = segment = start
        count = 0
        # A run of equal lengths is handed to _same_length_run once `same` records of it
        # have been seen; each call that finds a short run doubles `need`, so traffic of
        # short runs (a peer's choice) soon stops paying for calls that skip little.
        previous = -1
        same = 0
        need = RUN_START
        while (body := offset + 4) <= end:
            length = unpack(data, offset)[0]
            nxt = body + length
            if nxt > end or not 0 < length <= limit:
                # The rare cases, in the order they must be decided: a length past the
                # limit ends the connection even before its record is complete.
                if length > limit:
                    result.oversized = True
                    break
                if nxt > end:
                    break
                if count:
                    result.batches.append(RecordBatch(data[segment:offset], count))
                    count = 0
                result.empty_records += 1
                segment = nxt
            elif length != previous:
                count += 1
                previous = length
                same = 1
            elif (same := same + 1) < need:
                count += 1
            else:
                run = _same_length_run(chunk, offset, 4 + length, end)
                if run < RUN_WORTH:
                    need *= 2
                count += run
                nxt = offset + run * (4 + length)
            offset = nxt
        if count:
            result.batches.append(RecordBatch(data[segment:offset], count))
        if result.oversized:
            self._pending = bytearray()
        elif offset < end:
            self._pending += data[offset:]
        return result

    def _complete_pending(self, chunk: bytes, result: Feed) -> int:
        """Finish the held-back record from the front of `chunk`. Returns where the rest of
        `chunk` starts, or -1 when the chunk was used up (or the record is oversized)."""
        pending = self._pending
        used = 0
        if len(pending) < 4:
            used = min(4 - len(pending), len(chunk))
            pending += chunk[:used]
            if len(pending) < 4:
                return -1
        length = _unpack_len(pending, 0)[0]
        if length > self.max_frame:
            result.oversized = True
            self._pending = bytearray()
            return -1
        need = 4 + length - len(pending)
        if len(chunk) - used < need:
            pending += chunk[used:]
            return -1
        pending += chunk[used:used + need]
        self._pending = bytearray()
        if length == 0:
            result.empty_records += 1
        else:
            result.batches.append(RecordBatch(bytes(pending), 1))
        return used + need


def _same_length_run(chunk: bytes, offset: int, stride: int, end: int) -> int:
    """How many complete records from `offset` on, before `end`, carry the same length
    prefix as the complete one at `offset` (so each is `stride` bytes long). Each byte of
    the prefix is compared, all records at once, as a strided slice of `chunk` (bytes
    objects do that in C); windows of records double in size, so the cost is that of
    the run found plus one window."""
    header = chunk[offset:offset + 4]
    available = (end - offset) // stride
    run = 1
    window = RUN_WORTH
    while run < available:
        take = min(window, available - run)
        start = offset + run * stride
        stop = start + take * stride
        matched = take
        for i in range(4):
            column = chunk[start + i:stop:stride]
            matched = min(matched, take - len(column.lstrip(header[i:i + 1])))
        run += matched
        if matched < take:
            break
        window *= 2
    return run
