"""A guest driver's remote DMA through the NE2000's data port, translated against
interpreted: the block-input and block-output copy loops (which translated code runs as
bursts of `devices.dp8390.Dp8390.port_read_burst`/`port_write_burst`) leave RAM, the
chip's memory and registers, ISR, the IRQ line and the instruction count exactly as the
interpreter's access-by-access run does, wherever the transfer starts and ends (inside
the ring, across PSTOP, past the end of packet memory)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from devices.dp8390_regs import MEM_SIZE
from devices.ne2000 import Ne2000Isa
from emu.core.bus import Bus, IsaBus
from emu.cpu.cpu import Cpu
from tests.rvasm import Asm, boot

WINDOW = 0x2000_0000
IOBASE = 0x300
BUFFER = 0x4000  # offset in RAM
ISR_COPY = 0x3FFC  # where the guest leaves the ISR it read at the end


def driver(rsar: int, count: int, target: int) -> Asm:
    """Block input of `count` bytes at `rsar` into RAM, then block output of them to
    `target` (ne_block_input/ne_block_output, 16-bit), then the ISR read back."""
    asm = Asm()
    asm.li("a0", WINDOW + IOBASE)
    for address, command, loop in ((rsar, 0x0A, "input"), (target, 0x12, "output")):
        for offset, value in ((0, 0x22), (0x0A, count & 0xFF), (0x0B, count >> 8),
                              (0x08, address & 0xFF), (0x09, address >> 8), (0, command)):
            asm.li("t1", value)
            asm.sb("t1", "a0", offset)
        asm.li("a1", 0x8000_0000 + BUFFER)
        asm.li("a2", 0x8000_0000 + BUFFER + count)
        asm.label(loop)
        if loop == "input":
            asm.lhu("t0", "a0", 0x10)
            asm.sh("t0", "a1", 0)
        else:
            asm.lhu("t0", "a1", 0)
            asm.sh("t0", "a0", 0x10)
        asm.addi("a1", "a1", 2)
        asm.bne("a1", "a2", loop)
        asm.lbu("t2", "a0", 0x07)
        asm.li("a3", 0x8000_0000 + ISR_COPY)
        asm.sb("t2", "a3", 0)
        asm.li("t1", 0x40)
        asm.sb("t1", "a0", 0x07)
    asm.wfi()
    return asm


def run(asm: Asm, ring: tuple[int, int], translate: bool) -> tuple[Cpu, Ne2000Isa, list[int]]:
    bus = Bus()
    isa = IsaBus()
    bus.map(WINDOW, IsaBus.SIZE, isa, "isa-io")
    board = Ne2000Isa()
    chip = board.chip
    chip.mem[:] = bytes((i * 13 + (i >> 8)) & 0xFF for i in range(MEM_SIZE))
    for offset, value in ((0, 0x21), (0x0E, 0x49), (0x01, ring[0]), (0x02, ring[1]),
                          (0x0F, 0x40)):
        board.write(offset, 1, value)
    isa.map(IOBASE, 0x20, board, "ne2k")
    bursts: list[int] = []
    read_burst, write_burst = chip.port_read_burst, chip.port_write_burst

    def counted_read(offset: int, size: int, count: int) -> bytes:
        data = read_burst(offset, size, count)
        bursts.append(len(data) // size)
        return data

    def counted_write(offset: int, size: int, data: bytes) -> int:
        taken = write_burst(offset, size, data)
        bursts.append(taken)
        return taken

    chip.port_read_burst = counted_read  # type: ignore[method-assign]
    chip.port_write_burst = counted_write  # type: ignore[method-assign]
    cpu = boot(asm, bus=bus, translate=translate, ram_size=0x8000)
    cpu.run(200_000)
    assert cpu.waiting, "the guest reached its wfi"
    return cpu, board, bursts


def outcome(cpu: Cpu, board: Ne2000Isa) -> tuple:
    return (bytes(cpu.ram), list(cpu.x), cpu.instret, bytes(board.chip.mem), board.describe(),
            board.irq.level)


RINGS = st.sampled_from([(0x46, 0x80), (0x40, 0xC0), (0x4C, 0x60)])


@settings(max_examples=40, deadline=None)
@given(ring=RINGS, start=st.integers(0x3F00, 0xC100), words=st.integers(1, 0x300),
       target=st.integers(0x3F00, 0xC100))
def test_translated_copy_loops_move_what_the_interpreter_moves(ring: tuple[int, int], start: int,
                                                               words: int, target: int) -> None:
    asm = driver(start & 0xFFFE, 2 * words, target & 0xFFFE)
    translated, translated_board, _ = run(asm, ring, True)
    interpreted, interpreted_board, none = run(asm, ring, False)
    assert none == []
    assert outcome(translated, translated_board) == outcome(interpreted, interpreted_board)


def test_a_frame_across_the_ring_end_moves_in_bursts() -> None:
    """1514 bytes from two pages before PSTOP: the input loop's passes but its last run
    as bursts, across the wrap, and the ISR the guest reads shows the transfers' RDC."""
    asm = driver(0x7E00, 1514, 0x4000)
    cpu, board, bursts = run(asm, (0x46, 0x80), True)
    mem = board.chip.mem
    assert sum(bursts) >= 2 * (757 - 2), "both loops moved (nearly) everything in bursts"
    assert cpu.ram[BUFFER:BUFFER + 1514] == mem[0x4000:0x4000 + 1514]
    assert cpu.ram[ISR_COPY] & 0x40
