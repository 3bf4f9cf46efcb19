"""Clint — QEMU's RISC-V ACLINT MTIMER/MSWI (hw/intc/riscv_aclint.c), one hart.

Registers (offsets from CLINT_BASE): `msip` (bit 0 drives MSIP), `mtimecmp` (64-bit,
two 32-bit halves), `mtime` (64-bit). mtime counts TIMEBASE_HZ ticks of *virtual* time
(one tick = 100 ns of the VirtualClock); writes to it are ignored. MTIP is a level:
mtime >= mtimecmp. mtimecmp resets to all-ones so no timer interrupt is pending until
the guest programs one; while it lies in the future a VirtualTimer is armed for the
moment MTIP must rise. A guest's clock reads (each half of mtime, as a 32-bit word) route
to handlers of their own (`Clint.route`), a MemoryRegion of its own in QEMU's terms.
"""

from __future__ import annotations

from emu.core.bus import Route
from emu.core.clock import VirtualClock
from emu.core.irq import IrqLine

CLINT_MSIP = 0x0000
CLINT_MTIMECMP = 0x4000
CLINT_MTIME = 0xBFF8
TIMEBASE_HZ = 10_000_000
NS_PER_TICK = 1_000_000_000 // TIMEBASE_HZ
MASK64 = (1 << 64) - 1


class Clint:
    """msip/mtimecmp/mtime for hart 0, driving the `msip` and `mtip` lines."""

    def __init__(self, clock: VirtualClock, msip: IrqLine, mtip: IrqLine) -> None:
        self._clock = clock
        self._msip_line = msip
        self._mtip_line = mtip
        self._timer = clock.timer(self._update_mtip)
        self.msip = 0
        self.mtimecmp = MASK64

    def mtime(self) -> int:
        return (self._clock.now() // NS_PER_TICK) & MASK64

    def route(self, offset: int, size: int) -> Route:
        """A 32-bit read of either half of mtime in one call (`_mtime_low`/`_mtime_high`;
        writes there are ignored, as `write` does); any other access through `read`/`write`."""
        if size == 4 and offset == CLINT_MTIME:
            return Route(offset, offset + 1, offset, self._mtime_low, _ignore)
        if size == 4 and offset == CLINT_MTIME + 4:
            return Route(offset, offset + 1, offset, self._mtime_high, _ignore)
        return Route(offset, offset + 1, 0, self.read, self.write)

    def _mtime_low(self, offset: int, size: int) -> int:
        return (self._clock.now() // NS_PER_TICK) & 0xFFFF_FFFF

    def _mtime_high(self, offset: int, size: int) -> int:
        return (self._clock.now() // NS_PER_TICK) >> 32 & 0xFFFF_FFFF

    def read(self, offset: int, size: int) -> int:
        base, value = self._register(offset)
        if base is None:
            return 0
        shift = 8 * (offset - base)
        return (value >> shift) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        base, current = self._register(offset)
        if base is None or base == CLINT_MTIME:
            return
        shift = 8 * (offset - base)
        mask = ((1 << (8 * size)) - 1) << shift
        merged = (current & ~mask) | ((value << shift) & mask)
        if base == CLINT_MSIP:
            self.msip = merged & 1
            self._msip_line.set(bool(self.msip))
        else:
            self.mtimecmp = merged & MASK64
            self._update_mtip()

    def _register(self, offset: int) -> tuple[int | None, int]:
        if CLINT_MSIP <= offset < CLINT_MSIP + 4:
            return CLINT_MSIP, self.msip
        if CLINT_MTIMECMP <= offset < CLINT_MTIMECMP + 8:
            return CLINT_MTIMECMP, self.mtimecmp
        if CLINT_MTIME <= offset < CLINT_MTIME + 8:
            return CLINT_MTIME, self.mtime()
        return None, 0

    def _update_mtip(self) -> None:
        if self.mtime() >= self.mtimecmp:
            self._timer.cancel()
            self._mtip_line.set(True)
        else:
            self._mtip_line.set(False)
            self._timer.mod(self.mtimecmp * NS_PER_TICK)


def _ignore(offset: int, size: int, value: int) -> None:
    """A write to mtime."""
