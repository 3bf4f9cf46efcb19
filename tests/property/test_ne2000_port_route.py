"""The NE2000 data port through its bus route (`devices.ne2000.Ne2000Isa.route`, which hands
translated code `devices.dp8390.Dp8390.port_read`/`port_write`) against the board's own
`read`/`write`: the same values, remote DMA state, ISR and IRQ for any access sequence."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from devices.dp8390_regs import ENDCFG_WTS, MEM_SIZE, PMEM_END, PMEM_START
from devices.ne2000 import DATA_PORT, Ne2000Isa

access = st.tuples(st.booleans(), st.sampled_from([1, 2, 2, 2, 4]), st.integers(0, 0xFFFF_FFFF))


@st.composite
def dma_setup(draw: st.DrawFn) -> tuple[int, int, int, int]:
    """(pstart, pstop, rsar, rbcr): the DMA address a few bytes before PSTOP, the end of
    the ring's memory, the PROM or the top of the address space, the count small or not."""
    pstart, pstop = draw(st.sampled_from([(0x4600, 0xC000), (0x4000, 0x4010), (0x4C00, 0x8000)]))
    anchor = draw(st.sampled_from([pstop, PMEM_END, PMEM_START, 0x20, 0x10000]))
    rsar = (anchor - draw(st.integers(0, 12))) & 0xFFFF
    rbcr = draw(st.integers(0, 16) | st.integers(0, 0xFFFF))
    return pstart, pstop, rsar, rbcr


def card(dcr: int, rsar: int, rbcr: int, pstart: int, pstop: int, imr: int) -> Ne2000Isa:
    board = Ne2000Isa()
    chip = board.chip
    chip.mem[:] = bytes(i * 7 & 0xFF for i in range(MEM_SIZE))
    chip.dcr, chip.rsar, chip.rbcr = dcr, rsar, rbcr
    chip.pstart, chip.pstop, chip.imr = pstart, pstop, imr
    return board


def state(board: Ne2000Isa) -> tuple:
    chip = board.chip
    return bytes(chip.mem), chip.rsar, chip.rbcr, chip.isr, board.irq.level


@settings(max_examples=200)
@given(wts=st.booleans(), setup=dma_setup(), imr=st.integers(0, 0xFF),
       accesses=st.lists(access, min_size=4, max_size=40))
def test_the_routed_data_port_behaves_as_the_board(wts: bool, setup: tuple[int, int, int, int],
                                                    imr: int,
                                                    accesses: list[tuple[bool, int, int]]) -> None:
    pstart, pstop, rsar, rbcr = setup
    args = (ENDCFG_WTS if wts else 0, rsar, rbcr, pstart, pstop, imr)
    plain, routed = card(*args), card(*args)
    route = routed.route(DATA_PORT, 2)
    assert (route.lo, route.hi, route.base) == (DATA_PORT, DATA_PORT + 1, DATA_PORT)
    for write, size, value in accesses:
        value &= (1 << (8 * size)) - 1
        if write:
            plain.write(DATA_PORT, size, value)
            route.write(0, size, value)
        else:
            assert route.read(0, size) == plain.read(DATA_PORT, size)
        assert state(routed) == state(plain)


def test_other_ports_route_to_the_board_itself() -> None:
    board = Ne2000Isa()
    route = board.route(0x07, 1)
    assert route == (0x07, 0x08, 0, board.read, board.write)
