"""The record/replay file (`-icount rr=record|replay,rrfile=FILE`) — the role of QEMU's
replay log (replay/replay.c `replay_configure`, replay/replay-internal.c `replay_put_event`
and friends), in a format of toynic's own (docs/record-replay.md describes it).

A file is a header, then length-prefixed events, all integers little-endian:

    magic "TOYNICRR" | version u16 | header length u32 | header (UTF-8 JSON)
    event: kind u8 | payload length u32 | payload

Every payload starts with the machine's position when the input entered, which replay
checks: instret u64 | virtual ns u64 | pc u32 | idle u8. Then, by kind: a frame (netdev
index u8 into the header's `netdevs`, the frame), console bytes, a link change (up u8,
the client's name), an idle warp (ns u64), the end (how u8: 0 power-off, 1 stopped;
status i32). The end event is the last one; a file without it is refused.

The writer buffers and writes at exit; a write that fails (a full disk) is reported once,
in one line, and recording stops there while the run goes on. The reader takes every event
before the run starts, so a truncated or foreign file is one clear error then.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import struct
import sys
from dataclasses import dataclass
from enum import IntEnum
from typing import BinaryIO

from emu.core.errors import UserError

MAGIC = b"TOYNICRR"
VERSION = 1
PREAMBLE = struct.Struct("<8sHI")
EVENT_HEAD = struct.Struct("<BI")
POSITION = struct.Struct("<QQIB")
WARP = struct.Struct("<Q")
END = struct.Struct("<Bi")
WRITE_BUFFER = 1 << 16


class Kind(IntEnum):
    FRAME = 1
    CONSOLE = 2
    LINK = 3
    WARP = 4
    END = 5


class EndHow(IntEnum):
    POWER_OFF = 0
    STOPPED = 1


@dataclass(frozen=True)
class Position:
    """Where the machine was when an input entered: between two slices (or idle)."""

    instret: int
    now_ns: int
    pc: int
    idle: bool

    def describe(self) -> str:
        return (f"instret {self.instret} pc={self.pc:#010x} t={self.now_ns} ns"
                + (" idle" if self.idle else ""))


@dataclass(frozen=True)
class Event:
    """One recorded input. `data` holds the frame or console bytes, or a link's name."""

    kind: Kind
    at: Position
    data: bytes = b""
    netdev: int = 0
    up: bool = False
    warp_ns: int = 0
    how: EndHow = EndHow.POWER_OFF
    status: int = 0

    def describe(self, netdevs: list[str]) -> str:
        if self.kind is Kind.FRAME:
            name = netdevs[self.netdev] if self.netdev < len(netdevs) else "?"
            what = f"frame from {name} ({len(self.data)} bytes)"
        elif self.kind is Kind.CONSOLE:
            what = f"console input {self.data[:16]!r}"
        elif self.kind is Kind.LINK:
            what = f"set_link {self.data.decode(errors='replace')} {'on' if self.up else 'off'}"
        elif self.kind is Kind.WARP:
            what = f"idle warp of {self.warp_ns} ns"
        elif self.how is EndHow.STOPPED:
            what = "end of the run (stopped)"
        else:
            what = f"end of the run (power-off, status {self.status})"
        return f"{what} at {self.at.describe()}"


def encode(event: Event) -> bytes:
    at = event.at
    body = POSITION.pack(at.instret, at.now_ns, at.pc & 0xFFFF_FFFF, int(at.idle))
    if event.kind is Kind.FRAME:
        body += bytes([event.netdev]) + event.data
    elif event.kind is Kind.CONSOLE:
        body += event.data
    elif event.kind is Kind.LINK:
        body += bytes([int(event.up)]) + event.data
    elif event.kind is Kind.WARP:
        body += WARP.pack(event.warp_ns)
    else:
        body += END.pack(event.how, event.status)
    return EVENT_HEAD.pack(event.kind, len(body)) + body


class RrWriter:
    """Appends events to an rrfile; buffered, flushed at `close`."""

    def __init__(self, path: str, header: dict[str, object]) -> None:
        self.path = path
        self._failed = False
        try:
            self._file: BinaryIO | None = open(path, "wb", buffering=WRITE_BUFFER)  # noqa: SIM115
        except OSError as err:
            raise UserError(f"rrfile {path}: can't open: {err.strerror or err}") from None
        text = json.dumps(header, sort_keys=True).encode()
        self._write(PREAMBLE.pack(MAGIC, VERSION, len(text)) + text)

    def write(self, event: Event) -> None:
        self._write(encode(event))

    def _write(self, data: bytes) -> None:
        if self._file is None:
            return
        try:
            self._file.write(data)
        except OSError as err:
            self._fail(err)

    def _fail(self, err: OSError) -> None:
        if not self._failed:
            self._failed = True
            print(f"toynic: rrfile {self.path}: write failed: {err.strerror or err}; "
                  "recording stopped", file=sys.stderr, flush=True)
        file, self._file = self._file, None
        if file is not None:
            # The buffer that could not be written is lost with it; already reported.
            with contextlib.suppress(OSError):
                file.close()

    def close(self) -> None:
        if self._file is None:
            return
        try:
            self._file.flush()
        except OSError as err:
            self._fail(err)
            return
        self._file.close()
        self._file = None


