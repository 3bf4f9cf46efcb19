"""CSR tests: every machine-mode CSR the hart has, its WARL behaviour, and the CSR instructions."""

from __future__ import annotations

import pytest

from emu.cpu.cpu import Cpu
from emu.cpu.csr import MIP_MTIP
from tests.rvasm import CSRS, Asm, boot

RAM = 0x8000_0000


@pytest.fixture(params=[False, True], ids=["interp", "translate"])
def translate(request: pytest.FixtureRequest) -> bool:
    return request.param


def run(asm: Asm, translate: bool, mtime: int = 0, setup: dict[int, int] | None = None) -> Cpu:
    asm.wfi()
    cpu = boot(asm, translate=translate, mtime=lambda: mtime)
    for r, v in (setup or {}).items():
        cpu.x[r] = v
    cpu.run(1000)
    assert cpu.waiting
    return cpu


@pytest.mark.parametrize(("name", "value"), [
    ("misa", 0x40001100), ("mhartid", 0), ("mvendorid", 0), ("marchid", 0), ("mimpid", 0),
    ("mstatus", 0x1800), ("mie", 0), ("mip", 0), ("mtvec", 0), ("mepc", 0), ("mcause", 0),
    ("mtval", 0), ("mscratch", 0),
])
def test_reset_values(translate: bool, name: str, value: int) -> None:
    asm = Asm()
    asm.csrrs("a0", name, "zero")
    assert run(asm, translate).x[10] == value


@pytest.mark.parametrize(("name", "written", "read"), [
    ("mstatus", 0xFFFFFFFF, 0x1888), ("mstatus", 0x00000008, 0x1808),
    ("mie", 0xFFFFFFFF, 0x888), ("mip", 0xFFFFFFFF, 0),
    ("mtvec", 0x80001001, 0x80001001), ("mtvec", 0x80001000, 0x80001000),
    ("mtvec", 0x80001003, 0x80001000),
    ("mepc", 0x80000123, 0x80000120), ("mcause", 0x8000000B, 0x8000000B),
    ("mtval", 0xDEADBEEF, 0xDEADBEEF), ("mscratch", 0x12345678, 0x12345678),
    ("misa", 0, 0x40001100),
])
def test_write_then_read(translate: bool, name: str, written: int, read: int) -> None:
    asm = Asm()
    asm.li("a1", written)
    asm.csrrw("zero", name, "a1")
    asm.csrrs("a0", name, "zero")
    assert run(asm, translate).x[10] == read


def test_csr_instruction_variants(translate: bool) -> None:
    asm = Asm()
    asm.li("a1", 0xF0F0)
    asm.csrrw("a0", "mscratch", "a1")  # a0 = 0, mscratch = F0F0
    asm.li("a2", 0x0F00)
    asm.csrrs("a3", "mscratch", "a2")  # a3 = F0F0, mscratch = FFF0
    asm.li("a2", 0x00F0)
    asm.csrrc("a4", "mscratch", "a2")  # a4 = FFF0, mscratch = FF00
    asm.csrrwi("a5", "mscratch", 31)  # a5 = FF00, mscratch = 31
    asm.csrrsi("a6", "mscratch", 0)  # a6 = 31, no write
    asm.csrrci("a7", "mscratch", 0b10101)  # a7 = 31, mscratch = 0b01010
    asm.csrrs("s2", "mscratch", "zero")
    cpu = run(asm, translate)
    x = cpu.x
    assert (x[10], x[13], x[14], x[15], x[16], x[17], x[18]) == (
        0, 0xF0F0, 0xFFF0, 0xFF00, 31, 31, 0b01010)


def test_csrrw_rd_equals_rs1_swaps(translate: bool) -> None:
    asm = Asm()
    asm.li("a0", 0x55)
    asm.csrrw("zero", "mscratch", "a0")
    asm.li("a0", 0xAA)
    asm.csrrw("a0", "mscratch", "a0")
    asm.csrrs("a1", "mscratch", "zero")
    cpu = run(asm, translate)
    assert (cpu.x[10], cpu.x[11]) == (0x55, 0xAA)


