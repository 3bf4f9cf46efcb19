"""Trace files to events — the reading half of QEMU's scripts/simpletrace.py.

toynic's trace lines are QEMU's "log" backend format, `event key=value ...`. A line may
also carry, before the event name, a virtual timestamp and the machine that printed it
(a deterministic lab's merged trace): a token `t=12345` / `vt=...` / `time=...` or a bare
number (integer: nanoseconds; a unit suffix `ns`, `us`, `µs`, `ms`, `s`; a decimal without
unit: seconds; QEMU's `PID@SEC.USEC:` prefix too), and a token `machine=NAME`, `[NAME]`
or `NAME:`. The same keys are recognised among the fields after the event name. Without
a machine field, a file's lines belong to the machine named after the file.

A pcap file given among the traces (recognised by its magic number) supplies the
frames' bytes, which trace lines do not carry.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from emu.core.opts import shown
from emu.core.trace import EVENT_NAMES

# A trace bigger than this is not something a picture can show.
MAX_TRACE_BYTES = 256 << 20
# Each event held costs some 700 bytes: short lines under MAX_TRACE_BYTES could take
# gigabytes, so the events of all inputs together are bounded too.
MAX_EVENTS = 1_000_000
KNOWN_EVENTS = frozenset(EVENT_NAMES)
TIME_KEYS = frozenset({"t", "vt", "time", "time_ns", "vtime", "ns"})
MACHINE_KEYS = frozenset({"machine", "m", "mach"})
EVENT_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
FIELD = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)=(\S*)\Z")
QEMU_PREFIX = re.compile(r"(\d+)@(\d+)\.(\d{1,9}):(.*)\Z")
NUMBER = re.compile(r"@?(\d+(?:\.\d+)?)(ns|us|µs|ms|s)?:?\Z")
MAX_TIME_NS = (1 << 63) - 1
UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",
               b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}


class TraceError(Exception):
    """An input the tool cannot use; the message is one line for the user."""


@dataclass
class Event:
    """One trace line: its event, fields, and where and when it happened."""

    machine: str
    name: str
    fields: dict[str, str]
    text: str
    source: str
    lineno: int
    time_ns: int | None = None
    seq: int = 0  # position in the merged, causally ordered story (journey._order)
    drawn_after: Event | None = None  # printed late: drawn right after this event

    def place(self) -> float:
        """Where the diagram draws this event in the merged order."""
        return self.drawn_after.seq + 0.25 if self.drawn_after else float(self.seq)

    @property
    def ref(self) -> str:
        """`MACHINE:LINE`, where a reader finds this line."""
        return f"{self.machine}:{self.lineno}"

    def int_field(self, key: str, default: int = 0) -> int:
        try:
            return int(self.fields.get(key, ""), 0)
        except ValueError:
            return default


@dataclass
class Inputs:
    """What the command line named: events of every trace, frames of every pcap."""

    events: list[Event] = field(default_factory=list)
    machines: list[str] = field(default_factory=list)
    captures: list[list[bytes]] = field(default_factory=list)


class TimeOutOfRange(ValueError):
    """A time token of more than MAX_TIME_NS nanoseconds (about 292 years)."""


def parse_time(token: str) -> int | None:
    """Nanoseconds from `123`, `1.5ms`, `0.000123` (seconds), `@42ns`; None if not a time;
    TimeOutOfRange beyond MAX_TIME_NS (so no arithmetic meets a number too long for int()
    or a float)."""
    match = NUMBER.match(token)
    if match is None:
        return None
    number, unit = match.groups()
    if unit is None:
        unit = "s" if "." in number else "ns"
    whole, _, frac = number.partition(".")
    return _nanoseconds(token, whole, frac, UNIT_NS[unit])


def _nanoseconds(token: str, whole: str, frac: str, scale: int) -> int:
    # Digits past the ninth after the point are below a nanosecond for every unit.
    frac = frac[:9]
    if len(whole.lstrip("0")) > len(str(MAX_TIME_NS)):
        raise TimeOutOfRange(token)
    value = int(whole) * scale + (int(frac) * scale // 10 ** len(frac) if frac else 0)
    if value > MAX_TIME_NS:
        raise TimeOutOfRange(token)
    return value


def parse_line(line: str) -> tuple[str, dict[str, str], int | None, str | None] | None:
    """(event, fields, time_ns, machine) of one trace line, or None if it is not one."""
    tokens = line.split()
    time_ns: int | None = None
    machine: str | None = None
    for index, token in enumerate(tokens):
        qemu = QEMU_PREFIX.match(token)
        if qemu is not None:  # QEMU's log backend with timestamps: PID@SEC.USEC:event
            time_ns = _nanoseconds(token, qemu.group(2), qemu.group(3), 10**9)
            token = qemu.group(4)
        if EVENT_NAME.match(token) and _all_fields(tokens[index + 1:]) and (
                token in KNOWN_EVENTS or index + 1 < len(tokens)):
            fields: dict[str, str] = {}
            for item in tokens[index + 1:]:
                key, _, value = item.partition("=")
                if key in TIME_KEYS and time_ns is None and parse_time(value) is not None:
                    time_ns = parse_time(value)
                elif key in MACHINE_KEYS and machine is None:
                    machine = value
                else:
                    fields[key] = value
            return token, fields, time_ns, machine
        if index >= 3:  # the event name comes after at most a time and a machine
            return None
        key, eq, value = token.partition("=")
        if eq and key in TIME_KEYS and parse_time(value) is not None:
            time_ns = parse_time(value)
        elif eq and key in MACHINE_KEYS and value:
            machine = value
        elif (when := parse_time(token)) is not None:
            time_ns = when
        elif token.startswith("[") and token.endswith("]") and len(token) > 2:
            machine = token[1:-1]
        elif token.endswith(":") and len(token) > 1 and not eq:
            machine = token[:-1]
        elif not eq and machine is None:  # a bare name before the event: `A ne2000_...`
            machine = token
        else:
            return None
    return None


def _all_fields(tokens: Sequence[str]) -> bool:
    return all(FIELD.match(token) for token in tokens)


def _read(path: str) -> bytes:
    try:
        file = Path(path)
        if file.is_dir():
            raise TraceError(f"{path}: is a directory")
        with file.open("rb") as stream:
            data = stream.read(MAX_TRACE_BYTES + 1)
    except OSError as err:
        raise TraceError(f"{path}: {err.strerror or err}") from None
    if len(data) > MAX_TRACE_BYTES:
        raise TraceError(f"{path}: larger than {MAX_TRACE_BYTES >> 20} MiB")
    if not data.strip():
        raise TraceError(f"{path}: empty file, no trace events")
    return data


def read_pcap(path: str, data: bytes) -> list[bytes]:
    """The frames of a classic pcap file (either byte order)."""
    order = PCAP_MAGICS.get(data[:4])
    if order is None or len(data) < 24:
        raise TraceError(f"{path}: not a pcap file")
    frames = []
    offset = 24
    while offset + 16 <= len(data):
        caplen = struct.unpack_from(order + "I", data, offset + 8)[0]
        offset += 16
        frames.append(data[offset:offset + caplen])
        offset += caplen
    return frames


def read_trace(path: str, machine: str, data: bytes, limit: int = MAX_EVENTS) -> list[Event]:
    """The events of one trace file, at most `limit` of them (else TraceError); lines that
    are not events (warnings) are skipped."""
    text = data.decode("utf-8", errors="replace")
    events = []
    for lineno, line in enumerate(text.splitlines(), 1):
        try:
            parsed = parse_line(line)
        except TimeOutOfRange as err:
            raise TraceError(f"{path}:{lineno}: the time {shown(str(err), 40)} is out of "
                             f"range (at most {MAX_TIME_NS} ns)") from None
        if parsed is None:
            continue
        name, fields, time_ns, named = parsed
        if len(events) == limit:
            raise TraceError(f"{path}: more than {MAX_EVENTS} trace events in the inputs; "
                             "trace fewer events (-trace PATTERN) or cut the file")
        events.append(Event(named or machine, name, fields, line.strip(), path, lineno,
                            time_ns))
    if not events:
        raise TraceError(f"{path}: no trace events in it (not a -trace/-D output?)")
    return events


def machine_names(paths: Sequence[str]) -> list[str]:
    """A machine name per file: its name without the extension, made unique."""
    names: list[str] = []
    for path in paths:
        stem = Path(path).stem or Path(path).name or "trace"
        name, count = stem, 1
        while name in names:
            count += 1
            name = f"{stem}#{count}"
        names.append(name)
    return names


def load(paths: Sequence[str]) -> Inputs:
    """Read every file: traces (events) and pcaps (frames). TraceError on bad input."""
    inputs = Inputs()
    blobs = [(path, _read(path)) for path in paths]
    traces = [(path, data) for path, data in blobs if data[:4] not in PCAP_MAGICS]
    for path, data in blobs:
        if data[:4] in PCAP_MAGICS:
            inputs.captures.append(read_pcap(path, data))
    if not traces:
        raise TraceError("no trace file given (only pcap files)")
    for (path, data), name in zip(traces, machine_names([p for p, _ in traces]), strict=True):
        inputs.events.extend(read_trace(path, name, data, MAX_EVENTS - len(inputs.events)))
    inputs.machines = list(dict.fromkeys(event.machine for event in inputs.events))
    return inputs
