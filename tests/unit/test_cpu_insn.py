"""Per-instruction tests for RV32I and M, each run by the interpreter and by the translator."""

from __future__ import annotations

import pytest

from emu.cpu.cpu import Cpu
from tests.rvasm import Asm, boot

RAM = 0x8000_0000
DATA = RAM + 0x800
NEG = 0xFFFFFFFF  # -1


@pytest.fixture(params=[False, True], ids=["interp", "translate"])
def translate(request: pytest.FixtureRequest) -> bool:
    return request.param


def run(a: Asm, translate: bool, regs: dict[int, int] | None = None, data: bytes = b"") -> Cpu:
    """Run `a` (which must end in wfi) with the given registers preset."""
    cpu = boot(a, translate=translate)
    cpu.ram[DATA - RAM:DATA - RAM + len(data)] = data
    for r, v in (regs or {}).items():
        cpu.x[r] = v
    cpu.run(10_000)
    assert cpu.waiting, "program did not reach its final wfi"
    return cpu


R_CASES = [
    ("add", 5, 7, 12), ("add", NEG, 1, 0), ("add", 0x7FFFFFFF, 1, 0x80000000),
    ("sub", 0, 1, NEG), ("sub", 7, 5, 2), ("sub", 0x80000000, 1, 0x7FFFFFFF),
    ("sll", 1, 35, 8), ("sll", 0x80000001, 1, 2), ("sll", 3, 0xFFFFFFE0, 3),
    ("srl", 0x80000000, 31, 1), ("srl", 0x80000000, 36, 0x08000000),
    ("sra", 0x80000000, 4, 0xF8000000), ("sra", 0x80000000, 33, 0xC0000000),
    ("sra", 0x40000000, 30, 1),
    ("slt", NEG, 0, 1), ("slt", 0, NEG, 0), ("slt", 3, 3, 0),
    ("slt", 0x80000000, 0x7FFFFFFF, 1),
    ("sltu", NEG, 0, 0), ("sltu", 0, NEG, 1), ("sltu", 3, 3, 0),
    ("xor", 0xF0F0F0F0, 0xFF00FF00, 0x0FF00FF0), ("or_", 0xF0F0F0F0, 0x0F, 0xF0F0F0FF),
    ("and_", 0xF0F0F0F0, 0xFF00FF00, 0xF000F000),
    ("mul", NEG, NEG, 1), ("mul", 0x10000, 0x10000, 0), ("mul", 7, 0xFFFFFFFD, 0xFFFFFFEB),
    ("mulh", NEG, NEG, 0), ("mulh", 0x80000000, 0x80000000, 0x40000000),
    ("mulh", NEG, 1, NEG), ("mulh", 0x7FFFFFFF, 0x7FFFFFFF, 0x3FFFFFFF),
    ("mulhsu", NEG, NEG, NEG), ("mulhsu", 2, 0x80000000, 1), ("mulhsu", 0x80000000, 1, NEG),
    ("mulhu", NEG, NEG, 0xFFFFFFFE), ("mulhu", 0x80000000, 2, 1),
    ("div", 7, 2, 3), ("div", 0xFFFFFFF9, 2, 0xFFFFFFFD), ("div", 7, 0xFFFFFFFE, 0xFFFFFFFD),
    ("div", 7, 0, NEG), ("div", 0x80000000, NEG, 0x80000000), ("div", 0, 5, 0),
    ("divu", 7, 0, NEG), ("divu", 0xFFFFFFFE, 2, 0x7FFFFFFF), ("divu", 7, 2, 3),
    ("rem", 0xFFFFFFF9, 2, NEG), ("rem", 7, 0xFFFFFFFE, 1), ("rem", 7, 0, 7),
    ("rem", 0x80000000, NEG, 0), ("rem", 0xFFFFFFF9, 0, 0xFFFFFFF9),
    ("remu", 7, 0, 7), ("remu", NEG, 10, 5), ("remu", 0x80000000, 0x80000001, 0x80000000),
]


@pytest.mark.parametrize(("op", "a", "b", "expected"), R_CASES)
def test_register_register(translate: bool, op: str, a: int, b: int, expected: int) -> None:
    asm = Asm()
    getattr(asm, op)("a0", "a1", "a2")
    asm.wfi()
    cpu = run(asm, translate, {11: a, 12: b})
    assert cpu.x[10] == expected
    assert (cpu.x[11], cpu.x[12]) == (a, b)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "rem", "sra"])
def test_rd_equal_to_sources(translate: bool, op: str) -> None:
    asm = Asm()
    getattr(asm, op)("a0", "a0", "a0")
    asm.wfi()
    cpu = run(asm, translate, {10: 0xFFFFFFF9})
    ref = run(_single(op, "a1", "a2", "a3"), translate, {12: 0xFFFFFFF9, 13: 0xFFFFFFF9})
    assert cpu.x[10] == ref.x[11]