@pytest.mark.parametrize("name", ["mhartid", "misa", "cycle", "time", "instret", "mvendorid"])
def test_reading_read_only_and_fixed_csrs_with_set_x0_is_legal(translate: bool, name: str) -> None:
    asm = Asm()
    asm.la("t6", "handler")
    asm.csrrw("zero", "mtvec", "t6")
    asm.csrrs("a0", name, "zero")
    asm.csrrsi("a1", name, 0)
    asm.li("a2", 1)
    asm.wfi()
    asm.label("handler")
    asm.li("a2", 2)
    cpu = run(asm, translate)
    assert cpu.x[12] == 1


@pytest.mark.parametrize(("name", "op", "src"), [
    ("mhartid", "csrrw", "zero"), ("cycle", "csrrs", "a1"), ("time", "csrrwi", 0),
    ("instreth", "csrrci", 1), ("mvendorid", "csrrc", "a1"),
])
def test_writing_read_only_csr_is_illegal(translate: bool, name: str, op: str, src: object) -> None:
    asm = Asm()
    asm.la("t6", "handler")
    asm.csrrw("zero", "mtvec", "t6")
    asm.li("a1", 1)
    epc = asm.pc
    word = asm.csr(op, "a0", name, src)  # type: ignore[arg-type]
    asm.wfi()
    asm.label("handler")
    cpu = run(asm, translate)
    assert (cpu.mcause, cpu.mepc, cpu.mtval) == (2, epc, word)


@pytest.mark.parametrize("num", [0x7C0, 0x180, 0x302, 0x303, 0x7B0, 0xC03, 0x001, 0xB03])
def test_unknown_csr_is_illegal_with_instruction_bits(translate: bool, num: int) -> None:
    asm = Asm()
    asm.la("t6", "handler")
    asm.csrrw("zero", "mtvec", "t6")
    asm.li("a0", 5)
    epc = asm.pc
    word = asm.csrrs("a0", num, "zero")
    asm.wfi()
    asm.label("handler")
    cpu = run(asm, translate)
    assert (cpu.mcause, cpu.mepc, cpu.mtval) == (2, epc, word)
    assert cpu.x[10] == 5


def test_counters_follow_instret(translate: bool) -> None:
    asm = Asm()
    for _ in range(10):
        asm.nop()
    asm.csrrs("a0", "cycle", "zero")  # 10 retired before it
    asm.csrrs("a1", "instret", "zero")
    asm.csrrs("a2", "minstret", "zero")
    asm.csrrs("a3", "mcycle", "zero")
    asm.csrrs("a4", "cycleh", "zero")
    asm.csrrs("a5", "instreth", "zero")
    asm.csrrs("a6", "minstreth", "zero")
    asm.csrrs("a7", "mcycleh", "zero")
    cpu = run(asm, translate)
    assert cpu.x[10:18] == [10, 11, 12, 13, 0, 0, 0, 0]


def test_counter_high_halves(translate: bool) -> None:
    asm = Asm()
    asm.csrrs("a0", "instreth", "zero")
    asm.csrrs("a1", "instret", "zero")
    cpu = boot(asm, translate=translate)
    cpu.instret = (5 << 32) | 0xFFFFFFF0
    cpu.run(2)
    assert (cpu.x[10], cpu.x[11]) == (5, 0xFFFFFFF1)


def test_minstret_and_mcycle_are_writable(translate: bool) -> None:
    asm = Asm()
    asm.li("a1", 1000)
    asm.csrrw("zero", "minstret", "a1")
    asm.csrrw("zero", "minstreth", "a1")
    asm.csrrs("a0", "minstret", "zero")
    asm.csrrs("a2", "minstreth", "zero")
    asm.csrrs("a3", "cycle", "zero")
    cpu = run(asm, translate)
    # Each write replaces its own instruction's increment: the minstreth write sees the
    # low half at exactly 1000 and keeps it; the read after it sees what was written.
    assert (cpu.x[10], cpu.x[12]) == (1000, 1000)
    assert cpu.x[13] == 5, "cycle keeps counting retired instructions"
    assert cpu.instret == 7, "the machine's instruction count is untouched"


@pytest.mark.parametrize("counter", ["minstret", "mcycle"])
def test_counter_write_is_what_the_next_instruction_reads(translate: bool, counter: str) -> None:
    """Zicsr: a CSR write to a counter is done instead of that instruction's increment."""
    asm = Asm()
    for _ in range(3):
        asm.nop()
    asm.csrrwi("zero", counter, 0)
    asm.csrrs("a0", counter, "zero")
    asm.csrrs("a1", counter, "zero")
    asm.li("t0", 1234)
    asm.csrrw("a2", counter, "t0")  # also reads the old value: 3 (a0, a1, li retired)
    asm.csrrs("a3", counter, "zero")
    cpu = run(asm, translate)
    assert cpu.x[10:14] == [0, 1, 3, 1234]


