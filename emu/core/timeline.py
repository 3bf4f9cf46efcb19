"""Timeline — the time that net-layer objects schedule on (QEMU's QEMUClockType timers,
`timer_new_ns(QEMU_CLOCK_VIRTUAL, ...)`, as seen by a netfilter).

A link filter that delays or reorders frames needs "now" and "call me at T". Which time
that is depends on how the run is driven:

- free-running (sockets, one or many machines in real time): `HostTimeline`, host
  monotonic nanoseconds and the main loop's host timers;
- a deterministic lab: one global virtual time shared by every machine and peer of the
  lab, advanced by the lab's scheduler, so a delay of 5 ms is 5 virtual ms every run.

Code that schedules asks for a `Timeline` and does not care which one it got.
"""

from __future__ import annotations

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
