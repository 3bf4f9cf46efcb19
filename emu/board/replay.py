"""Record and replay of one machine's inputs — QEMU's replay/ (replay.c, replay-events.c,
replay-net.c, replay-char.c, replay-time.c) behind `-icount rr=record|replay,rrfile=FILE`.

Everything a machine does is a function of its guest program and its inputs; toynic's
inputs are the frames its recorded netdevs (`-object filter-replay`) pass to the NIC,
console bytes, `set_link` from the monitor, how far virtual time warped when a sleeping
machine was woken early, and the second the run started (pcap timestamps). They all
enter between two CPU slices, so the machine's position then — retired instructions,
virtual time, pc, idle or not — says exactly where an input belongs.

`Recorder` writes each input with its position (emu.board.rrfile). `Replayer` feeds
them back: each slice is cut to end where the next input is due, an idle machine never
waits in real time (it jumps to its next timer deadline or applies the input recorded at
this point), and the recorded netdevs open no socket. When the machine is not where the
next input expects it (another kernel or arguments slipped past the header check, or
a guest that behaves otherwise), replay stops with one line naming that input.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from emu.board.machine import Machine
from emu.board.rrfile import EndHow, Event, Kind, Position, RrWriter, read_rrfile
from emu.core.errors import UserError
from netdev.filter_replay import ReplayFilter
from netdev.net import Net

# Header keys compared on replay, in this order, with what to call them in an error.
CHECKED = (
    ("kernel_sha256", "kernel"),
    ("append", "-append"),
    ("ram_size", "-m"),
    ("icount_shift", "-icount shift"),
    ("icount_sleep", "-icount sleep"),
    ("devices", "-device options"),
    ("netdevs", "filter-replay netdevs"),
)


def run_header(kernel: str, append: str, ram_size: int, shift: int, sleep: bool,
               devices: list[str], netdevs: list[str]) -> dict[str, object]:
    """What a recording is tied to: replay refuses a run whose values differ."""
    try:
        digest = hashlib.sha256(Path(kernel).read_bytes()).hexdigest()
    except OSError as err:
        raise UserError(f"-kernel {kernel}: {err.strerror or err}") from None
    return {"kernel_sha256": digest, "append": append, "ram_size": ram_size,
            "icount_shift": shift, "icount_sleep": sleep, "devices": devices,
            "netdevs": netdevs}


def position(machine: Machine) -> Position:
    return Position(machine.instret, machine.clock.now(), int(machine.cpu.pc), machine.idle)


class Recorder:
    """`rr=record`: the machine's and the net's journal, writing to an rrfile."""

    replaying = False

    def __init__(self, machine: Machine, net: Net, path: str,
                 header: dict[str, object]) -> None:
        self.machine = machine
        self.net = net
        self.netdevs = [str(name) for name in header["netdevs"]]  # type: ignore[attr-defined]
        rtc = int(time.time())
        self.writer = RrWriter(path, {**header, "rtc": rtc})
        self.events = 0
        for dump in net.dumps.values():
            dump.start_sec = rtc
        for replay in net.replays.values():
            replay.journal = self
        net.link_observer = self.link
        machine.journal = self

    def _write(self, event: Event) -> None:
        self.events += 1
        self.writer.write(event)

    # -- InputJournal ----------------------------------------------------------------------

    def before_slice(self) -> bool:
        return True

    def slice_budget(self, budget: int) -> int:
        return budget

    def idle_step(self) -> None:
        raise RuntimeError("a recording machine idles in real time")

    def warp(self, waited_ns: int) -> int:
        self._write(Event(Kind.WARP, position(self.machine), warp_ns=max(0, waited_ns)))
        return waited_ns

    def console_input(self, data: bytes) -> None:
        self._write(Event(Kind.CONSOLE, position(self.machine), data=bytes(data)))

    # -- FrameJournal and the link observer -------------------------------------------------

    def frame(self, netdev: str, frame: bytes) -> None:
        self._write(Event(Kind.FRAME, position(self.machine), data=frame,
                          netdev=self.netdevs.index(netdev)))

    def link(self, name: str, up: bool) -> None:
        self._write(Event(Kind.LINK, position(self.machine), data=name.encode(), up=up))

    def finish(self, status: int) -> None:
        """The run ended with `status` (power-off, or stopped by a signal or `quit`)."""
        how = EndHow.POWER_OFF if self.machine.exit_code is not None else EndHow.STOPPED
        self._write(Event(Kind.END, position(self.machine), how=how, status=status))
        self.writer.close()

    def close(self) -> None:
        """Flush what was recorded (without an end event if `finish` was not reached)."""
        self.writer.close()


class Replayer:
    """`rr=replay`: feeds a machine the inputs an rrfile recorded, where they were recorded."""

    replaying = True

    def __init__(self, machine: Machine, net: Net, path: str,
                 header: dict[str, object]) -> None:
        recorded, self.events = read_rrfile(path)
        for key, what in CHECKED:
            if recorded.get(key) != header[key]:
                raise UserError(f"rr=replay: {path} was recorded with another {what} "
                                f"({_shown(recorded.get(key))}; this run: {_shown(header[key])})")
        self.path = path
        self.machine = machine
        self.net = net
        self.netdevs = [str(name) for name in header["netdevs"]]  # type: ignore[attr-defined]
        self._filters: dict[str, ReplayFilter] = {}
        for replay in net.replays.values():
            replay.replaying = True
            self._filters[replay.netdev.name] = replay
        rtc = recorded.get("rtc")
        for dump in net.dumps.values():
            dump.start_sec = rtc if isinstance(rtc, int) else 0
        self._next = 0
        self._stopped = False
        self._applying_link = False
        net.link_observer = self._refuse_link
        machine.journal = self

    # -- the event cursor ----------------------------------------------------------------------

    def _peek(self) -> Event:
        return self.events[self._next]

    def _pop(self) -> Event:
        event = self.events[self._next]
        self._next += 1
        return event

    def _diverged(self, why: str) -> UserError:
        event = self._peek()
        return UserError(
            f"replay diverged at event {self._next + 1} of {len(self.events)} of {self.path} "
            f"({event.describe(self.netdevs)}): {why}")

    def _check_not_passed(self, here: Position) -> None:
        if here.instret > self._peek().at.instret:
            raise self._diverged(f"the guest ran past it, to {here.describe()}")

    def _apply(self, event: Event) -> bool:
        """Apply a popped event; False when it ends the run."""
        if event.kind is Kind.FRAME:
            self._filters[self.netdevs[event.netdev]].inject(event.data)
        elif event.kind is Kind.CONSOLE:
            taken = self.machine.uart.receive(event.data)
            if taken != len(event.data):
                self._next -= 1
                raise self._diverged(f"the console took only {taken} bytes")
        elif event.kind is Kind.LINK:
            self._applying_link = True
            try:
                self.net.set_link(event.data.decode(), event.up)
            finally:
                self._applying_link = False
        elif event.kind is Kind.WARP:
            # Left in place: the machine's wake-up takes it (`warp`).
            self.machine.wake()
        elif event.how is EndHow.STOPPED:
            self._stopped = True
            self.machine.loop.stop()
            return False
        else:
            self._next -= 1
            here = position(self.machine).describe()
            raise self._diverged(f"the guest is still running at {here}")
        return True

    # -- InputJournal ----------------------------------------------------------------------------

    def before_slice(self) -> bool:
        here = position(self.machine)
        self._check_not_passed(here)
        while self._peek().at == here:
            if not self._apply(self._pop()):
                return False
        return True

    def slice_budget(self, budget: int) -> int:
        gap = self._peek().at.instret - self.machine.instret
        return min(budget, gap) if gap > 0 else budget

    def idle_step(self) -> None:
        machine = self.machine
        here = position(machine)
        self._check_not_passed(here)
        event = self._peek()
        if event.at == here:
            if event.kind is not Kind.WARP:
                self._pop()
            self._apply(event)
            return
        deadline = machine.clock.next_deadline()
        if deadline is not None and (event.at.instret > here.instret
                                     or event.at.now_ns >= deadline):
            machine.expire_idle()
            return
        raise self._diverged(f"the guest waits for an interrupt at {here.describe()}")

    def warp(self, waited_ns: int) -> int:
        here = position(self.machine)
        event = self._peek()
        if event.kind is not Kind.WARP or event.at != here:
            raise self._diverged(f"the guest was woken at {here.describe()}")
        self._pop()
        return event.warp_ns

    def console_input(self, data: bytes) -> None:
        raise RuntimeError("a replaying machine reads no console input")

    def _refuse_link(self, name: str, up: bool) -> None:
        if not self._applying_link:
            raise UserError("set_link: the run is replayed (rr=replay); its link changes "
                            "come from the rrfile")

    def finish(self, status: int) -> None:
        """The replayed run ended with `status`: a guest that powered off must do so where
        and as the recording's did (a run stopped here by a signal ends as it likes)."""
        if self._stopped or self.machine.exit_code is None:
            return
        event = self._peek()
        if event.kind is not Kind.END or event.how is not EndHow.POWER_OFF:
            raise self._diverged(f"the guest powered off with status {status} at "
                                 f"{position(self.machine).describe()}")
        if event.status != status or event.at.instret != self.machine.instret:
            raise self._diverged(f"the guest powered off with status {status} at "
                                 f"{position(self.machine).describe()}")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