@pytest.mark.parametrize("counter", ["minstret", "mcycle"])
@pytest.mark.parametrize("op", ["csrrs", "csrrc"])
def test_counter_set_and_clear_suppress_the_increment(translate: bool, counter: str,
                                                      op: str) -> None:
    asm = Asm()
    asm.li("t0", 0x100)
    asm.csrrw("zero", counter, "t0")  # counter = 0x100
    asm.li("t1", 0x100 if op == "csrrc" else 0x1000)
    asm.csr(op, "zero", counter, "t1")  # the li above retired: 0x101 before this write
    asm.csrrs("a0", counter, "zero")
    cpu = run(asm, translate)
    assert cpu.x[10] == (0x001 if op == "csrrc" else 0x1101)


@pytest.mark.parametrize(("low", "high"), [("minstret", "minstreth"), ("mcycle", "mcycleh")])
def test_counter_write_does_not_carry_into_high_half(translate: bool, low: str,
                                                     high: str) -> None:
    asm = Asm()
    asm.li("t0", 0xFFFFFFFF)
    asm.csrrw("zero", low, "t0")
    asm.csrrs("a0", high, "zero")  # the low half is 0xFFFFFFFF here: no carry yet
    asm.csrrs("a1", low, "zero")  # the read above retired: the counter wrapped into high
    asm.csrrs("a2", high, "zero")
    cpu = run(asm, translate)
    assert cpu.x[10:13] == [0, 0, 1]


@pytest.mark.parametrize(("low", "high"), [("minstret", "minstreth"), ("mcycle", "mcycleh")])
def test_high_half_write_suppresses_the_increment_too(translate: bool, low: str,
                                                      high: str) -> None:
    """riscv-tests rv32mi instret_overflow: a write to the high half is a write to the
    counter, so both halves at all ones plus one nop wrap the whole 64 bits to 0."""
    asm = Asm()
    asm.li("t0", 0xFFFFFFFF)
    asm.csrrw("zero", low, "t0")
    asm.csrrw("zero", high, "t0")
    asm.nop()
    asm.csrrs("a0", low, "zero")
    asm.csrrs("a1", high, "zero")
    cpu = run(asm, translate)
    assert (cpu.x[10], cpu.x[11]) == (0, 0)


def test_cycle_write_leaves_instret_counting(translate: bool) -> None:
    asm = Asm()
    asm.csrrwi("zero", "mcycle", 20)
    asm.csrrs("a0", "minstret", "zero")  # the mcycle write still retired: 1
    asm.csrrwi("zero", "minstret", 7)  # mcycle is 21 here
    asm.csrrs("a1", "mcycle", "zero")
    asm.csrrs("a2", "minstret", "zero")
    cpu = run(asm, translate)
    assert cpu.x[10:13] == [1, 22, 8]


def test_time_reads_mtime(translate: bool) -> None:
    asm = Asm()
    asm.csrrs("a0", "time", "zero")
    asm.csrrs("a1", "timeh", "zero")
    cpu = run(asm, translate, mtime=0x0000_0123_8765_4321)
    assert (cpu.x[10], cpu.x[11]) == (0x87654321, 0x123)


def test_mip_shows_hardware_lines(translate: bool) -> None:
    asm = Asm()
    asm.csrrs("a0", "mip", "zero")
    asm.csrrw("zero", "mip", "zero")
    asm.csrrs("a1", "mip", "zero")
    asm.wfi()
    cpu = boot(asm, translate=translate)
    cpu.set_irq(MIP_MTIP, True)
    cpu.run(3)
    assert (cpu.x[10], cpu.x[11]) == (MIP_MTIP, MIP_MTIP)


def test_every_listed_csr_is_known() -> None:
    asm = Asm()
    for name in CSRS:
        asm.csrrs("a0", name, "zero")
    asm.wfi()
    cpu = boot(asm)
    cpu.run(1000)
    assert cpu.waiting
    assert cpu.mcause == 0
