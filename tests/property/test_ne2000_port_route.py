"""The NE2000's ports through their bus routes (`devices.ne2000.Ne2000Isa.route`, which
hands translated code `devices.dp8390.Dp8390.port_read`/`port_write` for the data port and
one handler per chip register) against the board's own `read`/`write`: the same values,
registers, memory, ISR, IRQ, frames and trace lines for any access sequence, and the
chip never keeps the net layer waiting while it has room (`Dp8390._ring_changed` is
skipped on the CR writes that cannot make room)."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from devices.dp8390 import Dp8390
from devices.dp8390_regs import ENDCFG_WTS, MEM_SIZE, PMEM_END, PMEM_START
from devices.ne2000 import DATA_PORT, RESET_PORT, Ne2000Isa
from emu.core.trace import Trace

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


def burst_card(wts: bool, setup: tuple[int, int, int, int], imr: int) -> Ne2000Isa:
    pstart, pstop, rsar, rbcr = setup
    return card(ENDCFG_WTS if wts else 0, rsar, rbcr, pstart, pstop, imr)


@settings(max_examples=300)
@given(wts=st.booleans(), setup=dma_setup(), imr=st.integers(0, 0xFF),
       size=st.sampled_from([1, 2, 4]), count=st.integers(0, 0x9000), before=st.integers(0, 3))
def test_a_read_burst_is_the_reads_it_stands_for(wts: bool, setup: tuple[int, int, int, int],
                                                 imr: int, size: int, count: int,
                                                 before: int) -> None:
    """`read_burst` returns what as many `read`s would, leaves the chip as they would, and
    stops before a read that ends the count (ISR.RDC) or is not a plain word move."""
    plain, bursting = burst_card(wts, setup, imr), burst_card(wts, setup, imr)
    route = bursting.route(DATA_PORT, size)
    assert route.read_burst is not None
    for _ in range(before):  # a burst may start inside a window the reads opened
        assert route.read(0, size) == plain.read(DATA_PORT, size)
    isr = bursting.chip.isr
    data = route.read_burst(0, size, count)
    assert len(data) % 2 == 0 and len(data) <= 2 * count
    if size != 2 or not wts:
        assert data == b""
    words = len(data) // 2
    expected = b"".join(plain.read(DATA_PORT, size).to_bytes(size, "little")
                        for _ in range(words))
    assert data == expected
    assert state(bursting) == state(plain)
    assert bursting.chip.isr == isr, "a burst raises nothing"
    chip = bursting.chip
    if words < count and size == 2 and wts and PMEM_START <= chip.rsar < PMEM_END - 2 \
            and not chip.rsar & 1:
        assert chip.rbcr <= 2, "a burst stops early only at the count's last word"


@settings(max_examples=300)
@given(wts=st.booleans(), setup=dma_setup(), imr=st.integers(0, 0xFF),
       size=st.sampled_from([1, 2, 4]),
       data=st.binary(max_size=64) | st.binary(min_size=0x8000, max_size=0x8000),
       before=st.integers(0, 3))
def test_a_write_burst_is_the_writes_it_stands_for(wts: bool, setup: tuple[int, int, int, int],
                                                   imr: int, size: int, data: bytes,
                                                   before: int) -> None:
    plain, bursting = burst_card(wts, setup, imr), burst_card(wts, setup, imr)
    route = bursting.route(DATA_PORT, size)
    assert route.write_burst is not None
    for i in range(before):
        route.write(0, size, i)
        plain.write(DATA_PORT, size, i)
    isr = bursting.chip.isr
    taken = route.write_burst(0, size, data)
    assert 0 <= taken <= len(data) // size
    if size != 2 or not wts:
        assert taken == 0
    for i in range(taken):
        plain.write(DATA_PORT, size, int.from_bytes(data[i * size:(i + 1) * size], "little"))
    assert state(bursting) == state(plain)
    assert bursting.chip.isr == isr


def test_a_burst_reads_a_frame_across_the_ring_wrap() -> None:
    """A 1514-byte frame stored across PSTOP comes out of one burst up to its last word."""
    board = card(ENDCFG_WTS, 0xBE00, 1514, 0x4600, 0xC000, 0)
    route = board.route(DATA_PORT, 2)
    data = route.read_burst(0, 2, 757)
    mem = board.chip.mem
    last = 0x4600 + 1514 - 0x200 - 2  # the last word's address, past the wrap
    assert data == bytes(mem[0xBE00:0xC000] + mem[0x4600:last])
    assert (board.chip.rsar, board.chip.rbcr) == (last, 2)
    assert board.chip.isr & 0x40 == 0
    assert route.read(0, 2) == int.from_bytes(mem[last:last + 2], "little")
    assert board.chip.isr & 0x40, "the last word, read on its own, ends the transfer"


def test_the_window_follows_registers_set_directly() -> None:
    """Fields a test or display sets by name end the data port's fast window, as register
    writes do: a word read after RBCR shrank is the count's last (RDC), not a fast one."""
    board = card(ENDCFG_WTS, 0x4000, 0x100, 0x4600, 0xC000, 0xFF)
    chip = board.chip
    chip.port_read(0, 2)
    chip.rbcr = 2
    chip.port_read(0, 2)
    assert (chip.rsar, chip.rbcr, chip.isr & 0x40) == (0x4004, 0, 0x40)
    chip.rsar, chip.rbcr, chip.dcr = 0x4000, 0x100, 0
    chip.port_read(0, 2)
    assert (chip.rsar, chip.rbcr) == (0x4001, 0xFF), "byte-wide once DCR.WTS is cleared"
    chip.dcr, chip.pstop = ENDCFG_WTS, 0x4004
    chip.rsar = 0x4000
    chip.port_read(0, 2)
    chip.port_read(0, 2)
    assert chip.rsar == 0x4600, "wrapped at the PSTOP set by name"


