"""Register page 3 (RTL8029): CR works there as on every page, everything else is ignored
and each ignored access shows in the trace (`ne2000_page3_ignored`)."""

from __future__ import annotations

import io

from devices.dp8390 import Dp8390
from devices.dp8390_regs import E8390_CMD, EN0_ISR, EN0_RCNTHI, EN0_RCNTLO, EN1_CURPAG
from devices.ne2000 import Ne2000Isa
from emu.core.irq import IrqLine
from emu.core.trace import Trace
from emu.testing.qtest import QTest
from tests.ne2000_driver import rd, reg

CONFIG3 = 0x06


def traced(card: Ne2000Isa) -> io.StringIO:
    trace = Trace()
    out = io.StringIO()
    trace.open_log(out)
    trace.enable("ne2000_page3_ignored")
    card.set_trace(trace)
    return out


def test_linux_set_realtek_fdx_leaves_page_3(qt: QTest, card: Ne2000Isa) -> None:
    """Linux ne2k-pci: CR=0xE1 (page 3), CONFIG3 write, CR=0x21 back to page 0."""
    reg(qt, E8390_CMD, 0xE1)
    reg(qt, CONFIG3, 0x40)
    reg(qt, E8390_CMD, 0x21)
    assert rd(qt, E8390_CMD) == 0x21
    assert (rd(qt, EN0_RCNTLO), rd(qt, EN0_RCNTHI)) == (0x50, 0x43), "page 0 again: 8029 ID"


def test_cr_write_on_page_3_starts_and_selects_pages(qt: QTest, card: Ne2000Isa) -> None:
    reg(qt, E8390_CMD, 0xE1)
    reg(qt, E8390_CMD, 0x62)  # page 1, start
    assert rd(qt, E8390_CMD) == 0x62
    assert card.chip.isr & 0x80 == 0, "a started chip clears ISR.RST"
    reg(qt, EN1_CURPAG, 0x4C)
    assert card.chip.curr == 0x4C


def test_other_page_3_writes_change_nothing() -> None:
    chip = Dp8390(IrqLine("t"))
    chip.write_reg(E8390_CMD, 0xE1)
    before = vars(chip).copy(), bytes(chip.mem)
    for offset in range(1, 16):
        chip.write_reg(offset, 0xFF)
    assert (vars(chip), bytes(chip.mem)) == before


def test_page_3_reads_answer_qemus_constants(qt: QTest, card: Ne2000Isa) -> None:
    reg(qt, E8390_CMD, 0xE1)
    values = [rd(qt, offset) for offset in range(16)]
    assert values == [0xE1, 0, 0, 0, 0, 0x40, 0x40] + [0] * 9


def test_each_ignored_page_3_access_is_traced(qt: QTest, card: Ne2000Isa) -> None:
    out = traced(card)
    reg(qt, E8390_CMD, 0xE1)
    reg(qt, CONFIG3, 0x40)
    assert rd(qt, 0x05) == 0x40
    rd(qt, E8390_CMD)
    reg(qt, E8390_CMD, 0x21)
    reg(qt, EN0_ISR, 0xFF)  # page 0: not a page-3 access
    assert out.getvalue().splitlines() == [
        "ne2000_page3_ignored nic=ne2k_isa@0x300 op=write addr=0x06 reg=CONFIG3 val=0x40",
        "ne2000_page3_ignored nic=ne2k_isa@0x300 op=read addr=0x05 reg=CONFIG2 val=0x40",
    ]
