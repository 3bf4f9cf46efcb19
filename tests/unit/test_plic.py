"""PLIC: priorities, pending, enable, threshold, claim/complete with level-triggered sources."""

from hypothesis import given
from hypothesis import strategies as st

from devices.plic import Plic
from emu.board.layout import (
    PLIC_CLAIM,
    PLIC_ENABLE,
    PLIC_NUM_SOURCES,
    PLIC_PENDING,
    PLIC_PRIORITY,
    PLIC_THRESHOLD,
)
from emu.core.irq import IrqLine


def make() -> tuple[Plic, IrqLine]:
    meip = IrqLine("meip")
    return Plic(meip), meip


def setup(plic: Plic, source: int, priority: int) -> None:
    plic.write(PLIC_PRIORITY + 4 * source, 4, priority)
    word = PLIC_ENABLE + 4 * (source // 32)
    plic.write(word, 4, plic.read(word, 4) | 1 << (source % 32))


def test_priority_register_is_three_bits_and_source_zero_is_fixed() -> None:
    plic, _ = make()
    plic.write(PLIC_PRIORITY + 4 * 5, 4, 0xFF)
    plic.write(PLIC_PRIORITY, 4, 7)
    assert plic.read(PLIC_PRIORITY + 4 * 5, 4) == 7
    assert plic.read(PLIC_PRIORITY, 4) == 0


def test_pending_bits_follow_line_levels() -> None:
    plic, meip = make()
    plic.line(10).raise_()
    plic.line(41).raise_()
    assert plic.read(PLIC_PENDING, 4) == 1 << 10
    assert plic.read(PLIC_PENDING + 4, 4) == 1 << 9
    assert not meip.level
    plic.line(10).lower()
    assert plic.read(PLIC_PENDING, 4) == 0


def test_claim_complete_cycle() -> None:
    plic, meip = make()
    setup(plic, 10, 1)
    line = plic.line(10)
    line.raise_()
    assert meip.level
    assert plic.read(PLIC_CLAIM, 4) == 10
    assert not meip.level
    assert plic.read(PLIC_PENDING, 4) == 0
    assert plic.read(PLIC_CLAIM, 4) == 0
    plic.write(PLIC_CLAIM, 4, 10)
    assert meip.level
    line.lower()
    assert not meip.level
    assert plic.read(PLIC_CLAIM, 4) == 0


def test_highest_priority_wins_and_ties_go_to_lowest_id() -> None:
    plic, _ = make()
    for source, priority in ((3, 2), (7, 5), (9, 5), (40, 4)):
        setup(plic, source, priority)
        plic.line(source).raise_()
    order = [plic.read(PLIC_CLAIM, 4) for _ in range(5)]
    assert order == [7, 9, 40, 3, 0]


def test_threshold_masks_low_priorities() -> None:
    plic, meip = make()
    setup(plic, 4, 3)
    plic.write(PLIC_THRESHOLD, 4, 3)
    plic.line(4).raise_()
    assert not meip.level
    assert plic.read(PLIC_CLAIM, 4) == 0
    plic.write(PLIC_THRESHOLD, 4, 2)
    assert meip.level
    assert plic.read(PLIC_THRESHOLD, 4) == 2
    assert plic.read(PLIC_CLAIM, 4) == 4


def test_priority_zero_and_disabled_sources_never_interrupt() -> None:
    plic, meip = make()
    setup(plic, 5, 0)
    plic.write(PLIC_PRIORITY + 4 * 6, 4, 7)
    plic.line(5).raise_()
    plic.line(6).raise_()
    assert not meip.level
    assert plic.read(PLIC_CLAIM, 4) == 0


def test_completing_a_disabled_source_is_ignored() -> None:
    plic, _ = make()
    setup(plic, 12, 1)
    plic.line(12).raise_()
    assert plic.read(PLIC_CLAIM, 4) == 12
    plic.write(PLIC_ENABLE, 4, 0)
    plic.write(PLIC_CLAIM, 4, 12)
    plic.write(PLIC_ENABLE, 4, 1 << 12)
    assert plic.read(PLIC_CLAIM, 4) == 0


def test_enable_bit_zero_is_hardwired() -> None:
    plic, _ = make()
    plic.write(PLIC_ENABLE, 4, 0xFFFF_FFFF)
    assert plic.read(PLIC_ENABLE, 4) == 0xFFFF_FFFE


def test_line_objects_are_stable_and_bounded() -> None:
    plic, _ = make()
    assert plic.line(33) is plic.line(33)
    for bad in (0, PLIC_NUM_SOURCES):
        try:
            plic.line(bad)
        except ValueError:
            continue
        raise AssertionError(f"source {bad} accepted")


@given(st.lists(st.tuples(st.sampled_from(["w", "r"]), st.integers(0, 0x40_0000 - 4),
                          st.sampled_from([1, 2, 4]), st.integers(0, 0xFFFF_FFFF)),
                max_size=50))
def test_any_register_traffic_keeps_invariants(ops: list) -> None:
    plic, meip = make()
    plic.line(10).raise_()
    for kind, offset, size, value in ops:
        if kind == "w":
            plic.write(offset, size, value & ((1 << (8 * size)) - 1))
        else:
            assert 0 <= plic.read(offset, size) < 1 << (8 * size)
        assert plic.enable & 1 == 0
        assert all(0 <= p <= 7 for p in plic.priority)
        assert meip.level == (plic.best() != 0)
