"""A stream socket that writes from inside the send (write-through) prints
`net_socket_write` before the `net_queue_send` of the frame it carries (that line comes
when the send returns); a socket that queues the record prints it after. The journey is
the same either way: the write belongs to the frame just transmitted, the hand-off to the
socket is drawn before the write, the frame crosses the wire after it. Before the fix the
early write was given to the next frame and the first frame lost its wire crossing."""

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
        name = line.split(" ", 1)[0]
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
            changed = write_through(lines)
            assert changed != lines  # the recording has socket writes to move
            lines = changed
        path = tmp_path / f"{machine}.trace"
        path.write_text("\n".join(lines) + "\n")
        paths.append(str(path))
    original = [str(RECORDING / name) for name in ("B.trace", "A.trace", "A.pcap")]
    assert steps([*paths, str(RECORDING / "A.pcap")]) == steps(original)
