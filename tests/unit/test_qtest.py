"""emu.testing.qtest: port I/O, memory, IRQ lines and the pluggable clock."""

from __future__ import annotations

from emu.board.layout import RAM_BASE
from emu.testing.qtest import CountingClock, QTest


def test_unclaimed_ports_read_ones() -> None:
    qt = QTest()
    assert qt.inb(0x80) == 0xFF
    assert qt.inw(0x80) == 0xFFFF
    assert qt.inl(0x80) == 0xFFFFFFFF
    assert qt.insw(0x80, 3) == b"\xff" * 6
    qt.outb(0x80, 1)


def test_memory_read_write() -> None:
    qt = QTest(ram_size=4096)
    qt.memwrite(RAM_BASE + 10, b"hello")
    assert qt.memread(RAM_BASE + 10, 5) == b"hello"
    qt.writel(RAM_BASE, 0x11223344)
    assert qt.readb(RAM_BASE) == 0x44
    assert qt.readl(RAM_BASE) == 0x11223344


def test_insw_matches_single_reads() -> None:
    qt = QTest()
    card = qt.add_ne2000(0x300, 9)
    card.chip.mem[0x4000:0x4010] = bytes(range(16))
    qt.outb(0x30E, 0x49)  # DCR word mode
    qt.outb(0x308, 0x00)
    qt.outb(0x309, 0x40)
    qt.outb(0x30A, 16)
    qt.outb(0x300, 0x0A)
    first = qt.insw(0x310, 4)
    singles = b"".join(qt.inw(0x310).to_bytes(2, "little") for _ in range(4))
    assert first + singles == bytes(range(16))
    qt.outb(0x308, 0x00)
    qt.outb(0x309, 0x40)
    qt.outb(0x30A, 4)
    qt.outb(0x300, 0x12)
    qt.outsw(0x310, b"abc")
    assert bytes(card.chip.mem[0x4000:0x4004]) == b"abc\0"


def test_irq_level_follows_device_line() -> None:
    qt = QTest()
    card = qt.add_ne2000(0x300, 5)
    assert not qt.irq_level(5)
    card.chip.isr = card.chip.imr = 0x01
    card.chip.update_irq()
    assert qt.irq_level(5) and not qt.irq_level(9)


def test_two_boards_are_independent() -> None:
    qt = QTest()
    a = qt.add_ne2000(0x300, 9)
    b = qt.add_ne2000(0x320, 10, mac=bytes.fromhex("525400123457"))
    qt.outb(0x300 + 0x0F, 0x3F)
    assert a.chip.imr == 0x3F and b.chip.imr == 0
    assert a.nc.name != b.nc.name


def test_clock_step_default_and_pluggable() -> None:
    qt = QTest()
    assert isinstance(qt.clock, CountingClock)
    assert qt.clock_step(100) == 100
    assert qt.clock_step(5) == 105

    class Clock:
        def __init__(self) -> None:
            self.steps: list[int] = []

        def step(self, ns: int) -> int:
            self.steps.append(ns)
            return sum(self.steps)

    clock = Clock()
    qt = QTest(clock=clock)
    qt.clock_step(7)
    assert clock.steps == [7]
