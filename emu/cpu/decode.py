"""RV32IM + Zicsr instruction decoder — QEMU's target/riscv/insn32.decode.

`decode(word)` turns a 32-bit instruction into an `Insn` with a mnemonic and its fields,
immediates already sign-extended (as Python ints). Anything not in RV32IM + Zicsr +
mret/wfi/fence.i decodes to "illegal". Both the reference interpreter and the block
translator consume this one decoder, so they cannot disagree about encodings.
"""

from __future__ import annotations

from typing import NamedTuple


class Insn(NamedTuple):
    op: str
    rd: int = 0
    rs1: int = 0
    rs2: int = 0
    imm: int = 0
    raw: int = 0


_BRANCH = {0: "beq", 1: "bne", 4: "blt", 5: "bge", 6: "bltu", 7: "bgeu"}
_LOAD = {0: "lb", 1: "lh", 2: "lw", 4: "lbu", 5: "lhu"}
_STORE = {0: "sb", 1: "sh", 2: "sw"}
_OPIMM = {0: "addi", 2: "slti", 3: "sltiu", 4: "xori", 6: "ori", 7: "andi"}
_OP = {
    (0, 0): "add", (0, 0x20): "sub", (1, 0): "sll", (2, 0): "slt", (3, 0): "sltu",
    (4, 0): "xor", (5, 0): "srl", (5, 0x20): "sra", (6, 0): "or", (7, 0): "and",
    (0, 1): "mul", (1, 1): "mulh", (2, 1): "mulhsu", (3, 1): "mulhu",
    (4, 1): "div", (5, 1): "divu", (6, 1): "rem", (7, 1): "remu",
}
_CSR = {1: "csrrw", 2: "csrrs", 3: "csrrc", 5: "csrrwi", 6: "csrrsi", 7: "csrrci"}
_SYSTEM_WORDS = {0x00000073: "ecall", 0x00100073: "ebreak", 0x30200073: "mret", 0x10500073: "wfi"}

# Instructions the translator leaves to the interpreter: they touch CSRs, trap or idle.
SYSTEM_OPS = frozenset({"ecall", "ebreak", "mret", "wfi", "fence.i", "illegal", *_CSR.values()})
BRANCH_OPS = frozenset(_BRANCH.values())
LOAD_OPS = frozenset(_LOAD.values())
STORE_OPS = frozenset(_STORE.values())


def _sext(value: int, bits: int) -> int:
    sign = 1 << (bits - 1)
    return (value & (sign - 1)) - (value & sign)


def decode(w: int) -> Insn:
    opcode = w & 0x7F
    rd = (w >> 7) & 31
    f3 = (w >> 12) & 7
    rs1 = (w >> 15) & 31
    rs2 = (w >> 20) & 31
    f7 = w >> 25
    i_imm = _sext(w >> 20, 12)
    if opcode == 0x37:
        return Insn("lui", rd, imm=w & 0xFFFFF000, raw=w)
    if opcode == 0x17:
        return Insn("auipc", rd, imm=w & 0xFFFFF000, raw=w)
    if opcode == 0x6F:
        imm = ((w >> 31) << 20) | (((w >> 12) & 0xFF) << 12) | (((w >> 20) & 1) << 11) \
            | (((w >> 21) & 0x3FF) << 1)
        return Insn("jal", rd, imm=_sext(imm, 21), raw=w)
    if opcode == 0x67 and f3 == 0:
        return Insn("jalr", rd, rs1, imm=i_imm, raw=w)
    if opcode == 0x63 and f3 in _BRANCH:
        imm = ((w >> 31) << 12) | (((w >> 7) & 1) << 11) | (((w >> 25) & 0x3F) << 5) \
            | (((w >> 8) & 0xF) << 1)
        return Insn(_BRANCH[f3], 0, rs1, rs2, _sext(imm, 13), w)
    if opcode == 0x03 and f3 in _LOAD:
        return Insn(_LOAD[f3], rd, rs1, imm=i_imm, raw=w)
    if opcode == 0x23 and f3 in _STORE:
        imm = ((w >> 25) << 5) | ((w >> 7) & 31)
        return Insn(_STORE[f3], 0, rs1, rs2, _sext(imm, 12), w)
    if opcode == 0x13:
        if f3 in _OPIMM:
            return Insn(_OPIMM[f3], rd, rs1, imm=i_imm, raw=w)
        if f3 == 1 and f7 == 0:
            return Insn("slli", rd, rs1, imm=rs2, raw=w)
        if f3 == 5 and f7 in (0, 0x20):
            return Insn("srli" if f7 == 0 else "srai", rd, rs1, imm=rs2, raw=w)
    if opcode == 0x33 and (f3, f7) in _OP:
        return Insn(_OP[f3, f7], rd, rs1, rs2, raw=w)
    if opcode == 0x0F:
        if f3 == 0:
            return Insn("fence", raw=w)
        if f3 == 1:
            return Insn("fence.i", raw=w)
    if opcode == 0x73:
        if w in _SYSTEM_WORDS:
            return Insn(_SYSTEM_WORDS[w], raw=w)
        if f3 in _CSR:
            return Insn(_CSR[f3], rd, rs1, imm=w >> 20, raw=w)
    return Insn("illegal", raw=w)
