"""Failure reports for a lab: what a developer looks at after a failed QEMU qtest run (the
guest's serial log, a pcap from `-object filter-dump` on each netdev), gathered by the
testing kit itself when a property fails inside `with Lab(...)` (docs/testing-kit.md,
"When a property fails").

- `LinkLog`: a frame observer on one end of a link keeping its last frames (a bounded
  record: lab time, sender, receiver, bytes) and counting all of them;
- `render_report`: the readable text a failing test's exception carries as a note —
  each machine (name, kernel, state, last console lines) and each link (counts, last
  frames in one line each);
- `write_link_pcap`: one classic pcap per link, written by netdev.dump.DumpFilter;
- `failure_dir`: where a failing test's artifacts go.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from emu.core.timeline import Timeline
from netdev.client import NetClient
from netdev.dump import DumpFilter
from netdev.framing import RecordBatch

# Frames a LinkLog keeps per link: enough for a pcap of a failing example, bounded so a
# long run costs at most ~1.5 MB per link.
DEFAULT_RECORD_FRAMES = 1000
CONSOLE_LINES = 12
FRAME_LINES = 8
FAILURES_ENV = "TOYNIC_FAILURES"


@dataclass(frozen=True, slots=True)
class SeenFrame:
    """One frame crossing a link: its number on the link (from 0), lab time, ends, bytes."""

    number: int
    ns: int
    sender: str
    receiver: str
    data: bytes


class LinkLog:
    """Observes every frame crossing `client`'s link, both ways (as filter-dump does, after
    the link's shapers: what the receiver was offered), keeping the last `limit`."""

    def __init__(self, client: NetClient, timeline: Timeline, limit: int) -> None:
        self.client = client
        self.timeline = timeline
        self.frames: deque[SeenFrame] = deque(maxlen=limit)
        self.count = 0
        self.bytes = 0
        client.filters.append(self)

    def observe(self, frame: bytes, sent_by_owner: bool) -> None:
        peer = self.client.peer
        other = peer.name if peer is not None else "-"
        sender, receiver = ((self.client.name, other) if sent_by_owner
                            else (other, self.client.name))
        self.frames.append(SeenFrame(self.count, self.timeline.now_ns(), sender, receiver,
                                     bytes(frame)))
        self.count += 1
        self.bytes += len(frame)

    def observe_batch(self, batch: RecordBatch, sent_by_owner: bool) -> None:
        for frame in batch.frames():
            self.observe(frame, sent_by_owner)

    def since(self, number: int) -> list[SeenFrame]:
        """The kept frames numbered `number` or later."""
        return [frame for frame in self.frames if frame.number >= number]


class ReportedMachine(Protocol):
    """What a report shows of a lab machine (emu.testing.lab.LabMachine)."""

    name: str
    kernel: str

    @property
    def output(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def error_output(self) -> str: ...


def summarize(frame: bytes) -> str:
    """A frame in a few words: ARP, ICMP echo, UDP ports, or its EtherType."""
    if len(frame) < 14:
        return "runt"
    ethertype = int.from_bytes(frame[12:14], "big")
    body = frame[14:]
    if ethertype == 0x0806 and len(body) >= 28:
        if body[7] == 1:
            return f"ARP who-has {_ip(body[24:28])} tell {_ip(body[14:18])}"
        return f"ARP {_ip(body[14:18])} is-at {body[8:14].hex(':')}"
    if ethertype == 0x0800 and len(body) >= 20:
        proto, payload = body[9], body[(body[0] & 0x0F) * 4:]
        route = f"{_ip(body[12:16])} > {_ip(body[16:20])}"
        if proto == 1 and len(payload) >= 8:
            kind = {0: "echo reply", 8: "echo request"}.get(payload[0], f"type {payload[0]}")
            return f"ICMP {kind} {route} seq={int.from_bytes(payload[6:8], 'big')}"
        if proto == 17 and len(payload) >= 4:
            return (f"UDP {route} ports {int.from_bytes(payload[0:2], 'big')}"
                    f" > {int.from_bytes(payload[2:4], 'big')}")
        return f"IPv4 {route} proto {proto}"
    return f"{frame[6:12].hex(':')} > {frame[0:6].hex(':')} type {ethertype:#06x}"


def _ip(data: bytes) -> str:
    return ".".join(map(str, data))


def _tail(text: str, count: int) -> tuple[list[str], int]:
    lines = text.splitlines()
    return lines[-count:], len(lines)


def render_report(machines: Sequence[ReportedMachine], links: Iterable[tuple[LinkLog, int]],
                  now_ns: int, deterministic: bool, labels: dict[str, str],
                  artifacts: Path | None = None) -> str:
    """The report: lab time, each machine, each link (`links` pairs a LinkLog with the
    number of its first frame to show), and where the artifacts are. `labels` names the
    machine of each NIC (by the NIC's client name)."""
    clock = "virtual" if deterministic else "host"
    out = [f"toynic lab at t={now_ns} ns ({clock} time), {len(machines)} machine(s)"]
    for machine in machines:
        out.append(f"machine {machine.name}: kernel {machine.kernel}, {machine.state}")
        lines, total = _tail(machine.output, CONSOLE_LINES)
        out.append(f"  console ({len(lines)} last of {total} lines)" + (":" if lines else ""))
        out.extend(f"  | {line}" for line in lines)
        errors, _ = _tail(machine.error_output, CONSOLE_LINES)
        out.extend(f"  ! {line}" for line in errors)
    for log, first in links:
        shown = log.since(first)
        peer = log.client.peer
        ends = f"{_label(log.client.name, labels)} <-> " + (
            _label(peer.name, labels) if peer is not None else "(no peer)")
        out.append(f"link {ends}: {log.count - first} frame(s) in this run")
        for frame in shown[-FRAME_LINES:]:
            out.append(f"  #{frame.number} t={frame.ns} {labels.get(frame.sender, frame.sender)}"
                       f" -> {labels.get(frame.receiver, frame.receiver)} {len(frame.data)} B"
                       f" {summarize(frame.data)}")
    if artifacts is not None:
        out.append(f"artifacts (a pcap per link, full consoles): {artifacts}")
    return "\n".join(out)


def _label(name: str, labels: dict[str, str]) -> str:
    machine = labels.get(name)
    return f"{name} (NIC of {machine})" if machine else name


def write_link_pcap(path: Path, frames: Sequence[SeenFrame], start_sec: int,
                    origin_ns: int) -> None:
    """Write `frames` as a pcap: each stamped `start_sec` + (its lab time - `origin_ns`)."""
    stamp = [0]
    dump = DumpFilter(path.stem, str(path), clock=lambda: stamp[0])
    dump.start_sec = start_sec
    try:
        for frame in frames:
            stamp[0] = frame.ns - origin_ns
            dump.observe(frame.data, True)
    finally:
        dump.close()


def safe_name(text: str) -> str:
    """`text` as one file name: anything but letters, digits, '.', '-', '_' becomes '_'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "lab"


def failure_dir() -> Path:
    """$TOYNIC_FAILURES (default: toynic-failures in the temporary directory), then the
    running pytest test's id (from PYTEST_CURRENT_TEST), or `lab` outside pytest."""
    root = os.environ.get(FAILURES_ENV) or str(Path(tempfile.gettempdir()) / "toynic-failures")
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    return Path(root) / safe_name(test)