def read_rrfile(path: str) -> tuple[dict[str, object], list[Event]]:
    """The header and events of the rrfile at `path`; UserError (one line) if it cannot
    be read, is not a regular file (a FIFO or /dev/zero would never end), is not an
    rrfile, is of another version, is cut short or malformed. Events are read one by one
    and every length is checked against the file's size before it is read, so a huge
    damaged file fails at its first bad event without being taken into memory."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer before it is refused.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as err:
        raise UserError(f"rrfile {path}: can't open: {err.strerror or err}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise UserError(f"rrfile {path}: not a regular file")
    with open(fd, "rb") as file:
        try:
            return _read_events(path, file, info.st_size)
        except OSError as err:
            raise UserError(f"rrfile {path}: can't read: {err.strerror or err}") from None


def _read_events(path: str, file: BinaryIO, size: int) -> tuple[dict[str, object], list[Event]]:
    preamble = file.read(PREAMBLE.size)
    if len(preamble) < PREAMBLE.size or not preamble.startswith(MAGIC):
        raise UserError(f"rrfile {path}: not a toynic record/replay file")
    _, version, header_len = PREAMBLE.unpack(preamble)
    if version != VERSION:
        raise UserError(f"rrfile {path}: version {version}; this toynic reads version {VERSION}")
    offset = PREAMBLE.size + header_len
    if offset > size:
        raise UserError(f"rrfile {path}: truncated in its header")
    try:
        header = json.loads(file.read(header_len))
    except (UnicodeDecodeError, ValueError, RecursionError):
        header = None
    netdevs = header.get("netdevs", []) if isinstance(header, dict) else None
    if not isinstance(netdevs, list) or not isinstance(header, dict):
        raise UserError(f"rrfile {path}: its header is not valid")
    events: list[Event] = []
    while offset < size:
        if events and events[-1].kind is Kind.END:
            raise UserError(f"rrfile {path}: data after the end event at byte {offset}")
        head = file.read(EVENT_HEAD.size)
        if len(head) < EVENT_HEAD.size:
            raise UserError(f"rrfile {path}: truncated at byte {offset}")
        length = EVENT_HEAD.unpack(head)[1]
        if offset + EVENT_HEAD.size + length > size:
            raise UserError(f"rrfile {path}: truncated at byte {offset} (an event is cut short)")
        event = _decode(path, head + file.read(length), offset)
        if event.kind is Kind.FRAME and event.netdev >= len(netdevs):
            raise UserError(f"rrfile {path}: frame event at byte {offset} names netdev "
                            f"{event.netdev}; the header lists {len(netdevs)}")
        events.append(event)
        offset += EVENT_HEAD.size + length
    if not events or events[-1].kind is not Kind.END:
        raise UserError(f"rrfile {path}: truncated: no end event after {len(events)} events "
                        f"(the recording did not finish)")
    return header, events


def _decode(path: str, data: bytes, start: int) -> Event:
    """One whole event (`data`: its head and payload) found at byte `start` of the file."""
    kind_no, length = EVENT_HEAD.unpack_from(data)
    try:
        kind = Kind(kind_no)
    except ValueError:
        raise UserError(f"rrfile {path}: unknown event kind {kind_no} at byte {start}") from None
    fixed = {Kind.WARP: WARP.size, Kind.END: END.size, Kind.FRAME: 1, Kind.LINK: 1}
    need = POSITION.size + fixed.get(kind, 0)
    if length < need or (kind in (Kind.WARP, Kind.END) and length != need):
        raise UserError(f"rrfile {path}: malformed {kind.name.lower()} event at byte {start}")
    instret, now_ns, pc, idle = POSITION.unpack_from(data, EVENT_HEAD.size)
    at = Position(instret, now_ns, pc, bool(idle))
    body = data[EVENT_HEAD.size + POSITION.size:]
    if kind is Kind.FRAME:
        return Event(kind, at, data=body[1:], netdev=body[0])
    if kind is Kind.CONSOLE:
        return Event(kind, at, data=body)
    if kind is Kind.LINK:
        try:
            body[1:].decode()
        except UnicodeDecodeError:
            raise UserError(f"rrfile {path}: malformed link event at byte {start} "
                            "(the name is not UTF-8)") from None
        return Event(kind, at, data=body[1:], up=bool(body[0]))
    if kind is Kind.WARP:
        return Event(kind, at, warp_ns=WARP.unpack(body)[0])
    how, status = END.unpack(body)
    if how not in (EndHow.POWER_OFF, EndHow.STOPPED):
        raise UserError(f"rrfile {path}: malformed end event at byte {start}")
    return Event(kind, at, how=EndHow(how), status=status)
