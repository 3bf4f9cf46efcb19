"""Translator vs reference interpreter: random RV32IM programs must leave identical state.

Programs mix arithmetic, loads and stores (RAM, an MMIO RAM window, unmapped addresses,
and two logging devices: one mapped on the bus, one behind an ISA window), forward and
backward branches (so device accesses happen inside loops, where translated code keeps
routes cached), jumps, CSR access (counter reads and writes) and trapping instructions.
Device accesses can fault (past a device's end), land misaligned on the ISA window, raise
an interrupt or ask the Cpu to stop; each device logs every access with the pc and
instret the Cpu showed at that moment. A handler skips the faulting instruction and
returns, or masks the external interrupt. Both CPUs run the same slices, so budget
boundaries inside translated regions are exercised too. Self-modifying code (a store
into code, then fence.i) is checked by its own property.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from emu.core.bus import Bus, IsaBus, Ram
from emu.cpu import csr
from emu.cpu.cpu import Cpu
from emu.cpu.csr import MCYCLE, MCYCLEH, MINSTRET, MINSTRETH, MIP_MEIP, MSTATUS_MIE
from tests.rvasm import _BRANCHES, _I_OPS, _LOADS, _R_OPS, _STORES, Asm, boot

RAM = 0x8000_0000
RAM_END = RAM + 0x10000  # tests.rvasm.boot's RAM
DATA = RAM + 0x4000  # x30 points here
MMIO = 0x1000_0000  # x29 points here: a RAM-like region reached through the bus
LOGDEV = 0x1100_0000  # x28 points at LOGDEV + 0x20: a logging device on the bus
LOGDEV_SIZE = 0x40
ISA = 0x2000_0000  # x27 points at port 0x310: a logging board at ports 0x300-0x31f
ISA_PORT, ISA_PORTS = 0x300, 0x20
DEVICE_REGS = [28, 28, 27, 27, 28]
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
# Offsets around the ends of both devices and of the ISA board, aligned and not.
DEVICE_OFFSETS = st.sampled_from([-34, -33, -32, -2, -1, 0, 1, 2, 3, 4, 30, 31])
device_load = st.tuples(st.just("load"), st.sampled_from(sorted(_LOADS)), WORK_REGS,
                        st.sampled_from(DEVICE_REGS), DEVICE_OFFSETS)
device_store = st.tuples(st.just("store"), st.sampled_from(sorted(_STORES)), WORK_REGS,
                         st.sampled_from(DEVICE_REGS), DEVICE_OFFSETS)
insn = st.one_of(r_insn, r_insn, i_insn, i_insn, shift, upper, load, load, store, store,
                 device_load, device_store, branch, branch, jump, odd)


class LogDevice:
    """Logs every access with the Cpu's pc and instret; reads answer a value that depends
    on the access count. A write with bit 4 set raises the external interrupt, one with
    bit 5 set asks the Cpu to stop: both must be seen at the same instruction boundary
    by translated and interpreted code."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cpu: Cpu | None = None
        self.log: list[tuple] = []

    def _note(self, *entry: object) -> None:
        assert self.cpu is not None
        self.log.append((*entry, self.cpu.pc, self.cpu.instret))

    def read(self, offset: int, size: int) -> int:
        self._note("r", offset, size)
        return (len(self.log) * 0x9E3779B1 ^ offset) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        self._note("w", offset, size, value)
        assert self.cpu is not None
        if value & 0x10:
            self.cpu.set_irq(MIP_MEIP, True)
        if value & 0x20:
            self.cpu.request_stop()


def assemble(program: list[tuple], asm: Asm | None = None) -> Asm:
    """`program` appended to `asm` (a new one at RAM by default); branch and jump targets
    are slots of a program that starts at RAM."""
    asm = asm or Asm()
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
    """An exception: skip the faulting instruction. The interrupt: mask it (mie.MEIE)."""
    asm = Asm(HANDLER)
    asm.csrrs(31, "mcause", "zero")
    asm.blt(31, "zero", "irq")
    asm.csrrs(31, "mepc", "zero")
    asm.addi(31, 31, 4)
    asm.csrrw("zero", "mepc", 31)
    asm.mret()
    asm.label("irq")
    asm.li(31, MIP_MEIP)
    asm.csrrc("zero", "mie", 31)
    asm.mret()
    return asm.code()


def make_cpu(code: bytes, translate: bool, seed: list[int], translate_after: int = 0) -> Cpu:
    bus = Bus()
    bus.map(MMIO, 0x100, Ram(0x100), "mmio-ram")
    devices = LogDevice("bus"), LogDevice("isa")
    bus.map(LOGDEV, LOGDEV_SIZE, devices[0], "logdev")
    isa = IsaBus()
    bus.map(ISA, IsaBus.SIZE, isa, "isa-io")
    isa.map(ISA_PORT, ISA_PORTS, devices[1], "logboard")  # mapped after the window: routes follow
    cpu = boot(code, translate=translate, bus=bus, translate_after=translate_after)
    for device in devices:
        device.cpu = cpu
    code = handler()
    cpu.ram[HANDLER - RAM:HANDLER - RAM + len(code)] = code
    cpu.ram[DATA - RAM - 64:DATA - RAM + 64] = bytes(i * 37 & 0xFF for i in range(128))
    cpu.mtvec = HANDLER
    cpu.mstatus = MSTATUS_MIE
    cpu.mie = MIP_MEIP
    for r, v in enumerate(seed, start=1):
        cpu.x[r] = v
    cpu.x[27] = ISA + ISA_PORT + 0x10
    cpu.x[28] = LOGDEV + 0x20
    cpu.x[29] = MMIO + 0x80
    cpu.x[30] = DATA
    return cpu


