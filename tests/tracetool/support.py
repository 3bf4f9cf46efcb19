"""Shared by the toynic-trace tests: the recorded ping of docs/img/journey, the journey
command as the docs draw it, and reading an SVG back."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from emu.tracetool.journey import build
from emu.tracetool.parse import Event, load

REPO = Path(__file__).resolve().parents[2]
RECORDING = REPO / "docs" / "img" / "journey"
PICTURE = REPO / "docs" / "img" / "ping-journey.svg"
# the command that draws PICTURE, from the repository's root
PICTURE_ARGS = ["journey", "docs/img/journey/B.trace", "docs/img/journey/A.trace",
                "docs/img/journey/A.pcap", "--match", "icmp", "-o", "docs/img/ping-journey.svg"]
SVG = "{http://www.w3.org/2000/svg}"


def recording() -> list[str]:
    return [str(RECORDING / name) for name in ("B.trace", "A.trace", "A.pcap")]


def classes(element: ET.Element) -> set[str]:
    return set(element.get("class", "").split())


def lifelines(root: ET.Element) -> list[tuple[str, str]]:
    return [(g.get("data-machine", ""), g.get("data-layer", ""))
            for g in root.iter(SVG + "g") if "lifeline-head" in classes(g)]


def groups(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(SVG + "g") if "frame-group" in classes(g)]


def arrows(group: ET.Element) -> list[ET.Element]:
    return [g for g in group.iter(SVG + "g") if "arrow" in classes(g)]


def arrow_y(arrow: ET.Element) -> float:
    shape = next(e for e in arrow if e.tag in (SVG + "line", SVG + "path"))
    if shape.tag == SVG + "line":
        return float(shape.get("y1", "0"))
    return float(re.match(r"M[\d.]+,([\d.]+)", shape.get("d", "")).group(1))  # type: ignore[union-attr]


def timed_merge(paths: list[str]) -> str:
    """One merged trace on one virtual time, as a deterministic lab prints it: each line
    `t=NS machine=NAME event ...`. Time moves on with the guest's own accesses only (the
    CPU runs); what the net layer does happens at the instant the guest reached."""
    inputs = load(paths)
    build(inputs.events, inputs.machines, inputs.captures)  # numbers events causally
    clock = 0
    lines = []
    for event in sorted(inputs.events, key=lambda e: e.seq):
        if event.name.startswith(("ne2000_ioport", "ne2000_dma")):
            clock += 100
        # The recording's own `t=NS` (each process's clock) gives way to the lab's.
        text = event.text[event.text.index(event.name):]
        lines.append(f"t={clock} machine={event.machine} {text}")
    return "\n".join(lines) + "\n"


def by_name(events: list[Event], name: str) -> list[Event]:
    return [event for event in events if event.name == name]
