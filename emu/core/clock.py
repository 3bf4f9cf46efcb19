"""VirtualClock and VirtualTimer — QEMU's QEMU_CLOCK_VIRTUAL under `-icount` (system/cpu-timers.c,
util/qemu-timer.c).

Virtual time is counted, not measured: every retired guest instruction is worth
2**shift ns, so `now()` is `offset + instret << shift`, where `instret` comes from the
counter the machine attaches (the CPU's retired-instruction count). The offset only moves
when the machine jumps time forward while the CPU idles in `wfi`.

Timers live on this clock. Expired timers fire from `run_timers()`, which the machine
calls between CPU slices, in (deadline, arming order) order — so the same guest gives the
same firing sequence every run. `on_mod` lets the machine cut a CPU slice short when a
timer is armed (from inside the slice) earlier than the slice would have ended.
"""

from __future__ import annotations

from collections.abc import Callable


class VirtualTimer:
    """One timer: `mod(deadline_ns)` arms (or re-arms) it, `cancel()` disarms it."""

    __slots__ = ("_callback", "_clock", "deadline", "order")

    def __init__(self, clock: VirtualClock, callback: Callable[[], object]) -> None:
        self._clock = clock
        self._callback = callback
        self.deadline: int | None = None
        self.order = 0

    @property
    def pending(self) -> bool:
        return self.deadline is not None

    def mod(self, deadline_ns: int) -> None:
        self._clock._arm(self, max(0, deadline_ns))

    def cancel(self) -> None:
        self._clock._disarm(self)

    def fire(self) -> None:
        self._callback()


class VirtualClock:
    """Deterministic virtual nanoseconds driven by an instruction counter."""

    def __init__(self, shift: int = 0) -> None:
        self.shift = shift
        self._offset = 0
        self._counter: Callable[[], int] = lambda: 0
        self._armed: list[VirtualTimer] = []
        self._arm_count = 0
        self.on_mod: Callable[[int], None] | None = None

    def attach_counter(self, counter: Callable[[], int]) -> None:
        """Drive the clock from `counter()` retired instructions, keeping `now()` continuous."""
        now = self.now()
        self._counter = counter
        self._offset = now - (counter() << self.shift)

    def now(self) -> int:
        return self._offset + (self._counter() << self.shift)

    def advance(self, ns: int) -> None:
        """Move time forward by `ns` without retiring instructions (an idle jump)."""
        if ns > 0:
            self._offset += ns

    def step(self, ns: int) -> int:
        """Advance by `ns` and fire what expired; returns the new time (qtest's clock_step)."""
        self.advance(ns)
        self.run_timers()
        return self.now()

    def insns_until(self, deadline_ns: int) -> int:
        """Instructions to retire before `deadline_ns` is reached (0 if it has passed)."""
        delta = deadline_ns - self.now()
        if delta <= 0:
            return 0
        step = 1 << self.shift
        return (delta + step - 1) // step

    def timer(self, callback: Callable[[], object]) -> VirtualTimer:
        return VirtualTimer(self, callback)

    def next_deadline(self) -> int | None:
        if not self._armed:
            return None
        return min(timer.deadline for timer in self._armed if timer.deadline is not None)

    def run_timers(self) -> int:
        """Fire every timer expired now; returns how many fired.

        The expired set is taken once, so a callback that re-arms a timer in the past
        makes it fire on the next call, not in an endless loop here.
        """
        now = self.now()
        expired = sorted(
            (t for t in self._armed if t.deadline is not None and t.deadline <= now),
            key=lambda t: (t.deadline, t.order),
        )
        fired = 0
        for timer in expired:
            if timer.deadline is None or timer.deadline > now:
                continue
            self._disarm(timer)
            timer.fire()
            fired += 1
        return fired

    def _arm(self, timer: VirtualTimer, deadline: int) -> None:
        if timer.deadline is None:
            self._armed.append(timer)
        timer.deadline = deadline
        self._arm_count += 1
        timer.order = self._arm_count
        if self.on_mod is not None:
            self.on_mod(deadline)

    def _disarm(self, timer: VirtualTimer) -> None:
        if timer.deadline is not None:
            timer.deadline = None
            self._armed.remove(timer)