def device_at(cpu: Cpu, addr: int) -> LogDevice:
    route = cpu.bus.route(addr, 1)
    assert route is not None
    device = getattr(route.read, "__self__", None)
    assert isinstance(device, LogDevice)
    return device


def state(cpu: Cpu) -> tuple:
    mmio = cpu.bus.read(MMIO, 4), cpu.bus.read(MMIO + 0x80, 4), cpu.bus.read(MMIO + 0xC0, 4)
    counters = tuple(csr.read(cpu, num) for num in (MCYCLE, MCYCLEH, MINSTRET, MINSTRETH))
    logs = tuple(tuple(device_at(cpu, addr).log) for addr in (LOGDEV, ISA + ISA_PORT))
    return (list(cpu.x), cpu.pc, cpu.instret, counters, cpu.mcause, cpu.mepc, cpu.mtval,
            cpu.mstatus, cpu.mie, cpu.mip,
            bytes(cpu.ram[:0x200]), bytes(cpu.ram[DATA - RAM - 64:DATA - RAM + 64]), mmio, logs)


@given(
    program=st.lists(insn, min_size=1, max_size=PROGRAM_SLOTS),
    seed=st.lists(st.integers(0, 0xFFFFFFFF), min_size=8, max_size=8),
    slices=st.lists(st.integers(1, 400), min_size=1, max_size=6),
)
# x1 is a negated bit (0 or all ones) at the end of one block, not when the block after
# it in the region first uses it: what one block knows of a register is not the next's
@example(program=[("jal", 0, 3), ("i", "andi", 1, 2, 1), ("r", "sub", 1, 0, 1),
                  ("r", "and_", 3, 1, 4), ("load", "lw", 6, 30, 0), ("jal", 0, 1)],
         seed=[0x12345678, 3, 0, 0xFF, 0, 0, 0, 0], slices=[4, 400])
def test_translator_matches_interpreter(program: list[tuple], seed: list[int],
                                        slices: list[int]) -> None:
    code = assemble(program).code()
    ref = make_cpu(code, False, seed)
    fast = make_cpu(code, True, seed)
    mixed = make_cpu(code, True, seed, translate_after=2)  # interpreted, then translated
    # translated ahead between slices, as an idle machine does (Cpu.warm_up)
    warm = make_cpu(code, True, seed, translate_after=1000)
    for budget in slices:
        retired = ref.run(budget)
        assert fast.run(budget) == retired
        assert mixed.run(budget) == retired
        assert warm.run(budget) == retired
        assert state(fast) == state(ref)
        assert state(mixed) == state(ref)
        assert state(warm) == state(ref)
        for _ in range(3):
            warm.warm_up()



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


CHAIN_REGS = st.integers(1, 3)
narrowing = st.one_of(
    st.tuples(st.just("i"), st.just("andi"), CHAIN_REGS, CHAIN_REGS, st.integers(0, 0x7FF)),
    st.tuples(st.just("shift"), st.sampled_from(["slli", "srli", "srai"]), CHAIN_REGS,
              CHAIN_REGS, st.integers(0, 31)),
    st.tuples(st.just("r"), st.sampled_from(["add", "sub", "mul", "mulhu", "divu", "remu", "xor",
                                             "or_", "and_", "srl", "sra", "sltu"]),
              CHAIN_REGS, CHAIN_REGS, CHAIN_REGS),
    st.tuples(st.just("i"), st.sampled_from(["addi", "xori", "ori"]), CHAIN_REGS, CHAIN_REGS,
              st.integers(-2048, 2047)),
    st.tuples(st.just("r"), st.just("sub"), CHAIN_REGS, st.just(0), CHAIN_REGS),  # negation
    st.tuples(st.just("load"), st.sampled_from(["lbu", "lhu"]), CHAIN_REGS,
              st.sampled_from([30, 30, 28]), st.integers(0, 15).map(lambda k: 2 * k)),
)


@settings(max_examples=200)
@given(
    body=st.lists(narrowing, min_size=4, max_size=24),
    seed=st.lists(EDGE_VALUES, min_size=8, max_size=8),
)
@example(body=[("load", "lhu", 1, 30, 2), ("shift", "slli", 1, 1, 17)], seed=[0] * 8)
@example(body=[("load", "lhu", 1, 28, 0), ("shift", "slli", 1, 1, 17)], seed=[0] * 8)
# gcc's sign extension of a halfword with an unrelated shift between (CRC-16's bit loop)
@example(body=[("shift", "slli", 1, 2, 16), ("shift", "slli", 3, 2, 1),
               ("shift", "srai", 1, 1, 16), ("i", "xori", 3, 3, 0x21)], seed=[0xC0DE8001] * 8)
