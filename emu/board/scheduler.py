"""QuantumScheduler — one global virtual time for several machines: Renode's time
framework (a master time source granting each machine an interval, the quantum) on top of
QEMU's `-icount` clocks (accel/tcg/tcg-accel-ops-icount.c); QEMU itself has no
multi-machine counterpart.

The global time T lives in an emu.core.timeline.VirtualTimeline (the Timeline the net
layer and the test's peers schedule on). One round:

1. callbacks due at T run (frames a test scheduled with `at_ns`, delayed frames);
2. every machine, in the order they were added, runs to the round's end E:
   E = min(T + quantum, the next scheduled callback, the run's limit); when every machine
   idles in `wfi` and no frame is in flight, E jumps straight to the earliest timer
   deadline or callback (nothing waits in real time);
3. T = E; frames the machines' NICs transmitted during the round, held until now, are
   handed to the net layer in (send instant, transmit order) order, never before they
   were sent; with `link_delay_ns`, at send instant + delay instead.

So a machine never runs more than one quantum ahead of another, a frame crosses the
network in at most one quantum (plus the link delay), and everything a machine receives
from outside arrives between two rounds, when its clock reads E: at an instruction count
fixed by the inputs alone (what a recorder would note for replay). The outcome of a run
is a function of its inputs, however fast or busy the host is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from devices.dp8390 import FrameSink
from devices.ne2000 import Ne2000Isa
from emu.board.machine import Machine
from emu.core.errors import UserError
from emu.core.timeline import VirtualTimeline

DEFAULT_QUANTUM_NS = 100_000


class _HeldSink:
    """Stands between a NIC's chip and its NetClient: a transmitted frame waits, stamped
    with the sender's virtual time, for the end of the round."""

    def __init__(self, scheduler: QuantumScheduler, machine: Machine, sink: FrameSink) -> None:
        self._scheduler = scheduler
        self._machine = machine
        self._sink = sink

    def send(self, frame: bytes) -> int:
        self._scheduler.hold(self._machine.clock.now(), self._sink, frame)
        return len(frame) or 1

    def flush_queued(self) -> None:
        self._sink.flush_queued()


class QuantumScheduler:
    """Machines advanced together in quanta on one VirtualTimeline."""

    def __init__(self, quantum_ns: int = DEFAULT_QUANTUM_NS, link_delay_ns: int = 0) -> None:
        if quantum_ns <= 0:
            raise UserError(f"quantum_ns must be positive, not {quantum_ns}")
        if link_delay_ns < 0:
            raise UserError(f"link_delay_ns must not be negative, not {link_delay_ns}")
        self.quantum_ns = quantum_ns
        self.link_delay_ns = link_delay_ns
        self.timeline = VirtualTimeline()
        self.machines: list[Machine] = []
        self.rounds = 0
        self._held: list[tuple[int, int, FrameSink, bytes]] = []
        self._seq = 0

    def now_ns(self) -> int:
        return self.timeline.now_ns()

    def add_machine(self, machine: Machine) -> None:
        """Drive `machine` from now on; its clock is brought up to the global time."""
        machine.clock.advance(self.now_ns() - machine.clock.now())
        self.machines.append(machine)

    def hold_nic(self, machine: Machine, board: Ne2000Isa) -> None:
        """Hold the frames `board` transmits until the end of each round."""
        board.chip.sink = _HeldSink(self, machine, board.nc)

    def hold(self, sent_ns: int, sink: FrameSink, frame: bytes) -> None:
        self._seq += 1
        self._held.append((sent_ns, self._seq, sink, frame))

    def run(self, limit_ns: int, until: Callable[[], bool] | None = None,
            wall_cap: float | None = None) -> bool:
        """Advance global time to `limit_ns`, or until `until()` holds after a round (True).
        `wall_cap` real seconds is a safety net: past it, TimeoutError."""
        timeline = self.timeline
        give_up = None if wall_cap is None else time.monotonic() + wall_cap
        while True:
            timeline.run_due()
            if until is not None and until():
                return True
            now = timeline.now_ns()
            if now >= limit_ns:
                return False
            if give_up is not None and time.monotonic() > give_up:
                raise TimeoutError(f"the deterministic lab ran {wall_cap} s of real time and "
                                   f"reached only {now} ns of virtual time")
            end = self._round_end(now, limit_ns)
            for machine in self.machines:
                machine.run_to(end)
            timeline.advance_to(end)
            self.rounds += 1
            self._release()

    def _round_end(self, now: int, limit_ns: int) -> int:
        candidates = [limit_ns]
        next_at = self.timeline.next_at()
        if next_at is not None:
            candidates.append(next_at)
        wakes = [machine.next_event_ns() for machine in self.machines]
        if any(wake is not None and wake <= now for wake in wakes):
            candidates.append(now + self.quantum_ns)
        else:
            # Everyone idles: jump to the first instant anything can happen.
            candidates.extend(wake for wake in wakes if wake is not None)
        return max(now + 1, min(candidates))

    def _release(self) -> None:
        if not self._held:
            return
        held, self._held = sorted(self._held, key=lambda item: item[:2]), []
        now = self.now_ns()
        for sent_ns, _, sink, frame in held:
            when = sent_ns + self.link_delay_ns
            if when <= now:
                sink.send(frame)
            else:
                self.timeline.call_at(when, partial(sink.send, frame))
