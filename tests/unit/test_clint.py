"""CLINT: mtime from the virtual clock, mtimecmp halves, MTIP as a level, msip."""

from devices.clint import NS_PER_TICK, Clint
from emu.board.layout import CLINT_MSIP, CLINT_MTIME, CLINT_MTIMECMP
from emu.core.clock import VirtualClock
from emu.core.irq import IrqLine


def make() -> tuple[Clint, VirtualClock, IrqLine, IrqLine]:
    clock = VirtualClock()
    msip, mtip = IrqLine("msip"), IrqLine("mtip")
    return Clint(clock, msip, mtip), clock, msip, mtip


def test_mtime_counts_virtual_ticks_and_ignores_writes() -> None:
    clint, clock, _, _ = make()
    clock.advance(123 * NS_PER_TICK + 99)
    assert clint.read(CLINT_MTIME, 4) == 123
    assert clint.read(CLINT_MTIME + 4, 4) == 0
    clock.advance((1 << 32) * NS_PER_TICK)
    assert clint.read(CLINT_MTIME + 4, 4) == 1
    clint.write(CLINT_MTIME, 4, 0)
    assert clint.read(CLINT_MTIME, 4) == 123


def test_mtimecmp_resets_to_all_ones_with_no_interrupt() -> None:
    clint, _, _, mtip = make()
    assert clint.read(CLINT_MTIMECMP, 4) == 0xFFFF_FFFF
    assert clint.read(CLINT_MTIMECMP + 4, 4) == 0xFFFF_FFFF
    assert not mtip.level


def test_timer_fires_when_virtual_time_reaches_mtimecmp() -> None:
    clint, clock, _, mtip = make()
    clint.write(CLINT_MTIMECMP + 4, 4, 0xFFFF_FFFF)
    clint.write(CLINT_MTIMECMP, 4, 50)
    clint.write(CLINT_MTIMECMP + 4, 4, 0)
    assert not mtip.level
    assert clock.next_deadline() == 50 * NS_PER_TICK
    clock.advance(50 * NS_PER_TICK - 1)
    clock.run_timers()
    assert not mtip.level
    clock.advance(1)
    clock.run_timers()
    assert mtip.level
    assert clock.next_deadline() is None


def test_mtip_is_a_level_lowered_by_moving_mtimecmp() -> None:
    clint, clock, _, mtip = make()
    clock.advance(1000 * NS_PER_TICK)
    clint.write(CLINT_MTIMECMP, 4, 10)
    clint.write(CLINT_MTIMECMP + 4, 4, 0)
    assert mtip.level
    clint.write(CLINT_MTIMECMP, 4, 2000)
    assert not mtip.level
    assert clock.next_deadline() == 2000 * NS_PER_TICK


def test_64_bit_access_and_byte_access() -> None:
    clint, _, _, _ = make()
    clint.write(CLINT_MTIMECMP, 4, 0x1122_3344)
    clint.write(CLINT_MTIMECMP + 4, 4, 0x5566_7788)
    assert clint.mtimecmp == 0x5566_7788_1122_3344
    assert clint.read(CLINT_MTIMECMP + 1, 1) == 0x33
    clint.write(CLINT_MTIMECMP + 7, 1, 0x00)
    assert clint.mtimecmp == 0x0066_7788_1122_3344


def test_msip_drives_its_line() -> None:
    clint, _, msip, _ = make()
    clint.write(CLINT_MSIP, 4, 1)
    assert msip.level and clint.read(CLINT_MSIP, 4) == 1
    clint.write(CLINT_MSIP, 4, 0xFFFF_FFFE)
    assert not msip.level and clint.read(CLINT_MSIP, 4) == 0


def test_unmapped_offsets_read_zero() -> None:
    clint, _, _, _ = make()
    assert clint.read(0x100, 4) == 0
    clint.write(0x100, 4, 0xFFFF_FFFF)
    assert clint.read(0x100, 4) == 0


def test_routes_answer_as_read_and_write() -> None:
    """Every access through `Clint.route` (mtime's halves have handlers of their own) reads
    and writes as `read`/`write` do, for each width, at each register and beside them."""
    (routed, clock, _, mtip), (plain, plain_clock, _, plain_mtip) = make(), make()
    offsets = [CLINT_MSIP, CLINT_MTIMECMP, CLINT_MTIMECMP + 4, CLINT_MTIME, CLINT_MTIME + 4,
               CLINT_MTIME + 2, 0x10]
    for step, offset in enumerate(offsets * 3):
        for c in (clock, plain_clock):
            c.advance(((1 << 32) + 7) * NS_PER_TICK)
        for size in (1, 2, 4):
            if offset % size:
                continue
            route = routed.route(offset, size)
            assert route.lo <= offset < route.hi
            assert route.read(offset - route.base, size) == plain.read(offset, size)
            value = (0x0123_4567 * (step + 1)) & ((1 << (8 * size)) - 1)
            route.write(offset - route.base, size, value)
            plain.write(offset, size, value)
            assert (routed.msip, routed.mtimecmp, mtip.level) == \
                (plain.msip, plain.mtimecmp, plain_mtip.level)
    assert routed.route(CLINT_MTIME + 4, 4).read(0, 4) == routed.mtime() >> 32 > 0