# what the shift reads is written before the value's reader: it cannot be forwarded
@example(body=[("shift", "slli", 1, 2, 16), ("i", "addi", 2, 2, 1),
               ("shift", "srli", 1, 1, 16)], seed=[0x1234FFFF] * 8)
# ... nor when that is through a value forwarded into it, or the value is read between
@example(body=[("i", "addi", 1, 2, 7), ("i", "xori", 1, 1, 3), ("i", "addi", 2, 2, 1),
               ("i", "andi", 1, 1, 0x7FF)], seed=[0x1234FFFF] * 8)
@example(body=[("shift", "slli", 1, 2, 16), ("r", "add", 3, 1, 2),
               ("shift", "srai", 1, 1, 16)], seed=[0x1234FFFF] * 8)
# a negated bit, 0 or all ones, stops being one when it is overwritten; and in a stretch
# of accesses sharing a base (emitted twice), it is one only after its negation
@example(body=[("i", "andi", 1, 2, 1), ("r", "sub", 1, 0, 1), ("r", "xor", 2, 2, 1),
               ("i", "addi", 1, 1, 5), ("r", "and_", 3, 1, 2)], seed=[0x1234FFFF] * 8)
@example(body=[("load", "lhu", 3, 29, 0), ("r", "and_", 3, 1, 2), ("i", "andi", 2, 2, 1),
               ("r", "sub", 1, 0, 2), ("load", "lhu", 2, 29, 2)],
         seed=[0x12345678, 0xFF00FF0F, *[0] * 6])
def test_narrow_value_chains_match(body: list[tuple], seed: list[int]) -> None:
    """Chains on three registers where a narrow value (masked, or a byte or halfword
    loaded from RAM or a device) goes through shifts, adds and multiplies: the translator
    leaves out a 32-bit mask only where the value cannot reach 2^32, passes a value
    straight into the expression of the later instruction that overwrites it, undoes
    a left shift there with a mask, and turns an `and` with a negated bit into a choice."""
    run_both(assemble(body), seed)


@settings(max_examples=60)
@given(
    patches=st.lists(st.tuples(st.sampled_from(sorted(_I_OPS)), st.integers(-2048, 2047)),
                     min_size=1, max_size=6),
    rounds=st.integers(1, 40),
    slices=st.lists(st.integers(1, 300), min_size=1, max_size=5),
)
def test_self_modifying_code_after_fence_i_matches(patches: list[tuple[str, int]], rounds: int,
                                                   slices: list[int]) -> None:
    """A loop rewrites one of its own instructions (from a table of encodings in RAM),
    runs fence.i and executes it: translated code must run the new instruction, as the
    interpreter does, even though the loop was translated with the old one."""
    table = []
    for op, imm in patches:
        word = Asm()
        getattr(word, op)(5, 5, imm)
        table.append(word.code())
    asm = Asm()
    asm.li(6, DATA)  # the table of encodings
    asm.li(7, DATA + 4 * len(table))
    asm.li(9, rounds)
    asm.la(8, "slot")
    asm.label("loop")
    asm.lw(10, 6, 0)
    asm.sw(10, 8, 0)
    asm.fence_i()
    asm.label("slot")
    asm.nop()
    asm.add(11, 11, 5)
    asm.addi(6, 6, 4)
    asm.bne(6, 7, "loop")
    asm.li(6, DATA)
    asm.addi(9, 9, -1)
    asm.bne(9, 0, "loop")
    code = asm.code()

    def build(translate: bool, after: int = 0) -> Cpu:
        cpu = make_cpu(code, translate, [0] * 8, translate_after=after)
        cpu.ram[DATA - RAM:DATA - RAM + 4 * len(table)] = b"".join(table)
        return cpu

    ref, fast, mixed = build(False), build(True), build(True, 3)
    for budget in [*slices, 100_000]:
        retired = ref.run(budget)
        assert fast.run(budget) == retired
        assert mixed.run(budget) == retired
        assert state(fast) == state(ref)
        assert state(mixed) == state(ref)


@settings(max_examples=40)
@given(
    count=st.integers(1, 40),
    port=st.sampled_from([ISA + ISA_PORT + 0x10, ISA + ISA_PORT + 0x1E, ISA + ISA_PORT + 0x11,
                          ISA + ISA_PORT + 0x40, LOGDEV, LOGDEV + 0x3E, LOGDEV + 0x3F]),
    width=st.sampled_from(["b", "h", "w"]),
    slices=st.lists(st.integers(1, 200), min_size=1, max_size=5),
)
def test_device_copy_loop_matches(count: int, port: int, width: str, slices: list[int]) -> None:
    """A driver's data-port loop (`rep insw` and `rep outsw` in C): load from a fixed
    device address into RAM, then store it back, `count` times each. Misaligned, unclaimed
    and straddling ports fault or float as the interpreter says, at the same instret."""
    asm = Asm()
    asm.li(6, port)
    asm.li(7, DATA)
    asm.li(8, count)
    asm.label("in")
    asm.load({"b": "lbu", "h": "lhu", "w": "lw"}[width], 5, 6, 0)
    asm.store("s" + width, 5, 7, 0)
    asm.addi(7, 7, 4)
    asm.addi(8, 8, -1)
    asm.bne(8, 0, "in")
    asm.li(8, count)
    asm.label("out")
    asm.addi(7, 7, -4)
    asm.lw(5, 7, 0)
    asm.andi(5, 5, 0x4F)  # never asks for a stop; sometimes raises the interrupt
    asm.store("s" + width, 5, 6, 0)
    asm.addi(8, 8, -1)
    asm.bne(8, 0, "out")
    run_both_slices(asm, slices)