def _single(op: str, *args: object) -> Asm:
    asm = Asm()
    getattr(asm, op)(*args)
    asm.wfi()
    return asm


I_CASES = [
    ("addi", NEG, 1, 0), ("addi", 5, -6, NEG), ("addi", 0x7FFFFFFF, 1, 0x80000000),
    ("addi", 10, 2047, 2057), ("addi", 10, -2048, 0xFFFFF80A),
    ("slti", NEG, 0, 1), ("slti", 5, -1, 0), ("slti", 0x80000000, -2048, 1),
    ("sltiu", 5, -1, 1), ("sltiu", NEG, -1, 0), ("sltiu", 0, 1, 1),
    ("xori", 0x12345678, -1, 0xEDCBA987), ("xori", 0xF0, 0xFF, 0x0F),
    ("ori", 0x12340000, -2048, 0xFFFFF800), ("ori", 0x10, 0x01, 0x11),
    ("andi", 0xFFFF0F0F, -256, 0xFFFF0F00), ("andi", 0xFFFFFFFF, 0x7FF, 0x7FF),
]


@pytest.mark.parametrize(("op", "a", "imm", "expected"), I_CASES)
def test_register_immediate(translate: bool, op: str, a: int, imm: int, expected: int) -> None:
    cpu = run(_single(op, "a0", "a1", imm), translate, {11: a})
    assert cpu.x[10] == expected


@pytest.mark.parametrize(("op", "a", "shamt", "expected"), [
    ("slli", 1, 31, 0x80000000), ("slli", 0xFFFFFFFF, 4, 0xFFFFFFF0), ("slli", 5, 0, 5),
    ("srli", 0x80000000, 31, 1), ("srli", 0xFFFFFFFF, 4, 0x0FFFFFFF),
    ("srai", 0x80000000, 31, NEG), ("srai", 0x7FFFFFFF, 4, 0x07FFFFFF),
    ("srai", 0xF0000000, 0, 0xF0000000),
])
def test_shift_immediate(translate: bool, op: str, a: int, shamt: int, expected: int) -> None:
    cpu = run(_single(op, "a0", "a1", shamt), translate, {11: a})
    assert cpu.x[10] == expected


def test_lui_auipc(translate: bool) -> None:
    asm = Asm()
    asm.lui("a0", 0xFFFFF)
    asm.auipc("a1", 0)
    asm.auipc("a2", 0x80000)
    asm.lui("a3", 0x12345)
    asm.wfi()
    cpu = run(asm, translate)
    assert cpu.x[10:14] == [0xFFFFF000, RAM + 4, (RAM + 8 + 0x80000000) & NEG, 0x12345000]


LOAD_DATA = bytes([0x7F, 0xFF, 0x81, 0x80, 0x01, 0x02, 0x03, 0x04])


@pytest.mark.parametrize(("op", "offset", "expected"), [
    ("lb", 0, 0x7F), ("lb", 1, NEG), ("lb", 3, 0xFFFFFF80),
    ("lbu", 1, 0xFF), ("lbu", 3, 0x80),
    ("lh", 0, 0xFFFFFF7F), ("lh", 2, 0xFFFF8081), ("lh", 4, 0x0201), ("lh", 1, 0xFFFF81FF),
    ("lhu", 0, 0xFF7F), ("lhu", 2, 0x8081), ("lhu", 3, 0x0180),
    ("lw", 0, 0x8081FF7F), ("lw", 4, 0x04030201), ("lw", 1, 0x018081FF), ("lw", 3, 0x03020180),
])
def test_loads(translate: bool, op: str, offset: int, expected: int) -> None:
    asm = Asm()
    asm.li("a1", DATA + offset + 16)
    getattr(asm, op)("a0", "a1", -16)
    asm.wfi()
    cpu = run(asm, translate, data=LOAD_DATA)
    assert cpu.x[10] == expected


@pytest.mark.parametrize(("op", "offset", "expected"), [
    ("sb", 0, bytes([0x78, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA])),
    ("sb", 5, bytes([0xAA] * 5 + [0x78])),
    ("sh", 1, bytes([0xAA, 0x78, 0x56, 0xAA, 0xAA, 0xAA])),
    ("sw", 0, bytes([0x78, 0x56, 0x34, 0x12, 0xAA, 0xAA])),
    ("sw", 2, bytes([0xAA, 0xAA, 0x78, 0x56, 0x34, 0x12])),
])
def test_stores(translate: bool, op: str, offset: int, expected: bytes) -> None:
    asm = Asm()
    asm.li("a1", DATA + offset - 8)
    asm.li("a2", 0x12345678)
    getattr(asm, op)("a2", "a1", 8)
    asm.wfi()
    cpu = run(asm, translate, data=b"\xaa" * 8)
    assert cpu.ram[DATA - RAM:DATA - RAM + 6] == expected


