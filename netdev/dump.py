"""pcap capture — QEMU's filter-dump (net/dump.c): `-object filter-dump,id=ID,netdev=NETDEV,
file=PATH[,maxlen=N][,queue=all|rx|tx]`.

Classic pcap, link type Ethernet, microsecond timestamps, host byte order (QEMU writes
it the same way). Each record holds at most `maxlen` bytes of the frame and its full
length. Records are written with unbuffered `os.write` calls that each carry whole
records. When a write fails part-way (disk full, file size limit), the file is cut back
to the end of the last whole record, the failure is reported once on stderr and the dump
stops, so the file always ends on a record boundary; the traffic itself is not affected.
A header that cannot be written when the filter is created is a startup error.

Timestamps: `clock()` returns nanoseconds; the default is host monotonic time since the
filter was created, added to the wall-clock second of creation. A machine replaces
`clock` with its virtual clock, as QEMU stamps with its virtual clock. The seconds field
is unsigned 32-bit and has no room for more: later times (after 2106, or a guest that
moved its virtual clock far ahead) are written modulo 2**32.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from construct import Int16un, Int32sn, Int32un, Struct

from emu.core.errors import UserError
from netdev.framing import RecordBatch

PCAP_MAGIC = 0xA1B2C3D4
TS_SEC_MODULUS = 1 << 32
LINKTYPE_ETHERNET = 1
DEFAULT_MAXLEN = 65536

# Compiled: building a record header is per-frame work, and the compiled form is ~4x faster.
GlobalHeader = Struct(
    "magic" / Int32un,
    "version_major" / Int16un,
    "version_minor" / Int16un,
    "thiszone" / Int32sn,
    "sigfigs" / Int32un,
    "snaplen" / Int32un,
    "linktype" / Int32un,
).compile()
RecordHeader = Struct(
    "ts_sec" / Int32un,
    "ts_usec" / Int32un,
    "caplen" / Int32un,
    "len" / Int32un,
).compile()
RECORD_HEADER_SIZE = RecordHeader.sizeof()
CAPLEN = struct.Struct("=I")  # the record header's caplen field, host byte order
CAPLEN_OFFSET = 8


class DumpFilter:
    """Writes every frame crossing one netdev (as selected by `queue`) to a pcap file."""

    def __init__(
        self,
        name: str,
        path: str,
        maxlen: int = DEFAULT_MAXLEN,
        queue: str = "all",
        clock: Callable[[], int] | None = None,
    ) -> None:
        if maxlen <= 0 or maxlen > 0xFFFFFFFF:
            raise UserError(f"Property 'filter-dump.maxlen' doesn't take value '{maxlen}'")
        if queue not in ("all", "rx", "tx"):
            raise UserError("Parameter 'queue' expects 'all', 'rx' or 'tx'")
        self.name = name
        self.path = path
        self.maxlen = maxlen
        self._want_tx = queue in ("all", "tx")
        self._want_rx = queue in ("all", "rx")
        self.start_sec = int(time.time())
        origin = time.monotonic_ns()
        self.clock: Callable[[], int] = clock or (lambda: time.monotonic_ns() - origin)
        try:
            self._fd: int | None = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644)
        except OSError as err:
            raise UserError(f"net dump: can't open {path}: {err.strerror}") from None
        header = GlobalHeader.build(dict(
            magic=PCAP_MAGIC, version_major=2, version_minor=4, thiszone=0, sigfigs=0,
            snaplen=maxlen, linktype=LINKTYPE_ETHERNET,
        ))
        error = self._write_rest(header, 0, records=False)
        if error is not None:
            self.close()
            raise UserError(f"net dump: can't write {path}: {error}")

    def _wanted(self, sent_by_owner: bool) -> bool:
        return self._fd is not None and (self._want_tx if sent_by_owner else self._want_rx)

    def _stamp(self) -> tuple[int, int]:
        micros = self.clock() // 1000
        return (self.start_sec + micros // 1_000_000) % TS_SEC_MODULUS, micros % 1_000_000

    def _header(self, length: int, sec: int, usec: int) -> bytes:
        caplen = min(length, self.maxlen)
        return RecordHeader.build(dict(ts_sec=sec, ts_usec=usec, caplen=caplen, len=length))

    def observe(self, frame: bytes, sent_by_owner: bool) -> None:
        if self._wanted(sent_by_owner):
            self._write(self._header(len(frame), *self._stamp()) + bytes(frame[:self.maxlen]))

    def observe_batch(self, batch: RecordBatch, sent_by_owner: bool) -> None:
        if not self._wanted(sent_by_owner):
            return
        sec, usec = self._stamp()
        # One stamp per batch, so records differ only by length: build each header once.
        headers: dict[int, bytes] = {}
        parts = []
        for frame in batch.frames():
            length = len(frame)
            header = headers.get(length)
            if header is None:
                header = headers[length] = self._header(length, sec, usec)
            parts.append(header)
            parts.append(frame[:self.maxlen])
        self._write(b"".join(parts))

    def _write(self, data: bytes) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            written = os.write(fd, data)
        except OSError:
            written = 0
        if written == len(data):
            return
        error = self._write_rest(data, written, records=True)
        if error is not None:
            print(f"toynic: filter-dump {self.name}: write to {self.path} failed: {error}; "
                  "dump stopped after the last whole record", file=sys.stderr)
            self.close()

    def _write_rest(self, data: bytes, written: int, *, records: bool) -> str | None:
        """Write `data` on from byte `written`. If that fails, cut the file back to its last
        whole record (inside `data` when it holds records, else before it) and say why."""
        fd = self._fd
        assert fd is not None
        error: OSError | None = None
        # Bounded: every pass writes at least one byte or leaves the loop.
        while written < len(data):
            try:
                count = os.write(fd, memoryview(data)[written:])
            except OSError as err:
                error = err
                break
            if count == 0:
                error = OSError(errno.EIO, "the write made no progress")
                break
            written += count
        if error is None:
            return None
        keep = _whole_records(data, written) if records else 0
        with contextlib.suppress(OSError):  # a pipe or a device: there is nothing to cut
            os.ftruncate(fd, os.lseek(fd, 0, os.SEEK_CUR) - written + keep)
        return error.strerror or str(error)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _whole_records(data: bytes, length: int) -> int:
    """How many of the first `length` bytes of `data` (records) make whole records."""
    end = 0
    while end + RECORD_HEADER_SIZE <= length:
        caplen = CAPLEN.unpack_from(data, end + CAPLEN_OFFSET)[0]
        if end + RECORD_HEADER_SIZE + caplen > length:
            break
        end += RECORD_HEADER_SIZE + caplen
    return end


def read_pcap(path: str | Path) -> Iterator[bytes]:
    """The frames of a pcap file this module wrote (as captured: at most `maxlen` bytes)."""
    data = Path(path).read_bytes()
    header = GlobalHeader.parse(data)
    if header.magic != PCAP_MAGIC or header.linktype != LINKTYPE_ETHERNET:
        raise ValueError(f"{path}: not a classic Ethernet pcap file")
    offset = GlobalHeader.sizeof()
    record_size = RecordHeader.sizeof()
    while offset + record_size <= len(data):
        record = RecordHeader.parse(data[offset:offset + record_size])
        offset += record_size
        yield data[offset:offset + record.caplen]
        offset += record.caplen