def run_both_slices(asm: Asm, slices: list[int], finish: int = 1, ends: bool = True) -> None:
    """`asm`, then wfi, interpreted, translated, and interpreted then translated, in
    `slices` then `finish` runs of 10,000 instructions: the same state after each, and
    (with `ends`) the program at its wfi."""
    asm.wfi()
    code = asm.code()
    ref = make_cpu(code, False, [0] * 8)
    fast = make_cpu(code, True, [0] * 8)
    mixed = make_cpu(code, True, [0] * 8, translate_after=2)
    for budget in [*slices, *[10_000] * finish]:
        retired = ref.run(budget)
        assert fast.run(budget) == retired
        assert mixed.run(budget) == retired
        assert state(fast) == state(ref)
        assert state(mixed) == state(ref)
    assert ref.waiting or not ends


@settings(max_examples=60)
@given(
    end=st.sampled_from([LOGDEV + LOGDEV_SIZE, ISA + ISA_PORT + ISA_PORTS, ISA + ISA_PORT]),
    back=st.integers(1, 12),
    step=st.sampled_from([1, 2, 3, 4]),
    width=st.sampled_from(["b", "h", "w"]),
    store=st.booleans(),
    slices=st.lists(st.integers(1, 200), min_size=1, max_size=5),
)
def test_device_walk_across_a_region_end_matches(end: int, back: int, step: int, width: str,
                                                 store: bool, slices: list[int]) -> None:
    """One load or store instruction walks a pointer across the end (or start) of a device:
    the route it cached inside the device must not serve the straddling and outside
    accesses, which fault on the bus and float on the ISA window."""
    asm = Asm()
    asm.li(6, end - back)
    asm.li(8, 12)
    asm.label("walk")
    if store:
        asm.addi(5, 8, 0x40)  # never asks for a stop
        asm.store("s" + width, 5, 6, 0)
    else:
        asm.load({"b": "lb", "h": "lh", "w": "lw"}[width], 5, 6, 0)
        asm.add(9, 9, 5)
    asm.addi(6, 6, step)
    asm.addi(8, 8, -1)
    asm.bne(8, 0, "walk")
    run_both_slices(asm, slices)


straight = st.one_of(r_insn, i_insn, shift, load, store, device_load, device_store)


def run_counted_loop(asm: Asm, slices: list[int], finish: int) -> Cpu:
    """`asm`, then wfi, interpreted and translated in `slices` then `finish` runs of
    5,000 instructions: the same state after each. The interpreted Cpu. RAM's last
    bytes hold a pattern, so that reading them from the wrong place shows."""
    asm.wfi()
    code = asm.code()
    ref = make_cpu(code, False, [0] * 8)
    fast = make_cpu(code, True, [0] * 8)
    for cpu in (ref, fast):
        cpu.ram[-256:] = bytes(i * 29 & 0xFF for i in range(256))
    for budget in [*slices, *[5_000] * finish]:
        retired = ref.run(budget)
        assert fast.run(budget) == retired
        assert state(fast) == state(ref)
    assert fast.ram == ref.ram
    return ref


def counted_loop(asm: Asm, start: int, end: int, step: int, flip: bool,
                 pass_body: Callable[[], None], moves_first: bool = False) -> None:
    """A loop on x9 from `start`, moved by `step` after (or before) `pass_body`, while
    x9 != `end`."""
    asm.li(9, start & 0xFFFFFFFF)
    asm.li(10, end & 0xFFFFFFFF)
    asm.j("loop")  # the loop a block of its own from its first pass
    asm.label("loop")
    if moves_first:
        asm.addi(9, 9, step)
    pass_body()
    if not moves_first:
        asm.addi(9, 9, step)
    asm.bne(*((10, 9) if flip else (9, 10)), "loop")