BRANCH_CASES = [
    ("beq", 5, 5, True), ("beq", 5, 6, False), ("bne", 5, 6, True), ("bne", 5, 5, False),
    ("blt", NEG, 0, True), ("blt", 0, NEG, False), ("blt", 3, 3, False),
    ("bge", 0, NEG, True), ("bge", 3, 3, True), ("bge", NEG, 0, False),
    ("bltu", 0, NEG, True), ("bltu", NEG, 0, False), ("bltu", 3, 3, False),
    ("bgeu", NEG, 0, True), ("bgeu", 3, 3, True), ("bgeu", 0, NEG, False),
]


@pytest.mark.parametrize(("op", "a", "b", "taken"), BRANCH_CASES)
def test_branches_forward(translate: bool, op: str, a: int, b: int, taken: bool) -> None:
    asm = Asm()
    getattr(asm, op)("a1", "a2", "yes")
    asm.li("a0", 1)
    asm.wfi()
    asm.label("yes")
    asm.li("a0", 2)
    asm.wfi()
    cpu = run(asm, translate, {11: a, 12: b})
    assert cpu.x[10] == (2 if taken else 1)


@pytest.mark.parametrize(("op", "a", "b", "taken"), BRANCH_CASES)
def test_branches_backward(translate: bool, op: str, a: int, b: int, taken: bool) -> None:
    """A backward branch taken once: the counter shows whether it was taken."""
    asm = Asm()
    asm.j("start")
    asm.label("back")
    asm.addi("a0", "a0", 10)
    asm.wfi()
    asm.label("start")
    asm.addi("a0", "a0", 1)
    getattr(asm, op)("a1", "a2", "back")
    asm.wfi()
    cpu = run(asm, translate, {11: a, 12: b})
    assert cpu.x[10] == (11 if taken else 1)


def test_jal_links_and_jumps(translate: bool) -> None:
    asm = Asm()
    asm.jal("ra", "func")
    asm.li("a1", 7)
    asm.wfi()
    asm.label("func")
    asm.li("a0", 5)
    asm.ret()
    cpu = run(asm, translate)
    assert (cpu.x[10], cpu.x[11], cpu.x[1]) == (5, 7, RAM + 4)


def test_jalr_clears_bit0_and_reads_rs1_before_writing_rd(translate: bool) -> None:
    asm = Asm()
    asm.la("ra", "target")
    asm.jalr("ra", "ra", 1)  # target + 1: bit 0 is dropped
    asm.wfi()
    asm.label("target")
    asm.li("a0", 9)
    asm.wfi()
    cpu = run(asm, translate)
    assert cpu.x[10] == 9
    assert cpu.x[1] == RAM + 12


def test_jalr_negative_offset(translate: bool) -> None:
    asm = Asm()
    asm.j("start")
    asm.label("target")
    asm.li("a0", 3)
    asm.wfi()
    asm.label("start")
    asm.la("t0", "after")
    asm.jalr("zero", "t0", -20)  # back to "target"
    asm.label("after")
    asm.wfi()
    cpu = run(asm, translate)
    assert cpu.x[10] == 3


def test_x0_is_always_zero(translate: bool) -> None:
    asm = Asm()
    asm.addi("zero", "zero", 5)
    asm.lui("zero", 0x12345)
    asm.li("a1", DATA)
    asm.lw("zero", "a1", 0)
    asm.jal("zero", "next")
    asm.label("next")
    asm.add("a0", "zero", "zero")
    asm.addi("a2", "zero", -1)
    asm.wfi()
    cpu = run(asm, translate, {10: 99}, data=b"\x01\x02\x03\x04")
    assert cpu.x[0] == 0
    assert cpu.x[10] == 0
    assert cpu.x[12] == NEG


def test_fence_is_a_nop_that_retires(translate: bool) -> None:
    asm = Asm()
    asm.li("a0", 1)
    asm.fence()
    asm.addi("a0", "a0", 1)
    asm.wfi()
    cpu = run(asm, translate)
    assert cpu.x[10] == 2
    assert cpu.instret == 4
    assert cpu.pc == RAM + 16


def test_loop_counts_instructions_exactly(translate: bool) -> None:
    asm = Asm()
    asm.li("t0", 1000)
    asm.label("loop")
    asm.addi("a0", "a0", 3)
    asm.addi("t0", "t0", -1)
    asm.bne("t0", "zero", "loop")
    asm.wfi()
    cpu = run(asm, translate)
    assert cpu.x[10] == 3000
    assert cpu.instret == 1 + 3 * 1000 + 1
