"""NE2000 register programs: the stores a guest driver makes, replayed through QTest
(QEMU's qtest drives a device with the same outb/outw/outl calls)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from devices.ne2000 import DEFAULT_IOBASE
from emu.testing.qtest import QTest


@dataclass(frozen=True)
class RegWrite:
    """One guest store to an NE2000: CR page `page` selected, then `value` written at
    `offset` (0x00-0x1F of the I/O window) with `width` bytes."""

    page: int
    offset: int
    width: int
    value: int


def apply_program(qtest: QTest, program: Iterable[RegWrite], iobase: int = DEFAULT_IOBASE) -> None:
    """Run a register program through QTest as a guest would: select the page in CR
    (keeping CR's other bits, never re-triggering a transmit), then store."""
    for op in program:
        cr = qtest.inb(iobase)
        qtest.outb(iobase, (cr & 0x3B) | op.page << 6)
        if op.width == 1:
            qtest.outb(iobase + op.offset, op.value)
        elif op.width == 2:
            qtest.outw(iobase + op.offset, op.value)
        else:
            qtest.outl(iobase + op.offset, op.value)