@settings(max_examples=100)
@given(
    taken=st.lists(st.one_of(r_insn, i_insn, shift), max_size=3),
    skipped=st.lists(st.one_of(r_insn, i_insn, shift), max_size=3),
    bits=st.integers(1, 12),
    seed=st.lists(EDGE_VALUES, min_size=8, max_size=8),
    slices=st.lists(st.integers(1, 60), min_size=1, max_size=8),
)
def test_branchy_loops_match(taken: list[tuple], skipped: list[tuple], bits: int,
                             seed: list[int], slices: list[int]) -> None:
    """A bitwise-CRC-shaped loop: a conditional step inside it, and short blocks that the
    translator copies into the arms branching to them. Budget ends anywhere in a pass
    (short slices) must find the same state as the interpreter: a block runs only if it
    and the longest block it copies in both fit."""
    asm = Asm()
    asm.li(9, bits)
    asm.label("bit")
    asm.andi(10, 1, 1)
    asm.addi(9, 9, -1)
    asm.shift("srli", 1, 1, 1)
    asm.beq(10, 0, "skip")
    assemble(taken, asm)
    asm.xor(1, 1, 2)
    asm.label("skip")
    assemble(skipped, asm)
    asm.bne(9, 0, "bit")
    asm.wfi()
    code = asm.code()
    ref = make_cpu(code, False, seed)
    fast = make_cpu(code, True, seed)
    for budget in [*slices, 10_000]:
        retired = ref.run(budget)
        assert fast.run(budget) == retired
        assert state(fast) == state(ref)
    assert ref.waiting


@settings(max_examples=120)
@given(
    step=st.sampled_from([1, 2, 3, 4, 12, -1, -2, -4, -6]),
    passes=st.integers(1, 40),
    miss=st.sampled_from([0, 0, 0, 1, -1]),
    flip=st.booleans(),
    other=st.sampled_from([None, None, None, "end", "pointer", "reads", "stores"]),
    body=st.lists(straight, max_size=6),
    moves_first=st.booleans(),
    slices=st.lists(st.integers(1, 300), min_size=1, max_size=5),
)
@example(step=1, passes=1, miss=-1, flip=False, other=None, body=[], moves_first=False,
         slices=[50])  # the end where the pointer starts: 2^32 passes to go
def test_counted_loops_match(step: int, passes: int, miss: int, flip: bool, other: str | None,
                             body: list[tuple], moves_first: bool, slices: list[int]) -> None:
    """`bne` loops whose pointer (x9) one `addi` moves towards an end register (x10):
    the translator runs as many passes as the loop and the budget allow with no test in
    between, so budget ends, device accesses, faults and stops inside a pass must still
    match the interpreter. With `miss`, the step does not divide the distance (the
    pointer steps over the end and wraps around), and the loop runs on its usual path;
    so it does where the body also moves the end or moves the pointer a second time. A
    body that reads the pointer (`reads`) or stores it (`stores`) sees it move pass by
    pass, and so do device accesses, traps and stops before and after its `addi`
    (`moves_first`)."""
    distance = step * passes + miss

    def pass_body() -> None:
        assemble(body, asm)
        if other == "reads":
            asm.add(1, 1, 9)
        elif other == "stores":
            asm.store("sw", 9, 30, 0)
        elif other is not None:
            asm.addi(*((10, 10) if other == "end" else (9, 9)), -step)

    asm = Asm()
    counted_loop(asm, DATA, DATA + distance, step, flip, pass_body, moves_first)
    stores = sum(item[0] == "store" for item in body)
    ref = run_counted_loop(asm, slices, passes * stores + 2)
    if other in (None, "reads", "stores"):
        ends = distance and not distance % step and (distance > 0) == (step > 0)
        assert ref.waiting == bool(ends)


@settings(max_examples=300)
@given(
    step=st.sampled_from([1, 2, 4, 8, -1, -2, -4]),
    passes=st.integers(16, 40),
    op=st.sampled_from(["lbu", "lhu", "lw", "sb", "sh", "sw"]),
    offset=st.sampled_from([0, 0, 1, 2, 4, -4, -2]),
    moves_first=st.booleans(),
    around=st.sampled_from([DATA, RAM_END, LOGDEV + LOGDEV_SIZE, RAM]),
    lead=st.sampled_from([None, 0, -1, 1]),
    skew=st.sampled_from([0, 0, 1, 2]),
    beside=st.sampled_from([None, None, 28, 30]),
    slices=st.lists(st.integers(1, 300), min_size=1, max_size=3),
)
@example(step=4, passes=40, op="lw", offset=0, moves_first=False, around=RAM_END, lead=None,
         skew=0, beside=None, slices=[300])
@example(step=-2, passes=30, op="lhu", offset=0, moves_first=True, around=RAM, lead=None,
         skew=0, beside=None, slices=[300])
@example(step=4, passes=20, op="lw", offset=0, moves_first=False, around=DATA, lead=None,
         skew=1, beside=None, slices=[300])
@example(step=4, passes=20, op="lw", offset=0, moves_first=True, around=RAM_END, lead=0,
         skew=0, beside=None, slices=[300])
@example(step=8, passes=20, op="lw", offset=0, moves_first=False, around=DATA, lead=None,
         skew=0, beside=28, slices=[300])
