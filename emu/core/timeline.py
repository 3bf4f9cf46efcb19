"""Timeline — the time that net-layer objects schedule on (QEMU's QEMUClockType timers,
`timer_new_ns(QEMU_CLOCK_VIRTUAL, ...)`, as seen by a netfilter).

A link filter that delays or reorders frames needs "now" and "call me at T". Which time
that is depends on how the run is driven:

- free-running (sockets, one or many machines in real time): `HostTimeline`, host
  monotonic nanoseconds and the main loop's host timers;
- a deterministic lab: one global virtual time shared by every machine and peer of the
  lab, advanced by the lab's scheduler, so a delay of 5 ms is 5 virtual ms every run
  (`VirtualTimeline`; emu.board.scheduler moves it).

Code that schedules asks for a `Timeline` and does not care which one it got.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from typing import Protocol

from emu.core.loop import MainLoop


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Timeline(Protocol):
    """Now, and callbacks at a later instant, in nanoseconds."""

    def now_ns(self) -> int: ...

    def call_at(self, when_ns: int, fn: Callable[[], object]) -> TimerHandle: ...


class HostTimeline:
    """Real time: the host's monotonic clock and the main loop's host timers."""

    def __init__(self, loop: MainLoop) -> None:
        self._loop = loop

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def call_at(self, when_ns: int, fn: Callable[[], object]) -> TimerHandle:
        return self._loop.call_later(max(0, when_ns - self.now_ns()) / 1e9, fn)


class VirtualEvent:
    """One callback on a VirtualTimeline; `cancel()` makes it never run."""

    __slots__ = ("cancelled", "fn", "when_ns")

    def __init__(self, when_ns: int, fn: Callable[[], object]) -> None:
        self.when_ns = when_ns
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualTimeline:
    """Global virtual time: `now_ns()` moves only when its owner calls `advance_to`, and
    callbacks run in (instant, scheduling order) order, so equal inputs give equal runs.

    A callback scheduled in the past (or at now) runs at the next `run_due`, never inside
    `call_at` itself: as a bottom half, never re-entrant."""

    def __init__(self) -> None:
        self._now = 0
        self._seq = 0
        self._heap: list[tuple[int, int, VirtualEvent]] = []

    def now_ns(self) -> int:
        return self._now

    def call_at(self, when_ns: int, fn: Callable[[], object]) -> VirtualEvent:
        event = VirtualEvent(max(when_ns, self._now), fn)
        self._seq += 1
        heapq.heappush(self._heap, (event.when_ns, self._seq, event))
        return event

    def next_at(self) -> int | None:
        """The instant of the earliest live callback, or None."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def advance_to(self, when_ns: int) -> None:
        """Move now forward (never back) to `when_ns`; runs nothing."""
        self._now = max(self._now, when_ns)

    def run_due(self) -> int:
        """Run every callback due at or before now, in order, including those they schedule
        for now; returns how many ran."""
        ran = 0
        heap = self._heap
        while heap and heap[0][0] <= self._now:
            _, _, event = heapq.heappop(heap)
            if not event.cancelled:
                event.cancelled = True
                event.fn()
                ran += 1
        return ran
