"""Reference interpreter: one instruction at a time, straight from the spec — QEMU's TCI in spirit.

Slow and simple on purpose. The Cpu uses it for the instructions the translator leaves
out (CSR access, ecall/ebreak, mret, wfi, fence.i, illegal encodings) and for the last
few instructions of a slice; tests run whole programs through it to cross-check the
translator. Registers hold unsigned 32-bit values; helpers convert where signedness
matters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emu.cpu import csr
from emu.cpu.decode import Insn
from emu.cpu.trap import BREAKPOINT, ECALL_M, ILLEGAL_INSN, INSN_MISALIGNED, Trap

if TYPE_CHECKING:
    from emu.cpu.cpu import Cpu

M32 = 0xFFFFFFFF


def signed(v: int) -> int:
    return v - (1 << 32) if v & 0x80000000 else v


def div(a: int, b: int) -> int:
    """Signed division rounding toward zero; /0 gives -1, INT_MIN/-1 gives INT_MIN."""
    sa, sb = signed(a), signed(b)
    if sb == 0:
        return M32
    q = abs(sa) // abs(sb)
    return (-q if (sa < 0) != (sb < 0) else q) & M32


def divu(a: int, b: int) -> int:
    return a // b if b else M32


def rem(a: int, b: int) -> int:
    """Signed remainder with the dividend's sign; x%0 gives x, INT_MIN%-1 gives 0."""
    sa, sb = signed(a), signed(b)
    if sb == 0:
        return a
    r = abs(sa) % abs(sb)
    return (-r if sa < 0 else r) & M32


def remu(a: int, b: int) -> int:
    return a % b if b else a


def _alu(op: str, a: int, b: int) -> int:
    """Register-register and register-immediate arithmetic; b is already unsigned."""
    if op in ("add", "addi"):
        return (a + b) & M32
    if op == "sub":
        return (a - b) & M32
    if op in ("sll", "slli"):
        return (a << (b & 31)) & M32
    if op in ("srl", "srli"):
        return a >> (b & 31)
    if op in ("sra", "srai"):
        return (signed(a) >> (b & 31)) & M32
    if op in ("slt", "slti"):
        return int(signed(a) < signed(b))
    if op in ("sltu", "sltiu"):
        return int(a < b)
    if op in ("xor", "xori"):
        return a ^ b
    if op in ("or", "ori"):
        return a | b
    if op in ("and", "andi"):
        return a & b
    if op == "mul":
        return (a * b) & M32
    if op == "mulh":
        return ((signed(a) * signed(b)) >> 32) & M32
    if op == "mulhsu":
        return ((signed(a) * b) >> 32) & M32
    if op == "mulhu":
        return (a * b) >> 32
    if op == "div":
        return div(a, b)
    if op == "divu":
        return divu(a, b)
    if op == "rem":
        return rem(a, b)
    if op == "remu":
        return remu(a, b)
    raise AssertionError(op)


_BRANCHES = {
    "beq": lambda a, b: a == b,
    "bne": lambda a, b: a != b,
    "blt": lambda a, b: signed(a) < signed(b),
    "bge": lambda a, b: signed(a) >= signed(b),
    "bltu": lambda a, b: a < b,
    "bgeu": lambda a, b: a >= b,
}
_LOADS = {"lb": (1, True), "lh": (2, True), "lw": (4, False), "lbu": (1, False), "lhu": (2, False)}
_STORES = {"sb": 1, "sh": 2, "sw": 4}
_IMM_ALU = frozenset({"addi", "slti", "sltiu", "xori", "ori", "andi", "slli", "srli", "srai"})


def step(cpu: Cpu) -> None:
    """Execute the instruction at cpu.pc; raises Trap (nothing retired) on an exception."""
    pc = cpu.pc
    insn = cpu.fetch(pc)
    op = insn.op
    x = cpu.x
    nxt = (pc + 4) & M32
    result: int | None = None
    if op in _IMM_ALU:
        result = _alu(op, x[insn.rs1], insn.imm & M32)
    elif op in _BRANCHES:
        if _BRANCHES[op](x[insn.rs1], x[insn.rs2]):
            nxt = _jump_target(pc, (pc + insn.imm) & M32)
    elif op in _LOADS:
        size, sign = _LOADS[op]
        result = cpu.load((x[insn.rs1] + insn.imm) & M32, size, pc)
        if sign and result >> (8 * size - 1):
            result = (result - (1 << (8 * size))) & M32
    elif op in _STORES:
        size = _STORES[op]
        cpu.store((x[insn.rs1] + insn.imm) & M32, size, x[insn.rs2] & ((1 << (8 * size)) - 1), pc)
    elif op == "lui":
        result = insn.imm
    elif op == "auipc":
        result = (pc + insn.imm) & M32
    elif op == "jal":
        nxt = _jump_target(pc, (pc + insn.imm) & M32)
        result = (pc + 4) & M32
    elif op == "jalr":
        nxt = _jump_target(pc, (x[insn.rs1] + insn.imm) & M32 & ~1)
        result = (pc + 4) & M32
    elif op == "fence":
        pass
    elif op == "fence.i":
        cpu.flush_translations()
    elif op.startswith("csr"):
        result = _csr(cpu, insn)
    elif op == "ecall":
        raise Trap(ECALL_M, 0, pc)
    elif op == "ebreak":
        raise Trap(BREAKPOINT, pc, pc)
    elif op == "mret":
        nxt = cpu.mret()
    elif op == "wfi":
        cpu.wait_for_interrupt()
    elif op == "illegal":
        raise Trap(ILLEGAL_INSN, insn.raw, pc)
    else:
        result = _alu(op, x[insn.rs1], x[insn.rs2])
    if result is not None and insn.rd:
        x[insn.rd] = result
    cpu.pc = nxt
    cpu.instret += 1


def _jump_target(pc: int, target: int) -> int:
    if target & 3:
        raise Trap(INSN_MISALIGNED, target, pc)
    return target


def _csr(cpu: Cpu, insn: Insn) -> int | None:
    op, num = insn.op, insn.imm
    src = insn.rs1 if op.endswith("i") else cpu.x[insn.rs1]
    writes = op in ("csrrw", "csrrwi") or insn.rs1 != 0
    reads = insn.rd != 0 or op not in ("csrrw", "csrrwi")
    old = csr.read(cpu, num)
    if old is None or (writes and csr.is_read_only(num)):
        raise Trap(ILLEGAL_INSN, insn.raw, cpu.pc)
    if writes:
        if op.startswith("csrrw"):
            new = src
        elif op.startswith("csrrs"):
            new = old | src
        else:
            new = old & ~src
        csr.write(cpu, num, new)
    return old if reads else None
