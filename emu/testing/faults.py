"""Fault schedules — an explicit fate for each frame on a link, drawn by Hypothesis and
applied on the lab's timeline, so a failing protocol property shrinks to the fewest,
smallest faults. (QEMU has no counterpart; `netdev.filter_netem.NetemFilter` is the
random, seeded kind of the same link faults.)

- `Fate`: what happens to one frame: deliver, drop, duplicate, delay by d ns, or corrupt
  byte i (every bit of it flipped; i wraps at the frame's length);
- `FaultSchedule`: fates for the first frames crossing a netdev, in the order they cross
  it (both directions unless told otherwise); frames past the end are delivered;
- `fault_schedules()`: the Hypothesis strategy; a fate shrinks towards deliver and the
  list towards fewer entries, so a counterexample ends with only the faults it needs;
- `apply_faults(lab, netdev, schedule)`: a `FaultFilter` on that netdev of the lab.

In a deterministic lab (`Lab(deterministic=True)`) the frames cross the netdev in the
same order every run, so frame N of a schedule is the same frame every time Hypothesis
replays it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from emu.core.timeline import Timeline
from emu.testing.lab import Lab
from emu.testing.strategies import _needs_hypothesis
from netdev.client import Forward, NetClient
from netdev.filter_netem import HeldFrames

try:
    from hypothesis import strategies as st
except ModuleNotFoundError:
    st = None

FateKind = Literal["deliver", "drop", "duplicate", "delay", "corrupt"]
FAULT_KINDS: tuple[FateKind, ...] = ("drop", "duplicate", "delay", "corrupt")


@dataclass(frozen=True)
class Fate:
    """What happens to one frame (`delay_ns` for delay, `byte` for corrupt)."""

    kind: FateKind = "deliver"
    delay_ns: int = 0
    byte: int = 0

    def __str__(self) -> str:
        if self.kind == "delay":
            return f"delay {self.delay_ns} ns"
        if self.kind == "corrupt":
            return f"corrupt byte {self.byte}"
        return self.kind


DELIVER = Fate()


@dataclass(frozen=True)
class FaultSchedule:
    """The fates of the first `len(fates)` frames crossing a link, in crossing order."""

    fates: tuple[Fate, ...] = ()

    def fate(self, index: int) -> Fate:
        return self.fates[index] if index < len(self.fates) else DELIVER

    @property
    def faults(self) -> int:
        """How many frames get anything but deliver."""
        return sum(fate.kind != "deliver" for fate in self.fates)

    def __str__(self) -> str:
        parts = [f"frame {i}: {fate}" for i, fate in enumerate(self.fates)
                 if fate.kind != "deliver"]
        return "; ".join(parts) or "no faults"


class FaultFilter:
    """Applies a FaultSchedule to the frames crossing one netdev (a
    `netdev.client.FrameShaper` on its path); `applied` lists (frame number, fate,
    direction) of every fault it carried out."""

    def __init__(self, schedule: FaultSchedule, netdev: NetClient, timeline: Timeline,
                 queue: str = "all") -> None:
        if queue not in ("all", "rx", "tx"):
            raise ValueError(f"queue must be 'all', 'rx' or 'tx', not {queue!r}")
        self.schedule = schedule
        self.netdev = netdev
        self.frames = 0
        self.applied: list[tuple[int, Fate, str]] = []
        self._timeline = timeline
        self._held = HeldFrames(timeline)
        self._want_tx = queue in ("all", "tx")
        self._want_rx = queue in ("all", "rx")
        netdev.shapers.append(self)

    def shape(self, frame: bytes, sent_by_owner: bool, forward: Forward) -> int:
        if not (self._want_tx if sent_by_owner else self._want_rx):
            return forward(frame)
        index = self.frames
        self.frames += 1
        fate = self.schedule.fate(index)
        if fate.kind == "deliver":
            return forward(frame)
        self.applied.append((index, fate, "tx" if sent_by_owner else "rx"))
        if fate.kind == "drop":
            return len(frame) or 1
        if fate.kind == "duplicate":
            result = forward(frame)
            forward(frame)
            return result
        if fate.kind == "corrupt":
            if not frame:
                return forward(frame)
            data = bytearray(frame)
            data[fate.byte % len(data)] ^= 0xFF
            return forward(bytes(data))
        self._held.hold(self._timeline.now_ns() + fate.delay_ns, frame, forward)
        return len(frame) or 1

    def close(self) -> None:
        """Take the filter off the netdev; frames it still holds are dropped."""
        self._held.clear()
        if self in self.netdev.shapers:
            self.netdev.shapers.remove(self)


def apply_faults(lab: Lab, netdev: str, schedule: FaultSchedule,
                 queue: str = "all") -> FaultFilter:
    """Put `schedule` on netdev `netdev` of `lab` (hold delayed frames on the lab's
    timeline); `queue` as filter-netem's: all, rx (to the netdev) or tx (from it)."""
    return FaultFilter(schedule, lab.net.find_netdev(netdev), lab.net.timeline, queue)


@_needs_hypothesis
def fates(max_delay_ns: int = 200_000_000, max_byte: int = 1513,
          kinds: tuple[FateKind, ...] = FAULT_KINDS) -> st.SearchStrategy[Fate]:
    """One frame's fate; shrinks to deliver, then to the earlier kinds of `kinds`, the
    shortest delay and the first byte."""
    choices = {
        "drop": st.just(Fate("drop")),
        "duplicate": st.just(Fate("duplicate")),
        "delay": st.integers(1, max_delay_ns).map(lambda d: Fate("delay", delay_ns=d)),
        "corrupt": st.integers(0, max_byte).map(lambda i: Fate("corrupt", byte=i)),
    }
    unknown = [kind for kind in kinds if kind not in choices]
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown}; choose from {FAULT_KINDS}")
    return st.one_of(st.just(DELIVER), *(choices[kind] for kind in kinds))


@_needs_hypothesis
def fault_schedules(max_frames: int = 16, max_delay_ns: int = 200_000_000,
                    max_byte: int = 1513, kinds: tuple[FateKind, ...] = FAULT_KINDS,
                    ) -> st.SearchStrategy[FaultSchedule]:
    """Fates for up to `max_frames` frames; see `fates` for the other arguments."""
    return st.lists(fates(max_delay_ns, max_byte, kinds), max_size=max_frames).map(
        lambda drawn: FaultSchedule(tuple(drawn)))
