"""Translator vs reference interpreter: random RV32IM programs must leave identical state.

Programs mix arithmetic, loads and stores (RAM, an MMIO RAM window, unmapped addresses),
forward and backward branches, jumps, CSR access (counter reads and writes) and trapping
instructions; a handler skips the faulting instruction and returns. Both CPUs run the
same slices, so budget boundaries inside translated regions are exercised too.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.core.bus import Bus, Ram
from emu.cpu import csr
from emu.cpu.cpu import Cpu
from emu.cpu.csr import MCYCLE, MCYCLEH, MINSTRET, MINSTRETH
from tests.rvasm import _BRANCHES, _I_OPS, _LOADS, _R_OPS, _STORES, Asm, boot

RAM = 0x8000_0000
DATA = RAM + 0x4000  # x30 points here
MMIO = 0x1000_0000  # x29 points here: a RAM-like region reached through the bus
PROGRAM_SLOTS = 60
HANDLER = RAM + 0x2000
WORK_REGS = st.integers(min_value=1, max_value=8)

r_insn = st.tuples(st.just("r"), st.sampled_from(sorted(_R_OPS)), WORK_REGS, WORK_REGS, WORK_REGS)
i_insn = st.tuples(st.just("i"), st.sampled_from(sorted(_I_OPS)), WORK_REGS, WORK_REGS,
                   st.integers(-2048, 2047))
shift = st.tuples(st.just("shift"), st.sampled_from(["slli", "srli", "srai"]), WORK_REGS,
                  WORK_REGS, st.integers(0, 31))
upper = st.tuples(st.just("upper"), st.sampled_from(["lui", "auipc"]), WORK_REGS,
                  st.integers(0, 0xFFFFF))
load = st.tuples(st.just("load"), st.sampled_from(sorted(_LOADS)), WORK_REGS,
                 st.sampled_from([30, 30, 30, 29, 1]), st.integers(-64, 63))
store = st.tuples(st.just("store"), st.sampled_from(sorted(_STORES)), WORK_REGS,
                  st.sampled_from([30, 30, 30, 29, 2]), st.integers(-64, 63))
branch = st.tuples(st.just("branch"), st.sampled_from(sorted(_BRANCHES)), WORK_REGS, WORK_REGS,
                   st.integers(0, PROGRAM_SLOTS - 1))
jump = st.tuples(st.just("jal"), st.sampled_from([0, 1, 3]), st.integers(0, PROGRAM_SLOTS - 1))
odd = st.tuples(st.just("odd"), st.sampled_from(
    ["ecall", "ebreak", "illegal", "csr", "csrw_counter", "fence", "jalr", "misaligned"]),
    WORK_REGS)
insn = st.one_of(r_insn, r_insn, i_insn, i_insn, shift, upper, load, load, store, store,
                 branch, jump, odd)


def assemble(program: list[tuple]) -> Asm:
    asm = Asm()
    labels = {slot: RAM + 4 * slot for slot in range(len(program))}
    for item in program:
        kind = item[0]
        if kind in ("r", "i"):
            getattr(asm, item[1])(item[2], item[3], item[4])
        elif kind == "shift":
            asm.shift(item[1], item[2], item[3], item[4])
        elif kind == "upper":
            getattr(asm, item[1])(item[2], item[3])
        elif kind == "load":
            asm.load(item[1], item[2], item[3], item[4])
        elif kind == "store":
            asm.store(item[1], item[2], item[3], item[4])
        elif kind == "branch":
            asm.branch(item[1], item[2], item[3], labels[item[4] % len(program)])
        elif kind == "jal":
            asm.jal(item[1], labels[item[2] % len(program)])
        elif item[1] == "csr":
            asm.csrrs(item[2], "instret", "zero")
        elif item[1] == "csrw_counter":
            counter = ("minstret", "minstreth", "mcycle", "mcycleh")[item[2] % 4]
            asm.csrrw(item[2], counter, item[2])
        elif item[1] == "jalr":
            asm.jalr(1, item[2], 0)
        elif item[1] == "misaligned":
            asm.jal(0, asm.pc + 2)
        elif item[1] == "illegal":
            asm.word(0)
        else:
            getattr(asm, item[1])()
    return asm


def handler() -> bytes:
    asm = Asm(HANDLER)
    asm.csrrs(31, "mepc", "zero")
    asm.addi(31, 31, 4)
    asm.csrrw("zero", "mepc", 31)
    asm.mret()
    return asm.code()


def make_cpu(code: bytes, translate: bool, seed: list[int], translate_after: int = 0) -> Cpu:
    bus = Bus()
    bus.map(MMIO, 0x100, Ram(0x100), "mmio-ram")
    cpu = boot(code, translate=translate, bus=bus, translate_after=translate_after)
    cpu.ram[HANDLER - RAM:HANDLER - RAM + 16] = handler()
    cpu.ram[DATA - RAM - 64:DATA - RAM + 64] = bytes(i * 37 & 0xFF for i in range(128))
    cpu.mtvec = HANDLER
    for r, v in enumerate(seed, start=1):
        cpu.x[r] = v
    cpu.x[29] = MMIO + 0x80
    cpu.x[30] = DATA
    return cpu


def state(cpu: Cpu) -> tuple:
    mmio = cpu.bus.read(MMIO, 4), cpu.bus.read(MMIO + 0x80, 4), cpu.bus.read(MMIO + 0xC0, 4)
    counters = tuple(csr.read(cpu, num) for num in (MCYCLE, MCYCLEH, MINSTRET, MINSTRETH))
    return (list(cpu.x), cpu.pc, cpu.instret, counters, cpu.mcause, cpu.mepc, cpu.mtval,
            cpu.mstatus,
            bytes(cpu.ram[:0x200]), bytes(cpu.ram[DATA - RAM - 64:DATA - RAM + 64]), mmio)


@given(
    program=st.lists(insn, min_size=1, max_size=PROGRAM_SLOTS),
    seed=st.lists(st.integers(0, 0xFFFFFFFF), min_size=8, max_size=8),
    slices=st.lists(st.integers(1, 400), min_size=1, max_size=6),
)
def test_translator_matches_interpreter(program: list[tuple], seed: list[int],
                                        slices: list[int]) -> None:
    code = assemble(program).code()
    ref = make_cpu(code, False, seed)
    fast = make_cpu(code, True, seed)
    mixed = make_cpu(code, True, seed, translate_after=2)  # interpreted, then translated
    for budget in slices:
        retired = ref.run(budget)
        assert fast.run(budget) == retired
        assert mixed.run(budget) == retired
        assert state(fast) == state(ref)
        assert state(mixed) == state(ref)



EDGE_VALUES = st.sampled_from([0, 1, 2, 31, 32, 33, 0x7FFFFFFF, 0x80000000, 0x80000001,
                               0xFFFFFFFF, 0xFFFFFFFE]) | st.integers(0, 0xFFFFFFFF)


def run_both(asm: Asm, seed: list[int]) -> None:
    asm.wfi()
    code = asm.code()
    ref = make_cpu(code, False, seed)
    fast = make_cpu(code, True, seed)
    ref.run(100)
    fast.run(100)
    assert ref.waiting and fast.waiting
    assert state(fast) == state(ref)


@pytest.mark.parametrize("op", sorted(_R_OPS))
@settings(max_examples=40)
@given(a=EDGE_VALUES, b=EDGE_VALUES)
def test_register_register_op_matches(op: str, a: int, b: int) -> None:
    """Each translated ALU form against the interpreter, with edge-case operands, including
    the rd == rs1 == rs2 and x0-operand forms."""
    asm = Asm()
    getattr(asm, op)(3, 1, 2)
    getattr(asm, op)(4, 1, 1)
    getattr(asm, op)(5, 0, 2)
    getattr(asm, op)(6, 1, 0)
    getattr(asm, op)(2, 2, 2)
    run_both(asm, [a, b] + [0] * 6)


@pytest.mark.parametrize("op", [*sorted(_I_OPS), "slli", "srli", "srai"])
@settings(max_examples=40)
@given(a=EDGE_VALUES, imm=st.integers(-2048, 2047))
def test_register_immediate_op_matches(op: str, a: int, imm: int) -> None:
    asm = Asm()
    if op in ("slli", "srli", "srai"):
        asm.shift(op, 2, 1, imm & 31)
        asm.shift(op, 1, 1, imm & 31)
    else:
        getattr(asm, op)(2, 1, imm)
        getattr(asm, op)(3, 0, imm)
        getattr(asm, op)(1, 1, imm)
    run_both(asm, [a] + [0] * 7)


@settings(max_examples=100)
@given(
    body=st.lists(st.one_of(r_insn, i_insn, shift, upper), min_size=8, max_size=32),
    seed=st.lists(EDGE_VALUES, min_size=8, max_size=8),
)
def test_straight_line_arithmetic_matches(body: list[tuple], seed: list[int]) -> None:
    """Dependent chains of arithmetic: register caching in locals and write-back."""
    run_both(assemble(body), seed)
