"""QTest — a CPU-less driver in the spirit of QEMU's qtest (tests/qtest/libqtest.c).

Tests drive devices exactly as a guest would, but from Python: `outb/inb`, `outw/inw`,
`outl/inl` on the ISA I/O space, `readl/writel` and `memread/memwrite` on the system bus,
`irq_level(n)` for ISA interrupt lines and `clock_step(ns)` on a pluggable clock (any
object with `step(ns) -> int`; the machine's virtual clock can be plugged in later).
`insw` is the `rep insw` of a guest driver: many 16-bit data-port reads in one call.
`peer(board)` is the other end of a board's cable (libqtest's socket pair in
tests/qtest/ne2000-test.c's spirit): frames it sends arrive at the NIC at once, frames the
NIC transmits land in its `received`.
"""

from __future__ import annotations

import sys
from array import array
from typing import Protocol

from devices.ne2000 import DEFAULT_IOBASE, DEFAULT_IRQ, DEFAULT_MAC, IO_SIZE, MODEL, Ne2000Isa
from emu.board.layout import ISA_BASE, ISA_IRQS, ISA_SIZE, RAM_BASE
from emu.core.bus import Bus, IsaBus, Ram, Region
from emu.core.irq import IrqLine
from emu.testing.clients import RecordingClient
from netdev.client import connect_peers

DEFAULT_RAM = 1 << 20


class Clock(Protocol):
    def step(self, ns: int) -> int: ...


class CountingClock:
    """The default clock: virtual nanoseconds that only move when a test steps them."""

    def __init__(self) -> None:
        self.now_ns = 0

    def step(self, ns: int) -> int:
        self.now_ns += ns
        return self.now_ns


class QTest:
    """An ISA I/O space, a little RAM, ISA IRQ lines and a clock; devices are plugged in."""

    def __init__(self, clock: Clock | None = None, ram_size: int = DEFAULT_RAM) -> None:
        self.clock: Clock = clock if clock is not None else CountingClock()
        self.isa = IsaBus()
        self.bus = Bus()
        self.ram = Ram(ram_size)
        self.bus.map(ISA_BASE, ISA_SIZE, self.isa, "isa-io")
        self.bus.map(RAM_BASE, ram_size, self.ram, "ram")
        self.irqs = [IrqLine(f"isa-irq{n}") for n in range(ISA_IRQS)]
        self._io: list[tuple[int, int, Region]] = []

    # ---- devices ---------------------------------------------------------------------

    def map_io(self, port: int, size: int, region: Region, name: str) -> None:
        self.isa.map(port, size, region, name)
        self._io.append((port, port + size, region))

    def add_ne2000(
        self,
        iobase: int = DEFAULT_IOBASE,
        irq: int = DEFAULT_IRQ,
        mac: bytes | None = None,
        name: str | None = None,
    ) -> Ne2000Isa:
        """Plug an NE2000 board in at `iobase`, its IRQ wired to ISA line `irq`."""
        board = Ne2000Isa(mac if mac is not None else DEFAULT_MAC, name or f"{MODEL}@{iobase:#x}")
        self.map_io(iobase, IO_SIZE, board, board.nc.name)
        board.irq.connect(self.irqs[irq].set)
        return board

    def peer(self, board: Ne2000Isa, name: str = "wire") -> RecordingClient:
        """The other end of `board`'s cable, plugged in now. `send(frame)` offers a frame to
        the NIC at once and returns the frame's length when the NIC took it (stored in the
        ring, or dropped by its address filter), or 0 when the NIC cannot take frames now
        (stopped, or the ring has no room for a full-size frame): the frame then waits in
        the NIC's queue and enters when the driver starts the NIC or frees ring pages.
        Every frame the NIC transmits is appended to the peer's `received`. A board has
        one cable: a second `peer(board)` raises UserError."""
        client = RecordingClient(name)
        connect_peers(board.nc, client)
        return client

    # ---- port I/O --------------------------------------------------------------------

    def outb(self, port: int, value: int) -> None:
        self.isa.write(port, 1, value)

    def outw(self, port: int, value: int) -> None:
        self.isa.write(port, 2, value)

    def outl(self, port: int, value: int) -> None:
        self.isa.write(port, 4, value)

    def inb(self, port: int) -> int:
        return self.isa.read(port, 1)

    def inw(self, port: int) -> int:
        return self.isa.read(port, 2)

    def inl(self, port: int) -> int:
        return self.isa.read(port, 4)

    def _region_at(self, port: int, size: int) -> tuple[Region, int] | None:
        for start, end, region in self._io:
            if start <= port and port + size <= end:
                return region, port - start
        return None

    def insw(self, port: int, count: int) -> bytes:
        """`count` 16-bit reads of `port` (rep insw), little-endian into a byte string."""
        hit = self._region_at(port, 2)
        words = array("H")
        if hit is None:
            words.extend([0xFFFF] * count)
        else:
            region, offset = hit
            read = region.read
            words.extend(read(offset, 2) for _ in range(count))
        if sys.byteorder == "big":
            words.byteswap()
        return words.tobytes()

    def outsw(self, port: int, data: bytes) -> None:
        """rep outsw of `data` (padded with a zero byte to an even length)."""
        if len(data) % 2:
            data = bytes(data) + b"\0"
        hit = self._region_at(port, 2)
        if hit is None:
            return
        region, offset = hit
        write = region.write
        for i in range(0, len(data), 2):
            write(offset, 2, data[i] | data[i + 1] << 8)

    def insb(self, port: int, count: int) -> bytes:
        return bytes(self.isa.read(port, 1) for _ in range(count))

    def outsb(self, port: int, data: bytes) -> None:
        for byte in data:
            self.isa.write(port, 1, byte)

    # ---- memory, IRQs, clock ---------------------------------------------------------

    def readb(self, addr: int) -> int:
        return self.bus.read(addr, 1)

    def readl(self, addr: int) -> int:
        return self.bus.read(addr, 4)

    def writeb(self, addr: int, value: int) -> None:
        self.bus.write(addr, 1, value)

    def writel(self, addr: int, value: int) -> None:
        self.bus.write(addr, 4, value)

    def memread(self, addr: int, size: int) -> bytes:
        return bytes(self.bus.read(addr + i, 1) for i in range(size))

    def memwrite(self, addr: int, data: bytes) -> None:
        for i, byte in enumerate(data):
            self.bus.write(addr + i, 1, byte)

    def irq_level(self, irq: int) -> bool:
        return self.irqs[irq].level

    def clock_step(self, ns: int) -> int:
        return self.clock.step(ns)
