"""Machine — the toynic board, QEMU's hw/riscv/virt.c plus the icount vCPU loop
(accel/tcg/tcg-accel-ops-icount.c, system/cpu-timers.c).

The board: RAM at RAM_BASE, the power device, CLINT, PLIC, 16550A console UART and the
ISA I/O window (NE2000 boards plug in there), all decoded by one `Bus`; CLINT lines and
the PLIC's output feed the CPU's MSIP/MTIP/MEIP.

The run: the CPU executes in slices scheduled as bottom halves on the MainLoop, so
sockets and host timers are served between slices and several machines can share a loop.
A slice never runs past the next virtual-timer deadline, and a timer armed earlier from
inside a slice stops the CPU, so timers fire at the same instruction every run. When the
CPU idles in `wfi`:
- sleep=off: after one non-blocking poll of host I/O, time jumps to the next deadline;
- sleep=on (default): the machine waits in real time (1 virtual ns = 1 real ns) for at
  most the time left until the next deadline; without host I/O the clock then lands
  exactly on the deadline, so the run stays deterministic. If host I/O raises an
  interrupt first, virtual time advances by the real time waited (QEMU's icount warp)
  and the CPU continues from there — the only source of non-determinism.
- with no deadline at all, only an interrupt from host I/O can wake the CPU.

Driven instead (a deterministic lab, emu.board.scheduler): the machine never touches the
loop; `run_to(ns)` executes until the virtual clock reaches `ns`, jumping idle time to
each timer deadline and then to `ns`, and `next_event_ns()` tells the scheduler when the
machine next needs to run (Renode's time sink under a global time source).

Recorded or replayed (`-icount rr=record|replay`, emu.board.replay): a journal
(`InputJournal`) sees every input that is not a function of the guest as it enters —
console bytes, and how far idle time jumped on each wake-up (the icount warp) — and, when
replaying, takes over the idle wait: no real time passes, the journal applies each
recorded input when the machine reaches the point where it was recorded.

Paused (`pause`/`resume`, QEMU's vm_stop(RUN_STATE_PAUSED)/vm_start behind the monitor's
`stop`/`cont`): no slice runs, no timer fires and the virtual clock stands still (an idle
sleep=on machine keeps the virtual time its real wait so far was worth, then stops
counting); frames for its NICs queue in the net layer (as QEMU's qemu_can_send_packet
says no while the VM is stopped) and console input stays with the host, both delivered
after `resume`. The loop, and so the monitor, go on serving.

Ends: the power device (exit status = the guest's code; the OS keeps its low 8 bits), a
fatal guest trap (one line on stderr, status GUEST_FAULT_STATUS), or `loop.stop()` from
SIGINT/SIGTERM (status 0, as QEMU's "terminating on signal"); the command line also stops
the loop when stdout fails for good (EPIPE, ENOSPC), with the same status.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable
from typing import Protocol, TextIO

from devices.clint import Clint
from devices.ne2000 import MODEL as NE2000_MODEL
from devices.ne2000 import Ne2000Isa, ne2k_isa_from_opts
from devices.plic import Plic
from devices.power import PowerDevice
from devices.uart import ByteSink, Uart16550
from emu.board.layout import (
    CLINT_BASE,
    CLINT_SIZE,
    ISA_BASE,
    ISA_IRQ_BASE,
    ISA_IRQS,
    PLIC_BASE,
    PLIC_SIZE,
    POWER_BASE,
    POWER_SIZE,
    RAM_BASE,
    RAM_DEFAULT_SIZE,
    UART_BASE,
    UART_IRQ,
    UART_SIZE,
)
from emu.board.loader import load_elf
from emu.core.bus import Bus, IsaBus, Ram
from emu.core.clock import VirtualClock
from emu.core.errors import UserError
from emu.core.fdwriter import FdWriter
from emu.core.irq import IrqLine
from emu.core.loop import MainLoop
from emu.core.opts import Opts, check_id
from emu.core.trace import DISABLED, Trace
from emu.cpu.cpu import Cpu
from emu.cpu.csr import MIP_MEIP, MIP_MSIP, MIP_MTIP
from emu.cpu.trap import GuestFault, cause_name
from netdev.net import Net

SLICE_INSNS = 20_000
MAX_ICOUNT_SHIFT = 10
RAM_MAX_SIZE = 1 << 31
GUEST_FAULT_STATUS = 1
# A sleeping machine re-checks at least this often (seconds), so huge deadlines stay sane.
MAX_IDLE_WAIT = 1.0
# Idle this long (s) and the CPU translates ahead of need, a region per loop turn: longer
# than the pauses inside a request/response exchange, so a compile never delays a frame
# there, and far shorter than the gap between a ping's requests.
WARM_UP_AFTER = 0.02

REG_SP = 2
REG_A0 = 10
REG_A1 = 11


class GuestCpu(Protocol):
    """What the machine, and the monitor through it, need of a CPU (emu.cpu.cpu.Cpu, or
    a test's stand-in): registers and pc, running and interrupts, and CSRs by number."""

    x: list[int]
    pc: int
    instret: int
    waiting: bool

    def run(self, budget: int) -> object: ...

    def request_stop(self) -> None: ...

    def set_irq(self, mask: int, level: bool) -> None: ...

    def csr_read(self, num: int) -> int | None: ...

    def warm_up(self) -> bool: ...


CpuFactory = Callable[[Bus, bytearray, int, Callable[[], int]], GuestCpu]
RunStateListener = Callable[[bool], None]


class InputJournal(Protocol):
    """Record/replay of the machine's inputs (emu.board.replay; QEMU's replay/)."""

    replaying: bool

    def before_slice(self) -> bool:
        """Between slices, before timers run: replay applies the inputs due here. False
        ends the run here (the recording ended here)."""
        ...

    def slice_budget(self, budget: int) -> int:
        """Replay: cut `budget` so the slice stops where the next input is due."""
        ...

    def idle_step(self) -> None:
        """Replay, while idle: apply the input due now, or let the next deadline expire
        (`Machine.expire_idle`), or report that the guest diverged."""
        ...

    def warp(self, waited_ns: int) -> int:
        """Leaving idle early: record `waited_ns`, or return the recorded one."""
        ...

    def console_input(self, data: bytes) -> None:
        """Record bytes going into the console UART."""
        ...


class Machine:
    """One toy RISC-V board with its CPU, devices and virtual clock."""

    def __init__(
        self,
        loop: MainLoop,
        *,
        ram_size: int = RAM_DEFAULT_SIZE,
        icount_shift: int = 0,
        icount_sleep: bool = True,
        console: ByteSink | None = None,
        stderr: TextIO | None = None,
        stdin_fd: int | None = None,
        cpu_factory: CpuFactory = Cpu,
    ) -> None:
        if not 0 <= icount_shift <= MAX_ICOUNT_SHIFT:
            raise UserError(f"-icount: shift must be between 0 and {MAX_ICOUNT_SHIFT}")
        if not 0 < ram_size <= RAM_MAX_SIZE or ram_size % 4:
            raise UserError(
                f"-m: RAM size must be a multiple of 4 bytes, at most {RAM_MAX_SIZE >> 30}G")
        self.loop = loop
        # Without a console of its own the machine writes to stdout through an FdWriter,
        # which never blocks the loop (a full pipe drops the oldest output, counted).
        self.console: ByteSink = console if console is not None else FdWriter.for_stdout(loop)
        self.stderr: TextIO = stderr if stderr is not None else sys.stderr
        self.icount_sleep = icount_sleep
        self.exit_code: int | None = None
        self.nics: list[Ne2000Isa] = []
        self.trace: Trace = DISABLED
        self.cpu_lines: list[IrqLine] = []

        self.clock = VirtualClock(icount_shift)
        self.bus = Bus()
        self.ram = Ram(ram_size)
        self.isa = IsaBus()
        self.cpu = cpu_factory(self.bus, self.ram.data, RAM_BASE, self._read_mtime)
        self.clock.attach_counter(lambda: self.cpu.instret)
        self.clock.on_mod = self._timer_modded

        self.plic = Plic(self._cpu_line("meip", MIP_MEIP))
        self.clint = Clint(self.clock, self._cpu_line("msip", MIP_MSIP),
                           self._cpu_line("mtip", MIP_MTIP))
        self.uart = Uart16550(self.plic.line(UART_IRQ), self.console)
        self.power = PowerDevice(self._poweroff)
        self.bus.map(POWER_BASE, POWER_SIZE, self.power, "power")
        self.bus.map(CLINT_BASE, CLINT_SIZE, self.clint, "clint")
        self.bus.map(PLIC_BASE, PLIC_SIZE, self.plic, "plic")
        self.bus.map(UART_BASE, UART_SIZE, self.uart, "uart")
        self.bus.map(ISA_BASE, IsaBus.SIZE, self.isa, "isa-io")
        self.bus.map(RAM_BASE, ram_size, self.ram, "ram")

        if stdin_fd is None and console is None and os.isatty(0):
            stdin_fd = 0
        self._stdin_fd = stdin_fd
        self.uart.on_rx_space = self._watch_stdin

        self._started = False
        self._in_slice = False
        self._slice_end_ns = 0
        self._scheduled = False
        self._idle = False
        self._idle_since = 0.0
        self._idle_handle: asyncio.TimerHandle | None = None
        self._warm_handle: asyncio.TimerHandle | None = None
        self._idle_capped = False
        self._stop_loop_on_exit = False
        self._crash: BaseException | None = None
        self._paused = False
        self.journal: InputJournal | None = None
        # Told True on resume and False on pause (QEMU's vm state change handlers).
        self.run_state_listeners: list[RunStateListener] = []

    # -- wiring ---------------------------------------------------------------------------

    @property
    def instret(self) -> int:
        return int(self.cpu.instret)

    @property
    def idle(self) -> bool:
        """The CPU waits in `wfi` and the machine waits with it (between slices)."""
        return self._idle

    @property
    def paused(self) -> bool:
        """Stopped by `pause` (the monitor's `stop`) until `resume`."""
        return self._paused

    @property
    def running(self) -> bool:
        """Neither paused nor ended (QEMU's runstate_is_running)."""
        return not self._paused and self.exit_code is None

    def _read_mtime(self) -> int:
        return self.clint.mtime()

    def _cpu_line(self, name: str, mask: int) -> IrqLine:
        line = IrqLine(name)
        line.connect(lambda level: self._set_cpu_irq(mask, level))
        self.cpu_lines.append(line)
        return line

    def _set_cpu_irq(self, mask: int, level: bool) -> None:
        self.cpu.set_irq(mask, level)
        if level and self._idle and not self._paused:
            self._wake()

    def isa_irq(self, irq: int) -> IrqLine:
        """The PLIC input that ISA IRQ `irq` drives."""
        if not 0 <= irq < ISA_IRQS:
            raise UserError(f"irq {irq} is not an ISA IRQ (0-{ISA_IRQS - 1})")
        return self.plic.line(ISA_IRQ_BASE + irq)

    def add_device(self, opts: Opts, net: Net) -> Ne2000Isa:
        """Plug in a `-device` (only `ne2k_isa` exists on this board)."""
        driver = opts.require("driver")
        if driver != NE2000_MODEL:
            raise UserError(f"'{driver}' is not a valid device model name")
        device_id = opts.get("id")
        if device_id is not None:
            check_id(device_id)
            # Anonymous NICs are named ne2k_isa.N; an id equal to one of those names is
            # refused too, so every NIC keeps a name of its own in traces and the monitor.
            if any(nic.name == device_id for nic in self.nics):
                raise UserError(f"Duplicate ID '{device_id}' for device")
        nic = ne2k_isa_from_opts(opts, isa=self.isa, isa_irq=self.isa_irq, net=net,
                                 nic_index=len(self.nics), clock=self.clock)
        nic.set_trace(self.trace)
        self.nics.append(nic)
        return nic

    def set_trace(self, trace: Trace) -> None:
        """Trace the NICs (present and future) and the CPU's interrupt lines (emu.core.trace)."""
        self.trace = trace
        for nic in self.nics:
            nic.set_trace(trace)
        for line in self.cpu_lines:
            line.trace = trace

    # -- program start --------------------------------------------------------------------

    def load_kernel(self, path: str, append: str = "") -> None:
        """Load the ELF at `path`; start it as main(argc, argv) with argv from `append`."""
        image = load_elf(path, self.ram.data, RAM_BASE)
        words = [os.path.basename(path), *append.split()]
        try:
            strings = [word.encode() + b"\0" for word in words]
        except UnicodeEncodeError:
            raise UserError("the kernel's name and -append must be valid UTF-8") from None
        ram_end = RAM_BASE + len(self.ram.data)
        strings_at = ram_end - sum(len(s) for s in strings)
        argv_at = (strings_at - 4 * (len(words) + 1)) & ~3
        sp = argv_at & ~15
        if sp <= image.end:
            raise UserError("-append: the command line does not fit in RAM above the program")
        pointers = []
        cursor = strings_at
        for text in strings:
            self.ram.write(cursor - RAM_BASE, len(text), int.from_bytes(text, "little"))
            pointers.append(cursor)
            cursor += len(text)
        for index, pointer in enumerate([*pointers, 0]):
            self.ram.write(argv_at - RAM_BASE + 4 * index, 4, pointer)
        for reg in range(len(self.cpu.x)):
            self.cpu.x[reg] = 0
        self.cpu.x[REG_A0] = len(words)
        self.cpu.x[REG_A1] = argv_at
        self.cpu.x[REG_SP] = sp
        self.cpu.pc = image.entry

    # -- the run --------------------------------------------------------------------------

    def start(self) -> None:
        """Begin executing on the loop (idempotent); `run`/`run_until` call it."""
        if self._started:
            return
        self._started = True
        self._watch_stdin()
        self._schedule()

    def run(self) -> int:
        """Run until power-off, a fatal guest trap or `loop.stop()`; returns the exit status."""
        self._stop_loop_on_exit = True
        try:
            if self.exit_code is None:
                self.start()
                self.loop.run_forever()
        finally:
            self._stop_loop_on_exit = False
            self._unwatch_stdin()
            self._flush_console()
        self._reraise()
        return self.exit_code if self.exit_code is not None else 0

    def run_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Run (sharing the loop with anything else on it) until `predicate()` or `timeout`."""
        self.start()
        try:
            return self.loop.run_until(lambda: predicate() or self._crash is not None, timeout)
        finally:
            self._flush_console()
            self._reraise()

    def run_to(self, target_ns: int) -> None:
        """Driven mode: run until the virtual clock reaches `target_ns` (it may pass it by
        less than one instruction's worth), power-off or a fatal trap. Idle time inside
        jumps to each timer deadline, then to `target_ns`; only what the guest does and
        what is delivered to it between calls decides the outcome. An exception inside
        the emulator propagates."""
        if self._started:
            raise RuntimeError("run_to: this machine runs on its loop (start() was called)")
        if self._paused:
            raise RuntimeError("run_to: this machine is paused (a lab drives time for all)")
        clock = self.clock
        while self.exit_code is None:
            clock.run_timers()
            if self.exit_code is not None:
                break
            now = clock.now()
            if now >= target_ns:
                break
            deadline = clock.next_deadline()
            if self.cpu.waiting:
                stop = target_ns if deadline is None else min(deadline, target_ns)
                clock.advance(stop - now)
                continue
            budget = min(SLICE_INSNS, clock.insns_until(target_ns))
            if deadline is not None:
                budget = min(budget, clock.insns_until(deadline))
            self._run_cpu(max(1, budget))
        self._flush_console()

    def _run_cpu(self, budget: int) -> None:
        self._slice_end_ns = self.clock.now() + (budget << self.clock.shift)
        self._in_slice = True
        try:
            self.cpu.run(budget)
        except GuestFault as fault:
            self._report_fault(fault)
        finally:
            self._in_slice = False
            self.uart.flush_output()

    def next_event_ns(self) -> int | None:
        """Driven mode: when this machine next has work — now if its CPU can run, its next
        timer deadline if it idles in `wfi`, None if only an interrupt from outside (or
        nothing, after power-off) can wake it."""
        if self.exit_code is not None:
            return None
        if not self.cpu.waiting:
            return self.clock.now()
        return self.clock.next_deadline()

    def _reraise(self) -> None:
        if self._crash is not None:
            crash, self._crash = self._crash, None
            raise crash

    def _schedule(self) -> None:
        """The next slice, on the next loop turn (host I/O is polled in between)."""
        if not self._scheduled and self.exit_code is None and not self._paused:
            self._scheduled = True
            self.loop.bh(self._slice)

    def _schedule_now(self) -> None:
        """The first slice after idle, right after the event that woke the CPU (its
        handler has returned, so the guest never runs inside a device or netdev call)."""
        if not self._scheduled and self.exit_code is None and not self._paused:
            self._scheduled = True
            self.loop.soon(self._slice)

    def _slice(self) -> None:
        self._scheduled = False
        if self.exit_code is not None or self._paused:
            return
        try:
            self._run_slice()
        except GuestFault as fault:
            self._report_fault(fault)
        except Exception as exc:
            # asyncio would log and swallow it; keep it for run()/run_until() to raise.
            self._crash = exc
            self._finish(GUEST_FAULT_STATUS)

    def _run_slice(self) -> None:
        journal = self.journal
        if journal is not None and not journal.before_slice():
            return
        self.clock.run_timers()
        if self.exit_code is not None:
            return
        budget = SLICE_INSNS
        deadline = self.clock.next_deadline()
        if deadline is not None:
            budget = max(1, min(budget, self.clock.insns_until(deadline)))
        if journal is not None:
            budget = journal.slice_budget(budget)
        self._slice_end_ns = self.clock.now() + (budget << self.clock.shift)
        self._in_slice = True
        try:
            self.cpu.run(budget)
        finally:
            self._in_slice = False
            self.uart.flush_output()
        if self.exit_code is not None or self._paused:
            return
        if self.cpu.waiting:
            self._enter_idle()
        else:
            self._schedule()

    def _timer_modded(self, deadline: int) -> None:
        if self._in_slice and deadline < self._slice_end_ns:
            self.cpu.request_stop()
        elif self._idle and not self._paused:
            # A host event re-armed a timer: recompute how long to idle.
            self._wake()

    def _enter_idle(self) -> None:
        self._idle = True
        self._idle_since = time.monotonic()
        if self.journal is not None and self.journal.replaying:
            self._idle_handle = self.loop.call_later(0, self._replay_idle)
            return
        if self._warm_handle is None:
            self._warm_handle = self.loop.call_later(WARM_UP_AFTER, self._warm_up)
        deadline = self.clock.next_deadline()
        if deadline is None:
            return
        if self.icount_sleep:
            wait = (deadline - self.clock.now()) / 1e9
            self._idle_capped = wait > MAX_IDLE_WAIT
            self._idle_handle = self.loop.call_later(min(wait, MAX_IDLE_WAIT), self._idle_expired)
        else:
            # call_later(0) runs after this iteration's poll for host I/O.
            self._idle_handle = self.loop.call_later(0, self._idle_expired)

    def _idle_expired(self) -> None:
        self._idle_handle = None
        if self.icount_sleep and self._idle_capped:
            self._wake()
            return
        self.expire_idle()

    def _warm_up(self) -> None:
        """Once the guest has been idle for WARM_UP_AFTER: one region translated ahead,
        then the next after the loop has looked at host I/O again (a frame arriving
        meanwhile waits for one compile at most). The timer outlives wake-ups and looks
        at how long the current idle has lasted, so a guest that idles between frames
        costs one timer per WARM_UP_AFTER, not one per frame."""
        self._warm_handle = None
        if not self._idle or self._paused or self.exit_code is not None:
            return
        idle_for = time.monotonic() - self._idle_since
        if idle_for < WARM_UP_AFTER:
            self._warm_handle = self.loop.call_later(WARM_UP_AFTER - idle_for, self._warm_up)
        elif self.cpu.warm_up():
            self._warm_handle = self.loop.call_later(0, self._warm_up)

    def expire_idle(self) -> None:
        """Leave idle at the next timer deadline (virtual time jumps there)."""
        self._idle = False
        deadline = self.clock.next_deadline()
        if deadline is not None:
            self.clock.advance(deadline - self.clock.now())
        self._schedule_now()

    def _replay_idle(self) -> None:
        self._idle_handle = None
        journal = self.journal
        if journal is None or not self._idle or self.exit_code is not None:
            return
        try:
            journal.idle_step()
        except Exception as exc:
            self._crash = exc
            self._finish(GUEST_FAULT_STATUS)
            return
        if self._idle and self._idle_handle is None and self.exit_code is None:
            self._idle_handle = self.loop.call_later(0, self._replay_idle)

    def wake(self) -> None:
        """Leave idle now (replay: where the recording's machine was woken)."""
        if self._idle:
            self._wake()

    def _wake(self) -> None:
        """Leave idle early and run."""
        self._end_idle_wait()
        self._schedule_now()

    def _end_idle_wait(self) -> None:
        """Stop waiting in idle. With sleep=on the virtual clock keeps the real time the
        wait was worth, at most up to the deadline (QEMU's icount warp); a pause ends the
        wait this way too, so time spent paused never counts."""
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        deadline = self.clock.next_deadline()
        if self.icount_sleep and deadline is not None:
            waited_ns = int((time.monotonic() - self._idle_since) * 1e9)
            if self.journal is not None:
                # Still idle here, so the journal notes (or checks) the idle position.
                waited_ns = self.journal.warp(waited_ns)
            self.clock.advance(min(waited_ns, deadline - self.clock.now()))
        self._idle = False

    # -- pause ----------------------------------------------------------------------------

    def pause(self) -> None:
        """Stop the guest where it is (QEMU's vm_stop(RUN_STATE_PAUSED)); no-op unless
        running. Refused while recording or replaying: a pause moves frame deliveries
        relative to other inputs at the same guest position (e.g. a `set_link` typed
        while paused), which the rrfile cannot express."""
        if not self.running:
            return
        if self.journal is not None:
            raise UserError("stop: the run is recorded or replayed (-icount rr=...); "
                            "it cannot pause")
        self._paused = True
        if self._in_slice:
            self.cpu.request_stop()
        if self._idle:
            self._end_idle_wait()
        for nic in self.nics:
            # The queue contract: a disabled receiver gets nothing until flush_queued().
            nic.nc.receive_disabled = True
        self._unwatch_stdin()
        for listener in list(self.run_state_listeners):
            listener(False)

    def resume(self) -> None:
        """Continue a paused guest (QEMU's vm_start); no-op unless paused. Frames that
        queued for the NICs meanwhile are delivered now, in order."""
        if not self._paused:
            return
        self._paused = False
        if self._started:
            # The first slice re-enters idle if the CPU still waits for nothing.
            self._schedule_now()
            self._watch_stdin()
        for nic in self.nics:
            # A ring still full refuses the head again and disables the client anew.
            nic.nc.flush_queued()
        for listener in list(self.run_state_listeners):
            listener(True)

    def _poweroff(self, status: int) -> None:
        self._finish(status)

    def _finish(self, status: int) -> None:
        if self.exit_code is None:
            self.exit_code = status
        self.cpu.request_stop()
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        if self._warm_handle is not None:
            self._warm_handle.cancel()
            self._warm_handle = None
        self._idle = False
        if self._stop_loop_on_exit:
            self.loop.stop()

    def _report_fault(self, fault: GuestFault) -> None:
        self._flush_console()
        print(
            f"toynic: guest fault: {cause_name(fault.cause)} (cause {fault.cause & 0x7FFF_FFFF}) "
            f"at pc={fault.pc:#010x}, mtval={fault.mtval:#010x}",
            file=self.stderr,
            flush=True,
        )
        self._finish(GUEST_FAULT_STATUS)

    def _flush_console(self) -> None:
        self.uart.flush_output()
        with contextlib.suppress(OSError, ValueError):
            self.console.flush()

    # -- console input --------------------------------------------------------------------

    def _watch_stdin(self) -> None:
        if (self._stdin_fd is not None and self._started and not self._paused
                and self.uart.can_receive()):
            self.loop.set_read_handler(self._stdin_fd, self._stdin_ready)

    def _unwatch_stdin(self) -> None:
        if self._stdin_fd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.loop.set_read_handler(self._stdin_fd, None)

    def _stdin_ready(self) -> None:
        room = self.uart.can_receive()
        if room <= 0:
            self._unwatch_stdin()
            return
        try:
            data = os.read(self._stdin_fd, room) if self._stdin_fd is not None else b""
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._unwatch_stdin()
            self._stdin_fd = None
            return
        if self.journal is not None:
            self.journal.console_input(data)
        self.uart.receive(data)
        if not self.uart.can_receive():
            self._unwatch_stdin()
