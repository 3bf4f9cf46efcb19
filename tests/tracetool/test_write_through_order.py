"""A stream socket that writes from inside the send (write-through) prints
`net_socket_write` before the `net_queue_send` of the frame it carries (that line comes
when the send returns); a socket that queues the record prints it after. The journey is
the same either way: the write belongs to the frame just transmitted, the hand-off to the
socket is drawn before the write, the frame crosses the wire after it. Before the fix the
early write was given to the next frame and the first frame lost its wire crossing.
The recording (docs/img/journey) has one order; the test makes the other from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from emu.tracetool.journey import build, diagram
from emu.tracetool.parse import load
from tests.tracetool.support import RECORDING


def write_through(lines: list[str]) -> list[str]:
    """The same trace as a write-through socket prints it: each socket write moved to just
    before the outgoing net_queue_send of the transmit before it."""
    out: list[str] = []
    waiting: int | None = None  # index in `out` of the last outgoing net_queue_send
    for line in lines:
        name = line.split(" ", 2)[1]  # after the virtual time, `t=NS`
        if name == "net_queue_send" and "sender=ne2k_isa" in line:
            waiting = len(out)
        if name == "net_socket_write" and waiting is not None:
            out.insert(waiting, line)
            waiting = None
            continue
        if name == "ne2000_transmit":
            waiting = None
        out.append(line)
    return out


def queued(lines: list[str]) -> list[str]:
    """The same trace as a socket that queues the record prints it: each socket write
    printed just before the outgoing net_queue_send of its frame moved to just after it."""
    out: list[str] = []
    for line in lines:
        name = line.split(" ", 2)[1]
        if (name == "net_queue_send" and "sender=ne2k_isa" in line and out
                and out[-1].split(" ", 2)[1] == "net_socket_write"):
            out.insert(len(out) - 1, line)
            continue
        out.append(line)
    return out


def other_order(lines: list[str]) -> list[str]:
    """The trace in the order the recording does not have (it was made with one socket)."""
    moved = write_through(lines)
    return moved if moved != lines else queued(lines)


def steps(paths: list[str]) -> list[tuple[str, list[tuple[str, str, str, str, str]]]]:
    inputs = load(paths)
    story = build(inputs.events, inputs.machines, inputs.captures)
    return [(group.title, [(a.src.machine, a.src.layer, a.dst.machine, a.dst.layer, a.label)
                           for a in group.arrows])
            for group in diagram(story, story.frames, "dma").groups]


@pytest.mark.parametrize("reordered", [["A"], ["B"], ["A", "B"]])
def test_write_through_order_tells_the_same_journey(tmp_path: Path,
                                                    reordered: list[str]) -> None:
    paths = []
    for machine in ("B", "A"):
        lines = (RECORDING / f"{machine}.trace").read_text().splitlines()
        if machine in reordered:
            changed = other_order(lines)
            assert changed != lines  # the recording has socket writes to move
            lines = changed
        path = tmp_path / f"{machine}.trace"
        path.write_text("\n".join(lines) + "\n")
        paths.append(str(path))
    original = [str(RECORDING / name) for name in ("B.trace", "A.trace", "A.pcap")]
    assert steps([*paths, str(RECORDING / "A.pcap")]) == steps(original)
