"""`info ne2000` (devices.ne2000.Ne2000Isa.describe): the datasheet's names from the one
register table, and no effect on the chip — not even on its memory of a refused frame."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from devices.dp8390 import Dp8390
from devices.dp8390_regs import E8390_CMD, EN0_RCNTLO, EN0_RXCR, ENRCR_AB
from devices.ne2000 import Ne2000Isa
from emu.testing import Lab
from emu.testing.qtest import QTest
from tests.ne2000_driver import reg

pytestmark = pytest.mark.timeout(60)

# What a snapshot leaves out: wiring and dispatch tables, not state.
_WIRING = {"irq", "sink", "trace", "_reads", "_writes"}


def chip_state(chip: Dp8390) -> dict[str, Any]:
    """Every field of the chip (the 48 KiB memory, counters, `_refused`) and its IRQ level."""
    state = {k: copy.deepcopy(v) for k, v in vars(chip).items() if k not in _WIRING}
    state["irq.level"] = chip.irq.level
    return state


def test_describe_changes_no_chip_state(qt: QTest, card: Ne2000Isa) -> None:
    chip = card.chip
    # After reset there is no ring: the net layer's can_receive() would answer "no" and
    # remember it; a display must not.
    before = chip_state(chip)
    assert not before["_refused"]
    text = card.describe()
    assert chip_state(chip) == before
    assert "can_receive=no" in text
    assert not chip.can_receive() and chip._refused, "the state the display must not set"


def test_info_ne2000_leaves_the_chip_as_it_was() -> None:
    with Lab() as lab:
        machine = lab.machine("hello", devices=["ne2k_isa"])
        chip = machine.nic.chip
        before = chip_state(chip)
        text = lab.monitor(machine).execute("info ne2000")
        assert chip_state(chip) == before
    assert not before["_refused"]
    assert text.startswith("ne2k_isa.0: model=ne2k_isa,")


def test_describe_uses_the_datasheet_names(qt: QTest, card: Ne2000Isa) -> None:
    reg(qt, E8390_CMD, 0x22)  # STA, RD2 (no remote DMA), page 0
    reg(qt, EN0_RXCR, ENRCR_AB)
    lines = card.describe().splitlines()
    assert lines[1] == "  CR     0x22  page 0 (STA RD2)"
    assert "CRDA1=00 8029ID0=50 8029ID1=43 RSR=00" in lines[2]
    assert lines[5] == ("  page 2 read:  PSTART=00 PSTOP=00 RNPP=00 TPSR=00 LNPP=00 ACU=00 "
                        "ACL=00 RCR=04 TCR=00 DCR=00 IMR=00")
    assert "RCR=0x04 (AB)" in lines[7]


def test_peek_reads_any_page_without_selecting_it(qt: QTest, card: Ne2000Isa) -> None:
    chip = card.chip
    reg(qt, EN0_RXCR, ENRCR_AB)
    assert chip.cmd >> 6 == 0
    assert chip.peek(0, EN0_RCNTLO) == 0x50
    assert chip.peek(2, EN0_RXCR) == ENRCR_AB
    assert chip.cmd >> 6 == 0
    with pytest.raises(ValueError, match="page 3"):
        chip.peek(3, 5)
