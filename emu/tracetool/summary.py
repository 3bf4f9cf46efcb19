"""`toynic-trace summary`: a trace in numbers (QEMU: scripts/simpletrace.py's per-event
analysers, of which this is the counting kind).

Events per kind, frames per direction, and latency per layer: for each hop of a frame's
journey (guest to NE2000 transmit, to the net queue, to the socket, across the wire, back
up to the receiving guest) the virtual time it took, when the lines carry virtual time.
The wire hop needs both machines on one clock (a deterministic lab's merged trace):
separate `-D` files have a clock each, so their table leaves the wire out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from emu.tracetool.journey import Frame, Story, frame_title
from emu.tracetool.parse import Event
from emu.tracetool.svg import format_time

# Hops of a journey: from the first event of one kind to the first of the next.
HOPS = (
    ("remote DMA write → transmit", "ne2000_dma_start", "ne2000_transmit"),
    ("transmit → net queue", "ne2000_transmit", "net_queue_send"),
    ("net queue → socket write", "net_queue_send", "net_socket_write"),
    ("socket write → socket read (wire)", "net_socket_write", "net_socket_read"),
    ("socket read → ring", "net_socket_read", "ne2000_receive"),
    ("ring → guest's first DMA read", "ne2000_receive", "ne2000_dma_start"),
)


def _first(frame: Frame, name: str, after: float) -> Event | None:
    # place(), not seq: a write-through socket prints its write before the hand-off.
    found = [e for s in frame.segments for e in s.events
             if e.name == name and e.place() >= after]
    return min(found, key=lambda e: e.place(), default=None)


def _hops(frame: Frame, one_clock: bool) -> dict[str, int]:
    """Virtual nanoseconds per hop of one frame (hops whose ends are not traced, or are
    in two machines without `one_clock`: none)."""
    result: dict[str, int] = {}
    cursor = frame.first_seq()
    for label, start, end in HOPS:
        first = _first(frame, start, cursor)
        if first is None:
            continue
        last = _first(frame, end, first.place() + 0.125)
        if last is None or first.time_ns is None or last.time_ns is None:
            continue
        if first.machine != last.machine and not one_clock:
            continue  # two processes' own clocks: the difference means nothing
        result[label] = last.time_ns - first.time_ns
        cursor = last.place()
    return result


def summarize(events: Sequence[Event], story: Story) -> str:
    """The report, as text."""
    out = [f"machines: {', '.join(story.machines)}; {len(events)} events, "
           f"{len(story.frames)} frames"]
    out.append("")
    out.append("events per kind:")
    kinds = Counter((e.machine, e.name) for e in events)
    for (machine, name), count in sorted(kinds.items()):
        out.append(f"  {machine:>8}  {name:<26} {count:>7}")
    out.append("")
    out.append("frames per direction:")
    directions = Counter(
        (f.tx.machine if f.tx else "?") + " -> " + (",".join(s.machine for s in f.rx) or "?")
        for f in story.frames)
    for direction, count in sorted(directions.items()):
        out.append(f"  {direction:<20} {count:>7}")
    dropped = sum(1 for f in story.frames if any(s.dropped for s in f.segments))
    if dropped:
        out.append(f"  dropped              {dropped:>7}")
    out.append("")
    out.append("frames (numbers for journey --frame):")
    out += [f"  {frame_title(frame)}" for frame in story.frames]
    out.append("")
    if not story.timed:
        out.append("latency per layer: the trace lines carry no virtual time")
        return "\n".join(out) + "\n"
    out.append("latency per layer (virtual time; min / mean / max over frames):")
    samples: dict[str, list[int]] = {}
    for frame in story.frames:
        for label, ns in _hops(frame, story.one_clock).items():
            samples.setdefault(label, []).append(ns)
    for label, _start, _end in HOPS:
        values = samples.get(label)
        if values:
            mean = sum(values) // len(values)
            out.append(f"  {label:<36} {format_time(min(values))} / {format_time(mean)} / "
                       f"{format_time(max(values))}  ({len(values)} frames)")
    return "\n".join(out) + "\n"