def test_other_ports_route_to_the_board_itself() -> None:
    board = Ne2000Isa()
    assert board.route(0x07, 2) == (0x07, 0x08, 0, board.read, board.write, None, None)
    assert board.route(RESET_PORT, 1)[:5] == (RESET_PORT, RESET_PORT + 1, 0, board.read,
                                              board.write)
    assert board.route(0x07, 1)[:3] == (0x07, 0x08, 0x07), "a chip register routes on its own"


class Wire:
    """The chip's sink: frames it sends, and a lossless queue of frames waiting for room
    (what the net layer does: `flush_queued` offers them again while the chip has room)."""

    def __init__(self, chip: Dp8390) -> None:
        self.chip = chip
        self.sent: list[bytes] = []
        self.waiting: list[bytes] = []

    def send(self, frame: bytes) -> int:
        self.sent.append(frame)
        return len(frame)

    def offer(self, frame: bytes) -> None:
        if self.waiting or not self.chip.can_receive():
            self.waiting.append(frame)
        else:
            self.chip.receive(frame)

    def flush_queued(self) -> None:
        while self.waiting and self.chip.can_receive():
            self.chip.receive(self.waiting.pop(0))


# Events the board traces itself, one by one or all of them.
TRACED = st.sampled_from(["ne2000_ioport_read", "ne2000_ioport_write", "ne2000_dma_start",
                          "ne2000_*"])
# CR values a driver uses (pages, start/stop, remote read/write, transmit) and any other.
CR_VALUES = st.sampled_from([0x21, 0x22, 0x62, 0xA2, 0xE2, 0x0A, 0x12, 0x26, 0x01, 0x02]) | \
    st.integers(0, 0xFF)
op = st.one_of(
    st.tuples(st.just("cr"), st.just(0), st.just(1), CR_VALUES),
    st.tuples(st.sampled_from(["read", "write"]), st.integers(0, 0x1F),
              st.sampled_from([1, 1, 1, 1, 2, 4]), st.integers(0, 0xFFFF_FFFF)),
    # BNRY/CURR moves that free or fill the small ring
    st.tuples(st.just("write"), st.sampled_from([0x03]), st.just(1), st.integers(0x3E, 0x4A)),
    st.tuples(st.just("frame"), st.just(0), st.just(0), st.integers(60, 700)),
    st.tuples(st.just("trace"), TRACED, st.just(0), st.booleans()),
)


def ring_card() -> tuple[Ne2000Isa, Wire, io.StringIO]:
    """A started card with a small ring (pages 0x40-0x48), accepting every frame,
    all interrupts enabled, word-wide DMA; traced to its own log."""
    board = Ne2000Isa()
    wire = Wire(board.chip)
    board.chip.sink = wire
    trace = Trace()
    out = io.StringIO()
    trace.open_log(out)
    board.set_trace(trace)
    for offset, value in ((0, 0x21), (0x0E, 0x49), (0x01, 0x40), (0x02, 0x48), (0x03, 0x47),
                          (0x04, 0x40), (0x0F, 0xFF), (0x0C, 0x14), (0, 0x61), (0x07, 0x40),
                          (0, 0x22)):
        board.write(offset, 1, value)
    return board, wire, out


def chip_state(board: Ne2000Isa, wire: Wire, out: io.StringIO) -> tuple:
    chip = board.chip
    return (board.describe(), bytes(chip.mem), board.irq.level, wire.sent, wire.waiting,
            out.getvalue())


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(op, min_size=1, max_size=60))
def test_routed_registers_behave_as_the_board(ops: list[tuple]) -> None:
    (plain, plain_wire, plain_out), (routed, routed_wire, routed_out) = ring_card(), ring_card()
    try:
        for n, (kind, offset, size, value) in enumerate(ops):
            if kind == "trace":
                for board in (plain, routed):
                    board.trace.set_events(offset, value)
            elif kind == "frame":
                frame = b"\xff" * 6 + bytes([n & 0xFF]) * (value - 6)
                plain_wire.offer(frame)
                routed_wire.offer(frame)
            else:
                value &= (1 << (8 * size)) - 1
                route = routed.route(offset, size)
                assert route.lo <= offset < route.hi
                if kind == "read":
                    assert route.read(offset - route.base, size) == plain.read(offset, size)
                else:
                    route.write(offset - route.base, size, value)
                    plain.write(offset, size, value)
            assert chip_state(routed, routed_wire, routed_out) == \
                chip_state(plain, plain_wire, plain_out)
            chip = routed.chip
            # Once refused, the chip lets frames in again when half its ring is free, not
            # as soon as one fits (quirk P6): in a ring of more than 14 pages they may
            # wait while a full-size frame would fit.
            half = (chip.pstop - chip.pstart) >> 9
            assert not (routed_wire.waiting and chip.receive_ready()
                        and chip.free_pages() >= half), \
                "frames wait although half the ring is free"
    finally:
        plain.trace.close()
        routed.trace.close()