def test_counted_walks_match(step: int, passes: int, op: str, offset: int, moves_first: bool,
                             around: int, lead: int | None, skew: int, beside: int | None,
                             slices: list[int]) -> None:
    """A counted loop's load or store through its pointer is tested once, for all passes,
    before the loop starts: the pointer walks RAM's data, or across either end of RAM
    (faults, which the handler skips; loads only at its start, where the program lies)
    or of a device, from four steps before the edge or so that its last access ends just
    before, at or just after it, aligned or not (`skew`, `offset`), moved before or after
    the access. With `beside`, each pass also loads twice through a register the loop
    leaves alone (x28 points into a device, x30 into RAM), next to a second access
    through the pointer: one stretch of accesses, only part of it tested in advance."""
    if around == RAM and op.startswith("s"):
        op = "l" + op[1:] + ("u" if op != "sw" else "")
    start = around - step * (4 if lead is None else passes + lead) + skew

    def pass_body() -> None:
        if op.startswith("l"):
            asm.load(op, 7, 9, offset)
            asm.add(8, 8, 7)
        else:
            asm.addi(7, 0, 0x4B)  # never asks a device for a stop or an interrupt
            asm.store(op, 7, 9, offset)
        if beside is not None:
            asm.load("lw", 6, beside, 0)
            asm.load(op if op.startswith("l") else "lbu", 5, 9, offset + abs(step) // 2)
            asm.load("lw", 4, beside, 4)
            asm.add(8, 8, 6)
            asm.add(8, 8, 4)
            asm.add(8, 8, 5)

    asm = Asm()
    counted_loop(asm, start, start + step * passes, step, False, pass_body, moves_first)
    assert run_counted_loop(asm, slices, 2).waiting


# Where a table starts: RAM's data; so near RAM's end that later entries lie past it
# (faults); a device on the bus or behind the ISA window; so near 2^32, or so low with a
# negative offset, that the address wraps around (nothing is mapped there: faults).
TABLES = [DATA - 0x40, RAM_END - 0x80, LOGDEV, ISA + ISA_PORT, 0xFFFFFFC0, 0x10]


@settings(max_examples=200)
@given(
    table=st.sampled_from(TABLES),
    form=st.sampled_from(["add", "add_swapped", "addi", "sub", "gcc", "gcc_reused"]),
    op=st.sampled_from(["lw", "lhu", "lh", "lbu", "lb"]),
    imm=st.sampled_from([0, 4, -4, 60, -64]),
    passes=st.integers(1, 24),
    stretch=st.sampled_from([None, 30, 28]),
    moving=st.booleans(),
    lead=st.sampled_from([None, None, "fault", "device", "stop", "between"]),
    slices=st.lists(st.integers(1, 300), min_size=1, max_size=4),
)
@example(table=DATA - 0x40, form="add", op="lw", imm=0, passes=20, stretch=28,
         moving=False, lead=None, slices=[300])
@example(table=DATA - 0x40, form="add", op="lw", imm=0, passes=20, stretch=None,
         moving=True, lead=None, slices=[300])
@example(table=LOGDEV, form="add", op="lw", imm=0, passes=20, stretch=None, moving=False,
         lead=None, slices=[300])
@example(table=RAM_END - 0x80, form="add_swapped", op="lw", imm=4, passes=20,
         stretch=None, moving=False, lead=None, slices=[300])
@example(table=0xFFFFFFC0, form="addi", op="lw", imm=0, passes=20, stretch=None,
         moving=False, lead=None, slices=[300])
@example(table=0x10, form="addi", op="lw", imm=-64, passes=20, stretch=None, moving=True,
         lead=None, slices=[300])
@example(table=DATA - 0x40, form="gcc", op="lw", imm=4, passes=20, stretch=None, moving=False,
         lead="stop", slices=[300])
@example(table=LOGDEV, form="gcc", op="lw", imm=4, passes=20, stretch=None, moving=False,
         lead=None, slices=[300])
def test_an_address_computed_for_one_load_matches(table: int, form: str, op: str, imm: int,
                                                  passes: int, stretch: int | None,
                                                  moving: bool, lead: str | None,
                                                  slices: list[int]) -> None:
    """A table lookup (`add t, t, table; lw t, 0(t)`): the sum is only the load's address,
    and the translator makes it the address expression, with no register write, no
    32-bit mask, and the table's base as an offset from RAM worked out once before a
    counted loop. Each pass of a loop over the data (x9) looks up a byte of it, scaled,
    in a table (x12) that lies in RAM, runs past its end, lies in a device, or wraps
    around 2^32; through an `add` either way round, an `addi` of a constant to a sum
    kept in a register, or a `sub`; or, as gcc writes it, into another register than the
    one loaded (`add a5, a2, a5; lw a4, 0(a5)`), whose value each pass then uses only as
    that address, or (`gcc_reused`) reads once more after the load. A fault must see the
    address in the register, and devices the exact pc and instret. So must a fault, a
    device access or a device's request to stop at the start of a later pass (`lead`),
    before the register is written again; a device access just after it is
    (`between`) sees the register's new value. With `stretch`, two loads sharing a base
    (x30 in RAM, x28 in a device) follow the lookup: a stretch emitted twice, which
    starts at it, and whose second version runs when the base is not in RAM. With
    `moving`, the table moves each pass (its base is not the loop's to work out once)."""

    def pass_body() -> None:
        if lead == "fault":
            asm.load("lw", 6, 0, 0)
        elif lead == "device":
            asm.load("lw", 6, 28, 0)
        elif lead == "stop":  # every other pass ends the Cpu's run there
            asm.andi(6, 9, 1)
            asm.shift("slli", 6, 6, 5)
            asm.store("sw", 6, 28, 0)
        if form.startswith("gcc"):
            asm.load("lbu", 7, 9, 0)
            if lead == "between":
                asm.load("lw", 6, 28, 0)
            asm.andi(7, 7, 0x3C)
            asm.add(7, 12, 7)
            asm.load(op, 5, 7, imm)
            if form == "gcc_reused":
                asm.add(11, 11, 7)
            asm.xor(11, 11, 5)
            if moving:
                asm.addi(12, 12, 4)
            return
        asm.load("lbu", 5, 9, 0)
        if lead == "between":
            asm.load("lw", 6, 28, 0)
        asm.andi(5, 5, 0x3C)
        if form == "add":
            asm.add(5, 5, 12)
        elif form == "add_swapped":
            asm.add(5, 12, 5)
        elif form == "addi":
            asm.add(7, 5, 12)
            asm.addi(5, 7, 8 if imm >= 0 else -8)
        else:
            asm.sub(5, 12, 5)
        asm.load(op, 5, 5, imm)
        if stretch is not None:
            asm.load("lw", 6, stretch, 0)
            asm.load("lw", 4, stretch, 4)
            asm.xor(11, 11, 6)
            asm.xor(11, 11, 4)
        asm.xor(11, 11, 5)
        if moving:
            asm.addi(12, 12, 4)

    asm = Asm()
    asm.li(12, table)
    counted_loop(asm, DATA - 0x40, DATA - 0x40 + passes, 1, False, pass_body)
    ref = run_counted_loop(asm, slices, 2)
    assert ref.waiting or lead == "stop"


@settings(max_examples=60)
@given(
    bodies=st.lists(st.lists(straight, max_size=6), min_size=4, max_size=4),
    rounds=st.integers(1, 30),
    slices=st.lists(st.integers(1, 300), min_size=1, max_size=5),
)
def test_calls_inside_loops_match(bodies: list[list[tuple]], rounds: int,
                                  slices: list[int]) -> None:
    """A loop calls two functions, one of which calls the other (links in x20 and x22, so
    the bodies' x1-x8 cannot clobber them): translated regions take hot callees in, so
    calls, returns to several call sites and device accesses inside callees run inside
    one region, and must still match the interpreter at every budget boundary."""
    main, leaf_body, outer_body, tail = bodies
    asm = Asm()
    asm.li(21, rounds)
    asm.label("loop")
    assemble(main, asm)
    asm.jal(20, "leaf")
    asm.jal(22, "outer")
    assemble(tail, asm)
    asm.jal(20, "leaf")
    asm.addi(21, 21, -1)
    asm.bne(21, 0, "loop")
    asm.j("done")
    asm.label("leaf")
    assemble(leaf_body, asm)
    asm.jalr(0, 20, 0)
    asm.label("outer")
    assemble(outer_body, asm)
    asm.jal(20, "leaf")
    asm.jalr(0, 22, 0)
    asm.label("done")
    # A device write can ask for a stop, which ends a run early: one run per store the
    # loop can execute is enough to finish.
    stores = sum(item[0] == "store" for body in bodies for item in body)
    run_both_slices(asm, slices, finish=3 * rounds * stores + 2)


@settings(max_examples=200)
@given(
    outer_body=st.lists(straight, max_size=4),
    inner_body=st.lists(straight, max_size=4),
    passes=st.sampled_from([1, 2, 3, 8, 15, 16, 17, 40]),
    rounds=st.integers(1, 6),
    step=st.sampled_from([-1, 1]),
    branch=st.none() | st.tuples(st.sampled_from(sorted(_BRANCHES)), WORK_REGS | st.just(20),
                                 WORK_REGS),
    conditional_step=st.booleans(),
    slices=st.lists(st.integers(1, 300), min_size=1, max_size=6),
)
@example(outer_body=[], inner_body=[("load", "lw", 3, 28, 0)], passes=8, rounds=3, step=-1,
         branch=None, conditional_step=False, slices=[25, 7])  # a device load, budget ends
@example(outer_body=[], inner_body=[], passes=2, rounds=2, step=-1, branch=None,
         conditional_step=False, slices=[8, 8])  # the budget ends right after the way out
@example(outer_body=[], inner_body=[], passes=8, rounds=2, step=-1, branch=("bne", 20, 3),
         conditional_step=False, slices=[300])  # the inner loop's branch reads its counter
@example(outer_body=[], inner_body=[], passes=8, rounds=2, step=-1, branch=("bne", 1, 2),
         conditional_step=True, slices=[300])  # the counter moves in one way round only
def test_loop_nests_match(outer_body: list[tuple], inner_body: list[tuple], passes: int,
                          rounds: int, step: int, branch: tuple | None, conditional_step: bool,
                          slices: list[int]) -> None:
    """A bitwise CRC's shape: an outer loop (x21 rounds) whose block runs into its inner
    loop's first pass (x20 counted down, or up to x19), the inner loop then going back to
    itself, straight or (with `branch`) through one of two short blocks, a conditional
    step's and the one after it, and the outer loop's `addi`/`bne` after it. The
    translator runs the inner loop inside the outer loop's `while`, so budget ends in
    either loop, device accesses, faults and stops in either body must still match the
    interpreter. With `conditional_step`, the counter moves in the conditional step only:
    not a loop whose passes can be counted before it starts."""
    asm = Asm()
    asm.li(21, rounds)
    asm.label("outer")
    assemble(outer_body, asm)
    asm.li(20, passes if step < 0 else 0)
    asm.li(19, passes)
    asm.label("inner")
    assemble(inner_body, asm)
    if branch is None or not conditional_step:
        asm.addi(20, 20, step)
    if branch is not None:
        asm.branch(*branch, "step")
        asm.xor(1, 1, 2)
        if conditional_step:
            asm.addi(20, 20, step)
        asm.label("step")
    asm.bne(20, 0 if step < 0 else 19, "inner")
    asm.addi(21, 21, -1)
    asm.bne(21, 0, "outer")
    stores = sum(item[0] == "store" for item in outer_body + inner_body)
    if conditional_step:
        # A counter that moves in one way round only may never reach its end.
        run_both_slices(asm, slices, finish=2, ends=False)
    else:
        run_both_slices(asm, slices, finish=2 * rounds * passes * stores + 2)


def test_warm_up_translates_run_code_and_what_it_calls_before_it_runs() -> None:
    """Warm-up translates code that has run (and was not hot enough yet) and, ahead of
    need, a function only a branch not yet taken calls; the function then runs
    translated from its first call, with the interpreter's results."""
    asm = Asm()
    asm.li(5, 0)
    asm.label("again")
    asm.bne(5, 0, "rare")
    asm.addi(5, 5, 1)
    asm.j("again")
    asm.label("rare")
    asm.jal(1, "callee")
    asm.wfi()
    asm.label("callee")
    asm.addi(6, 6, 7)
    asm.jalr(0, 1, 0)
    code = asm.code()
    callee = RAM + code.index(bytes.fromhex("13037300"))  # addi x6, x6, 7
    ref = make_cpu(code, False, [0] * 8)
    warm = make_cpu(code, True, [0] * 8, translate_after=1000)
    ref.run(3)
    warm.run(3)
    assert callee not in warm._covered
    steps = 0
    while warm.warm_up():
        steps += 1
        assert steps < 50
    assert callee in warm._covered  # inside a translated region (taken into its caller's)
    assert not warm._heat and not warm.warm_up()
    ref.run(100)
    warm.run(100)
    assert ref.waiting and warm.waiting
    assert state(warm) == state(ref)


_SIZES = {"lb": 1, "lbu": 1, "lh": 2, "lhu": 2, "lw": 4, "sb": 1, "sh": 2, "sw": 4}
near_a_ram_end = st.sampled_from([RAM, RAM_END]).flatmap(
    lambda edge: st.integers(edge - 12, edge + 12))
shared_base_access = st.tuples(st.sampled_from(sorted(_LOADS) + sorted(_STORES)),
                               st.integers(3, 8), st.sampled_from([1, 1, 2]),
                               st.integers(-4, 4))
base_change = st.tuples(st.just("addi"), st.integers(1, 8), st.sampled_from([1, 2, 3]),
                        st.integers(-8, 8))


@settings(max_examples=300)
@given(bases=st.tuples(near_a_ram_end, near_a_ram_end),
       body=st.lists(st.one_of(shared_base_access, shared_base_access, base_change),
                     min_size=2, max_size=12),
       seed=st.lists(st.integers(0, 0xFFFFFFFF), min_size=6, max_size=6))
def test_shared_base_accesses_at_the_ends_of_ram_match(bases: tuple[int, int],
                                                       body: list[tuple],
                                                       seed: list[int]) -> None:
    """Loads and stores on base registers x1 and x2, interleaved (translated as a stretch
    with one RAM test per shared base), around both ends of RAM, aligned and not, some
    inside RAM and some past it (faults, which the handler skips), with the bases or the
    loaded registers changing in between: the translated code leaves the same registers,
    RAM and trap state. Stores only through a base known to be near the end of RAM: the
    program itself lies at its start (a store there would be self-modifying code without
    fence.i, which the two CPUs may run differently)."""
    asm = Asm()
    known: list[int | None] = list(bases)  # the bases' values where the test can tell them
    for op, reg, base, k in body:
        if op == "addi":
            asm.addi(base, reg, k)
            if base <= 2:
                source = known[reg - 1] if reg <= 2 else None
                known[base - 1] = None if source is None else source + k
        elif op in _LOADS or (known[base - 1] or RAM) < RAM_END - 0x1000:
            op = {"sb": "lb", "sh": "lh", "sw": "lw"}.get(op, op)
            asm.load(op, reg, base, k * _SIZES[op] + (k == 4))
        else:
            asm.store(op, reg, base, k * _SIZES[op] + (k == 4))
    asm.wfi()
    code = asm.code()
    ref = make_cpu(code, False, [*bases, *seed])
    fast = make_cpu(code, True, [*bases, *seed])
    for cpu in (ref, fast):
        cpu.ram[-64:] = bytes(range(64))
        cpu.run(200)
    assert ref.waiting and fast.waiting
    assert state(fast) == state(ref)
    assert fast.ram == ref.ram
