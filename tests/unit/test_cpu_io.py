"""Device accesses from translated code (emu.cpu.translate's route caches, QEMU's softmmu
TLB): a data-port loop runs inside one translated region and reaches the board directly."""

from __future__ import annotations

import pytest

from emu.core.bus import Bus, IsaBus
from emu.cpu.cpu import Cpu
from emu.cpu.csr import MIP_MEIP, MSTATUS_MIE
from emu.cpu.translate import Translation, Translator
from tests.rvasm import Asm, boot

RAM = 0x8000_0000
WINDOW = 0x2000_0000
PORT = 0x310
BUFFER = RAM + 0x1000


class Board:
    """A data port that counts its accesses; a write of 0xFF raises the interrupt."""

    def __init__(self) -> None:
        self.cpu: Cpu | None = None
        self.reads = 0
        self.writes: list[tuple[int, int, int]] = []

    def read(self, offset: int, size: int) -> int:
        self.reads += 1
        return (self.reads * 0x0101) & 0xFFFF

    def write(self, offset: int, size: int, value: int) -> None:
        assert self.cpu is not None
        self.writes.append((offset, value, self.cpu.instret))
        if value == 0xFF:
            self.cpu.set_irq(MIP_MEIP, True)


def machine(asm: Asm) -> tuple[Cpu, Board]:
    bus = Bus()
    isa = IsaBus()
    bus.map(WINDOW, IsaBus.SIZE, isa, "isa-io")
    board = Board()
    isa.map(0x300, 0x20, board, "board")
    cpu = boot(asm, bus=bus)
    board.cpu = cpu
    return cpu, board


@pytest.fixture
def region_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts calls of every translated region that holds code."""
    calls: list[int] = []
    translate = Translator.translate

    def counting(self: Translator, entry: int) -> Translation | None:
        translation = translate(self, entry)
        if translation is None:
            return translation

        def counted(limit: int, pc: int) -> int:
            calls.append(entry)
            return translation.region(limit, pc)
        return translation._replace(region=counted)

    monkeypatch.setattr(Translator, "translate", counting)
    return calls


def test_a_data_port_read_loop_stays_in_one_region(region_calls: list[int]) -> None:
    asm = Asm()
    asm.li("a0", WINDOW + PORT)
    asm.li("a1", BUFFER)
    asm.li("a2", 300)
    asm.label("loop")
    asm.lhu("t0", "a0", 0)
    asm.sh("t0", "a1", 0)
    asm.addi("a1", "a1", 2)
    asm.addi("a2", "a2", -1)
    asm.bne("a2", "zero", "loop")
    asm.wfi()
    cpu, board = machine(asm)
    cpu.run(10_000)
    assert cpu.waiting
    assert board.reads == 300
    words = [int.from_bytes(cpu.ram[0x1000 + 2 * i:0x1002 + 2 * i], "little") for i in range(300)]
    assert words == [((i + 1) * 0x0101) & 0xFFFF for i in range(300)]
    assert len(region_calls) == 1


def test_an_interrupt_raised_by_a_port_write_is_taken_after_that_instruction() -> None:
    asm = Asm()
    asm.li("a0", WINDOW + PORT)
    asm.li("a1", 0xF0)
    asm.label("loop")
    asm.sh("a1", "a0", 0)
    asm.addi("a1", "a1", 1)
    asm.j("loop")
    handler = Asm(RAM + 0x800)
    handler.li("t1", MIP_MEIP)
    handler.csrrc("zero", "mie", "t1")
    handler.wfi()
    cpu, board = machine(asm)
    cpu.ram[0x800:0x800 + len(handler.code())] = handler.code()
    cpu.mtvec = RAM + 0x800
    cpu.mstatus = MSTATUS_MIE
    cpu.mie = MIP_MEIP
    cpu.run(1_000)
    assert cpu.waiting
    offset, value, instret = board.writes[-1]
    assert (offset, value) == (0x10, 0xFF)
    assert instret == 3 + 3 * 0x0F  # li (2) + li (1), then 15 rounds before the last store
    assert cpu.mepc == RAM + 16  # the instruction after the store
    assert cpu.mcause == 0x8000_000B
